"""``rgpt2 corpus stats PATH...``: what the cleaner keeps and drops, and why."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("corpus", help="inspect a lyrics corpus (seed format)")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    stats = sub.add_parser(
        "stats", help="verses/bars/words/chars kept and dropped (with reasons) after cleaning"
    )
    stats.add_argument("paths", nargs="+", metavar="PATH", help=".txt files or folders of them")
    stats.add_argument("--min-bars", type=int, default=4, help="drop shorter verses (default 4)")
    stats.add_argument("--max-bars", type=int, default=None, help="split longer verses into chunks")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from rgpt2.corpus import format_stats, load_corpus
    from rgpt2.errors import CommandError

    if args.min_bars < 1 or (args.max_bars is not None and args.max_bars < args.min_bars):
        raise CommandError("need 1 <= --min-bars <= --max-bars")
    try:
        corpus = load_corpus(args.paths, min_bars=args.min_bars, max_bars=args.max_bars)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(corpus.stats.to_dict() | {"fingerprint": corpus.fingerprint}, indent=2))
    else:
        print(format_stats(corpus.stats))
        print(f"fingerprint: {corpus.fingerprint}")
    return 0

"""``rgpt2 compare-models``: held-out perplexity of a candidate model against the current one.

Prints one JSON object (see :func:`rgpt2.compare.compare_models`); the fine-tune jobs run it
as a low-priority child process and swap only when ``better`` is true.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare-models", help="held-out perplexity of a candidate model vs the current one (JSON)"
    )
    parser.add_argument("--current", required=True, metavar="DIR", help="the model serving now")
    parser.add_argument("--candidate", required=True, metavar="DIR", help="the new model")
    parser.add_argument(
        "--data", required=True, nargs="+", metavar="PATH", help="held-out verses (seed format)"
    )
    parser.add_argument("--direction", choices=("forward", "reverse"), default="reverse")
    parser.add_argument(
        "--max-verses", type=int, default=300, help="sample at most this many verses (seeded)"
    )
    parser.add_argument(
        "--forward", metavar="DIR", help="forward model: also report rhyme figures of both"
    )
    parser.add_argument(
        "--rhyme-verses", type=int, default=8, help="seeded verses per model for rhyme figures"
    )
    parser.add_argument(
        "--min-gain", type=float, default=0.0, help="relative perplexity gain required (0.01 = 1%%)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rgpt2.compare import compare_models
    from rgpt2.corpus import read_verses
    from rgpt2.errors import CommandError

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    try:
        verses = read_verses(args.data)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    if not verses:
        raise CommandError(f"no verses of 4+ bars in {' '.join(args.data)}")
    if len(verses) > args.max_verses:
        verses = random.Random(0).sample(verses, args.max_verses)
    result = compare_models(
        args.current,
        args.candidate,
        verses,
        args.direction,
        forward_dir=args.forward,
        rhyme_verses=args.rhyme_verses if args.forward else 0,
        min_gain=args.min_gain,
    )
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0

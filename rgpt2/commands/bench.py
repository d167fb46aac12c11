"""``rgpt2 bench``: throughput, latency and event-loop lag of the generation service vs naive."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def _concurrencies(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive numbers")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="the generation service vs one-at-a-time generation: verses/s, latency, loop lag",
        description=(
            "Same models, same requests, one run: the naive baseline (each request alone, one "
            "after another) and the generation service at several concurrency levels."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--models", metavar="DIR", help="a folder holding forward/ and reverse/ model dirs"
    )
    where.add_argument(
        "--tiny", action="store_true", help="random tiny models built on the spot (a smoke run)"
    )
    parser.add_argument("--forward", metavar="DIR", help="forward model dir (overrides --models)")
    parser.add_argument("--reverse", metavar="DIR", help="reverse model dir (overrides --models)")
    parser.add_argument("--scorer", metavar="DIR", help="also score every verse (rap scorer dir)")
    parser.add_argument("--requests", type=int, default=32, help="requests per run (default 32)")
    parser.add_argument("--bars", type=int, default=8, help="bars per verse (default 8)")
    parser.add_argument(
        "--concurrency",
        type=_concurrencies,
        default=[1, 4, 8, 16],
        metavar="N,N,...",
        help="concurrent callers of the service (default 1,4,8,16)",
    )
    parser.add_argument("--max-batch", type=int, default=16, help="the service's largest batch")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate naive and service runs this many times (default 2); figures combine them",
    )
    parser.add_argument(
        "--with-finetune",
        action="store_true",
        help="also run the service while a low-priority fine-tune child trains",
    )
    parser.add_argument(
        "--finetune-data",
        nargs="+",
        default=[],
        metavar="PATH",
        help="lyrics for that child (default: the verses the naive run wrote)",
    )
    parser.add_argument(
        "--finetune-concurrency", type=int, default=8, help="callers during the fine-tune run"
    )
    parser.add_argument(
        "--lag-interval-ms",
        type=float,
        default=20.0,
        help="how often the loop-lag probe wakes (default 20; 5 costs the worker 15-25 %%)",
    )
    parser.add_argument(
        "--dtype",
        choices=("fp32", "bf16"),
        default="fp32",
        help="generator weights (default fp32; bf16 is faster per step on AMX CPUs)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rgpt2.errors import CommandError

    if args.requests < 1:
        raise CommandError("--requests must be at least 1")
    if not 4 <= args.bars <= 32:
        raise CommandError("--bars must be between 4 and 32")
    if args.max_batch < 1:
        raise CommandError("--max-batch must be at least 1")
    if args.rounds < 1:
        raise CommandError("--rounds must be at least 1")
    if not 1 <= args.lag_interval_ms <= 1000:
        raise CommandError("--lag-interval-ms must be between 1 and 1000")
    forward = args.forward or (str(Path(args.models) / "forward") if args.models else None)
    reverse = args.reverse or (str(Path(args.models) / "reverse") if args.models else None)
    if not args.tiny and not (forward and reverse):
        raise CommandError("say which models: --models DIR (with forward/ and reverse/) or --tiny")

    import torch

    from rgpt2.bench import build_tiny_models, format_table, run_all
    from rgpt2.generate import Generator

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="rgpt2-bench-") as tmp:
        if args.tiny:
            from rgpt2.bench import TINY_CORPUS

            forward, reverse = map(str, build_tiny_models(tmp, TINY_CORPUS))
        scorer = None
        if args.scorer:
            from rgpt2.scorer import RapScorer

            scorer = RapScorer.load(args.scorer)
        say(f"loading {forward} and {reverse}")
        generator = Generator.load(forward, reverse, scorer=scorer, dtype=args.dtype)
        result = run_all(
            generator,
            requests=args.requests,
            bars=args.bars,
            concurrencies=args.concurrency,
            max_batch=args.max_batch,
            rounds=args.rounds,
            lag_interval=args.lag_interval_ms / 1000,
            finetune_from=reverse if args.with_finetune else None,
            finetune_data=args.finetune_data,
            finetune_concurrency=args.finetune_concurrency,
            progress=say,
        )
    result["models"] = (
        {"forward": "tiny", "reverse": "tiny"}
        if args.tiny
        else {"forward": forward, "reverse": reverse}
    )
    result["torch_threads"] = torch.get_num_threads()
    result["dtype"] = args.dtype
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0

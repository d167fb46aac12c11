"""``rgpt2 eval``: generate N verses and measure them next to human verses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from typing import Any

from rgpt2.commands.rap import (
    add_model_options,
    add_rhyme_tuning,
    add_sampling_options,
    build_requests,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="generate verses and print their metrics (and a human baseline's) as JSON",
        description="Generate --count verses and print JSON: rhyme density (Raplyzer), end-rhyme "
        "rates, distinct-1/2, share of verses with a bar 3+ times, share of 5+-word bars copied "
        "verbatim from --corpus, mean rap score; the same metrics for a sample of --human verses "
        "cut to --bars bars.",
    )
    p.add_argument("--count", type=int, default=64, help="verses to generate (default 64)")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=0, help="verse i gets seed+i (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="verses per generation batch")
    p.add_argument("--human", nargs="+", metavar="PATH", help="lyrics files/folders to compare")
    p.add_argument(
        "--corpus", nargs="+", metavar="PATH", help="training lyrics, to count copied bars"
    )
    p.add_argument("--samples", type=int, default=3, help="generated verses shown in the JSON")
    p.add_argument(
        "--compare-rhyme-control",
        action="store_true",
        help="also generate the same requests without rhyme control ('generated_free')",
    )
    add_model_options(p)
    add_rhyme_tuning(p)
    p.set_defaults(func=run)


def human_sample(paths: list[str], count: int, bars: int, seed: int) -> list[list[str]]:
    """``count`` human verses with at least ``bars`` bars, cut to ``bars`` (seeded sample)."""
    from rgpt2.corpus import read_verses

    verses = [v[:bars] for v in read_verses(paths) if len(v) >= bars]
    rng = random.Random(seed)
    return rng.sample(verses, min(count, len(verses)))


def run(args: argparse.Namespace) -> int:
    from rgpt2.commands.rap import load_generator
    from rgpt2.errors import CommandError
    from rgpt2.metrics import corpus_bar_set, summarize

    if not 1 <= args.count <= 10_000:
        raise CommandError(f"--count must be between 1 and 10000, not {args.count}")
    if not 1 <= args.batch_size <= 64:
        raise CommandError(f"--batch-size must be between 1 and 64, not {args.batch_size}")
    requests = build_requests(args, args.count, args.seed)
    corpus_bars = None
    if args.corpus:
        from rgpt2.corpus import read_verses

        corpus_bars = corpus_bar_set(read_verses(args.corpus))
    generator = load_generator(args)

    def run_batches(batch: list[Any]) -> tuple[list[Any], float]:
        out: list[Any] = []
        start = time.perf_counter()
        for i in range(0, len(batch), args.batch_size):
            out += generator.generate(batch[i : i + args.batch_size])
        return out, time.perf_counter() - start

    def measure(verses: list[Any]) -> dict[str, Any]:
        return summarize(
            [v.bars for v in verses],
            requests[0].scheme,
            corpus_bars=corpus_bars,
            scores=[v.rap_score for v in verses] if generator.scorer is not None else None,
        )

    verses, seconds = run_batches(requests)
    report: dict[str, Any] = {
        "settings": {
            "count": args.count,
            "bars": args.bars,
            "scheme": requests[0].scheme,
            "rhyme_control": not args.no_rhyme_control,
            "rhyme_mode": args.rhyme_mode,
            "rhyme_word_tokens": args.rhyme_word_tokens,
            "rhyme_bias": args.rhyme_bias if args.rhyme_mode == "bias" else None,
            "multi_rhyme_bias": args.multi_rhyme_bias,
            "multi_rhyme_words": args.multi_rhyme_words,
            "sampling": {k: v for k, v in requests[0].sampling().items() if k != "topic"},
            "model_versions": generator.model_versions,
            "scorer": getattr(generator.scorer, "version", None),
        },
        "generated": measure(verses),
        "seconds": round(seconds, 2),
        "verses_per_second": round(len(verses) / seconds, 3) if seconds else None,
    }
    if args.compare_rhyme_control:
        free = [dataclasses.replace(r, rhyme_control=False) for r in requests]
        report["generated_free"] = measure(run_batches(free)[0])
    if args.human:
        human = human_sample(args.human, args.count, args.bars, args.seed)
        human_scores = None
        if generator.scorer is not None and human:
            human_scores = generator.scorer.score(["\n".join(v) for v in human])
        # human verses are read from the corpus: their copy share says nothing
        report["human"] = summarize(human, requests[0].scheme, scores=human_scores)
    report["samples"] = [v.bars for v in verses[: max(0, args.samples)]]
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0

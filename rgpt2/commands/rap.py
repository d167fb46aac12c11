"""``rgpt2 rap``: write verses with the two-stage generator, as text or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rgpt2.starter import shipped_model
from rgpt2.verse import (
    DEFAULT_BARS,
    MAX_BARS,
    MIN_BARS,
    MULTI_RHYME_BIAS,
    MULTI_RHYME_WORDS,
    SCHEMES,
    RapRequest,
)

MAX_COUNT = 64
_DEFAULTS = RapRequest()


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--forward", metavar="DIR", help="forward model dir (default: rgpt2/models/forward)"
    )
    p.add_argument(
        "--reverse", metavar="DIR", help="reverse model dir (default: rgpt2/models/reverse)"
    )
    p.add_argument(
        "--scorer",
        metavar="DIR|none",
        help="rap scorer dir, or 'none' (default: rgpt2/models/scorer when it is there)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="model precision; bf16 is ~1.7x faster on CPUs with AMX/AVX-512 bf16",
    )
    p.add_argument(
        "--rhyme-mode",
        choices=["restrict", "bias"],
        default="restrict",
        help="restrict a bar's rhyme word to rhyming words, or only bias toward them",
    )


def add_rhyme_tuning(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rhyme-word-tokens",
        type=int,
        default=4,
        help="longest spelling (tokens) of a rhyming word the constraint offers (default 4)",
    )
    p.add_argument("--rhyme-bias", type=float, default=5.0, help="logit bonus of --rhyme-mode bias")
    p.add_argument(
        "--multi-rhyme-bias",
        type=float,
        default=MULTI_RHYME_BIAS,
        help="logit bonus for words before a rhyme word that carry the rhyme on, 0 = off "
        "(default %(default)s)",
    )
    p.add_argument(
        "--multi-rhyme-words",
        type=int,
        default=MULTI_RHYME_WORDS,
        help="how many words before a rhyme word get that bonus (default %(default)s)",
    )


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bars",
        type=int,
        default=DEFAULT_BARS,
        help=f"bars per verse, {MIN_BARS}-{MAX_BARS} (default {DEFAULT_BARS})",
    )
    p.add_argument(
        "--scheme",
        default="AABB",
        help=f"rhyme scheme: {', '.join(SCHEMES)} (default AABB)",
    )
    p.add_argument("--no-rhyme-control", action="store_true", help="do not enforce the scheme")
    p.add_argument(
        "--temperature",
        type=float,
        default=_DEFAULTS.temperature,
        help="0.1-2.0 (default %(default)s)",
    )
    p.add_argument(
        "--top-k", type=int, default=_DEFAULTS.top_k, help="0 turns it off (default %(default)s)"
    )
    p.add_argument(
        "--top-p", type=float, default=_DEFAULTS.top_p, help="nucleus (default %(default)s)"
    )
    p.add_argument(
        "--min-p",
        type=float,
        default=_DEFAULTS.min_p,
        help="drop tokens below this share of the best one's probability, 0 = off "
        "(default %(default)s)",
    )
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=_DEFAULTS.repetition_penalty,
        help="1.0-3.0 (default %(default)s)",
    )
    p.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=_DEFAULTS.no_repeat_ngram_size,
        help="no token n-gram twice in a verse; 0 turns it off (default %(default)s)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rap",
        help="write rap verses (forward model for bar 1, reverse model for the rest)",
        description="Write rap verses: the forward model writes bar 1 (continuing --topic), the "
        "reverse model writes the other bars from their rhyme word backwards, held to "
        "--scheme. --count verses are generated as one batch.",
    )
    p.add_argument("--topic", default=None, help="opening words of the first bar")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=None, help="verse i gets seed+i (reproducible)")
    p.add_argument("--count", type=int, default=1, help=f"verses, 1-{MAX_COUNT} (default 1)")
    p.add_argument("--format", choices=["text", "jsonl"], default="text")
    add_model_options(p)
    add_rhyme_tuning(p)
    p.set_defaults(func=run)


def build_requests(args: argparse.Namespace, count: int, seed: int | None) -> list[RapRequest]:
    """Validated requests from the options (InvalidRequest says what is wrong)."""
    base = RapRequest(
        topic=getattr(args, "topic", None),
        bars=args.bars,
        scheme=args.scheme,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        seed=seed,
        rhyme_control=not args.no_rhyme_control,
    ).validated()
    return [
        RapRequest(**{**base.__dict__, "seed": None if seed is None else seed + i})
        for i in range(count)
    ]


def _model_dir(given: str | None, name: str) -> Path:
    from rgpt2.errors import CommandError

    if given:
        return Path(given)
    path = shipped_model(name)
    if not (path / "config.json").is_file():
        raise CommandError(
            f"no {name} model: none is shipped in {path}. Train one "
            f"(`rgpt2 train --direction {name} --data PATH --out DIR --from-scratch`) and pass "
            f"--{name} DIR"
        )
    return path


def load_scorer(given: str | None, device: str) -> Any:
    """The rap scorer named by --scorer (None for 'none' or when none is shipped)."""
    if given is not None and given.strip().lower() == "none":
        return None
    from rgpt2.scorer import RapScorer

    if given is None:
        path = shipped_model("scorer")
        if not (path / "config.json").is_file():
            return None
        return RapScorer.load(path, device=device)
    return RapScorer.load(given, device=device)


def check_generator_options(args: argparse.Namespace) -> None:
    """CommandError for generator options out of range (before any model is loaded)."""
    from rgpt2.errors import CommandError

    bias = getattr(args, "multi_rhyme_bias", MULTI_RHYME_BIAS)
    words = getattr(args, "multi_rhyme_words", MULTI_RHYME_WORDS)
    if not 0 <= bias <= 20:
        raise CommandError(f"--multi-rhyme-bias must be between 0 (off) and 20, not {bias}")
    if not 0 <= words <= 10:
        raise CommandError(f"--multi-rhyme-words must be between 0 and 10, not {words}")
    if getattr(args, "rhyme_word_tokens", 4) < 1:
        raise CommandError(f"--rhyme-word-tokens must be at least 1, not {args.rhyme_word_tokens}")
    if getattr(args, "rhyme_mode", "restrict") == "bias" and not args.rhyme_bias > 0:
        raise CommandError(f"--rhyme-bias must be positive, not {args.rhyme_bias}")


def load_generator(args: argparse.Namespace) -> Any:
    import torch

    from rgpt2.generate import Generator

    check_generator_options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    forward = _model_dir(args.forward, "forward")
    reverse = _model_dir(args.reverse, "reverse")
    scorer = load_scorer(args.scorer, args.device)
    return Generator.load(
        forward,
        reverse,
        device=args.device,
        scorer=scorer,
        rhyme_mode=args.rhyme_mode,
        dtype=args.dtype,
        rhyme_word_tokens=getattr(args, "rhyme_word_tokens", 4),
        rhyme_bias=getattr(args, "rhyme_bias", 5.0),
        multi_rhyme_bias=getattr(args, "multi_rhyme_bias", MULTI_RHYME_BIAS),
        multi_rhyme_words=getattr(args, "multi_rhyme_words", MULTI_RHYME_WORDS),
    )


def verse_line(verse: Any) -> dict[str, Any]:
    """The JSONL record of a verse."""
    return {
        "text": verse.text,
        "bars": verse.bars,
        "topic": verse.topic,
        "scheme": verse.scheme,
        "seed": verse.seed,
        "rhyme_density": round(verse.rhyme_density, 4),
        "end_rhyme": round(verse.end_rhyme, 4),
        "rap_score": None if verse.rap_score is None else round(verse.rap_score, 4),
        "model_versions": verse.model_versions,
        "sampling": verse.sampling,
    }


def run(args: argparse.Namespace) -> int:
    from rgpt2.errors import CommandError

    if not 1 <= args.count <= MAX_COUNT:
        raise CommandError(f"--count must be between 1 and {MAX_COUNT}, not {args.count}")
    if args.topic is not None and not args.topic.strip():
        raise CommandError("--topic is empty: give some words, or leave --topic out")
    requests = build_requests(args, args.count, args.seed)  # bad options fail before loading
    generator = load_generator(args)
    verses = generator.generate(requests)
    out = sys.stdout
    for i, verse in enumerate(verses):
        if args.format == "jsonl":
            out.write(json.dumps(verse_line(verse), ensure_ascii=False) + "\n")
            continue
        if i:
            out.write("\n")
        score = "n/a" if verse.rap_score is None else f"{verse.rap_score:.2f}"
        out.write(verse.text + "\n")
        out.write(
            f"# seed {verse.seed} · {verse.scheme} · end rhyme {verse.end_rhyme:.2f} · "
            f"rhyme density {verse.rhyme_density:.2f} · rap score {score}\n"
        )
    out.flush()
    return 0

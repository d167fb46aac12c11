"""``rgpt2 score``: the rap score (P(rap) from the BERT classifier) of a text or a JSONL file."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="rap score (probability of rap) of a text, or of every object in a JSONL file",
        description="Prints P(rap) of TEXT (bars separated by newlines or ' / '), or, with "
        '--jsonl, reads one JSON object per line with a "text" field and writes the same '
        'objects with "rap_score" added. --bench prints scoring throughput instead.',
    )
    p.add_argument("text", nargs="?", help="the text to score ('-' reads it from stdin)")
    p.add_argument("--jsonl", metavar="FILE", help='JSON lines with a "text" field (- for stdin)')
    p.add_argument("--out", metavar="FILE", help="write the JSONL here instead of stdout")
    p.add_argument(
        "--model",
        default=None,
        help="scorer directory or hub id (default $RGPT2_SCORER_MODEL or the packaged starter)",
    )
    p.add_argument("--lines", action="store_true", help="average per-bar scores instead")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on recent CPUs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--bench", action="store_true", help="print verses/s at batch 1 and at --batch-size"
    )
    p.add_argument("--bench-verses", type=int, default=64, help="verses per --bench pass")
    p.set_defaults(func=run)


def _split_bars(text: str) -> str:
    # "a / b / c" on the command line means three bars, like a newline-separated verse
    return "\n".join(part.strip() for part in text.replace(" / ", "\n").splitlines())


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from rgpt2.errors import CommandError
    from rgpt2.scorer import RapScorer, default_model

    modes = sum(bool(x) for x in (args.text is not None, args.jsonl, args.bench))
    if modes != 1:
        raise CommandError("give exactly one of TEXT, --jsonl FILE or --bench")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be >= 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scorer = RapScorer.load(
        args.model or default_model(), args.device, batch_size=args.batch_size, bf16=args.bf16
    )
    score = scorer.score_lines if args.lines else scorer.score

    if args.bench:
        for line in bench(scorer, args.bench_verses, args.batch_size):
            print(line)
        return 0
    if args.text is not None:
        text = sys.stdin.read() if args.text == "-" else _split_bars(args.text)
        print(f"{score([text])[0]:.4f}")
        return 0

    try:
        src = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {args.jsonl}: {exc.strerror}") from exc
    with src:
        records = []
        for n, raw in enumerate(src, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{args.jsonl}:{n}: not JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise CommandError(f'{args.jsonl}:{n}: expected an object with a "text" string')
            records.append(obj)
    scores = score([r["text"] for r in records])
    lines = [
        json.dumps(r | {"rap_score": round(s, 6)}, ensure_ascii=False)
        for r, s in zip(records, scores, strict=True)
    ]
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
    else:
        for line in lines:
            print(line)
    return 0


def bench(scorer: object, n_verses: int, batch_size: int) -> list[str]:
    """Throughput lines for synthetic 16-bar verses, at batch 1 and at ``batch_size``."""
    import random
    import time

    import torch

    from rgpt2.scorer import RapScorer

    assert isinstance(scorer, RapScorer)
    words = (
        "i got the money on my mind and the city in my heart we came up from the street "
        "never had enough to eat now they know my name every bar is a flame love tonight "
        "baby dance forever under the stars"
    ).split()
    rng = random.Random(0)
    verses = [
        "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(7, 11))) for _ in range(16))
        for _ in range(max(1, n_verses))
    ]
    scorer.score(verses[:2])  # warm-up: first calls allocate
    out = [
        f"model {scorer.version} | max_length {scorer.max_length} | bf16 {scorer.bf16} | "
        f"torch threads {torch.get_num_threads()} | {len(verses)} verses of 16 bars"
    ]
    for bs in sorted({1, batch_size}):
        old = scorer.batch_size
        scorer.batch_size = bs
        start = time.perf_counter()
        for i in range(0, len(verses), bs):
            scorer.score(verses[i : i + bs])
        elapsed = time.perf_counter() - start
        scorer.batch_size = old
        out.append(
            f"batch {bs:>3}: {len(verses) / elapsed:8.1f} verses/s  "
            f"({1000 * elapsed / len(verses):.1f} ms/verse)"
        )
    return out

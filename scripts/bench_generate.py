"""Time the two-stage generator: a batch of N requests of B bars, on given or random models.

    python scripts/bench_generate.py                       # random ~10M-param models
    python scripts/bench_generate.py --forward F --reverse R --batch 8 --bars 16

Random models need a tokenizer: --tokenizer DIR (any rgpt2 tokenizer), else one is trained on
made-up lines. Prints one JSON object per run (seconds, steps, ms/step, verses/s).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forward")
    parser.add_argument("--reverse")
    parser.add_argument("--tokenizer", help="tokenizer dir for random models")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rhyme-mode", default="restrict", choices=["restrict", "bias"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()

    import torch

    from rgpt2.generate import Generator, LoadedModel
    from rgpt2.verse import RapRequest

    torch.set_num_threads(args.threads)
    if args.forward and args.reverse:
        gen = Generator.load(
            args.forward, args.reverse, rhyme_mode=args.rhyme_mode, dtype=args.dtype
        )
    else:
        from transformers import GPT2Config, GPT2LMHeadModel

        from rgpt2.tokenizer import load_tokenizer, train_tokenizer

        if args.tokenizer:
            tok = load_tokenizer(args.tokenizer)
        else:
            words = "night light fight right money honey street beat feet road home phone".split()
            lines = [
                " ".join(words[(i * 7 + j) % len(words)] for j in range(6)) for i in range(300)
            ]
            tok = train_tokenizer(lines, vocab_size=2000, min_frequency=1)
        torch.manual_seed(0)

        def model() -> GPT2LMHeadModel:
            config = GPT2Config(
                vocab_size=len(tok),
                n_positions=512,
                n_layer=args.layers,
                n_embd=args.width,
                n_head=max(1, args.width // 64),
            )
            return GPT2LMHeadModel(config).eval()

        gen = Generator(
            LoadedModel(model(), tok, "random-f"),
            LoadedModel(model(), tok, "random-r", direction="reverse"),
            rhyme_mode=args.rhyme_mode,
            dtype=args.dtype,
        )
        params = sum(p.numel() for p in gen.forward.model.parameters())
        print(json.dumps({"random_model_params": params, "vocab": len(tok)}))
    requests = [RapRequest(bars=args.bars, seed=i).validated() for i in range(args.batch)]
    gen.generate(requests[:1])  # warm-up: rhyme index, masks
    for run in range(args.runs):
        t = time.perf_counter()
        verses = gen.generate(
            [r.__class__(**{**r.__dict__, "seed": r.seed + 100 * run}) for r in requests]
        )
        dt = time.perf_counter() - t
        s = gen.last_stats
        print(
            json.dumps(
                {
                    "batch": args.batch,
                    "bars": args.bars,
                    "seconds": round(dt, 3),
                    "steps": s.steps,
                    "ms_per_step": round(1000 * dt / max(1, s.steps), 2),
                    "prefills": s.prefills,
                    "model_seconds": round(s.model_seconds, 3),
                    "resampled_bars": s.resampled_bars,
                    "verses_per_s": round(len(verses) / dt, 2),
                }
            )
        )


if __name__ == "__main__":
    main()

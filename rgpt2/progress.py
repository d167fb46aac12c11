"""Training progress for people and for programs.

:class:`ProgressReporter` drives a tqdm bar (tokens/s, loss, ETA) when stderr is a terminal and
appends one JSON object per event to a JSONL file that a parent process can follow (the bot's
fine-tune jobs tail it)::

    {"event": "step",  "step": 120, "total_steps": 900, "epoch": 1, "loss": 3.91,
     "tokens_per_s": 5120.4, "eta_s": 431.0, "elapsed_s": 66.2, "time": 1763770000.0, ...}
    {"event": "epoch", "step": 300, "epoch": 1, "val_loss": 3.72, "val_ppl": 41.3, ...}
    {"event": "done",  "out_dir": "...", "best_val_ppl": 38.9, ...}
    {"event": "error", "message": "...", ...}

Every line carries ``event``, ``step``, ``total_steps``, ``epoch``, ``loss``, ``val_loss``,
``val_ppl``, ``tokens_per_s`` and ``eta_s`` (null when unknown), plus whatever extra fields the
caller passes. :func:`plot_curve` draws the loss and perplexity curves of those events.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

STEP, EPOCH, DONE, ERROR = "step", "epoch", "done", "error"
_COMMON = ("step", "total_steps", "epoch", "loss", "val_loss", "val_ppl", "tokens_per_s", "eta_s")


def perplexity(loss: float | None) -> float | None:
    """exp(loss), capped so a diverged run reports a large number rather than overflowing."""
    if loss is None or math.isnan(loss):
        return None
    return math.exp(min(loss, 50.0))


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: a diverged loss is written as null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ProgressReporter:
    """Progress bar + JSONL events of one run of ``total_steps`` optimiser steps.

    ``initial_step`` is where a resumed run starts (the bar and ETA count from there).
    ``bar``: True/False forces the terminal bar on/off; None shows it when stderr is a TTY.
    Speed (tokens/s, ETA) is measured over the last ``window`` steps so that a slow first
    step or an evaluation pause does not distort it for long. ``time_budget_s`` (seconds left
    before the run stops on its own) caps the ETA.
    """

    def __init__(
        self,
        total_steps: int,
        jsonl_path: str | Path | None = None,
        *,
        initial_step: int = 0,
        desc: str = "train",
        bar: bool | None = None,
        window: int = 20,
        stream: TextIO | None = None,
        time_budget_s: float | None = None,
    ) -> None:
        self.total_steps = int(total_steps)
        self.time_budget_s = time_budget_s
        self.history: list[dict[str, Any]] = []
        self._start = time.monotonic()
        self._marks: deque[tuple[float, int, int]] = deque(maxlen=window + 1)
        self._marks.append((self._start, initial_step, 0))
        self._tokens = 0
        self._epoch: int | None = None
        self._last_loss: float | None = None
        self._file: TextIO | None = None
        if jsonl_path is not None:
            Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(jsonl_path, "a", encoding="utf-8")  # closed in close()
        stream = stream or sys.stderr
        show = stream.isatty() if bar is None else bar
        self._bar = None
        if show:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total_steps,
                initial=initial_step,
                desc=desc,
                unit="step",
                file=stream,
                dynamic_ncols=True,
                leave=True,
            )

    # --- speed -------------------------------------------------------------------------
    def _speed(self, step: int) -> tuple[float | None, float | None]:
        t0, s0, k0 = self._marks[0]
        t1, _, k1 = self._marks[-1]
        dt = t1 - t0
        if dt <= 0 or step <= s0:
            return None, None
        tokens_per_s = (k1 - k0) / dt if k1 > k0 else None
        eta = max(self.total_steps - step, 0) * dt / (step - s0)
        if self.time_budget_s is not None:
            eta = min(eta, max(0.0, self.time_budget_s - (t1 - self._start)))
        return tokens_per_s, eta

    # --- events --------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one event (with the common keys filled in) and write it to the JSONL file."""
        record: dict[str, Any] = {"event": event}
        record.update(dict.fromkeys(_COMMON))
        record["total_steps"] = self.total_steps
        record["epoch"] = self._epoch
        record.update({k: _clean(v) for k, v in fields.items()})
        record["elapsed_s"] = round(time.monotonic() - self._start, 3)
        record["time"] = round(time.time(), 3)
        self.history.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()  # the reader is another process, following line by line
        return record

    def step(
        self,
        step: int,
        *,
        loss: float | None,
        tokens: int = 0,
        epoch: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Optimiser step ``step`` (1-based, global) is done; ``tokens`` trained in it."""
        if epoch is not None:
            self._epoch = epoch
        self._tokens += tokens
        self._marks.append((time.monotonic(), step, self._tokens))
        tokens_per_s, eta = self._speed(step)
        self._last_loss = loss
        if "val_loss" in extra and "val_ppl" not in extra:
            extra["val_ppl"] = perplexity(extra["val_loss"])
        record = self.emit(
            STEP,
            step=step,
            loss=loss,
            tokens_per_s=None if tokens_per_s is None else round(tokens_per_s, 1),
            eta_s=None if eta is None else round(eta, 1),
            **extra,
        )
        if self._bar is not None:
            self._bar.n = step
            post = {}
            if loss is not None:
                post["loss"] = f"{loss:.3f}"
            if tokens_per_s is not None:
                post["tok/s"] = f"{tokens_per_s:,.0f}"
            if epoch is not None:
                post["epoch"] = epoch
            self._bar.set_postfix(post, refresh=False)
            self._bar.refresh()
        return record

    def epoch(
        self,
        epoch: int,
        *,
        step: int,
        val_loss: float | None = None,
        val_ppl: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Epoch ``epoch`` (1-based) ended at global step ``step``, with its validation."""
        self._epoch = epoch
        if val_ppl is None:
            val_ppl = perplexity(val_loss)
        tokens_per_s, eta = self._speed(step)
        extra.setdefault("loss", self._last_loss)
        record = self.emit(
            EPOCH,
            step=step,
            val_loss=val_loss,
            val_ppl=val_ppl,
            tokens_per_s=None if tokens_per_s is None else round(tokens_per_s, 1),
            eta_s=None if eta is None else round(eta, 1),
            **extra,
        )
        if self._bar is not None and val_ppl is not None:
            self._bar.write(
                f"epoch {epoch}: val loss {val_loss:.4f}, val ppl {val_ppl:.2f} (step {step})"
            )
        return record

    def done(self, **extra: Any) -> dict[str, Any]:
        """The run finished; ``extra`` should name ``out_dir`` and ``best_val_ppl``."""
        return self.emit(DONE, **extra)

    def error(self, message: str, **extra: Any) -> dict[str, Any]:
        """The run failed with ``message`` (shown to a person as is)."""
        return self.emit(ERROR, message=message, **extra)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The events of a progress file (a half-written last line is skipped)."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def plot_curve(
    history: Iterable[Mapping[str, Any]], png_path: str | Path, title: str | None = None
) -> Path | None:
    """Save training loss, validation loss and validation perplexity against steps as a PNG.

    ``history`` is a list of progress events (:attr:`ProgressReporter.history` or
    :func:`read_jsonl`). Returns the path, or None when there is nothing to draw.
    """
    history = list(history)
    train = [(e["step"], e["loss"]) for e in history if e.get("event") == STEP and e.get("loss")]
    val = [
        (e["step"], e["val_loss"], e.get("val_ppl") or perplexity(e["val_loss"]))
        for e in history
        if e.get("event") in (STEP, EPOCH) and e.get("val_loss") is not None
    ]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in a worker process
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ppl) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        xs, ys = zip(*train, strict=True)
        ax_loss.plot(xs, ys, lw=0.8, alpha=0.7, label="train loss")
    if val:
        xs, vl, vp = zip(*sorted(set(val)), strict=True)
        ax_loss.plot(xs, vl, "o-", label="val loss")
        ax_ppl.plot(xs, vp, "o-", color="C1")
    ax_loss.set(xlabel="step", ylabel="loss (nats/token)")
    ax_loss.legend()
    ax_ppl.set(xlabel="step", ylabel="validation perplexity")
    for ax in (ax_loss, ax_ppl):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def summarize(events: Sequence[Mapping[str, Any]]) -> str:
    """A table of the epochs (val loss/ppl, tokens/s) and the end of a progress file."""
    steps = [e for e in events if e.get("event") == STEP and e.get("tokens_per_s")]
    lines = [f"{'epoch':>5} {'step':>7} {'train loss':>10} {'val loss':>9} {'val ppl':>9} "
             f"{'tok/s':>8} {'minutes':>8}"]  # fmt: skip
    for e in events:
        if e.get("event") != EPOCH:
            continue
        lines.append(
            f"{e['epoch']:>5} {e['step']:>7} {_fmt(e.get('loss'), 4):>10} "
            f"{_fmt(e.get('val_loss'), 4):>9} {_fmt(e.get('val_ppl'), 2):>9} "
            f"{_fmt(e.get('tokens_per_s'), 0):>8} {_fmt(e['elapsed_s'] / 60, 1):>8}"
        )
    if steps:
        speeds = sorted(e["tokens_per_s"] for e in steps)
        lines.append(
            f"tokens/s over {len(steps)} steps: median {speeds[len(speeds) // 2]:,.0f}, "
            f"min {speeds[0]:,.0f}, max {speeds[-1]:,.0f}"
        )
    for e in events:
        if e.get("event") in (DONE, ERROR):
            detail = {
                k: v for k, v in e.items() if k not in (*_COMMON, "event", "time") and v is not None
            }
            lines.append(f"{e['event']}: {json.dumps(detail)}")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":  # python -m rgpt2.progress FILE.jsonl
    for arg in sys.argv[1:]:
        print(f"== {arg}")
        print(summarize(read_jsonl(arg)))

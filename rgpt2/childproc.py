"""Running ``python -m rgpt2 ...`` as a low-priority child process and following its progress.

Fine-tuning (and the model comparison after it) runs in a separate process so that it
cannot block the event loop or hold the GIL the generation worker needs: the child gets a
lower CPU priority (``nice``) and one torch thread, and reports progress as JSON lines in
a file that the parent tails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_NICE = 10


def child_env(threads: int = 1) -> dict[str, str]:
    """The environment for a child: few threads, no hub access, unbuffered output."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def rgpt2_argv(args: Sequence[str], *, nice: int = DEFAULT_NICE) -> list[str]:
    """``[nice -n N] python -m rgpt2 *args`` for this interpreter.

    ``nice`` (rather than a ``preexec_fn``, which is unsafe once the parent has threads)
    lowers the priority of the whole child, every thread it later starts included.
    """
    argv = [sys.executable, "-m", "rgpt2", *args]
    nice_bin = shutil.which("nice")
    if nice > 0 and nice_bin:
        argv = [nice_bin, "-n", str(nice), *argv]
    return argv


async def spawn_rgpt2(
    args: Sequence[str],
    *,
    nice: int = DEFAULT_NICE,
    threads: int = 1,
    log_file: str | Path | None = None,
) -> asyncio.subprocess.Process:
    """Start ``rgpt2 *args`` as a child; stdout and stderr go to ``log_file`` (or are dropped)."""
    out = open(log_file, "ab") if log_file is not None else None
    try:
        return await asyncio.create_subprocess_exec(
            *rgpt2_argv(args, nice=nice),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out if out is not None else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT if out is not None else asyncio.subprocess.DEVNULL,
            env=child_env(threads),
            # its own process group: a Ctrl-C in the bot's terminal is the bot's to handle
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()  # the child holds its own copy of the descriptor


async def terminate(proc: asyncio.subprocess.Process, grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return await proc.wait()


async def follow_jsonl(
    path: str | Path, proc: asyncio.subprocess.Process, poll: float = 0.25
) -> AsyncIterator[dict[str, Any]]:
    """Yield each JSON object appended to ``path`` until ``proc`` exits (then the rest).

    File reads are small and non-blocking enough for the loop; a partial last line is kept
    until its newline arrives, and lines that are not JSON objects are skipped.
    """
    p = Path(path)
    offset = 0
    buffer = b""
    waiter = asyncio.ensure_future(proc.wait())
    while True:
        exited = waiter.done()
        if p.exists():
            with p.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    yield item
        if exited:
            return
        await asyncio.wait({waiter}, timeout=poll)


def tail(path: str | Path, lines: int = 5, max_chars: int = 600) -> str:
    """The last lines of a log file, for an error message."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)[-max_chars:]


def train_args(
    *,
    init_from: str | Path,
    data: Sequence[str | Path],
    out: str | Path,
    progress: str | Path,
    epochs: int,
    replay: Sequence[str | Path] = (),
    threads: int = 1,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``rgpt2 train`` arguments of a reverse-model fine-tune (shared by jobs and bench)."""
    args = ["train", "--direction", "reverse", "--init-from", str(init_from)]
    args += ["--data", *map(str, data)]
    if replay:
        args += ["--replay", *map(str, replay)]
    args += ["--out", str(out), "--progress-jsonl", str(progress)]
    args += ["--epochs", str(epochs), "--threads", str(threads), *extra]
    return args

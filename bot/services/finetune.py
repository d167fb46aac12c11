"""Fine-tune jobs: retrain the reverse model on contributed lyrics, swap it in only if better.

A job runs ``python -m rgpt2 train --direction reverse --init-from <serving reverse model>``
as a low-priority child *process* (one torch thread, ``nice``), so the bot's event loop and
the generation worker keep their CPU. The parent follows the child's JSON-lines progress into
the jobs table and to progress listeners (the bot edits a progress message with them).

When training ends, the new model is moved into the :class:`ModelStore` as a new version and
measured against the serving one by ``rgpt2 compare-models`` (another child): held-out
perplexity on the same verses, plus rhyme figures. It goes live (``service.swap``) only if
its perplexity is lower; the old version stays in the store for :meth:`FinetuneJobs.rollback`.
A child that crashes or is killed fails the job and leaves the serving model untouched.

Plain Python: no discord imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.services.model_store import ModelStore
from bot.storage.records import FinetuneJob, LyricsSubmission
from bot.storage.repo import ANY_GUILD, Repository
from rgpt2.childproc import (
    DEFAULT_NICE,
    follow_jsonl,
    rgpt2_argv,
    spawn_rgpt2,
    tail,
    terminate,
    train_args,
)
from rgpt2.errors import RGPT2Error
from rgpt2.worker import GenerationService

log = logging.getLogger(__name__)

MAX_EPOCHS = 20
# share of the job's progress bar taken by training; the comparison takes the rest
TRAIN_SHARE = 0.9

Listener = Callable[[FinetuneJob], Awaitable[None] | None]


class FinetuneError(RGPT2Error):
    """A fine-tune job cannot start or be controlled (message for the admin)."""


@dataclass(frozen=True)
class FinetuneSettings:
    """Where jobs work and what they train with.

    ``replay``: the original corpus, mixed into training so the model does not forget it.
    ``heldout``: verses neither model trained on, for the comparison (with a held-out slice
    of the contributed lyrics when there are at least ``min_verses_to_hold_out`` verses;
    when there is neither, a sample of ``replay``; with none of these, no comparison and
    the serving model stays).
    """

    work_dir: Path
    replay: Sequence[Path] = ()
    heldout: Sequence[Path] = ()
    replay_fraction: float | None = None  # None: rgpt2 train's default
    nice: int = DEFAULT_NICE
    threads: int = 1
    min_gain: float = 0.0
    rhyme_verses: int = 8
    max_minutes: float | None = None
    min_verses_to_hold_out: int = 5
    extra_train_args: Sequence[str] = field(default_factory=tuple)
    progress_interval: float = 2.0  # seconds between progress writes/notifications


class FinetuneJobs:
    """Starts, follows, cancels and rolls back fine-tune jobs (one at a time)."""

    def __init__(
        self,
        repo: Repository,
        service: GenerationService,
        store: ModelStore,
        settings: FinetuneSettings,
    ) -> None:
        self.repo = repo
        self.service = service
        self.store = store
        self.settings = settings
        self._task: asyncio.Task[FinetuneJob] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._cancelled = False
        self._listeners: list[Listener] = []

    # -- public API --------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job)`` (sync or async) on progress and when a job ends."""
        self._listeners.append(listener)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def recover(self) -> list[FinetuneJob]:
        """At start-up: jobs left queued/running by a previous process become interrupted."""
        jobs = await self.repo.mark_interrupted_jobs()
        for job in jobs:
            log.warning("fine-tune job %d was interrupted by a restart", job.id)
        staging = self.store.root / "reverse"
        if staging.is_dir():
            for stale in staging.glob(".staging-*"):
                shutil.rmtree(stale, ignore_errors=True)
        return jobs

    async def start(
        self,
        lyrics: Sequence[LyricsSubmission] | None,
        epochs: int,
        started_by: int,
        guild: int | None = None,
        *,
        channel_id: int | None = None,
        message_id: int | None = None,
        on_progress: Listener | None = None,
    ) -> FinetuneJob:
        """Start a job on ``lyrics`` (None: every pending contribution); returns it running.

        The job continues in the background; :meth:`wait` returns its final record.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise FinetuneError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}")
        if self.running:
            raise FinetuneError("a fine-tune is already running; wait for it or cancel it")
        if lyrics is None:
            lyrics = await self.repo.pending_lyrics(ANY_GUILD)
        lyrics = [item for item in lyrics if item.status == "pending"]
        if not lyrics:
            raise FinetuneError("there are no contributed lyrics waiting to be trained on")
        job = await self.repo.create_job(
            started_by, epochs=epochs, guild_id=guild, channel_id=channel_id, message_id=message_id
        )
        started = await self.repo.start_job(job.id)
        assert started is not None  # just created by us, and one job at a time
        self._cancelled = False
        listeners = [*self._listeners, *([on_progress] if on_progress else [])]
        self._task = asyncio.create_task(
            self._run(started, list(lyrics), listeners), name=f"finetune-job-{job.id}"
        )
        return started

    async def wait(self) -> FinetuneJob | None:
        """The final record of the current (or last) job started here; None if none."""
        if self._task is None:
            return None
        return await asyncio.shield(self._task)

    async def cancel(self) -> FinetuneJob | None:
        """Stop the running job (its child is terminated); returns its final record."""
        if not self.running:
            return None
        self._cancelled = True
        if self._proc is not None:
            await terminate(self._proc)
        return await self.wait()

    async def close(self) -> None:
        """At shutdown: stop a running job (marked cancelled) and its child process."""
        if self.running:
            assert self._task is not None
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def status(self) -> FinetuneJob | None:
        """The active job, else the most recent one."""
        job = await self.repo.active_job()
        if job is None:
            recent = await self.repo.recent_jobs(limit=1)
            job = recent[0] if recent else None
        return job

    async def rollback(self) -> dict[str, str]:
        """Serve the previous reverse model again; returns the model versions now serving."""
        if self.running:
            raise FinetuneError("a fine-tune is running; cancel it or wait before rolling back")
        history = self.store.history("reverse")
        if not history:
            raise FinetuneError("there is no earlier reverse model to roll back to")
        retired = self.store.current("reverse")
        versions = await self.service.swap("reverse", history[-1])
        await asyncio.to_thread(self.store.rollback, "reverse")
        for job in await self.repo.recent_jobs(limit=50):
            if job.swapped and job.model_path == str(retired):
                await self.repo.set_job_swapped(job.id, False)
        return versions

    # -- one job -----------------------------------------------------------------------

    async def _run(
        self, job: FinetuneJob, lyrics: list[LyricsSubmission], listeners: list[Listener]
    ) -> FinetuneJob:
        workdir = self.settings.work_dir / f"job-{job.id}"
        staging: Path | None = None
        version: Path | None = None  # set while a new version exists that is not serving
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            data, heldout = self._write_data(workdir, lyrics)
            staging = await asyncio.to_thread(self.store.staging_dir, "reverse", f"job{job.id}")
            current = self.store.current("reverse")
            metrics = await self._train(job, workdir, data, staging / "model", current, listeners)
            if self._cancelled:
                return await self._finish(
                    job, "cancelled", listeners, error="cancelled by an admin"
                )
            version = await asyncio.to_thread(
                self.store.commit, "reverse", staging / "model", f"job{job.id}"
            )
            await self._progress(job, TRAIN_SHARE, "comparing the new model with the serving one")
            await self._notify(job.id, listeners)
            comparison = await self._compare(workdir, current, version, heldout)
            if self._cancelled:
                return await self._finish(
                    job, "cancelled", listeners, error="cancelled by an admin"
                )
            metrics["comparison"] = comparison
            used = [item.id for item in lyrics]
            if comparison is None or not comparison["better"]:
                await self.repo.mark_lyrics_used(used, job.id)
                return await self._finish(
                    job, "succeeded", listeners, metrics=metrics, status_line=_kept(comparison)
                )
            try:
                versions = await self.service.swap("reverse", version)
            except RGPT2Error as exc:
                refused, version = version, None  # kept on disk for a look at what went wrong
                return await self._finish(
                    job, "failed", listeners, metrics=metrics, model_path=refused, error=str(exc)
                )
            await asyncio.to_thread(self.store.promote, "reverse", version)
            live, version = version, None
            await self.repo.mark_lyrics_used(used, job.id)
            metrics["model_versions"] = versions
            line = (
                f"new reverse model live: perplexity {comparison['candidate']['ppl']:.1f} "
                f"vs {comparison['current']['ppl']:.1f}"
            )
            return await self._finish(
                job,
                "succeeded",
                listeners,
                metrics=metrics,
                model_path=live,
                swapped=True,
                status_line=line,
            )
        except _JobFailed as exc:
            return await self._finish(job, "failed", listeners, error=str(exc))
        except asyncio.CancelledError:
            if self._proc is not None:
                await terminate(self._proc)
            await self._finish(job, "cancelled", listeners, error="the bot shut down mid-job")
            raise
        except Exception as exc:
            log.exception("fine-tune job %d failed", job.id)
            return await self._finish(
                job, "failed", listeners, error=f"unexpected error: {type(exc).__name__}: {exc}"
            )
        finally:
            self._proc = None
            # deleting model directories takes a while: off the event loop
            await asyncio.to_thread(self._clean_up, workdir, staging, version)

    def _clean_up(self, workdir: Path, staging: Path | None, version: Path | None) -> None:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if version is not None:  # never went live: nothing will roll back to it
            self.store.discard(version)
        for scratch in ("lyrics.txt", "heldout.txt"):
            (workdir / scratch).unlink(missing_ok=True)

    def _write_data(self, workdir: Path, lyrics: list[LyricsSubmission]) -> tuple[Path, list[Path]]:
        """The training file of contributed lyrics, and the held-out files for the comparison."""
        from rgpt2.corpus import split_verses

        verses = [v for item in lyrics for v in split_verses(item.text) if v]
        heldout_verses: list[list[str]] = []
        if len(verses) >= self.settings.min_verses_to_hold_out:
            # about 10 %, at least one verse, spread over the contributions
            every = len(verses) // max(1, round(len(verses) * 0.1))
            heldout_verses = [v for i, v in enumerate(verses) if i % every == every - 1]
            verses = [v for i, v in enumerate(verses) if i % every != every - 1]
        data = workdir / "lyrics.txt"
        data.write_text(_seed_format(verses), encoding="utf-8")
        heldout = [Path(p) for p in self.settings.heldout]
        if not heldout and not heldout_verses:
            # nothing else to judge by: at least check the new model has not forgotten the
            # original corpus (compare-models samples it; the few verses the child replays
            # from it are a negligible part of a full corpus)
            heldout = [Path(p) for p in self.settings.replay]
        if heldout_verses:
            own = workdir / "heldout.txt"
            own.write_text(_seed_format(heldout_verses), encoding="utf-8")
            heldout.append(own)
        return data, heldout

    async def _train(
        self,
        job: FinetuneJob,
        workdir: Path,
        data: Path,
        out: Path,
        current: Path,
        listeners: list[Listener],
    ) -> dict[str, Any]:
        s = self.settings
        extra = ["--no-progress-bar", *s.extra_train_args]
        if s.max_minutes is not None:
            extra += ["--max-minutes", str(s.max_minutes)]
        if s.replay_fraction is not None and s.replay:
            extra += ["--replay-fraction", str(s.replay_fraction)]
        progress_file = workdir / "progress.jsonl"
        progress_file.unlink(missing_ok=True)
        args = train_args(
            init_from=current,
            data=[data],
            out=out,
            progress=progress_file,
            epochs=job.epochs,
            replay=s.replay,
            threads=s.threads,
            extra=extra,
        )
        log_file = workdir / "train.log"
        log.info("fine-tune job %d: %s", job.id, " ".join(rgpt2_argv(args, nice=s.nice)))
        self._proc = proc = await spawn_rgpt2(
            args, nice=s.nice, threads=s.threads, log_file=log_file
        )
        if self._cancelled:  # cancel() arrived while the child was starting
            await terminate(proc)
        events: list[dict[str, Any]] = []
        last_write = 0.0
        async for event in follow_jsonl(progress_file, proc):
            events.append(event)
            kind = event.get("event")
            now = time.monotonic()
            if kind in ("epoch", "done") or now - last_write >= s.progress_interval:
                last_write = now
                await self._progress(job, TRAIN_SHARE * _fraction(event), _status_line(event))
                await self._notify(job.id, listeners)
        code = await proc.wait()
        self._proc = None
        metrics = _train_metrics(events)
        curve = await asyncio.to_thread(_plot, events, workdir / "curve.png")
        if curve is not None:
            metrics["curve_png"] = str(curve)
        if self._cancelled:
            return metrics
        errors = [e.get("message") for e in events if e.get("event") == "error"]
        if code != 0:
            reason = errors[-1] if errors else tail(log_file, lines=3) or "no output"
            how = f"was killed (signal {-code})" if code < 0 else f"exited with code {code}"
            raise _JobFailed(f"the training process {how}: {reason}")
        if not (out / "config.json").is_file():
            raise _JobFailed("the training process finished without writing a model")
        return metrics

    async def _compare(
        self, workdir: Path, current: Path, candidate: Path, heldout: list[Path]
    ) -> dict[str, Any] | None:
        if not heldout:
            return None
        s = self.settings
        out = workdir / "compare.json"
        args = ["compare-models", "--current", str(current), "--candidate", str(candidate)]
        args += ["--data", *map(str, heldout), "--direction", "reverse", "--out", str(out)]
        args += ["--threads", str(s.threads), "--min-gain", str(s.min_gain)]
        if s.rhyme_verses > 0:
            forward = self.store.current("forward")
            args += ["--forward", str(forward), "--rhyme-verses", str(s.rhyme_verses)]
        log_file = workdir / "compare.log"
        self._proc = proc = await spawn_rgpt2(
            args, nice=s.nice, threads=s.threads, log_file=log_file
        )
        code = await proc.wait()
        self._proc = None
        if self._cancelled:
            return None
        if code != 0 or not out.is_file():
            raise _JobFailed(
                f"comparing the new model failed (exit code {code}): {tail(log_file, lines=2)}"
            )
        return json.loads(out.read_text(encoding="utf-8"))

    # -- records -----------------------------------------------------------------------

    async def _progress(self, job: FinetuneJob, fraction: float, line: str) -> None:
        await self.repo.update_job_progress(job.id, fraction, status_line=line)

    async def _finish(
        self,
        job: FinetuneJob,
        state: str,
        listeners: list[Listener],
        *,
        metrics: dict[str, Any] | None = None,
        model_path: Path | None = None,
        swapped: bool = False,
        error: str | None = None,
        status_line: str | None = None,
    ) -> FinetuneJob:
        if status_line is not None:
            await self.repo.update_job_progress(job.id, 1.0, status_line=status_line)
        finished = await self.repo.finish_job(
            job.id,
            state,
            metrics=metrics,
            model_path=str(model_path) if model_path is not None else None,
            error=error,
            swapped=swapped,
        )
        log.info("fine-tune job %d %s%s", job.id, state, f": {error}" if error else "")
        final = finished or await self.repo.get_job(job.id)
        assert final is not None
        await self._notify(job.id, listeners, final)
        return final

    async def _notify(
        self, job_id: int, listeners: list[Listener], job: FinetuneJob | None = None
    ) -> None:
        if not listeners:
            return
        record = job or await self.repo.get_job(job_id)
        if record is None:
            return
        for listener in listeners:
            try:
                result = listener(record)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a failing progress message must not fail the job
                log.exception("fine-tune progress listener failed")


class _JobFailed(Exception):
    """Ends a job as failed with this message."""


def _seed_format(verses: Sequence[Sequence[str]]) -> str:
    return "\n\n".join("\n".join(v) for v in verses) + "\n"


def _fraction(event: dict[str, Any]) -> float:
    if event.get("event") == "done":
        return 1.0
    step, total = event.get("step"), event.get("total_steps")
    if isinstance(step, int | float) and isinstance(total, int | float) and total > 0:
        return max(0.0, min(1.0, step / total))
    return 0.0


def _status_line(event: dict[str, Any]) -> str:
    kind = event.get("event")
    if kind == "done":
        return "training finished"
    if kind == "error":
        return f"training failed: {event.get('message')}"
    parts = []
    if event.get("epoch") is not None:
        parts.append(f"epoch {event['epoch']}")
    if event.get("step") is not None and event.get("total_steps"):
        parts.append(f"step {event['step']}/{event['total_steps']}")
    if kind == "epoch" and event.get("val_ppl") is not None:
        parts.append(f"validation perplexity {event['val_ppl']:.1f}")
    elif event.get("loss") is not None:
        parts.append(f"loss {event['loss']:.2f}")
    if event.get("eta_s") is not None and kind == "step":
        parts.append(f"about {math.ceil(event['eta_s'] / 60)} min left")
    return " · ".join(parts) or "training"


def _train_metrics(events: list[dict[str, Any]]) -> dict[str, Any]:
    vals = [e["val_ppl"] for e in events if e.get("event") == "epoch" and e.get("val_ppl")]
    done = [e for e in events if e.get("event") == "done"]
    steps = [e["step"] for e in events if isinstance(e.get("step"), int)]
    metrics: dict[str, Any] = {"val_ppl_per_epoch": vals, "steps": max(steps, default=0)}
    if done and done[-1].get("best_val_ppl") is not None:
        metrics["best_val_ppl"] = done[-1]["best_val_ppl"]
    return metrics


def _plot(events: list[dict[str, Any]], png: Path) -> Path | None:
    from rgpt2.progress import plot_curve

    with contextlib.suppress(Exception):  # a missing curve is not worth failing a job over
        return plot_curve(events, png, title="reverse model fine-tune")
    return None


def _kept(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "no held-out verses to compare on: kept the serving model"
    key = comparison.get("decided_on", "ppl")
    new, old = comparison["candidate"][key], comparison["current"][key]
    return f"kept the serving model: the new one is not better (perplexity {new:.1f} vs {old:.1f})"

"""A bot wired to a real temporary database and the real GenerationService, over a fake
generator: fast, deterministic verses (no torch), one of them full of mentions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bot.client import COGS, RGPT2Bot
from bot.services.container import BotServices
from bot.services.finetune import FinetuneError, FinetuneJobs
from bot.storage import Database, Repository
from rgpt2.verse import RapRequest, Verse
from rgpt2.worker import GenerationService

PING_TOPIC = "ping"
PING_BAR = "@everyone listen up <@123> and <@&456> @here"


class BotFakeGenerator:
    """Follows the Generator contract; verse text depends only on the request (and seed)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[RapRequest]] = []
        self.gate: threading.Event | None = None
        self._seeds = iter(range(1000, 10**9))
        self.versions = {"forward": "fwd-test", "reverse": "rev-test"}

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self.versions)

    def with_model(self, direction: str, path: str | Path) -> BotFakeGenerator:
        other = BotFakeGenerator(delay=self.delay)
        other.versions = {**self.versions, direction: Path(path).name}
        return other

    def generate(self, requests: Sequence[RapRequest]) -> list[Verse]:
        self.batches.append(list(requests))
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        return [self._verse(r) for r in requests]

    def _verse(self, request: RapRequest) -> Verse:
        seed = request.seed if request.seed is not None else next(self._seeds)
        word = request.topic or "mic"
        bars = [f"{word} number {i} with seed {seed} on the beat" for i in range(request.bars)]
        if request.topic == PING_TOPIC:
            bars[0] = PING_BAR
        if request.topic == "explicit":
            bars[0] = "this shit is hard and the bitch is mad"
        return Verse(
            bars=bars,
            topic=request.topic,
            scheme=request.scheme,
            seed=seed,
            rhyme_density=0.25 + (seed % 7) / 10,
            end_rhyme=0.5,
            rap_score=round(0.5 + (seed % 5) / 10, 2),
            model_versions=self.model_versions,
            sampling={**request.sampling(), "seed": seed},
        )


async def make_services(
    db_path: Path,
    generator: BotFakeGenerator | None = None,
    *,
    queue_size: int = 64,
    max_batch: int = 8,
    cooldown_seconds: float = 0.0,
    admin_ids: Sequence[int] = (),
    vote_seconds: float = 600.0,
    challenge_seconds: float = 300.0,
    lyrics_max_bytes: int = 4096,
    finetune: object = None,
) -> BotServices:
    db = await Database.open(db_path)
    generation = GenerationService(
        generator or BotFakeGenerator(), queue_size=queue_size, max_batch=max_batch
    )
    await generation.start()
    return BotServices.create(
        Repository(db),
        generation,
        cooldown_seconds=cooldown_seconds,
        admin_ids=admin_ids,
        vote_seconds=vote_seconds,
        challenge_seconds=challenge_seconds,
        lyrics_max_bytes=lyrics_max_bytes,
        finetune=finetune,
        db=db,
    )


def make_bot(services: BotServices, cogs: tuple[str, ...] = COGS) -> RGPT2Bot:
    return RGPT2Bot(services, sync="never", cogs=cogs)


class FakeFinetuneJobs:
    """The FinetuneJobs API with the child process replaced by a loop of progress steps.

    The real job (a `rgpt2 train` child on a tiny model, the comparison, the swap) is tested
    in tests/test_finetune.py; this keeps the bot's tests of /admin fast. Jobs are real rows
    in the database and the loss curve is a real PNG from rgpt2.progress.plot_curve.
    """

    def __init__(
        self,
        repo: Repository,
        generation: GenerationService,
        work_dir: Path,
        *,
        steps: int = 4,
        step_seconds: float = 0.0,
    ) -> None:
        self.repo = repo
        self.generation = generation
        self.work_dir = work_dir
        self.steps = steps
        self.step_seconds = step_seconds
        self._task: asyncio.Task | None = None
        self._cancelled = False
        self._previous: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def recover(self) -> list:
        return await self.repo.mark_interrupted_jobs()

    async def start(
        self,
        lyrics,
        epochs,
        started_by,
        guild=None,
        *,
        channel_id=None,
        message_id=None,
        on_progress=None,
    ):
        if self.running:
            raise FinetuneError("a fine-tune is already running; wait for it or cancel it")
        lyrics = lyrics if lyrics is not None else await self.repo.pending_lyrics()
        if not lyrics:
            raise FinetuneError("there are no contributed lyrics waiting to be trained on")
        job = await self.repo.create_job(
            started_by, epochs=epochs, guild_id=guild, channel_id=channel_id, message_id=message_id
        )
        job = await self.repo.start_job(job.id)
        self._cancelled = False
        self._task = asyncio.create_task(self._run(job, lyrics, on_progress))
        return job

    async def _run(self, job, lyrics, on_progress):
        from rgpt2.progress import plot_curve

        async def notify(record):
            if on_progress is not None:
                result = on_progress(record)
                if asyncio.iscoroutine(result):
                    await result

        events = []
        for step in range(1, self.steps + 1):
            await asyncio.sleep(self.step_seconds)
            if self._cancelled:
                final = await self.repo.finish_job(
                    job.id, "cancelled", error="cancelled by an admin"
                )
                await notify(final)
                return final
            loss = 4.0 / step
            events.append({"event": "step", "step": step, "loss": loss})
            events.append({"event": "eval", "step": step, "val_loss": loss + 0.1})
            await self.repo.update_job_progress(
                job.id,
                0.9 * step / self.steps,
                status_line=f"step {step}/{self.steps} loss {loss:.2f}",
            )
            await notify(await self.repo.get_job(job.id))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        curve = plot_curve(events, self.work_dir / f"job-{job.id}.png", title="fine-tune")
        await self.repo.mark_lyrics_used([item.id for item in lyrics], job.id)
        self._previous = self.generation.model_versions["reverse"]
        versions = await self.generation.swap("reverse", self.work_dir / f"v-job{job.id}")
        await self.repo.update_job_progress(job.id, 1.0, status_line="new reverse model live")
        final = await self.repo.finish_job(
            job.id,
            "succeeded",
            metrics={
                "curve_png": str(curve),
                "comparison": {
                    "candidate": {"ppl": 40.0},
                    "current": {"ppl": 55.0},
                    "better": True,
                },
                "model_versions": versions,
            },
            model_path=str(self.work_dir / f"v-job{job.id}"),
            swapped=True,
        )
        await notify(final)
        return final

    async def wait(self):
        return None if self._task is None else await asyncio.shield(self._task)

    async def cancel(self):
        if not self.running:
            return None
        self._cancelled = True
        return await self.wait()

    # the active job, else the most recent one: the real query, over the same repository
    status = FinetuneJobs.status

    async def rollback(self) -> dict[str, str]:
        if self._previous is None:
            raise FinetuneError("there is no earlier reverse model to roll back to")
        previous, self._previous = self._previous, None
        return await self.generation.swap("reverse", previous)

    async def close(self) -> None:
        if self.running:
            self._cancelled = True
            await self.wait()

"""All the bot's services in one object, built once and shared by the cogs and ``rgpt2 play``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.services.battles import BattleService
from bot.services.cooldowns import Cooldowns
from bot.services.guilds import GuildService
from bot.services.lyrics import LyricsService
from bot.services.rankings import RankingService
from bot.services.rap import RapService, VoteService

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database
    from bot.storage.repo import Repository
    from rgpt2.worker import GenerationService

log = logging.getLogger(__name__)


@dataclass
class BotServices:
    repo: Repository
    generation: GenerationService
    guilds: GuildService
    rap: RapService
    votes: VoteService
    rankings: RankingService
    battles: BattleService
    lyrics: LyricsService
    finetune: Any = None  # bot.services.finetune.FinetuneJobs, when configured
    db: Database | None = None
    default_epochs: int = 1
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def create(
        cls,
        repo: Repository,
        generation: GenerationService,
        *,
        cooldown_seconds: float = 30.0,
        admin_ids: Iterable[int] = (),
        vote_seconds: float = 600.0,
        challenge_seconds: float = 300.0,
        lyrics_max_bytes: int = 64 * 1024,
        finetune: Any = None,
        db: Database | None = None,
        cooldowns: Cooldowns | None = None,
        default_epochs: int = 1,
    ) -> BotServices:
        guilds = GuildService(repo, default_cooldown=cooldown_seconds, admin_ids=admin_ids)
        return cls(
            repo=repo,
            generation=generation,
            guilds=guilds,
            rap=RapService(repo, generation, guilds, cooldowns=cooldowns),
            votes=VoteService(repo),
            rankings=RankingService(repo),
            battles=BattleService(
                repo,
                generation,
                vote_seconds=vote_seconds,
                challenge_seconds=challenge_seconds,
            ),
            lyrics=LyricsService(repo, max_bytes=lyrics_max_bytes),
            finetune=finetune,
            db=db,
            default_epochs=default_epochs,
        )

    async def recover(self) -> None:
        """After a restart: jobs that were running are interrupted (their child is gone)."""
        if self.finetune is not None and hasattr(self.finetune, "recover"):
            await self.finetune.recover()  # also clears half-written model versions
            return
        jobs = await self.repo.mark_interrupted_jobs()
        for job in jobs:
            log.warning("fine-tune job #%d was interrupted by a restart", job.id)

    async def close(self) -> None:
        """Stop the fine-tune job and the worker, then close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.finetune is not None:
            closer = getattr(self.finetune, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("stopping the fine-tune job failed")
        await self.generation.stop()
        if self.db is not None:
            await self.db.close()


def load_generator(
    forward: str | Path, reverse: str | Path, scorer: str | Path | None, device: str
) -> Any:
    """The two-stage generator (and the scorer when there is one). Slow: call off the loop."""
    from rgpt2.errors import ModelLoadError
    from rgpt2.generate import Generator

    rap_scorer = None
    if scorer is not None:
        from rgpt2.scorer import RapScorer

        try:
            rap_scorer = RapScorer.load(scorer, device=device)
        except ModelLoadError as exc:
            log.warning("no rap scores: the scorer did not load (%s)", exc)
    return Generator.load(forward, reverse, device=device, scorer=rap_scorer)


async def build_services(
    settings: Settings,
    *,
    forward: str | Path | None = None,
    reverse: str | Path | None = None,
    scorer: str | Path | None = None,
    use_scorer: bool = True,
    with_finetune: bool = True,
) -> BotServices:
    """Database, models, generation worker, fine-tune jobs and services, from settings.

    ``forward``/``reverse``/``scorer`` override the settings' model locations. The reverse
    model is the model store's current version (a fine-tune that went live survives a
    restart) unless it is overridden.
    """
    import asyncio

    from bot.services.model_store import ModelStore
    from bot.storage import Database, Repository
    from rgpt2.errors import ModelLoadError
    from rgpt2.worker import GenerationService

    forward = forward or settings.model_location("forward")
    default_reverse = reverse or settings.model_location("reverse")
    if scorer is None and use_scorer:
        try:
            scorer = settings.model_location("scorer")
        except ModelLoadError as exc:
            log.warning("no rap scores: %s", exc)
    store = ModelStore(settings.model_store, {"forward": forward, "reverse": default_reverse})
    serving_reverse = reverse or store.current("reverse")
    device = settings.resolved_device()
    log.info("loading models: forward %s, reverse %s, scorer %s", forward, serving_reverse, scorer)
    generator = await asyncio.to_thread(load_generator, forward, serving_reverse, scorer, device)
    db = await Database.open(settings.db_path)
    repo = Repository(db)
    generation = GenerationService(
        generator,
        queue_size=settings.queue_size,
        max_batch=settings.max_batch,
        request_timeout=settings.request_timeout_seconds,
    )
    await generation.start()
    finetune = None
    if with_finetune:
        from bot.services.finetune import FinetuneJobs, FinetuneSettings

        replay = (settings.finetune_replay,) if settings.finetune_replay else ()
        finetune = FinetuneJobs(
            repo,
            generation,
            store,
            FinetuneSettings(work_dir=Path(settings.model_store) / "jobs", replay=replay),
        )
    return BotServices.create(
        repo,
        generation,
        cooldown_seconds=settings.cooldown_seconds,
        admin_ids=settings.admin_ids,
        vote_seconds=settings.battle_vote_minutes * 60,
        challenge_seconds=settings.battle_accept_minutes * 60,
        lyrics_max_bytes=settings.lyrics_max_bytes,
        finetune=finetune,
        db=db,
        default_epochs=settings.finetune_epochs,
    )

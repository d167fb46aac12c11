"""All the bot's services in one object, built once and shared by the cogs and ``rgpt2 play``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.services.battles import BattleService
from bot.services.cooldowns import Cooldowns
from bot.services.guilds import GuildService
from bot.services.lyrics import LyricsService
from bot.services.rankings import RankingService
from bot.services.rap import RapService, VoteService

if TYPE_CHECKING:
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

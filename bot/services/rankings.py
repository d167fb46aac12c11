"""/top and /leaderboard: the crowd's verdict, read from storage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from rgpt2.errors import RGPT2Error

if TYPE_CHECKING:
    from bot.storage.records import BattleStats, LeaderboardEntry, VerseRecord
    from bot.storage.repo import Repository

PERIODS: dict[str, dt.timedelta | None] = {
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "month": dt.timedelta(days=30),
    "all": None,
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RankingService:
    def __init__(self, repo: Repository, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.repo = repo
        self.clock = clock

    def since(self, period: str) -> dt.datetime | None:
        if period not in PERIODS:
            raise RGPT2Error(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
        delta = PERIODS[period]
        return None if delta is None else self.clock() - delta

    async def top(
        self, guild_id: int | None, period: str = "week", limit: int = 10
    ) -> list[VerseRecord]:
        return await self.repo.top_verses(guild_id, since=self.since(period), limit=limit)

    async def leaderboard(
        self, guild_id: int | None, period: str = "all", limit: int = 10
    ) -> tuple[list[LeaderboardEntry], list[BattleStats]]:
        """Members by upvotes on the verses they requested, and by battle wins."""
        since = self.since(period)
        by_votes = await self.repo.leaderboard(guild_id, since=since, limit=limit)
        by_wins = await self.repo.battle_leaderboard(guild_id, since=since, limit=limit)
        return by_votes, by_wins

"""What the repository returns: frozen dataclasses, never database rows."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rgpt2.verse import Verse

BATTLE_OPEN_STATES: tuple[str, ...] = ("pending", "writing", "voting")
BATTLE_FINAL_STATES: tuple[str, ...] = ("declined", "expired", "closed", "cancelled")
SIDES: tuple[str, ...] = ("challenger", "opponent")
JOB_ACTIVE_STATES: tuple[str, ...] = ("queued", "running")
JOB_FINAL_STATES: tuple[str, ...] = ("succeeded", "failed", "cancelled", "interrupted")
LYRICS_STATUSES: tuple[str, ...] = ("pending", "used", "rejected")
EXPLICIT_FILTERS: tuple[str, ...] = ("off", "mask")


@dataclass(frozen=True)
class VerseRecord:
    id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    requester_id: int
    requester_name: str | None
    topic: str | None
    bars: int  # number of bars
    scheme: str
    text: str  # bars joined by "\n"
    rap_score: float | None
    rhyme_density: float | None
    end_rhyme: float | None
    model_versions: Mapping[str, str]
    sampling: Mapping[str, Any]
    seed: int | None
    created_at: datetime
    upvotes: int = 0

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def to_verse(self) -> Verse:
        """The stored verse as the generator's :class:`~rgpt2.verse.Verse`."""
        return Verse(
            bars=self.lines,
            topic=self.topic,
            scheme=self.scheme,
            seed=self.seed if self.seed is not None else 0,
            rhyme_density=self.rhyme_density if self.rhyme_density is not None else 0.0,
            end_rhyme=self.end_rhyme if self.end_rhyme is not None else 0.0,
            rap_score=self.rap_score,
            model_versions=dict(self.model_versions),
            sampling=dict(self.sampling),
        )


@dataclass(frozen=True)
class UpvoteResult:
    upvoted: bool  # the member's upvote is now there (True) or gone (False)
    count: int  # the verse's upvotes after the toggle


@dataclass(frozen=True)
class LeaderboardEntry:
    user_id: int
    upvotes: int  # upvotes received on their verses in the period
    verses: int  # verses they requested in the period
    name: str | None  # latest requester_name seen, if any


@dataclass(frozen=True)
class Battle:
    id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    challenger_id: int
    opponent_id: int
    challenger_topic: str | None
    opponent_topic: str | None
    bars: int
    state: str  # pending | declined | expired | writing | voting | closed | cancelled
    challenger_verse_id: int | None
    opponent_verse_id: int | None
    deadline: datetime | None  # end of the current phase (acceptance, then voting)
    winner: str | None  # challenger | opponent | tie, once closed
    created_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return self.state in BATTLE_OPEN_STATES

    @property
    def winner_id(self) -> int | None:
        """The winning member's id; None while open and for a tie."""
        return {"challenger": self.challenger_id, "opponent": self.opponent_id}.get(
            self.winner or ""
        )

    def side_of(self, user_id: int) -> str | None:
        if user_id == self.challenger_id:
            return "challenger"
        if user_id == self.opponent_id:
            return "opponent"
        return None


@dataclass(frozen=True)
class Tally:
    challenger: int
    opponent: int

    @property
    def leader(self) -> str:
        """challenger | opponent | tie."""
        if self.challenger == self.opponent:
            return "tie"
        return "challenger" if self.challenger > self.opponent else "opponent"


class VoteOutcome(enum.StrEnum):
    RECORDED = "recorded"  # a first vote
    CHANGED = "changed"  # the member switched sides
    UNCHANGED = "unchanged"  # same side again: nothing to do
    NOT_VOTING = "not_voting"  # the battle is not in its voting phase (or does not exist)
    BATTLER = "battler"  # the challenger and the opponent cannot vote

    @property
    def counted(self) -> bool:
        return self in (VoteOutcome.RECORDED, VoteOutcome.CHANGED, VoteOutcome.UNCHANGED)


@dataclass(frozen=True)
class BattleStats:
    user_id: int
    battles: int  # closed battles fought
    wins: int
    losses: int
    ties: int
    open: int  # pending, writing or voting now


@dataclass(frozen=True)
class LyricsSubmission:
    id: int
    guild_id: int | None
    user_id: int
    text: str
    sha256: str
    status: str  # pending | used | rejected
    job_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class LyricsStats:
    pending: int
    used: int
    rejected: int
    contributors: int  # distinct members who contributed
    pending_bytes: int  # UTF-8 size of the pending lyrics


@dataclass(frozen=True)
class FinetuneJob:
    id: int
    state: str  # queued | running | succeeded | failed | cancelled | interrupted
    started_by: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    epochs: int
    progress: float  # 0..1
    status_line: str | None
    metrics: Mapping[str, Any]
    model_path: str | None
    swapped: bool
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.state in JOB_ACTIVE_STATES


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    explicit_filter: str = "off"  # off | mask
    cooldown_seconds: float | None = None  # None: the bot-wide setting
    allowed_channel_ids: tuple[int, ...] = ()  # empty: every channel
    updated_at: datetime | None = None  # None: no row stored yet (all defaults)

    def channel_allowed(self, channel_id: int | None) -> bool:
        return not self.allowed_channel_ids or channel_id in self.allowed_channel_ids

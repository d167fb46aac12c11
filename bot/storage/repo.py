"""The repository: the only SQL in the project. Every query is parameterised; every method
returns frozen dataclasses from :mod:`bot.storage.records`. See docs/storage.md.

Times: methods that record a time take ``now`` (timezone-aware; default: the current UTC
time) so services and tests can drive a clock. ``guild_id=None`` means "outside a server"
(a DM or ``rgpt2 play``); :data:`ANY_GUILD` (where accepted) means "every server".
State changes are guarded in SQL (``UPDATE ... WHERE state = ...``), so of two concurrent
callers only one wins; the loser gets ``None``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import aiosqlite

from bot.storage.db import Database
from bot.storage.errors import DuplicateLyrics, JobAlreadyActive, NotFound, StorageError
from bot.storage.records import (
    BATTLE_OPEN_STATES,
    EXPLICIT_FILTERS,
    JOB_ACTIVE_STATES,
    JOB_FINAL_STATES,
    LYRICS_STATUSES,
    SIDES,
    Battle,
    BattleStats,
    FinetuneJob,
    GuildSettings,
    LeaderboardEntry,
    LyricsStats,
    LyricsSubmission,
    Tally,
    UpvoteResult,
    VerseRecord,
    VoteOutcome,
)
from rgpt2.verse import Verse


class _AnyGuild:
    def __repr__(self) -> str:
        return "ANY_GUILD"


ANY_GUILD: Final = _AnyGuild()
GuildFilter = int | None | _AnyGuild


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db_time(value: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored times compare correctly as text."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def lyrics_fingerprint(text: str) -> str:
    """sha256 of the text with case, blank lines and spacing normalised: the duplicate key."""
    lines = (" ".join(line.split()).casefold() for line in text.splitlines())
    return hashlib.sha256("\n".join(line for line in lines if line).encode()).hexdigest()


def _guild_clause(column: str, guild: GuildFilter) -> tuple[str, tuple[Any, ...]]:
    if isinstance(guild, _AnyGuild):
        return "1", ()
    return f"{column} IS ?", (guild,)


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ verses

    async def add_verse(
        self,
        verse: Verse,
        *,
        requester_id: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        requester_name: str | None = None,
        now: datetime | None = None,
    ) -> VerseRecord:
        """Store a generated verse with everything needed to reproduce it."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """INSERT INTO verses (guild_id, channel_id, message_id, requester_id,
                       requester_name, topic, bars, scheme, text, rap_score, rhyme_density,
                       end_rhyme, model_versions, sampling, seed, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    guild_id,
                    channel_id,
                    message_id,
                    requester_id,
                    requester_name,
                    verse.topic,
                    len(verse.bars),
                    verse.scheme,
                    verse.text,
                    verse.rap_score,
                    verse.rhyme_density,
                    verse.end_rhyme,
                    _json(verse.model_versions),
                    _json(verse.sampling),
                    verse.seed,
                    to_db_time(now or utcnow()),
                ),
            )
            verse_id = cur.lastrowid
            record = await self._verse(conn, verse_id)
        assert record is not None
        return record

    async def get_verse(self, verse_id: int) -> VerseRecord | None:
        async with self.db.reading() as conn:
            return await self._verse(conn, verse_id)

    async def set_verse_message(self, verse_id: int, channel_id: int, message_id: int) -> None:
        """Record where the verse was posted; NotFound if there is no such verse."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE verses SET channel_id = ?, message_id = ? WHERE id = ?",
                (channel_id, message_id, verse_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"there is no verse #{verse_id}")

    async def count_verses(self, guild_id: GuildFilter = ANY_GUILD) -> int:
        where, params = _guild_clause("guild_id", guild_id)
        async with self.db.reading() as conn:
            return await _scalar(conn, f"SELECT COUNT(*) FROM verses WHERE {where}", params)

    async def recent_verses(
        self, guild_id: GuildFilter = ANY_GUILD, *, requester_id: int | None = None, limit: int = 10
    ) -> list[VerseRecord]:
        """Newest first, optionally only one member's."""
        where, params = _guild_clause("v.guild_id", guild_id)
        if requester_id is not None:
            where += " AND v.requester_id = ?"
            params += (requester_id,)
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                f"{_VERSE_SELECT} WHERE {where} ORDER BY v.id DESC LIMIT ?",
                (*params, limit),
            )
        return [_verse_record(r) for r in rows]

    async def top_verses(
        self,
        guild_id: GuildFilter,
        *,
        since: datetime | None = None,
        limit: int = 10,
        min_upvotes: int = 1,
    ) -> list[VerseRecord]:
        """Most upvoted verses created since ``since`` (None: ever); ties: older first."""
        where, params = _guild_clause("v.guild_id", guild_id)
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                f"""{_VERSE_SELECT}
                    WHERE {where} AND v.created_at >= ? AND upvotes >= ?
                    ORDER BY upvotes DESC, v.created_at ASC, v.id ASC LIMIT ?""",
                (*params, _since(since), min_upvotes, limit),
            )
        return [_verse_record(r) for r in rows]

    # ----------------------------------------------------------------- upvotes

    async def toggle_upvote(
        self, verse_id: int, user_id: int, *, now: datetime | None = None
    ) -> UpvoteResult:
        """Add the member's upvote, or remove it if there; NotFound if the verse does not exist."""
        async with self.db.transaction() as conn:
            if await _scalar(conn, "SELECT COUNT(*) FROM verses WHERE id = ?", (verse_id,)) == 0:
                raise NotFound(f"there is no verse #{verse_id}")
            cur = await conn.execute(
                "DELETE FROM upvotes WHERE verse_id = ? AND user_id = ?", (verse_id, user_id)
            )
            upvoted = cur.rowcount == 0
            if upvoted:
                await conn.execute(
                    "INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, ?, ?)",
                    (verse_id, user_id, to_db_time(now or utcnow())),
                )
            count = await _scalar(
                conn, "SELECT COUNT(*) FROM upvotes WHERE verse_id = ?", (verse_id,)
            )
        return UpvoteResult(upvoted=upvoted, count=count)

    async def upvote_count(self, verse_id: int) -> int:
        async with self.db.reading() as conn:
            return await _scalar(
                conn, "SELECT COUNT(*) FROM upvotes WHERE verse_id = ?", (verse_id,)
            )

    async def has_upvoted(self, verse_id: int, user_id: int) -> bool:
        async with self.db.reading() as conn:
            return bool(
                await _scalar(
                    conn,
                    "SELECT COUNT(*) FROM upvotes WHERE verse_id = ? AND user_id = ?",
                    (verse_id, user_id),
                )
            )

    async def leaderboard(
        self, guild_id: GuildFilter, *, since: datetime | None = None, limit: int = 10
    ) -> list[LeaderboardEntry]:
        """Requesters ranked by upvotes on their verses created since ``since``.

        Ties: more verses first, then the lower user id (stable). Members with verses but no
        upvotes are included (at the bottom).
        """
        where, params = _guild_clause("v.guild_id", guild_id)
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                f"""SELECT v.requester_id AS user_id,
                           COUNT(u.user_id) AS upvotes,
                           COUNT(DISTINCT v.id) AS verses,
                           (SELECT n.requester_name FROM verses n
                             WHERE n.requester_id = v.requester_id
                               AND n.requester_name IS NOT NULL
                             ORDER BY n.id DESC LIMIT 1) AS name
                      FROM verses v LEFT JOIN upvotes u ON u.verse_id = v.id
                     WHERE {where} AND v.created_at >= ?
                     GROUP BY v.requester_id
                     ORDER BY upvotes DESC, verses DESC, user_id ASC
                     LIMIT ?""",
                (*params, _since(since), limit),
            )
        return [LeaderboardEntry(r["user_id"], r["upvotes"], r["verses"], r["name"]) for r in rows]

    # ----------------------------------------------------------------- battles

    async def create_battle(
        self,
        challenger_id: int,
        opponent_id: int,
        *,
        bars: int,
        deadline: datetime | None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        challenger_topic: str | None = None,
        opponent_topic: str | None = None,
        now: datetime | None = None,
    ) -> Battle:
        """A new challenge in state ``pending``; ``deadline``: when it expires if not accepted."""
        if challenger_id == opponent_id:
            raise StorageError("a member cannot battle themselves")
        stamp = to_db_time(now or utcnow())
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """INSERT INTO battles (guild_id, channel_id, challenger_id, opponent_id,
                       challenger_topic, opponent_topic, bars, state, deadline,
                       created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)""",
                (
                    guild_id,
                    channel_id,
                    challenger_id,
                    opponent_id,
                    challenger_topic,
                    opponent_topic,
                    bars,
                    _opt_time(deadline),
                    stamp,
                    stamp,
                ),
            )
            battle = await self._battle(conn, cur.lastrowid)
        assert battle is not None
        return battle

    async def get_battle(self, battle_id: int) -> Battle | None:
        async with self.db.reading() as conn:
            return await self._battle(conn, battle_id)

    async def set_battle_message(self, battle_id: int, channel_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE battles SET channel_id = ?, message_id = ? WHERE id = ?",
                (channel_id, message_id, battle_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"there is no battle #{battle_id}")

    async def accept_battle(
        self, battle_id: int, opponent_id: int, *, now: datetime | None = None
    ) -> Battle | None:
        """pending -> writing, only by the opponent and before the deadline; else None."""
        stamp = to_db_time(now or utcnow())
        return await self._transition(
            battle_id,
            "writing",
            guard="state = 'pending' AND opponent_id = ? AND (deadline IS NULL OR deadline > ?)",
            guard_params=(opponent_id, stamp),
            sets={"deadline": None},
            now=stamp,
        )

    async def decline_battle(
        self, battle_id: int, opponent_id: int, *, now: datetime | None = None
    ) -> Battle | None:
        """pending -> declined, only by the opponent; else None."""
        return await self._transition(
            battle_id,
            "declined",
            guard="state = 'pending' AND opponent_id = ?",
            guard_params=(opponent_id,),
            sets={"deadline": None},
            now=to_db_time(now or utcnow()),
        )

    async def expire_battle(self, battle_id: int, *, now: datetime | None = None) -> Battle | None:
        """pending -> expired once its deadline has passed; else None."""
        stamp = to_db_time(now or utcnow())
        return await self._transition(
            battle_id,
            "expired",
            guard="state = 'pending' AND deadline IS NOT NULL AND deadline <= ?",
            guard_params=(stamp,),
            sets={},
            now=stamp,
        )

    async def cancel_battle(self, battle_id: int, *, now: datetime | None = None) -> Battle | None:
        """Any open state -> cancelled (e.g. generation failed); None if already final."""
        return await self._transition(
            battle_id,
            "cancelled",
            guard="state IN ('pending', 'writing', 'voting')",
            guard_params=(),
            sets={"deadline": None},
            now=to_db_time(now or utcnow()),
        )

    async def start_battle_voting(
        self,
        battle_id: int,
        *,
        challenger_verse_id: int,
        opponent_verse_id: int,
        deadline: datetime,
        now: datetime | None = None,
    ) -> Battle | None:
        """writing -> voting with the two verses and the voting deadline; else None."""
        return await self._transition(
            battle_id,
            "voting",
            guard="state = 'writing'",
            guard_params=(),
            sets={
                "challenger_verse_id": challenger_verse_id,
                "opponent_verse_id": opponent_verse_id,
                "deadline": to_db_time(deadline),
            },
            now=to_db_time(now or utcnow()),
        )

    async def close_battle(
        self, battle_id: int, *, now: datetime | None = None
    ) -> tuple[Battle, Tally] | None:
        """voting -> closed with the winner from the tally; None if not voting (someone else
        closed it first). Does not check the deadline: the caller decides when."""
        async with self.db.transaction() as conn:
            tally = await self._tally(conn, battle_id)
            cur = await conn.execute(
                """UPDATE battles SET state = 'closed', winner = ?, updated_at = ?
                    WHERE id = ? AND state = 'voting'""",
                (tally.leader, to_db_time(now or utcnow()), battle_id),
            )
            if cur.rowcount == 0:
                return None
            battle = await self._battle(conn, battle_id)
        assert battle is not None
        return battle, tally

    async def open_battles(self) -> list[Battle]:
        """Battles still pending, writing or voting (to resume after a restart), by deadline."""
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                """SELECT * FROM battles WHERE state IN ('pending', 'writing', 'voting')
                    ORDER BY deadline IS NULL, deadline, id""",
                (),
            )
        return [_battle_record(r) for r in rows]

    async def active_battle_between(self, user_a: int, user_b: int) -> Battle | None:
        """An open battle between these two members, either way round."""
        async with self.db.reading() as conn:
            row = await _one(
                conn,
                """SELECT * FROM battles
                    WHERE state IN ('pending', 'writing', 'voting')
                      AND ((challenger_id = ? AND opponent_id = ?)
                        OR (challenger_id = ? AND opponent_id = ?))
                    ORDER BY id DESC LIMIT 1""",
                (user_a, user_b, user_b, user_a),
            )
        return _battle_record(row) if row else None

    async def cast_battle_vote(
        self, battle_id: int, voter_id: int, side: str, *, now: datetime | None = None
    ) -> VoteOutcome:
        """Record or change a member's vote; refused while not voting, after the deadline, or
        for the two battlers."""
        if side not in SIDES:
            raise StorageError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
        stamp = to_db_time(now or utcnow())
        async with self.db.transaction() as conn:
            battle = await self._battle(conn, battle_id)
            if battle is None or battle.state != "voting":
                return VoteOutcome.NOT_VOTING
            if battle.deadline is not None and to_db_time(battle.deadline) <= stamp:
                return VoteOutcome.NOT_VOTING
            if voter_id in (battle.challenger_id, battle.opponent_id):
                return VoteOutcome.BATTLER
            previous = await _one(
                conn,
                "SELECT side FROM battle_votes WHERE battle_id = ? AND voter_id = ?",
                (battle_id, voter_id),
            )
            if previous is not None and previous["side"] == side:
                return VoteOutcome.UNCHANGED
            await conn.execute(
                """INSERT INTO battle_votes (battle_id, voter_id, side, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (battle_id, voter_id)
                   DO UPDATE SET side = excluded.side, updated_at = excluded.updated_at""",
                (battle_id, voter_id, side, stamp, stamp),
            )
        return VoteOutcome.RECORDED if previous is None else VoteOutcome.CHANGED

    async def battle_vote(self, battle_id: int, voter_id: int) -> str | None:
        """The side this member voted for, or None."""
        async with self.db.reading() as conn:
            row = await _one(
                conn,
                "SELECT side FROM battle_votes WHERE battle_id = ? AND voter_id = ?",
                (battle_id, voter_id),
            )
        return row["side"] if row else None

    async def battle_tally(self, battle_id: int) -> Tally:
        async with self.db.reading() as conn:
            return await self._tally(conn, battle_id)

    async def battle_stats(self, user_id: int, guild_id: GuildFilter = ANY_GUILD) -> BattleStats:
        where, params = _guild_clause("guild_id", guild_id)
        async with self.db.reading() as conn:
            row = await _one(
                conn,
                f"""SELECT
                      COALESCE(SUM(state = 'closed'), 0) AS battles,
                      COALESCE(SUM(state = 'closed' AND (
                          (winner = 'challenger' AND challenger_id = ?)
                       OR (winner = 'opponent' AND opponent_id = ?))), 0) AS wins,
                      COALESCE(SUM(state = 'closed' AND winner = 'tie'), 0) AS ties,
                      COALESCE(SUM(state IN ('pending', 'writing', 'voting')), 0) AS open
                    FROM battles
                    WHERE (challenger_id = ? OR opponent_id = ?) AND {where}""",
                (user_id, user_id, user_id, user_id, *params),
            )
        assert row is not None
        return BattleStats(
            user_id=user_id,
            battles=row["battles"],
            wins=row["wins"],
            losses=row["battles"] - row["wins"] - row["ties"],
            ties=row["ties"],
            open=row["open"],
        )

    async def battle_leaderboard(
        self, guild_id: GuildFilter, *, since: datetime | None = None, limit: int = 10
    ) -> list[BattleStats]:
        """Members ranked by battle wins (closed battles created since ``since``).

        Ties: better wins minus losses, then more battles, then the lower user id. Only
        members with at least one closed battle in the period are listed; ``open`` counts
        their battles open now (in that server).
        """
        where, params = _guild_clause("guild_id", guild_id)
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                f"""WITH sides AS (
                        SELECT challenger_id AS user_id, state, created_at,
                               CASE winner WHEN 'challenger' THEN 'win' WHEN 'tie' THEN 'tie'
                                           WHEN 'opponent' THEN 'loss' END AS result
                          FROM battles WHERE {where}
                        UNION ALL
                        SELECT opponent_id, state, created_at,
                               CASE winner WHEN 'opponent' THEN 'win' WHEN 'tie' THEN 'tie'
                                           WHEN 'challenger' THEN 'loss' END
                          FROM battles WHERE {where})
                    SELECT user_id,
                           SUM(state = 'closed' AND created_at >= ?) AS battles,
                           SUM(result = 'win' AND created_at >= ?) AS wins,
                           SUM(result = 'loss' AND created_at >= ?) AS losses,
                           SUM(result = 'tie' AND created_at >= ?) AS ties,
                           SUM(state IN ('pending', 'writing', 'voting')) AS open
                      FROM sides
                     GROUP BY user_id
                    HAVING battles > 0
                     ORDER BY wins DESC, wins - losses DESC, battles DESC, user_id ASC
                     LIMIT ?""",
                (*params, *params, *([_since(since)] * 4), limit),
            )
        return [
            BattleStats(r["user_id"], r["battles"], r["wins"], r["losses"], r["ties"], r["open"])
            for r in rows
        ]

    # ------------------------------------------------------------------ lyrics

    async def add_lyrics(
        self,
        user_id: int,
        text: str,
        *,
        guild_id: int | None = None,
        now: datetime | None = None,
    ) -> LyricsSubmission:
        """Store contributed lyrics as ``pending``; DuplicateLyrics if the same text (ignoring
        case, spacing and blank lines) was contributed before, by anyone."""
        cleaned = "\n".join(line.rstrip() for line in text.strip().splitlines())
        if not cleaned:
            raise StorageError("the lyrics are empty")
        digest = lyrics_fingerprint(cleaned)
        async with self.db.transaction() as conn:
            existing = await _one(conn, "SELECT id FROM lyrics WHERE sha256 = ?", (digest,))
            if existing is not None:
                raise DuplicateLyrics(
                    f"these lyrics were already submitted (submission #{existing['id']})",
                    existing_id=existing["id"],
                )
            cur = await conn.execute(
                """INSERT INTO lyrics (guild_id, user_id, text, sha256, status, created_at)
                   VALUES (?, ?, ?, ?, 'pending', ?)""",
                (guild_id, user_id, cleaned, digest, to_db_time(now or utcnow())),
            )
            row = await _one(conn, "SELECT * FROM lyrics WHERE id = ?", (cur.lastrowid,))
        assert row is not None
        return _lyrics_record(row)

    async def get_lyrics(self, lyrics_id: int) -> LyricsSubmission | None:
        async with self.db.reading() as conn:
            row = await _one(conn, "SELECT * FROM lyrics WHERE id = ?", (lyrics_id,))
        return _lyrics_record(row) if row else None

    async def pending_lyrics_count(self, guild_id: GuildFilter = ANY_GUILD) -> int:
        where, params = _guild_clause("guild_id", guild_id)
        async with self.db.reading() as conn:
            return await _scalar(
                conn, f"SELECT COUNT(*) FROM lyrics WHERE status = 'pending' AND {where}", params
            )

    async def pending_lyrics(
        self, guild_id: GuildFilter = ANY_GUILD, *, limit: int | None = None
    ) -> list[LyricsSubmission]:
        """Pending submissions, oldest first."""
        where, params = _guild_clause("guild_id", guild_id)
        async with self.db.reading() as conn:
            rows = await _all(
                conn,
                f"SELECT * FROM lyrics WHERE status = 'pending' AND {where} ORDER BY id LIMIT ?",
                (*params, -1 if limit is None else limit),
            )
        return [_lyrics_record(r) for r in rows]

    async def mark_lyrics_used(self, lyrics_ids: Iterable[int], job_id: int) -> int:
        """pending -> used by ``job_id``; returns how many changed."""
        return await self._set_lyrics_status(lyrics_ids, "used", job_id)

    async def reject_lyrics(self, lyrics_ids: Iterable[int]) -> int:
        """pending -> rejected; returns how many changed."""
        return await self._set_lyrics_status(lyrics_ids, "rejected", None)

    async def lyrics_stats(
        self, guild_id: GuildFilter = ANY_GUILD, *, user_id: int | None = None
    ) -> LyricsStats:
        where, params = _guild_clause("guild_id", guild_id)
        if user_id is not None:
            where += " AND user_id = ?"
            params += (user_id,)
        async with self.db.reading() as conn:
            row = await _one(
                conn,
                f"""SELECT COALESCE(SUM(status = 'pending'), 0) AS pending,
                           COALESCE(SUM(status = 'used'), 0) AS used,
                           COALESCE(SUM(status = 'rejected'), 0) AS rejected,
                           COUNT(DISTINCT user_id) AS contributors,
                           COALESCE(SUM(CASE WHEN status = 'pending'
                                        THEN length(CAST(text AS BLOB)) END), 0) AS pending_bytes
                      FROM lyrics WHERE {where}""",
                params,
            )
        assert row is not None
        return LyricsStats(
            row["pending"], row["used"], row["rejected"], row["contributors"], row["pending_bytes"]
        )

    # ---------------------------------------------------------- fine-tune jobs

    async def create_job(
        self,
        started_by: int,
        *,
        epochs: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        now: datetime | None = None,
    ) -> FinetuneJob:
        """A new ``queued`` job; JobAlreadyActive if one is queued or running."""
        async with self.db.transaction() as conn:
            active = await _one(
                conn, "SELECT id FROM finetune_jobs WHERE state IN ('queued', 'running')", ()
            )
            if active is not None:
                raise JobAlreadyActive(
                    f"fine-tune job #{active['id']} is already running; one at a time",
                    active_id=active["id"],
                )
            cur = await conn.execute(
                """INSERT INTO finetune_jobs (state, started_by, guild_id, channel_id,
                       message_id, epochs, created_at)
                   VALUES ('queued', ?, ?, ?, ?, ?, ?)""",
                (started_by, guild_id, channel_id, message_id, epochs, to_db_time(now or utcnow())),
            )
            job = await self._job(conn, cur.lastrowid)
        assert job is not None
        return job

    async def get_job(self, job_id: int) -> FinetuneJob | None:
        async with self.db.reading() as conn:
            return await self._job(conn, job_id)

    async def active_job(self) -> FinetuneJob | None:
        """The queued or running job, if any."""
        async with self.db.reading() as conn:
            row = await _one(
                conn, "SELECT * FROM finetune_jobs WHERE state IN ('queued', 'running')", ()
            )
        return _job_record(row) if row else None

    async def recent_jobs(self, *, limit: int = 10) -> list[FinetuneJob]:
        async with self.db.reading() as conn:
            rows = await _all(
                conn, "SELECT * FROM finetune_jobs ORDER BY id DESC LIMIT ?", (limit,)
            )
        return [_job_record(r) for r in rows]

    async def start_job(self, job_id: int, *, now: datetime | None = None) -> FinetuneJob | None:
        """queued -> running; None if the job is not queued."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """UPDATE finetune_jobs SET state = 'running', started_at = ?
                    WHERE id = ? AND state = 'queued'""",
                (to_db_time(now or utcnow()), job_id),
            )
            return await self._job(conn, job_id) if cur.rowcount else None

    async def set_job_message(self, job_id: int, channel_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE finetune_jobs SET channel_id = ?, message_id = ? WHERE id = ?",
                (channel_id, message_id, job_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"there is no fine-tune job #{job_id}")

    async def update_job_progress(
        self,
        job_id: int,
        progress: float,
        *,
        status_line: str | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> bool:
        """Progress (clamped to 0..1) of a running job; False if it is not running."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """UPDATE finetune_jobs
                      SET progress = ?, status_line = COALESCE(?, status_line),
                          metrics = COALESCE(?, metrics)
                    WHERE id = ? AND state = 'running'""",
                (
                    min(1.0, max(0.0, float(progress))),
                    status_line,
                    None if metrics is None else _json(metrics),
                    job_id,
                ),
            )
            return cur.rowcount > 0

    async def finish_job(
        self,
        job_id: int,
        state: str,
        *,
        metrics: Mapping[str, Any] | None = None,
        model_path: str | None = None,
        error: str | None = None,
        swapped: bool = False,
        now: datetime | None = None,
    ) -> FinetuneJob | None:
        """queued/running -> a final state; None if the job already finished."""
        if state not in JOB_FINAL_STATES:
            raise StorageError(
                f"a job finishes as one of {', '.join(JOB_FINAL_STATES)}, not {state!r}"
            )
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """UPDATE finetune_jobs
                      SET state = ?, metrics = COALESCE(?, metrics),
                          model_path = COALESCE(?, model_path), error = ?, swapped = ?,
                          progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END,
                          finished_at = ?
                    WHERE id = ? AND state IN ('queued', 'running')""",
                (
                    state,
                    None if metrics is None else _json(metrics),
                    model_path,
                    error,
                    int(swapped),
                    state,
                    to_db_time(now or utcnow()),
                    job_id,
                ),
            )
            return await self._job(conn, job_id) if cur.rowcount else None

    async def set_job_swapped(self, job_id: int, swapped: bool) -> None:
        """Whether the job's model is (still) the one serving, e.g. after a rollback."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE finetune_jobs SET swapped = ? WHERE id = ?", (int(swapped), job_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"there is no fine-tune job #{job_id}")

    async def mark_interrupted_jobs(self, *, now: datetime | None = None) -> list[FinetuneJob]:
        """At start-up: jobs left queued/running by a previous process -> interrupted."""
        async with self.db.transaction() as conn:
            rows = await _all(
                conn, "SELECT id FROM finetune_jobs WHERE state IN ('queued', 'running')", ()
            )
            await conn.execute(
                """UPDATE finetune_jobs
                      SET state = 'interrupted', finished_at = ?,
                          error = COALESCE(error, 'the bot stopped while the job was running')
                    WHERE state IN ('queued', 'running')""",
                (to_db_time(now or utcnow()),),
            )
            jobs = [await self._job(conn, r["id"]) for r in rows]
        return [j for j in jobs if j is not None]

    # ---------------------------------------------------------- guild settings

    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's settings; the defaults (``updated_at=None``) if none stored."""
        async with self.db.reading() as conn:
            return await self._guild_settings(conn, guild_id)

    async def update_guild_settings(
        self,
        guild_id: int,
        *,
        explicit_filter: str | _Unset = UNSET,
        cooldown_seconds: float | None | _Unset = UNSET,
        allowed_channel_ids: Sequence[int] | _Unset = UNSET,
        now: datetime | None = None,
    ) -> GuildSettings:
        """Change the given settings (others keep their value) and return the result."""
        if not isinstance(explicit_filter, _Unset) and explicit_filter not in EXPLICIT_FILTERS:
            raise StorageError(
                f"explicit filter must be one of {', '.join(EXPLICIT_FILTERS)}, not {explicit_filter!r}"
            )
        async with self.db.transaction() as conn:
            current = await self._guild_settings(conn, guild_id)
            merged = GuildSettings(
                guild_id=guild_id,
                explicit_filter=current.explicit_filter
                if isinstance(explicit_filter, _Unset)
                else explicit_filter,
                cooldown_seconds=current.cooldown_seconds
                if isinstance(cooldown_seconds, _Unset)
                else cooldown_seconds,
                allowed_channel_ids=current.allowed_channel_ids
                if isinstance(allowed_channel_ids, _Unset)
                else tuple(dict.fromkeys(int(c) for c in allowed_channel_ids)),
            )
            await conn.execute(
                """INSERT INTO guild_settings (guild_id, explicit_filter, cooldown_seconds,
                       allowed_channel_ids, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id) DO UPDATE SET
                       explicit_filter = excluded.explicit_filter,
                       cooldown_seconds = excluded.cooldown_seconds,
                       allowed_channel_ids = excluded.allowed_channel_ids,
                       updated_at = excluded.updated_at""",
                (
                    guild_id,
                    merged.explicit_filter,
                    merged.cooldown_seconds,
                    json.dumps(list(merged.allowed_channel_ids)),
                    to_db_time(now or utcnow()),
                ),
            )
            return await self._guild_settings(conn, guild_id)

    # ---------------------------------------------------------------- helpers

    async def _verse(self, conn: aiosqlite.Connection, verse_id: int | None) -> VerseRecord | None:
        row = await _one(conn, f"{_VERSE_SELECT} WHERE v.id = ?", (verse_id,))
        return _verse_record(row) if row else None

    async def _battle(self, conn: aiosqlite.Connection, battle_id: int | None) -> Battle | None:
        row = await _one(conn, "SELECT * FROM battles WHERE id = ?", (battle_id,))
        return _battle_record(row) if row else None

    async def _job(self, conn: aiosqlite.Connection, job_id: int | None) -> FinetuneJob | None:
        row = await _one(conn, "SELECT * FROM finetune_jobs WHERE id = ?", (job_id,))
        return _job_record(row) if row else None

    async def _tally(self, conn: aiosqlite.Connection, battle_id: int) -> Tally:
        row = await _one(
            conn,
            """SELECT COALESCE(SUM(side = 'challenger'), 0) AS challenger,
                      COALESCE(SUM(side = 'opponent'), 0) AS opponent
                 FROM battle_votes WHERE battle_id = ?""",
            (battle_id,),
        )
        assert row is not None
        return Tally(row["challenger"], row["opponent"])

    async def _guild_settings(self, conn: aiosqlite.Connection, guild_id: int) -> GuildSettings:
        row = await _one(conn, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        if row is None:
            return GuildSettings(guild_id=guild_id)
        return GuildSettings(
            guild_id=row["guild_id"],
            explicit_filter=row["explicit_filter"],
            cooldown_seconds=row["cooldown_seconds"],
            allowed_channel_ids=tuple(json.loads(row["allowed_channel_ids"])),
            updated_at=from_db_time(row["updated_at"]),
        )

    async def _transition(
        self,
        battle_id: int,
        to_state: str,
        *,
        guard: str,
        guard_params: tuple[Any, ...],
        sets: dict[str, Any],
        now: str,
    ) -> Battle | None:
        # column names come from this module, never from callers; values are parameters
        assignments = ", ".join(f"{column} = ?" for column in ("state", "updated_at", *sets))
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE battles SET {assignments} WHERE id = ? AND {guard}",
                (to_state, now, *sets.values(), battle_id, *guard_params),
            )
            if cur.rowcount == 0:
                return None
            return await self._battle(conn, battle_id)

    async def _set_lyrics_status(
        self, lyrics_ids: Iterable[int], status: str, job_id: int | None
    ) -> int:
        assert status in LYRICS_STATUSES
        ids = list(dict.fromkeys(int(i) for i in lyrics_ids))
        if not ids:
            return 0
        async with self.db.transaction() as conn:
            changed = 0
            for lyrics_id in ids:
                cur = await conn.execute(
                    "UPDATE lyrics SET status = ?, job_id = ? WHERE id = ? AND status = 'pending'",
                    (status, job_id, lyrics_id),
                )
                changed += cur.rowcount
            return changed


_VERSE_SELECT = """SELECT v.*, (SELECT COUNT(*) FROM upvotes u WHERE u.verse_id = v.id) AS upvotes
                     FROM verses v"""


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, default=str)


def _since(since: datetime | None) -> str:
    # every stored time is >= "" as text
    return "" if since is None else to_db_time(since)


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else to_db_time(value)


async def _one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> sqlite3.Row | None:
    async with conn.execute(sql, params) as cur:
        return await cur.fetchone()


async def _all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> list[sqlite3.Row]:
    async with conn.execute(sql, params) as cur:
        return list(await cur.fetchall())


async def _scalar(conn: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> int:
    row = await _one(conn, sql, params)
    return int(row[0]) if row is not None and row[0] is not None else 0


def _verse_record(row: sqlite3.Row) -> VerseRecord:
    return VerseRecord(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        requester_id=row["requester_id"],
        requester_name=row["requester_name"],
        topic=row["topic"],
        bars=row["bars"],
        scheme=row["scheme"],
        text=row["text"],
        rap_score=row["rap_score"],
        rhyme_density=row["rhyme_density"],
        end_rhyme=row["end_rhyme"],
        model_versions=json.loads(row["model_versions"]),
        sampling=json.loads(row["sampling"]),
        seed=row["seed"],
        created_at=_time(row["created_at"]),
        upvotes=row["upvotes"],
    )


def _battle_record(row: sqlite3.Row) -> Battle:
    return Battle(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        challenger_id=row["challenger_id"],
        opponent_id=row["opponent_id"],
        challenger_topic=row["challenger_topic"],
        opponent_topic=row["opponent_topic"],
        bars=row["bars"],
        state=row["state"],
        challenger_verse_id=row["challenger_verse_id"],
        opponent_verse_id=row["opponent_verse_id"],
        deadline=from_db_time(row["deadline"]),
        winner=row["winner"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
    )


def _lyrics_record(row: sqlite3.Row) -> LyricsSubmission:
    return LyricsSubmission(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        text=row["text"],
        sha256=row["sha256"],
        status=row["status"],
        job_id=row["job_id"],
        created_at=_time(row["created_at"]),
    )


def _job_record(row: sqlite3.Row) -> FinetuneJob:
    return FinetuneJob(
        id=row["id"],
        state=row["state"],
        started_by=row["started_by"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        epochs=row["epochs"],
        progress=row["progress"],
        status_line=row["status_line"],
        metrics=json.loads(row["metrics"]),
        model_path=row["model_path"],
        swapped=bool(row["swapped"]),
        error=row["error"],
        created_at=_time(row["created_at"]),
        started_at=from_db_time(row["started_at"]),
        finished_at=from_db_time(row["finished_at"]),
    )


def _time(value: str) -> datetime:
    parsed = from_db_time(value)
    assert parsed is not None
    return parsed


__all__ = [
    "ANY_GUILD",
    "BATTLE_OPEN_STATES",
    "JOB_ACTIVE_STATES",
    "UNSET",
    "Repository",
    "lyrics_fingerprint",
]

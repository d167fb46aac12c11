"""The repository on a real temporary SQLite file: every table round-trips."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage import (
    ANY_GUILD,
    Database,
    DuplicateLyrics,
    JobAlreadyActive,
    NotFound,
    Repository,
    StorageError,
)
from bot.storage.records import VoteOutcome
from rgpt2.verse import Verse

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GUILD = 111


def make_verse(text: str = "first bar\nsecond bar", **overrides: object) -> Verse:
    fields: dict[str, object] = dict(
        bars=text.split("\n"),
        topic="money",
        scheme="AABB",
        seed=1234,
        rhyme_density=0.62,
        end_rhyme=0.75,
        rap_score=0.91,
        model_versions={"forward": "fwd-1", "reverse": "rev-3"},
        sampling={"temperature": 0.9, "top_k": 50, "bars": 2},
    )
    fields.update(overrides)
    return Verse(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def repo(tmp_path: Path):
    db = await Database.open(tmp_path / "repo.sqlite3")
    yield Repository(db)
    await db.close()


# ---------------------------------------------------------------- verses, upvotes


async def test_verse_round_trip(repo):
    verse = make_verse()
    stored = await repo.add_verse(
        verse, requester_id=5, guild_id=GUILD, channel_id=22, requester_name="Alice", now=T0
    )
    again = await repo.get_verse(stored.id)
    assert again == stored
    assert (again.guild_id, again.channel_id, again.message_id) == (GUILD, 22, None)
    assert (again.requester_id, again.requester_name, again.created_at) == (5, "Alice", T0)
    assert again.lines == verse.bars and again.bars == 2 and again.text == verse.text
    assert dict(again.model_versions) == verse.model_versions
    assert dict(again.sampling) == verse.sampling
    assert again.to_verse() == verse
    await repo.set_verse_message(stored.id, 23, 4444)
    moved = await repo.get_verse(stored.id)
    assert (moved.channel_id, moved.message_id) == (23, 4444)
    assert await repo.get_verse(stored.id + 100) is None
    with pytest.raises(NotFound):
        await repo.set_verse_message(stored.id + 100, 1, 1)


async def test_verse_with_unknown_scores_round_trips(repo):
    verse = make_verse(rap_score=None, topic=None)
    stored = await repo.add_verse(verse, requester_id=5, now=T0)
    assert stored.rap_score is None and stored.topic is None and stored.guild_id is None
    assert (await repo.get_verse(stored.id)).to_verse() == verse


async def test_naive_times_are_refused(repo):
    with pytest.raises(ValueError, match="naive"):
        await repo.add_verse(make_verse(), requester_id=1, now=datetime(2026, 1, 1))


async def test_upvote_toggles_and_counts_per_member(repo):
    verse = await repo.add_verse(make_verse(), requester_id=1, guild_id=GUILD)
    first = await repo.toggle_upvote(verse.id, 7)
    assert (first.upvoted, first.count) == (True, 1)
    other = await repo.toggle_upvote(verse.id, 8)
    assert (other.upvoted, other.count) == (True, 2)
    undo = await repo.toggle_upvote(verse.id, 7)
    assert (undo.upvoted, undo.count) == (False, 1)
    assert await repo.upvote_count(verse.id) == 1
    assert await repo.has_upvoted(verse.id, 8) and not await repo.has_upvoted(verse.id, 7)
    assert (await repo.get_verse(verse.id)).upvotes == 1
    with pytest.raises(NotFound):
        await repo.toggle_upvote(verse.id + 1, 7)


async def test_concurrent_upvote_clicks_leave_a_consistent_count(repo):
    verse = await repo.add_verse(make_verse(), requester_id=1)
    # 30 members click once, 10 of them click twice (un-vote): 20 remain
    clicks = [repo.toggle_upvote(verse.id, u) for u in range(30)]
    clicks += [repo.toggle_upvote(verse.id, u) for u in range(10)]
    await asyncio.gather(*clicks)
    assert await repo.upvote_count(verse.id) == 20


async def test_top_verses_by_guild_and_period(repo):
    old = await repo.add_verse(
        make_verse("old"), requester_id=1, guild_id=GUILD, now=T0 - timedelta(days=10)
    )
    a = await repo.add_verse(make_verse("a"), requester_id=1, guild_id=GUILD, now=T0)
    b = await repo.add_verse(
        make_verse("b"), requester_id=2, guild_id=GUILD, now=T0 + timedelta(hours=1)
    )
    elsewhere = await repo.add_verse(make_verse("x"), requester_id=3, guild_id=999, now=T0)
    await repo.add_verse(make_verse("none"), requester_id=3, guild_id=GUILD, now=T0)
    for user in range(5):
        await repo.toggle_upvote(old.id, user)
    for user in range(2):
        await repo.toggle_upvote(a.id, user)
        await repo.toggle_upvote(b.id, user)
    for user in range(9):
        await repo.toggle_upvote(elsewhere.id, user)

    all_time = await repo.top_verses(GUILD)
    assert [v.id for v in all_time] == [old.id, a.id, b.id]  # tie a/b: older first
    assert [v.upvotes for v in all_time] == [5, 2, 2]
    week = await repo.top_verses(GUILD, since=T0 - timedelta(days=7))
    assert [v.id for v in week] == [a.id, b.id]
    assert [v.id for v in await repo.top_verses(GUILD, limit=1)] == [old.id]
    assert len(await repo.top_verses(GUILD, min_upvotes=0)) == 4
    assert [v.id for v in await repo.top_verses(ANY_GUILD, limit=1)] == [elsewhere.id]


async def test_leaderboard_ranks_requesters_by_upvotes_received(repo):
    v1 = await repo.add_verse(make_verse(), requester_id=1, guild_id=GUILD, requester_name="one")
    v2 = await repo.add_verse(make_verse(), requester_id=2, guild_id=GUILD, requester_name="two")
    v3 = await repo.add_verse(make_verse(), requester_id=2, guild_id=GUILD, requester_name="TWO")
    await repo.add_verse(make_verse(), requester_id=3, guild_id=GUILD)
    await repo.add_verse(make_verse(), requester_id=4, guild_id=999)
    for user in (10, 11, 12):
        await repo.toggle_upvote(v1.id, user)
    for user in (10, 11):
        await repo.toggle_upvote(v2.id, user)
    await repo.toggle_upvote(v3.id, 10)
    board = await repo.leaderboard(GUILD)
    assert [(e.user_id, e.upvotes, e.verses, e.name) for e in board] == [
        (2, 3, 2, "TWO"),  # same upvotes as member 1: more verses first
        (1, 3, 1, "one"),
        (3, 0, 1, None),
    ]
    assert await repo.count_verses() == 5 and await repo.count_verses(GUILD) == 4
    assert await repo.count_verses(None) == 0
    recent = await repo.recent_verses(GUILD, requester_id=2)
    assert [v.id for v in recent] == [v3.id, v2.id]


# ------------------------------------------------------------------------ battles


async def verses_for_battle(repo: Repository) -> tuple[int, int]:
    a = await repo.add_verse(make_verse("c"), requester_id=1, guild_id=GUILD)
    b = await repo.add_verse(make_verse("o"), requester_id=2, guild_id=GUILD)
    return a.id, b.id


async def test_battle_round_trip_and_full_lifecycle(repo):
    battle = await repo.create_battle(
        1,
        2,
        bars=8,
        deadline=T0 + timedelta(minutes=5),
        guild_id=GUILD,
        channel_id=22,
        challenger_topic="money",
        opponent_topic="fame",
        now=T0,
    )
    assert (await repo.get_battle(battle.id)) == battle
    assert battle.state == "pending" and battle.is_open and battle.winner is None
    assert (battle.challenger_topic, battle.opponent_topic, battle.bars) == ("money", "fame", 8)
    assert battle.deadline == T0 + timedelta(minutes=5)
    await repo.set_battle_message(battle.id, 22, 999)
    assert (await repo.get_battle(battle.id)).message_id == 999

    assert await repo.accept_battle(battle.id, 1, now=T0) is None  # not the opponent
    writing = await repo.accept_battle(battle.id, 2, now=T0 + timedelta(minutes=1))
    assert writing.state == "writing" and writing.deadline is None
    cv, ov = await verses_for_battle(repo)
    voting = await repo.start_battle_voting(
        battle.id,
        challenger_verse_id=cv,
        opponent_verse_id=ov,
        deadline=T0 + timedelta(minutes=20),
        now=T0 + timedelta(minutes=2),
    )
    assert voting.state == "voting" and (voting.challenger_verse_id, voting.opponent_verse_id) == (
        cv,
        ov,
    )

    at = T0 + timedelta(minutes=3)
    assert await repo.cast_battle_vote(battle.id, 1, "challenger", now=at) == VoteOutcome.BATTLER
    assert await repo.cast_battle_vote(battle.id, 2, "opponent", now=at) == VoteOutcome.BATTLER
    assert await repo.cast_battle_vote(battle.id, 10, "opponent", now=at) == VoteOutcome.RECORDED
    assert await repo.cast_battle_vote(battle.id, 10, "opponent", now=at) == VoteOutcome.UNCHANGED
    assert await repo.cast_battle_vote(battle.id, 10, "challenger", now=at) == VoteOutcome.CHANGED
    assert await repo.cast_battle_vote(battle.id, 11, "challenger", now=at) == VoteOutcome.RECORDED
    assert await repo.cast_battle_vote(battle.id, 12, "opponent", now=at) == VoteOutcome.RECORDED
    late = T0 + timedelta(minutes=21)
    assert (
        await repo.cast_battle_vote(battle.id, 13, "opponent", now=late) == VoteOutcome.NOT_VOTING
    )
    assert await repo.battle_vote(battle.id, 10) == "challenger"
    assert await repo.battle_vote(battle.id, 99) is None
    tally = await repo.battle_tally(battle.id)
    assert (tally.challenger, tally.opponent, tally.leader) == (2, 1, "challenger")

    closed, final = await repo.close_battle(battle.id, now=late)
    assert closed.state == "closed" and closed.winner == "challenger" and closed.winner_id == 1
    assert final == tally
    assert await repo.close_battle(battle.id, now=late) is None  # only once
    assert (
        await repo.cast_battle_vote(battle.id, 14, "opponent", now=late) == VoteOutcome.NOT_VOTING
    )
    assert await repo.cancel_battle(battle.id) is None  # final states stay final


async def test_tie_and_stats(repo):
    stats_before = await repo.battle_stats(1)
    assert (stats_before.battles, stats_before.wins, stats_before.open) == (0, 0, 0)
    results = []
    for votes in ({10: "challenger", 11: "opponent"}, {10: "opponent"}, {10: "challenger"}):
        battle = await repo.create_battle(1, 2, bars=4, deadline=None, guild_id=GUILD, now=T0)
        await repo.accept_battle(battle.id, 2, now=T0)
        cv, ov = await verses_for_battle(repo)
        await repo.start_battle_voting(
            battle.id,
            challenger_verse_id=cv,
            opponent_verse_id=ov,
            deadline=T0 + timedelta(hours=1),
            now=T0,
        )
        for voter, side in votes.items():
            await repo.cast_battle_vote(battle.id, voter, side, now=T0)
        closed, _ = await repo.close_battle(battle.id, now=T0)
        results.append(closed)
    assert [b.winner for b in results] == ["tie", "opponent", "challenger"]
    assert results[0].winner_id is None
    await repo.create_battle(2, 1, bars=4, deadline=None, guild_id=GUILD, now=T0)  # open
    await repo.create_battle(1, 3, bars=4, deadline=None, guild_id=999, now=T0)  # other guild
    one = await repo.battle_stats(1, GUILD)
    assert (one.battles, one.wins, one.losses, one.ties, one.open) == (3, 1, 1, 1, 1)
    two = await repo.battle_stats(2)
    assert (two.battles, two.wins, two.losses, two.ties, two.open) == (3, 1, 1, 1, 1)
    assert (await repo.battle_stats(1)).open == 2


async def test_battle_leaderboard_ranks_by_wins(repo):
    async def fight(challenger: int, opponent: int, votes: dict[int, str], when: datetime) -> None:
        battle = await repo.create_battle(
            challenger, opponent, bars=4, deadline=None, guild_id=GUILD, now=when
        )
        await repo.accept_battle(battle.id, opponent, now=when)
        cv, ov = await verses_for_battle(repo)
        await repo.start_battle_voting(
            battle.id,
            challenger_verse_id=cv,
            opponent_verse_id=ov,
            deadline=when + timedelta(hours=1),
            now=when,
        )
        for voter, side in votes.items():
            await repo.cast_battle_vote(battle.id, voter, side, now=when)
        await repo.close_battle(battle.id, now=when)

    old = T0 - timedelta(days=30)
    await fight(1, 2, {10: "challenger"}, T0)  # 1 beats 2
    await fight(3, 1, {10: "challenger"}, T0)  # 3 beats 1
    await fight(3, 2, {10: "opponent", 11: "challenger"}, T0)  # tie
    await fight(2, 4, {10: "challenger"}, old)  # 2 beats 4, a month ago
    await repo.create_battle(4, 1, bars=4, deadline=None, guild_id=GUILD, now=T0)  # open
    await fight(5, 6, {10: "challenger"}, T0)  # 5 beats 6
    board = await repo.battle_leaderboard(GUILD)
    rows = [(s.user_id, s.battles, s.wins, s.losses, s.ties, s.open) for s in board]
    # 3: 1 win 1 tie; 5: 1 win in 1 battle; 1 and 2: 1 win 1 loss; 4: 0 wins; 6: 0 wins
    assert rows == [
        (3, 2, 1, 0, 1, 0),
        (5, 1, 1, 0, 0, 0),
        (2, 3, 1, 1, 1, 0),
        (1, 2, 1, 1, 0, 1),
        (4, 1, 0, 1, 0, 1),
        (6, 1, 0, 1, 0, 0),
    ]
    recent = await repo.battle_leaderboard(GUILD, since=T0 - timedelta(days=1), limit=3)
    assert [(s.user_id, s.battles, s.wins) for s in recent] == [(3, 2, 1), (5, 1, 1), (1, 2, 1)]
    assert await repo.battle_leaderboard(999) == []
    assert len(await repo.battle_leaderboard(ANY_GUILD)) == 6


async def test_decline_expire_cancel(repo):
    deadline = T0 + timedelta(minutes=5)
    declined = await repo.create_battle(1, 2, bars=8, deadline=deadline, now=T0)
    assert await repo.decline_battle(declined.id, 1, now=T0) is None  # only the opponent
    assert (await repo.decline_battle(declined.id, 2, now=T0)).state == "declined"
    assert await repo.accept_battle(declined.id, 2, now=T0) is None

    expiring = await repo.create_battle(1, 2, bars=8, deadline=deadline, now=T0)
    assert await repo.expire_battle(expiring.id, now=deadline - timedelta(seconds=1)) is None
    assert await repo.accept_battle(expiring.id, 2, now=deadline) is None  # too late
    assert (await repo.expire_battle(expiring.id, now=deadline)).state == "expired"

    cancelled = await repo.create_battle(1, 2, bars=8, deadline=deadline, now=T0)
    await repo.accept_battle(cancelled.id, 2, now=T0)
    assert (await repo.cancel_battle(cancelled.id, now=T0)).state == "cancelled"
    with pytest.raises(StorageError, match="themselves"):
        await repo.create_battle(1, 1, bars=8, deadline=None)


async def test_two_concurrent_accepts_cannot_both_win(tmp_path):
    # two connections to the same file, as if two processes or two clicks raced
    path = tmp_path / "race.sqlite3"
    db1, db2 = await Database.open(path), await Database.open(path)
    try:
        r1, r2 = Repository(db1), Repository(db2)
        for _ in range(10):
            battle = await r1.create_battle(1, 2, bars=8, deadline=None)
            results = await asyncio.gather(
                r1.accept_battle(battle.id, 2),
                r2.accept_battle(battle.id, 2),
                r1.accept_battle(battle.id, 2),
                r2.decline_battle(battle.id, 2),
            )
            assert sum(r is not None for r in results) == 1
    finally:
        await db1.close()
        await db2.close()


async def test_open_battles_for_resuming_after_restart(tmp_path):
    path = tmp_path / "restart.sqlite3"
    db = await Database.open(path)
    repo = Repository(db)
    late = await repo.create_battle(1, 2, bars=8, deadline=T0 + timedelta(minutes=9), now=T0)
    soon = await repo.create_battle(3, 4, bars=8, deadline=T0 + timedelta(minutes=1), now=T0)
    done = await repo.create_battle(5, 6, bars=8, deadline=T0, now=T0)
    await repo.decline_battle(done.id, 6)
    await db.close()

    reopened = await Database.open(path)
    try:
        open_now = await Repository(reopened).open_battles()
        assert [b.id for b in open_now] == [soon.id, late.id]
        between = await Repository(reopened).active_battle_between(2, 1)
        assert between is not None and between.id == late.id
        assert await Repository(reopened).active_battle_between(5, 6) is None
    finally:
        await reopened.close()


# ------------------------------------------------------------------------- lyrics


async def test_lyrics_round_trip_duplicates_and_use(repo):
    first = await repo.add_lyrics(
        5, "  I got the flow \r\n\r\n you know  \n", guild_id=GUILD, now=T0
    )
    assert first.text == "I got the flow\n\n you know"
    assert (first.user_id, first.guild_id, first.status, first.job_id) == (
        5,
        GUILD,
        "pending",
        None,
    )
    assert await repo.get_lyrics(first.id) == first
    with pytest.raises(DuplicateLyrics) as dup:
        await repo.add_lyrics(6, "i GOT the   flow\nYou know")
    assert dup.value.existing_id == first.id and "already submitted" in str(dup.value)
    with pytest.raises(StorageError, match="empty"):
        await repo.add_lyrics(6, " \n\t")
    second = await repo.add_lyrics(6, "another verse", now=T0)
    third = await repo.add_lyrics(6, "a third one", guild_id=GUILD, now=T0)
    assert await repo.pending_lyrics_count() == 3
    assert await repo.pending_lyrics_count(GUILD) == 2
    assert [x.id for x in await repo.pending_lyrics()] == [first.id, second.id, third.id]
    assert [x.id for x in await repo.pending_lyrics(limit=1)] == [first.id]

    job = await repo.create_job(1, epochs=1)
    assert await repo.mark_lyrics_used([first.id, second.id, first.id], job.id) == 2
    assert await repo.reject_lyrics([third.id, first.id]) == 1  # first is no longer pending
    used = await repo.get_lyrics(first.id)
    assert (used.status, used.job_id) == ("used", job.id)
    assert (await repo.get_lyrics(third.id)).status == "rejected"
    stats = await repo.lyrics_stats()
    assert (stats.pending, stats.used, stats.rejected, stats.contributors) == (0, 2, 1, 2)
    fourth = await repo.add_lyrics(7, "héllo wörld", now=T0)
    stats = await repo.lyrics_stats()
    assert stats.pending == 1 and stats.pending_bytes == len(fourth.text.encode())
    assert (await repo.lyrics_stats(user_id=6)).used == 1


# ------------------------------------------------------------------- fine-tune jobs


async def test_job_round_trip_and_lifecycle(repo):
    job = await repo.create_job(42, epochs=3, guild_id=GUILD, channel_id=22, now=T0)
    assert (job.state, job.started_by, job.epochs, job.progress, job.swapped) == (
        "queued",
        42,
        3,
        0.0,
        False,
    )
    assert job.is_active and await repo.get_job(job.id) == job and await repo.active_job() == job
    with pytest.raises(JobAlreadyActive) as active:
        await repo.create_job(43, epochs=1)
    assert active.value.active_id == job.id
    await repo.set_job_message(job.id, 22, 777)
    assert await repo.update_job_progress(job.id, 0.5) is False  # not running yet
    running = await repo.start_job(job.id, now=T0 + timedelta(seconds=1))
    assert running.state == "running" and running.started_at == T0 + timedelta(seconds=1)
    assert await repo.start_job(job.id) is None
    assert await repo.update_job_progress(
        job.id, 1.7, status_line="epoch 1/3", metrics={"loss": 3.1}
    )
    progressed = await repo.get_job(job.id)
    assert (progressed.progress, progressed.status_line, dict(progressed.metrics)) == (
        1.0,
        "epoch 1/3",
        {"loss": 3.1},
    )
    assert progressed.message_id == 777
    finished = await repo.finish_job(
        job.id,
        "succeeded",
        metrics={"val_ppl": 41.5},
        model_path="/m/rev-4",
        swapped=True,
        now=T0 + timedelta(minutes=5),
    )
    assert (finished.state, finished.progress, finished.model_path, finished.swapped) == (
        "succeeded",
        1.0,
        "/m/rev-4",
        True,
    )
    assert dict(finished.metrics) == {"val_ppl": 41.5}
    assert finished.finished_at == T0 + timedelta(minutes=5) and not finished.is_active
    assert await repo.finish_job(job.id, "failed") is None  # already final
    assert await repo.active_job() is None
    await repo.set_job_swapped(job.id, False)
    assert (await repo.get_job(job.id)).swapped is False
    with pytest.raises(StorageError):
        await repo.finish_job(job.id, "running")

    failed = await repo.create_job(42, epochs=1)
    await repo.start_job(failed.id)
    done = await repo.finish_job(failed.id, "failed", error="child exited with 1")
    assert (done.state, done.error, done.progress) == ("failed", "child exited with 1", 0.0)
    assert [j.id for j in await repo.recent_jobs()] == [failed.id, job.id]


async def test_jobs_left_running_are_marked_interrupted_at_startup(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    db = await Database.open(path)
    job = await Repository(db).create_job(1, epochs=1)
    await Repository(db).start_job(job.id)
    await db.close()

    db = await Database.open(path)
    try:
        repo = Repository(db)
        interrupted = await repo.mark_interrupted_jobs(now=T0)
        assert [(j.id, j.state, j.finished_at) for j in interrupted] == [
            (job.id, "interrupted", T0)
        ]
        assert "stopped" in interrupted[0].error
        assert await repo.mark_interrupted_jobs() == []
        assert (await repo.create_job(1, epochs=1)).state == "queued"  # free again
    finally:
        await db.close()


# ------------------------------------------------------------------ guild settings


async def test_guild_settings_defaults_and_partial_updates(repo):
    default = await repo.get_guild_settings(GUILD)
    assert default == dataclasses.replace(
        default,
        explicit_filter="off",
        cooldown_seconds=None,
        allowed_channel_ids=(),
        updated_at=None,
    )
    assert default.channel_allowed(12345)
    changed = await repo.update_guild_settings(
        GUILD, explicit_filter="mask", allowed_channel_ids=[5, 6, 5], now=T0
    )
    assert (changed.explicit_filter, changed.cooldown_seconds, changed.allowed_channel_ids) == (
        "mask",
        None,
        (5, 6),
    )
    assert (
        changed.updated_at == T0 and changed.channel_allowed(5) and not changed.channel_allowed(7)
    )
    again = await repo.update_guild_settings(GUILD, cooldown_seconds=12.5)
    assert (again.explicit_filter, again.cooldown_seconds, again.allowed_channel_ids) == (
        "mask",
        12.5,
        (5, 6),
    )
    assert await repo.get_guild_settings(GUILD) == again
    cleared = await repo.update_guild_settings(GUILD, cooldown_seconds=None, allowed_channel_ids=[])
    assert cleared.cooldown_seconds is None and cleared.allowed_channel_ids == ()
    assert (await repo.get_guild_settings(999)).updated_at is None  # others untouched
    with pytest.raises(StorageError, match="explicit filter"):
        await repo.update_guild_settings(GUILD, explicit_filter="loud")


# -------------------------------------------------------------------- Database


async def test_failed_transaction_rolls_back_and_releases_the_connection(repo):
    with pytest.raises(RuntimeError):
        async with repo.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, '2026-01-01T00:00:00.000000+00:00')"
            )
            raise RuntimeError("boom")
    assert (await repo.get_guild_settings(1)).updated_at is None
    assert not repo.db._conn.in_transaction
    await repo.update_guild_settings(1, explicit_filter="mask")  # not stuck


async def test_cancelled_transaction_rolls_back(repo):
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with repo.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, updated_at) VALUES (2, '2026-01-01T00:00:00.000000+00:00')"
            )
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await repo.get_guild_settings(2)).updated_at is None
    assert await repo.count_verses() == 0


async def test_closed_database_refuses_use(tmp_path):
    db = await Database.open(tmp_path / "closed.sqlite3")
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        await Repository(db).count_verses()


async def test_in_memory_database_is_refused():
    with pytest.raises(StorageError, match="file"):
        await Database.open(":memory:")

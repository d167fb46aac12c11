"""BattleService and RapService rules with a real database and the real generation service."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.services.battles import BattleRefused
from bot.services.rap import Busy, CooldownActive, RapOptions
from rgpt2.errors import InvalidRequest
from tests.bot_fakes import BotFakeGenerator, make_services

A, B, C = 11, 12, 13


@pytest.fixture
async def services(tmp_path):
    services = await make_services(tmp_path / "s.sqlite3", cooldown_seconds=30)
    yield services
    await services.close()


async def test_two_concurrent_accepts_only_one_wins(services):
    battles = services.battles
    battle = await battles.challenge(guild_id=1, channel_id=2, challenger_id=A, opponent_id=B)
    results = await asyncio.gather(
        battles.accept(battle.id, B), battles.accept(battle.id, B), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert any(isinstance(r, BattleRefused) for r in results)


async def test_one_open_battle_per_pair_and_options_validated(services):
    battles = services.battles
    await battles.challenge(guild_id=1, channel_id=2, challenger_id=A, opponent_id=B)
    with pytest.raises(BattleRefused, match="already have a battle"):
        await battles.challenge(guild_id=1, channel_id=2, challenger_id=B, opponent_id=A)
    with pytest.raises(InvalidRequest, match="bars"):
        await battles.challenge(guild_id=1, channel_id=2, challenger_id=A, opponent_id=C, bars=2)


async def test_a_battle_cut_off_while_writing_is_cancelled(services):
    battles = services.battles
    battle = await battles.challenge(guild_id=1, channel_id=2, challenger_id=A, opponent_id=B)
    await battles.accept(battle.id, B)
    await services.generation.stop()  # the bot shuts down mid-battle
    with pytest.raises(Exception, match="not running"):
        await battles.write(battle.id, ("a", "b"))
    assert (await battles.get(battle.id)).state == "cancelled"


async def test_votes_after_the_deadline_are_refused_by_the_clock(services):
    battles = services.battles
    battle = await battles.challenge(guild_id=1, channel_id=2, challenger_id=A, opponent_id=B)
    await battles.accept(battle.id, B)
    battle = await battles.write(battle.id, ("a", "b"))
    later = battle.deadline + dt.timedelta(seconds=1)
    battles.clock = lambda: later
    ack = await battles.vote(battle.id, C, "opponent")
    assert not ack.counted and "closed" in ack.message
    with pytest.raises(BattleRefused, match="challenger or the opponent"):
        battles.clock = lambda: battle.deadline - dt.timedelta(seconds=5)
        await battles.vote(battle.id, C, "referee")


async def test_rap_cooldown_is_forgiven_when_generation_fails(tmp_path):
    generator = BotFakeGenerator()
    services = await make_services(tmp_path / "s.sqlite3", generator, cooldown_seconds=30)
    rap = services.rap
    verse = await rap.rap(RapOptions(topic="x"), guild_id=1, channel_id=2, user_id=A, user_name="a")
    assert verse.requester_name == "a"
    with pytest.raises(CooldownActive) as info:
        await rap.rap(RapOptions(), guild_id=1, channel_id=2, user_id=A, user_name="a")
    assert 29 <= info.value.wait <= 30

    def broken(requests):
        raise RuntimeError("out of memory")

    generator.generate = broken  # type: ignore[method-assign]
    with pytest.raises(Exception, match="out of memory|failed"):
        await rap.rap(RapOptions(), guild_id=1, channel_id=2, user_id=B, user_name="b")
    assert rap.cooldowns.remaining((1, B)) == 0  # B may try again at once
    await services.close()


async def test_busy_answer_names_the_queue_and_a_wait(tmp_path):
    import threading

    generator = BotFakeGenerator()
    generator.gate = threading.Event()
    services = await make_services(tmp_path / "s.sqlite3", generator, queue_size=1, max_batch=1)
    rap = services.rap
    first = rap.submit(await rap.prepare(1, A, RapOptions()), 1, A)
    while not generator.batches:
        await asyncio.sleep(0.01)
    second = rap.submit(await rap.prepare(1, B, RapOptions()), 1, B)
    with pytest.raises(Busy) as info:
        rap.submit(await rap.prepare(1, C, RapOptions()), 1, C)
    assert info.value.waiting == 1 and info.value.wait > 0
    assert "1 verses waiting" in str(info.value)
    generator.gate.set()
    await asyncio.gather(first, second)
    await services.close()

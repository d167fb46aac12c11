"""The client itself: command sync targets, persistent buttons, clean shutdown."""

from __future__ import annotations

import asyncio

import discord
import pytest

from bot.client import RGPT2Bot
from tests.bot_fakes import BotFakeGenerator, make_services
from tests.discord_harness import Harness, Member

DEV_GUILD = 777


async def start_and_record_syncs(services, state, dev_guild, mode) -> list[int | None]:
    bot = RGPT2Bot(services, dev_guild_id=dev_guild, sync=mode, sync_state=state)
    synced: list[int | None] = []

    async def fake_sync(*, guild: discord.abc.Snowflake | None = None) -> list[object]:
        synced.append(guild.id if guild else None)
        return [object()] * len(bot.tree.get_commands(guild=guild))

    bot.tree.sync = fake_sync  # type: ignore[method-assign]
    async with Harness(bot):
        names = {c.name for c in bot.tree.get_commands()}
        assert names == {"rap", "battle", "top", "leaderboard", "verse", "lyrics", "admin"}
        if dev_guild is not None and mode != "never":
            # copied to the development guild, where Discord shows them at once
            assert {c.name for c in bot.tree.get_commands(guild=discord.Object(dev_guild))} == names
    return synced


@pytest.mark.parametrize("dev_guild", [DEV_GUILD, None])
async def test_commands_sync_once_to_the_dev_guild_or_globally_and_sync_forces(tmp_path, dev_guild):
    state = tmp_path / "commands-synced"
    runs = []
    for mode in ("auto", "auto", "force", "never"):
        services = await make_services(tmp_path / "c.sqlite3")
        runs.append(await start_and_record_syncs(services, state, dev_guild, mode))
    # first start syncs; a restart with the same commands does not; --sync always does
    assert runs == [[dev_guild], [], [dev_guild], []]


async def test_every_persistent_button_is_registered(tmp_path):
    services = await make_services(tmp_path / "c.sqlite3")
    bot = RGPT2Bot(services)
    async with Harness(bot):
        patterns = {p.pattern for p in bot._connection._view_store._dynamic_items}
        for prefix in ("vote", "again", "accept", "decline", "bvote"):
            assert any(p.startswith(f"rgpt2:{prefix}:") for p in patterns), prefix


async def test_shutdown_delivers_the_running_verse_then_closes_the_database(tmp_path):
    generator = BotFakeGenerator(delay=0.3)
    services = await make_services(tmp_path / "c.sqlite3", generator, max_batch=1)
    bot = RGPT2Bot(services)
    alice, bob = Member(1, "alice"), Member(2, "bob")
    async with Harness(bot) as h:
        running = await h.slash("rap", alice, settle=False)
        await h.wait_for(running.token, lambda s: s.response_type == 5)
        while not generator.batches:
            await asyncio.sleep(0.01)
        queued = await h.slash("rap", bob, settle=False)
        await h.wait_for(queued.token, lambda s: s.response_type == 5)
        await bot.close()
        # alice's verse was being written: it is delivered and stored
        assert h.replies(running.token)[-1].embeds
        # bob's was still queued: he is told, privately, instead of waiting forever
        told = h.replies(queued.token)[-1]
        assert told.ephemeral and "shutting down" in told.content
        assert services.db._closed
        assert not services.generation.running


async def test_sigterm_stops_the_bot_and_closes_everything(tmp_path, monkeypatch):
    import os
    import signal

    from bot import client

    services = await make_services(tmp_path / "c.sqlite3")
    bot = RGPT2Bot(services)
    started = asyncio.Event()

    async def fake_start(token: str) -> None:  # connecting to Discord is not tested here
        assert token == "test-token"
        started.set()
        await asyncio.Event().wait()

    async def fake_build(settings, *, sync=False):
        return bot

    monkeypatch.setattr(bot, "start", fake_start)
    monkeypatch.setattr(client, "build_bot", fake_build)

    class FakeSettings:
        def require_token(self) -> str:
            return "test-token"

    async def terminate_soon() -> None:
        await started.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    killer = asyncio.create_task(terminate_soon())
    assert await client._run(FakeSettings(), False) == 0  # type: ignore[arg-type]
    await killer
    assert services.db._closed and not services.generation.running
    asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

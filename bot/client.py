"""The Discord client: a :class:`commands.Bot` with its dependencies passed in.

``setup_hook`` loads one cog per feature, registers the persistent buttons, lets the
services recover from a restart (interrupted fine-tunes, open battles) and syncs the
slash commands. :func:`run_bot` builds everything from the settings and runs it until
SIGINT/SIGTERM, then stops the generation worker and closes the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.views import DYNAMIC_ITEMS, NO_PINGS, report_error, send_private

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services.container import BotServices

log = logging.getLogger(__name__)

COGS = ("bot.cogs.rap", "bot.cogs.battle", "bot.cogs.ratings", "bot.cogs.lyrics", "bot.cogs.admin")
# commands an admin must reach from any channel, even when the bot is limited to some
UNRESTRICTED_COMMANDS = frozenset({"admin"})

SHUTDOWN_GRACE_SECONDS = 10.0

SyncMode = Literal["auto", "force", "never"]


class RGPT2Tree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        command = interaction.command
        root = command.root_parent or command if command is not None else None
        if interaction.guild_id is None or root is None or root.name in UNRESTRICTED_COMMANDS:
            return True
        services: BotServices = interaction.client.services  # type: ignore[attr-defined]
        allowed = await services.guilds.channel_allowed(
            interaction.guild_id, interaction.channel_id
        )
        if not allowed:
            channels = await services.guilds.allowed_channels(interaction.guild_id)
            where = ", ".join(f"<#{c}>" for c in channels)
            await send_private(interaction, f"I only answer in {where} on this server.")
        return allowed

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        if isinstance(error, app_commands.CommandInvokeError):
            await report_error(interaction, error.original)
        else:
            await report_error(interaction, error)


class RGPT2Bot(commands.Bot):
    """The bot. ``services`` is a :class:`bot.services.container.BotServices`."""

    def __init__(
        self,
        services: BotServices,
        *,
        dev_guild_id: int | None = None,
        sync: SyncMode = "never",
        sync_state: Path | None = None,
        cogs: tuple[str, ...] = COGS,
    ) -> None:
        """``sync``: "auto" syncs when the commands changed since the fingerprint saved in
        ``sync_state`` (Discord rate-limits syncs), "force" always, "never" not at all."""
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=RGPT2Tree,
        )
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.sync_mode: SyncMode = sync
        self.sync_state = sync_state
        self.extensions_to_load = cogs

    async def setup_hook(self) -> None:
        for extension in self.extensions_to_load:
            await self.load_extension(extension)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.services.recover()
        if self.sync_mode != "never":
            await self.sync_commands(force=self.sync_mode == "force")

    async def sync_commands(self, *, force: bool = False) -> bool:
        """To the development guild when configured (instant), globally otherwise.

        Skipped, unless ``force``, when the commands are the ones synced last time to the
        same place. Returns whether it synced.
        """
        guild = discord.Object(id=self.dev_guild_id) if self.dev_guild_id is not None else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        target = f"guild {guild.id}" if guild is not None else "global"
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        fingerprint = hashlib.sha256(
            json.dumps([target, payload], sort_keys=True).encode()
        ).hexdigest()
        state = self.sync_state
        if not force and state is not None and state.is_file():
            if state.read_text(encoding="utf-8").strip() == fingerprint:
                log.info("slash commands unchanged since the last sync (%s): not syncing", target)
                return False
        synced = await self.tree.sync(guild=guild)
        if guild is not None:
            log.info("synced %d commands to development guild %s", len(synced), guild.id)
        else:
            log.info(
                "synced %d commands globally (Discord may take a while to show them)", len(synced)
            )
        if state is not None:
            state.write_text(fingerprint + "\n", encoding="utf-8")
        return True

    async def on_ready(self) -> None:
        log.info(
            "logged in as %s (%s) in %d servers",
            self.user,
            self.user and self.user.id,
            len(self.guilds),
        )

    async def close_services(self) -> None:
        """Stop timers and the worker, close the database (idempotent)."""
        for cog in list(self.cogs.values()):
            stop = getattr(cog, "stop_timers", None)
            if stop is not None:
                stop()
        await self.services.close()

    async def close(self) -> None:
        """Clean shutdown: the batch being generated is delivered, queued requests fail with
        a clear message, handlers get a moment to post, then Discord and the database close."""
        for cog in list(self.cogs.values()):
            stop = getattr(cog, "stop_timers", None)
            if stop is not None:
                stop()
        await self.services.generation.stop()
        handlers = [
            t
            for t in asyncio.all_tasks()
            if t.get_name().startswith(("CommandTree-invoker", "discord-ui-"))
            and "timeout" not in t.get_name()
            and not t.done()
        ]
        if handlers:
            await asyncio.wait(handlers, timeout=SHUTDOWN_GRACE_SECONDS)
        await super().close()
        await self.close_services()


async def build_bot(settings: Settings, *, sync: bool = False) -> RGPT2Bot:
    """Everything the bot needs, from settings: database, models, worker, services."""
    from bot.services.container import build_services

    services = await build_services(settings)
    mode: SyncMode = "force" if sync else "auto"
    state = Path(settings.db_path).with_name(Path(settings.db_path).name + ".commands-synced")
    return RGPT2Bot(services, dev_guild_id=settings.dev_guild_id, sync=mode, sync_state=state)


def run_bot(settings: Settings, sync: bool = False) -> int:
    """Run the bot until SIGINT/SIGTERM; returns an exit code."""
    return asyncio.run(_run(settings, sync))


async def _run(settings: Settings, sync: bool) -> int:
    bot = await build_bot(settings, sync=sync)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    runner = asyncio.create_task(bot.start(settings.require_token()), name="rgpt2-discord")
    waiter = asyncio.create_task(stopping.wait(), name="rgpt2-signal")
    done, _ = await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        log.info("shutting down: finishing in-flight verses, then closing the database")
    waiter.cancel()
    await bot.close()
    if runner in done and runner.exception() is not None:
        exc = runner.exception()
        if isinstance(exc, discord.LoginFailure):
            log.error("Discord refused the token: check DISCORD_TOKEN")
            return 1
        raise exc  # type: ignore[misc]
    runner.cancel()
    return 0

"""/admin: fine-tune the reverse model, follow it, cancel, roll back; per-server settings.

Server managers and the configured admin ids only — checked in each handler (not with
Discord's default permissions alone, which a server can override).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.render import Card, job_card, model_label, progress_bar
from bot.views import NO_PINGS, card_embed, services_of
from rgpt2.errors import RGPT2Error

if TYPE_CHECKING:
    from bot.storage.records import FinetuneJob

log = logging.getLogger(__name__)

# edits of the progress message, at most one per this many seconds (Discord rate limits)
PROGRESS_EDIT_SECONDS = 3.0


class NotConfigured(RGPT2Error):
    """An admin action that cannot happen as things are (no jobs configured, nothing to do)."""


def require_admin(interaction: discord.Interaction) -> None:
    # Discord resolves the member's permissions (roles, overwrites, owner, administrator)
    # and sends them with the interaction
    manages = interaction.guild_id is not None and interaction.permissions.manage_guild
    services_of(interaction).guilds.require_admin(interaction.user.id, manages_server=manages)


def finetune_of(interaction: discord.Interaction):  # noqa: ANN201 - FinetuneJobs, optional
    finetune = services_of(interaction).finetune
    if finetune is None:
        raise NotConfigured("fine-tuning is not configured on this bot.")
    return finetune


class ProgressMessage:
    """Edits one message as a job runs (throttled), then posts the result with the curve."""

    def __init__(
        self, interaction: discord.Interaction, message: discord.InteractionMessage
    ) -> None:
        self.interaction = interaction
        self.message = message
        self.last_edit = 0.0
        self.lock = asyncio.Lock()
        self.done = asyncio.Event()

    async def __call__(self, job: FinetuneJob) -> None:
        final = not job.is_active
        now = time.monotonic()
        if not final and now - self.last_edit < PROGRESS_EDIT_SECONDS:
            return
        async with self.lock:
            if self.done.is_set():
                return
            self.last_edit = now
            text = f"Fine-tune job #{job.id}: {progress_bar(job.progress)}"
            if job.status_line:
                text += f"\n{job.status_line}"
            await self._edit(text)
            if final:
                self.done.set()
                await self._post_result(job)

    async def _edit(self, content: str) -> None:
        try:
            await self.message.edit(content=content, allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            # the interaction token lasts 15 minutes; a long job edits as the bot instead
            channel = self.interaction.client.get_partial_messageable(self.message.channel.id)
            await channel.get_partial_message(self.message.id).edit(
                content=content, allowed_mentions=NO_PINGS
            )

    async def _post_result(self, job: FinetuneJob) -> None:
        services = services_of(self.interaction)
        card = job_card(job, services.generation.model_versions)
        files: list[discord.File] = []
        curve = job.metrics.get("curve_png") if job.metrics else None
        if curve and Path(curve).is_file():
            card.image = "loss-curve.png"
            files.append(discord.File(curve, filename="loss-curve.png"))
        embed = card_embed(card)
        try:
            await self.interaction.followup.send(
                embed=embed, files=files, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException:
            channel = self.interaction.client.get_partial_messageable(self.message.channel.id)
            for f in files:
                f.reset()
            await channel.send(embed=embed, files=files, allowed_mentions=NO_PINGS)


class AdminCog(commands.Cog):
    admin = app_commands.Group(
        name="admin", description="Bot administration (server managers)", guild_only=True
    )

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @admin.command(name="finetune", description="Fine-tune the reverse model on contributed lyrics")
    @app_commands.describe(epochs="passes over the lyrics (default from the bot's settings)")
    async def finetune(
        self, interaction: discord.Interaction, epochs: app_commands.Range[int, 1, 20] | None = None
    ) -> None:
        require_admin(interaction)
        jobs = finetune_of(interaction)
        services = services_of(interaction)
        # the usual refusals answered privately, before a public progress message exists
        if jobs.running:
            raise NotConfigured("a fine-tune is already running: /admin status or /admin cancel.")
        if await services.repo.pending_lyrics_count() == 0:
            raise NotConfigured(
                "there are no contributed lyrics waiting to be trained on (/lyrics submit)."
            )
        await interaction.response.defer(thinking=True)
        message = await interaction.edit_original_response(
            content=f"Fine-tune: starting… {progress_bar(0.0)}", allowed_mentions=NO_PINGS
        )
        interaction.extras["posted"] = True
        progress = ProgressMessage(interaction, message)
        try:
            job = await jobs.start(
                None,
                epochs or services.default_epochs,
                interaction.user.id,
                interaction.guild_id,
                channel_id=interaction.channel_id,
                message_id=message.id,
                on_progress=progress,
            )
        except Exception:
            await message.edit(content="Fine-tune: did not start.", allowed_mentions=NO_PINGS)
            raise
        if not progress.done.is_set():
            await progress(job)

    @admin.command(name="status", description="The current or last fine-tune job")
    async def status(self, interaction: discord.Interaction) -> None:
        require_admin(interaction)
        services = services_of(interaction)
        job = await finetune_of(interaction).status()
        if job is None:
            card = Card(
                title="No fine-tune yet",
                fields=[("Serving", model_label(services.generation.model_versions))],
            )
        else:
            card = job_card(job, services.generation.model_versions)
        pending = await services.repo.pending_lyrics_count()
        card.footer = f"{pending} contributed lyrics waiting"
        await interaction.response.send_message(
            embed=card_embed(card), ephemeral=True, allowed_mentions=NO_PINGS
        )

    @admin.command(name="cancel", description="Stop the running fine-tune")
    async def cancel(self, interaction: discord.Interaction) -> None:
        require_admin(interaction)
        jobs = finetune_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await jobs.cancel()
        text = "No fine-tune is running." if job is None else f"Job #{job.id} is {job.state}."
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)

    @admin.command(name="rollback", description="Serve the previous reverse model again")
    async def rollback(self, interaction: discord.Interaction) -> None:
        require_admin(interaction)
        jobs = finetune_of(interaction)
        await interaction.response.defer(thinking=True)
        versions = await jobs.rollback()
        await interaction.followup.send(
            f"Rolled back. Now serving: {model_label(versions)}", allowed_mentions=NO_PINGS
        )

    @admin.command(name="settings", description="Explicit filter, cooldown, channels")
    @app_commands.describe(
        explicit_filter="mask listed words in what the bot shows, or off",
        cooldown="seconds a member waits between verses",
        channel="a channel to allow or remove",
        channel_action="allow or remove the channel, or allow every channel",
    )
    @app_commands.choices(
        explicit_filter=[app_commands.Choice(name=v, value=v) for v in ("off", "mask")],
        channel_action=[
            app_commands.Choice(name="allow", value="allow"),
            app_commands.Choice(name="remove", value="remove"),
            app_commands.Choice(name="every channel", value="all"),
        ],
    )
    async def settings(
        self,
        interaction: discord.Interaction,
        explicit_filter: str | None = None,
        cooldown: app_commands.Range[float, 0.0, 3600.0] | None = None,
        # the raw resolved channel: a guild's channel cache is not needed to read its id
        channel: app_commands.AppCommandChannel | None = None,
        channel_action: str | None = None,
    ) -> None:
        require_admin(interaction)
        if interaction.guild_id is None:
            raise RGPT2Error("settings are per server: use this in a server.")
        guilds = services_of(interaction).guilds
        if channel is not None and channel_action not in ("allow", "remove"):
            channel_action = "allow"
        settings = await guilds.update(
            interaction.guild_id,
            explicit_filter=explicit_filter,
            cooldown_seconds=cooldown,
            add_channel=channel.id if channel and channel_action == "allow" else None,
            remove_channel=channel.id if channel and channel_action == "remove" else None,
            all_channels=channel_action == "all",
        )
        card = Card(title="Server settings", fields=guilds.describe(settings))
        await interaction.response.send_message(
            embed=card_embed(card), ephemeral=True, allowed_mentions=NO_PINGS
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))

"""/lyrics submit (a modal, or a .txt attachment) and /lyrics stats."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.text import LyricsRejected
from bot.views import NO_PINGS, report_error, send_private, services_of

MODAL_MAX_CHARS = 4000  # Discord's limit for one text input


class LyricsModal(discord.ui.Modal, title="Contribute lyrics"):
    lyrics: discord.ui.TextInput[LyricsModal] = discord.ui.TextInput(
        label="Lyrics (one bar per line, blank line between verses)",
        style=discord.TextStyle.paragraph,
        min_length=20,
        max_length=MODAL_MAX_CHARS,
        custom_id="rgpt2:lyrics:text",
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await store_lyrics(interaction, self.lyrics.value, filename=None)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report_error(interaction, error)


async def store_lyrics(
    interaction: discord.Interaction, raw: bytes | str, *, filename: str | None
) -> None:
    services = services_of(interaction)
    submission = await services.lyrics.submit(
        raw, guild_id=interaction.guild_id, user_id=interaction.user.id, filename=filename
    )
    waiting = await services.repo.pending_lyrics_count()
    bars = sum(1 for line in submission.text.splitlines() if line.strip())
    await send_private(
        interaction,
        f"Thanks! Submission #{submission.id} ({bars} bars) is stored for the next fine-tune "
        f"({waiting} waiting).",
    )


class LyricsCog(commands.Cog):
    lyrics = app_commands.Group(name="lyrics", description="Contribute lyrics for fine-tuning")

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @lyrics.command(name="submit", description="Contribute lyrics (a form, or attach a .txt)")
    @app_commands.describe(file="a plain .txt file of lyrics, one bar per line")
    async def submit(
        self, interaction: discord.Interaction, file: discord.Attachment | None = None
    ) -> None:
        if file is None:
            await interaction.response.send_modal(LyricsModal())
            return
        limit = services_of(interaction).lyrics.max_bytes
        if file.size > limit:
            # refused before downloading anything
            raise LyricsRejected(
                f"that file is {file.size:,} bytes; the limit is {limit:,} bytes — split it up"
            )
        await interaction.response.defer(ephemeral=True, thinking=True)
        await store_lyrics(interaction, await file.read(), filename=file.filename)

    @lyrics.command(name="stats", description="How many contributed lyrics wait for a fine-tune")
    async def stats(self, interaction: discord.Interaction) -> None:
        stats = await services_of(interaction).lyrics.stats()
        await interaction.response.send_message(
            f"{stats.pending} submissions ({stats.pending_bytes:,} bytes) wait for the next "
            f"fine-tune; {stats.used} were used already; {stats.contributors} contributors.",
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LyricsCog(bot))

"""/rap: write a verse and post it with its upvote and "another one" buttons."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.rap import RapOptions
from bot.services.render import verse_card
from bot.views import NO_PINGS, card_embed, report_error, services_of, verse_view
from rgpt2.verse import SCHEMES

log = logging.getLogger(__name__)

# how long a queued request may wait before the member is told their position
QUEUE_NOTICE_SECONDS = 1.0


async def write_and_post(interaction: discord.Interaction, options: RapOptions) -> None:
    """The whole /rap exchange: checks, queue, defer, verse, store, post.

    Checks (channel, options, cooldown) and queueing happen before the defer, so a refusal
    is a private message instead of a public "thinking..." that then vanishes; they are
    fast (memory and one indexed read), well inside Discord's 3 seconds.
    """
    services = services_of(interaction)
    user = interaction.user
    request = await services.rap.prepare(interaction.guild_id, user.id, options)
    ticket = services.rap.submit(request, interaction.guild_id, user.id)
    await interaction.response.defer(thinking=True)
    try:
        # a verse that starts at once needs no queue notice: only tell members who wait
        waited = 0.0
        while not ticket.done() and ticket.position() > 0 and waited < QUEUE_NOTICE_SECONDS:
            await asyncio.sleep(0.05)
            waited += 0.05
        position = 0 if ticket.done() else ticket.position()
        if position > 0:
            await interaction.edit_original_response(
                content=f"⏳ You are number {position} in the queue — your verse is coming.",
                allowed_mentions=NO_PINGS,
            )
        stored = await services.rap.finish(
            ticket,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=user.id,
            user_name=user.display_name,
        )
    except BaseException as exc:
        ticket.cancel()
        if isinstance(exc, Exception):
            await report_error(interaction, exc)
            return
        raise
    shown = await services.guilds.display_text(interaction.guild_id, stored.text)
    card = verse_card(stored, shown_text=shown, requester_name=user.display_name)
    message = await interaction.edit_original_response(
        content=None,
        embed=card_embed(card),
        view=verse_view(stored.id, 0),
        allowed_mentions=NO_PINGS,
    )
    interaction.extras["posted"] = True
    await services.rap.attach_message(stored.id, interaction.channel_id, message.id)


class RapCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="rap", description="Write a fresh rap verse")
    @app_commands.describe(
        topic="what the first bar starts from (a few words)",
        bars="how many bars (4-32, default 8)",
        scheme="rhyme scheme (default AABB)",
        temperature="0.1 (safe) to 2.0 (wild), default 0.9",
    )
    @app_commands.choices(scheme=[app_commands.Choice(name=s, value=s) for s in SCHEMES])
    async def rap(
        self,
        interaction: discord.Interaction,
        topic: str | None = None,
        bars: app_commands.Range[int, 4, 32] | None = None,
        scheme: str | None = None,
        temperature: app_commands.Range[float, 0.1, 2.0] | None = None,
    ) -> None:
        # discord.py does not enforce the ranges Discord's client does: the service checks
        await write_and_post(
            interaction,
            RapOptions(topic=topic, bars=bars, scheme=scheme, temperature=temperature),
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(RapCog(bot))

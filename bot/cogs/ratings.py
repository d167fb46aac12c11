"""/top, /leaderboard and /verse: what the crowd liked."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.rankings import PERIODS
from bot.services.render import leaderboard_card, top_card, verse_card
from bot.views import NO_PINGS, card_embed, services_of, verse_view

PERIOD_CHOICES = [app_commands.Choice(name=p, value=p) for p in PERIODS]


class RatingsCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="top", description="The most upvoted verses in this server")
    @app_commands.describe(period="day, week (default), month or all")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def top(self, interaction: discord.Interaction, period: str = "week") -> None:
        services = services_of(interaction)
        verses = await services.rankings.top(interaction.guild_id, period)
        shown = [await services.guilds.display_text(interaction.guild_id, v.text) for v in verses]
        card = top_card(period, verses, shown)
        await interaction.response.send_message(embed=card_embed(card), allowed_mentions=NO_PINGS)

    @app_commands.command(
        name="leaderboard", description="Members by upvotes on their verses and by battle wins"
    )
    @app_commands.describe(period="for upvotes: day, week, month or all (default)")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def leaderboard(self, interaction: discord.Interaction, period: str = "all") -> None:
        services = services_of(interaction)
        by_votes, by_wins = await services.rankings.leaderboard(interaction.guild_id, period)
        card = leaderboard_card(period, by_votes, by_wins)
        await interaction.response.send_message(embed=card_embed(card), allowed_mentions=NO_PINGS)

    @app_commands.command(name="verse", description="Show one verse by its id")
    @app_commands.describe(id="the verse id (shown under every verse)")
    async def verse(self, interaction: discord.Interaction, id: int) -> None:
        services = services_of(interaction)
        verse = await services.rap.get(id)
        if verse.guild_id is not None and verse.guild_id != interaction.guild_id:
            await interaction.response.send_message(
                f"Verse #{id} was written in another server.",
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )
            return
        shown = await services.guilds.display_text(interaction.guild_id, verse.text)
        card = verse_card(verse, shown_text=shown, requester_name=verse.requester_name)
        await interaction.response.send_message(
            embed=card_embed(card),
            view=verse_view(verse.id, verse.upvotes),
            allowed_mentions=NO_PINGS,
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(RatingsCog(bot))

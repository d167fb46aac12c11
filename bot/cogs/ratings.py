"""/top, /leaderboard and /verse: what the crowd liked."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.rankings import PERIODS
from bot.services.render import Card, fmt_score, verse_card
from bot.views import NO_PINGS, card_embed, services_of, verse_view

PERIOD_CHOICES = [app_commands.Choice(name=p, value=p) for p in PERIODS]


def first_bar(text: str, width: int = 60) -> str:
    bar = text.split("\n", 1)[0]
    return bar if len(bar) <= width else bar[: width - 1] + "…"


class RatingsCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="top", description="The most upvoted verses in this server")
    @app_commands.describe(period="day, week (default), month or all")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def top(self, interaction: discord.Interaction, period: str = "week") -> None:
        services = services_of(interaction)
        verses = await services.rankings.top(interaction.guild_id, period)
        lines = []
        for rank, verse in enumerate(verses, 1):
            shown = await services.guilds.display_text(interaction.guild_id, verse.text)
            lines.append(
                f"**{rank}.** #{verse.id} · ▲ {verse.upvotes} · <@{verse.requester_id}> · "
                f"rap score {fmt_score(verse.rap_score)}\n> {first_bar(shown)}"
            )
        card = Card(
            title=f"Top verses ({period})",
            description="\n".join(lines) or "No upvoted verses yet — try /rap and vote!",
            footer="/verse <id> shows one in full",
        )
        await interaction.response.send_message(embed=card_embed(card), allowed_mentions=NO_PINGS)

    @app_commands.command(
        name="leaderboard", description="Members by upvotes on their verses and by battle wins"
    )
    @app_commands.describe(period="for upvotes: day, week, month or all (default)")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def leaderboard(self, interaction: discord.Interaction, period: str = "all") -> None:
        services = services_of(interaction)
        by_votes, by_wins = await services.rankings.leaderboard(interaction.guild_id, period)
        votes = "\n".join(
            f"**{i}.** <@{e.user_id}> — ▲ {e.upvotes} on {e.verses} verses"
            for i, e in enumerate(by_votes, 1)
        )
        wins = "\n".join(
            f"**{i}.** <@{s.user_id}> — {s.wins} W / {s.losses} L / {s.ties} T"
            for i, s in enumerate(by_wins, 1)
        )
        card = Card(
            title="Leaderboard",
            fields=[
                (f"Upvotes ({period})", votes or "nobody yet"),
                ("Battle wins", wins or "no battles yet"),
            ],
        )
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

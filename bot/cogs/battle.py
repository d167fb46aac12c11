"""/battle challenge, /battle stats, and the battle's buttons and deadlines.

The deadlines are asyncio timers owned by this cog; the battle itself lives in the
database, so on start-up (``cog_load``) every open battle gets its timer back and one whose
deadline passed while the bot was down is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.battles import BattleRefused, BattleResult
from bot.services.render import Card, result_card, verse_card
from bot.views import (
    NO_PINGS,
    battle_vote_view,
    card_embed,
    challenge_view,
    services_of,
)
from rgpt2.verse import clean_topic

if TYPE_CHECKING:
    from bot.client import RGPT2Bot
    from bot.storage.records import Battle

log = logging.getLogger(__name__)


class BattleCog(commands.Cog):
    battle = app_commands.Group(
        name="battle", description="Rap battles between members", guild_only=True
    )

    def __init__(self, bot: RGPT2Bot) -> None:
        self.bot = bot
        self.timers: dict[int, asyncio.Task[None]] = {}
        self.challenger_names: dict[int, str] = {}

    # -- timers ---------------------------------------------------------------------------

    async def cog_load(self) -> None:
        services = self.bot.services
        for battle in await services.battles.open_battles():
            if battle.state == "writing":
                # its verses were being written when the bot stopped: nothing to resume
                await services.battles.cancel(battle.id)
                log.warning("battle #%d was interrupted while writing; cancelled", battle.id)
                continue
            self.schedule(battle)
        if self.timers:
            log.info("resumed %d open battles", len(self.timers))

    async def cog_unload(self) -> None:
        self.stop_timers()

    def stop_timers(self) -> None:
        for task in self.timers.values():
            task.cancel()
        self.timers.clear()

    def cancel_timer(self, battle_id: int) -> None:
        task = self.timers.pop(battle_id, None)
        if task is not None:
            task.cancel()

    def schedule(self, battle: Battle) -> None:
        old = self.timers.pop(battle.id, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._at_deadline(battle), name=f"rgpt2-battle-{battle.id}")
        self.timers[battle.id] = task
        task.add_done_callback(lambda t: self._timer_done(battle.id, t))

    def _timer_done(self, battle_id: int, task: asyncio.Task[None]) -> None:
        if self.timers.get(battle_id) is task:
            del self.timers[battle_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("battle #%d deadline failed", battle_id, exc_info=task.exception())

    async def _at_deadline(self, battle: Battle) -> None:
        services = self.bot.services
        await asyncio.sleep(services.battles.seconds_left(battle))
        if battle.state == "pending":
            expired = await services.battles.expire(battle.id)
            if expired is not None and expired.message_id and expired.channel_id:
                channel = self.bot.get_partial_messageable(expired.channel_id)
                await channel.get_partial_message(expired.message_id).edit(
                    content=f"The challenge from <@{expired.challenger_id}> to "
                    f"<@{expired.opponent_id}> expired.",
                    view=None,
                    allowed_mentions=NO_PINGS,
                )
        elif battle.state == "voting":
            result = await services.battles.close(battle.id)
            if result is not None:
                await self.post_result(result)

    async def post_result(self, result: BattleResult) -> None:
        battle = result.battle
        if battle.channel_id is None:
            return
        channel = self.bot.get_partial_messageable(battle.channel_id)
        if battle.message_id:
            try:
                await channel.get_partial_message(battle.message_id).edit(
                    view=battle_vote_view(battle.id, ("challenger", "opponent"), closed=True),
                    allowed_mentions=NO_PINGS,
                )
            except discord.HTTPException:
                log.info("could not disable the vote buttons of battle #%d", battle.id)
        await channel.send(embed=card_embed(result_card(result)), allowed_mentions=NO_PINGS)

    # -- commands -------------------------------------------------------------------------

    @battle.command(name="challenge", description="Challenge a member to a rap battle")
    @app_commands.describe(
        opponent="who you challenge",
        topic="what your verse is about",
        bars="bars per verse (4-32, default 8)",
    )
    async def challenge(
        self,
        interaction: discord.Interaction,
        opponent: discord.Member,
        topic: str | None = None,
        bars: app_commands.Range[int, 4, 32] | None = None,
    ) -> None:
        services = services_of(interaction)
        battle = await services.battles.challenge(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            challenger_id=interaction.user.id,
            opponent_id=opponent.id,
            opponent_is_bot=opponent.bot,
            topic=topic,
            bars=bars,
        )
        self.challenger_names[battle.id] = interaction.user.display_name
        minutes = max(1, round(services.battles.challenge_seconds / 60))
        about = f" about **{battle.challenger_topic}**" if battle.challenger_topic else ""
        response = await interaction.response.send_message(
            f"🎤 <@{opponent.id}>, <@{interaction.user.id}> challenges you to a rap battle"
            f"{about} ({battle.bars} bars each). Only you can accept — you have {minutes} min.",
            view=challenge_view(battle.id),
            allowed_mentions=NO_PINGS,
        )
        if response.message_id is not None:
            await services.battles.attach_message(
                battle.id, interaction.channel_id, response.message_id
            )
        self.schedule(await services.battles.get(battle.id))

    @battle.command(name="stats", description="Battle wins, losses and ties")
    @app_commands.describe(member="whose record (default: yours)")
    async def stats(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        who = member or interaction.user
        stats = await services_of(interaction).battles.stats(who.id, interaction.guild_id)
        card = Card(
            title=f"Battle record of {who.display_name}",
            fields=[
                ("Wins", str(stats.wins)),
                ("Losses", str(stats.losses)),
                ("Ties", str(stats.ties)),
                ("Battles", str(stats.battles)),
                ("Open now", str(stats.open)),
            ],
            kind="battle",
        )
        await interaction.response.send_message(embed=card_embed(card), allowed_mentions=NO_PINGS)


async def accept_battle(
    interaction: discord.Interaction, battle_id: int, topic: str | None = None
) -> None:
    """The accept form, submitted: only the opponent; writes both verses, opens the vote."""
    bot: RGPT2Bot = interaction.client  # type: ignore[assignment]
    services = bot.services
    cog: BattleCog = bot.get_cog("BattleCog")  # type: ignore[assignment]
    topic = clean_topic(topic)  # a bad topic is refused before the battle moves on
    battle = await services.battles.accept(battle_id, interaction.user.id)
    cog.cancel_timer(battle_id)
    await interaction.response.edit_message(
        content=f"🔥 <@{battle.opponent_id}> accepted <@{battle.challenger_id}>'s challenge. "
        "Writing both verses…",
        view=None,
        allowed_mentions=NO_PINGS,
    )
    names = (cog.challenger_names.pop(battle_id, None), interaction.user.display_name)
    try:
        battle = await services.battles.write(battle_id, names, topic)
    except Exception:
        # the battle is cancelled by the service; say so where the challenge was
        await interaction.edit_original_response(
            content=f"Battle #{battle_id} between <@{battle.challenger_id}> and "
            f"<@{battle.opponent_id}> was called off: its verses could not be written.",
            allowed_mentions=NO_PINGS,
        )
        raise
    result = await services.battles.result(battle_id)
    for label, user_id, verse in (
        ("challenger", battle.challenger_id, result.challenger_verse),
        ("opponent", battle.opponent_id, result.opponent_verse),
    ):
        shown = await services.guilds.display_text(interaction.guild_id, verse.text)
        card = verse_card(
            verse,
            shown_text=shown,
            requester_name=verse.requester_name,
            title=f"Battle #{battle_id} — the {label}'s verse",
        )
        card.description = f"for <@{user_id}>\n\n{card.description}"
        await interaction.followup.send(embed=card_embed(card), allowed_mentions=NO_PINGS)
    minutes = services.battles.seconds_left(battle) / 60
    vote_message = await interaction.followup.send(
        f"🗳️ Vote for the better verse! Voting closes in {minutes:.0f} min "
        f"(<t:{int(battle.deadline.timestamp())}:R>). The two battlers cannot vote."
        if battle.deadline
        else "🗳️ Vote for the better verse!",
        view=battle_vote_view(battle_id, ("challenger", "opponent")),
        allowed_mentions=NO_PINGS,
        wait=True,
    )
    await services.battles.attach_message(battle_id, interaction.channel_id, vote_message.id)
    cog.schedule(await services.battles.get(battle_id))


async def decline_battle(interaction: discord.Interaction, battle_id: int) -> None:
    bot: RGPT2Bot = interaction.client  # type: ignore[assignment]
    battle = await bot.services.battles.decline(battle_id, interaction.user.id)
    cog: BattleCog = bot.get_cog("BattleCog")  # type: ignore[assignment]
    cog.cancel_timer(battle_id)
    await interaction.response.edit_message(
        content=f"<@{battle.opponent_id}> declined the challenge from <@{battle.challenger_id}>.",
        view=None,
        allowed_mentions=NO_PINGS,
    )


async def setup(bot: RGPT2Bot) -> None:
    await bot.add_cog(BattleCog(bot))


__all__ = ["BattleCog", "BattleRefused", "accept_battle", "decline_battle", "setup"]

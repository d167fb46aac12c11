"""Buttons and rendering: Discord I/O only, the rules live in :mod:`bot.services`.

Every button is a :class:`discord.ui.DynamicItem` whose ``custom_id`` carries what it acts
on (``rgpt2:vote:<verse_id>``, ...): the bot registers the classes once in ``setup_hook``,
so buttons on messages posted before a restart keep working.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import discord

from bot.services.render import COLOURS, Card
from rgpt2.errors import RGPT2Error

if TYPE_CHECKING:
    from bot.client import RGPT2Bot

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()


def card_embed(card: Card) -> discord.Embed:
    embed = discord.Embed(
        title=card.title[:256],
        description=card.description[:4096] or None,
        colour=COLOURS.get(card.kind, COLOURS["info"]),
    )
    for name, value in card.fields[:25]:
        embed.add_field(name=name[:256], value=(value or "—")[:1024], inline=True)
    if card.footer:
        embed.set_footer(text=card.footer[:2048])
    if card.image:
        embed.set_image(url=f"attachment://{card.image}")
    return embed


def services_of(interaction: discord.Interaction) -> Any:
    bot: RGPT2Bot = interaction.client  # type: ignore[assignment]
    return bot.services


async def send_private(interaction: discord.Interaction, content: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_PINGS)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Errors meant for people verbatim; anything else as a friendly line with a log id."""
    if isinstance(error, RGPT2Error):
        text = str(error)
        if text and text[0].isalpha():
            text = text[0].upper() + text[1:]
    else:
        error_id = uuid.uuid4().hex[:8]
        log.error(
            "unexpected error %s in interaction %s by %s",
            error_id,
            interaction.id,
            interaction.user.id if interaction.user else None,
            exc_info=error,
        )
        text = f"Something went wrong on my side (error id `{error_id}`). Try again in a moment."
    try:
        await _drop_placeholder(interaction)
        await send_private(interaction, text)
    except discord.HTTPException:
        log.warning("could not report an error to interaction %s", interaction.id)


async def _drop_placeholder(interaction: discord.Interaction) -> None:
    """Delete a public "thinking..." that nothing replaced yet.

    Discord would turn the first follow-up into that placeholder, public whatever its
    flags, and leave it spinning otherwise; after the deletion the error is private.
    """
    if (
        interaction.response.type is discord.InteractionResponseType.deferred_channel_message
        and not interaction.extras.get("posted")
    ):
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            pass
        interaction.extras["posted"] = True  # nothing left to delete


def verse_view(verse_id: int, votes: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(verse_id, votes))
    view.add_item(AgainButton(verse_id))
    return view


def challenge_view(battle_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AcceptButton(battle_id))
    view.add_item(DeclineButton(battle_id))
    return view


def battle_vote_view(
    battle_id: int, names: tuple[str, str], *, closed: bool = False
) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for side, name in zip(("challenger", "opponent"), names, strict=True):
        button = BattleVoteButton(battle_id, side, name)
        button.item.disabled = closed
        view.add_item(button)
    return view


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"rgpt2:vote:(?P<id>\d+)"):
    """Upvote toggle; its label is the count, edited in place on every press."""

    def __init__(self, verse_id: int, votes: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"▲ {votes}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"rgpt2:vote:{verse_id}",
            )
        )
        self.verse_id = verse_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> VoteButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            services = services_of(interaction)
            result = await services.votes.toggle(self.verse_id, interaction.user.id)
            await interaction.response.edit_message(
                view=verse_view(self.verse_id, result.count), allowed_mentions=NO_PINGS
            )
        except Exception as exc:
            await report_error(interaction, exc)


class AgainButton(discord.ui.DynamicItem[discord.ui.Button], template=r"rgpt2:again:(?P<id>\d+)"):
    """ "Another one": a fresh verse with the options of this one (new seed)."""

    def __init__(self, verse_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Another one",
                emoji="🔁",
                style=discord.ButtonStyle.primary,
                custom_id=f"rgpt2:again:{verse_id}",
            )
        )
        self.verse_id = verse_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> AgainButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.cogs.rap import write_and_post

        try:
            services = services_of(interaction)
            options = await services.rap.options_of(self.verse_id)
            await write_and_post(interaction, options)
        except Exception as exc:
            await report_error(interaction, exc)


class AcceptButton(discord.ui.DynamicItem[discord.ui.Button], template=r"rgpt2:accept:(?P<id>\d+)"):
    def __init__(self, battle_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Accept",
                style=discord.ButtonStyle.success,
                custom_id=f"rgpt2:accept:{battle_id}",
            )
        )
        self.battle_id = battle_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> AcceptButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        # refusals (not the opponent, expired) come before the form
        try:
            await services_of(interaction).battles.check_can_answer(
                self.battle_id, interaction.user.id
            )
            await interaction.response.send_modal(AcceptModal(self.battle_id))
        except Exception as exc:
            await report_error(interaction, exc)


class AcceptModal(discord.ui.Modal, title="Accept the rap battle"):
    """The opponent may name their own topic; empty keeps the challenge's."""

    topic: discord.ui.TextInput[AcceptModal] = discord.ui.TextInput(
        label="Your topic (optional)",
        required=False,
        max_length=100,
        placeholder="leave empty to rap on the challenge's topic",
        custom_id="rgpt2:acceptform:topic",
    )

    def __init__(self, battle_id: int) -> None:
        super().__init__(timeout=600, custom_id=f"rgpt2:acceptform:{battle_id}")
        self.battle_id = battle_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        from bot.cogs.battle import accept_battle

        await accept_battle(interaction, self.battle_id, self.topic.value or None)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report_error(interaction, error)


class DeclineButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"rgpt2:decline:(?P<id>\d+)"
):
    def __init__(self, battle_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Decline",
                style=discord.ButtonStyle.danger,
                custom_id=f"rgpt2:decline:{battle_id}",
            )
        )
        self.battle_id = battle_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> DeclineButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.cogs.battle import decline_battle

        try:
            await decline_battle(interaction, self.battle_id)
        except Exception as exc:
            await report_error(interaction, exc)


class BattleVoteButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"rgpt2:bvote:(?P<id>\d+):(?P<side>challenger|opponent)",
):
    def __init__(self, battle_id: int, side: str, name: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Vote {name}" if name else f"Vote {side}",
                style=discord.ButtonStyle.primary,
                custom_id=f"rgpt2:bvote:{battle_id}:{side}",
            )
        )
        self.battle_id = battle_id
        self.side = side

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> BattleVoteButton:
        return cls(int(match["id"]), match["side"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            services = services_of(interaction)
            ack = await services.battles.vote(
                self.battle_id,
                interaction.user.id,
                self.side,
                voter_is_bot=interaction.user.bot,
            )
            await send_private(interaction, ack.message)
        except Exception as exc:
            await report_error(interaction, exc)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    VoteButton,
    AgainButton,
    AcceptButton,
    DeclineButton,
    BattleVoteButton,
)

"""Rap battles: challenge, accept/decline, two verses, a timed vote, the result.

The state machine lives in the database (guarded transitions, a trigger); this module
decides who may do what and when. Timers are the front-end's job: it asks
:meth:`BattleService.open_battles` at start-up and calls :meth:`close` / :meth:`expire` at
each deadline, so a battle survives a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.storage.errors import NotFound
from rgpt2.errors import RGPT2Error
from rgpt2.verse import DEFAULT_BARS, RapRequest, clean_topic
from rgpt2.worker import ServiceBusy

if TYPE_CHECKING:
    from bot.storage.records import Battle, BattleStats, Tally, VerseRecord
    from bot.storage.repo import Repository
    from rgpt2.worker import GenerationService


class BattleRefused(RGPT2Error):
    """A battle action this member may not take now; the message says why."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class VoteAck:
    counted: bool
    message: str


@dataclass(frozen=True)
class BattleResult:
    battle: Battle
    tally: Tally
    challenger_verse: VerseRecord
    opponent_verse: VerseRecord


class BattleService:
    def __init__(
        self,
        repo: Repository,
        generation: GenerationService,
        *,
        vote_seconds: float = 600.0,
        challenge_seconds: float = 300.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.generation = generation
        self.vote_seconds = vote_seconds
        self.challenge_seconds = challenge_seconds
        self.clock = clock

    # -- challenge ----------------------------------------------------------------------

    async def challenge(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        challenger_id: int,
        opponent_id: int,
        opponent_is_bot: bool = False,
        topic: str | None = None,
        bars: int | None = None,
    ) -> Battle:
        if opponent_id == challenger_id:
            raise BattleRefused("you cannot battle yourself — pick another member.")
        if opponent_is_bot:
            raise BattleRefused("bots do not battle — challenge a member.")
        request = RapRequest(topic=topic, bars=bars or DEFAULT_BARS).validated()
        if await self.repo.active_battle_between(challenger_id, opponent_id) is not None:
            raise BattleRefused("you two already have a battle going — finish that one first.")
        return await self.repo.create_battle(
            guild_id=guild_id,
            channel_id=channel_id,
            challenger_id=challenger_id,
            opponent_id=opponent_id,
            challenger_topic=request.topic,
            opponent_topic=None,
            bars=request.bars,
            deadline=self.clock() + dt.timedelta(seconds=self.challenge_seconds),
        )

    async def attach_message(self, battle_id: int, channel_id: int | None, message_id: int) -> None:
        await self.repo.set_battle_message(battle_id, channel_id=channel_id, message_id=message_id)

    async def get(self, battle_id: int) -> Battle:
        battle = await self.repo.get_battle(battle_id)
        if battle is None:
            raise NotFound(f"there is no battle #{battle_id}")
        return battle

    async def _pending_for(self, battle_id: int, user_id: int, verb: str) -> Battle:
        battle = await self.get(battle_id)
        if user_id != battle.opponent_id:
            raise BattleRefused(f"only the challenged member can {verb} this challenge.")
        if battle.state != "pending":
            raise BattleRefused(f"this challenge is no longer open (it is {battle.state}).")
        if battle.deadline is not None and battle.deadline <= self.clock():
            await self.expire(battle_id)
            raise BattleRefused("this challenge expired — ask for a new one.")
        return battle

    async def decline(self, battle_id: int, user_id: int) -> Battle:
        await self._pending_for(battle_id, user_id, "decline")
        battle = await self.repo.decline_battle(battle_id, user_id, now=self.clock())
        if battle is None:
            raise BattleRefused("this challenge was answered already.")
        return battle

    async def expire(self, battle_id: int) -> Battle | None:
        """A pending challenge past its deadline becomes expired; None if it was answered."""
        return await self.repo.expire_battle(battle_id, now=self.clock())

    async def cancel(self, battle_id: int) -> Battle | None:
        """Any open battle -> cancelled (e.g. interrupted while writing); None if final."""
        return await self.repo.cancel_battle(battle_id, now=self.clock())

    async def accept(self, battle_id: int, user_id: int) -> Battle:
        """Accept (only the opponent, only once): the battle moves to 'writing'."""
        await self._pending_for(battle_id, user_id, "accept")
        # guarded: of two concurrent accepts only one moves the row
        battle = await self.repo.accept_battle(battle_id, user_id, now=self.clock())
        if battle is None:
            raise BattleRefused("this challenge was answered already.")
        return battle

    async def check_can_answer(self, battle_id: int, user_id: int) -> Battle:
        """The pending battle if ``user_id`` may accept or decline it now; BattleRefused if not."""
        return await self._pending_for(battle_id, user_id, "answer")

    async def write(
        self,
        battle_id: int,
        names: tuple[str | None, str | None],
        opponent_topic: str | None = None,
    ) -> Battle:
        """Write both verses as one batch, store them, open the vote until the deadline.

        Each side writes on their own topic: the opponent's, given when accepting, else the
        challenge's. On any failure the battle is cancelled (nobody wins, nothing hangs open).
        """
        battle = await self.get(battle_id)
        opponent_topic = clean_topic(opponent_topic) or battle.opponent_topic
        tickets = []
        try:
            for topic in (battle.challenger_topic, opponent_topic or battle.challenger_topic):
                request = RapRequest(topic=topic, bars=battle.bars, scheme="AABB").validated()
                tickets.append(self.generation.submit(request))
        except BaseException as exc:
            for ticket in tickets:
                ticket.cancel()
            await self.cancel(battle_id)
            if isinstance(exc, ServiceBusy):
                raise BattleRefused(
                    "the verse generator is too busy for a battle right now; challenge again "
                    "in a minute."
                ) from None
            raise
        try:
            verses = await asyncio.gather(*tickets)
        except BaseException:
            for ticket in tickets:
                ticket.cancel()
            await self.cancel(battle_id)
            raise
        stored = [
            await self.repo.add_verse(
                verse,
                guild_id=battle.guild_id,
                channel_id=battle.channel_id,
                requester_id=user_id,
                requester_name=name,
            )
            for verse, user_id, name in zip(
                verses, (battle.challenger_id, battle.opponent_id), names, strict=True
            )
        ]
        now = self.clock()
        voting = await self.repo.start_battle_voting(
            battle_id,
            challenger_verse_id=stored[0].id,
            opponent_verse_id=stored[1].id,
            deadline=now + dt.timedelta(seconds=self.vote_seconds),
            now=now,
        )
        if voting is None:
            raise BattleRefused("this battle was cancelled while its verses were written.")
        return voting

    # -- vote and result ------------------------------------------------------------------

    async def vote(
        self, battle_id: int, voter_id: int, side: str, *, voter_is_bot: bool = False
    ) -> VoteAck:
        if voter_is_bot:
            return VoteAck(False, "Bots don't vote.")
        battle = await self.get(battle_id)
        if battle.side_of(voter_id) is not None:
            return VoteAck(False, "You're in this battle — the crowd decides, not you.")
        if battle.state != "voting" or (
            battle.deadline is not None and battle.deadline <= self.clock()
        ):
            return VoteAck(False, "Voting on this battle is closed.")
        if side not in ("challenger", "opponent"):
            raise BattleRefused(f"vote for the challenger or the opponent, not {side!r}.")
        outcome = await self.repo.cast_battle_vote(battle_id, voter_id, side, now=self.clock())
        label = "the challenger" if side == "challenger" else "the opponent"
        messages = {
            "recorded": f"Your vote for {label} is in.",
            "changed": f"You changed your vote to {label}.",
            "unchanged": f"You already voted for {label}.",
            "not_voting": "Voting on this battle is closed.",
            "battler": "You're in this battle — the crowd decides, not you.",
        }
        return VoteAck(outcome.counted, messages[str(outcome)])

    async def close(self, battle_id: int) -> BattleResult | None:
        """Close the vote and record the winner (or a tie); None if it was not voting."""
        closed = await self.repo.close_battle(battle_id, now=self.clock())
        if closed is None:
            return None
        return await self.result(battle_id)

    async def result(self, battle_id: int) -> BattleResult:
        battle = await self.get(battle_id)
        if battle.challenger_verse_id is None or battle.opponent_verse_id is None:
            raise BattleRefused("this battle has no verses yet.")
        return BattleResult(
            battle=battle,
            tally=await self.repo.battle_tally(battle_id),
            challenger_verse=await self._verse(battle.challenger_verse_id),
            opponent_verse=await self._verse(battle.opponent_verse_id),
        )

    async def open_battles(self) -> list[Battle]:
        return await self.repo.open_battles()

    async def _verse(self, verse_id: int) -> VerseRecord:
        verse = await self.repo.get_verse(verse_id)
        if verse is None:
            raise NotFound(f"there is no verse #{verse_id}")
        return verse

    async def stats(self, user_id: int, guild_id: int | None = None) -> BattleStats:
        return await self.repo.battle_stats(user_id, guild_id=guild_id)

    def seconds_left(self, battle: Battle) -> float:
        if battle.deadline is None:
            return 0.0
        return max(0.0, (battle.deadline - self.clock()).total_seconds())

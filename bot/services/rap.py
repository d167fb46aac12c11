"""Writing verses for members: checks, cooldowns, the queue, storage. No Discord here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.services.cooldowns import Cooldowns
from bot.storage.errors import NotFound
from rgpt2.errors import RGPT2Error
from rgpt2.verse import DEFAULT_BARS, RapRequest
from rgpt2.worker import ServiceBusy

if TYPE_CHECKING:
    from bot.services.guilds import GuildService
    from bot.storage.records import UpvoteResult, VerseRecord
    from bot.storage.repo import Repository
    from rgpt2.worker import GenerationService, Ticket


class CooldownActive(RGPT2Error):
    """The member asked again too soon."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"easy — you can ask for another verse in {format_wait(wait)}.")


class Busy(RGPT2Error):
    """The generation queue is full."""

    def __init__(self, waiting: int, wait: float) -> None:
        self.waiting = waiting
        self.wait = wait
        super().__init__(
            f"I'm busy writing for others right now ({waiting} verses waiting). "
            f"Try again in about {format_wait(wait)}."
        )


def format_wait(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"


@dataclass(frozen=True)
class RapOptions:
    """What a member typed; None means the default."""

    topic: str | None = None
    bars: int | None = None
    scheme: str | None = None
    temperature: float | None = None

    def request(self) -> RapRequest:
        kwargs: dict[str, Any] = {"topic": self.topic, "bars": self.bars or DEFAULT_BARS}
        if self.scheme is not None:
            kwargs["scheme"] = self.scheme
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return RapRequest(**kwargs).validated()


class RapService:
    def __init__(
        self,
        repo: Repository,
        generation: GenerationService,
        guilds: GuildService,
        *,
        cooldowns: Cooldowns | None = None,
    ) -> None:
        self.repo = repo
        self.generation = generation
        self.guilds = guilds
        self.cooldowns = cooldowns or Cooldowns()
        # recent seconds per verse, for an honest "try again in about ..." when busy
        self._seconds_per_verse = 2.0

    async def prepare(self, guild_id: int | None, user_id: int, options: RapOptions) -> RapRequest:
        """The validated request; InvalidRequest or CooldownActive (nothing queued yet)."""
        request = options.request()
        seconds = await self.guilds.cooldown_seconds(guild_id)
        wait = self.cooldowns.hit((guild_id, user_id), seconds)
        if wait > 0:
            raise CooldownActive(wait)
        return request

    def submit(self, request: RapRequest, guild_id: int | None, user_id: int) -> Ticket:
        """Queue ``request``; Busy (and the cooldown forgiven) when the queue is full."""
        try:
            return self.generation.submit(request)
        except ServiceBusy:
            self.cooldowns.reset((guild_id, user_id))
            waiting = self.generation.queue_length()
            batches = waiting / max(1, self.generation.max_batch) + 1
            raise Busy(waiting, batches * self._seconds_per_verse * 2) from None
        except Exception:
            self.cooldowns.reset((guild_id, user_id))
            raise

    async def finish(
        self,
        ticket: Ticket,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        user_name: str | None,
    ) -> VerseRecord:
        """Wait for the verse and store it; a failure forgives the member's cooldown."""
        started = time.perf_counter()
        try:
            verse = await ticket
        except BaseException:
            self.cooldowns.reset((guild_id, user_id))
            raise
        self._seconds_per_verse = 0.8 * self._seconds_per_verse + 0.2 * (
            time.perf_counter() - started
        )
        return await self.repo.add_verse(
            verse,
            guild_id=guild_id,
            channel_id=channel_id,
            requester_id=user_id,
            requester_name=user_name,
        )

    async def rap(
        self,
        options: RapOptions,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        user_name: str | None,
    ) -> VerseRecord:
        """prepare + submit + finish, for front-ends without a queue message."""
        request = await self.prepare(guild_id, user_id, options)
        ticket = self.submit(request, guild_id, user_id)
        return await self.finish(
            ticket, guild_id=guild_id, channel_id=channel_id, user_id=user_id, user_name=user_name
        )

    async def attach_message(self, verse_id: int, channel_id: int | None, message_id: int) -> None:
        await self.repo.set_verse_message(verse_id, channel_id=channel_id, message_id=message_id)

    async def get(self, verse_id: int) -> VerseRecord:
        """The stored verse; NotFound with a clear message if there is none."""
        verse = await self.repo.get_verse(verse_id)
        if verse is None:
            raise NotFound(f"there is no verse #{verse_id}")
        return verse

    async def options_of(self, verse_id: int) -> RapOptions:
        """The options a stored verse was written with, for "another one" (new seed)."""
        verse = await self.get(verse_id)
        sampling = verse.sampling
        return RapOptions(
            topic=verse.topic,
            bars=int(sampling.get("bars", verse.bars)),
            scheme=verse.scheme,
            temperature=sampling.get("temperature"),
        )


class VoteService:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    async def toggle(self, verse_id: int, user_id: int) -> UpvoteResult:
        """One upvote per member: a second press removes it. NotFound for an unknown verse."""
        return await self.repo.toggle_upvote(verse_id, user_id)

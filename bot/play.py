"""``rgpt2 play``: the bot in a terminal, over the same services and database, no Discord.

Lines like ``/rap topic:money bars:8``, ``/upvote 3``, ``/battle alice bob``, ``/top`` are
read from stdin (a terminal or a pipe) and answered with what the bot would post. Members
are names: ``as:NAME`` on a line (or ``/as NAME``) says who is typing; each name gets a
stable id. Everything goes through :mod:`bot.services`, exactly as the cogs do.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.services.rap import RapOptions
from bot.services.render import (
    Card,
    job_card,
    leaderboard_card,
    model_label,
    progress_bar,
    result_card,
    top_card,
    verse_card,
)
from rgpt2.errors import RGPT2Error

if TYPE_CHECKING:
    from bot.services.container import BotServices
    from bot.storage.records import FinetuneJob

# the terminal is one pretend server with one pretend channel
PLAY_GUILD_ID = 1
PLAY_CHANNEL_ID = 1

HELP = """\
Commands (options as key:value; `as:NAME` makes NAME the one typing):
  /rap [topic:WORDS] [bars:4-32] [scheme:AABB|ABAB|AAAA|free] [temperature:0.1-2]
  /again ID                     another verse with the options of verse ID
  /upvote ID                    upvote verse ID (again to take the vote back)
  /verse ID                     show one verse
  /top [day|week|month|all]     most upvoted verses
  /leaderboard [day|week|month|all]
  /battle NAME1 NAME2 [topic:WORDS] [bars:N] [opponent_topic:WORDS]
                                NAME1 challenges NAME2, who accepts
  /vote ID challenger|opponent  vote in battle ID (battlers cannot)
  /close ID                     end battle ID's vote now and show the result
  /battle stats [NAME]
  /lyrics submit TEXT           bars separated by " / " (or file:PATH.txt)
  /lyrics stats
  /admin settings [filter:off|mask] [cooldown:SECONDS]
  /admin finetune [epochs:N] | /admin status | /admin cancel | /admin rollback
  /as NAME                      who is typing from now on (default: you)
  /help, /quit"""

_OPTION = re.compile(r"(\w+):")


def member_id(name: str) -> int:
    """A stable pretend Discord id for a name (same name, same member, every run)."""
    return int.from_bytes(hashlib.sha256(name.lower().encode()).digest()[:6], "big") + 10**6


def parse_line(line: str) -> tuple[str, list[str], dict[str, str]]:
    """``/cmd a b key:some words k2:v`` -> ("cmd", ["a", "b"], {"key": "some words", "k2": "v"})."""
    line = line.strip()
    head, _, rest = line.partition(" ")
    options: dict[str, str] = {}
    matches = list(_OPTION.finditer(rest))
    # positional words come before the first key:
    positional_text = rest[: matches[0].start()] if matches else rest
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(rest)
        options[match.group(1).lower()] = rest[match.end() : end].strip().strip("\"'")
    try:
        positional = shlex.split(positional_text)
    except ValueError:
        positional = positional_text.split()
    return head.lstrip("/").lower(), positional, options


class Play:
    def __init__(
        self,
        services: BotServices,
        *,
        out: Callable[[str], None] = print,
        user: str = "you",
    ) -> None:
        self.services = services
        self.out = out
        self.user = user
        self.names: dict[int, str] = {}
        self.name_of(user)

    # -- members ----------------------------------------------------------------------

    def name_of(self, name: str) -> int:
        uid = member_id(name)
        self.names[uid] = name
        return uid

    def render(self, text: str) -> str:
        """Discord markup as a terminal shows it: mentions as @name, no bold stars."""
        text = re.sub(r"<@!?(\d+)>", lambda m: "@" + self.names.get(int(m[1]), m[1]), text)
        text = re.sub(r"<#(\d+)>", r"#\1", text)
        text = re.sub(r"<t:(\d+):R>", "soon", text)
        return text.replace("**", "").replace("\\*", "*")

    def show(self, item: Card | str) -> None:
        self.out(self.render(item.as_text() if isinstance(item, Card) else item))

    # -- the loop ---------------------------------------------------------------------

    async def run(self, stream: TextIO, *, echo: bool) -> int:
        self.show("RGPT-2 in your terminal. Type /help for the commands, /quit to leave.")
        while True:
            if stream.isatty():
                line = await asyncio.to_thread(_prompt, f"{self.user}> ")
            else:
                line = await asyncio.to_thread(stream.readline)
                if line and echo:
                    self.out(f"\n{self.user}> {line.rstrip()}")
            if not line:
                return 0
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not await self.handle(line):
                return 0

    async def handle(self, line: str) -> bool:
        """Run one command line; False after /quit."""
        if not line.startswith("/"):
            self.show("Commands start with / — try /help.")
            return True
        command, args, options = parse_line(line)
        if command in ("quit", "exit"):
            return False
        who = options.pop("as", None) or self.user
        user_id = self.name_of(who)
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            self.show(f"Unknown command /{command} — try /help.")
            return True
        try:
            await handler(args, options, who, user_id)
        except RGPT2Error as exc:
            text = str(exc)
            self.show("(only you see this) " + (text[:1].upper() + text[1:]))
        except (ValueError, IndexError) as exc:
            self.show(f"(only you see this) could not read that: {exc}. Try /help.")
        return True

    # -- commands ---------------------------------------------------------------------

    async def cmd_help(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        self.show(HELP)

    async def cmd_as(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        if not args:
            raise ValueError("/as needs a name")
        self.user = args[0]
        self.name_of(self.user)
        self.show(f"You are now {self.user}.")

    async def cmd_rap(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        topic = options.get("topic") or (" ".join(args) or None)
        rap_options = RapOptions(
            topic=topic,
            bars=int(options["bars"]) if "bars" in options else None,
            scheme=options.get("scheme"),
            temperature=float(options["temperature"]) if "temperature" in options else None,
        )
        await self._write(rap_options, who, uid)

    async def cmd_again(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        await self._write(await self.services.rap.options_of(int(args[0])), who, uid)

    async def _write(self, options: RapOptions, who: str, uid: int) -> None:
        rap = self.services.rap
        request = await rap.prepare(PLAY_GUILD_ID, uid, options)
        ticket = rap.submit(request, PLAY_GUILD_ID, uid)
        position = ticket.position()
        if position > 1:
            self.show(f"⏳ You are number {position} in the queue — your verse is coming.")
        stored = await rap.finish(
            ticket, guild_id=PLAY_GUILD_ID, channel_id=PLAY_CHANNEL_ID, user_id=uid, user_name=who
        )
        await self._show_verse(stored.id)

    async def _show_verse(self, verse_id: int) -> None:
        verse = await self.services.rap.get(verse_id)
        shown = await self.services.guilds.display_text(PLAY_GUILD_ID, verse.text)
        self.show(verse_card(verse, shown_text=shown, requester_name=verse.requester_name))
        self.show(f"[▲ {verse.upvotes}] [🔁 Another one]   (/upvote {verse.id}, /again {verse.id})")

    async def cmd_verse(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        await self._show_verse(int(args[0]))

    async def cmd_upvote(
        self, args: list[str], options: dict[str, str], who: str, uid: int
    ) -> None:
        verse_id = int(args[0])
        result = await self.services.votes.toggle(verse_id, uid)
        action = "upvoted" if result.upvoted else "took back the upvote on"
        self.show(f"{who} {action} verse #{verse_id}: [▲ {result.count}]")

    async def cmd_top(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        period = args[0] if args else options.get("period", "week")
        verses = await self.services.rankings.top(PLAY_GUILD_ID, period)
        guilds = self.services.guilds
        shown = [await guilds.display_text(PLAY_GUILD_ID, v.text) for v in verses]
        self.show(top_card(period, verses, shown))

    async def cmd_leaderboard(
        self, args: list[str], options: dict[str, str], who: str, uid: int
    ) -> None:
        period = args[0] if args else options.get("period", "all")
        by_votes, by_wins = await self.services.rankings.leaderboard(PLAY_GUILD_ID, period)
        self.show(leaderboard_card(period, by_votes, by_wins))

    async def cmd_battle(
        self, args: list[str], options: dict[str, str], who: str, uid: int
    ) -> None:
        battles = self.services.battles
        if args and args[0] == "stats":
            name = args[1] if len(args) > 1 else who
            stats = await battles.stats(self.name_of(name), PLAY_GUILD_ID)
            self.show(
                f"Battle record of {name}: {stats.wins} wins, {stats.losses} losses, "
                f"{stats.ties} ties ({stats.battles} battles, {stats.open} open)"
            )
            return
        if len(args) == 1:
            args = [who, args[0]]
        if len(args) != 2:
            raise ValueError("/battle needs two names: /battle alice bob")
        challenger, opponent = args
        battle = await battles.challenge(
            guild_id=PLAY_GUILD_ID,
            channel_id=PLAY_CHANNEL_ID,
            challenger_id=self.name_of(challenger),
            opponent_id=self.name_of(opponent),
            topic=options.get("topic"),
            bars=int(options["bars"]) if "bars" in options else None,
        )
        self.show(f"🎤 {challenger} challenges {opponent} to rap battle #{battle.id}.")
        await battles.accept(battle.id, battle.opponent_id)
        self.show(f"🔥 {opponent} accepts. Writing both verses…")
        battle = await battles.write(
            battle.id, (challenger, opponent), options.get("opponent_topic")
        )
        result = await battles.result(battle.id)
        for label, verse in (
            ("challenger", result.challenger_verse),
            ("opponent", result.opponent_verse),
        ):
            shown = await self.services.guilds.display_text(PLAY_GUILD_ID, verse.text)
            self.show(
                verse_card(
                    verse,
                    shown_text=shown,
                    requester_name=verse.requester_name,
                    title=f"Battle #{battle.id} — the {label}'s verse ({verse.requester_name})",
                )
            )
        minutes = battles.seconds_left(battle) / 60
        self.show(
            f"🗳️ Vote with /vote {battle.id} challenger|opponent as:NAME (the battlers cannot); "
            f"voting closes in {minutes:.0f} min, or now with /close {battle.id}."
        )

    async def cmd_vote(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        battle_id, side = int(args[0]), args[1].lower()
        battle = await self.services.battles.get(battle_id)
        # a battler's name also picks their side
        by_name = {
            self.names.get(battle.challenger_id, ""): "challenger",
            self.names.get(battle.opponent_id, ""): "opponent",
        }
        side = by_name.get(side, side)
        ack = await self.services.battles.vote(battle_id, uid, side)
        self.show(f"({who} only) {ack.message}")

    async def cmd_close(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        result = await self.services.battles.close(int(args[0]))
        if result is None:
            raise RGPT2Error(f"battle #{args[0]} is not open for votes")
        self.show(result_card(result))

    async def cmd_lyrics(
        self, args: list[str], options: dict[str, str], who: str, uid: int
    ) -> None:
        lyrics = self.services.lyrics
        if args and args[0] == "stats":
            stats = await lyrics.stats()
            self.show(
                f"{stats.pending} submissions ({stats.pending_bytes:,} bytes) wait for the next "
                f"fine-tune; {stats.used} were used already; {stats.contributors} contributors."
            )
            return
        if not args or args[0] != "submit":
            raise ValueError("use /lyrics submit TEXT or /lyrics stats")
        if "file" in options:
            path = Path(options["file"]).expanduser()
            raw: bytes | str = path.read_bytes()
            filename: str | None = path.name
        else:
            text = " ".join(args[1:])
            raw = "\n".join(bar.strip() for bar in re.split(r"\s+/\s+|\\n", text))
            filename = None
        submission = await lyrics.submit(
            raw, guild_id=PLAY_GUILD_ID, user_id=uid, filename=filename
        )
        bars = sum(1 for line in submission.text.splitlines() if line.strip())
        waiting = await self.services.repo.pending_lyrics_count()
        self.show(
            f"({who} only) Thanks! Submission #{submission.id} ({bars} bars) is stored for the "
            f"next fine-tune ({waiting} waiting)."
        )

    async def cmd_admin(self, args: list[str], options: dict[str, str], who: str, uid: int) -> None:
        # the terminal's user runs the bot: they are its admin
        sub = args[0] if args else "status"
        services = self.services
        if sub == "settings":
            settings = await services.guilds.update(
                PLAY_GUILD_ID,
                explicit_filter=options.get("filter"),
                cooldown_seconds=float(options["cooldown"]) if "cooldown" in options else None,
            )
            self.show(Card(title="Server settings", fields=services.guilds.describe(settings)))
            return
        jobs = services.finetune
        if jobs is None:
            raise RGPT2Error("fine-tuning is not configured here")
        if sub == "finetune":
            epochs = int(options.get("epochs", services.default_epochs))
            job = await jobs.start(None, epochs, uid, PLAY_GUILD_ID, on_progress=self._progress)
            self.show(f"Fine-tune job #{job.id} started ({epochs} epochs)…")
            final = await jobs.wait()
            if final is not None:
                self.show(self._job_card(final))
        elif sub == "status":
            job = await jobs.status()
            self.show(self._job_card(job) if job else "No fine-tune yet.")
            self.show(f"Serving: {model_label(services.generation.model_versions)}")
        elif sub == "cancel":
            job = await jobs.cancel()
            self.show("No fine-tune is running." if job is None else f"Job #{job.id}: {job.state}")
        elif sub == "rollback":
            versions = await jobs.rollback()
            self.show(f"Rolled back. Now serving: {model_label(versions)}")
        else:
            raise ValueError(f"unknown /admin command {sub!r}")

    def _progress(self, job: FinetuneJob) -> None:
        if job.is_active:
            self.show(f"  job #{job.id}: {progress_bar(job.progress)} {job.status_line or ''}")

    def _job_card(self, job: FinetuneJob) -> Card:
        card = job_card(job)
        curve = job.metrics.get("curve_png") if job.metrics else None
        card.image = str(curve) if curve else None  # the terminal shows the file's path
        return card


def _prompt(text: str) -> str:
    try:
        return input(text) + "\n"
    except EOFError:
        return ""


async def play(
    services: BotServices, stream: TextIO = sys.stdin, *, user: str = "you", echo: bool = True
) -> int:
    """Run the terminal front-end until /quit or end of input, then close the services."""
    try:
        return await Play(services, user=user).run(stream, echo=echo)
    finally:
        await services.close()

"""What the bot shows, as plain data: the cogs turn a :class:`Card` into an embed, ``rgpt2
play`` prints it. One wording for both front-ends, and no discord import here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.storage.records import Battle as BattleRow
from bot.storage.records import BattleStats, FinetuneJob, LeaderboardEntry
from bot.storage.records import VerseRecord as VerseRow

if TYPE_CHECKING:
    from bot.services.battles import BattleResult

# embed colours by kind; the terminal ignores them
COLOURS = {"verse": 0xE67E22, "battle": 0x9B59B6, "result": 0x2ECC71, "info": 0x3498DB}


@dataclass
class Card:
    """A titled block of text with fields: an embed on Discord, a box in the terminal."""

    title: str
    description: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    footer: str = ""
    kind: str = "info"
    image: str | None = None  # file name of an attached image (loss curve)

    def as_text(self) -> str:
        lines = [f"== {self.title} =="]
        if self.description:
            lines.append(self.description)
        for name, value in self.fields:
            # a list (several lines) reads better starting under its name
            lines.append(f"{name}:\n{value}" if "\n" in value else f"{name}: {value}")
        if self.footer:
            lines.append(f"({self.footer})")
        if self.image:
            lines.append(f"[image: {self.image}]")
        return "\n".join(lines)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def fmt_score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def model_label(versions: dict[str, str]) -> str:
    if not versions:
        return "unknown"
    short = {"forward": "fwd", "reverse": "rev"}
    return " / ".join(f"{short.get(k, k)} {v}" for k, v in sorted(versions.items()))


def verse_card(
    verse: VerseRow, *, shown_text: str, requester_name: str | None = None, title: str | None = None
) -> Card:
    """A stored verse; ``shown_text`` is its text after the server's explicit-language mask."""
    topic = f" — {verse.topic}" if verse.topic else ""
    footer = f"verse #{verse.id} · seed {verse.seed}"
    if requester_name:
        footer = f"requested by {requester_name} · " + footer
    return Card(
        title=title or f"Verse #{verse.id}{topic}",
        description=shown_text,
        fields=[
            ("Rap score", fmt_score(verse.rap_score)),
            ("Rhyme density", fmt_score(verse.rhyme_density)),
            ("End rhyme", "n/a" if verse.end_rhyme is None else f"{verse.end_rhyme:.0%}"),
            ("Scheme", f"{verse.scheme} · {verse.bars} bars"),
            ("Model", model_label(verse.model_versions)),
        ],
        footer=footer,
        kind="verse",
    )


def progress_bar(fraction: float, width: int = 20) -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction:.0%}"


def battle_state_line(battle: BattleRow) -> str:
    return {
        "pending": "waiting for the opponent to accept",
        "declined": "declined",
        "expired": "the challenge expired",
        "writing": "writing the verses",
        "voting": "voting is open",
        "closed": "closed",
        "cancelled": "cancelled",
    }.get(battle.state, battle.state)


def result_card(result: BattleResult) -> Card:
    """The result of a closed battle: winner (or tie), votes, rap scores."""
    b, t = result.battle, result.tally
    if b.winner == "tie":
        headline = f"It's a tie, {t.challenger}–{t.opponent}."
    else:
        winner, loser = (
            (b.challenger_id, b.opponent_id)
            if b.winner == "challenger"
            else (b.opponent_id, b.challenger_id)
        )
        high, low = max(t.challenger, t.opponent), min(t.challenger, t.opponent)
        headline = f"🏆 <@{winner}> beats <@{loser}>, {high}–{low}."
    return Card(
        title=f"Battle #{b.id} — result",
        description=headline,
        fields=[
            (
                "Challenger",
                f"<@{b.challenger_id}>: {plural(t.challenger, 'vote')} · rap score "
                f"{fmt_score(result.challenger_verse.rap_score)}",
            ),
            (
                "Opponent",
                f"<@{b.opponent_id}>: {plural(t.opponent, 'vote')} · rap score "
                f"{fmt_score(result.opponent_verse.rap_score)}",
            ),
        ],
        kind="result",
    )


def first_bar(text: str, width: int = 60) -> str:
    bar = text.split("\n", 1)[0]
    return bar if len(bar) <= width else bar[: width - 1] + "…"


def top_card(period: str, verses: Sequence[VerseRow], shown_texts: Sequence[str]) -> Card:
    """/top: ``shown_texts`` are the verses' texts as this server may see them (masked)."""
    lines = [
        f"**{rank}.** #{verse.id} · ▲ {verse.upvotes} · <@{verse.requester_id}> · "
        f"rap score {fmt_score(verse.rap_score)}\n> {first_bar(shown)}"
        for rank, (verse, shown) in enumerate(zip(verses, shown_texts, strict=True), 1)
    ]
    return Card(
        title=f"Top verses ({period})",
        description="\n".join(lines) or "No upvoted verses yet — try /rap and vote!",
        footer="/verse <id> shows one in full",
    )


def leaderboard_card(
    period: str, by_votes: Sequence[LeaderboardEntry], by_wins: Sequence[BattleStats]
) -> Card:
    votes = "\n".join(
        f"**{i}.** <@{e.user_id}> — ▲ {e.upvotes} on {e.verses} verses"
        for i, e in enumerate(by_votes, 1)
    )
    wins = "\n".join(
        f"**{i}.** <@{s.user_id}> — {s.wins} W / {s.losses} L / {s.ties} T"
        for i, s in enumerate(by_wins, 1)
    )
    return Card(
        title="Leaderboard",
        fields=[
            (f"Upvotes ({period})", votes or "nobody yet"),
            ("Battle wins", wins or "no battles yet"),
        ],
    )


def job_card(job: FinetuneJob, versions: dict[str, str] | None = None) -> Card:
    fields = [
        ("State", job.state),
        ("Progress", progress_bar(job.progress)),
        ("Epochs", str(job.epochs)),
    ]
    comparison = job.metrics.get("comparison") if job.metrics else None
    if comparison:
        fields.append(
            (
                "Perplexity",
                f"new {comparison['candidate']['ppl']:.1f} vs serving {comparison['current']['ppl']:.1f}",
            )
        )
    if job.swapped:
        fields.append(("Live", "yes — the new reverse model is serving"))
    if job.error:
        fields.append(("Error", job.error))
    if versions:
        fields.append(("Serving", model_label(versions)))
    return Card(
        title=f"Fine-tune job #{job.id}",
        description=job.status_line or "",
        fields=fields,
        kind="result" if job.state == "succeeded" else "info",
    )

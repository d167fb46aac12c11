"""Reading and cleaning lyrics in the seed format.

The seed format: one bar per line, a blank line between verses, two blank lines between
songs (where present). Scraped lyrics carry noise that a model would learn to write: section
headers (``[Verse 2]``, ``(Hook)``), credit lines (``Produced by ...``), paragraphs pasted
into one line, zero-width and non-breaking spaces, curly quotes. :func:`load_corpus` removes
them, drops exact duplicate verses and verses that are too short, and reports what it kept
and dropped and why (:class:`CorpusStats`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIN_BARS = 4
MAX_LINE_CHARS = 200
# a hook pasted eight times teaches the model to repeat itself: keep a bar at most twice
MAX_BAR_REPEATS = 2

# reasons a bar or verse is dropped, in report order
HEADER = "header"
CREDIT = "credit"
TOO_LONG = "too_long_line"
REPEATED_BAR = "repeated_bar"
DUPLICATE = "duplicate_verse"
TOO_SHORT = "too_short_verse"
BAR_REASONS: tuple[str, ...] = (HEADER, CREDIT, TOO_LONG, REPEATED_BAR)
VERSE_REASONS: tuple[str, ...] = (DUPLICATE, TOO_SHORT)

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u3000"), " ")
_QUOTES = {
    ord("\u2018"): "'",
    ord("\u2019"): "'",
    ord("\u201a"): "'",
    ord("\u201b"): "'",
    ord("\u2032"): "'",
    ord("\u201c"): '"',
    ord("\u201d"): '"',
    ord("\u201e"): '"',
    ord("\u201f"): '"',
    ord("\u2033"): '"',
}
_TRANSLATE = {**_INVISIBLE, **_SPACES, **_QUOTES}

_SECTION = r"(?:pre-?|post-?)?(?:verse|hook|chorus|intro|outro|bridge|refrain|interlude|skit|break)"
# a whole line in [] or {} (or opened and never closed) is stage direction or a header
_BRACKET_LINE = re.compile(r"^\s*[\[{]")
# (Hook), (Verse 2: Nas), (x2), (2x), (Repeat) ... but not ad-libs like (come on)
_PAREN_HEADER = re.compile(
    rf"^\s*\(\s*(?:{_SECTION}\b[^)]*|x\s*\d+|\d+\s*x|repeat\b[^)]*)\s*\)\s*$", re.IGNORECASE
)
# Hook: / Verse 1 - Nas / Chorus x2
_BARE_HEADER = re.compile(rf"^\s*{_SECTION}\s*\d*\s*(?:[:\-]\s*[^,.!?]{{0,40}}|x\s*\d+)?\s*$", re.I)
_CREDIT = re.compile(
    r"(?:^|\s-\s)\s*(?:additional\s+\w+\s+)?"
    r"(?:produced|written|prod\.?|recorded|mixed|mastered|engineered|composed|arranged)"
    r"(?:\s+and\s+\w+)?\s+(?:by|at)\b",
    re.IGNORECASE,
)


@dataclass
class Tally:
    """Counts of one kind of text: verses, bars, words, characters."""

    verses: int = 0
    bars: int = 0
    words: int = 0
    chars: int = 0

    def add_bars(self, bars: Iterable[str], verses: int = 0) -> None:
        self.verses += verses
        for bar in bars:
            self.bars += 1
            self.words += len(bar.split())
            self.chars += len(bar)


@dataclass
class CorpusStats:
    """What :func:`load_corpus` read, kept and dropped (with the reason for each drop)."""

    files: int = 0
    read: Tally = field(default_factory=Tally)
    kept: Tally = field(default_factory=Tally)
    dropped: dict[str, Tally] = field(
        default_factory=lambda: {r: Tally() for r in BAR_REASONS + VERSE_REASONS}
    )
    chunked_verses: int = 0  # verses longer than the limit, split into chunks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Corpus:
    verses: list[list[str]]
    stats: CorpusStats
    fingerprint: str


def clean_text(line: str) -> str:
    """Invisible characters removed, odd spaces and curly quotes made plain, whitespace collapsed."""
    return " ".join(line.translate(_TRANSLATE).split())


def bar_drop_reason(line: str) -> str | None:
    """Why a (cleaned, non-empty) line is not a bar, or None when it is one."""
    if len(line) > MAX_LINE_CHARS:
        return TOO_LONG
    if _CREDIT.search(line):
        return CREDIT
    if _is_header(line):
        return HEADER
    return None


def _is_header(line: str) -> bool:
    return bool(_BRACKET_LINE.match(line) or _PAREN_HEADER.match(line) or _BARE_HEADER.match(line))


_SECTION_WORD = re.compile(rf"{_SECTION}", re.I)


def header_section(line: str) -> str | None:
    """The section a header line opens ("hook", "verse", "chorus", ...), or None.

    "" for a header that names no section ("[Kanye West]", "(x2)").
    """
    line = clean_text(line)
    if not _is_header(line):
        return None
    found = _SECTION_WORD.search(line)
    return found.group(0).lower() if found else ""


def split_verses(text: str) -> list[list[str]]:
    """Raw verses of a seed-format text: runs of non-blank lines (lines not yet cleaned)."""
    verses: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if clean_text(line):
            current.append(line)
        elif current:
            verses.append(current)
            current = []
    if current:
        verses.append(current)
    return verses


def clean_verse(lines: Sequence[str], stats: CorpusStats | None = None) -> list[str]:
    """The bars of one raw verse, with headers, credits, long lines and 3rd+ repeats removed."""
    bars: list[str] = []
    seen: dict[str, int] = {}
    for raw in lines:
        line = clean_text(raw)
        if not line:
            continue
        reason = bar_drop_reason(line)
        if reason is None:
            key = line.lower()
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > MAX_BAR_REPEATS:
                reason = REPEATED_BAR
        if reason is None:
            bars.append(line)
        elif stats is not None:
            stats.dropped[reason].add_bars([line])
    return bars


def chunk_verse(
    bars: Sequence[str],
    limit: int,
    measure: Callable[[Sequence[str]], int] = len,
    min_bars: int = MIN_BARS,
) -> list[list[str]]:
    """Split a verse into consecutive chunks each of ``measure(chunk) <= limit``.

    ``measure`` defaults to the number of bars; training passes a token count. Chunks are
    filled greedily, and a short tail (fewer than ``min_bars`` bars) joins the chunk before it
    when that still fits. No bar is lost: a single bar over the limit is a chunk of its own
    (the packer cuts it).
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    if measure(bars) <= limit:
        return [list(bars)]
    chunks: list[list[str]] = []
    current: list[str] = []
    for bar in bars:
        if current and measure([*current, bar]) > limit:
            chunks.append(current)
            current = []
        current.append(bar)
    if current:
        if len(current) < min_bars and chunks and measure(chunks[-1] + current) <= limit:
            chunks[-1].extend(current)
        else:
            chunks.append(current)
    return chunks


def iter_files(paths: Sequence[str | Path]) -> list[Path]:
    """The .txt files named by ``paths`` (files, or folders searched recursively), sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.txt") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return files


def load_corpus(
    paths: Sequence[str | Path],
    min_bars: int = MIN_BARS,
    max_bars: int | None = None,
) -> Corpus:
    """Read, clean and deduplicate the verses of ``paths``; see the module docstring.

    ``max_bars`` splits longer verses into chunks (:func:`chunk_verse`). Duplicates are
    exact after cleaning (case and whitespace included), so the first copy is kept.
    """
    stats = CorpusStats()
    verses: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for path in iter_files(paths):
        stats.files += 1
        text = path.read_text(encoding="utf-8", errors="replace")
        for raw in split_verses(text):
            stats.read.add_bars([clean_text(r) for r in raw if clean_text(r)], verses=1)
            bars = clean_verse(raw, stats)
            key = tuple(bars)
            if bars and key in seen:
                stats.dropped[DUPLICATE].add_bars(bars, verses=1)
                continue
            seen.add(key)
            if len(bars) < min_bars:
                stats.dropped[TOO_SHORT].add_bars(bars, verses=1)
                continue
            chunks = [bars]
            if max_bars is not None and len(bars) > max_bars:
                chunks = chunk_verse(bars, max_bars, min_bars=min_bars)
                stats.chunked_verses += 1
            for chunk in chunks:
                stats.kept.add_bars(chunk, verses=1)
                verses.append(chunk)
    return Corpus(verses=verses, stats=stats, fingerprint=fingerprint(verses))


def read_verses(paths: Sequence[str | Path]) -> list[list[str]]:
    """The cleaned, deduplicated verses (lists of bars) of seed-format files or folders."""
    return load_corpus(paths).verses


def corpus_text(verses: Iterable[Sequence[str]]) -> str:
    """Verses back in the seed format (bars on lines, a blank line between verses)."""
    return "\n\n".join("\n".join(v) for v in verses) + "\n"


def fingerprint(verses: Iterable[Sequence[str]]) -> str:
    """sha256 of the cleaned corpus text: the same data gives the same fingerprint."""
    return "sha256:" + hashlib.sha256(corpus_text(verses).encode("utf-8")).hexdigest()


def format_stats(stats: CorpusStats) -> str:
    """A small human-readable table of :class:`CorpusStats`."""
    rows = [("read", stats.read), ("kept", stats.kept)]
    rows += [(f"dropped: {reason}", t) for reason, t in stats.dropped.items()]
    head = f"{'':<26}{'verses':>9}{'bars':>10}{'words':>11}{'chars':>12}"
    lines = [f"files: {stats.files}", head]
    for name, t in rows:
        lines.append(f"{name:<26}{t.verses:>9,}{t.bars:>10,}{t.words:>11,}{t.chars:>12,}")
    lines.append(f"verses split into chunks: {stats.chunked_verses:,}")
    return "\n".join(lines)

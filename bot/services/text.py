"""Text rules shared by every front-end: the explicit-language mask and lyrics checks."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from rgpt2.errors import RGPT2Error

# A short default list; servers that want more switch the filter off or extend it in code.
# Matched as whole words, case-insensitively, with common suffixes.
DEFAULT_EXPLICIT_WORDS: tuple[str, ...] = (
    "fuck",
    "shit",
    "bitch",
    "nigga",
    "nigger",
    "pussy",
    "dick",
    "cunt",
    "motherfucker",
    "hoe",
    "whore",
    "faggot",
    "asshole",
)

FILTER_MODES = ("off", "mask")


class LyricsRejected(RGPT2Error):
    """Contributed lyrics that fail a check; the message says which and why."""


def explicit_pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternation = "|".join(sorted((re.escape(w) for w in words if w), key=len, reverse=True))
    return re.compile(rf"\b(?:{alternation})(?:s|es|ed|er|ers|in|ing|a|z)?\b", re.IGNORECASE)


_DEFAULT_PATTERN = explicit_pattern(DEFAULT_EXPLICIT_WORDS)


def mask_explicit(text: str, pattern: re.Pattern[str] = _DEFAULT_PATTERN) -> str:
    """``text`` with every listed word masked as ``f**k`` (first letter kept, length kept)."""
    return pattern.sub(lambda m: m.group(0)[0] + "\\*" * (len(m.group(0)) - 1), text)


def clean_lyrics(raw: bytes | str, *, max_bytes: int, min_lines: int = 4) -> str:
    """Contributed lyrics as stored: UTF-8 text, normalised line ends, within the size limit.

    Raises :class:`LyricsRejected` for something too large, binary, not UTF-8 or too short
    to learn from.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise LyricsRejected(
            f"that is {len(data):,} bytes; the limit is {max_bytes:,} bytes — split it up"
        )
    if b"\x00" in data:
        raise LyricsRejected("that looks like a binary file, not text: send a plain .txt")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LyricsRejected("that is not UTF-8 text: save it as a plain UTF-8 .txt") from None
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t")
    if controls > max(2, len(text) // 100):
        raise LyricsRejected("that looks like a binary file, not text: send a plain .txt")
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    # keep single blank lines: they separate verses
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    bars = [line for line in kept if line]
    if len(bars) < min_lines:
        raise LyricsRejected(
            f"that has {len(bars)} line(s) of lyrics; send at least {min_lines} bars, one per line"
        )
    if sum(any(ch.isalpha() for ch in bar) for bar in bars) < min_lines:
        raise LyricsRejected("those lines have no words in them")
    return "\n".join(kept)

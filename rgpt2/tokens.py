"""Special tokens and the per-bar reversal at the heart of RGPT-2.

A verse is a list of bars. The training text of a verse is::

    <BOS> w1 w2 w3 <LINE> w4 w5 <LINE> ... <LINE><EOV>

The special tokens strip the whitespace on their left, so every word after ``<BOS>`` or
``<LINE>`` keeps the byte-level BPE's leading-space spelling (``" word"``): the same
spelling the rhyme trie uses for a bar's first word.

The reverse model is trained on the same text with the words of each bar reversed (bar
order kept), so it writes each bar starting from its rhyme word.
"""

from __future__ import annotations

from collections.abc import Sequence

BOS = "<BOS>"
LINE = "<LINE>"
EOV = "<EOV>"
PAD = "<PAD>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, LINE, EOV, PAD)

FORWARD = "forward"
REVERSE = "reverse"
DIRECTIONS: tuple[str, ...] = (FORWARD, REVERSE)


def normalize_bar(bar: str) -> str:
    """Collapse all whitespace runs to one space and strip the ends."""
    return " ".join(bar.split())


def reverse_bar(bar: str) -> str:
    """Reverse the word order of one bar (whitespace-normalised).

    An involution: ``reverse_bar(reverse_bar(b)) == normalize_bar(b)``.
    """
    return " ".join(reversed(bar.split()))


def reverse_verse(bars: Sequence[str]) -> list[str]:
    """Reverse the words of every bar; the order of the bars is kept."""
    return [reverse_bar(b) for b in bars]


unreverse_verse = reverse_verse  # reversal is its own inverse


def orient(bars: Sequence[str], direction: str) -> list[str]:
    """Bars as a model of ``direction`` reads them."""
    if direction == FORWARD:
        return [normalize_bar(b) for b in bars]
    if direction == REVERSE:
        return reverse_verse(bars)
    raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")


def verse_to_text(bars: Sequence[str], direction: str = FORWARD, *, complete: bool = True) -> str:
    """The training/prompt text of a verse for a model of ``direction``.

    ``complete=False`` leaves the verse open after the last ``<LINE>`` (a prompt).
    """
    oriented = [b for b in orient(bars, direction) if b]
    body = "".join(f" {b} {LINE}" for b in oriented)
    return f"{BOS}{body}{EOV if complete else ''}"


def text_to_bars(text: str, direction: str = FORWARD) -> list[str]:
    """Inverse of :func:`verse_to_text`: the bars in reading order, special tokens removed."""
    text = text.replace(PAD, " ").replace(BOS, " ")
    text = text.split(EOV, 1)[0]
    bars = [normalize_bar(b) for b in text.split(LINE)]
    bars = [b for b in bars if b]
    return orient(bars, direction) if direction == REVERSE else bars

"""Cooldowns, the explicit-language mask and lyrics checks (plain Python, no Discord)."""

from __future__ import annotations

import pytest

from bot.services.cooldowns import Cooldowns
from bot.services.text import LyricsRejected, clean_lyrics, explicit_pattern, mask_explicit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cooldown_per_key_and_reset():
    clock = Clock()
    cooldowns = Cooldowns(clock)
    assert cooldowns.hit("alice", 30) == 0.0
    assert cooldowns.hit("alice", 30) == pytest.approx(30.0)
    assert cooldowns.hit("bob", 30) == 0.0  # another member is not held back
    clock.now += 10
    assert cooldowns.remaining("alice") == pytest.approx(20.0)
    cooldowns.reset("alice")  # e.g. the request failed: forgiven
    assert cooldowns.hit("alice", 30) == 0.0
    clock.now += 30.01
    assert cooldowns.hit("alice", 30) == 0.0
    assert cooldowns.hit("carol", 0) == 0.0 and cooldowns.hit("carol", 0) == 0.0


def test_mask_keeps_first_letter_and_length_and_whole_words_only():
    assert mask_explicit("Shit, this bitches brew") == "S\\*\\*\\*, this b\\*\\*\\*\\*\\*\\* brew"
    assert (
        mask_explicit("a classic assessment of Scunthorpe") == "a classic assessment of Scunthorpe"
    )
    custom = explicit_pattern(["darn"])
    assert mask_explicit("darn it, shit", custom) == "d\\*\\*\\* it, shit"


def test_clean_lyrics_normalises_and_keeps_verse_breaks():
    raw = "\ufeffline one  here\r\nline two\r\n\r\n\r\nline three\nline four\n\n"
    assert clean_lyrics(raw.encode(), max_bytes=1000) == (
        "line one here\nline two\n\nline three\nline four"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 2000, "limit is 1,000 bytes"),
        (b"a\nb\x00\nc\nd", "binary"),
        ("caf\u00e9\n".encode("latin-1") * 5, "UTF-8"),
        (b"one line\ntwo lines", "at least 4 bars"),
        (b"1 2\n3 4\n5 6\n7 8", "no words"),
        (bytes(range(1, 32)) * 3 + b"\nb\nc\nd", "binary"),
    ],
)
def test_clean_lyrics_refuses_with_a_reason(raw, reason):
    with pytest.raises(LyricsRejected, match=reason):
        clean_lyrics(raw, max_bytes=1000)

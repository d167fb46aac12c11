from hypothesis import given
from hypothesis import strategies as st

from rgpt2.tokens import (
    BOS,
    EOV,
    LINE,
    normalize_bar,
    reverse_bar,
    reverse_verse,
    text_to_bars,
    unreverse_verse,
    verse_to_text,
)


def test_reverse_bar_reverses_word_order():
    assert reverse_bar("I got money  in the bank ") == "bank the in money got I"


@given(st.lists(st.text(), max_size=12))
def test_reversal_is_exactly_invertible(bars):
    assert unreverse_verse(reverse_verse(bars)) == [normalize_bar(b) for b in bars]


def test_verse_text_round_trip_both_directions(tiny_verses):
    for bars in tiny_verses:
        for direction in ("forward", "reverse"):
            text = verse_to_text(bars, direction)
            assert text.startswith(BOS) and text.endswith(f"{LINE}{EOV}")
            assert text_to_bars(text, direction) == bars


def test_reverse_text_starts_bars_with_their_rhyme_word():
    text = verse_to_text(["I got money in the bank", "you know I never drank"], "reverse")
    assert text == f"{BOS} bank the in money got I {LINE} drank never I know you {LINE}{EOV}"


def test_open_prompt_has_no_end_token():
    assert verse_to_text(["a b"], "forward", complete=False) == f"{BOS} a b {LINE}"

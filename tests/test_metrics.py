import pytest

from rgpt2.metrics import (
    bar_key,
    copied_bar_share,
    corpus_bar_set,
    distinct_n,
    end_rhyme_rate,
    max_bar_repeats,
    repeated_bar_share,
    rhyme_density,
    scheme_end_rhyme,
    scheme_pairs,
    summarize,
)

AABB = ["I walk in the night", "under the light", "I keep on my feet", "out in the street"]


def test_perfect_aabb_verse_rhymes_on_its_pairs():
    assert scheme_end_rhyme(AABB, "AABB") == 1.0
    # adjacent pairs: night/light and feet/street rhyme, light/feet does not
    assert end_rhyme_rate(AABB) == pytest.approx(2 / 3)
    assert scheme_end_rhyme(AABB, "ABAB") == 0.0
    assert scheme_end_rhyme(AABB, "free") == pytest.approx(2 / 3)


def test_abab_verse():
    abab = ["the night", "the feet,", "the light!", "the street"]
    assert scheme_end_rhyme(abab, "ABAB") == 1.0
    assert scheme_end_rhyme(abab, "AABB") == 0.0


def test_scheme_pairs():
    assert scheme_pairs(5, "AABB") == [(0, 1), (2, 3)]
    assert scheme_pairs(8, "ABAB") == [(0, 2), (1, 3), (4, 6), (5, 7)]
    assert scheme_pairs(3, "AAAA") == [(0, 1), (1, 2)]
    assert scheme_pairs(3, "free") == [(0, 1), (1, 2)]


def test_end_rhyme_of_a_single_bar_is_zero():
    assert end_rhyme_rate(["just one bar"]) == 0.0


def test_slant_end_rhyme_counts_assonance():
    bars = ["I went home", "on my phone"]
    assert end_rhyme_rate(bars) == 0.0
    assert end_rhyme_rate(bars, slant=True) == 1.0


def test_rhyme_density_by_hand():
    # cat/hat share one vowel (AE): the second word scores 1, the first 0
    assert rhyme_density(["cat hat"]) == 0.5
    # money/honey share two vowels (AH IY): 2 for the second word
    assert rhyme_density(["money", "honey"]) == 1.0
    # a repeated word is not a rhyme
    assert rhyme_density(["cat cat"]) == 0.0
    assert rhyme_density([]) == 0.0
    assert rhyme_density(["!!!"]) == 0.0


def test_rhyme_density_looks_back_fifteen_words():
    near = "cat " + "go " * 14 + "hat"  # hat is 15 words after cat
    far = "cat " + "go " * 15 + "hat"  # 16 words after: out of the window
    assert rhyme_density([near]) == pytest.approx(1 / 16)
    assert rhyme_density([far]) == 0.0
    assert rhyme_density([far], window=16) == pytest.approx(1 / 17)


def test_distinct_n():
    assert distinct_n([["a b a"]], 1) == pytest.approx(2 / 3)
    assert distinct_n([["a b a b"]], 2) == pytest.approx(2 / 3)
    # n-grams do not cross bars
    assert distinct_n([["a", "b"]], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n([["a"]], 0)


def test_repeated_bars_ignore_case_and_punctuation():
    looping = ["Yeah, yeah", "yeah yeah!", "YEAH YEAH", "something else"]
    assert bar_key("Yeah, yeah!") == "yeah yeah"
    assert max_bar_repeats(looping) == 3
    assert repeated_bar_share([looping, AABB], 3) == 0.5
    assert repeated_bar_share([looping, AABB], 4) == 0.0
    assert repeated_bar_share([], 3) == 0.0


def test_copied_bar_share_counts_long_bars_only():
    corpus = corpus_bar_set([["I got money in the bank, man", "short bar"]])
    generated = [["i got money in the BANK man", "a brand new bar of five words", "short bar"]]
    assert copied_bar_share(generated, corpus) == 0.5
    assert copied_bar_share([["short bar"]], corpus) is None


def test_summarize():
    looping = ["Yeah, yeah", "yeah yeah!", "YEAH YEAH", "yeah yeah"]
    out = summarize([AABB, looping], "AABB", corpus_bars=corpus_bar_set([AABB]), scores=[0.2, 0.4])
    assert out["verses"] == 2
    assert out["end_rhyme_scheme"] == 0.5  # AABB perfect, the loop rhymes nothing with itself
    assert out["repeated_bar_3plus_share"] == 0.5
    # the two 5-word bars of AABB are in the corpus; the loop has no bar that long
    assert out["copied_bar_share"] == 1.0
    assert out["rap_score"] == pytest.approx(0.3)
    assert out["rap_share"] == 0.0  # neither verse is called rap (score > 0.5)
    assert summarize([AABB, looping], "AABB", scores=[0.9, 0.4])["rap_share"] == 0.5
    assert summarize([AABB], "AABB")["rap_score"] is None

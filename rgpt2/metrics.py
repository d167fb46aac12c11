"""Measures of generated (or human) verses: rhyme, diversity, degeneration, copying.

A verse is a list of bars in reading order. Every function takes plain strings, so the
same figures are computed for generated verses and for human verses of a corpus.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rgpt2.rhyme import last_word, normalize_word, rhymes, scheme_partner, vowel_phonemes

RAPLYZER_WINDOW = 15  # words looked back for a rhyme, as in Raplyzer


def words_of(bar: str) -> list[str]:
    """The normalised words of a bar (punctuation-only tokens dropped)."""
    return [w for w in (normalize_word(t) for t in bar.split()) if w]


def bar_key(bar: str) -> str:
    """What makes two bars "the same bar": case, punctuation and spacing ignored."""
    return " ".join(words_of(bar))


def rhyme_density(bars: Sequence[str], window: int = RAPLYZER_WINDOW) -> float:
    """Raplyzer-style rhyme density of one verse.

    The verse becomes one sequence of vowel phonemes. For each word, its rhyme length is the
    longest run of matching vowels ending at its last vowel and at the last vowel of one of
    the ``window`` words before it (not the same word, runs may not overlap); the density is
    the average over the words that have a vowel. 0.0 for a verse without vowels.
    """
    vowels: list[str] = []
    ends: list[tuple[str, int]] = []  # (word, index of its last vowel)
    for bar in bars:
        for word in words_of(bar):
            vs = vowel_phonemes(word)
            if not vs:
                continue
            vowels.extend(vs)
            ends.append((word, len(vowels) - 1))
    if not ends:
        return 0.0
    total = 0
    for i, (word, end) in enumerate(ends):
        best = 0
        for other, other_end in ends[max(0, i - window) : i]:
            if other == word:
                continue
            length = 0
            while (
                other_end - length >= 0
                and end - length > other_end
                and vowels[end - length] == vowels[other_end - length]
            ):
                length += 1
            best = max(best, length)
        total += best
    return total / len(ends)


def scheme_pairs(n_bars: int, scheme: str) -> list[tuple[int, int]]:
    """(partner, bar) index pairs that must rhyme under ``scheme`` (``free``: adjacent bars)."""
    if scheme == "free":
        return [(i - 1, i) for i in range(1, n_bars)]
    pairs = []
    for i in range(n_bars):
        j = scheme_partner(i, scheme)
        if j is not None:
            pairs.append((j, i))
    return pairs


def end_rhyme_rate(
    bars: Sequence[str], pairs: Iterable[tuple[int, int]] | None = None, *, slant: bool = False
) -> float:
    """Share of bar pairs whose last words rhyme (default pairs: adjacent bars).

    ``slant`` counts assonance ("home"/"phone") too. 0.0 when there is no pair.
    """
    if pairs is None:
        pairs = [(i - 1, i) for i in range(1, len(bars))]
    pairs = list(pairs)
    if not pairs:
        return 0.0
    ends = [last_word(b) for b in bars]
    hits = sum(rhymes(ends[a], ends[b], slant=slant) for a, b in pairs)
    return hits / len(pairs)


def scheme_end_rhyme(bars: Sequence[str], scheme: str, *, slant: bool = False) -> float:
    """End-rhyme rate over the pairs ``scheme`` asks for (adjacent bars for ``free``)."""
    return end_rhyme_rate(bars, scheme_pairs(len(bars), scheme), slant=slant)


def distinct_n(verses: Sequence[Sequence[str]], n: int) -> float:
    """Distinct word n-grams / all word n-grams over all verses (within bars); 0.0 if none."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    grams: Counter[tuple[str, ...]] = Counter()
    for verse in verses:
        for bar in verse:
            ws = words_of(bar)
            grams.update(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def max_bar_repeats(bars: Sequence[str]) -> int:
    """How often the most repeated bar of a verse occurs (0 for an empty verse)."""
    counts = Counter(k for k in (bar_key(b) for b in bars) if k)
    return max(counts.values(), default=0)


def repeated_bar_share(verses: Sequence[Sequence[str]], times: int = 3) -> float:
    """Share of verses in which some bar occurs ``times`` times or more."""
    if not verses:
        return 0.0
    return sum(max_bar_repeats(v) >= times for v in verses) / len(verses)


def corpus_bar_set(verses: Iterable[Sequence[str]]) -> set[str]:
    """The normalised bars of a corpus, to look generated bars up in."""
    return {k for verse in verses for k in (bar_key(b) for b in verse) if k}


def copied_bar_share(
    verses: Sequence[Sequence[str]], corpus_bars: set[str], min_words: int = 5
) -> float | None:
    """Share of bars with ``min_words``+ words found verbatim (normalised) in the corpus.

    None when no bar is that long.
    """
    keys = [bar_key(b) for v in verses for b in v]
    long = [k for k in keys if len(k.split()) >= min_words]
    if not long:
        return None
    return sum(k in corpus_bars for k in long) / len(long)


def _mean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(vals) if vals else None


def summarize(
    verses: Sequence[Sequence[str]],
    scheme: str = "AABB",
    *,
    corpus_bars: set[str] | None = None,
    scores: Sequence[float | None] | None = None,
) -> dict[str, Any]:
    """All metrics of a set of verses, as a JSON-ready dict (means over verses)."""
    return {
        "verses": len(verses),
        "bars_per_verse": _mean(len(v) for v in verses),
        "words_per_bar": _mean(len(words_of(b)) for v in verses for b in v),
        "rhyme_density": _mean(rhyme_density(v) for v in verses),
        "end_rhyme_adjacent": _mean(end_rhyme_rate(v) for v in verses),
        "end_rhyme_scheme": _mean(scheme_end_rhyme(v, scheme) for v in verses),
        "end_rhyme_scheme_slant": _mean(scheme_end_rhyme(v, scheme, slant=True) for v in verses),
        "distinct_1": distinct_n(verses, 1),
        "distinct_2": distinct_n(verses, 2),
        "repeated_bar_3plus_share": repeated_bar_share(verses, 3),
        "copied_bar_share": (
            copied_bar_share(verses, corpus_bars) if corpus_bars is not None else None
        ),
        "rap_score": _mean(s for s in scores if s is not None) if scores else None,
        # the seed paper's figure: share of verses the classifier calls rap
        "rap_share": _mean(float(s > 0.5) for s in scores if s is not None) if scores else None,
    }

"""Rhyme tools: word normalisation, phones, rhyme keys and token tries of rhyming words.

Pronunciations come from the CMU Pronouncing Dictionary (``pronouncing``, offline). Words
it lacks (slang, misspellings, "rollin'") get a letter-based fallback: the spelling from the
last vowel group on, and rough vowel phonemes per vowel group.

Two words *rhyme* when they share a rhyming part (the phones from the last stressed vowel
on, stress marks ignored) in any of their pronunciations. When either word is unknown to the
dictionary, their letter keys are compared instead. A *slant* rhyme only needs the vowels of
the rhyming parts to match (assonance: "home" / "alone" / "phone" / "road").

The generator enforces rhymes with a :class:`RhymeTrie`: the token spellings (``" word"``,
with the tokenizer's leading-space convention, and ``" Word"``) of every word rhyming with a
target, so a bar's first word can be restricted token by token.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pronouncing

_VOWEL_LETTERS = "aeiouy"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
# strip everything that is not a letter, digit or apostrophe at either end of a token
_EDGE = re.compile(r"^[^\w']+|[^\w']+$")
# a vowel group; a w closing it is part of the vowel ("aw", "ow", "ew")
_VOWEL_GROUP = re.compile(r"[aeiouy]+(?:w(?![aeiouy]))?")

# rough vowel phonemes for letter groups of words the dictionary lacks (Raplyzer needs vowels)
_LETTER_VOWELS: dict[str, str] = {
    "a": "AE",
    "e": "EH",
    "i": "IH",
    "o": "AA",
    "u": "AH",
    "y": "IY",
    "ee": "IY",
    "ea": "IY",
    "ie": "IY",
    "ey": "EY",
    "ay": "EY",
    "ai": "EY",
    "oo": "UW",
    "ou": "AW",
    "ow": "OW",
    "oa": "OW",
    "oe": "OW",
    "oi": "OY",
    "oy": "OY",
    "au": "AO",
    "aw": "AO",
    "ue": "UW",
    "ui": "UW",
}


def normalize_word(word: str) -> str:
    """Lower-case ``word`` and strip surrounding punctuation, keeping inner apostrophes.

    ``"Money,"`` -> ``"money"``, ``"it's"`` -> ``"it's"``, ``"'em"`` -> ``"'em"``,
    ``"(rollin')"`` -> ``"rollin'"``, ``"!!!"`` -> ``""``.
    """
    word = word.translate(_APOSTROPHES).lower().strip()
    word = _EDGE.sub("", word)
    # a lone quote mark around a word is punctuation, not an elision
    if word.startswith("'") and word.endswith("'") and len(word) > 2:
        word = word[1:-1]
    return word if any(ch.isalnum() for ch in word) else ""


def last_word(bar: str) -> str:
    """The last word of ``bar`` that has a letter or digit in it, normalised ("" if none)."""
    for token in reversed(bar.split()):
        word = normalize_word(token)
        if word:
            return word
    return ""


def _lookup_forms(word: str) -> list[str]:
    """Spellings to try in the dictionary, most faithful first."""
    forms = [word]
    if word.endswith("in'"):
        forms.append(word[:-1] + "g")  # rollin' -> rolling
    stripped = word.strip("'")
    if stripped != word:
        forms.append(stripped)
    if "'" in stripped:
        forms.append(stripped.replace("'", ""))
    return forms


@lru_cache(maxsize=200_000)
def phones(word: str) -> tuple[str, ...]:
    """CMU pronunciations of ``word`` (normalised first); empty when the dictionary lacks it."""
    word = normalize_word(word)
    if not word:
        return ()
    for form in _lookup_forms(word):
        found = pronouncing.phones_for_word(form)
        if found:
            return tuple(found)
    return ()


def _strip_stress(phone_string: str) -> str:
    return re.sub(r"\d", "", phone_string)


def letter_key(word: str) -> str:
    """Letter-based rhyme key for words the dictionary lacks.

    The spelling from the last vowel group on ("skrrt" has none: the whole word); a word
    ending in a vowel group keeps the group before it too ("shawty" -> "awty", "finna" ->
    "inna"), as a final vowel alone says little about the rhyme.
    """
    word = normalize_word(word).replace("'", "")
    if word.endswith("in") and len(word) > 3 and not word.endswith("ain"):
        word += "g"  # rollin -> rolling: the dropped g still rhymes like -ing
    groups = list(_VOWEL_GROUP.finditer(word))
    if not groups:
        return word
    start = groups[-1].start()
    if groups[-1].end() == len(word) and len(groups) > 1:
        start = groups[-2].start()
    return word[start:]


@lru_cache(maxsize=200_000)
def rhyme_keys(word: str) -> frozenset[str]:
    """Perfect-rhyme keys of ``word``: its rhyming parts without stress marks.

    Falls back to ``{"~" + letter_key(word)}`` for words the dictionary lacks (the prefix keeps
    letter keys apart from phoneme keys).
    """
    word = normalize_word(word)
    if not word:
        return frozenset()
    found = phones(word)
    if found:
        return frozenset(_strip_stress(pronouncing.rhyming_part(p)) for p in found)
    return frozenset({"~" + letter_key(word)})


def _vowels_of(key: str) -> str:
    if key.startswith("~"):
        return "~" + " ".join(_letter_vowels(key[1:]))
    return " ".join(p for p in key.split() if p[0] in "AEIOU")


@lru_cache(maxsize=200_000)
def slant_keys(word: str) -> frozenset[str]:
    """Assonance keys: only the vowels of the rhyming parts ("home" and "phone" share one)."""
    return frozenset(_vowels_of(k) for k in rhyme_keys(word))


def scheme_partner(index: int, scheme: str) -> int | None:
    """The earlier bar (0-based) whose end word bar ``index`` must rhyme with, or None.

    AABB pairs bars 2k and 2k+1; ABAB pairs 4k with 4k+2 and 4k+1 with 4k+3; AAAA chains
    every bar to the one before it; free pairs nothing.
    """
    if index <= 0:
        return None
    if scheme == "AABB":
        return index - 1 if index % 2 == 1 else None
    if scheme == "ABAB":
        return index - 2 if index % 4 in (2, 3) else None
    if scheme == "AAAA":
        return index - 1
    if scheme == "free":
        return None
    raise ValueError(f"unknown rhyme scheme {scheme!r}")


def in_dictionary(word: str) -> bool:
    return bool(phones(word))


def rhymes(a: str, b: str, *, slant: bool = False, identical: bool = False) -> bool:
    """Whether words ``a`` and ``b`` rhyme (``slant``: vowels of the rhyming part suffice).

    A word does not rhyme with itself unless ``identical`` is true.
    """
    a, b = normalize_word(a), normalize_word(b)
    if not a or not b:
        return False
    if a == b:
        return identical
    if in_dictionary(a) and in_dictionary(b):
        keys = slant_keys if slant else rhyme_keys
        return bool(keys(a) & keys(b))
    ka, kb = letter_key(a), letter_key(b)
    if ka == kb:
        return True
    return slant and bool(_letter_vowels(ka)) and _letter_vowels(ka) == _letter_vowels(kb)


def _letter_vowels(word: str) -> list[str]:
    """Rough vowel phonemes of a spelling, one per vowel group."""
    out = []
    word = word.lower()
    for m in _VOWEL_GROUP.finditer(word):
        group = m.group()
        # a leading y is a consonant ("yeah"), and a trailing silent e after a consonant
        if group.startswith("y") and m.start() == 0:
            group = group[1:]
        if not group or (group == "e" and m.end() == len(word) and len(out) > 0):
            continue
        out.append(_LETTER_VOWELS.get(group[:2], _LETTER_VOWELS.get(group[0], "AH")))
    return out


@lru_cache(maxsize=200_000)
def vowel_phonemes(word: str) -> tuple[str, ...]:
    """The word's vowel phonemes, stress removed (first CMU pronunciation, else by letters)."""
    word = normalize_word(word)
    if not word:
        return ()
    found = phones(word)
    if found:
        return tuple(_strip_stress(p) for p in found[0].split() if p[0] in "AEIOU")
    return tuple(_letter_vowels(word.replace("'", "")))


# --- rhyme index and token tries --------------------------------------------------------


@dataclass
class TrieNode:
    children: dict[int, TrieNode] = field(default_factory=dict)
    terminal: bool = False  # a whole word ends here


@dataclass
class RhymeTrie:
    """Token sequences of the words rhyming with ``target`` (empty when none are known)."""

    target: str
    words: tuple[str, ...]
    root: TrieNode

    def __bool__(self) -> bool:
        return bool(self.root.children)

    def walk(self, token_ids: Sequence[int]) -> TrieNode | None:
        """The node reached by ``token_ids`` from the root, None if they leave the trie."""
        node = self.root
        for t in token_ids:
            nxt = node.children.get(t)
            if nxt is None:
                return None
            node = nxt
        return node


_WORDLIKE = re.compile(r"^[a-z]+(?:'[a-z]+)*'?$")


@lru_cache(maxsize=1)
def _dictionary_index() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """CMU words by perfect key and by slant key (built once, ~1 s)."""
    pronouncing.init_cmu()
    perfect: dict[str, set[str]] = defaultdict(set)
    slant: dict[str, set[str]] = defaultdict(set)
    for word, phone_string in pronouncing.pronunciations:
        if not _WORDLIKE.match(word):
            continue
        key = _strip_stress(pronouncing.rhyming_part(phone_string))
        perfect[key].add(word)
        slant[_vowels_of(key)].add(word)
    return dict(perfect), dict(slant)


class RhymeIndex:
    """Rhyming words for targets, as token tries for one tokenizer (cached per target).

    Candidates are the CMU dictionary's words plus ``extra_words`` (e.g. the whole-word
    tokens of the tokenizer's vocabulary, which carry the corpus's slang). Words longer than
    ``max_word_tokens`` tokens are left out: a model rarely means them.
    Perfect rhymes that are vocabulary words come first; rarer and slant rhymes are added
    only while fewer than ``min_words`` words are on offer (see :meth:`trie`).
    ``capitalised``: also offer ``" Word"`` where the vocabulary has it as a single token.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        extra_words: Iterable[str] | None = None,
        max_word_tokens: int = 4,
        min_words: int = 8,
        capitalised: bool = True,
    ) -> None:
        if max_word_tokens < 1:
            raise ValueError(f"max_word_tokens must be at least 1, not {max_word_tokens}")
        if min_words < 0:
            raise ValueError(f"min_words must be non-negative, not {min_words}")
        self.tokenizer = tokenizer
        self.max_word_tokens = max_word_tokens
        self.min_words = min_words
        self.capitalised = capitalised
        if extra_words is None:
            extra_words = vocabulary_words(tokenizer)
        self._lock = threading.Lock()
        self._tries: dict[str, RhymeTrie] = {}
        perfect, slant = _dictionary_index()
        self._perfect = perfect
        self._slant = slant
        # words the dictionary lacks, indexed by their letter key
        self._letters: dict[str, set[str]] = defaultdict(set)
        self._extra_perfect: dict[str, set[str]] = defaultdict(set)
        self._extra_slant: dict[str, set[str]] = defaultdict(set)
        for raw in extra_words:
            w = normalize_word(raw)
            if not w or not _WORDLIKE.match(w):
                continue
            if in_dictionary(w):
                for k in rhyme_keys(w):
                    self._extra_perfect[k].add(w)
                for k in slant_keys(w):
                    self._extra_slant[k].add(w)
            else:
                self._letters[letter_key(w)].add(w)
        # the vocabulary's dictionary words by letter key, for targets the dictionary lacks
        self._dictionary_letters: dict[str, set[str]] = defaultdict(set)
        for ws in self._extra_perfect.values():
            for w in ws:
                self._dictionary_letters[letter_key(w)].add(w)

    def tiers(self, target: str) -> list[set[str]]:
        """Candidate rhymes of ``target``, best first (never ``target`` itself).

        Perfect rhymes among the vocabulary's words (common in the corpus), then all perfect
        rhymes of the dictionary, then slant rhymes the same two ways. Words the dictionary
        lacks have one tier: vocabulary words with the same letter key.
        """
        target = normalize_word(target)
        if not target:
            return []
        if not in_dictionary(target):
            key = letter_key(target)
            found = self._letters.get(key, set()) | self._dictionary_letters.get(key, set())
            return [found - {target}]
        out = []
        for index, extra, keys in (
            (self._perfect, self._extra_perfect, rhyme_keys(target)),
            (self._slant, self._extra_slant, slant_keys(target)),
        ):
            common: set[str] = set()
            every: set[str] = set()
            for k in keys:
                common |= extra.get(k, set())
                every |= index.get(k, set()) | extra.get(k, set())
            out += [common - {target}, every - {target}]
        return out

    def rhyming_words(self, target: str) -> set[str]:
        """The words the trie of ``target`` offers."""
        return set(self.trie(target).words)

    def trie(self, target: str) -> RhymeTrie:
        """The token trie of the rhymes of ``target`` (cached).

        Tiers (:meth:`tiers`) are added until at least ``min_words`` words are offered;
        spellings longer than ``max_word_tokens`` tokens are left out.
        """
        target = normalize_word(target)
        with self._lock:
            cached = self._tries.get(target)
        if cached is not None:
            return cached
        root = TrieNode()
        kept: set[str] = set()
        for tier in self.tiers(target):
            words = sorted(tier - kept)
            if not words:
                continue
            spellings = [" " + w for w in words]
            if self.capitalised:
                spellings += [" " + w[:1].upper() + w[1:] for w in words]
            encoded = self.tokenizer(spellings, add_special_tokens=False)["input_ids"]
            for n, (word, ids) in enumerate(
                zip(words * (2 if self.capitalised else 1), encoded, strict=True)
            ):
                if not ids or len(ids) > self.max_word_tokens:
                    continue
                if n >= len(words) and len(ids) > 1:
                    # a capitalised spelling only when the vocabulary has it as one token
                    # (names the corpus capitalises: " God", " Benz"); otherwise " Pil" +
                    # "l" style pieces of capitalised words slip in as rhymes
                    continue
                node = root
                for t in ids:
                    node = node.children.setdefault(t, TrieNode())
                node.terminal = True
                kept.add(word)
            if len(kept) >= self.min_words:
                break
        trie = RhymeTrie(target=target, words=tuple(sorted(kept)), root=root)
        with self._lock:
            self._tries[target] = trie
        return trie


def vocabulary_words(tokenizer: Any) -> list[str]:
    """Whole words in a byte-level BPE vocabulary: tokens spelled with the leading space."""
    out = []
    for token in tokenizer.get_vocab():
        if token.startswith("Ġ") and len(token) > 2:
            word = token[1:]
            if word.isascii() and _WORDLIKE.match(word.lower()):
                out.append(word.lower())
    return out

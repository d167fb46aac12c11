"""Logits processors and the sampler of the two-stage generator.

Every processor follows the transformers ``LogitsProcessor`` contract: ``__call__(input_ids,
scores) -> scores`` with ``input_ids`` the (left-padded) token ids of each row so far and
``scores`` the next-token logits; arguments are checked in ``__init__`` and ``scores`` is
never modified in place. Per-row options (one value per row of the batch) let requests with
different settings share a batch.

Rows are read from ``input_ids`` alone: the verse starts at the last ``<BOS>``, bars end with
``<LINE>``, and the tokens after the last ``<LINE>`` are the bar being written.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from rgpt2.metrics import bar_key
from rgpt2.rhyme import (
    RhymeIndex,
    RhymeTrie,
    in_dictionary,
    normalize_word,
    scheme_partner,
    vowel_phonemes,
)

NEG_INF = float("-inf")

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def row_tokens(input_ids: torch.Tensor, pad_id: int) -> list[list[int]]:
    """Each row's ids without its left padding."""
    rows = []
    for row in input_ids.tolist():
        start = 0
        while start < len(row) and row[start] == pad_id:
            start += 1
        rows.append(row[start:])
    return rows


def split_bars(
    tokens: Sequence[int], bos_id: int, line_id: int
) -> tuple[list[list[int]], list[int]]:
    """(completed bars, current bar) of the verse that starts at the last ``<BOS>``."""
    start = 0
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] == bos_id:
            start = i + 1
            break
    bars: list[list[int]] = []
    current: list[int] = []
    for t in tokens[start:]:
        if t == line_id:
            bars.append(current)
            current = []
        else:
            current.append(t)
    return bars, current


def verse_tokens(tokens: Sequence[int], bos_id: int) -> list[int]:
    """The tokens after the last ``<BOS>``."""
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] == bos_id:
            return list(tokens[i + 1 :])
    return list(tokens)


@dataclass(frozen=True)
class ParsedRow:
    """One row of ``input_ids`` read as a verse."""

    tokens: list[int]  # without left padding
    verse: list[int]  # after the last <BOS>
    bars: list[list[int]]  # completed bars of the verse
    current: list[int]  # the bar being written


_parsed: tuple[torch.Tensor, tuple[int, int, int], list[ParsedRow]] | None = None
_parsed_lock = threading.Lock()


def parse_rows(input_ids: torch.Tensor, pad_id: int, bos_id: int, line_id: int) -> list[ParsedRow]:
    """Every row of ``input_ids`` as a verse.

    The processors of one step all read the same tensor: the last result is kept (with the
    tensor itself, so its id cannot be reused) and returned again for it.
    """
    global _parsed
    key = (pad_id, bos_id, line_id)
    with _parsed_lock:
        cached = _parsed
    if cached is not None and cached[0] is input_ids and cached[1] == key:
        return cached[2]
    rows = []
    for tokens in row_tokens(input_ids, pad_id):
        bars, current = split_bars(tokens, bos_id, line_id)
        rows.append(ParsedRow(tokens, verse_tokens(tokens, bos_id), bars, current))
    with _parsed_lock:
        _parsed = (input_ids, key, rows)
    return rows


def _check_rows(name: str, values: Sequence[Any]) -> None:
    if len(values) == 0:
        raise ValueError(f"{name} needs one value per row, got none")


def _check_batch(name: str, values: Sequence[Any], scores: torch.Tensor) -> None:
    if len(values) != scores.shape[0]:
        raise ValueError(f"{name}: {len(values)} per-row values for a batch of {scores.shape[0]}")


class BanTokensProcessor:
    """Never sample ``token_ids`` (``<BOS>``, ``<PAD>``, ``<EOV>``, padding rows of the vocab)."""

    def __init__(self, token_ids: Sequence[int], vocab_size: int) -> None:
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, not {vocab_size}")
        bad = [t for t in token_ids if not 0 <= t < vocab_size]
        if bad:
            raise ValueError(f"token ids {bad} are outside a vocabulary of {vocab_size}")
        self.mask = torch.zeros(vocab_size, dtype=torch.bool)
        self.mask[list(token_ids)] = True

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(self.mask[: scores.shape[-1]].to(scores.device), NEG_INF)


class BarLengthProcessor:
    """No empty bars, no endless bars.

    ``<LINE>`` is banned until the bar has a token with a letter or digit (``wordy``), and
    forced once the bar has ``max_bar_tokens`` tokens.
    """

    def __init__(
        self, bos_id: int, line_id: int, pad_id: int, wordy: torch.Tensor, max_bar_tokens: int
    ) -> None:
        if max_bar_tokens < 2:
            raise ValueError(f"max_bar_tokens must be at least 2, not {max_bar_tokens}")
        if wordy.dtype != torch.bool or wordy.dim() != 1:
            raise ValueError("wordy must be a 1-D bool tensor over the vocabulary")
        self.bos_id, self.line_id, self.pad_id = bos_id, line_id, pad_id
        self.wordy = wordy.tolist()
        self.max_bar_tokens = max_bar_tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        out = scores
        for i, row in enumerate(parse_rows(input_ids, self.pad_id, self.bos_id, self.line_id)):
            current = row.current
            if len(current) >= self.max_bar_tokens:
                out = out.clone() if out is scores else out
                line_score = out[i, self.line_id].clone()
                out[i] = NEG_INF
                out[i, self.line_id] = line_score if torch.isfinite(line_score) else 0.0
            elif not any(self.wordy[t] for t in current if t < len(self.wordy)):
                out = out.clone() if out is scores else out
                out[i, self.line_id] = NEG_INF
        return out


class RepetitionPenaltyProcessor:
    """CTRL-style repetition penalty per row over the verse so far (special tokens exempt)."""

    can_empty_rows = False  # it only scales finite scores: apply_processors skips its check

    def __init__(
        self, penalties: Sequence[float], bos_id: int, pad_id: int, exempt: Sequence[int]
    ) -> None:
        _check_rows("penalties", penalties)
        if any(p < 1.0 for p in penalties):
            raise ValueError(f"repetition penalties must be >= 1.0, got {list(penalties)}")
        self.penalties = [float(p) for p in penalties]
        self.bos_id, self.pad_id = bos_id, pad_id
        self.exempt = set(exempt) | {pad_id}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        _check_batch("penalties", self.penalties, scores)
        vocab = scores.shape[-1]
        ids = input_ids.to(scores.device)
        # positions after the last <BOS> of their row (no <BOS> at or after them)
        is_bos = (ids == self.bos_id).long()
        seen = (is_bos.flip(-1).cumsum(-1).flip(-1) == 0) & (ids >= 0) & (ids < vocab)
        if self.exempt:
            seen &= ~torch.isin(ids, torch.tensor(sorted(self.exempt), device=ids.device))
        # only the seen tokens' scores are touched: gather them, penalise, scatter back; the
        # other positions point at <PAD> (exempt) and write its own score back unchanged
        ids = torch.where(seen, ids, self.pad_id)
        vals = scores.gather(1, ids)
        p = torch.tensor(self.penalties, dtype=scores.dtype, device=scores.device)[:, None]
        penalised = torch.where(vals < 0, vals * p, vals / p)
        return scores.scatter(1, ids, torch.where(seen, penalised, vals))


class NoRepeatNGramProcessor:
    """Per row, ban tokens that would repeat an n-gram already in the verse (0 = off)."""

    def __init__(self, sizes: Sequence[int], bos_id: int, pad_id: int, line_id: int = -1) -> None:
        _check_rows("sizes", sizes)
        if any(n < 0 for n in sizes):
            raise ValueError(f"n-gram sizes must be >= 0, got {list(sizes)}")
        self.sizes = [int(n) for n in sizes]
        self.bos_id, self.pad_id, self.line_id = bos_id, pad_id, line_id

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        _check_batch("sizes", self.sizes, scores)
        if not any(self.sizes):
            return scores
        batch, vocab = scores.shape
        ids = input_ids.to(scores.device)
        # the verse: after the row's last <BOS>, or the whole row without its left padding
        is_bos = (ids == self.bos_id).long()
        in_verse = is_bos.flip(-1).cumsum(-1).flip(-1) == 0
        in_verse &= (ids != self.pad_id).long().cumsum(-1) > 0
        # one extra column collects the windows that ban nothing
        banned = torch.zeros((batch, vocab + 1), dtype=torch.bool, device=scores.device)
        for n in sorted(set(self.sizes) - {0}):
            if ids.shape[1] < n:
                continue
            rows = torch.tensor([i for i, k in enumerate(self.sizes) if k == n], device=ids.device)
            windows = ids[rows].unfold(1, n, 1)  # (rows, starts, n)
            # rows are right-aligned (left padding): the last n-1 ids are the prefix
            hit = in_verse[rows].unfold(1, n, 1).all(-1)
            if n > 1:
                prefix = ids[rows, ids.shape[1] - n + 1 :]
                hit &= (windows[:, :, : n - 1] == prefix[:, None, :]).all(-1)
            last = windows[:, :, n - 1].clamp(0, vocab - 1)
            target = torch.where(hit, last, vocab)
            banned[rows] = banned[rows].scatter(1, target, True)
        banned = banned[:, :vocab]
        if not banned.any():
            return scores
        return scores.masked_fill(banned, NEG_INF)


class DuplicateBarProcessor:
    """Ban ``<LINE>`` where it would complete a bar the verse already has ``max_repeats`` times.

    Bars are compared as text (case, punctuation and spacing ignored). ``active`` (one flag per
    row, read at each call) switches the rule on per row: the generator first resamples a
    repeated bar freely and turns this on only when resampling keeps repeating it.
    """

    def __init__(
        self,
        tokenizer: Any,
        bos_id: int,
        line_id: int,
        pad_id: int,
        active: Sequence[bool],
        max_repeats: int = 2,
    ) -> None:
        _check_rows("active", active)
        if max_repeats < 1:
            raise ValueError(f"max_repeats must be at least 1, not {max_repeats}")
        self.tokenizer = tokenizer
        self.bos_id, self.line_id, self.pad_id = bos_id, line_id, pad_id
        self.active = active
        self.max_repeats = max_repeats

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        _check_batch("active", self.active, scores)
        out = scores
        if not any(self.active):
            return out
        for i, row in enumerate(parse_rows(input_ids, self.pad_id, self.bos_id, self.line_id)):
            if not self.active[i]:
                continue
            bars, current = row.bars, row.current
            counts = Counter(bar_key(self.tokenizer.decode(b)) for b in bars)
            if counts[bar_key(self.tokenizer.decode(current))] >= self.max_repeats:
                if out is scores:
                    out = scores.clone()
                out[i, self.line_id] = NEG_INF
        return out


@lru_cache(maxsize=8)
def token_texts(tokenizer: Any, vocab_size: int) -> tuple[tuple[int, str], ...]:
    """(id, text) of every vocabulary token below ``vocab_size``, decoded once per tokenizer:
    the generator's token masks are all built from it."""
    return tuple(
        (idx, tokenizer.convert_tokens_to_string([token]))
        for token, idx in tokenizer.get_vocab().items()
        if idx < vocab_size
    )


# Punctuation that closes a word ("night," "night?!"). Not hyphens, brackets that open,
# apostrophes or stray bytes: letters may follow those and glue on to the rhyme word
# ("night-owl", "night's"), which then no longer rhymes.
_CLOSING = frozenset(',.!?;:")]}\u2026\u201d')


def boundary_mask(tokenizer: Any, vocab_size: int, line_id: int) -> torch.Tensor:
    """Tokens that may follow a complete rhyme word: a new word (leading space), closing
    punctuation, <LINE>."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    for idx in closing_ids(tokenizer, vocab_size):
        mask[idx] = True
    for idx, text in token_texts(tokenizer, vocab_size):
        if text[:1].isspace():
            mask[idx] = True
    mask[line_id] = True
    return mask


def closing_ids(tokenizer: Any, vocab_size: int) -> frozenset[int]:
    """Tokens made only of closing punctuation."""
    out = set()
    for idx, text in token_texts(tokenizer, vocab_size):
        if text and all(ch in _CLOSING for ch in text):
            out.add(idx)
    return frozenset(out)


def wordy_mask(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """Tokens with a letter or digit in them."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    for idx, text in token_texts(tokenizer, vocab_size):
        if any(ch.isalnum() for ch in text):
            mask[idx] = True
    return mask


RHYME_MODES = ("restrict", "bias")


class _PartnerBarProcessor:
    """A processor that shapes the bar being written by its partner bar (reverse model).

    For each row with a scheme whose bar being written has a partner bar
    (``rhyme.scheme_partner``) already written, :meth:`row_mask` gives the tokens to act on,
    or None to leave the row alone. With ``bonus`` None everything outside the mask is
    banned; otherwise ``bonus`` is added to the tokens in it.
    """

    bonus: float | None = None

    def __init__(
        self, tokenizer: Any, schemes: Sequence[str | None], bos_id: int, line_id: int, pad_id: int
    ) -> None:
        _check_rows("schemes", schemes)
        for s in schemes:
            if s is not None:
                scheme_partner(1, s)  # raises on an unknown scheme
        self.tokenizer = tokenizer
        self.schemes = list(schemes)
        self.bos_id, self.line_id, self.pad_id = bos_id, line_id, pad_id
        self._bar_words: dict[tuple[int, ...], list[str]] = {}
        self.applied = 0  # how many (row, step) pairs were acted on, for tests and stats

    def share_words(self, other: _PartnerBarProcessor) -> None:
        """Use ``other``'s cache of decoded bars (same tokenizer)."""
        if other.tokenizer is self.tokenizer:
            self._bar_words = other._bar_words

    def bar_words(self, bar: Sequence[int]) -> list[str]:
        """The normalised words of a (reversed) bar that have a letter or digit, cached."""
        key = tuple(bar)
        found = self._bar_words.get(key)
        if found is None:
            words = (normalize_word(w) for w in self.tokenizer.decode(list(bar)).split())
            found = self._bar_words[key] = [w for w in words if w]
        return found

    def row_mask(self, row: ParsedRow, partner_bar: list[int]) -> torch.Tensor | None:
        raise NotImplementedError

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        _check_batch("schemes", self.schemes, scores)
        if not any(self.schemes):
            return scores
        hits: list[int] = []
        masks: list[torch.Tensor] = []
        for i, row in enumerate(parse_rows(input_ids, self.pad_id, self.bos_id, self.line_id)):
            scheme = self.schemes[i]
            if scheme is None:
                continue
            partner = scheme_partner(len(row.bars), scheme)
            if partner is None or partner >= len(row.bars):
                continue
            mask = self.row_mask(row, row.bars[partner])
            if mask is not None:
                hits.append(i)
                masks.append(mask[: scores.shape[-1]])
                self.applied += 1
        if not hits:
            return scores
        index = torch.tensor(hits, device=scores.device)
        chosen = torch.stack(masks).to(scores.device)
        if self.bonus is None:
            return scores.index_put((index,), scores[index].masked_fill(~chosen, NEG_INF))
        return scores.index_put((index,), scores[index] + self.bonus * chosen)


class RhymeLogitsProcessor(_PartnerBarProcessor):
    """Make the first word of each bar rhyme with its partner bar's end word (reverse model).

    Rows are reversed verses: a bar's first word is its rhyme word. For a bar whose partner
    (``rhyme.scheme_partner``) exists, the partner's first word is looked up in ``index`` and
    the next tokens are held to its :class:`~rgpt2.rhyme.RhymeTrie`, token by token through a
    multi-token word; once a whole word is spelled, the word may continue in the trie or end
    (a ``boundary`` token). ``mode="restrict"`` bans every other token; ``mode="bias"`` adds
    ``bias`` to the allowed ones instead. ``schemes[i]`` None switches row i off; so does a
    partner word with no known rhymes, or a bar whose start already left the trie.
    """

    def __init__(
        self,
        index: RhymeIndex,
        schemes: Sequence[str | None],
        bos_id: int,
        line_id: int,
        pad_id: int,
        boundary: torch.Tensor,
        mode: str = "restrict",
        bias: float = 5.0,
        closers: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(index.tokenizer, schemes, bos_id, line_id, pad_id)
        if mode not in RHYME_MODES:
            raise ValueError(f"mode must be one of {RHYME_MODES}, not {mode!r}")
        if mode == "bias" and not bias > 0:
            raise ValueError(f"bias must be positive, not {bias}")
        if boundary.dtype != torch.bool or boundary.dim() != 1:
            raise ValueError("boundary must be a 1-D bool tensor over the vocabulary")
        self.index = index
        self.boundary = boundary
        self.closers = closers
        self.mode = mode
        self.bias = float(bias)
        self.bonus = None if mode == "restrict" else self.bias
        self._mask_cache: dict[int, torch.Tensor] = {}

    def share_caches(self, other: RhymeLogitsProcessor) -> None:
        """Use ``other``'s word and mask caches (same index and boundary: a batch's rows left)."""
        if other.index is self.index and other.boundary is self.boundary:
            self.share_words(other)
            self._mask_cache = other._mask_cache

    def rhyme_word(self, bar: Sequence[int]) -> str:
        """The rhyme word of a reversed bar: its first word with a letter or digit."""
        words = self.bar_words(bar)
        return words[0] if words else ""

    def allowed(self, trie: RhymeTrie, current: Sequence[int]) -> torch.Tensor | None:
        """Allowed next tokens for a bar that starts with ``current``, None if unconstrained."""
        node = trie.walk(current)
        if node is None:
            return self._after_closing(trie, current)
        mask = self._mask_cache.get(id(node))
        if mask is None:
            mask = torch.zeros(self.boundary.shape[0], dtype=torch.bool)
            children = [t for t in node.children if t < mask.shape[0]]
            if children:
                mask[children] = True
            if node.terminal and current:
                mask |= self.boundary
            self._mask_cache[id(node)] = mask
        return mask

    def _after_closing(self, trie: RhymeTrie, current: Sequence[int]) -> torch.Tensor | None:
        """A rhyme word closed by punctuation ("night,") takes only more closing punctuation,
        a new word or the bar's end: nothing glues on to it. None past that point."""
        end = len(current)
        while end > 0 and current[end - 1] in self.closers:
            end -= 1
        if end in (0, len(current)):
            return None
        node = trie.walk(current[:end])
        return self.boundary if node is not None and node.terminal else None

    def row_mask(self, row: ParsedRow, partner_bar: list[int]) -> torch.Tensor | None:
        target = self.rhyme_word(partner_bar)
        if not target:
            return None
        trie = self.index.trie(target)
        if not trie:
            return None
        mask = self.allowed(trie, row.current)
        return mask if mask is not None and mask.any() else None


def word_start_ids(tokenizer: Any, vocab_size: int) -> frozenset[int]:
    """Tokens that begin a new word: a leading space followed by a letter or digit."""
    out = set()
    for idx, text in token_texts(tokenizer, vocab_size):
        if text[:1].isspace() and text[1:2].isalnum():
            out.add(idx)
    return frozenset(out)


def last_vowel_masks(tokenizer: Any, vocab_size: int) -> dict[str, torch.Tensor]:
    """Whole-word tokens (" word", a dictionary word) grouped by their last vowel phoneme.

    Only dictionary words: a leading-space piece of a longer word (" sa" + "id") has no
    last vowel of its own yet.
    """
    groups: dict[str, list[int]] = {}
    for idx, text in token_texts(tokenizer, vocab_size):
        if not text[:1].isspace():
            continue
        word = normalize_word(text)
        if not word or not in_dictionary(word):
            continue
        vowels = vowel_phonemes(word)
        if vowels:
            groups.setdefault(vowels[-1], []).append(idx)
    out = {}
    for vowel, ids in groups.items():
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        mask[ids] = True
        out[vowel] = mask
    return out


class MultiRhymeProcessor(_PartnerBarProcessor):
    """Carry a bar's end rhyme back over the words before its rhyme word (reverse model).

    Rappers rhyme several syllables, not one: "let it go" / "said it so". In a reversed bar
    the words after the rhyme word are the words before it in the verse, so for the
    ``words`` words that follow the rhyme word, whole-word tokens whose last vowel matches
    the last vowel of the partner bar's word in the same place get ``bias`` added. A
    preference, not a rule: where no such word fits, the model writes what it would anyway.
    Rows whose ``schemes[i]`` is None, and bars without a written partner, are left alone.
    """

    can_empty_rows = False  # it only adds a finite bonus: apply_processors skips its check

    def __init__(
        self,
        tokenizer: Any,
        vowel_masks: dict[str, torch.Tensor],
        word_starts: frozenset[int],
        schemes: Sequence[str | None],
        bos_id: int,
        line_id: int,
        pad_id: int,
        bias: float = 2.0,
        words: int = 2,
    ) -> None:
        super().__init__(tokenizer, schemes, bos_id, line_id, pad_id)
        if not bias > 0:
            raise ValueError(f"bias must be positive, not {bias}")
        if words < 1:
            raise ValueError(f"words must be at least 1, not {words}")
        self.vowel_masks = vowel_masks
        self.word_starts = word_starts
        self.bias = self.bonus = float(bias)
        self.words = words

    def row_mask(self, row: ParsedRow, partner_bar: list[int]) -> torch.Tensor | None:
        # the next new word is word number `place` of the reversed bar (0: rhyme word)
        place = sum(1 for t in row.current if t in self.word_starts)
        if not 1 <= place <= self.words:
            return None
        partner_words = self.bar_words(partner_bar)
        if len(partner_words) <= place:
            return None
        vowels = vowel_phonemes(partner_words[place])
        return self.vowel_masks.get(vowels[-1]) if vowels else None


def apply_processors(
    processors: Sequence[Processor], input_ids: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    """Run ``processors`` in order; a row one of them leaves with no finite score is restored.

    (A rhyme restriction can meet an n-gram ban that removed every rhyming token: the row
    then keeps its earlier scores rather than sampling from nothing.)
    """
    for proc in processors:
        new = proc(input_ids, scores)
        if new is scores:
            continue  # untouched (processors return their input when they change nothing)
        if not getattr(proc, "can_empty_rows", True):
            scores = new
            continue
        dead = ~torch.isfinite(new).any(dim=-1)
        if dead.any():
            new = torch.where(dead[:, None], scores, new)
        scores = new
    return scores


def sample(
    scores: torch.Tensor,
    temperatures: Sequence[float],
    top_ks: Sequence[int],
    top_ps: Sequence[float],
    generators: Sequence[torch.Generator],
    rows: Sequence[int] | None = None,
    min_ps: Sequence[float] | None = None,
) -> torch.Tensor:
    """One token per row: temperature, then top-k (0 = off), nucleus top-p, then min-p.

    min-p (0 = off) drops the tokens less likely than ``min_p`` times the best one: where the
    model is sure (inside a word) it cuts the long tail of odd pieces that make up non-words,
    where it is not (a new word) it leaves many choices, unlike a fixed top-k.
    Each row draws from its own ``torch.Generator``, so a row's tokens depend only on its seed
    and its own scores. ``rows`` limits sampling to those rows (the rest get -1).
    """
    batch, vocab = scores.shape
    for name, values in (("temperatures", temperatures), ("top_ks", top_ks), ("top_ps", top_ps)):
        if len(values) != batch:
            raise ValueError(f"{name}: {len(values)} values for a batch of {batch}")
    if len(generators) != batch:
        raise ValueError(f"generators: {len(generators)} for a batch of {batch}")
    if min_ps is not None and len(min_ps) != batch:
        raise ValueError(f"min_ps: {len(min_ps)} values for a batch of {batch}")
    if torch.isnan(scores).any():
        # a broken model (NaN weights): sampling would quietly return arbitrary tokens
        raise ValueError("the model's scores contain NaN: it cannot be sampled from")
    temps = torch.tensor([float(t) for t in temperatures], dtype=torch.float32)
    logits = scores.float() / temps[:, None]
    mins = [0.0] * batch if min_ps is None else [float(m) for m in min_ps]
    out = torch.full((batch,), -1, dtype=torch.long)
    picked = range(batch) if rows is None else rows
    with_k = [i for i in picked if 0 < top_ks[i] < vocab]
    without_k = [i for i in picked if not 0 < top_ks[i] < vocab]
    if with_k:
        out[with_k] = _sample_top_k(
            logits[with_k],
            [top_ks[i] for i in with_k],
            [float(top_ps[i]) for i in with_k],
            [mins[i] for i in with_k],
            [generators[i] for i in with_k],
        )
    if without_k:
        probs = torch.softmax(logits[without_k], dim=-1)
        cdf = probs.cumsum(dim=-1)
        for j, i in enumerate(without_k):
            out[i] = _draw_from_nucleus(probs[j], cdf[j], float(top_ps[i]), mins[i], generators[i])
    return out


def _sample_top_k(
    logits: torch.Tensor,
    ks: Sequence[int],
    ps: Sequence[float],
    mins: Sequence[float],
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Top-k rows: only the best max(k) tokens can survive, so a partial sort is enough."""
    sorted_logits, order = logits.topk(max(ks), dim=-1)
    ranks = torch.arange(sorted_logits.shape[-1])[None, :]
    drop = ranks >= torch.tensor(list(ks))[:, None]
    probs = torch.softmax(sorted_logits.masked_fill(drop, NEG_INF), dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the better tokens
    drop |= before > torch.tensor(list(ps))[:, None]
    drop |= probs < probs[:, :1] * torch.tensor(list(mins))[:, None]
    drop[:, 0] = False  # always keep the best token
    cdf = torch.softmax(sorted_logits.masked_fill(drop, NEG_INF), dim=-1).cumsum(dim=-1)
    draws = torch.cat([torch.rand(1, generator=g) for g in generators])[:, None]
    index = torch.searchsorted(cdf, draws * cdf[:, -1:]).clamp_(max=cdf.shape[-1] - 1)
    return order.gather(1, index).squeeze(1)


# Draws before a row without top-k gives up on its nucleus and takes its best token: with
# top-p 0.95 a draw misses 5 % of the time, so this is never reached in practice.
MAX_DRAWS = 64


def _draw_from_nucleus(
    probs: torch.Tensor, cdf: torch.Tensor, top_p: float, min_p: float, gen: torch.Generator
) -> int:
    """One token from the nucleus of ``probs`` (a whole-vocabulary row), without sorting it.

    Drawing from the whole distribution and redrawing when the token falls outside the
    nucleus samples the renormalised nucleus exactly; a token is inside when the tokens more
    likely than it hold at most ``top_p`` of the mass (and, with min-p, when it is at least
    ``min_p`` times the best one). A full sort of a flat 8,000-token row cost more than the
    model's forward pass; this costs a few vector sums.
    """
    best = float(probs.max())
    total = cdf[-1:]
    for _ in range(MAX_DRAWS):
        draw = torch.rand(1, generator=gen)
        token = int(torch.searchsorted(cdf, draw * total).clamp_(max=probs.shape[0] - 1))
        p = float(probs[token])
        if p <= 0.0 or p < min_p * best:
            continue
        if p >= best or float(probs[probs > p].sum()) <= top_p:
            return token
    return int(probs.argmax())

"""Two-stage RGPT-2 generation: a forward model writes bar 1, a reverse model the rest.

Stage 1 samples bar 1 for every request of a batch at once (continuing ``<BOS> topic``).
Stage 2 prompts the reverse model with ``<BOS> reversed(bar 1) <LINE>``; it writes each bar
from its last word backwards, which is where the rhyme scheme is enforced
(:class:`~rgpt2.logits.RhymeLogitsProcessor`). Both stages run one batched sampling loop
with a KV cache, left padding and attention masks; each row stops after its own number of
bars, and a bar that would be a verse's third copy is rolled back and sampled again.

Every row draws from its own ``torch.Generator`` seeded with the request's seed, so a seeded
request is reproducible.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rgpt2 import logits as lp
from rgpt2.metrics import bar_key, rhyme_density, scheme_end_rhyme
from rgpt2.rhyme import RhymeIndex
from rgpt2.tokens import BOS, EOV, FORWARD, LINE, PAD, REVERSE, reverse_bar, verse_to_text
from rgpt2.verse import MULTI_RHYME_BIAS, MULTI_RHYME_WORDS, RapRequest, Verse

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class LoadedModel:
    """A model with its tokenizer and what the generator precomputes for it."""

    model: Any  # GPT2LMHeadModel (or any causal LM taking position_ids and a KV cache)
    tokenizer: Any
    version: str
    path: str | None = None
    direction: str = FORWARD
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        tok = self.tokenizer
        self.bos_id = tok.convert_tokens_to_ids(BOS)
        self.line_id = tok.convert_tokens_to_ids(LINE)
        self.eov_id = tok.convert_tokens_to_ids(EOV)
        self.pad_id = tok.convert_tokens_to_ids(PAD)
        unk = tok.unk_token_id
        for name, idx in (("<BOS>", self.bos_id), ("<LINE>", self.line_id), ("<PAD>", self.pad_id)):
            if idx is None or (unk is not None and idx == unk):
                raise ValueError(f"the {self.direction} tokenizer has no {name} token")
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self.n_ctx = int(getattr(self.model.config, "n_positions", 1024))

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "cpu") -> LoadedModel:
        from rgpt2.modeldir import load_model_dir

        model, tokenizer, meta = load_model_dir(path, device=device)
        return cls(model, tokenizer, meta.version, str(path), meta.direction)

    def masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(boundary mask, wordy mask) over the model's vocabulary, computed once."""
        if "masks" not in self._cache:
            self._cache["masks"] = (
                lp.boundary_mask(self.tokenizer, self.vocab_size, self.line_id),
                lp.wordy_mask(self.tokenizer, self.vocab_size),
            )
        return self._cache["masks"]

    def closers(self) -> frozenset[int]:
        """Tokens of closing punctuation, computed once."""
        if "closers" not in self._cache:
            self._cache["closers"] = lp.closing_ids(self.tokenizer, self.vocab_size)
        return self._cache["closers"]

    def vowel_masks(self) -> dict[str, torch.Tensor]:
        """Whole-word tokens by last vowel phoneme (for multi-syllable rhymes), computed once."""
        if "vowels" not in self._cache:
            self._cache["vowels"] = lp.last_vowel_masks(self.tokenizer, self.vocab_size)
        return self._cache["vowels"]

    def word_starts(self) -> frozenset[int]:
        """Tokens that begin a word, computed once."""
        if "word_starts" not in self._cache:
            self._cache["word_starts"] = lp.word_start_ids(self.tokenizer, self.vocab_size)
        return self._cache["word_starts"]

    def rhyme_index(self, max_word_tokens: int = 4) -> RhymeIndex:
        key = f"rhyme-{max_word_tokens}"
        if key not in self._cache:
            self._cache[key] = RhymeIndex(self.tokenizer, max_word_tokens=max_word_tokens)
        return self._cache[key]

    def banned(self) -> list[int]:
        ids = [self.bos_id, self.pad_id]
        if self.eov_id is not None and self.eov_id != self.tokenizer.unk_token_id:
            ids.append(self.eov_id)  # the generator ends verses itself, after N bars
        # embedding rows beyond the tokenizer (vocab padded for speed) are never text
        ids += list(range(len(self.tokenizer), self.vocab_size))
        return sorted(set(ids))


@dataclass
class _Row:
    """One verse being written in a stage."""

    seq: list[int]  # the whole verse so far in model tokens, from <BOS>
    target_lines: int  # the stage ends for this row at this many <LINE> tokens
    request: RapRequest
    generator: torch.Generator
    lines: int = 0
    bar_start: int = 0
    attempts: int = 0  # resamples of the current bar
    resampled: int = 0  # bars resampled over the stage (stats)
    done: bool = False


@dataclass
class GenerationStats:
    """What the last :meth:`Generator.generate` call did (for benchmarks and logs)."""

    rows: int = 0
    seconds: float = 0.0
    steps: int = 0
    prefills: int = 0
    resampled_bars: int = 0
    rhyme_constrained_steps: int = 0
    model_seconds: float = 0.0  # in the model's forward passes (the rest: processors, sampling)


def _rhymed(request: RapRequest) -> bool:
    """Whether the rhyme processors act on a request's verse."""
    return request.rhyme_control and request.scheme != "free"


class Generator:
    """The two-stage generator (see the module docstring).

    ``rhyme_mode`` "restrict" holds each constrained first word to the rhyming words;
    "bias" adds ``rhyme_bias`` to their logits instead. ``max_resamples``: free resamples of
    a bar that would occur a third time before its ``<LINE>`` is banned where it would
    complete that bar. ``rhyme_word_tokens``: rhyming words spelled in more tokens are left
    out of the tries (long spellings are mostly rare words). ``multi_rhyme_bias`` and
    ``multi_rhyme_words``: the pull toward multi-syllable rhymes
    (:class:`~rgpt2.logits.MultiRhymeProcessor`; a bias of 0 turns it off). ``dtype`` "bf16" casts both models to bfloat16 (in place): about
    1.7x faster per step on a CPU with AMX/AVX-512 bf16, at bf16 precision of the logits.
    """

    def __init__(
        self,
        forward: LoadedModel,
        reverse: LoadedModel,
        scorer: Any = None,
        device: str = "cpu",
        *,
        rhyme_mode: str = "restrict",
        rhyme_bias: float = 5.0,
        max_bar_tokens: int = 32,
        max_resamples: int = 2,
        dtype: str = "fp32",
        rhyme_word_tokens: int = 4,
        multi_rhyme_bias: float = MULTI_RHYME_BIAS,
        multi_rhyme_words: int = MULTI_RHYME_WORDS,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
        if rhyme_mode not in lp.RHYME_MODES:
            raise ValueError(f"rhyme_mode must be one of {lp.RHYME_MODES}, not {rhyme_mode!r}")
        if max_bar_tokens < 2:
            raise ValueError(f"max_bar_tokens must be at least 2, not {max_bar_tokens}")
        if rhyme_word_tokens < 1:
            raise ValueError(f"rhyme_word_tokens must be at least 1, not {rhyme_word_tokens}")
        if max_resamples < 0:
            raise ValueError(f"max_resamples must be >= 0, not {max_resamples}")
        if multi_rhyme_bias < 0 or multi_rhyme_words < 0:
            raise ValueError("multi_rhyme_bias and multi_rhyme_words must be >= 0")
        for lm in (forward, reverse):
            if lm.n_ctx < 2 * max_bar_tokens + 8:
                raise ValueError(
                    f"the {lm.direction} model's context ({lm.n_ctx}) is too short for bars of "
                    f"up to {max_bar_tokens} tokens"
                )
        self.forward = forward
        self.reverse = reverse
        self.scorer = scorer
        self.device = device
        self.rhyme_mode = rhyme_mode
        self.rhyme_bias = rhyme_bias
        self.max_bar_tokens = max_bar_tokens
        self.max_resamples = max_resamples
        self.dtype = dtype
        self.rhyme_word_tokens = rhyme_word_tokens
        self.multi_rhyme_bias = multi_rhyme_bias
        self.multi_rhyme_words = multi_rhyme_words
        for lm in (forward, reverse):
            if next(lm.model.parameters()).dtype != DTYPES[dtype]:
                lm.model.to(DTYPES[dtype])
        self.last_stats = GenerationStats()

    @classmethod
    def load(
        cls,
        forward_dir: str | Path,
        reverse_dir: str | Path,
        device: str = "cpu",
        scorer: Any = None,
        **options: Any,
    ) -> Generator:
        """Load both model directories (ModelLoadError with a clear message if one is bad)."""
        from rgpt2.errors import ModelLoadError

        forward = LoadedModel.from_dir(forward_dir, device)
        reverse = LoadedModel.from_dir(reverse_dir, device)
        for lm, want in ((forward, FORWARD), (reverse, REVERSE)):
            if lm.direction != want:
                raise ModelLoadError(
                    f"{lm.path} holds a {lm.direction} model where a {want} model is needed"
                )
        return cls(forward, reverse, scorer, device, **options)

    def with_model(self, direction: str, path: str | Path) -> Generator:
        """A new generator with ``direction``'s model loaded from ``path``; the other is shared."""
        from rgpt2.errors import ModelLoadError

        if direction not in (FORWARD, REVERSE):
            raise ValueError(f"direction must be {FORWARD!r} or {REVERSE!r}, not {direction!r}")
        new = LoadedModel.from_dir(path, self.device)
        if new.direction != direction:
            raise ModelLoadError(f"{path} holds a {new.direction} model, not a {direction} one")
        forward, reverse = (new, self.reverse) if direction == FORWARD else (self.forward, new)
        return Generator(
            forward,
            reverse,
            self.scorer,
            self.device,
            rhyme_mode=self.rhyme_mode,
            rhyme_bias=self.rhyme_bias,
            max_bar_tokens=self.max_bar_tokens,
            max_resamples=self.max_resamples,
            dtype=self.dtype,
            rhyme_word_tokens=self.rhyme_word_tokens,
            multi_rhyme_bias=self.multi_rhyme_bias,
            multi_rhyme_words=self.multi_rhyme_words,
        )

    @property
    def model_versions(self) -> dict[str, str]:
        return {FORWARD: self.forward.version, REVERSE: self.reverse.version}

    # --- generation -------------------------------------------------------------------

    def generate(self, requests: Sequence[RapRequest]) -> list[Verse]:
        """One verse per (validated) request, all written as one batch."""
        if not requests:
            return []
        start = time.perf_counter()
        self.last_stats = stats = GenerationStats(rows=len(requests))
        seeds = [r.seed if r.seed is not None else secrets.randbelow(2**63) for r in requests]
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

        with torch.inference_mode():
            fwd = self.forward
            rows = []
            for req, gen in zip(requests, gens, strict=True):
                prompt = BOS + (f" {req.topic}" if req.topic else "")
                seq = fwd.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                rows.append(_Row(seq=seq, target_lines=1, request=req, generator=gen))
            self._run(fwd, rows, rhyme=False, stats=stats)
            first_bars = [self._bars(fwd, row.seq)[0] for row in rows]

            rev = self.reverse
            rows2 = []
            for req, gen, bar in zip(requests, gens, first_bars, strict=True):
                prompt = verse_to_text([bar], REVERSE, complete=False)
                seq = rev.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                rows2.append(_Row(seq=seq, target_lines=req.bars, request=req, generator=gen))
            self._run(rev, rows2, rhyme=True, stats=stats)
            verses_bars = [[reverse_bar(b) for b in self._bars(rev, row.seq)] for row in rows2]

        scores: list[float | None] = [None] * len(requests)
        if self.scorer is not None:
            scores = list(self.scorer.score(["\n".join(b) for b in verses_bars]))
        stats.seconds = time.perf_counter() - start
        out = []
        for req, seed, bars, score in zip(requests, seeds, verses_bars, scores, strict=True):
            sampling = req.sampling() | {
                "seed": seed,
                "rhyme_mode": self.rhyme_mode,
                "multi_rhyme_bias": self.multi_rhyme_bias if _rhymed(req) else 0.0,
            }
            out.append(
                Verse(
                    bars=bars,
                    topic=req.topic,
                    scheme=req.scheme,
                    seed=seed,
                    rhyme_density=rhyme_density(bars),
                    end_rhyme=scheme_end_rhyme(bars, req.scheme),
                    rap_score=None if score is None else float(score),
                    model_versions=self.model_versions,
                    sampling=sampling,
                )
            )
        return out

    @staticmethod
    def _bars(lm: LoadedModel, seq: Sequence[int]) -> list[str]:
        """The bars of a row as text in the model's orientation."""
        bars, _ = lp.split_bars(seq, lm.bos_id, lm.line_id)
        return [" ".join(lm.tokenizer.decode(b).split()) for b in bars]

    def _processors(
        self,
        lm: LoadedModel,
        rows: Sequence[_Row],
        active: list[bool],
        rhyme: bool,
        like: lp.RhymeLogitsProcessor | None = None,
    ) -> tuple[list[lp.Processor], lp.RhymeLogitsProcessor | None]:
        """The step's processors for ``rows``; ``like``: a rhyme processor whose caches to reuse."""
        boundary, wordy = lm.masks()
        reqs = [r.request for r in rows]
        procs: list[lp.Processor] = [
            lp.BanTokensProcessor(lm.banned(), lm.vocab_size),
            lp.RepetitionPenaltyProcessor(
                [q.repetition_penalty for q in reqs],
                lm.bos_id,
                lm.pad_id,
                exempt=[lm.line_id, lm.bos_id, lm.pad_id],
            ),
            lp.NoRepeatNGramProcessor(
                [q.no_repeat_ngram_size for q in reqs], lm.bos_id, lm.pad_id, lm.line_id
            ),
            lp.DuplicateBarProcessor(lm.tokenizer, lm.bos_id, lm.line_id, lm.pad_id, active),
            lp.BarLengthProcessor(lm.bos_id, lm.line_id, lm.pad_id, wordy, self.max_bar_tokens),
        ]
        rhyme_proc = None
        if rhyme:
            schemes = [q.scheme if _rhymed(q) else None for q in reqs]
            if any(schemes):
                rhyme_proc = lp.RhymeLogitsProcessor(
                    lm.rhyme_index(self.rhyme_word_tokens),
                    schemes,
                    lm.bos_id,
                    lm.line_id,
                    lm.pad_id,
                    boundary,
                    mode=self.rhyme_mode,
                    bias=self.rhyme_bias,
                    closers=lm.closers(),
                )
                if like is not None:
                    rhyme_proc.share_caches(like)
                procs.append(rhyme_proc)
                if self.multi_rhyme_bias > 0 and self.multi_rhyme_words > 0:
                    multi = lp.MultiRhymeProcessor(
                        lm.tokenizer,
                        lm.vowel_masks(),
                        lm.word_starts(),
                        schemes,
                        lm.bos_id,
                        lm.line_id,
                        lm.pad_id,
                        bias=self.multi_rhyme_bias,
                        words=self.multi_rhyme_words,
                    )
                    multi.share_words(rhyme_proc)  # both read the partner bars: decode once
                    procs.append(multi)
        return procs, rhyme_proc

    def _window(self, lm: LoadedModel, seq: list[int]) -> list[int]:
        """What the model sees of a row: all of it, or <BOS> + the latest whole bars that fit."""
        limit = lm.n_ctx - max(self.max_bar_tokens, lm.n_ctx // 4)
        if len(seq) <= limit:
            return seq
        for i, t in enumerate(seq):
            if t == lm.line_id and 1 + len(seq) - (i + 1) <= limit:
                return [lm.bos_id, *seq[i + 1 :]]
        return [lm.bos_id, *seq[-(limit - 1) :]]

    def _prefill(
        self, lm: LoadedModel, rows: Sequence[_Row]
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """Run every row's visible tokens (left-padded); (last logits, cache, mask, next pos)."""
        visible = [self._window(lm, r.seq) for r in rows]
        width = max(len(v) for v in visible)
        ids = torch.full((len(rows), width), lm.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, v in enumerate(visible):
            ids[i, width - len(v) :] = torch.tensor(v, dtype=torch.long)
            mask[i, width - len(v) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        out = lm.model(
            input_ids=ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=pos.to(dev),
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :].float().cpu(), out.past_key_values, mask, mask.sum(-1)

    def _input_ids(self, lm: LoadedModel, rows: Sequence[_Row]) -> torch.Tensor:
        """Every row's whole verse so far, left-padded: what the processors read."""
        width = max(len(r.seq) for r in rows)
        ids = torch.full((len(rows), width), lm.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r.seq) :] = torch.tensor(r.seq, dtype=torch.long)
        return ids

    def _run(
        self, lm: LoadedModel, rows: list[_Row], *, rhyme: bool, stats: GenerationStats
    ) -> None:
        """Sample until every row has its ``target_lines`` bars (a row stops on its own).

        A row that is done leaves the batch at once: its logits, cache rows, mask and
        position go, and the processors are rebuilt for the rows left, so a batch costs what
        its live rows cost rather than its first width until the slowest verse ends.
        """
        for r in rows:
            _, current = lp.split_bars(r.seq, lm.bos_id, lm.line_id)
            r.lines = r.seq.count(lm.line_id)
            r.bar_start = len(r.seq) - len(current)
            r.done = r.lines >= r.target_lines
        # a bound no correct run reaches: each bar takes at most max_bar_tokens steps
        max_steps = sum(
            (r.target_lines - r.lines) * self.max_bar_tokens * (self.max_resamples + 2)
            for r in rows
        )
        batch = [r for r in rows if not r.done]
        active = [False] * len(batch)
        procs, rhyme_proc = self._processors(lm, batch, active, rhyme)
        dev = self.device
        logits = cache = mask = next_pos = None
        rebuild = True
        steps = 0
        while batch:
            if steps > max_steps:
                raise RuntimeError("generation did not finish: a bar never ended")
            if rebuild or int(next_pos.max()) >= lm.n_ctx:
                t0 = time.perf_counter()
                logits, cache, mask, next_pos = self._prefill(lm, batch)
                stats.model_seconds += time.perf_counter() - t0
                stats.prefills += 1
                rebuild = False
            for i, r in enumerate(batch):
                active[i] = r.attempts >= self.max_resamples
            scores = lp.apply_processors(procs, self._input_ids(lm, batch), logits)
            picks = lp.sample(
                scores,
                [r.request.temperature for r in batch],
                [r.request.top_k for r in batch],
                [r.request.top_p for r in batch],
                [r.generator for r in batch],
                min_ps=[r.request.min_p for r in batch],
            )
            steps += 1
            feed = torch.full((len(batch), 1), lm.pad_id, dtype=torch.long)
            for i, r in enumerate(batch):
                token = int(picks[i])
                if token == lm.line_id and self._third_copy(lm, r):
                    # roll the row back to the start of the bar and sample it again
                    del r.seq[r.bar_start :]
                    r.attempts += 1
                    r.resampled += 1
                    stats.resampled_bars += 1
                    rebuild = True
                    continue
                r.seq.append(token)
                feed[i, 0] = token
                if token == lm.line_id:
                    r.lines += 1
                    r.bar_start = len(r.seq)
                    r.attempts = 0
                    r.done = r.lines >= r.target_lines
            keep = [i for i, r in enumerate(batch) if not r.done]
            if len(keep) < len(batch):
                batch = [batch[i] for i in keep]
                if rhyme_proc is not None:
                    stats.rhyme_constrained_steps += rhyme_proc.applied
                    rhyme_proc = None
                if not batch:
                    break
                active = [False] * len(batch)
                procs, rhyme_proc = self._processors(lm, batch, active, rhyme, like=rhyme_proc)
                if not rebuild:
                    index = torch.tensor(keep, dtype=torch.long)
                    feed, mask, next_pos = feed[index], mask[index], next_pos[index]
                    cache.batch_select_indices(index.to(dev))
                    mask = self._trim_padding(cache, mask)
            if rebuild:
                continue
            mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=torch.long)], dim=-1)
            t0 = time.perf_counter()
            out = lm.model(
                input_ids=feed.to(dev),
                attention_mask=mask.to(dev),
                position_ids=next_pos[:, None].to(dev),
                past_key_values=cache,
                use_cache=True,
            )
            next_pos = next_pos + 1
            logits, cache = out.logits[:, -1, :].float().cpu(), out.past_key_values
            stats.model_seconds += time.perf_counter() - t0
        stats.steps += steps
        if rhyme_proc is not None:
            stats.rhyme_constrained_steps += rhyme_proc.applied

    @staticmethod
    def _trim_padding(cache: Any, mask: torch.Tensor) -> torch.Tensor:
        """Drop the leading cache columns no row attends to any more (left padding of rows gone)."""
        seen = mask.any(dim=0).nonzero()
        first = int(seen[0]) if len(seen) else 0
        layers = getattr(cache, "layers", None)
        if first == 0 or not layers or not all(hasattr(x, "keys") for x in layers):
            return mask
        for layer in layers:
            layer.keys = layer.keys[:, :, first:, :]
            layer.values = layer.values[:, :, first:, :]
        return mask[:, first:]

    def _third_copy(self, lm: LoadedModel, row: _Row) -> bool:
        """Whether ending the current bar now would put a bar in the verse a third time."""
        if self.max_resamples == 0 or row.attempts >= self.max_resamples:
            return False  # from here the DuplicateBarProcessor keeps <LINE> from completing it
        bars, current = lp.split_bars(row.seq, lm.bos_id, lm.line_id)
        key = bar_key(lm.tokenizer.decode(current))
        return Counter(bar_key(lm.tokenizer.decode(b)) for b in bars)[key] >= 2

"""What a caller asks for (:class:`RapRequest`) and what it gets back (:class:`Verse`).

Shared by the CLI, the generation worker, the bot's services and storage. Validation lives
here, so every front-end gives the same clear message for the same bad option (Discord's
client enforces option ranges, but discord.py and the CLI do not).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from rgpt2.errors import InvalidRequest

SCHEMES: tuple[str, ...] = ("AABB", "ABAB", "AAAA", "free")
MIN_BARS, MAX_BARS, DEFAULT_BARS = 4, 32, 8
MAX_TOPIC_CHARS = 100
MAX_TOPIC_WORDS = 12


def clean_topic(topic: str | None) -> str | None:
    """A topic as the forward model will continue it, or None for no topic.

    Control and format characters are removed and whitespace collapsed; a topic with no
    letter or digit left (only emoji, punctuation or control characters) is refused, and so
    is one longer than ``MAX_TOPIC_CHARS`` characters or ``MAX_TOPIC_WORDS`` words.
    """
    if topic is None:
        return None
    kept = "".join(ch for ch in topic if unicodedata.category(ch)[0] != "C")
    kept = " ".join(kept.split())
    if not kept:
        if topic.strip():
            raise InvalidRequest("the topic has no words in it (only control characters)")
        return None
    if len(kept) > MAX_TOPIC_CHARS:
        raise InvalidRequest(
            f"the topic is {len(kept)} characters long; the limit is {MAX_TOPIC_CHARS}"
        )
    if len(kept.split()) > MAX_TOPIC_WORDS:
        raise InvalidRequest(
            f"the topic has {len(kept.split())} words; the limit is {MAX_TOPIC_WORDS}"
        )
    if not any(ch.isalnum() for ch in kept):
        raise InvalidRequest(
            "the topic needs at least one letter or digit (emoji alone cannot start a bar)"
        )
    return kept


# The generator's pull toward multi-syllable rhymes (rgpt2.logits.MultiRhymeProcessor): on the
# starter models (200 verses) it lifts rhyme density from below the human verses' to above.
MULTI_RHYME_BIAS = 3.0
MULTI_RHYME_WORDS = 3


@dataclass(frozen=True)
class RapRequest:
    """One verse to write. Build it with keyword arguments, then call :meth:`validated`."""

    topic: str | None = None
    bars: int = DEFAULT_BARS
    scheme: str = "AABB"
    temperature: float = 0.9
    # No top-k: this small model's variety lives in the tail of its distribution (top-k 50
    # halves distinct-2 against human verses); top-p 0.95 still cuts the last 5 %.
    top_k: int = 0
    top_p: float = 0.95
    min_p: float = 0.0
    repetition_penalty: float = 1.2
    no_repeat_ngram_size: int = 4
    seed: int | None = None
    rhyme_control: bool = True

    def validated(self) -> RapRequest:
        """A copy with a cleaned topic and a canonical scheme; InvalidRequest on bad options."""
        if isinstance(self.bars, bool) or not isinstance(self.bars, int):
            raise InvalidRequest(f"bars must be a whole number, not {self.bars!r}")
        if not MIN_BARS <= self.bars <= MAX_BARS:
            raise InvalidRequest(f"bars must be between {MIN_BARS} and {MAX_BARS}, not {self.bars}")
        scheme = {s.lower(): s for s in SCHEMES}.get(str(self.scheme).strip().lower())
        if scheme is None:
            raise InvalidRequest(
                f"unknown rhyme scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}"
            )
        if not 0.1 <= float(self.temperature) <= 2.0:
            raise InvalidRequest(f"temperature must be between 0.1 and 2.0, not {self.temperature}")
        if not 0 <= int(self.top_k) <= 1000:
            raise InvalidRequest(f"top_k must be between 0 (off) and 1000, not {self.top_k}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise InvalidRequest(f"top_p must be in (0, 1], not {self.top_p}")
        if not 0.0 <= float(self.min_p) < 1.0:
            raise InvalidRequest(f"min_p must be in [0, 1), not {self.min_p}")
        if not 1.0 <= float(self.repetition_penalty) <= 3.0:
            raise InvalidRequest(
                f"repetition_penalty must be between 1.0 and 3.0, not {self.repetition_penalty}"
            )
        if not 0 <= int(self.no_repeat_ngram_size) <= 10:
            raise InvalidRequest(
                f"no_repeat_ngram_size must be between 0 (off) and 10, not {self.no_repeat_ngram_size}"
            )
        if self.seed is not None and not 0 <= int(self.seed) < 2**63:
            raise InvalidRequest(
                f"seed must be a non-negative integer below 2**63, not {self.seed}"
            )
        return dataclasses.replace(
            self, topic=clean_topic(self.topic), scheme=scheme, temperature=float(self.temperature)
        )

    def sampling(self) -> dict[str, Any]:
        """The options that, with the models and the seed, reproduce a verse."""
        return dataclasses.asdict(self)


@dataclass
class Verse:
    """A generated verse with what is known about it."""

    bars: list[str]
    topic: str | None
    scheme: str
    seed: int
    rhyme_density: float
    end_rhyme: float
    rap_score: float | None = None
    model_versions: dict[str, str] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.bars)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["text"] = self.text
        return data

"""Byte-level BPE tokenizers carrying RGPT-2's special tokens.

Either trained from scratch on a corpus (``tokenizers``), or any GPT-2-family tokenizer
(``gpt2`` where a hub is reachable, or a local directory) extended with the special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from rgpt2.tokens import BOS, EOV, LINE, PAD, SPECIAL_TOKENS


def _added(token: str) -> AddedToken:
    # lstrip: the space before a special token is part of it, so words keep one spelling
    return AddedToken(token, lstrip=True, rstrip=False, normalized=False, special=True)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` (already in training-text form)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)}, not {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[_added(t) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    add_special_tokens(fast)
    return fast


def add_special_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Give ``tokenizer`` RGPT-2's special tokens; returns how many were new.

    Callers that add tokens to a pretrained model must resize its embeddings.
    """
    added = tokenizer.add_special_tokens(
        {
            "bos_token": _added(BOS),
            "eos_token": _added(EOV),
            "pad_token": _added(PAD),
            "additional_special_tokens": [_added(LINE)],
        }
    )
    tokenizer.padding_side = "left"  # generation pads prompts on the left
    return added


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Load a tokenizer (a local directory or a hub id) and make sure it has the special tokens."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    add_special_tokens(tokenizer)
    return tokenizer


def special_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Ids of the special tokens, by token string."""
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

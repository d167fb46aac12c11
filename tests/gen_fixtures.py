"""Tiny models for the generation tests: random ones, and *rigged* ones whose next-token
scores are fixed whatever the context (to build a model that prefers a given word)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from conftest import TINY_VERSES
from transformers import GPT2Config, GPT2LMHeadModel

from rgpt2.generate import Generator, LoadedModel
from rgpt2.tokenizer import train_tokenizer
from rgpt2.tokens import verse_to_text


def tiny_tokenizer():
    texts = [verse_to_text(v, d) for v in TINY_VERSES for d in ("forward", "reverse")]
    return train_tokenizer(texts * 5, vocab_size=400, min_frequency=1)


def random_model(tok, seed: int = 0, n_positions: int = 256) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tok), n_positions=n_positions, n_layer=2, n_embd=64, n_head=2
    )
    return GPT2LMHeadModel(config).eval()


def rigged_model(tok, prefs: Mapping[str, float]) -> GPT2LMHeadModel:
    """A model whose logits are ``prefs[token]`` for those tokens and 0 for the rest, always.

    The final layer norm outputs a constant vector, and the (untied) LM head reads it.
    """
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=256,
        n_layer=1,
        n_embd=16,
        n_head=2,
        tie_word_embeddings=False,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight.zero_()
        for token, logit in prefs.items():
            ids = tok(token, add_special_tokens=False)["input_ids"]
            assert len(ids) == 1, f"{token!r} is not one token: {ids}"
            model.lm_head.weight[ids[0], 0] = logit
    return model


def generator(tok, forward, reverse, **options) -> Generator:
    return Generator(
        LoadedModel(forward, tok, "fwd-test"),
        LoadedModel(reverse, tok, "rev-test", direction="reverse"),
        **options,
    )

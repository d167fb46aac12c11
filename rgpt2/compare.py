"""Is a fine-tuned model better than the one serving? Held-out perplexity, side by side.

Both models are measured on the *same* held-out verses, in the direction they write (a
reverse model reads bars with their words reversed). Perplexity per token is comparable
only between models sharing a tokenizer (a fine-tune keeps its parent's); otherwise the
decision uses perplexity per word. Rhyme figures of a few seeded verses from each model are
reported too, when the forward model is given, but do not decide on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rgpt2.tokens import verse_to_text

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase


def heldout_perplexity(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    verses: Sequence[Sequence[str]],
    direction: str,
    batch_size: int = 8,
) -> dict[str, float]:
    """Perplexity of ``model`` on ``verses`` (per token and per word), in ``direction``."""
    import torch

    if not verses:
        raise ValueError("no held-out verses to measure perplexity on")
    limit = int(model.config.n_positions)
    texts = [verse_to_text(v, direction) for v in verses]
    words = sum(len(" ".join(v).split()) + len(v) + 1 for v in verses)  # bar and verse ends count
    total_nll = 0.0
    total_tokens = 0
    for start in range(0, len(texts), batch_size):
        encoded = [tokenizer(t)["input_ids"][:limit] for t in texts[start : start + batch_size]]
        width = max(len(ids) for ids in encoded)
        pad = tokenizer.pad_token_id
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):  # right-padded: positions start at 0 for everyone
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
        targets = input_ids[:, 1:]
        keep = mask[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none"
        ).view_as(targets)
        total_nll += float(nll[keep].sum())
        total_tokens += int(keep.sum())
    return {
        "ppl": math.exp(total_nll / total_tokens),
        "ppl_per_word": math.exp(total_nll / words),
        "tokens": float(total_tokens),
    }


def rhyme_figures(
    forward_dir: str | Path, reverse_dir: str | Path, count: int = 8, bars: int = 8
) -> dict[str, float]:
    """Mean rhyme density and end-rhyme rate of ``count`` seeded AABB verses."""
    from rgpt2.generate import Generator
    from rgpt2.verse import RapRequest

    generator = Generator.load(forward_dir, reverse_dir)
    requests = [RapRequest(bars=bars, scheme="AABB", seed=i).validated() for i in range(count)]
    verses = generator.generate(requests)
    return {
        "rhyme_density": sum(v.rhyme_density for v in verses) / len(verses),
        "end_rhyme": sum(v.end_rhyme for v in verses) / len(verses),
    }


def compare_models(
    current: str | Path,
    candidate: str | Path,
    verses: Sequence[Sequence[str]],
    direction: str,
    *,
    forward_dir: str | Path | None = None,
    rhyme_verses: int = 0,
    min_gain: float = 0.0,
) -> dict[str, Any]:
    """Measure both models; ``better`` when the candidate's perplexity beats the current's.

    ``min_gain`` is the relative improvement required (0.01 = 1 % lower perplexity).
    """
    from rgpt2.modeldir import load_model_dir

    result: dict[str, Any] = {"direction": direction, "heldout_verses": len(verses)}
    vocabs = []
    for name, path in (("current", current), ("candidate", candidate)):
        model, tokenizer, meta = load_model_dir(path)
        vocabs.append(tokenizer.get_vocab())
        figures: dict[str, Any] = {"path": str(path), "version": meta.version}
        figures |= heldout_perplexity(model, tokenizer, verses, direction)
        del model
        if rhyme_verses and forward_dir is not None and direction == "reverse":
            figures |= rhyme_figures(forward_dir, path, count=rhyme_verses)
        result[name] = figures
    key = "ppl" if vocabs[0] == vocabs[1] else "ppl_per_word"
    result["decided_on"] = key
    result["better"] = result["candidate"][key] < result["current"][key] * (1.0 - min_gain)
    return result

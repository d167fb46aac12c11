"""rgpt2.compare: held-out perplexity matches the model's own loss; the decision rule."""

from __future__ import annotations

import math

import pytest
import torch

from rgpt2.bench import build_tiny_models
from rgpt2.compare import compare_models, heldout_perplexity
from rgpt2.modeldir import load_model_dir, save_model_dir
from rgpt2.tokens import verse_to_text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from conftest import TINY_VERSES

    return build_tiny_models(tmp_path_factory.mktemp("m"), TINY_VERSES)


def test_perplexity_is_the_exponent_of_the_models_own_loss(tiny, tiny_verses):
    model, tokenizer, _ = load_model_dir(tiny[1])
    verse = tiny_verses[0]
    ids = torch.tensor([tokenizer(verse_to_text(verse, "reverse"))["input_ids"]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    alone = heldout_perplexity(model, tokenizer, [verse], "reverse")
    assert alone["ppl"] == pytest.approx(math.exp(loss), rel=1e-4)
    # padding a batch does not change what each verse contributes
    batched = heldout_perplexity(model, tokenizer, tiny_verses, "reverse", batch_size=4)
    one_by_one = heldout_perplexity(model, tokenizer, tiny_verses, "reverse", batch_size=1)
    assert batched["ppl"] == pytest.approx(one_by_one["ppl"], rel=1e-4)
    with pytest.raises(ValueError, match="no held-out verses"):
        heldout_perplexity(model, tokenizer, [], "reverse")


def test_candidate_must_beat_the_current_model(tiny, tiny_verses, tmp_path):
    model, tokenizer, meta = load_model_dir(tiny[1])
    # a few steps on the held-out verses themselves make a clearly better candidate
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = [tokenizer(verse_to_text(v, "reverse"))["input_ids"] for v in tiny_verses]
    model.train()
    for _ in range(5):
        for ids in batch:
            t = torch.tensor([ids])
            model(input_ids=t, labels=t).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    meta.version = "better"
    better = save_model_dir(model, tokenizer, meta, tmp_path / "better", dtype=torch.float32)
    result = compare_models(tiny[1], better, tiny_verses, "reverse")
    assert result["better"] and result["decided_on"] == "ppl"
    assert result["candidate"]["ppl"] < result["current"]["ppl"]
    assert not compare_models(better, tiny[1], tiny_verses, "reverse")["better"]
    assert not compare_models(tiny[1], tiny[1], tiny_verses, "reverse")["better"]  # a tie keeps

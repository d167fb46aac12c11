"""rgpt2 train-scorer / score / eval-scorer end to end on a tiny BERT and made-up data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scorer_fixtures import tiny_base, tiny_data_dir

from rgpt2.cli import main
from rgpt2.progress import read_jsonl
from rgpt2.scorer import META_FILE, RapScorer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scorer_cli")
    paths = {
        "base": tiny_base(root / "base"),
        "data": tiny_data_dir(root / "data"),
        "out": root / "model",
        "progress": root / "progress.jsonl",
    }
    rc = main(
        [
            "train-scorer",
            "--base",
            str(paths["base"]),
            "--out",
            str(paths["out"]),
            "--data",
            str(paths["data"]),
            "--epochs",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--max-length",
            "64",
            "--threads",
            "1",
            "--eval-every",
            "10",
            "--progress-jsonl",
            str(paths["progress"]),
        ]
    )
    assert rc == 0
    return paths


def test_train_scorer_writes_a_loadable_model_with_validation_figures(run, capsys):
    out = run["out"]
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    meta = json.loads((out / META_FILE).read_text())
    verse = meta["validation"]["verse"]
    assert verse["n"] == sum(sum(row) for row in verse["confusion"])
    assert set(meta["data"]["val_rap_artists"]) and meta["data"]["seed"] == 0
    assert meta["max_length"] == 64 and meta["run"]["steps"] > 0
    # made-up rap and pop share few words: a few epochs separate them on held-out artists
    assert verse["roc_auc"] > 0.9
    assert RapScorer.load(out).max_length == 64
    assert not list(out.parent.glob(".model.tmp-*"))


def test_train_scorer_reports_jsonl_progress(run):
    events = read_jsonl(run["progress"])
    kinds = [e["event"] for e in events]
    assert kinds.count("step") >= 10 and "eval" in kinds and kinds[-1] == "done"
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert events[-1]["out_dir"] == str(run["out"])
    assert all(e["loss"] is not None for e in events if e["event"] == "step")


def test_score_text_prints_the_probability(run, capsys):
    assert main(["score", "--model", str(run["out"]), "money street hustle / block chain"]) == 0
    printed = float(capsys.readouterr().out.strip())
    expected = RapScorer.load(run["out"]).score(["money street hustle\nblock chain"])[0]
    assert printed == pytest.approx(expected, abs=1e-4)


def test_score_uses_the_model_from_the_environment(run, capsys, monkeypatch):
    monkeypatch.setenv("RGPT2_SCORER_MODEL", str(run["out"]))
    assert main(["score", "love heart baby"]) == 0
    assert 0.0 <= float(capsys.readouterr().out) <= 1.0


def test_score_jsonl_adds_rap_score_and_keeps_fields(run, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    rows = [
        {"id": 1, "text": "money street hustle\nblock chain flow", "user": "a"},
        {"id": 2, "text": "love heart baby\ndance tonight forever"},
        {"id": 3, "text": ""},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert main(["score", "--model", str(run["out"]), "--jsonl", str(src)]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [{k: v for k, v in g.items() if k != "rap_score"} for g in got] == rows
    assert all(0.0 <= g["rap_score"] <= 1.0 for g in got)
    assert got[0]["rap_score"] > got[1]["rap_score"]
    dest = tmp_path / "out.jsonl"
    assert main(["score", "--model", str(run["out"]), "--jsonl", str(src), "--out", str(dest)]) == 0
    assert [json.loads(line) for line in dest.read_text().splitlines()] == got


def test_score_jsonl_errors_name_the_line(run, tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "ok"}\n{"title": "no text"}\n')
    assert main(["score", "--model", str(run["out"]), "--jsonl", str(src)]) == 2
    assert 'bad.jsonl:2: expected an object with a "text" string' in capsys.readouterr().err
    src.write_text("not json\n")
    assert main(["score", "--model", str(run["out"]), "--jsonl", str(src)]) == 2
    assert "bad.jsonl:1: not JSON" in capsys.readouterr().err


def test_score_needs_one_input_and_a_model(run, tmp_path, capsys):
    assert main(["score", "--model", str(run["out"])]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["score", "--model", str(tmp_path / "missing"), "hello"]) == 2
    assert "no model directory" in capsys.readouterr().err


def test_score_bench_prints_throughput(run, capsys):
    args = ["score", "--model", str(run["out"]), "--bench", "--bench-verses", "4"]
    assert main([*args, "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "batch   1:" in out and "batch   2:" in out and "verses/s" in out


def test_eval_scorer_json_has_both_levels_and_the_baseline(run, capsys):
    args = ["eval-scorer", "--model", str(run["out"]), "--data", str(run["data"])]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("verse", "verse_line_average", "line"):
        m = result["scorer"][key]
        assert m["n"] == sum(sum(row) for row in m["confusion"]) > 0
        assert 0.0 <= m["accuracy"] <= 1.0
    bands = result["scorer"]["verse_by_bars"]
    assert set(bands) <= {"4-7", "8-12", "13-16"} and bands
    # the bands split the verse level: their counts add up to it
    assert sum(m["n"] for m in bands.values()) == result["scorer"]["verse"]["n"]
    assert set(result["tfidf_baseline"]) == {"verse", "line"}
    assert result["split"]["val_rap_artists"]
    # the same split the model was trained with: its own figures come back
    meta = json.loads((run["out"] / META_FILE).read_text())
    assert result["scorer"]["verse"]["n"] == meta["validation"]["verse"]["n"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "verse level (whole verse)" in text and "TF-IDF" in text and "true rap" in text
    assert "bars: n=" in text


def test_train_scorer_rejects_a_folder_without_data(tmp_path, capsys):
    args = ["train-scorer", "--out", str(tmp_path / "m"), "--data", str(tmp_path)]
    assert main(args) == 2
    assert "has no rap_us/ and genre/" in capsys.readouterr().err

import json
import math

import pytest
import torch
from conftest import TINY_VERSES
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from rgpt2.cli import main
from rgpt2.modeldir import load_model_dir, read_meta
from rgpt2.progress import read_jsonl
from rgpt2.tokenizer import special_ids
from rgpt2.tokens import BOS, EOV, LINE, PAD, verse_to_text
from rgpt2.train import (
    CHECKPOINT_STATE,
    TrainConfig,
    TrainingError,
    encode_verses,
    lr_factor,
    pack,
    split_verses,
    train,
)

TINY = dict(
    from_scratch=True,
    layers=2,
    width=64,
    heads=2,
    context=48,
    vocab=300,
    batch_size=2,
    val_fraction=0.2,
    precision="fp32",
    progress_bar=False,
)


@pytest.fixture
def data_dir(tmp_path, tiny_verses):
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.txt").write_text("\n\n".join("\n".join(v) for v in tiny_verses) + "\n")
    return d


@pytest.fixture(scope="module")
def forward_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("fwd")
    (root / "a.txt").write_text("\n\n".join("\n".join(v) for v in TINY_VERSES) + "\n")
    result = train(
        TrainConfig(
            direction="forward",
            data=[str(root / "a.txt")],
            out=str(root / "forward"),
            epochs=4,
            lr=3e-3,
            progress_jsonl=str(root / "p.jsonl"),
            **TINY,
        )
    )
    return root, result


def test_training_lowers_the_loss_and_writes_a_complete_model_dir(forward_model):
    root, result = forward_model
    epochs = [e for e in result.history if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    steps = [e["loss"] for e in result.history if e["event"] == "step" and e["loss"]]
    assert steps[-1] < steps[0] - 0.3
    assert result.stop_reason == "finished" and result.checkpoint_dir is None
    assert math.isclose(result.best_val_ppl, math.exp(result.best_val_loss))

    model, tok, meta = load_model_dir(result.out_dir)
    assert meta.direction == "forward" and meta.corpus_fingerprint.startswith("sha256:")
    assert meta.best_val_ppl == pytest.approx(result.best_val_ppl)
    assert meta.sampling["temperature"] > 0
    weights = load_file(f"{result.out_dir}/model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    # every special token is its own row of the embedding matrix
    ids = special_ids(tok)
    assert len(set(ids.values())) == 4
    assert max(ids.values()) < model.get_input_embeddings().num_embeddings
    summary = json.loads((root / "forward" / "training.json").read_text())
    assert [e["epoch"] for e in summary["epochs"]] == [1, 2, 3, 4]
    assert (root / "forward" / "training_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_progress_jsonl_lines_parse(forward_model):
    root, result = forward_model
    lines = (root / "p.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert {e["event"] for e in events} == {"step", "epoch", "done"}
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, result.steps + 1))
    assert all(e["total_steps"] == result.steps and e["loss"] > 0 for e in steps)
    assert all(e["tokens_per_s"] > 0 for e in steps[1:])
    done = events[-1]
    assert done["event"] == "done" and done["out_dir"] == result.out_dir
    assert done["best_val_ppl"] == pytest.approx(result.best_val_ppl)
    assert done["stop_reason"] == "finished"


def test_packing_never_pads_and_keeps_the_token_order():
    seqs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
    blocks = pack(seqs, 4, seed=None)
    assert blocks.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    shuffled = pack(seqs, 2, seed=3)
    assert shuffled.shape == (5, 2)
    assert sorted(shuffled.flatten().tolist()) == list(range(1, 11))
    assert torch.equal(shuffled, pack(seqs, 2, seed=3))


def test_long_verses_are_chunked_to_the_context(forward_model):
    root, result = forward_model
    _, tok, _ = load_model_dir(result.out_dir)
    long_verse = [f"bar number {i} in the city" for i in range(30)]
    seqs = encode_verses([long_verse], tok, "reverse", context=48, min_bars=4)
    assert len(seqs) > 1
    assert all(len(s) <= 48 for s in seqs)
    bos, eov = tok.convert_tokens_to_ids(BOS), tok.convert_tokens_to_ids(EOV)
    assert all(s[0] == bos and s[-1] == eov for s in seqs)
    decoded = " ".join(tok.decode(s) for s in seqs)
    assert decoded.count(LINE) == 30 and PAD not in decoded
    # reverse direction: the words of each bar are reversed
    assert "city the in 0 number bar" in decoded


def test_verse_split_is_seeded_and_disjoint(tiny_verses):
    verses = tiny_verses * 5
    verses = [[f"{i} {b}" for b in v] for i, v in enumerate(verses)]
    train_a, val_a = split_verses(verses, 0.2, seed=1)
    train_b, val_b = split_verses(verses, 0.2, seed=1)
    _, val_c = split_verses(verses, 0.2, seed=2)
    assert (train_a, val_a) == (train_b, val_b) and val_a != val_c
    assert len(val_a) == 6 and len(train_a) == 24
    assert not {tuple(v) for v in train_a} & {tuple(v) for v in val_a}
    assert split_verses(verses[:2], 0.01, seed=1)[1]  # at least one validation verse


def test_learning_rate_warms_up_then_decays_by_steps_or_time():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.55)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    # halfway through the time budget after few steps: already at the midpoint of the decay
    assert lr_factor(11, 10, 1000, 0.1, time_progress=0.5) == pytest.approx(0.55)


def test_resume_continues_from_the_same_step_with_identical_weights(data_dir, tmp_path):
    common = dict(
        direction="forward",
        data=[str(data_dir)],
        epochs=3,
        patience=None,
        checkpoint_every=1,
        keep_checkpoint=True,
        **TINY,
    )
    straight = train(TrainConfig(out=str(tmp_path / "a"), **common))
    first = train(TrainConfig(out=str(tmp_path / "b"), stop_after=4, **common))
    assert first.stop_reason == "interrupted" and first.steps == 4
    state = torch.load(tmp_path / "b.ckpt" / CHECKPOINT_STATE, weights_only=False)
    assert state["step"] == 4
    again = train(TrainConfig(out=str(tmp_path / "b"), resume=True, progress_jsonl=None, **common))
    assert again.steps == straight.steps > 4
    step_events = [e["step"] for e in again.history if e["event"] == "step" and e["loss"]]
    assert step_events == list(range(1, straight.steps + 1))  # no step twice, none skipped
    # one run name across sessions; the saved weights' version says at which step they are
    first_meta, final_meta = read_meta(tmp_path / "b.ckpt" / "model"), read_meta(tmp_path / "b")
    assert final_meta.version.endswith(f"-s{final_meta.steps}")
    assert final_meta.version.rsplit("-s", 1)[0] == first_meta.version.rsplit("-s", 1)[0]
    a = load_file(tmp_path / "a.ckpt" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b.ckpt" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_time_budget_stops_cleanly_and_keeps_a_resumable_checkpoint(data_dir, tmp_path):
    result = train(
        TrainConfig(
            direction="forward",
            data=[str(data_dir)],
            out=str(tmp_path / "m"),
            epochs=50,
            max_minutes=0,
            **TINY,
        )
    )
    assert result.stop_reason == "time_budget" and result.steps == 1
    assert result.checkpoint_dir and (tmp_path / "m.ckpt" / CHECKPOINT_STATE).is_file()
    assert read_meta(tmp_path / "m").steps == 1


def test_early_stopping_after_patience_evaluations(data_dir, tmp_path):
    result = train(
        TrainConfig(
            direction="forward",
            data=[str(data_dir)],
            out=str(tmp_path / "m"),
            epochs=10,
            lr=0.0,  # nothing is learnt, so validation never improves after the first epoch
            patience=2,
            **TINY,
        )
    )
    assert result.stop_reason == "early_stopping"
    assert result.epochs_done == 3
    assert read_meta(tmp_path / "m").steps == result.history[0]["total_steps"] // 10


def test_base_model_gets_the_special_tokens_and_bigger_embeddings(data_dir, tmp_path):
    # a stand-in for `gpt2`: a tokenizer without RGPT-2's tokens and a model sized to it
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        [(data_dir / "a.txt").read_text()] * 3,
        trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    base_tok = PreTrainedTokenizerFast(tokenizer_object=raw)
    n_base = len(base_tok)
    base = tmp_path / "base"
    base_tok.save_pretrained(base)
    GPT2LMHeadModel(
        GPT2Config(vocab_size=n_base, n_layer=2, n_embd=64, n_head=2, n_positions=64)
    ).save_pretrained(base)

    tiny = {k: v for k, v in TINY.items() if k not in ("from_scratch", "vocab", "context")}
    result = train(
        TrainConfig(
            direction="reverse",
            data=[str(data_dir)],
            out=str(tmp_path / "m"),
            base=str(base),
            epochs=1,
            **{k: v for k, v in tiny.items() if k not in ("layers", "width", "heads")},
        )
    )
    model, tok, meta = load_model_dir(result.out_dir)
    assert meta.direction == "reverse"
    assert len(tok) == n_base + 4
    assert model.get_input_embeddings().num_embeddings >= n_base + 4
    assert model.config.n_positions == 64
    text = verse_to_text(["money in the bank"], "reverse")
    ids = tok(text)["input_ids"]
    assert ids[0] == special_ids(tok)[BOS] and len(tok.tokenize(LINE)) == 1


def test_cli_reverse_from_forward_with_replay(forward_model, tmp_path, capsys):
    root, fwd = forward_model
    new = tmp_path / "new.txt"
    new.write_text(
        "brand new verse from a member\nwith a rhyme that is better\n"
        "written down in a letter\nno one ever said it fetter\n"
    )
    progress = tmp_path / "ft.jsonl"
    code = main(
        [
            "train",
            "--direction",
            "reverse",
            "--init-from",
            fwd.out_dir,
            "--data",
            str(new),
            "--replay",
            str(root / "a.txt"),
            "--replay-fraction",
            "0.5",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "ft"),
            "--progress-jsonl",
            str(progress),
            "--no-progress-bar",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stop_reason"] == "finished"
    _, fwd_tok, fwd_meta = load_model_dir(fwd.out_dir)
    model, tok, meta = load_model_dir(tmp_path / "ft")
    assert meta.direction == "reverse" and meta.corpus_fingerprint != fwd_meta.corpus_fingerprint
    assert tok.get_vocab() == fwd_tok.get_vocab()  # one tokenizer serves both directions
    summary = json.loads((tmp_path / "ft" / "training.json").read_text())
    assert summary["verses"] == 1 and summary["replay_verses"] == 1
    events = read_jsonl(progress)
    assert events[-1]["event"] == "done" and events[-1]["out_dir"] == str(tmp_path / "ft")


def test_bad_options_and_data_fail_clearly(data_dir, tmp_path, capsys):
    with pytest.raises(TrainingError, match="exactly one of"):
        train(TrainConfig(direction="forward", data=[str(data_dir)], out="x", base="gpt2", **TINY))
    with pytest.raises(TrainingError, match="forward or reverse"):
        train(TrainConfig(direction="up", data=[str(data_dir)], out="x", **TINY))
    code = main(
        ["train", "--direction", "forward", "--data", str(tmp_path / "missing"),
         "--out", str(tmp_path / "m"), "--from-scratch", "--progress-jsonl",
         str(tmp_path / "p.jsonl")]
    )  # fmt: skip
    assert code == 2
    assert "no such file or folder" in capsys.readouterr().err
    # a parent process following the progress file learns about the failure too
    (error,) = read_jsonl(tmp_path / "p.jsonl")
    assert error["event"] == "error" and "no such file or folder" in error["message"]
    empty = tmp_path / "empty.txt"
    empty.write_text("one\ntwo\n")
    with pytest.raises(TrainingError, match="no verses of 4\\+ bars"):
        train(TrainConfig(direction="forward", data=[str(empty)], out="x", **TINY))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TrainingError, match="not a model directory; refusing"):
        train(TrainConfig(direction="forward", data=[str(data_dir)], out=str(precious), **TINY))
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        train(
            TrainConfig(
                direction="forward", data=[str(data_dir)], out="x", resume="/nowhere", **TINY
            )
        )


def test_ctrl_c_leaves_a_checkpoint_and_an_error_event(data_dir, tmp_path, monkeypatch):
    from rgpt2.train import Trainer

    real_step = Trainer.train_step

    def step_then_interrupt(self, group):
        if self.step == 3:
            raise KeyboardInterrupt
        return real_step(self, group)

    monkeypatch.setattr(Trainer, "train_step", step_then_interrupt)
    progress = tmp_path / "p.jsonl"
    cfg = TrainConfig(
        direction="forward",
        data=[str(data_dir)],
        out=str(tmp_path / "m"),
        epochs=5,
        checkpoint_every=100,
        progress_jsonl=str(progress),
        **TINY,
    )
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    state = torch.load(tmp_path / "m.ckpt" / CHECKPOINT_STATE, weights_only=False)
    assert state["step"] == 3
    last = read_jsonl(progress)[-1]
    assert (last["event"], last["message"], last["step"]) == ("error", "interrupted", 3)


def test_gradient_accumulation_matches_a_bigger_batch(data_dir, tmp_path):
    def one_step(name, batch_size, grad_accum):
        cfg = TrainConfig(
            direction="forward",
            data=[str(data_dir)],
            out=str(tmp_path / name),
            max_steps=1,
            dtype="fp32",
            **{**TINY, "batch_size": batch_size},
            grad_accum=grad_accum,
        )
        result = train(cfg)
        (loss,) = [e["loss"] for e in result.history if e["event"] == "step" and e["loss"]]
        return load_file(tmp_path / name / "model.safetensors"), loss

    big, big_loss = one_step("big", 2, 1)
    accumulated, acc_loss = one_step("acc", 1, 2)
    assert big_loss == pytest.approx(acc_loss, rel=1e-5)  # both micro-batches counted
    for name in big:
        assert torch.allclose(big[name], accumulated[name], atol=1e-6), name

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

from rgpt2.errors import ModelLoadError
from rgpt2.modeldir import ModelMeta, load_model_dir, read_meta, save_model_dir
from rgpt2.tokenizer import special_ids, train_tokenizer
from rgpt2.tokens import verse_to_text


@pytest.fixture
def tiny(tiny_verses):
    texts = [verse_to_text(v, d) for v in tiny_verses for d in ("forward", "reverse")]
    tok = train_tokenizer(texts * 3, vocab_size=400, min_frequency=1)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=64, n_head=2, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    meta = ModelMeta("reverse", "0.1.0", "sha256:abc", 12, 42.5, {"temperature": 0.9})
    return model, tok, meta


def test_round_trip_fp16_keeps_weights_tokenizer_and_meta(tiny, tmp_path):
    model, tok, meta = tiny
    out = save_model_dir(model, tok, meta, tmp_path / "m")
    weights = load_file(out / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    assert "lm_head.weight" not in weights  # tied to the embeddings, stored once
    assert json.loads((out / "config.json").read_text())["pad_token_id"] == tok.pad_token_id
    assert model.config.pad_token_id is None  # the caller's model is left alone

    loaded, tok2, meta2 = load_model_dir(out)
    assert not loaded.training and loaded.dtype == torch.float32
    assert meta2 == meta
    assert special_ids(tok2) == special_ids(tok)
    ids = torch.tensor([tok(verse_to_text(["money in the bank"]))["input_ids"]])
    with torch.no_grad():
        diff = (model(ids).logits - loaded(ids).logits).abs().max().item()
    assert 0 < diff < 1e-2  # fp16 rounding, nothing more
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()


def test_fp32_output_is_exact(tiny, tmp_path):
    model, tok, meta = tiny
    out = save_model_dir(model, tok, meta, tmp_path / "m", dtype=torch.float32)
    loaded, _, _ = load_model_dir(out)
    for name, p in model.state_dict().items():
        assert torch.equal(p, loaded.state_dict()[name]), name


def test_save_replaces_an_existing_dir_without_leftovers(tiny, tmp_path):
    model, tok, meta = tiny
    save_model_dir(model, tok, meta, tmp_path / "m")
    meta.steps = 99
    save_model_dir(model, tok, meta, tmp_path / "m")
    assert read_meta(tmp_path / "m").steps == 99
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_missing_dir_and_missing_files_fail_clearly(tiny, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_dir(tmp_path / "nowhere")
    model, tok, meta = tiny
    out = save_model_dir(model, tok, meta, tmp_path / "m")
    (out / "model.safetensors").unlink()
    (out / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="incomplete: missing model.safetensors, tokenizer"):
        load_model_dir(out)


def test_corrupt_weights_fail_clearly(tiny, tmp_path):
    model, tok, meta = tiny
    out = save_model_dir(model, tok, meta, tmp_path / "m")
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model_dir(out)
    (out / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model_dir(out)


def test_weights_of_another_shape_and_bad_meta_fail_clearly(tiny, tmp_path):
    model, tok, meta = tiny
    out = save_model_dir(model, tok, meta, tmp_path / "m")
    bigger = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=32, n_head=2, n_positions=64)
    )
    other = save_model_dir(bigger, tok, meta, tmp_path / "other")
    (out / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="do not match config.json"):
        load_model_dir(out)
    (other / "rgpt2.json").write_text('{"direction": "sideways"}')
    with pytest.raises(ModelLoadError, match="rgpt2.json is invalid"):
        load_model_dir(other)
    (other / "rgpt2.json").unlink()
    with pytest.raises(ModelLoadError, match="no rgpt2.json"):
        load_model_dir(other)

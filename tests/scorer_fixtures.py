"""Tiny rap/pop corpora, a tiny BERT base and a tiny data folder for the scorer tests."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

RAP_WORDS = "money street hustle block chain flow cash gang trap bars spit grind hood paper".split()
POP_WORDS = "love heart baby dance tonight forever dream shine kiss summer stars sky".split()
SHARED = "i you the my we in on and all night".split()


def make_bar(words: list[str], rng: random.Random) -> str:
    return " ".join(rng.choice(words + SHARED) for _ in range(rng.randint(4, 7)))


def make_verses(words: list[str], n: int, seed: int, bars: int = 6) -> list[list[str]]:
    rng = random.Random(seed)
    return [[make_bar(words, rng) for _ in range(bars)] for _ in range(n)]


def tiny_base(out_dir: Path) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece tokenizer trained here, saved as a base dir."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [" ".join(v) for v in make_verses(RAP_WORDS + POP_WORDS, 50, 0)]
    texts.append("the quick brown fox / jumps over ' 1 2 3")
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = BertTokenizerFast(tokenizer_object=tok, model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label={0: "pop", 1: "rap"},
        label2id={"pop": 0, "rap": 1},
    )
    model = BertForSequenceClassification(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    fast.save_pretrained(out_dir)
    return out_dir


def tiny_data_dir(root: Path, n_rap_artists: int = 5, n_pop_artists: int = 5) -> Path:
    """A folder shaped like ../shared/data, with made-up lyrics."""
    rap_dir = root / "rap_us"
    genre = root / "genre"
    rap_dir.mkdir(parents=True)
    genre.mkdir(parents=True)
    manifest = []
    for a in range(n_rap_artists):
        name = f"mc-{a}.txt"
        verses = make_verses(RAP_WORDS, 6, seed=100 + a, bars=8)
        (rap_dir / name).write_text("\n\n".join("\n".join(v) for v in verses) + "\n")
        manifest.append({"artist": f"MC {a}", "file": name, "bytes": 0})
    (rap_dir / "MANIFEST.json").write_text(json.dumps(manifest))
    with (genre / "pop_songs.jsonl").open("w") as fh:
        for a in range(n_pop_artists):
            for s, verse in enumerate(make_verses(POP_WORDS, 4, seed=200 + a, bars=12)):
                lyrics = (
                    "[Verse 1]\n" + "\n".join(verse[:6]) + "\n\n[Chorus]\n" + "\n".join(verse[6:])
                )
                fh.write(json.dumps({"artist": f"Singer {a}", "title": f"s{s}", "lyrics": lyrics}))
                fh.write("\n")
    rng = random.Random(7)
    with (genre / "rap_pop_lines.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lyric", "label"])
        for i in range(80):
            label = "rap" if i % 2 else "pop"
            w.writerow([make_bar(RAP_WORDS if label == "rap" else POP_WORDS, rng), label])
    return root

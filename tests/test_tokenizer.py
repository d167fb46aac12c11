from rgpt2.tokenizer import load_tokenizer, special_ids, train_tokenizer
from rgpt2.tokens import BOS, EOV, LINE, PAD, verse_to_text


def _texts(verses):
    return [verse_to_text(v, d) for v in verses for d in ("forward", "reverse")]


def test_special_tokens_are_single_ids_and_words_keep_leading_space(tiny_verses, tmp_path):
    tok = train_tokenizer(_texts(tiny_verses) * 5, vocab_size=400, min_frequency=1)
    ids = special_ids(tok)
    assert len(set(ids.values())) == 4
    pieces = tok.convert_ids_to_tokens(tok(verse_to_text(["money in the bank"]))["input_ids"])
    assert pieces[0] == BOS and pieces[-2:] == [LINE, EOV]
    # the word after <BOS> is spelled with the leading-space marker, like any other word
    assert pieces[1].startswith("Ġ")
    assert tok.pad_token == PAD and tok.bos_token == BOS and tok.eos_token == EOV

    tok.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    text = verse_to_text(tiny_verses[0], "reverse")
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert special_ids(again) == ids

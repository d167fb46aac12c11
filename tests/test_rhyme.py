import pytest
from conftest import TINY_VERSES

from rgpt2.rhyme import (
    RhymeIndex,
    last_word,
    letter_key,
    normalize_word,
    rhyme_keys,
    rhymes,
    scheme_partner,
    vowel_phonemes,
)
from rgpt2.tokenizer import train_tokenizer
from rgpt2.tokens import verse_to_text


@pytest.fixture(scope="module")
def tok():
    texts = [verse_to_text(v, d) for v in TINY_VERSES for d in ("forward", "reverse")]
    return train_tokenizer(texts * 5, vocab_size=400, min_frequency=1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Money,", "money"),
        ("it's", "it's"),
        ("It\u2019s", "it's"),
        ("(rollin')", "rollin'"),
        ("'em", "'em"),
        ('"night"', "night"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_normalize_word(raw, expected):
    assert normalize_word(raw) == expected


def test_last_word_skips_trailing_punctuation():
    assert last_word("what you expect ?") == "expect"
    assert last_word("I got money in the BANK!") == "bank"
    assert last_word("... !") == ""


def test_dictionary_rhymes():
    assert rhymes("money", "Honey,")
    assert rhymes("night", "light")
    assert rhymes("street", "feet")
    assert not rhymes("cat", "dog")
    # a word does not rhyme with itself unless asked
    assert not rhymes("night", "night")
    assert rhymes("night", "night", identical=True)
    # stress marks are ignored, the vowel and what follows are not
    assert rhyme_keys("money") == frozenset({"AH N IY"})


def test_slant_rhymes_need_only_the_vowels():
    assert not rhymes("home", "phone")
    assert rhymes("home", "phone", slant=True)
    assert not rhymes("home", "light", slant=True)


def test_fallback_for_words_the_dictionary_lacks():
    # "finna" and "skrrt" are not in the CMU dictionary: spelling decides
    assert letter_key("finna") == "inna"
    assert letter_key("shawty") == "awty"
    assert letter_key("skrrt") == "skrrt"
    assert rhymes("finna", "ninna")
    assert not rhymes("finna", "skrrt")
    # a dropped g still rhymes like -ing
    assert letter_key("frontin'") == letter_key("fronting")
    assert vowel_phonemes("shawty") == ("AO", "IY")
    assert vowel_phonemes("skrrt") == ()


@pytest.mark.parametrize(
    ("scheme", "partners"),
    [
        ("AABB", [None, 0, None, 2, None, 4]),
        ("ABAB", [None, None, 0, 1, None, None]),
        ("AAAA", [None, 0, 1, 2, 3, 4]),
        ("free", [None] * 6),
    ],
)
def test_scheme_partner(scheme, partners):
    assert [scheme_partner(i, scheme) for i in range(6)] == partners


def test_scheme_partner_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="unknown rhyme scheme"):
        scheme_partner(1, "ABBA")


def test_trie_holds_the_token_spellings_of_rhyming_words(tok):
    index = RhymeIndex(tok)
    trie = index.trie("night")
    assert "light" in trie.words and "right" in trie.words and "tight" in trie.words
    assert "night" not in trie.words and "bank" not in trie.words
    for spelling in (" light", " tight"):
        ids = tok(spelling, add_special_tokens=False)["input_ids"]
        node = trie.walk(ids)
        assert node is not None and node.terminal, spelling
    # " Light" is spelled in pieces here: a capitalised spelling must be one token
    assert trie.walk(tok(" Light", add_special_tokens=False)["input_ids"]) is None
    # a word that does not rhyme leaves the trie, and so does a spelling without the space
    assert trie.walk(tok(" bank", add_special_tokens=False)["input_ids"]) is None
    no_space = tok("light", add_special_tokens=False)["input_ids"]
    assert no_space != tok(" light", add_special_tokens=False)["input_ids"]
    # cached per target: the same object comes back, also for another spelling of it
    assert index.trie("Night,") is trie


def test_capitalised_spellings_the_vocabulary_knows_are_offered():
    texts = [verse_to_text(v) for v in TINY_VERSES] + [verse_to_text(["the Light"])] * 30
    tok = train_tokenizer(texts * 5, vocab_size=400, min_frequency=1)
    (light,) = tok(" Light", add_special_tokens=False)["input_ids"]
    node = RhymeIndex(tok).trie("night").walk([light])
    assert node is not None and node.terminal


def test_trie_includes_vocabulary_slang_and_skips_long_spellings(tok):
    slang = RhymeIndex(tok, extra_words=["finna", "ninna"], max_word_tokens=8)
    assert slang.rhyming_words("finna") == {"ninna"}
    trie = RhymeIndex(tok, max_word_tokens=2).trie("night")
    assert trie.words and "candlelight" not in trie.words
    for word in trie.words:
        assert len(tok(" " + word, add_special_tokens=False)["input_ids"]) <= 2, word
    assert "candlelight" in RhymeIndex(tok, max_word_tokens=8).trie("night").words


def test_common_rhymes_come_first(tok):
    # "tight" and "light" are whole words of the tiny vocabulary: with min_words=2 they are
    # enough, and no rarer dictionary rhyme is offered
    index = RhymeIndex(tok, min_words=2)
    assert index.rhyming_words("night") == {"tight", "light"}
    tiers = index.tiers("night")
    assert tiers[0] == {"tight", "light"} and "right" in tiers[1]
    # with a higher bar the dictionary's rhymes join in, slant ones only if still short
    more = RhymeIndex(tok, min_words=8).rhyming_words("night")
    assert {"tight", "light", "right"} <= more and "time" not in more


def test_rhyme_index_checks_its_arguments(tok):
    with pytest.raises(ValueError, match="max_word_tokens"):
        RhymeIndex(tok, max_word_tokens=0)

import dataclasses
from collections import Counter

import pytest
import torch
from gen_fixtures import generator, random_model, rigged_model, tiny_tokenizer

from rgpt2 import logits as lp
from rgpt2.errors import ModelLoadError
from rgpt2.generate import Generator
from rgpt2.metrics import max_bar_repeats, scheme_end_rhyme
from rgpt2.modeldir import ModelMeta, save_model_dir
from rgpt2.rhyme import RhymeIndex, last_word, rhymes, vowel_phonemes
from rgpt2.tokens import BOS, LINE, PAD
from rgpt2.verse import RapRequest


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def random_gen(tok):
    return generator(tok, random_model(tok, 1), random_model(tok, 2), max_bar_tokens=12)


def req(**kw) -> RapRequest:
    return RapRequest(**kw).validated()


def test_batch_rows_get_their_own_number_of_bars(random_gen):
    requests = [req(bars=4, seed=1, topic="money in the"), req(bars=7, seed=2), req(bars=5, seed=3)]
    verses = random_gen.generate(requests)
    assert [len(v.bars) for v in verses] == [4, 7, 5]
    for verse, request in zip(verses, requests, strict=True):
        assert all(bar.strip() for bar in verse.bars)
        assert verse.seed == request.seed and verse.sampling["seed"] == request.seed
        assert verse.topic == request.topic and verse.scheme == "AABB"
        assert verse.model_versions == {"forward": "fwd-test", "reverse": "rev-test"}
        assert verse.rap_score is None
        assert verse.end_rhyme == scheme_end_rhyme(verse.bars, "AABB")
    # the forward model continues the topic: bar 1 starts with its words
    assert verses[0].bars[0].startswith("money in the")
    assert random_gen.generate([]) == []


def test_same_seed_same_verse_whatever_the_batch(random_gen):
    a = req(bars=6, seed=42)
    first = random_gen.generate([a, req(bars=4, seed=7)])
    again = random_gen.generate([req(bars=5, seed=9), a])
    alone = random_gen.generate([a])
    assert first[0].bars == again[1].bars == alone[0].bars
    other = random_gen.generate([dataclasses.replace(a, seed=43)])
    assert other[0].bars != first[0].bars


def test_no_seed_gets_a_random_one_that_reproduces_the_verse(random_gen):
    v1, v2 = random_gen.generate([req(bars=4), req(bars=4)])
    assert v1.seed != v2.seed
    # replayed in a batch of the same shape, as documented: in a batch of another size the
    # kernels round differently and a draw on the edge of two tokens may go the other way
    replay = random_gen.generate([req(bars=4, seed=v1.seed), req(bars=4, seed=v2.seed)])
    assert [v.bars for v in replay] == [v1.bars, v2.bars]


def test_rhyme_control_forces_rhymes_on_a_model_that_prefers_neck(tok):
    # forward: ends bar 1 at once, so bar 1 is the topic; reverse: always wants " neck"
    forward = rigged_model(tok, {LINE: 10.0})
    reverse = rigged_model(tok, {LINE: 9.0, " neck": 8.0})
    gen = generator(tok, forward, reverse)
    plain = dict(topic="out in the night", bars=6, repetition_penalty=1.0, no_repeat_ngram_size=0)
    for scheme in ("AABB", "ABAB", "AAAA"):
        off = gen.generate(
            [req(**plain, scheme=scheme, seed=s, rhyme_control=False) for s in (1, 2)]
        )
        for v in off:
            assert v.bars[0] == "out in the night"
            assert scheme_end_rhyme(v.bars, scheme) == 0.0, v.bars
        on = gen.generate([req(**plain, scheme=scheme, seed=s) for s in (1, 2)])
        assert gen.last_stats.rhyme_constrained_steps > 0
        for v in on:
            assert scheme_end_rhyme(v.bars, scheme) == 1.0, (scheme, v.bars)
        if scheme == "AABB":
            # bar 2's rhyme word (its last, written first) rhymes with bar 1's "night"
            assert all(rhymes(last_word(v.bars[1]), "night") for v in on)


def test_rhyme_bias_mode_rhymes_when_the_bias_wins(tok):
    forward = rigged_model(tok, {LINE: 10.0})
    reverse = rigged_model(tok, {LINE: 9.0, " neck": 8.0})
    plain = dict(topic="out in the night", bars=4, repetition_penalty=1.0, no_repeat_ngram_size=0)
    strong = generator(tok, forward, reverse, rhyme_mode="bias", rhyme_bias=30.0)
    weak = generator(tok, forward, reverse, rhyme_mode="bias", rhyme_bias=0.5)
    requests = [req(**plain, seed=s) for s in (1, 2, 3)]
    assert all(scheme_end_rhyme(v.bars, "AABB") == 1.0 for v in strong.generate(requests))
    assert all(scheme_end_rhyme(v.bars, "AABB") == 0.0 for v in weak.generate(requests))


def test_multi_rhyme_carries_the_rhyme_over_the_words_before_the_rhyme_word(tok):
    # bar 1 is "out in the night": with the pull on, bar 2 ends "<AH word> <IH word>? ..."
    # read backwards: the two words before its rhyme word end in the vowels of "the", "in"
    forward = rigged_model(tok, {LINE: 10.0})
    reverse = rigged_model(tok, {LINE: 9.0, " neck": 8.0})
    plain = dict(topic="out in the night", bars=4, repetition_penalty=1.0, no_repeat_ngram_size=0)
    requests = [req(**plain, seed=s) for s in (1, 2, 3)]
    pulled = generator(tok, forward, reverse, multi_rhyme_bias=20.0, multi_rhyme_words=2)
    for v in pulled.generate(requests):
        words = v.bars[1].split()
        assert len(words) >= 3, v.bars
        assert vowel_phonemes(words[-2])[-1] == "AH", v.bars  # as "the"
        assert vowel_phonemes(words[-3])[-1] == "IH", v.bars  # as "in"
        assert rhymes(words[-1], "night")
        assert v.sampling["multi_rhyme_bias"] == 20.0
    off = generator(tok, forward, reverse, multi_rhyme_bias=0.0)
    for v in off.generate(requests):
        words = v.bars[1].split()
        assert len(words) < 3 or vowel_phonemes(words[-2])[-1] != "AH", v.bars
    # without rhyme control there is no partner to carry on
    free = pulled.generate([req(**plain, seed=1, rhyme_control=False)])[0]
    assert free.sampling["multi_rhyme_bias"] == 0.0
    # nor with the free scheme, which pairs no bars
    free = pulled.generate([req(**plain, seed=1, scheme="free")])[0]
    assert free.sampling["multi_rhyme_bias"] == 0.0


def test_multi_rhyme_processor_places_and_rows(tok):
    ids = {t: tok.convert_tokens_to_ids(t) for t in (BOS, LINE, PAD)}
    vowels = lp.last_vowel_masks(tok, len(tok))
    starts = lp.word_start_ids(tok, len(tok))
    proc = lp.MultiRhymeProcessor(
        tok, vowels, starts, ["AABB", None], ids[BOS], ids[LINE], ids[PAD], bias=2.0, words=2
    )
    one = lambda w: tok(" " + w, add_special_tokens=False)["input_ids"][0]  # noqa: E731
    partner = f"{BOS} night the through rolling {LINE}"
    scores = torch.zeros(2, len(tok))
    # after the rhyme word: words ending in the vowel of "the" (AH) get the bonus
    row = _ids(tok, f"{partner} light")
    out = proc(torch.cat([row, row]), scores)
    assert out[0, one("the")] == 2.0 and out[0, one("night")] == 0.0
    assert torch.equal(out[0] != 0, vowels["AH"])
    assert torch.equal(out[1], scores[1])  # scheme None: untouched
    assert torch.equal(scores, torch.zeros(2, len(tok)))  # never in place
    proc = lp.MultiRhymeProcessor(tok, vowels, starts, ["AABB"], ids[BOS], ids[LINE], ids[PAD])
    # second word before the rhyme word: the vowel of "through" (UW)
    out = proc(_ids(tok, f"{partner} light single"), scores[:1])
    assert vowels["UW"].any() and torch.equal(out[0] != 0, vowels["UW"])
    assert out[0, one("the")] == 0.0
    # beyond `words`, in the rhyme word itself, and on bar 3 (no AABB partner): untouched
    for text in (f"{partner} light single every", f"{partner}", f"{partner} light {LINE}"):
        assert torch.equal(proc(_ids(tok, text), scores[:1]), scores[:1]), text
    with pytest.raises(ValueError, match="bias"):
        lp.MultiRhymeProcessor(tok, vowels, starts, ["AABB"], 0, 1, 2, bias=0.0)
    with pytest.raises(ValueError, match="unknown rhyme scheme"):
        lp.MultiRhymeProcessor(tok, vowels, starts, ["ABBA"], 0, 1, 2)


def test_no_bar_more_than_twice_on_a_model_that_loops(tok):
    forward = rigged_model(tok, {LINE: 10.0})
    reverse = rigged_model(tok, {LINE: 9.0, " neck": 8.0})
    gen = generator(tok, forward, reverse)
    loose = dict(repetition_penalty=1.0, no_repeat_ngram_size=0, rhyme_control=False)
    verses = gen.generate([req(**loose, topic="neck", bars=10, seed=s) for s in (1, 2)])
    assert gen.last_stats.resampled_bars > 0
    for v in verses:
        assert len(v.bars) == 10
        assert max_bar_repeats(v.bars) <= 2, v.bars


def test_long_verses_slide_the_context_window(tok):
    short = random_model(tok, 3, n_positions=48)
    gen = generator(tok, short, short, max_bar_tokens=16)
    (verse,) = gen.generate([req(bars=12, seed=5)])
    assert len(verse.bars) == 12
    assert gen.last_stats.prefills > 2  # more than one prefill per stage: the window moved


def test_scorer_fills_rap_score(tok):
    class LengthScorer:
        def score(self, texts):
            return [len(t) / 1000 for t in texts]

    gen = generator(tok, random_model(tok), random_model(tok, 1), scorer=LengthScorer())
    (verse,) = gen.generate([req(bars=4, seed=1)])
    assert verse.rap_score == pytest.approx(len(verse.text) / 1000)


def _save(tok, model, direction, version, path):
    meta = ModelMeta(direction, version, "test", steps=1, best_val_ppl=None)
    return save_model_dir(model, tok, meta, path, dtype=torch.float32)


def test_load_and_swap_models(tok, tmp_path):
    f = _save(tok, random_model(tok, 1), "forward", "f1", tmp_path / "f")
    r = _save(tok, random_model(tok, 2), "reverse", "r1", tmp_path / "r")
    r2 = _save(tok, random_model(tok, 3), "reverse", "r2", tmp_path / "r2")
    gen = Generator.load(f, r)
    assert gen.model_versions == {"forward": "f1", "reverse": "r1"}
    swapped = gen.with_model("reverse", r2)
    assert swapped.model_versions == {"forward": "f1", "reverse": "r2"}
    assert swapped.forward is gen.forward  # the other model is shared, not reloaded
    (verse,) = swapped.generate([req(bars=4, seed=1)])
    assert len(verse.bars) == 4 and verse.model_versions["reverse"] == "r2"
    with pytest.raises(ModelLoadError, match="forward"):
        gen.with_model("reverse", f)
    with pytest.raises(ModelLoadError, match="where a forward model is needed"):
        Generator.load(r, r)
    with pytest.raises(ModelLoadError, match="does not exist"):
        Generator.load(tmp_path / "nope", r)


def test_generator_checks_its_options(tok):
    with pytest.raises(ValueError, match="rhyme_mode"):
        generator(tok, random_model(tok), random_model(tok), rhyme_mode="loud")
    with pytest.raises(ValueError, match="context"):
        short = random_model(tok, n_positions=20)
        generator(tok, short, short)


# --- processors ----------------------------------------------------------------------


def _ids(tok, text):
    return torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])


def test_rhyme_processor_restricts_the_first_word_and_follows_it(tok):
    index = RhymeIndex(tok)
    vocab = len(tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in (BOS, LINE, PAD)}
    boundary = lp.boundary_mask(tok, vocab, ids[LINE])
    proc = lp.RhymeLogitsProcessor(
        index, ["AABB"], ids[BOS], ids[LINE], ids[PAD], boundary, mode="restrict"
    )
    bank = tok(" neck", add_special_tokens=False)["input_ids"][0]
    scores = torch.zeros(1, vocab)
    scores[0, bank] = 10.0
    before = scores.clone()
    # reversed bar 1 "the night": bar 2 must start with a word rhyming with "night"
    out = proc(_ids(tok, f"{BOS} night the {LINE}"), scores)
    assert torch.equal(scores, before)  # never in place
    allowed = torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert bank not in allowed
    assert set(allowed) == set(index.trie("night").root.children)
    prompt = _ids(tok, f"{BOS} night the {LINE}")[0].tolist()
    # inside a word: after the first token of a word spelled in pieces, only its continuations
    spell = lambda w: tok(" " + w, add_special_tokens=False)["input_ids"]  # noqa: E731
    light = next(spell(w) for w in sorted(index.trie("night").words) if len(spell(w)) == 2)
    out = proc(torch.tensor([prompt + light[:1]]), scores)
    assert torch.isfinite(out[0, light[1]])
    assert not torch.isfinite(out[0, bank])
    # once that word is complete the bar may go on with any new word
    done = torch.tensor([prompt + light])
    out = proc(done, scores)
    assert torch.isfinite(out[0, bank]) and torch.isfinite(out[0, ids[LINE]])
    # a hyphen or apostrophe would glue letters on to the rhyme word ("light-owl")
    one = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    hyphen, quote, comma = one("-")[0], one("'")[0], one(",")[0]
    assert not torch.isfinite(out[0, hyphen]) and not torch.isfinite(out[0, quote])
    assert torch.isfinite(out[0, comma])
    # closed by punctuation ("light,"): more closing punctuation, a new word or <LINE>
    closing = lp.RhymeLogitsProcessor(
        index, ["AABB"], ids[BOS], ids[LINE], ids[PAD], boundary, closers=lp.closing_ids(tok, vocab)
    )
    out = closing(torch.tensor([prompt + light + [comma]]), scores)
    assert torch.equal(torch.isfinite(out[0]), boundary)
    assert not torch.isfinite(out[0, hyphen]) and torch.isfinite(out[0, bank])
    # past the next word the bar is free
    free = torch.tensor([prompt + light + [comma, bank]])
    assert torch.equal(closing(free, scores), scores)
    # bar 3 has no partner in AABB: untouched
    third = _ids(tok, f"{BOS} night the {LINE} light neck {LINE}")
    assert torch.equal(proc(third, scores), scores)


def test_rhyme_processor_bias_mode_and_off_rows(tok):
    index = RhymeIndex(tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in (BOS, LINE, PAD)}
    boundary = lp.boundary_mask(tok, len(tok), ids[LINE])
    proc = lp.RhymeLogitsProcessor(
        index, ["AABB", None], ids[BOS], ids[LINE], ids[PAD], boundary, mode="bias", bias=3.0
    )
    row = _ids(tok, f"{BOS} night the {LINE}")
    scores = torch.zeros(2, len(tok))
    out = proc(torch.cat([row, row]), scores)
    children = list(index.trie("night").root.children)
    assert torch.all(out[0, children] == 3.0)
    assert out[0].eq(0).sum() == len(tok) - len(children)
    assert torch.equal(out[1], scores[1])  # scheme None: row left alone
    with pytest.raises(ValueError, match="mode"):
        lp.RhymeLogitsProcessor(index, ["AABB"], 0, 1, 2, boundary, mode="force")
    with pytest.raises(ValueError, match="unknown rhyme scheme"):
        lp.RhymeLogitsProcessor(index, ["ABBA"], 0, 1, 2, boundary)


def test_no_repeat_ngram_and_repetition_penalty_per_row(tok):
    bos, pad = tok.convert_tokens_to_ids(BOS), tok.convert_tokens_to_ids(PAD)
    a, b = 300, 301
    ids = torch.tensor([[bos, a, b, a, b], [bos, a, b, a, b]])
    scores = torch.ones(2, len(tok))
    out = lp.NoRepeatNGramProcessor([3, 0], bos, pad)(ids, scores)
    assert out[0, a] == float("-inf")  # "a b" + "a" would repeat the 3-gram "a b a"
    assert torch.isfinite(out[0]).sum() == len(tok) - 1
    assert torch.equal(out[1], scores[1])
    scores = torch.full((2, len(tok)), 2.0)
    scores[:, b] = -2.0
    out = lp.RepetitionPenaltyProcessor([2.0, 1.0], bos, pad, exempt=[bos, pad])(ids, scores)
    assert out[0, a] == 1.0 and out[0, b] == -4.0 and out[0, 5] == 2.0
    assert torch.equal(out[1], scores[1])
    with pytest.raises(ValueError):
        lp.RepetitionPenaltyProcessor([0.5], bos, pad, exempt=[])


def test_duplicate_bar_processor_bans_the_third_copy(tok):
    bos, line, pad = (tok.convert_tokens_to_ids(t) for t in (BOS, LINE, PAD))
    text = f"{BOS} bank money {LINE} Bank, money {LINE} bank money"
    ids = _ids(tok, text)
    scores = torch.zeros(1, len(tok))
    on = lp.DuplicateBarProcessor(tok, bos, line, pad, [True])(ids, scores)
    off = lp.DuplicateBarProcessor(tok, bos, line, pad, [False])(ids, scores)
    assert on[0, line] == float("-inf") and torch.isfinite(on[0, :line]).all()
    assert torch.equal(off, scores)


def test_sample_is_per_row_deterministic_and_honours_top_k(tok):
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3)]  # noqa: E731
    a = lp.sample(scores, [1.0] * 3, [0, 5, 1], [1.0, 1.0, 1.0], gens())
    b = lp.sample(scores, [1.0] * 3, [0, 5, 1], [1.0, 1.0, 1.0], gens())
    assert torch.equal(a, b)
    assert a[2] == scores[2].argmax()  # top-k 1 is greedy
    assert a[1] in scores[1].topk(5).indices
    # a tiny top-p keeps only the best token
    c = lp.sample(scores, [1.0] * 3, [0, 0, 0], [1e-6] * 3, gens())
    assert torch.equal(c, scores.argmax(-1))
    # a broken model's NaN scores fail loudly instead of giving arbitrary tokens
    broken = scores.clone()
    broken[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lp.sample(broken, [1.0] * 3, [0, 5, 1], [1.0] * 3, gens())


def test_sample_nucleus_without_sorting_matches_the_sorted_nucleus():
    # p = 0.5, 0.3, 0.15, 0.05 with top-p 0.7: the nucleus is {0, 1}, renormalised 0.625 / 0.375.
    # Row 0 has no top-k (drawn by rejection), row 1 has top-k 3 (the sorted path).
    scores = torch.tensor([[0.15, 0.5, 0.05, 0.3]] * 2).log()
    counts = [Counter(), Counter()]
    n = 4000
    for seed in range(n):
        gens = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(n + seed)]
        picks = lp.sample(scores, [1.0, 1.0], [0, 3], [0.7, 0.7], gens)
        for row in (0, 1):
            counts[row][int(picks[row])] += 1
    for row in (0, 1):
        assert set(counts[row]) == {1, 3}
        assert abs(counts[row][1] / n - 0.625) < 0.03, counts[row]


def test_sample_min_p_keeps_only_tokens_near_the_best():
    # probabilities 0.5, 0.3, 0.15, 0.05: min-p 0.2 keeps tokens with p >= 0.1 (ids 0-2)
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]] * 2)
    scores = probs.log()
    seen: list[set[int]] = [set(), set()]
    for seed in range(300):
        gens = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)]
        picks = lp.sample(scores, [1.0, 1.0], [0, 0], [1.0, 1.0], gens, min_ps=[0.2, 0.0])
        for row in (0, 1):
            seen[row].add(int(picks[row]))
    assert seen[0] == {0, 1, 2}  # the 0.05 token is below 0.2 x 0.5
    assert seen[1] == {0, 1, 2, 3}  # min-p 0: off
    with pytest.raises(ValueError, match="min_ps"):
        lp.sample(scores, [1.0] * 2, [0] * 2, [1.0] * 2, gens, min_ps=[0.1])


def test_apply_processors_restores_rows_a_processor_emptied():
    def kill_row0(ids, scores):
        out = scores.clone()
        out[0] = float("-inf")
        out[1, 0] = float("-inf")
        return out

    scores = torch.zeros(2, 4)
    out = lp.apply_processors([kill_row0], torch.zeros(2, 1, dtype=torch.long), scores)
    assert torch.equal(out[0], scores[0])
    assert out[1, 0] == float("-inf")


def test_bf16_generator_writes_verses_in_bf16(tok):
    gen = generator(tok, random_model(tok, 4), random_model(tok, 5), dtype="bf16")
    assert next(gen.reverse.model.parameters()).dtype == torch.bfloat16
    verses = gen.generate([req(bars=5, seed=1), req(bars=4, seed=2)])
    assert [len(v.bars) for v in verses] == [5, 4]
    # same batch, same seeds: same verses (bf16 rounding depends on the batch's padding,
    # so unlike fp32 a verse is not promised to come out the same in another batch)
    again = gen.generate([req(bars=5, seed=1), req(bars=4, seed=2)])
    assert [v.bars for v in again] == [v.bars for v in verses]
    with pytest.raises(ValueError, match="dtype"):
        generator(tok, random_model(tok), random_model(tok), dtype="fp8")

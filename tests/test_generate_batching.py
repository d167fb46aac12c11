"""Batched generation: finished rows leave the batch; vectorised processors match the rules."""

import random

import pytest
import torch
from gen_fixtures import generator, random_model, tiny_tokenizer

from rgpt2 import logits as lp
from rgpt2.verse import RapRequest


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def req(**kw) -> RapRequest:
    return RapRequest(**kw).validated()


def test_finished_rows_leave_the_batch_and_verses_do_not_change(tok):
    gen = generator(tok, random_model(tok, 1), random_model(tok, 2), max_bar_tokens=12)
    widths: list[int] = []
    hook = gen.reverse.model.register_forward_pre_hook(
        lambda _m, args, kwargs: widths.append(int(kwargs["input_ids"].shape[0])),
        with_kwargs=True,
    )
    requests = [
        req(bars=4, seed=11, scheme="AABB"),
        req(bars=9, seed=12, scheme="ABAB"),
        req(bars=6, seed=13, scheme="free"),
    ]
    try:
        batch = gen.generate(requests)
    finally:
        hook.remove()
    assert [len(v.bars) for v in batch] == [4, 9, 6]
    # the reverse stage starts with all three rows and ends with the 9-bar verse alone
    assert widths[0] == 3 and widths[-1] == 1
    assert all(b <= a for a, b in zip(widths[:-1], widths[1:], strict=True))
    assert [gen.generate([r])[0].bars for r in requests] == [v.bars for v in batch]


def _ngram_reference(tokens: list[int], n: int, bos: int) -> set[int]:
    """The rule in plain Python: tokens that would repeat an n-gram of the verse."""
    verse = lp.verse_tokens(tokens, bos)
    if n == 0 or len(verse) < n:
        return set()
    prefix = verse[len(verse) - n + 1 :] if n > 1 else []
    return {verse[j + n - 1] for j in range(len(verse) - n + 1) if verse[j : j + n - 1] == prefix}


def test_vectorised_no_repeat_ngram_matches_the_rule_on_random_batches():
    pad, bos, line, vocab = 0, 1, 2, 9
    rnd = random.Random(5)
    for _ in range(400):
        rows = []
        for _ in range(rnd.randint(1, 5)):
            body = [rnd.choice([bos] if rnd.random() < 0.1 else range(2, vocab)) for _ in range(12)]
            rows.append(([bos] if rnd.random() < 0.8 else []) + body[: rnd.randint(0, 12)])
        width = max(1, *(len(r) for r in rows))
        ids = torch.full((len(rows), width), pad)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r)
        sizes = [rnd.choice([0, 1, 2, 3, 4]) for _ in rows]
        scores = torch.randn(len(rows), vocab)
        out = lp.NoRepeatNGramProcessor(sizes, bos, pad, line)(ids, scores)
        for i, r in enumerate(rows):
            banned = _ngram_reference(r, sizes[i], bos)
            want = scores[i].clone()
            want[sorted(banned)] = float("-inf")
            assert torch.equal(out[i], want), (r, sizes[i])
        if not any(_ngram_reference(r, n, bos) for r, n in zip(rows, sizes, strict=True)):
            assert out is scores  # untouched: apply_processors skips it

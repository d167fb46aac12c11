import pytest

from rgpt2.errors import InvalidRequest
from rgpt2.verse import MAX_TOPIC_CHARS, RapRequest, clean_topic


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bars": 0}, "bars must be between 4 and 32"),
        ({"bars": 1000}, "bars must be between 4 and 32"),
        ({"bars": "8"}, "whole number"),
        ({"scheme": "XYZ"}, "unknown rhyme scheme"),
        ({"temperature": 0}, "temperature"),
        ({"min_p": 1.0}, "min_p must be in \\[0, 1\\)"),
        ({"min_p": -0.1}, "min_p"),
        ({"topic": "x" * 2000}, f"limit is {MAX_TOPIC_CHARS}"),
        ({"topic": "🔥🔥🔥"}, "at least one letter"),
        ({"topic": "\x00\x07\u200b"}, "control characters"),
    ],
)
def test_bad_requests_give_clear_errors(kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        RapRequest(**kwargs).validated()


def test_valid_request_is_normalised():
    req = RapRequest(topic="  money\u200b  and   fame ", scheme="aabb").validated()
    assert req.topic == "money and fame" and req.scheme == "AABB"
    assert clean_topic("") is None and clean_topic(None) is None

"""/lyrics submit (modal and attachment) and /lyrics stats through the real parser."""

from __future__ import annotations

import pytest

from tests.bot_fakes import make_bot, make_services
from tests.discord_harness import Harness, Member, attachment

ALICE = Member(4001, "alice")
BOB = Member(4002, "bob")
LYRICS = "I keep it real from the start\nwith a flame in my heart\nwe been rising from the dark\nleft the city with a spark"


@pytest.fixture
async def harness(tmp_path):
    services = await make_services(tmp_path / "l.sqlite3", lyrics_max_bytes=400)
    async with Harness(make_bot(services)) as h:
        yield h


async def submit_modal(h: Harness, member: Member, text: str):
    (modal,) = await h.slash("lyrics submit", member)
    assert modal.response_type == 9  # a modal
    custom_id = modal.payload["data"]["custom_id"]
    (input_id,) = modal.custom_ids
    (reply,) = await h.submit_modal(custom_id, member, {input_id: text})
    return reply


async def test_modal_submission_is_stored_and_acknowledged_privately(harness):
    reply = await submit_modal(harness, ALICE, LYRICS)
    assert reply.ephemeral and "Thanks! Submission #" in reply.content and "4 bars" in reply.content
    (pending,) = await harness.bot.services.repo.pending_lyrics()
    assert pending.user_id == ALICE.id and pending.text == LYRICS

    again = await submit_modal(harness, BOB, LYRICS.upper())  # same lyrics, other case
    assert again.ephemeral and "contributed already" in again.content
    short = await submit_modal(harness, BOB, "just one line of words here")
    assert short.ephemeral and "at least 4 bars" in short.content
    (stats,) = await harness.slash("lyrics stats", BOB)
    assert stats.ephemeral and stats.content.startswith("1 submissions")


async def test_attachment_checks_size_type_and_binary(harness):
    ok = attachment("verse.txt", LYRICS.encode())
    replies = await harness.slash("lyrics submit", ALICE, attachments={"file": ok})
    assert replies[0].response_type == 5 and replies[0].ephemeral  # deferred privately
    assert "Thanks! Submission #" in replies[-1].content and replies[-1].ephemeral

    big = attachment("big.txt", b"na na na\n" * 100)
    (reply,) = await harness.slash("lyrics submit", ALICE, attachments={"file": big})
    assert reply.ephemeral and "the limit is 400 bytes" in reply.content

    binary = attachment("song.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 4)
    replies = await harness.slash("lyrics submit", ALICE, attachments={"file": binary})
    assert "binary" in replies[-1].content and replies[-1].ephemeral

    wrong = attachment("song.mp3", LYRICS.encode(), content_type="audio/mpeg")
    replies = await harness.slash("lyrics submit", ALICE, attachments={"file": wrong})
    assert ".txt" in replies[-1].content and replies[-1].ephemeral

    latin1 = attachment("latin.txt", "café olé\n".encode("latin-1") * 4)
    replies = await harness.slash("lyrics submit", ALICE, attachments={"file": latin1})
    assert "UTF-8" in replies[-1].content
    assert await harness.bot.services.repo.pending_lyrics_count() == 1
    harness.assert_no_pings()

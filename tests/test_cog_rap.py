"""/rap and its buttons, through discord.py's real interaction parser."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.bot_fakes import PING_BAR, BotFakeGenerator, make_bot, make_services
from tests.discord_harness import Harness, Member

ALICE = Member(1001, "alice")
BOB = Member(1002, "bob")


@pytest.fixture
async def harness(tmp_path):
    services = await make_services(tmp_path / "bot.sqlite3")
    async with Harness(make_bot(services)) as h:
        yield h


async def test_rap_posts_an_embed_and_stores_the_verse(harness):
    replies = await harness.slash("rap", ALICE, topic="money", bars=6)
    assert replies[0].kind == "response" and replies[0].response_type == 5  # deferred first
    final = replies[-1]
    assert final.kind == "edit"
    (embed,) = final.embeds
    assert "money number 0" in embed["description"]
    assert len(embed["description"].splitlines()) == 6
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert {"Rap score", "Rhyme density", "Model"} <= set(fields)
    verse_id = int(embed["title"].split("#")[1].split()[0])
    assert final.custom_ids == [f"rgpt2:vote:{verse_id}", f"rgpt2:again:{verse_id}"]
    stored = await harness.bot.services.rap.get(verse_id)
    assert stored.requester_id == ALICE.id
    assert stored.topic == "money" and stored.bars == 6
    assert stored.message_id == final.message_id
    assert stored.sampling["seed"] == stored.seed  # enough to reproduce it


async def test_mentions_in_generated_text_never_ping(harness):
    replies = await harness.slash("rap", ALICE, topic="ping")
    assert PING_BAR in replies[-1].text
    harness.assert_no_pings()


def verse_id_of(sent) -> int:
    return int(sent.embeds[0]["title"].split("#")[1].split()[0])


async def test_upvote_toggles_and_counts_each_member_once(harness):
    final = (await harness.slash("rap", ALICE))[-1]
    vid, mid = verse_id_of(final), final.message_id
    vote = f"rgpt2:vote:{vid}"

    (edit,) = await harness.click(mid, vote, BOB)
    assert edit.response_type == 7 and "▲ 1" in str(edit.data["components"])
    (edit,) = await harness.click(mid, vote, ALICE)  # a second member counts separately
    assert "▲ 2" in str(edit.data["components"])
    (edit,) = await harness.click(mid, vote, BOB)  # pressing again removes bob's vote
    assert "▲ 1" in str(edit.data["components"])
    assert await harness.bot.services.repo.upvote_count(vid) == 1
    assert await harness.bot.services.repo.has_upvoted(vid, ALICE.id)
    assert not await harness.bot.services.repo.has_upvoted(vid, BOB.id)
    # the buttons survive in the message: the "another one" button is still there
    assert f"rgpt2:again:{vid}" in harness.messages[mid]["components"].__str__()


async def test_another_one_writes_a_fresh_verse_with_the_same_options(harness):
    first = (await harness.slash("rap", ALICE, topic="gold", bars=4, scheme="ABAB"))[-1]
    replies = await harness.click(first.message_id, f"rgpt2:again:{verse_id_of(first)}", BOB)
    assert replies[0].response_type == 5
    second = replies[-1]
    new_id = verse_id_of(second)
    assert new_id != verse_id_of(first)
    old = await harness.bot.services.rap.get(verse_id_of(first))
    new = await harness.bot.services.rap.get(new_id)
    assert (new.topic, new.bars, new.scheme) == ("gold", 4, "ABAB")
    assert new.seed != old.seed and new.requester_id == BOB.id


async def test_bad_options_are_refused_privately_before_anything_is_queued(harness):
    (reply,) = await harness.slash("rap", ALICE, bars=99)
    assert reply.ephemeral and "bars must be between 4 and 32" in reply.content.lower()
    (reply,) = await harness.slash("rap", ALICE, scheme="ZZZZ")
    assert reply.ephemeral and "unknown rhyme scheme" in reply.content.lower()
    assert await harness.bot.services.repo.count_verses() == 0


async def test_unknown_verse_and_verse_command(harness):
    (reply,) = await harness.slash("verse", ALICE, id=424242)
    assert reply.ephemeral and "no verse #424242" in reply.content.lower()
    final = (await harness.slash("rap", ALICE, topic="ping"))[-1]
    (shown,) = await harness.slash("verse", BOB, id=verse_id_of(final))
    assert shown.embeds[0]["description"].startswith(PING_BAR)
    harness.assert_no_pings()


async def test_explicit_mask_changes_what_is_shown_not_what_is_stored(harness):
    admin = Member(1099, "mod", manager=True)
    await harness.slash("admin settings", admin, explicit_filter="mask")
    final = (await harness.slash("rap", ALICE, topic="explicit"))[-1]
    shown = final.embeds[0]["description"]
    assert "shit" not in shown and "bitch" not in shown and "s\\*\\*\\*" in shown
    stored = await harness.bot.services.rap.get(verse_id_of(final))
    assert "this shit is hard and the bitch is mad" in stored.text


async def test_allowed_channels_limit_where_the_bot_answers(harness):
    admin = Member(1099, "mod", manager=True)
    from tests.discord_harness import CHANNEL_ID

    other = CHANNEL_ID + 1
    await harness.slash("admin settings", admin, channels={"channel": other})
    (reply,) = await harness.slash("rap", ALICE)  # in CHANNEL_ID, no longer allowed
    assert reply.ephemeral and "I only answer in" in reply.content
    replies = await harness.slash("rap", ALICE, channel_id=other)
    assert replies[-1].embeds
    # admins still reach /admin from anywhere
    (reply,) = await harness.slash("admin settings", admin, channel_action="all")
    assert reply.ephemeral and "every channel" in reply.text


async def test_unexpected_errors_get_a_friendly_reply_with_an_id(harness, caplog, monkeypatch):
    async def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(harness.bot.services.rankings, "top", broken)
    (reply,) = await harness.slash("top", ALICE)
    assert reply.ephemeral and "Something went wrong" in reply.content
    error_id = reply.content.split("`")[1]
    assert any(error_id in r.getMessage() for r in caplog.records)


async def test_cooldown_is_answered_privately_with_the_wait(tmp_path):
    services = await make_services(tmp_path / "bot.sqlite3", cooldown_seconds=60)
    async with Harness(make_bot(services)) as h:
        assert (await h.slash("rap", ALICE))[-1].embeds
        (reply,) = await h.slash("rap", ALICE)
        assert reply.ephemeral and reply.response_type == 4
        assert "you can ask for another verse in" in reply.content.lower()
        wait = int(reply.content.split(" in ")[1].split()[0])
        assert 55 <= wait <= 60
        assert (await h.slash("rap", BOB))[-1].embeds  # another member is not held back
        assert await services.repo.count_verses() == 2


async def test_queue_position_and_queue_full(tmp_path):
    generator = BotFakeGenerator()
    generator.gate = threading.Event()
    services = await make_services(tmp_path / "bot.sqlite3", generator, queue_size=1, max_batch=1)
    async with Harness(make_bot(services)) as h:
        first = await h.slash("rap", ALICE, settle=False)
        await h.wait_for(first.token, lambda s: s.response_type == 5)  # deferred at once
        while not generator.batches:  # the worker holds alice's verse
            await asyncio.sleep(0.01)
        waiting = await h.slash("rap", BOB, settle=False)
        told = await h.wait_for(waiting.token, lambda s: s.kind == "edit")
        assert "number 1 in the queue" in told.content
        carol = await h.slash("rap", Member(1003, "carol"), settle=False)  # queue (1) full
        busy = await h.wait_for(carol.token, lambda s: True)
        assert busy.ephemeral and "busy" in busy.content and "Try again in about" in busy.content
        generator.gate.set()
        await h.settle()
        for token in (first.token, waiting.token):
            assert h.replies(token)[-1].embeds  # both verses were posted in the end
        assert await services.repo.count_verses() == 2


async def test_buttons_keep_working_after_a_restart(tmp_path):
    db = tmp_path / "restart.sqlite3"
    async with Harness(make_bot(await make_services(db))) as h:
        final = (await h.slash("rap", ALICE, topic="old"))[-1]
        await h.click(final.message_id, f"rgpt2:vote:{verse_id_of(final)}", ALICE)
    # a new process: new bot, new services, the same database and the same Discord message
    services = await make_services(db)
    async with Harness(make_bot(services), messages=h.messages) as h2:
        vid = verse_id_of(final)
        (edit,) = await h2.click(final.message_id, f"rgpt2:vote:{vid}", BOB)
        assert "▲ 2" in str(edit.data["components"])
        again = await h2.click(final.message_id, f"rgpt2:again:{vid}", BOB)
        assert (await services.rap.get(verse_id_of(again[-1]))).topic == "old"


async def test_a_failed_generation_is_reported_privately_and_the_placeholder_removed(tmp_path):
    generator = BotFakeGenerator()
    services = await make_services(tmp_path / "fail.sqlite3", generator, cooldown_seconds=60)
    async with Harness(make_bot(services)) as h:

        def out_of_memory(requests):
            raise MemoryError("CUDA out of memory")

        generator.generate = out_of_memory  # type: ignore[method-assign]
        replies = await h.slash("rap", ALICE)
        kinds = [r.kind for r in replies]
        assert kinds == ["response", "delete", "followup"]  # defer, remove "thinking", say why
        assert replies[1].message_id == replies[0].message_id
        assert replies[2].ephemeral and "generat" in replies[2].content.lower()
        assert await services.repo.count_verses() == 0
        # the failure did not cost alice her cooldown
        del generator.generate
        assert (await h.slash("rap", ALICE))[-1].embeds

"""/rap and its buttons, through discord.py's real interaction parser."""

from __future__ import annotations

import pytest

from tests.bot_fakes import PING_BAR, make_bot, make_services
from tests.discord_harness import Harness, Member

ALICE = Member(1001, "alice")
BOB = Member(1002, "bob")


@pytest.fixture
async def harness(tmp_path):
    services = await make_services(tmp_path / "bot.sqlite3")
    async with Harness(make_bot(services, cogs=("bot.cogs.rap",))) as h:
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

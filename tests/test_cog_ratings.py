"""/top, /leaderboard and /verse through the real parser."""

from __future__ import annotations

import pytest

from tests.bot_fakes import make_bot, make_services
from tests.discord_harness import Harness, Member

MEMBERS = [Member(3000 + i, f"m{i}") for i in range(6)]


@pytest.fixture
async def harness(tmp_path):
    services = await make_services(tmp_path / "r.sqlite3")
    async with Harness(make_bot(services)) as h:
        yield h


async def post(h: Harness, member: Member, topic: str) -> tuple[int, int]:
    final = (await h.slash("rap", member, topic=topic))[-1]
    return int(final.embeds[0]["title"].split("#")[1].split()[0]), final.message_id


async def upvote(h: Harness, verse: tuple[int, int], voters: list[Member]) -> None:
    for voter in voters:
        await h.click(verse[1], f"rgpt2:vote:{verse[0]}", voter)


async def test_top_and_leaderboard_order(harness):
    a, b, c = MEMBERS[:3]
    va = await post(harness, a, "alpha")
    vb1 = await post(harness, b, "bravo")
    vb2 = await post(harness, b, "bravo two")
    vc = await post(harness, c, "charlie")
    await upvote(harness, va, MEMBERS[1:4])  # 3 votes for a's verse
    await upvote(harness, vb1, MEMBERS[2:4])  # 2 + 2 = 4 votes for b's verses
    await upvote(harness, vb2, MEMBERS[4:6])
    await upvote(harness, vc, MEMBERS[0:1])  # 1 vote for c's verse

    (top,) = await harness.slash("top", c, period="all")
    description = top.embeds[0]["description"]
    lines = [line for line in description.splitlines() if line.startswith("**")]
    ids = [int(line.split("#")[1].split()[0]) for line in lines]
    assert ids == [va[0], vb1[0], vb2[0], vc[0]]  # by votes; ties: older first
    assert "▲ 3" in lines[0] and "▲ 1" in lines[-1]

    (board,) = await harness.slash("leaderboard", c)
    fields = {f["name"]: f["value"] for f in board.embeds[0]["fields"]}
    rows = fields["Upvotes (all)"].splitlines()
    assert [int(r.split("<@")[1].split(">")[0]) for r in rows] == [b.id, a.id, c.id]
    assert "▲ 4 on 2 verses" in rows[0]
    assert fields["Battle wins"] == "no battles yet"
    harness.assert_no_pings()


async def test_top_with_no_votes_and_a_bad_period(harness):
    await post(harness, MEMBERS[0], "quiet")
    (top,) = await harness.slash("top", MEMBERS[0])
    assert "No upvoted verses yet" in top.embeds[0]["description"]
    (reply,) = await harness.slash("top", MEMBERS[0], period="century")
    assert reply.ephemeral and "unknown period" in reply.content.lower()


async def test_verse_command_shows_the_stored_verse_with_its_buttons(harness):
    v = await post(harness, MEMBERS[0], "echo")
    await upvote(harness, v, MEMBERS[1:3])
    (shown,) = await harness.slash("verse", MEMBERS[4], id=v[0])
    assert shown.embeds[0]["title"].startswith(f"Verse #{v[0]}")
    assert shown.custom_ids == [f"rgpt2:vote:{v[0]}", f"rgpt2:again:{v[0]}"]
    assert "▲ 2" in str(shown.data["components"])
    # the buttons on the /verse copy act on the same verse
    (edit,) = await harness.click(shown.message_id, f"rgpt2:vote:{v[0]}", MEMBERS[4])
    assert "▲ 3" in str(edit.data["components"])

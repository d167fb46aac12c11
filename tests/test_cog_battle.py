"""/battle through the real parser: challenge, accept/decline, votes, deadline, restart."""

from __future__ import annotations

import asyncio

from tests.bot_fakes import BotFakeGenerator, make_bot, make_services
from tests.discord_harness import Harness, Member

ALICE = Member(2001, "alice")
BOB = Member(2002, "bob")
CAROL = Member(2003, "carol")
DAVE = Member(2004, "dave")
ERIN = Member(2005, "erin")
ROBOT = Member(2099, "robot", bot=True)


async def challenge(h: Harness, **options):
    (reply,) = await h.slash("battle challenge", ALICE, users={"opponent": BOB}, **options)
    assert reply.response_type == 4 and not reply.ephemeral
    battle_id = int(reply.custom_ids[0].rsplit(":", 1)[1])
    assert reply.custom_ids == [f"rgpt2:accept:{battle_id}", f"rgpt2:decline:{battle_id}"]
    return battle_id, reply.message_id


async def accept(h: Harness, battle_id: int, message_id: int, topic: str = ""):
    (form,) = await h.click(message_id, f"rgpt2:accept:{battle_id}", BOB)
    assert form.response_type == 9  # the accept form: the opponent may give a topic
    (field,) = form.custom_ids
    return await h.submit_modal(
        form.payload["data"]["custom_id"], BOB, {field: topic}, message_id=message_id
    )


async def accepted_battle(h: Harness, opponent_topic: str = "", **options):
    battle_id, message_id = await challenge(h, **options)
    replies = await accept(h, battle_id, message_id, opponent_topic)
    vote_message = replies[-1]
    assert vote_message.custom_ids == [
        f"rgpt2:bvote:{battle_id}:challenger",
        f"rgpt2:bvote:{battle_id}:opponent",
    ]
    return battle_id, replies


async def vote(h: Harness, battle_id: int, member: Member, side: str) -> str:
    battle = await h.bot.services.battles.get(battle_id)
    (reply,) = await h.click(battle.message_id, f"rgpt2:bvote:{battle_id}:{side}", member)
    assert reply.ephemeral
    return reply.content


async def wait_for_result(h: Harness, battle_id: int, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while True:
            for post in h.channel_posts():
                if post.embeds and f"Battle #{battle_id} — result" in post.embeds[0]["title"]:
                    return post
            await asyncio.sleep(0.02)


async def test_only_the_opponent_can_accept_or_decline(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3")
    async with Harness(make_bot(services)) as h:
        battle_id, message_id = await challenge(h, topic="crowns")
        for member, action in ((CAROL, "accept"), (ALICE, "accept"), (CAROL, "decline")):
            # refused before any form opens
            (reply,) = await h.click(message_id, f"rgpt2:{action}:{battle_id}", member)
            assert reply.ephemeral and "only the challenged member" in reply.content.lower()
        assert (await services.battles.get(battle_id)).state == "pending"
        (reply,) = await h.click(message_id, f"rgpt2:decline:{battle_id}", BOB)
        assert reply.response_type == 7 and "declined" in reply.content
        assert reply.data["components"] == []  # the buttons are gone
        assert (await services.battles.get(battle_id)).state == "declined"
        # a late accept (a client that still shows the button) is refused by the service
        try:
            await services.battles.accept(battle_id, BOB.id)
        except Exception as exc:
            assert "no longer open" in str(exc)
        else:
            raise AssertionError("a declined battle was accepted")
        h.assert_no_pings()


async def test_cannot_challenge_yourself_or_a_bot(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3")
    async with Harness(make_bot(services)) as h:
        (reply,) = await h.slash("battle challenge", ALICE, users={"opponent": ALICE})
        assert reply.ephemeral and "yourself" in reply.content
        (reply,) = await h.slash("battle challenge", ALICE, users={"opponent": ROBOT})
        assert reply.ephemeral and "bots do not battle" in reply.content.lower()


async def test_accept_writes_two_verses_then_votes_decide_at_the_deadline(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3", vote_seconds=1.0)
    async with Harness(make_bot(services)) as h:
        battle_id, replies = await accepted_battle(
            h, topic="crowns", bars=4, opponent_topic="thrones"
        )
        assert replies[0].response_type == 7 and "accepted" in replies[0].content
        verses = [r for r in replies if r.kind == "followup" and r.embeds]
        assert len(verses) == 2
        assert "challenger" in verses[0].embeds[0]["title"]
        assert "opponent" in verses[1].embeds[0]["title"]
        battle = await services.battles.get(battle_id)
        assert battle.state == "voting"
        # each side raps on their own topic
        assert (await services.rap.get(battle.challenger_verse_id)).topic == "crowns"
        assert (await services.rap.get(battle.opponent_verse_id)).topic == "thrones"
        assert "thrones number 0" in verses[1].embeds[0]["description"]

        # the battlers and bots cannot vote; members vote once and may change their vote
        assert "You're in this battle" in await vote(h, battle_id, ALICE, "challenger")
        assert "You're in this battle" in await vote(h, battle_id, BOB, "opponent")
        assert "Bots don't vote" in await vote(h, battle_id, ROBOT, "challenger")
        assert "is in" in await vote(h, battle_id, CAROL, "challenger")
        assert "is in" in await vote(h, battle_id, DAVE, "challenger")
        assert "already voted" in await vote(h, battle_id, DAVE, "challenger")
        assert "is in" in await vote(h, battle_id, ERIN, "opponent")
        assert "changed your vote" in await vote(h, battle_id, DAVE, "opponent")
        tally = await services.repo.battle_tally(battle_id)
        assert (tally.challenger, tally.opponent) == (1, 2)

        result = await wait_for_result(h, battle_id)
        assert f"<@{BOB.id}> beats <@{ALICE.id}>, 2–1" in result.embeds[0]["description"]
        battle = await services.battles.get(battle_id)
        assert battle.state == "closed" and battle.winner_id == BOB.id
        assert "closed" in await vote(h, battle_id, CAROL, "opponent")

        (stats,) = await h.slash("battle stats", CAROL, users={"member": BOB})
        fields = {f["name"]: f["value"] for f in stats.embeds[0]["fields"]}
        assert (fields["Wins"], fields["Losses"], fields["Ties"]) == ("1", "0", "0")
        h.assert_no_pings()


async def test_no_votes_is_a_tie(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3", vote_seconds=0.3)
    async with Harness(make_bot(services)) as h:
        battle_id, _ = await accepted_battle(h)
        result = await wait_for_result(h, battle_id)
        assert "It's a tie, 0–0" in result.embeds[0]["description"]
        assert (await services.battles.get(battle_id)).winner == "tie"


async def test_a_challenge_expires(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3", challenge_seconds=0.2)
    async with Harness(make_bot(services)) as h:
        battle_id, message_id = await challenge(h)
        async with asyncio.timeout(5):
            while (await services.battles.get(battle_id)).state != "expired":
                await asyncio.sleep(0.02)
        edits = [s for s in h.sent if s.kind == "channel_edit" and s.message_id == message_id]
        assert edits and "expired" in edits[-1].content and edits[-1].data["components"] == []


async def test_a_battle_survives_a_restart_and_closes_on_time(tmp_path):
    db = tmp_path / "b.sqlite3"
    services = await make_services(db, vote_seconds=1.5)
    async with Harness(make_bot(services)) as h:
        battle_id, _ = await accepted_battle(h)
        await vote(h, battle_id, CAROL, "challenger")
        message_id = (await services.battles.get(battle_id)).message_id
    # the bot is down (its timers and database closed) while the deadline passes
    await asyncio.sleep(1.6)

    services = await make_services(db, vote_seconds=1.5)
    async with Harness(make_bot(services), messages=h.messages) as h:
        result = await wait_for_result(h, battle_id)
        assert f"<@{ALICE.id}> beats <@{BOB.id}>, 1–0" in result.embeds[0]["description"]
        assert (await services.battles.get(battle_id)).winner_id == ALICE.id
        # a vote button pressed on the old message after the restart still answers
        (reply,) = await h.click(message_id, f"rgpt2:bvote:{battle_id}:opponent", DAVE)
        assert "closed" in reply.content


async def test_an_open_battle_resumes_its_timer_after_a_restart(tmp_path):
    db = tmp_path / "b.sqlite3"
    services = await make_services(db, vote_seconds=1.0)
    async with Harness(make_bot(services)) as h:
        battle_id, _ = await accepted_battle(h)
    services = await make_services(db)
    async with Harness(make_bot(services), messages=h.messages) as h:
        # still open after the restart: votes count, then it closes at its deadline
        assert "is in" in await vote(h, battle_id, CAROL, "opponent")
        result = await wait_for_result(h, battle_id)
        assert f"<@{BOB.id}> beats <@{ALICE.id}>, 1–0" in result.embeds[0]["description"]


async def test_a_bad_topic_in_the_accept_form_is_refused_and_the_challenge_stays_open(tmp_path):
    services = await make_services(tmp_path / "b.sqlite3")
    async with Harness(make_bot(services)) as h:
        battle_id, message_id = await challenge(h)
        (reply,) = await accept(h, battle_id, message_id, topic="🔥🔥🔥")
        assert reply.ephemeral and "letter or digit" in reply.content
        assert (await services.battles.get(battle_id)).state == "pending"
        replies = await accept(h, battle_id, message_id, topic="")
        assert replies[-1].custom_ids[0] == f"rgpt2:bvote:{battle_id}:challenger"


async def test_a_battle_whose_verses_fail_is_called_off(tmp_path):
    generator = BotFakeGenerator()
    services = await make_services(tmp_path / "b.sqlite3", generator)
    async with Harness(make_bot(services)) as h:
        battle_id, message_id = await challenge(h)

        def broken(requests):
            raise RuntimeError("the model fell over")

        generator.generate = broken  # type: ignore[method-assign]
        replies = await accept(h, battle_id, message_id)
        assert "called off" in h.messages[message_id]["content"]
        assert replies[-1].ephemeral and "generat" in replies[-1].content.lower()
        assert (await services.battles.get(battle_id)).state == "cancelled"
        # neither member is stuck: they can battle again
        del generator.generate
        battle_id, message_id = await challenge(h)
        assert (await accept(h, battle_id, message_id))[-1].custom_ids

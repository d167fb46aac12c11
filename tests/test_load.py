"""200 /rap interactions from 50 members at once, through the real parser and the real
generation service: every one is acknowledged and then answered or told to wait, none is
lost, and the database holds exactly the verses that were posted."""

from __future__ import annotations

import collections
import re
import time

import pytest

from tests.bot_fakes import BotFakeGenerator, make_bot, make_services
from tests.discord_harness import Harness, Member

MEMBERS = [Member(6000 + i, f"member{i}") for i in range(50)]


@pytest.mark.parametrize("cooldown", [0.0, 60.0])
async def test_200_raps_from_50_members_at_once(tmp_path, cooldown):
    generator = BotFakeGenerator(delay=0.02)  # a batch takes a moment: the queue fills up
    services = await make_services(
        tmp_path / "load.sqlite3", generator, queue_size=32, max_batch=8, cooldown_seconds=cooldown
    )
    async with Harness(make_bot(services)) as h:
        started = time.perf_counter()
        tokens = []
        for i in range(200):
            member = MEMBERS[i % len(MEMBERS)]
            tokens.append((await h.slash("rap", member, topic=f"t{i}", settle=False)).token)
        await h.settle(timeout=60)
        elapsed = time.perf_counter() - started

        ack_ms = sorted(
            1000 * (h.replies(t)[0].at - h.dispatched[t]) for t in tokens if h.replies(t)
        )
        outcomes: collections.Counter[str] = collections.Counter()
        posted: dict[int, int] = {}  # verse id -> message id
        for token in tokens:
            replies = h.replies(token)
            first = [r for r in replies if r.kind == "response"]
            assert len(first) == 1, f"{token} was acknowledged {len(first)} times"
            (ack,) = first
            if ack.response_type == 4:  # refused at once, privately, with the wait
                assert ack.ephemeral and re.search(r"in (about )?\d+ (s|min)\b", ack.content)
                assert len(replies) == 1
                outcomes["busy" if "busy" in ack.content else "cooldown"] += 1
                continue
            assert ack.response_type == 5  # deferred, then the verse replaces "thinking"
            final = replies[-1]
            assert final.kind == "edit" and final.embeds, f"{token} was never answered"
            verse_id = int(final.embeds[0]["title"].split("#")[1].split()[0])
            assert verse_id not in posted
            posted[verse_id] = final.message_id
            outcomes["posted"] += 1

        assert sum(outcomes.values()) == 200
        assert outcomes["posted"] >= 1
        stored = await services.repo.recent_verses(limit=1000)
        assert {v.id: v.message_id for v in stored} == posted
        if cooldown:
            # each member's first request counts; the other three are told to wait
            assert outcomes["cooldown"] >= 150 - outcomes["busy"]
        else:
            assert outcomes["cooldown"] == 0
        h.assert_no_pings()
        batches = [len(b) for b in generator.batches]
        print(
            f"\n200 /rap, cooldown {cooldown:g}s: {dict(outcomes)} in {elapsed:.2f} s; "
            f"{len(batches)} batches, mean size {sum(batches) / len(batches):.1f}; "
            f"first response after p50 {ack_ms[len(ack_ms) // 2]:.0f} ms, "
            f"p95 {ack_ms[int(len(ack_ms) * 0.95)]:.0f} ms, max {ack_ms[-1]:.0f} ms "
            "(Discord allows 3000)"
        )

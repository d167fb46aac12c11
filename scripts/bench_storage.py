"""Storage figures: how fast the repository answers on one aiosqlite connection.

    python scripts/bench_storage.py [--verses 5000] [--members 50]

Prints verses/s stored by concurrent coroutines (as the bot does under load), upvote
toggles/s, and the latency of the read queries behind /top and /leaderboard. Uses a
temporary file; touches nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.storage import ANY_GUILD, Database, Repository
from rgpt2.verse import Verse


def verse(i: int) -> Verse:
    return Verse(
        bars=[f"bar {i} number {j}" for j in range(8)],
        topic="bench",
        scheme="AABB",
        seed=i,
        rhyme_density=0.5,
        end_rhyme=0.5,
        rap_score=0.9,
        model_versions={"forward": "f", "reverse": "r"},
        sampling={"temperature": 0.9},
    )


async def timed(coro_factory, n: int) -> list[float]:  # noqa: ANN001 - a small script
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        await coro_factory()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def main(n_verses: int, members: int) -> None:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3")
        repo = Repository(db)
        guilds = [1, 2, 3]

        start = time.perf_counter()
        stored = await asyncio.gather(
            *(
                repo.add_verse(
                    verse(i), requester_id=rng.randrange(members), guild_id=rng.choice(guilds)
                )
                for i in range(n_verses)
            )
        )
        elapsed = time.perf_counter() - start
        print(f"add_verse, {n_verses} concurrent: {n_verses / elapsed:,.0f} verses/s")

        clicks = [(rng.choice(stored).id, rng.randrange(members)) for _ in range(n_verses)]
        start = time.perf_counter()
        await asyncio.gather(*(repo.toggle_upvote(v, u) for v, u in clicks))
        elapsed = time.perf_counter() - start
        print(f"toggle_upvote, {len(clicks)} concurrent: {len(clicks) / elapsed:,.0f} toggles/s")

        for name, factory in [
            ("top_verses(guild)", lambda: repo.top_verses(1)),
            ("leaderboard(guild)", lambda: repo.leaderboard(1)),
            ("top_verses(any)", lambda: repo.top_verses(ANY_GUILD)),
            ("get_verse", lambda: repo.get_verse(rng.choice(stored).id)),
        ]:
            lat = await timed(factory, 50)
            print(
                f"{name}: p50 {statistics.median(lat):.2f} ms, "
                f"p95 {sorted(lat)[int(0.95 * len(lat)) - 1]:.2f} ms"
            )
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verses", type=int, default=5000)
    parser.add_argument("--members", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.verses, args.members))

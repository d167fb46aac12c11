"""A bot wired to a real temporary database and the real GenerationService, over a fake
generator: fast, deterministic verses (no torch), one of them full of mentions."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bot.client import COGS, RGPT2Bot
from bot.services.container import BotServices
from bot.storage import Database, Repository
from rgpt2.verse import RapRequest, Verse
from rgpt2.worker import GenerationService

PING_TOPIC = "ping"
PING_BAR = "@everyone listen up <@123> and <@&456> @here"


class BotFakeGenerator:
    """Follows the Generator contract; verse text depends only on the request (and seed)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[RapRequest]] = []
        self.gate: threading.Event | None = None
        self._seeds = iter(range(1000, 10**9))
        self.versions = {"forward": "fwd-test", "reverse": "rev-test"}

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self.versions)

    def with_model(self, direction: str, path: str | Path) -> BotFakeGenerator:
        other = BotFakeGenerator(delay=self.delay)
        other.versions = {**self.versions, direction: Path(path).name}
        return other

    def generate(self, requests: Sequence[RapRequest]) -> list[Verse]:
        self.batches.append(list(requests))
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        return [self._verse(r) for r in requests]

    def _verse(self, request: RapRequest) -> Verse:
        seed = request.seed if request.seed is not None else next(self._seeds)
        word = request.topic or "mic"
        bars = [f"{word} number {i} with seed {seed} on the beat" for i in range(request.bars)]
        if request.topic == PING_TOPIC:
            bars[0] = PING_BAR
        if request.topic == "explicit":
            bars[0] = "this shit is hard and the bitch is mad"
        return Verse(
            bars=bars,
            topic=request.topic,
            scheme=request.scheme,
            seed=seed,
            rhyme_density=0.25 + (seed % 7) / 10,
            end_rhyme=0.5,
            rap_score=round(0.5 + (seed % 5) / 10, 2),
            model_versions=self.model_versions,
            sampling={**request.sampling(), "seed": seed},
        )


async def make_services(
    db_path: Path,
    generator: BotFakeGenerator | None = None,
    *,
    queue_size: int = 64,
    max_batch: int = 8,
    cooldown_seconds: float = 0.0,
    admin_ids: Sequence[int] = (),
    vote_seconds: float = 600.0,
    challenge_seconds: float = 300.0,
    lyrics_max_bytes: int = 4096,
    finetune: object = None,
) -> BotServices:
    db = await Database.open(db_path)
    generation = GenerationService(
        generator or BotFakeGenerator(), queue_size=queue_size, max_batch=max_batch
    )
    await generation.start()
    return BotServices.create(
        Repository(db),
        generation,
        cooldown_seconds=cooldown_seconds,
        admin_ids=admin_ids,
        vote_seconds=vote_seconds,
        challenge_seconds=challenge_seconds,
        lyrics_max_bytes=lyrics_max_bytes,
        finetune=finetune,
        db=db,
    )


def make_bot(services: BotServices, cogs: tuple[str, ...] = COGS) -> RGPT2Bot:
    return RGPT2Bot(services, sync="never", cogs=cogs)

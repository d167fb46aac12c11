"""A fake of :class:`rgpt2.generate.Generator` for service and bot tests (no torch).

It follows the Generator contract (``generate(requests) -> list[Verse]`` as one batch,
``with_model(direction, path)``, ``model_versions``) and records every batch it was given.
Tests can hold a batch (``gate``), make the next batch fail, or make ``with_model`` produce a
model that does not load (path containing "broken-load") or does not generate ("broken-gen").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from rgpt2.errors import ModelLoadError
from rgpt2.verse import RapRequest, Verse


class FakeGenerator:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        versions: dict[str, str] | None = None,
        broken: bool = False,
    ) -> None:
        self.delay = delay
        self.versions = dict(versions or {"forward": "fwd-1", "reverse": "rev-1"})
        self.broken = broken
        self.batches: list[list[RapRequest]] = []
        self.gate: threading.Event | None = None  # set to hold generate() until released
        self.entered = threading.Event()  # set when a batch starts
        self.fail_next: BaseException | None = None
        self.threads: set[str] = set()

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self.versions)

    def generate(self, requests: Sequence[RapRequest]) -> list[Verse]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(requests))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.broken:
            raise RuntimeError("this model writes nothing")
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if self.delay:
            time.sleep(self.delay)
        return [self._verse(r) for r in requests]

    def _verse(self, request: RapRequest) -> Verse:
        seed = request.seed if request.seed is not None else 7
        bars = [f"{request.topic or 'bar'} {seed} line {i}" for i in range(request.bars)]
        return Verse(
            bars=bars,
            topic=request.topic,
            scheme=request.scheme,
            seed=seed,
            rhyme_density=0.5,
            end_rhyme=0.5,
            model_versions=self.model_versions,
            sampling=request.sampling(),
        )

    def with_model(self, direction: str, path: str | Path) -> FakeGenerator:
        if "broken-load" in str(path):
            raise ModelLoadError(f"{path} is not a model directory")
        other = FakeGenerator(delay=self.delay, versions=self.versions)
        other.versions[direction] = Path(path).name
        other.broken = "broken-gen" in str(path)
        return other

"""The generation service: one worker thread owns the models and batches what is waiting.

Callers on an asyncio event loop ``await service.generate(request)`` (or ``submit`` a request
and get a :class:`Ticket` with a queue position). Requests wait in a bounded queue; the worker
thread takes everything waiting (up to ``max_batch``) and calls ``generator.generate(batch)``
once, so one two-stage forward pass serves the whole batch. A lone request is generated at
once: the worker never waits for a batch to fill. Results go back to the loop with
``loop.call_soon_threadsafe``, so torch never runs on the event loop.

This module is the one place in ``rgpt2`` that uses asyncio: it is the seam between the
synchronous torch library and the async bot. It never imports discord.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rgpt2.errors import RGPT2Error
from rgpt2.verse import RapRequest, Verse

log = logging.getLogger(__name__)


class ServiceBusy(RGPT2Error):
    """The queue is full: answered at once instead of queueing without bound."""


class ServiceStopped(RGPT2Error):
    """The service is not running (not started yet, or shutting down)."""


class RequestTimedOut(RGPT2Error):
    """A request waited and generated for longer than the service's request timeout."""


class GenerationFailed(RGPT2Error):
    """Generation raised for the batch this request was in; the service keeps serving."""


class SwapRefused(RGPT2Error):
    """A new model failed to load or to generate; the old one keeps serving."""


class GeneratorLike(Protocol):
    """What the service needs from :class:`rgpt2.generate.Generator`."""

    def generate(self, requests: Sequence[RapRequest]) -> list[Verse]: ...

    def with_model(self, direction: str, path: str | Path) -> GeneratorLike: ...

    @property
    def model_versions(self) -> dict[str, str]: ...


# the verse a new model must write before it may serve: short, seeded, the default scheme
PROBE_REQUEST = RapRequest(topic=None, bars=4, seed=0)


class Ticket:
    """One submitted request: await it for the :class:`Verse`, ask it for its queue position."""

    def __init__(
        self, service: GenerationService, request: RapRequest, future: asyncio.Future
    ) -> None:
        self.request = request
        self.submitted = time.perf_counter()
        self._service = service
        self._future: asyncio.Future[Verse] = future
        self._timer: asyncio.TimerHandle | None = None

    def position(self) -> int:
        """1 for the next request to be generated, 2 behind it, ...; 0 once generating or done."""
        return self._service._position(self)

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        """Drop the request; one still waiting in the queue is never generated."""
        cancelled = self._future.cancel()
        self._service._forget(self)  # now, not when the done-callback runs
        return cancelled

    async def result(self) -> Verse:
        return await self._future

    def __await__(self) -> Generator[Any, None, Verse]:
        return self._future.__await__()


@dataclass
class ServiceStats:
    """What the worker has done so far (read it from the event loop; it is only a snapshot)."""

    batches: int = 0
    verses: int = 0
    failed_batches: int = 0
    dropped: int = 0  # cancelled or timed out before the worker reached them
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)
    generate_seconds: float = 0.0

    @property
    def mean_batch(self) -> float:
        return self.verses / self.batches if self.batches else 0.0


class _Control:
    """Work for the worker thread that is not a batch (swap checks), run between batches."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


class GenerationService:
    """Bounded queue + one batching worker thread in front of a generator.

    ``queue_size`` bounds the requests waiting (not counting the batch being generated);
    ``max_batch`` bounds one ``generator.generate`` call; ``request_timeout`` (seconds,
    None for none) covers queueing and generation together.
    """

    def __init__(
        self,
        generator: GeneratorLike,
        *,
        queue_size: int = 64,
        max_batch: int = 16,
        request_timeout: float | None = 120.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if request_timeout is not None and request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive or None, not {request_timeout}")
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.request_timeout = request_timeout
        self.stats = ServiceStats()
        self._generator = generator
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque[Ticket] = collections.deque()
        self._controls: collections.deque[_Control] = collections.deque()
        self._running: list[Ticket] = []
        self._accepting = False
        self._stopping = False
        self._drain = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swap_lock: asyncio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def generator(self) -> GeneratorLike:
        """The generator serving now (replaced by :meth:`swap` between batches)."""
        return self._generator

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self._generator.model_versions)

    @property
    def running(self) -> bool:
        return self._accepting

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the generation service is already started")
        self._loop = asyncio.get_running_loop()
        self._swap_lock = asyncio.Lock()
        self._stopping = self._drain = False  # a stopped service may be started again
        self._accepting = True
        self._thread = threading.Thread(target=self._work, name="rgpt2-generation", daemon=True)
        self._thread.start()

    async def stop(self, *, drain: bool = False, timeout: float | None = 60.0) -> None:
        """Stop accepting; the batch being generated finishes and is delivered.

        Requests still queued are generated first with ``drain=True``; otherwise they fail
        at once with :class:`ServiceStopped`. If the worker does not finish within
        ``timeout`` seconds, whatever it is generating fails too.
        """
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            self._accepting = False
            self._stopping = True
            self._drain = drain
            dropped = [] if drain else list(self._pending)
            if not drain:
                self._pending.clear()
            controls = list(self._controls)
            self._controls.clear()
            self._wake.notify_all()
        for ticket in dropped:
            _fail(ticket, ServiceStopped("the verse generator is shutting down; try again later"))
        for control in controls:
            control.future.set_exception(ServiceStopped("the generation service stopped"))
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.error("generation worker still busy after %.0f s; failing its batch", timeout)
            with self._lock:
                stuck = list(self._running) + list(self._pending)
                self._pending.clear()
            for ticket in stuck:
                _fail(ticket, ServiceStopped("the verse generator was stopped mid-verse"))
        self._thread = None

    async def __aenter__(self) -> GenerationService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- requests ----------------------------------------------------------------------

    def submit(self, request: RapRequest) -> Ticket:
        """Queue ``request`` (already validated); :class:`ServiceBusy` if the queue is full.

        Must be called on the service's event loop.
        """
        loop = self._loop
        if loop is None or not self._accepting:
            raise ServiceStopped("the verse generator is not running right now; try again later")
        ticket = Ticket(self, request, loop.create_future())
        with self._lock:
            if len(self._pending) >= self.queue_size:
                raise ServiceBusy(
                    f"the verse generator is busy ({len(self._pending)} verses waiting); "
                    "try again in a moment"
                )
            self._pending.append(ticket)
            self._wake.notify()
        ticket._future.add_done_callback(lambda _f: self._forget(ticket))
        if self.request_timeout is not None:
            ticket._timer = loop.call_later(self.request_timeout, self._expire, ticket)
        return ticket

    async def generate(self, request: RapRequest) -> Verse:
        """Submit ``request`` and wait for its verse."""
        return await self.submit(request)

    def expected_wait(self, position: int) -> float | None:
        """Rough seconds until a request at queue ``position`` is written (None: no data yet).

        The batch in flight, then one batch per ``max_batch`` requests ahead, at the mean
        batch time so far.
        """
        if not self.stats.batches:
            return None
        per_batch = self.stats.generate_seconds / self.stats.batches
        return per_batch * (1 + -(-max(position, 1) // self.max_batch))

    def queue_length(self) -> int:
        with self._lock:
            return len(self._pending)

    def _position(self, ticket: Ticket) -> int:
        with self._lock:
            try:
                return self._pending.index(ticket) + 1
            except ValueError:
                return 0

    def _forget(self, ticket: Ticket) -> None:
        # runs on the loop when the future is done for any reason: a cancelled or timed-out
        # request leaves the queue here, so the worker never generates it
        if ticket._timer is not None:
            ticket._timer.cancel()
            ticket._timer = None
        with self._lock:
            try:
                self._pending.remove(ticket)
            except ValueError:
                return
            self.stats.dropped += 1

    def _expire(self, ticket: Ticket) -> None:
        _fail(
            ticket,
            RequestTimedOut(
                f"the verse took longer than {self.request_timeout:g} s; try again, "
                "perhaps with fewer bars"
            ),
        )

    # -- live swap ---------------------------------------------------------------------

    async def swap(self, direction: str, path: str | Path) -> dict[str, str]:
        """Serve the model at ``path`` for ``direction`` from the next batch on.

        The model loads in a helper thread (the worker keeps serving meanwhile), then must
        write a short verse before it replaces the old one, between two batches. Raises
        :class:`SwapRefused` (the old model keeps serving) if either step fails. Returns
        the new model versions.
        """
        if self._swap_lock is None or not self._accepting:
            raise ServiceStopped("the generation service is not running")
        async with self._swap_lock:
            current = self._generator
            try:
                candidate = await asyncio.to_thread(current.with_model, direction, path)
            except Exception as exc:
                raise SwapRefused(
                    f"refused the new {direction} model at {path}: it does not load ({exc})"
                ) from exc
            # the check runs on the worker thread, between batches: the worker alone runs the
            # models (the candidate shares the other direction's model with the current one)
            await self._on_worker(lambda: self._check_and_install(candidate, direction, path))
            log.info("now serving %s", candidate.model_versions)
            return dict(candidate.model_versions)

    def _check_and_install(
        self, candidate: GeneratorLike, direction: str, path: str | Path
    ) -> None:
        probe = PROBE_REQUEST.validated()
        try:
            verses = candidate.generate([probe])
        except Exception as exc:
            raise SwapRefused(
                f"refused the new {direction} model at {path}: it fails to generate "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if len(verses) != 1 or len(verses[0].bars) != probe.bars or not verses[0].text.strip():
            got = [len(v.bars) for v in verses]
            raise SwapRefused(
                f"refused the new {direction} model at {path}: asked for one {probe.bars}-bar "
                f"verse, it wrote {len(verses)} verse(s) with {got} bars"
            )
        self._generator = candidate

    async def _on_worker(self, fn: Callable[[], Any]) -> Any:
        control = _Control(fn)
        with self._lock:
            if not self._accepting:
                raise ServiceStopped("the generation service is not running")
            self._controls.append(control)
            self._wake.notify()
        return await asyncio.wrap_future(control.future)

    # -- the worker thread -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not (self._pending or self._controls or self._stopping):
                    self._wake.wait()
                if self._controls:
                    control: _Control | None = self._controls.popleft()
                    batch: list[Ticket] = []
                elif self._pending and (self._drain or not self._stopping):
                    control = None
                    batch = []
                    while self._pending and len(batch) < self.max_batch:
                        ticket = self._pending.popleft()
                        # timed out or cancelled by a task whose done-callback has not run
                        # yet (reading a future's state from this thread is only a peek)
                        if ticket._future.done():
                            self.stats.dropped += 1
                        else:
                            batch.append(ticket)
                    if not batch:
                        continue
                    self._running = batch
                else:
                    return
            if control is not None:
                try:
                    control.future.set_result(control.fn())
                except BaseException as exc:  # handed back to the awaiting swap()
                    control.future.set_exception(exc)
                continue
            self._run_batch(batch)

    def _run_batch(self, batch: list[Ticket]) -> None:
        generator = self._generator  # a swap lands between batches, never inside one
        started = time.perf_counter()
        outcome: list[Verse] | BaseException
        try:
            outcome = generator.generate([t.request for t in batch])
            if len(outcome) != len(batch):
                raise RuntimeError(f"the generator returned {len(outcome)} verses for {len(batch)}")
        except MemoryError as exc:
            log.error("generation ran out of memory on a batch of %d", len(batch))
            outcome = GenerationFailed(
                "the verse generator ran out of memory; try again with fewer bars"
            )
            outcome.__cause__ = exc
        except Exception as exc:
            log.exception("generation failed on a batch of %d", len(batch))
            if "OutOfMemory" in type(exc).__name__:
                message = "the verse generator ran out of memory; try again with fewer bars"
            else:
                message = f"the verse generator failed ({type(exc).__name__}); try again"
            outcome = GenerationFailed(message)
            outcome.__cause__ = exc
        elapsed = time.perf_counter() - started
        with self._lock:
            self._running = []
            self.stats.batches += 1
            self.stats.batch_sizes[len(batch)] += 1
            self.stats.generate_seconds += elapsed
            if isinstance(outcome, BaseException):
                self.stats.failed_batches += 1
            else:
                self.stats.verses += len(batch)
        settled = threading.Event()
        try:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._deliver, batch, outcome, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return
        # Let the loop run the woken callers before taking the next batch: a caller that
        # resubmits right away then joins the next batch instead of trailing it alone.
        # Bounded, so a busy loop never stalls the worker.
        settled.wait(0.02)

    def _deliver(
        self, batch: list[Ticket], outcome: list[Verse] | BaseException, settled: threading.Event
    ) -> None:
        for i, ticket in enumerate(batch):
            if ticket._future.done():  # cancelled or timed out while generating
                continue
            if isinstance(outcome, BaseException):
                ticket._future.set_exception(outcome)
            else:
                ticket._future.set_result(outcome[i])
        # two loop iterations: the first runs the callers woken above, the second signals
        assert self._loop is not None
        self._loop.call_soon(self._loop.call_soon, settled.set)


def _fail(ticket: Ticket, error: BaseException) -> None:
    if not ticket._future.done():
        ticket._future.set_exception(error)


class LoopLagProbe:
    """Measures how late the event loop wakes a sleeping task: its worst stall.

    ``async with LoopLagProbe() as probe: ...`` then read ``probe.max_lag_ms``. A loop
    blocked by model work shows as lag of the blocking time; a free loop stays at about
    a millisecond. A stall is seen to within about ``interval``. The probe is not free:
    every wake-up takes the GIL from the worker thread, and on a loaded 2-core machine
    probing every 5 ms slowed generation at concurrency 1 by 15-25 %, every 20 ms by
    1-3 % (measured with requests rotated between probe, no probe and no service).
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.max_lag_ms = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        return self.max_lag_ms

    def reset(self) -> None:
        self.max_lag_ms = 0.0
        self.samples = 0

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - before - self.interval
            self.samples += 1
            self.max_lag_ms = max(self.max_lag_ms, lag * 1000.0)

    async def __aenter__(self) -> LoopLagProbe:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

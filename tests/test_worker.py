"""GenerationService on a fake generator: batching, backpressure, cancellation, failures, swap."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fake_generator import FakeGenerator

from rgpt2.verse import RapRequest
from rgpt2.worker import (
    GenerationFailed,
    GenerationService,
    LoopLagProbe,
    RequestTimedOut,
    ServiceBusy,
    ServiceStopped,
    SwapRefused,
)


def req(seed: int, **kw) -> RapRequest:
    return RapRequest(seed=seed, bars=4, **kw).validated()


async def wait_entered(gen: FakeGenerator, count: int) -> None:
    """Wait (off the loop) until the worker has started ``count`` batches."""
    for _ in range(1000):
        if len(gen.batches) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"worker started {len(gen.batches)} batches, expected {count}")


@pytest.fixture
def gated() -> FakeGenerator:
    gen = FakeGenerator()
    gen.gate = threading.Event()
    return gen


async def test_lone_request_runs_at_once_and_waiting_requests_share_one_batch(gated):
    async with GenerationService(gated, max_batch=16) as service:
        first = service.submit(req(0))
        await wait_entered(gated, 1)  # generated alone: it did not wait for company
        later = [service.submit(req(i)) for i in range(1, 6)]
        assert [t.position() for t in later] == [1, 2, 3, 4, 5]
        assert first.position() == 0
        gated.gate.set()
        verses = [await first] + [await t for t in later]
    assert [len(b) for b in gated.batches] == [1, 5]
    assert [v.seed for v in verses] == list(range(6))  # each caller gets its own verse
    assert service.stats.batch_sizes == {1: 1, 5: 1}
    assert gated.threads == {"rgpt2-generation"}  # never on the event loop's thread


async def test_max_batch_bounds_one_generate_call(gated):
    async with GenerationService(gated, max_batch=3) as service:
        tickets = [service.submit(req(0))]
        await wait_entered(gated, 1)
        tickets += [service.submit(req(i)) for i in range(1, 8)]
        gated.gate.set()
        await asyncio.gather(*(t.result() for t in tickets))
    assert [len(b) for b in gated.batches] == [1, 3, 3, 1]


async def test_full_queue_answers_busy_at_once(gated):
    async with GenerationService(gated, queue_size=2) as service:
        running = service.submit(req(0))
        await wait_entered(gated, 1)
        queued = [service.submit(req(1)), service.submit(req(2))]
        with pytest.raises(ServiceBusy, match="busy.*try again in a moment"):
            service.submit(req(3))
        gated.gate.set()
        await running
        await asyncio.gather(*(t.result() for t in queued))
        # room again once the queue drained
        assert (await service.generate(req(4))).seed == 4


async def test_cancelled_request_is_never_generated(gated):
    async with GenerationService(gated) as service:
        running = service.submit(req(0))
        await wait_entered(gated, 1)
        dropped = service.submit(req(1))
        kept = service.submit(req(2))
        task = asyncio.create_task(service.generate(req(3)))
        await asyncio.sleep(0)
        assert dropped.cancel()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert kept.position() == 1
        gated.gate.set()
        await running
        assert (await kept).seed == 2
        with pytest.raises(asyncio.CancelledError):
            await dropped
    seeds = [r.seed for b in gated.batches for r in b]
    assert seeds == [0, 2]
    assert service.stats.dropped == 2


async def test_request_timeout_covers_queue_and_generation(gated):
    async with GenerationService(gated, request_timeout=0.2) as service:
        running = service.submit(req(0))
        await wait_entered(gated, 1)
        queued = service.submit(req(1))
        with pytest.raises(RequestTimedOut, match="took longer than 0.2 s"):
            await running
        with pytest.raises(RequestTimedOut):
            await queued
        gated.gate.set()
        assert (await service.generate(req(2))).seed == 2
    assert [r.seed for b in gated.batches for r in b] == [0, 2]


@pytest.mark.parametrize(
    "error, message",
    [(RuntimeError("boom"), "failed \\(RuntimeError\\)"), (MemoryError(), "out of memory")],
)
async def test_generation_error_fails_only_its_batch(gated, error, message):
    async with GenerationService(gated) as service:
        gated.fail_next = error
        first = service.submit(req(0))
        await wait_entered(gated, 1)
        second = [service.submit(req(1)), service.submit(req(2))]
        gated.gate.set()
        with pytest.raises(GenerationFailed, match=message):
            await first
        assert [(await t).seed for t in second] == [1, 2]
        assert (await service.generate(req(3))).seed == 3
    assert service.stats.failed_batches == 1


async def test_swap_refuses_a_model_that_does_not_load_or_generate():
    gen = FakeGenerator()
    async with GenerationService(gen) as service:
        with pytest.raises(SwapRefused, match="does not load"):
            await service.swap("reverse", "/models/broken-load")
        with pytest.raises(SwapRefused, match="fails to generate"):
            await service.swap("reverse", "/models/broken-gen")
        assert service.generator is gen
        verse = await service.generate(req(1))
        assert verse.model_versions == {"forward": "fwd-1", "reverse": "rev-1"}


async def test_swap_lands_between_batches(gated):
    async with GenerationService(gated) as service:
        old_batch = service.submit(req(0))
        await wait_entered(gated, 1)
        swapping = asyncio.create_task(service.swap("reverse", "/models/rev-2"))
        await asyncio.sleep(0.05)
        assert not swapping.done()  # the check waits for the batch in flight
        gated.gate.set()
        assert (await old_batch).model_versions["reverse"] == "rev-1"
        assert await swapping == {"forward": "fwd-1", "reverse": "rev-2"}
        assert (await service.generate(req(1))).model_versions["reverse"] == "rev-2"
        assert service.model_versions["reverse"] == "rev-2"


async def test_stop_finishes_the_running_batch_and_fails_the_queue(gated):
    service = GenerationService(gated)
    await service.start()
    running = service.submit(req(0))
    await wait_entered(gated, 1)
    queued = service.submit(req(1))
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceStopped, match="shutting down"):
        await queued
    gated.gate.set()
    await stopping
    assert (await running).seed == 0
    with pytest.raises(ServiceStopped):
        service.submit(req(2))


async def test_stop_with_drain_generates_everything_queued(gated):
    service = GenerationService(gated)
    await service.start()
    tickets = [service.submit(req(0))]
    await wait_entered(gated, 1)
    tickets += [service.submit(req(i)) for i in (1, 2)]
    gated.gate.set()
    await service.stop(drain=True)
    assert [(await t).seed for t in tickets] == [0, 1, 2]


async def test_loop_stays_free_while_the_worker_generates():
    # the probe itself: a loop blocked on purpose shows the block
    async with LoopLagProbe(interval=0.002) as probe:
        await asyncio.sleep(0.01)
        time.sleep(0.2)
        await asyncio.sleep(0.01)
    assert probe.max_lag_ms >= 150
    # the worker sleeping 0.3 s per batch never holds the loop for that long
    gen = FakeGenerator(delay=0.3)
    async with GenerationService(gen) as service, LoopLagProbe(interval=0.002) as probe:
        await asyncio.gather(*(service.generate(req(i)) for i in range(3)))
    assert probe.samples > 50
    assert probe.max_lag_ms < 150


async def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="queue_size"):
        GenerationService(FakeGenerator(), queue_size=0)
    with pytest.raises(ValueError, match="max_batch"):
        GenerationService(FakeGenerator(), max_batch=0)
    with pytest.raises(ServiceStopped):
        GenerationService(FakeGenerator()).submit(req(0))


# -- the real Generator on tiny models ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from conftest import TINY_VERSES

    from rgpt2.bench import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("models"), TINY_VERSES)


async def test_real_generator_one_forward_pass_serves_the_waiting_requests(tiny_models):
    from rgpt2.generate import Generator

    generator = Generator.load(*tiny_models)
    rows_seen: list[int] = []
    entered, gate = threading.Event(), threading.Event()

    def count_rows(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows_seen.append(int(ids.shape[0]))
        if not gate.is_set():  # hold the first batch until the others are queued
            entered.set()
            gate.wait(10)

    hooks = [
        lm.model.register_forward_pre_hook(count_rows, with_kwargs=True)
        for lm in (generator.forward, generator.reverse)
    ]
    try:
        async with GenerationService(generator, max_batch=8) as service:
            first = service.submit(req(0))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            rest = [service.submit(req(i, topic="money")) for i in range(1, 6)]
            gate.set()
            verses = [await first] + [await t for t in rest]
    finally:
        for hook in hooks:
            hook.remove()
    assert service.stats.batch_sizes == {1: 1, 5: 1}
    # the lone request's forward calls carried 1 row, then the second batch's calls carried
    # all five rows at once (one forward pass per step for five verses); a row leaves the
    # batch when its stage is done, so only the reverse stage's start can add rows again
    ones = rows_seen.index(5)
    later = rows_seen[ones:]
    assert ones > 0 and rows_seen[:ones] == [1] * ones
    assert set(later) <= {1, 2, 3, 4, 5}
    assert sum(b > a for a, b in zip(later[:-1], later[1:], strict=True)) <= 1
    assert [v.seed for v in verses] == list(range(6))
    assert all(len(v.bars) == 4 for v in verses)


async def test_real_swap_refuses_unloadable_and_nan_models(tiny_models, tmp_path):
    import shutil

    import torch

    from rgpt2.generate import Generator
    from rgpt2.modeldir import load_model_dir, save_model_dir

    fwd, rev = tiny_models
    corrupt = tmp_path / "corrupt"
    shutil.copytree(rev, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    model, tokenizer, meta = load_model_dir(rev)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    meta.version = "nan-weights"
    nan_dir = save_model_dir(model, tokenizer, meta, tmp_path / "nan")

    async with GenerationService(Generator.load(fwd, rev)) as service:
        before = service.model_versions
        with pytest.raises(SwapRefused, match="does not load.*corrupt"):
            await service.swap("reverse", corrupt)
        with pytest.raises(SwapRefused, match="fails to generate"):
            await service.swap("reverse", nan_dir)
        with pytest.raises(SwapRefused, match="does not load"):
            await service.swap("reverse", fwd)  # a forward model where a reverse one goes
        assert service.model_versions == before
        assert len((await service.generate(req(1))).bars) == 4
        # a good model does go live
        assert (await service.swap("reverse", rev))["reverse"] == before["reverse"]


async def test_a_stopped_service_can_start_again():
    service = GenerationService(FakeGenerator())
    await service.start()
    assert (await service.generate(req(1))).seed == 1
    await service.stop()
    await service.start()
    assert (await service.generate(req(2))).seed == 2
    await service.stop()


async def test_expected_wait_grows_with_the_queue_position():
    gen = FakeGenerator(delay=0.05)
    async with GenerationService(gen, max_batch=2) as service:
        assert service.expected_wait(1) is None  # nothing measured yet
        await service.generate(req(0))
        one_batch = service.stats.generate_seconds
        assert service.expected_wait(1) == pytest.approx(2 * one_batch)
        assert service.expected_wait(2) == pytest.approx(2 * one_batch)
        assert service.expected_wait(3) == pytest.approx(3 * one_batch)

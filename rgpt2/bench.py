"""``rgpt2 bench``: the generation service against the naive one-request-at-a-time baseline.

Same models, same requests, one run: (a) naive, each request generated alone, one after
another (the seed notebook's pipeline way: batch of 1, no service); (b) the service with N
concurrent callers. Reports verses/s, p50/p95 latency and the event loop's worst lag, and
optionally the same while a low-priority fine-tune child trains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rgpt2.verse import RapRequest, Verse
from rgpt2.worker import GenerationService, GeneratorLike, LoopLagProbe

# made-up verses for --tiny models (a tokenizer needs some text; never real lyrics)
TINY_CORPUS: tuple[tuple[str, ...], ...] = (
    (
        "the night is cold and the road is long",
        "I keep my head up and I stay strong",
        "the beat is loud and the crowd is near",
        "I came to say what you came to hear",
    ),
    (
        "money on my mind and time on my side",
        "I never had a map but I had my pride",
        "the city never sleeps and neither do I",
        "I write it all down and I let it fly",
    ),
    (
        "rolling with my crew through the summer rain",
        "every single verse is a window pane",
        "nothing in my pocket but a dream and a pen",
        "I will do it all over again",
    ),
)
TOPICS = (None, "money", "the city", "my crew", None, "late nights", "the come up", None)


def make_requests(count: int, bars: int, seed: int = 1000) -> list[RapRequest]:
    """``count`` different seeded requests (a mix of topics and schemes)."""
    schemes = ("AABB", "ABAB", "AABB", "free")
    return [
        RapRequest(
            topic=TOPICS[i % len(TOPICS)],
            bars=bars,
            scheme=schemes[i % len(schemes)],
            seed=seed + i,
        ).validated()
        for i in range(count)
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Tally:
    """Latencies and wall time of one configuration, summed over rounds."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    max_lag_ms: float | None = None
    batches: int = 0
    verses: int = 0

    def add(self, other: Tally) -> None:
        self.latencies += other.latencies
        self.wall += other.wall
        self.batches += other.batches
        self.verses += other.verses
        if other.max_lag_ms is not None:
            self.max_lag_ms = max(self.max_lag_ms or 0.0, other.max_lag_ms)

    def figures(self) -> dict[str, float]:
        out = {
            "verses_per_s": round(len(self.latencies) / self.wall, 3) if self.wall else 0.0,
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(self.latencies, 95) * 1000, 1),
        }
        if self.max_lag_ms is not None:
            out["max_loop_lag_ms"] = round(self.max_lag_ms, 1)
            out["mean_batch"] = round(self.verses / self.batches, 2) if self.batches else 0.0
        return out


def run_naive(
    generator: GeneratorLike, requests: Sequence[RapRequest], written: list[Verse] | None = None
) -> Tally:
    """Each request alone, one after another: no service, no batching.

    It runs in a helper thread like the service's worker, because torch's CPU thread pool
    behaves differently on the main thread (on a loaded machine its OpenMP team can be
    several times slower there): the comparison is then about batching, not threads.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="naive") as pool:
        return pool.submit(_naive, generator, requests, written).result()


def _naive(
    generator: GeneratorLike, requests: Sequence[RapRequest], written: list[Verse] | None
) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    for request in requests:
        t0 = time.perf_counter()
        verses = generator.generate([request])
        tally.latencies.append(time.perf_counter() - t0)
        if written is not None:
            written.extend(verses)
    tally.wall = time.perf_counter() - start
    return tally


async def run_service(
    service: GenerationService,
    requests: Sequence[RapRequest],
    concurrency: int,
    lag_interval: float = 0.02,
) -> Tally:
    """``concurrency`` callers, each awaiting one verse at a time until all are written."""
    pending = list(reversed(requests))
    tally = Tally()

    async def caller() -> None:
        while pending:
            request = pending.pop()
            t0 = time.perf_counter()
            await service.generate(request)
            tally.latencies.append(time.perf_counter() - t0)

    before = service.stats.batches, service.stats.verses
    async with LoopLagProbe(lag_interval) as probe:
        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        tally.wall = time.perf_counter() - start
    tally.max_lag_ms = probe.max_lag_ms
    tally.batches = service.stats.batches - before[0]
    tally.verses = service.stats.verses - before[1]
    return tally


async def bench_service(
    generator: GeneratorLike,
    requests: Sequence[RapRequest],
    concurrencies: Sequence[int],
    *,
    max_batch: int = 16,
    background: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    tallies: dict[str, Tally] | None = None,
    lag_interval: float = 0.02,
) -> dict[str, Any]:
    """The service at each concurrency (inside ``background()``, e.g. a fine-tune child).

    Returns the figures per concurrency; with ``tallies``, also adds the raw measurements
    there (so rounds can be combined).
    """
    tallies = {} if tallies is None else tallies
    results: dict[str, Any] = {}
    service = GenerationService(
        generator, queue_size=max(64, max(concurrencies)), max_batch=max_batch, request_timeout=None
    )
    async with service:
        ctx = background() if background is not None else contextlib.nullcontext()
        async with ctx as info:
            for c in concurrencies:
                tally = await run_service(service, requests, c, lag_interval)
                tallies.setdefault(str(c), Tally()).add(tally)
                results[str(c)] = tally.figures()
        if isinstance(info, dict):  # complete only now that the background has ended
            results["background"] = info
    return results


async def paired_latency(
    generator: GeneratorLike, requests: Sequence[RapRequest], max_batch: int = 16
) -> dict[str, float]:
    """Each request twice, back to back: alone in a helper thread, then through the service.

    Pairs see the same machine load, so the median ratio (service / naive) measures the
    service's own overhead at concurrency 1 even when the load drifts between rounds. No
    loop-lag probe runs here: its wake-ups cost the worker a few per cent on a loaded
    machine (measured 3-9 % at concurrency 1), which the rounds' figures include.
    """
    naive: list[float] = []
    served: list[float] = []
    async with GenerationService(generator, max_batch=max_batch, request_timeout=None) as service:

        async def alone(request: RapRequest) -> None:
            t0 = time.perf_counter()
            await asyncio.to_thread(generator.generate, [request])
            naive.append(time.perf_counter() - t0)

        async def through_service(request: RapRequest) -> None:
            t0 = time.perf_counter()
            await service.generate(request)
            served.append(time.perf_counter() - t0)

        for i, request in enumerate(requests):
            # alternate which goes first: the second run of a request may find warmer caches
            first, second = (alone, through_service) if i % 2 == 0 else (through_service, alone)
            await first(request)
            await second(request)
    ratios = [s / n for s, n in zip(served, naive, strict=True)]
    return {
        "pairs": len(ratios),
        "naive_p50_ms": round(percentile(naive, 50) * 1000, 1),
        "service_p50_ms": round(percentile(served, 50) * 1000, 1),
        "median_ratio": round(percentile(ratios, 50), 3),
    }


def warm_up(generator: GeneratorLike, bars: int, largest_batch: int) -> None:
    """First calls (and first batch shapes) pay for lazy initialisation: not measured."""
    generator.generate(make_requests(1, bars, seed=1))
    generator.generate(make_requests(largest_batch, bars, seed=2))
    generator.generate(make_requests(1, bars, seed=3))


@contextlib.asynccontextmanager
async def finetune_child(
    init_from: str | Path, data: Sequence[str | Path], workdir: str | Path
) -> AsyncIterator[dict[str, Any]]:
    """A fine-tune child (the fine-tune jobs' exact command and priority) for the duration.

    Yields a dict that says, when the block ends, whether the child was still training
    throughout (``running_throughout``) and how many progress records it wrote.
    """
    from rgpt2.childproc import follow_jsonl, spawn_rgpt2, terminate, train_args

    work = Path(workdir)
    progress = work / "progress.jsonl"
    args = train_args(
        init_from=init_from, data=data, out=work / "model", progress=progress, epochs=1000
    )
    proc = await spawn_rgpt2(args, log_file=work / "train.log")
    info: dict[str, Any] = {"pid": proc.pid, "records": 0}

    async def count() -> None:
        async for _ in follow_jsonl(progress, proc):
            info["records"] += 1

    counter = asyncio.create_task(count())
    # wait until it really trains (its first progress record), so the lag is measured under load
    for _ in range(600):
        if info["records"] or proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    try:
        yield info
    finally:
        info["running_throughout"] = proc.returncode is None and info["records"] > 0
        code = await terminate(proc)
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counter
        info["exit_code"] = code


def build_tiny_models(out_dir: str | Path, verses: Sequence[Sequence[str]]) -> tuple[Path, Path]:
    """Random-weight tiny forward and reverse models (2 layers, width 64) sharing a tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from rgpt2.modeldir import ModelMeta, save_model_dir
    from rgpt2.tokenizer import train_tokenizer
    from rgpt2.tokens import DIRECTIONS, verse_to_text

    texts = [verse_to_text(v, d) for v in verses for d in DIRECTIONS]
    tokenizer = train_tokenizer(texts, vocab_size=400, min_frequency=1)
    paths = []
    for i, direction in enumerate(DIRECTIONS):
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=256,
            n_embd=64,
            n_layer=2,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        import torch

        torch.manual_seed(i)
        model = GPT2LMHeadModel(config)
        meta = ModelMeta(
            direction=direction,
            version=f"tiny-{direction}-0",
            corpus_fingerprint="tiny",
            steps=0,
            best_val_ppl=None,
        )
        paths.append(save_model_dir(model, tokenizer, meta, Path(out_dir) / direction))
    return paths[0], paths[1]


def format_table(result: dict[str, Any]) -> str:
    rows = [("naive (batch of 1)", result["naive"], None)]
    for key, figs in result["service"].items():
        if key != "background":
            rows.append((f"service, {key} callers", figs, figs.get("max_loop_lag_ms")))
    for key, figs in result.get("service_during_finetune", {}).items():
        if key != "background":
            rows.append((f"+ fine-tune, {key} callers", figs, figs.get("max_loop_lag_ms")))
    naive = result["naive"]["verses_per_s"]
    lines = [
        f"{'run':<26} {'verses/s':>9} {'x naive':>8} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'batch':>6} {'loop lag ms':>12}"
    ]
    for name, figs, lag in rows:
        speedup = figs["verses_per_s"] / naive if naive else float("nan")
        lines.append(
            f"{name:<26} {figs['verses_per_s']:>9.2f} {speedup:>8.2f} {figs['p50_ms']:>9.0f} "
            f"{figs['p95_ms']:>9.0f} {figs.get('mean_batch', 1.0):>6.1f} "
            f"{'-' if lag is None else f'{lag:.1f}':>12}"
        )
    paired = result.get("c1_vs_naive_paired")
    if paired:
        lines.append(
            f"paired, request by request: service at concurrency 1 takes "
            f"{paired['median_ratio']:.2f}x the naive time (median of {paired['pairs']} pairs)"
        )
    return "\n".join(lines)


def run_all(
    generator: GeneratorLike,
    *,
    requests: int,
    bars: int,
    concurrencies: Sequence[int],
    max_batch: int = 16,
    rounds: int = 2,
    finetune_from: str | Path | None = None,
    finetune_data: Sequence[str | Path] = (),
    finetune_concurrency: int = 8,
    lag_interval: float = 0.02,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """The whole benchmark, as the JSON object ``rgpt2 bench --json`` prints.

    Each round runs the naive baseline and then the service at every concurrency on the
    same requests; figures combine the rounds, so neither side always runs first on a
    machine whose load drifts.
    """
    work = make_requests(requests, bars)
    progress("warming up")
    warm_up(generator, bars, min(max_batch, max(concurrencies)))
    naive = Tally()
    service: dict[str, Tally] = {}
    written: list[Verse] = []
    for r in range(1, rounds + 1):
        progress(f"round {r}/{rounds}: naive, {len(work)} requests one at a time")
        naive.add(run_naive(generator, work, written if r == 1 else None))
        progress(f"round {r}/{rounds}: service at concurrency {', '.join(map(str, concurrencies))}")
        asyncio.run(
            bench_service(
                generator,
                work,
                concurrencies,
                max_batch=max_batch,
                tallies=service,
                lag_interval=lag_interval,
            )
        )
    progress("concurrency 1 against naive, request by request")
    paired = asyncio.run(paired_latency(generator, work, max_batch))
    result: dict[str, Any] = {
        "requests": len(work),
        "bars": bars,
        "rounds": rounds,
        "max_batch": max_batch,
        "lag_interval_ms": round(lag_interval * 1000, 1),
        "naive": naive.figures(),
        "service": {c: service[str(c)].figures() for c in map(str, concurrencies)},
        "c1_vs_naive_paired": paired,
    }
    if finetune_from is not None:
        with tempfile.TemporaryDirectory(prefix="rgpt2-bench-ft-") as tmp:
            data = list(finetune_data)
            if not data:  # no corpus given: the child trains on verses the models just wrote
                file = Path(tmp) / "verses.txt"
                file.write_text("\n\n".join(v.text for v in written) + "\n", encoding="utf-8")
                data = [file]
            progress(
                f"service at concurrency {finetune_concurrency} while a fine-tune child trains"
            )
            result["service_during_finetune"] = asyncio.run(
                bench_service(
                    generator,
                    work,
                    [finetune_concurrency],
                    max_batch=max_batch,
                    background=lambda: finetune_child(finetune_from, data, tmp),
                    lag_interval=lag_interval,
                )
            )
    return result

"""`rgpt2 bench`: the measuring machinery on a fake generator, the command on tiny models."""

from __future__ import annotations

import json

import pytest
from fake_generator import FakeGenerator

from rgpt2.bench import (
    bench_service,
    finetune_child,
    format_table,
    make_requests,
    percentile,
    run_all,
    run_naive,
)
from rgpt2.cli import main


def test_percentile_interpolates():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert percentile([5.0], 95) == 5.0


def test_requests_are_seeded_and_distinct():
    first, again = make_requests(8, 6), make_requests(8, 6)
    assert first == again
    assert len({r.seed for r in first}) == 8 and all(r.bars == 6 for r in first)


def test_service_batches_concurrent_callers_and_naive_does_not():
    gen = FakeGenerator(delay=0.03)
    result = run_all(gen, requests=16, bars=4, concurrencies=[1, 8], rounds=1)
    sizes = [len(b) for b in gen.batches]
    assert sizes[:3] == [1, 8, 1]  # warm-up
    assert sizes[3:19] == [1] * 16  # naive: one request per call
    service = result["service"]
    assert service["1"]["mean_batch"] == 1.0
    # 8 callers on a generator that takes as long for 8 verses as for 1: batches form
    assert service["8"]["mean_batch"] > 2
    assert service["8"]["verses_per_s"] > 2 * result["naive"]["verses_per_s"]
    for figs in service.values():
        assert figs["p50_ms"] <= figs["p95_ms"]
        assert figs["max_loop_lag_ms"] >= 0
    served = sum(len(b) for b in gen.batches)
    # warm-up, naive, each service run and the paired run (16 twice): nothing lost
    assert served == 10 + 16 * 2 + 16 * 3
    paired = result["c1_vs_naive_paired"]
    assert paired["pairs"] == 16 and paired["median_ratio"] > 0
    table = format_table(result)
    assert "naive (batch of 1)" in table and "service, 8 callers" in table


def test_naive_generates_one_request_per_call():
    gen = FakeGenerator()
    written: list = []
    tally = run_naive(gen, make_requests(5, 4), written)
    assert [len(b) for b in gen.batches] == [1] * 5
    assert [v.seed for v in written] == [r.seed for r in make_requests(5, 4)]
    assert len(tally.latencies) == 5 and tally.figures()["verses_per_s"] > 0
    assert "max_loop_lag_ms" not in tally.figures()  # no event loop in the naive run


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from conftest import TINY_VERSES

    from rgpt2.bench import build_tiny_models

    root = tmp_path_factory.mktemp("models")
    build_tiny_models(root, TINY_VERSES)
    return root


def test_bench_command_json_on_tiny_models(tiny_models, capsys):
    args = [
        "bench",
        "--models",
        str(tiny_models),
        "--requests",
        "4",
        "--bars",
        "4",
        "--rounds",
        "1",
    ]
    assert main([*args, "--concurrency", "1,2", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["naive"]) == {"verses_per_s", "p50_ms", "p95_ms"}
    assert set(result["service"]) == {"1", "2"}
    for figs in result["service"].values():
        assert {"verses_per_s", "p50_ms", "p95_ms", "max_loop_lag_ms"} <= set(figs)
        assert figs["verses_per_s"] > 0 and figs["p50_ms"] > 0
    assert result["models"]["reverse"] == str(tiny_models / "reverse")


async def test_service_measured_while_a_real_finetune_child_trains(tiny_models, tmp_path):
    from conftest import TINY_VERSES

    data = tmp_path / "lyrics.txt"
    data.write_text("\n\n".join("\n".join(v) for v in TINY_VERSES * 3) + "\n")
    result = await bench_service(
        FakeGenerator(delay=0.02),
        make_requests(16, 4),
        [4],
        background=lambda: finetune_child(tiny_models / "reverse", [data], tmp_path),
    )
    info = result["background"]
    assert info["records"] > 0  # the child was training while the service was measured
    assert info["running_throughout"] and info["exit_code"] != 0  # stopped by the bench
    assert result["4"]["verses_per_s"] > 0 and result["4"]["max_loop_lag_ms"] >= 0


def test_bench_command_needs_models(capsys):
    assert main(["bench"]) == 2
    assert "--models DIR" in capsys.readouterr().err

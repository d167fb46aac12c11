"""Fine-tune jobs end to end on tiny models: a real `rgpt2 train` child, a real database."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import pytest

from bot.services.finetune import FinetuneError, FinetuneJobs, FinetuneSettings
from bot.services.model_store import ModelStore, NothingToRollBack
from bot.storage import Database, Repository
from rgpt2.bench import build_tiny_models
from rgpt2.generate import Generator
from rgpt2.verse import RapRequest
from rgpt2.worker import GenerationService

WORDS = "money night city crew street flow gold chain crowd beat light show dream pen rain".split()


def made_up_verses(count: int, seed: int = 0) -> list[list[str]]:
    rnd = random.Random(seed)
    return [
        [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 7))) for _ in range(4)]
        for _ in range(count)
    ]


def seed_format(verses: list[list[str]]) -> str:
    return "\n\n".join("\n".join(v) for v in verses) + "\n"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    from conftest import TINY_VERSES

    base = tmp_path_factory.mktemp("models")
    return build_tiny_models(base, TINY_VERSES + made_up_verses(20, seed=9))


@pytest.fixture
async def env(tmp_path, tiny_models):
    fwd, rev = tiny_models
    db = await Database.open(tmp_path / "bot.sqlite3")
    repo = Repository(db)
    service = GenerationService(Generator.load(fwd, rev), max_batch=4)
    await service.start()
    store = ModelStore(tmp_path / "store", {"forward": fwd, "reverse": rev})
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(seed_format(made_up_verses(12, seed=5)))
    settings = FinetuneSettings(
        work_dir=tmp_path / "jobs",
        heldout=[heldout],
        rhyme_verses=2,
        # a random tiny model: a high learning rate makes one short epoch measurably better
        extra_train_args=("--lr", "1e-2", "--seed", "1"),
        progress_interval=0.0,
    )
    jobs = FinetuneJobs(repo, service, store, settings)
    yield jobs
    await jobs.close()
    await service.stop()
    await db.close()


async def test_successful_job_swaps_the_reverse_model_and_marks_the_lyrics_used(env):
    jobs: FinetuneJobs = env
    repo, service = jobs.repo, jobs.service
    lyrics = [await repo.add_lyrics(7, seed_format(made_up_verses(30, seed=s))) for s in (1, 2)]
    before = service.model_versions
    seen: list[tuple[str, float]] = []
    job = await jobs.start(
        None, 1, started_by=7, guild=None, on_progress=lambda j: seen.append((j.state, j.progress))
    )
    assert job.state == "running"
    with pytest.raises(FinetuneError, match="already running"):
        await jobs.start(None, 1, started_by=7)
    done = await jobs.wait()

    assert done.state == "succeeded", done.error
    assert done.swapped and done.model_path
    comparison = done.metrics["comparison"]
    assert comparison["candidate"]["ppl"] < comparison["current"]["ppl"]
    assert "rhyme_density" in comparison["candidate"]
    # the new model is serving, from the store, and the old one is kept for rollback
    assert jobs.store.current("reverse") == Path(done.model_path)
    assert service.model_versions["reverse"] != before["reverse"]
    assert service.model_versions["forward"] == before["forward"]
    verse = await service.generate(RapRequest(bars=4, seed=3).validated())
    assert verse.model_versions["reverse"] == service.model_versions["reverse"]
    for item in lyrics:
        stored = await repo.get_lyrics(item.id)
        assert stored.status == "used" and stored.job_id == done.id
    assert seen[-1] == ("succeeded", 1.0)
    assert any(state == "running" for state, _ in seen)
    assert Path(done.metrics["curve_png"]).is_file()

    # rollback brings the old reverse model back, and only once
    versions = await jobs.rollback()
    assert versions == before
    assert jobs.store.current("reverse") == jobs.store.defaults["reverse"]
    assert not (await repo.get_job(done.id)).swapped
    with pytest.raises(FinetuneError, match="no earlier"):
        await jobs.rollback()


async def test_killed_child_fails_the_job_and_leaves_the_model_alone(env):
    jobs: FinetuneJobs = env
    repo, service = jobs.repo, jobs.service
    # enough text that training is still going when its first progress line arrives
    item = await repo.add_lyrics(8, seed_format(made_up_verses(400, seed=3)))
    before = service.model_versions
    killed: list[int] = []

    def kill_on_first_step(job) -> None:
        if not killed and jobs._proc is not None and job.state == "running":
            killed.append(jobs._proc.pid)
            os.kill(jobs._proc.pid, signal.SIGKILL)

    await jobs.start([item], 20, started_by=8, on_progress=kill_on_first_step)
    done = await jobs.wait()

    assert killed, "the child finished before it could be killed"
    assert done.state == "failed"
    assert "killed (signal 9)" in done.error
    assert not done.swapped
    assert service.model_versions == before
    assert jobs.store.current("reverse") == jobs.store.defaults["reverse"]
    assert (await repo.get_lyrics(item.id)).status == "pending"  # free for the next job
    assert not list((jobs.store.root / "reverse").iterdir())  # no half-written version left


async def test_cancel_and_restart_recovery(env):
    jobs: FinetuneJobs = env
    repo = jobs.repo
    with pytest.raises(FinetuneError, match="no contributed lyrics"):
        await jobs.start(None, 1, started_by=1)
    with pytest.raises(FinetuneError, match="epochs"):
        await jobs.start(None, 0, started_by=1)
    item = await repo.add_lyrics(9, seed_format(made_up_verses(10, seed=4)))
    await jobs.start([item], 3, started_by=9)
    await asyncio.sleep(0.5)
    cancelled = await jobs.cancel()
    assert cancelled.state == "cancelled"
    assert (await repo.get_lyrics(item.id)).status == "pending"

    # a job the previous process left running is marked interrupted at start-up
    orphan = await repo.create_job(9, epochs=1)
    await repo.start_job(orphan.id)
    recovered = await jobs.recover()
    assert [j.id for j in recovered] == [orphan.id]
    assert (await repo.get_job(orphan.id)).state == "interrupted"


def test_model_store_versions_promote_and_rollback(tmp_path):
    default = tmp_path / "shipped-reverse"
    default.mkdir()
    store = ModelStore(tmp_path / "store", {"reverse": default})
    assert store.current("reverse") == default
    with pytest.raises(NothingToRollBack):
        store.rollback("reverse")
    staged = store.staging_dir("reverse", "job1") / "model"
    staged.mkdir()
    v1 = store.commit("reverse", staged, "job1")
    v2_src = store.staging_dir("reverse", "job2") / "model"
    v2_src.mkdir()
    v2 = store.commit("reverse", v2_src, "job2")
    assert (v1.name, v2.name) == ("v0001-job1", "v0002-job2")
    store.promote("reverse", v1)
    store.promote("reverse", v2)
    # state survives a new store object (a restart)
    again = ModelStore(tmp_path / "store", {"reverse": default})
    assert again.current("reverse") == v2
    assert again.rollback("reverse") == (v1, v2)
    assert again.rollback("reverse") == (default, v1)
    with pytest.raises(Exception, match="serving"):
        again.discard(default)
    again.discard(v2)
    assert not v2.exists()


def test_held_out_verses_come_from_the_lyrics_or_the_settings(tmp_path):
    from bot.storage.records import LyricsSubmission

    def lyrics(n: int) -> list[LyricsSubmission]:
        text = seed_format(made_up_verses(n, seed=n))
        return [LyricsSubmission(1, None, 1, text, "0" * 64, "pending", None, None)]

    replay, fixed = tmp_path / "corpus.txt", tmp_path / "fixed.txt"
    store = ModelStore(tmp_path / "store", {})

    def split(settings: FinetuneSettings, n: int) -> tuple[int, list[Path]]:
        jobs = FinetuneJobs(None, None, store, settings)  # repo/service unused here
        data, heldout = jobs._write_data(tmp_path, lyrics(n))
        return data.read_text().count("\n\n") + 1, heldout

    own = tmp_path / "heldout.txt"
    # contributed verses: about one in ten is held out of training for the comparison
    trained, heldout = split(FinetuneSettings(work_dir=tmp_path, replay=[replay]), 5)
    assert trained == 4 and heldout == [own] and own.read_text().count("\n\n") == 0
    trained, heldout = split(FinetuneSettings(work_dir=tmp_path, replay=[replay]), 40)
    assert trained == 36 and heldout == [own] and own.read_text().count("\n\n") == 3
    # too few to spare one: the replay corpus is the yardstick, or the configured set
    assert split(FinetuneSettings(work_dir=tmp_path, replay=[replay]), 3) == (3, [replay])
    assert split(FinetuneSettings(work_dir=tmp_path, replay=[replay], heldout=[fixed]), 3) == (
        3,
        [fixed],
    )
    assert split(FinetuneSettings(work_dir=tmp_path), 3) == (3, [])

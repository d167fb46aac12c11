"""/admin through the real parser: refused to members, settings, and a real fine-tune of a
tiny reverse model (a real `rgpt2 train` child) reported by editing a progress message."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.services.container import BotServices
from bot.services.finetune import FinetuneJobs, FinetuneSettings
from bot.services.model_store import ModelStore
from bot.storage import Database, Repository
from tests.bot_fakes import make_bot, make_services
from tests.discord_harness import CHANNEL_ID, Harness, Member

MEMBER = Member(5001, "member")
MANAGER = Member(5002, "manager", manager=True)
CONFIGURED_ADMIN = Member(5003, "owner-friend")
WORDS = "money night city crew street flow gold chain crowd beat light show dream pen".split()


def made_up_lyrics(count: int, seed: int) -> str:
    rnd = random.Random(seed)
    verses = [
        "\n".join(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 7))) for _ in range(4))
        for _ in range(count)
    ]
    return "\n\n".join(verses) + "\n"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("admin finetune", {}),
        ("admin status", {}),
        ("admin cancel", {}),
        ("admin rollback", {}),
        ("admin settings", {"cooldown": 5.0}),
    ],
)
async def test_admin_commands_are_refused_to_a_normal_member(tmp_path, command, options):
    services = await make_services(tmp_path / "a.sqlite3")
    async with Harness(make_bot(services)) as h:
        (reply,) = await h.slash(command, MEMBER, **options)
        assert reply.ephemeral and "only server managers" in reply.content.lower()
        settings = await services.repo.get_guild_settings(h.guild_id)
        assert settings.cooldown_seconds is None  # nothing changed


async def test_settings_by_a_manager_and_by_a_configured_admin(tmp_path):
    services = await make_services(tmp_path / "a.sqlite3", admin_ids=[CONFIGURED_ADMIN.id])
    async with Harness(make_bot(services)) as h:
        (reply,) = await h.slash("admin settings", MANAGER, cooldown=12.5, explicit_filter="mask")
        fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
        assert fields == {
            "Explicit filter": "mask",
            "Cooldown": "12.5 s",
            "Channels": "every channel",
        }
        (reply,) = await h.slash(
            "admin settings", CONFIGURED_ADMIN, channels={"channel": CHANNEL_ID}
        )
        fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
        assert fields["Channels"] == f"<#{CHANNEL_ID}>" and fields["Cooldown"] == "12.5 s"
        (reply,) = await h.slash("admin settings", MANAGER, cooldown=99999.0)
        assert reply.ephemeral and "between 0 and 3600" in reply.content
        stored = await services.repo.get_guild_settings(h.guild_id)
        assert stored.cooldown_seconds == 12.5 and stored.allowed_channel_ids == (CHANNEL_ID,)
        # without fine-tune jobs configured, the admin gets a clear answer
        (reply,) = await h.slash("admin status", MANAGER)
        assert reply.ephemeral and "not configured" in reply.content


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    import torch

    from rgpt2.bench import build_tiny_models
    from tests.conftest import TINY_VERSES

    torch.set_num_threads(1)
    rnd = random.Random(3)
    extra = [[" ".join(rnd.choice(WORDS) for _ in range(5)) for _ in range(4)] for _ in range(20)]
    return build_tiny_models(tmp_path_factory.mktemp("models"), TINY_VERSES + extra)


async def test_finetune_edits_a_progress_message_then_posts_the_result_and_curve(
    tmp_path, tiny_models
):
    from rgpt2.generate import Generator
    from rgpt2.worker import GenerationService

    fwd, rev = tiny_models
    db = await Database.open(tmp_path / "a.sqlite3")
    repo = Repository(db)
    generation = GenerationService(Generator.load(fwd, rev), max_batch=4)
    await generation.start()
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(made_up_lyrics(6, seed=5))
    jobs = FinetuneJobs(
        repo,
        generation,
        ModelStore(tmp_path / "store", {"forward": fwd, "reverse": rev}),
        FinetuneSettings(
            work_dir=tmp_path / "jobs",
            heldout=[heldout],
            rhyme_verses=2,
            extra_train_args=("--lr", "1e-2", "--seed", "1"),
            progress_interval=0.0,
        ),
    )
    services = BotServices.create(repo, generation, finetune=jobs, db=db)
    async with Harness(make_bot(services)) as h:
        (reply,) = await h.slash("admin finetune", MANAGER, epochs=1)
        assert "no contributed lyrics" in reply.content.lower()  # nothing to train on yet
        for seed in (1, 2):
            await repo.add_lyrics(MEMBER.id, made_up_lyrics(8, seed), guild_id=h.guild_id)

        replies = await h.slash("admin finetune", MANAGER, epochs=1)
        assert replies[0].response_type == 5
        progress_id = replies[1].message_id
        done = await jobs.wait()
        await h.settle()
        assert done.state == "succeeded", done.error

        edits = [s for s in h.sent if s.kind == "edit" and s.message_id == progress_id]
        assert edits and "█" in edits[-1].content and "100%" in edits[-1].content
        assert any(f"job #{done.id}" in e.content for e in edits)
        result = [s for s in h.sent if s.embeds and "Fine-tune job" in s.embeds[0]["title"]]
        assert result, "no result was posted"
        assert result[-1].files and result[-1].files[0][0] == "loss-curve.png"
        assert result[-1].files[0][1].startswith(b"\x89PNG")
        assert result[-1].embeds[0]["image"]["url"] == "attachment://loss-curve.png"
        fields = {f["name"]: f["value"] for f in result[-1].embeds[0]["fields"]}
        assert fields["State"] == "succeeded" and "Perplexity" in fields

        (status,) = await h.slash("admin status", MANAGER)
        assert status.ephemeral and f"job #{done.id}" in status.embeds[0]["title"]
        (cancel,) = (await h.slash("admin cancel", MANAGER))[-1:]
        assert "No fine-tune is running" in cancel.content
        if done.swapped:
            rollback = (await h.slash("admin rollback", MANAGER))[-1]
            assert "Rolled back" in rollback.content
        h.assert_no_pings()

"""/admin through the real parser: refused to members, settings, and a fine-tune reported
by editing a progress message, then its result with the loss curve.

The fine-tune job here is a fake runner with the FinetuneJobs API (real job rows, a real
PNG curve, a real model swap on the generation service); the real `rgpt2 train` child on a
tiny model is tested in tests/test_finetune.py, kept out of this file for its run time."""

from __future__ import annotations

import random
import sys

import pytest

from tests.bot_fakes import FakeFinetuneJobs, make_bot, make_services
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


async def finetune_bot(tmp_path, **job_options):
    services = await make_services(tmp_path / "a.sqlite3")
    services.finetune = FakeFinetuneJobs(
        services.repo, services.generation, tmp_path / "jobs", **job_options
    )
    return services


async def test_finetune_edits_a_progress_message_then_posts_the_result_and_curve(
    tmp_path, monkeypatch
):
    services = await finetune_bot(tmp_path, steps=4)
    repo, jobs = services.repo, services.finetune
    async with Harness(make_bot(services)) as h:
        # load_extension executes the cog module afresh: patch the loaded one
        monkeypatch.setattr(sys.modules["bot.cogs.admin"], "PROGRESS_EDIT_SECONDS", 0.0)
        (reply,) = await h.slash("admin finetune", MANAGER, epochs=1)
        assert reply.ephemeral and "no contributed lyrics" in reply.content.lower()
        for seed in (1, 2):
            await repo.add_lyrics(MEMBER.id, made_up_lyrics(4, seed), guild_id=h.guild_id)
        before = services.generation.model_versions

        replies = await h.slash("admin finetune", MANAGER, epochs=1)
        assert replies[0].response_type == 5
        progress_id = replies[1].message_id
        done = await jobs.wait()
        await h.settle()
        assert done.state == "succeeded"

        edits = [s.content for s in h.sent if s.kind == "edit" and s.message_id == progress_id]
        percents = [int(e.split("%")[0].split()[-1]) for e in edits if "%" in e]
        assert len(percents) >= 4 and percents == sorted(percents) and percents[-1] == 100
        assert all("█" in e or "░" in e for e in edits)
        assert f"job #{done.id}" in edits[-1] and "new reverse model live" in edits[-1]
        (result,) = [s for s in h.sent if s.embeds and "Fine-tune job" in s.embeds[0]["title"]]
        assert result.files and result.files[0][0] == "loss-curve.png"
        assert result.files[0][1].startswith(b"\x89PNG")
        assert result.embeds[0]["image"]["url"] == "attachment://loss-curve.png"
        fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
        assert fields["State"] == "succeeded"
        assert fields["Perplexity"] == "new 40.0 vs serving 55.0"
        assert services.generation.model_versions["reverse"] != before["reverse"]
        assert (await repo.lyrics_stats()).used == 2

        (status,) = await h.slash("admin status", MANAGER)
        assert status.ephemeral and f"job #{done.id}" in status.embeds[0]["title"]
        rollback = (await h.slash("admin rollback", MANAGER))[-1]
        assert "Rolled back" in rollback.content
        assert services.generation.model_versions == before
        h.assert_no_pings()


async def test_finetune_can_be_cancelled_and_only_one_runs(tmp_path):
    services = await finetune_bot(tmp_path, steps=50, step_seconds=0.05)
    await services.repo.add_lyrics(MEMBER.id, made_up_lyrics(4, 1), guild_id=1)
    async with Harness(make_bot(services)) as h:
        await h.slash("admin finetune", MANAGER)
        (again,) = await h.slash("admin finetune", CONFIGURED_ADMIN)
        # not a configured admin here, and not a manager: refused before anything else
        assert again.ephemeral and "only server managers" in again.content.lower()
        (again,) = await h.slash("admin finetune", MANAGER)
        assert again.ephemeral and "already running" in again.content
        cancel = (await h.slash("admin cancel", MANAGER))[-1]
        assert cancel.ephemeral and "cancelled" in cancel.content
        await h.settle()
        job = await services.repo.get_job(1)
        assert job.state == "cancelled"
        (result,) = [s for s in h.sent if s.embeds and "Fine-tune job" in s.embeds[0]["title"]]
        assert {f["name"]: f["value"] for f in result.embeds[0]["fields"]}["State"] == "cancelled"
        (cancel,) = (await h.slash("admin cancel", MANAGER))[-1:]
        assert "No fine-tune is running" in cancel.content


async def test_admin_commands_drive_the_real_finetune_jobs_api(tmp_path):
    # the real FinetuneJobs (no child is started here): the cog calls its API as it is
    from bot.services.finetune import FinetuneJobs, FinetuneSettings
    from bot.services.model_store import ModelStore

    services = await make_services(tmp_path / "a.sqlite3")
    store = ModelStore(tmp_path / "store", {"forward": tmp_path / "f", "reverse": tmp_path / "r"})
    services.finetune = FinetuneJobs(
        services.repo, services.generation, store, FinetuneSettings(work_dir=tmp_path / "jobs")
    )
    async with Harness(make_bot(services)) as h:
        (reply,) = await h.slash("admin finetune", MANAGER, epochs=2)
        assert reply.ephemeral and "no contributed lyrics" in reply.content.lower()
        (status,) = await h.slash("admin status", MANAGER)
        assert status.embeds[0]["title"] == "No fine-tune yet"
        assert "fwd fwd-test / rev rev-test" in status.text
        assert (await h.slash("admin cancel", MANAGER))[-1].content == "No fine-tune is running."
        replies = await h.slash("admin rollback", MANAGER)
        # the public "thinking..." is removed, so the refusal stays private
        assert [r.kind for r in replies] == ["response", "delete", "followup"]
        assert replies[-1].ephemeral
        assert "no earlier reverse model" in replies[-1].content.lower()

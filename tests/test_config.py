"""Settings: defaults, parsing, one-line errors naming the setting, a token that stays secret."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.config import ConfigError, Settings, TokenRedactor, starter_model_dir
from rgpt2.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.s3cr3t-t0k3n_value-xyz"


class RecordingEnv(dict):
    """A mapping that remembers which settings were asked for."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def test_defaults_with_an_empty_environment():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.discord_token is None
    assert settings.db_path == Path("rgpt2.sqlite3")
    assert (settings.device, settings.battle_vote_minutes, settings.log_level) == (
        "auto",
        10.0,
        "INFO",
    )
    assert settings.admin_ids == frozenset() and settings.dev_guild_id is None


def test_env_example_documents_every_setting_with_its_default():
    example = dotenv_values(ROOT / ".env.example")
    env = RecordingEnv({k: v or "" for k, v in example.items()})
    assert Settings.from_env(env) == Settings()  # the defaults written there are the real ones
    assert set(example) == env.asked  # nothing read that is not documented, nothing extra
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for name in env.asked:
        assert f"`{name}`" in docs, name


def test_every_setting_is_parsed():
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": f"  {TOKEN}  ",
            "RGPT2_DB": "/data/bot.sqlite3",
            "RGPT2_FORWARD_MODEL": "/models/fwd",
            "RGPT2_REVERSE_MODEL": "/models/rev",
            "RGPT2_SCORER_MODEL": "someone/rap-scorer",
            "RGPT2_DEVICE": "CPU",
            "RGPT2_ADMIN_IDS": " 123456789012345678, 223456789012345678 ,",
            "RGPT2_DEV_GUILD_ID": "323456789012345678",
            "RGPT2_QUEUE_SIZE": "1_000",
            "RGPT2_MAX_BATCH": "16",
            "RGPT2_COOLDOWN_SECONDS": "0",
            "RGPT2_REQUEST_TIMEOUT_SECONDS": "45.5",
            "RGPT2_BATTLE_ACCEPT_MINUTES": "2",
            "RGPT2_BATTLE_VOTE_MINUTES": "0.5",
            "RGPT2_LYRICS_MAX_BYTES": "2048",
            "RGPT2_FINETUNE_EPOCHS": "3",
            "RGPT2_MODEL_STORE": "/data/models",
            "RGPT2_FINETUNE_REPLAY": "/data/corpus",
            "RGPT2_LOG_LEVEL": "debug",
        }
    )
    assert settings.discord_token == TOKEN
    assert settings.db_path == Path("/data/bot.sqlite3")
    assert (settings.forward_model, settings.reverse_model, settings.scorer_model) == (
        "/models/fwd",
        "/models/rev",
        "someone/rap-scorer",
    )
    assert settings.device == "cpu" and settings.resolved_device() == "cpu"
    assert settings.admin_ids == {123456789012345678, 223456789012345678}
    assert settings.is_admin(123456789012345678) and not settings.is_admin(1)
    assert settings.dev_guild_id == 323456789012345678
    assert (settings.queue_size, settings.max_batch) == (1000, 16)
    assert (settings.cooldown_seconds, settings.request_timeout_seconds) == (0.0, 45.5)
    assert (settings.battle_accept_minutes, settings.battle_vote_minutes) == (2.0, 0.5)
    assert (settings.lyrics_max_bytes, settings.finetune_epochs) == (2048, 3)
    assert settings.model_store == Path("/data/models")
    assert settings.finetune_replay == Path("/data/corpus")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("RGPT2_QUEUE_SIZE", "lots", "expected a whole number"),
        ("RGPT2_QUEUE_SIZE", "0", "at least 1"),
        ("RGPT2_MAX_BATCH", "2.5", "expected a whole number"),
        ("RGPT2_COOLDOWN_SECONDS", "-1", "at least 0"),
        ("RGPT2_COOLDOWN_SECONDS", "nan", "expected a number"),
        ("RGPT2_REQUEST_TIMEOUT_SECONDS", "inf", "expected a number"),
        ("RGPT2_BATTLE_VOTE_MINUTES", "ten", "expected a number"),
        ("RGPT2_BATTLE_ACCEPT_MINUTES", "0", "at least 0.1"),
        ("RGPT2_LYRICS_MAX_BYTES", "64k", "expected a whole number"),
        ("RGPT2_FINETUNE_EPOCHS", "0", "at least 1"),
        ("RGPT2_DEVICE", "tpu", "auto, cpu, cuda"),
        ("RGPT2_LOG_LEVEL", "loud", "DEBUG, INFO"),
        ("RGPT2_ADMIN_IDS", "123,alice", "expected a Discord id"),
        ("RGPT2_ADMIN_IDS", "-5", "expected a Discord id"),
        ("RGPT2_DEV_GUILD_ID", "99999999999999999999", "expected a Discord id"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_setting(name, value, expected):
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    message = str(error.value)
    assert message.startswith(f"{name}=")
    assert expected in message
    assert "\n" not in message


def test_the_token_never_appears_in_repr_str_redacted_or_errors():
    settings = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert "discord_token" not in repr(settings)
    assert settings.redacted()["discord_token"] == "<set>"
    assert TOKEN not in repr(settings.redacted())
    assert settings.require_token() == TOKEN
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"DISCORD_TOKEN": "abc def-" + TOKEN})
    assert "DISCORD_TOKEN" in str(error.value) and TOKEN not in str(error.value)


def test_missing_token_says_how_to_set_it():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"DISCORD_TOKEN": "   "}).require_token()
    message = str(error.value)
    assert "DISCORD_TOKEN is not set" in message
    assert ".env" in message and ".env.example" in message


def test_dotenv_file_is_read_without_touching_os_environ(tmp_path, monkeypatch):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("RGPT2_QUEUE_SIZE", raising=False)
    monkeypatch.setenv("RGPT2_MAX_BATCH", "3")
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DISCORD_TOKEN={TOKEN}\nRGPT2_QUEUE_SIZE=7\nRGPT2_MAX_BATCH=99\n# RGPT2_DEVICE=cuda\n"
    )
    settings = Settings.from_env(dotenv_path=env_file)
    assert settings.discord_token == TOKEN and settings.queue_size == 7
    assert settings.max_batch == 3  # the environment wins over .env
    assert settings.device == "auto"
    # children (the fine-tune process) must not inherit the token
    assert "DISCORD_TOKEN" not in os.environ and "RGPT2_QUEUE_SIZE" not in os.environ
    monkeypatch.chdir(tmp_path)  # default: .env in the working directory
    assert Settings.from_env().queue_size == 7
    assert Settings.from_env(dotenv_path=None).queue_size == Settings().queue_size


def test_model_locations(tmp_path, monkeypatch):
    folder = tmp_path / "rev"
    folder.mkdir()
    settings = Settings.from_env(
        {
            "RGPT2_REVERSE_MODEL": str(folder),
            "RGPT2_FORWARD_MODEL": str(tmp_path / "nope"),
            "RGPT2_SCORER_MODEL": "org/model-id",
        }
    )
    assert settings.model_location("reverse") == str(folder)
    assert settings.model_location("scorer") == "org/model-id"  # a hub id is the loader's business
    with pytest.raises(ModelLoadError, match="RGPT2_FORWARD_MODEL=.*nope: no such model directory"):
        settings.model_location("forward")

    # unset: the starter model shipped in the package, resolved only when asked
    monkeypatch.setattr("bot.config.starter_model_dir", lambda kind: None)
    with pytest.raises(
        ModelLoadError, match="RGPT2_FORWARD_MODEL is not set.*rgpt2/models/forward"
    ):
        Settings().model_location("forward")
    monkeypatch.setattr("bot.config.starter_model_dir", lambda kind: tmp_path / kind)
    assert Settings().model_location("scorer") == str(tmp_path / "scorer")
    with pytest.raises(ValueError):
        Settings().model_location("sideways")  # type: ignore[arg-type]


def test_starter_model_dir_points_into_the_installed_package():
    import rgpt2

    for kind in ("forward", "reverse", "scorer"):
        expected = Path(rgpt2.__file__).parent / "models" / kind
        found = starter_model_dir(kind)
        assert found == (expected if (expected / "config.json").is_file() else None)


def test_token_redactor_scrubs_messages_arguments_and_tracebacks():
    import logging

    redactor = TokenRedactor(TOKEN)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token is %s", (TOKEN,), None)
    redactor.filter(record)
    assert TOKEN not in record.getMessage() and "[token]" in record.getMessage()
    try:
        raise RuntimeError(f"login failed for {TOKEN}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    redactor.filter(record)
    formatted = logging.Formatter().format(record)
    assert "login failed" in formatted and TOKEN not in formatted


# ---------------------------------------------------------------- start-up (subprocess)


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RGPT2_", "DISCORD_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("entry", ["rgpt2", "bot"])
def test_bot_without_token_exits_nonzero_with_the_how_to(tmp_path, entry):
    code = {
        "rgpt2": "from rgpt2.cli import main; raise SystemExit(main(['bot']))",
        "bot": "import runpy; runpy.run_module('bot', run_name='__main__')",
    }[entry]
    result = run_python(code, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert ".env.example" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rgpt2.sqlite3").exists()


FAKE_CLIENT = """
import logging, sys, types
fake = types.ModuleType("bot.client")
def run_bot(settings, sync=False):
    print("run_bot sync =", sync, flush=True)
    logging.getLogger("discord.client").info("logging in using static token %s", settings.discord_token)
    raise RuntimeError("Improper token has been passed: " + settings.discord_token)
fake.run_bot = run_bot
sys.modules["bot.client"] = fake
from rgpt2.cli import main
raise SystemExit(main(["bot", "--sync"]))
"""


def test_the_token_never_reaches_the_logs(tmp_path):
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\nRGPT2_LOG_LEVEL=DEBUG\n")
    result = run_python(FAKE_CLIENT, tmp_path)
    assert result.returncode == 1
    assert "run_bot sync = True" in result.stdout  # settings checked, then the client ran
    output = result.stdout + result.stderr
    assert "Improper token" in output and "[token]" in output  # it was logged, redacted
    assert TOKEN not in output
    assert "discord_token': '<set>'" in result.stderr  # settings are logged without it


def test_async_run_bot_is_awaited(tmp_path):
    code = """
    import sys, types
    fake = types.ModuleType("bot.client")
    async def run_bot(settings, sync=False):
        print("awaited", settings.queue_size, sync)
        return 0
    fake.run_bot = run_bot
    sys.modules["bot.client"] = fake
    from bot.__main__ import main
    raise SystemExit(main([]))
    """
    result = run_python(code, tmp_path, DISCORD_TOKEN=TOKEN, RGPT2_QUEUE_SIZE="5")
    assert result.returncode == 0, result.stderr
    assert "awaited 5 False" in result.stdout


def test_check_reports_settings_database_and_models_without_connecting(tmp_path):
    (tmp_path / "fwd").mkdir()
    code = "from rgpt2.cli import main; raise SystemExit(main(['bot', '--check']))"
    result = run_python(
        code,
        tmp_path,
        DISCORD_TOKEN=TOKEN,
        RGPT2_DB=str(tmp_path / "bot.sqlite3"),
        RGPT2_FORWARD_MODEL=str(tmp_path / "fwd"),
        RGPT2_REVERSE_MODEL=str(tmp_path / "missing"),
        RGPT2_SCORER_MODEL="org/scorer",
    )
    assert result.returncode == 1  # the reverse model is missing
    assert "queue_size = 64" in result.stdout and "discord_token = <set>" in result.stdout
    assert "does not exist yet" in result.stdout
    assert f"forward model: {tmp_path / 'fwd'}" in result.stdout
    assert "reverse model: MISSING" in result.stdout and "RGPT2_REVERSE_MODEL" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert not (tmp_path / "bot.sqlite3").exists()  # --check changes nothing

"""Settings from the environment and ``.env``: one frozen :class:`Settings`.

Every setting is documented, with its default, in ``.env.example`` (and
docs/configuration.md). A bad value fails with ONE line naming the setting
(:class:`ConfigError`). The Discord token is never shown: it is left out of ``repr`` and
never echoed in an error.

``.env`` is read without touching ``os.environ``, so child processes (the fine-tune job)
do not inherit the token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from dotenv import dotenv_values

from rgpt2.errors import ModelLoadError, RGPT2Error

T = TypeVar("T")

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MODEL_KINDS: tuple[str, ...] = ("forward", "reverse", "scorer")
ModelKind = Literal["forward", "reverse", "scorer"]

TOKEN_HELP = (
    "set DISCORD_TOKEN to your bot's token, in the environment or in a .env file in the "
    "working directory (copy .env.example to .env); docs/configuration.md says where to find it"
)


class ConfigError(RGPT2Error):
    """A missing or bad setting; the message names it."""


@dataclass(frozen=True)
class Settings:
    """The bot's configuration. Build it with :meth:`from_env`; defaults match .env.example."""

    discord_token: str | None = field(default=None, repr=False)
    db_path: Path = Path("rgpt2.sqlite3")
    # None: the starter model shipped in the package (see model_location)
    forward_model: str | None = None
    reverse_model: str | None = None
    scorer_model: str | None = None
    device: str = "auto"
    admin_ids: frozenset[int] = frozenset()
    dev_guild_id: int | None = None
    queue_size: int = 64
    max_batch: int = 8
    cooldown_seconds: float = 30.0
    request_timeout_seconds: float = 120.0
    battle_accept_minutes: float = 5.0
    battle_vote_minutes: float = 10.0
    lyrics_max_bytes: int = 65536
    finetune_epochs: int = 1
    model_store: Path = Path("rgpt2-models")
    finetune_replay: Path | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env"
    ) -> Settings:
        """Settings from ``env`` (default: the process environment over ``.env``).

        With an explicit ``env`` mapping nothing else is read (tests). Empty values count as
        unset. Raises ConfigError naming the first bad setting.
        """
        if env is None:
            merged: dict[str, str] = {}
            if dotenv_path is not None and Path(dotenv_path).is_file():
                merged.update(
                    {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
                )
            merged.update(os.environ)
            env = merged
        get = _Reader(env)
        return cls(
            discord_token=get.token("DISCORD_TOKEN"),
            db_path=get.path("RGPT2_DB", cls.db_path),
            forward_model=get.text("RGPT2_FORWARD_MODEL"),
            reverse_model=get.text("RGPT2_REVERSE_MODEL"),
            scorer_model=get.text("RGPT2_SCORER_MODEL"),
            device=get.choice("RGPT2_DEVICE", cls.device, DEVICES, lower=True),
            admin_ids=get.id_set("RGPT2_ADMIN_IDS"),
            dev_guild_id=get.snowflake("RGPT2_DEV_GUILD_ID"),
            queue_size=get.integer("RGPT2_QUEUE_SIZE", cls.queue_size, minimum=1),
            max_batch=get.integer("RGPT2_MAX_BATCH", cls.max_batch, minimum=1),
            cooldown_seconds=get.number("RGPT2_COOLDOWN_SECONDS", cls.cooldown_seconds, minimum=0),
            request_timeout_seconds=get.number(
                "RGPT2_REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds, minimum=1
            ),
            battle_accept_minutes=get.number(
                "RGPT2_BATTLE_ACCEPT_MINUTES", cls.battle_accept_minutes, minimum=0.1
            ),
            battle_vote_minutes=get.number(
                "RGPT2_BATTLE_VOTE_MINUTES", cls.battle_vote_minutes, minimum=0.1
            ),
            lyrics_max_bytes=get.integer("RGPT2_LYRICS_MAX_BYTES", cls.lyrics_max_bytes, minimum=1),
            finetune_epochs=get.integer("RGPT2_FINETUNE_EPOCHS", cls.finetune_epochs, minimum=1),
            model_store=get.path("RGPT2_MODEL_STORE", cls.model_store),
            finetune_replay=get.optional_path("RGPT2_FINETUNE_REPLAY"),
            log_level=get.choice("RGPT2_LOG_LEVEL", cls.log_level, LOG_LEVELS, lower=False),
        )

    def require_token(self) -> str:
        """The Discord token, or ConfigError saying how to set it."""
        if not self.discord_token:
            raise ConfigError(f"DISCORD_TOKEN is not set: {TOKEN_HELP}")
        return self.discord_token

    def model_location(self, kind: ModelKind) -> str:
        """Where to load the ``kind`` model from: the setting, or the shipped starter model.

        Resolved when asked (not at start-up), so settings load even before the starter
        models exist. ModelLoadError, naming the setting, if nothing is there.
        """
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
        configured: str | None = getattr(self, f"{kind}_model")
        setting = f"RGPT2_{kind.upper()}_MODEL"
        if configured is not None:
            # a scorer may be a Hugging Face id rather than a folder; let its loader decide
            if kind != "scorer" and not Path(configured).exists():
                raise ModelLoadError(f"{setting}={configured}: no such model directory")
            return configured
        starter = starter_model_dir(kind)
        if starter is None:
            raise ModelLoadError(
                f"no {kind} model: {setting} is not set and the starter model "
                f"rgpt2/models/{kind} is not installed; train one (rgpt2 train ...) and set "
                f"{setting} to its directory"
            )
        return str(starter)

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``; ``auto`` picks cuda when torch sees a GPU."""
        if self.device != "auto":
            if self.device == "cuda":
                # imported only when asked: keeps `import bot.config` light
                import torch

                if not torch.cuda.is_available():
                    raise ConfigError("RGPT2_DEVICE=cuda but torch sees no CUDA GPU")
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids

    def redacted(self) -> dict[str, object]:
        """Every setting, for logs and ``rgpt2 bot --check``; the token only as set/unset."""
        values: dict[str, object] = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "discord_token"
        }
        values["discord_token"] = "<set>" if self.discord_token else "<not set>"
        return values


def starter_model_dir(kind: str) -> Path | None:
    """The starter model shipped in the package (rgpt2/models/<kind>), if it is there."""
    from rgpt2.starter import shipped_model

    path = shipped_model(kind)
    return path if (path / "config.json").is_file() else None


class _Reader:
    """Parses one setting at a time; every failure names the setting in one line."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str) -> str | None:
        return self.raw(name)

    def token(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        # never echo the value: it is a secret
        if any(ch.isspace() for ch in value):
            raise ConfigError(f"{name}: the token contains whitespace; paste it exactly as shown")
        return value

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return Path(value).expanduser() if value else default

    def optional_path(self, name: str) -> Path | None:
        value = self.raw(name)
        return Path(value).expanduser() if value else None

    def choice(self, name: str, default: str, options: tuple[str, ...], *, lower: bool) -> str:
        value = self.raw(name)
        if value is None:
            return default
        canon = {o.lower(): o for o in options}.get(value.lower())
        if canon is None:
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(options)}")
        return canon.lower() if lower else canon

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return self._parsed(name, default, int, "a whole number", minimum)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        return self._parsed(name, default, _finite_float, "a number", minimum)

    def snowflake(self, name: str) -> int | None:
        value = self.raw(name)
        return None if value is None else _snowflake(name, value)

    def id_set(self, name: str) -> frozenset[int]:
        value = self.raw(name)
        if value is None:
            return frozenset()
        return frozenset(
            _snowflake(name, part.strip()) for part in value.split(",") if part.strip()
        )

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], kind: str, minimum: T) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = parse(value.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{name}={value!r}: expected {kind}") from None
        if parsed < minimum:  # type: ignore[operator]
            raise ConfigError(f"{name}={value!r}: must be at least {minimum}")
        return parsed


def _finite_float(value: str) -> float:
    parsed = float(value)
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise ValueError(value)
    return parsed


def _snowflake(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise ConfigError(
            f"{name}={value!r}: expected a Discord id (digits only; comma-separated for a list)"
        )
    return int(value)


def configure_logging(settings: Settings, *, level: str | None = None) -> None:
    """Root logging at the configured level, with the token redacted from every record."""
    logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # basicConfig is a no-op when the rgpt2 CLI already configured logging: set the level here
    logging.getLogger().setLevel(level or settings.log_level)
    if settings.discord_token:
        redactor = TokenRedactor(settings.discord_token)
        for handler in logging.getLogger().handlers:
            handler.addFilter(redactor)


class TokenRedactor(logging.Filter):
    """Replaces the token in log records, whoever logs it (ours, discord.py, aiohttp)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg = message.replace(self._token, "[token]")
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self._token in record.exc_text:
            record.exc_text = record.exc_text.replace(self._token, "[token]")
        return True

"""``python -m bot`` (and ``rgpt2 bot``): check the settings, then run the Discord bot.

The client itself lives in :mod:`bot.client` (``run_bot(settings, sync=...)``), imported
only after the settings and the token are known to be good, so a missing token is reported
without importing discord.py.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigError, Settings, configure_logging
from rgpt2.errors import RGPT2Error

log = logging.getLogger("bot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sync",
        action="store_true",
        help="sync slash commands with Discord at start-up (to RGPT2_DEV_GUILD_ID if set, "
        "globally otherwise)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings, the database and the models, print them (token hidden) "
        "and exit without connecting to Discord",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        metavar="PATH",
        help="read settings from this file too (default: .env in the working directory; "
        "the environment wins)",
    )


def run(args: argparse.Namespace) -> int:
    """Load settings, check them, then run the bot; RGPT2Error (e.g. ConfigError) on bad ones."""
    if args.env_file != Path(".env") and not args.env_file.is_file():
        raise ConfigError(f"--env-file {args.env_file}: no such file")
    settings = Settings.from_env(dotenv_path=args.env_file)
    settings.require_token()
    configure_logging(settings)
    log.info("settings: %s", settings.redacted())
    if args.check:
        return check(settings)
    from bot.client import run_bot  # discord.py is imported only from here on

    try:
        result = run_bot(settings, sync=args.sync)
        if inspect.iscoroutine(result):
            import asyncio

            result = asyncio.run(result)
    except (RGPT2Error, KeyboardInterrupt):
        raise
    except Exception:
        # through logging, not Python's default hook, so the token filter sees the traceback
        log.exception("the bot stopped on an error")
        return 1
    return int(result or 0)


def check(settings: Settings) -> int:
    """Print what the bot would start with; exit code 1 if something is missing."""
    problems = 0
    print("settings:")
    for name, value in settings.redacted().items():
        print(f"  {name} = {value}")
    try:
        print(f"database: {settings.db_path}: {_db_state(settings.db_path)}")
    except RGPT2Error as exc:
        problems += 1
        print(f"database: {settings.db_path}: ERROR {exc}")
    for kind in ("forward", "reverse", "scorer"):
        try:
            print(f"{kind} model: {settings.model_location(kind)}")  # type: ignore[arg-type]
        except RGPT2Error as exc:
            if kind == "scorer":  # optional: verses are posted without a rap score
                print(f"{kind} model: missing, verses will have no rap score ({exc})")
            else:
                problems += 1
                print(f"{kind} model: MISSING {exc}")
    print("ok" if not problems else f"{problems} problem(s)")
    return 0 if not problems else 1


def _db_state(path: Path) -> str:
    # imported here: `rgpt2 --help` imports this module to build its parser
    from bot.storage import maintenance
    from bot.storage.errors import DatabaseTooNew

    state = maintenance.status(path)
    if not state.exists:
        return "does not exist yet (created and migrated at start-up)"
    if state.too_new:
        raise DatabaseTooNew(
            f"schema version {state.version} is newer than this rgpt2 knows ({state.latest})"
        )
    todo = (
        f"{len(state.pending)} migration(s) to apply at start-up" if state.pending else "up to date"
    )
    return f"schema version {state.version}, {todo}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Run the RGPT-2 Discord bot."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except RGPT2Error as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

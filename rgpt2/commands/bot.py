"""``rgpt2 bot``: run the Discord bot (the same as ``python -m bot``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    # bot.__main__ imports only the settings module here; discord.py comes when the bot runs
    from bot.__main__ import add_arguments

    parser = subparsers.add_parser(
        "bot",
        help="run the Discord bot",
        description="Run the RGPT-2 Discord bot. Needs DISCORD_TOKEN (environment or .env; "
        "see .env.example and docs/configuration.md).",
    )
    add_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.__main__ import run

    return run(args)

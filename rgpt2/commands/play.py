"""``rgpt2 play``: the bot in a terminal — same services and database, no Discord, no token."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "play",
        help="try the bot in a terminal (no Discord): /rap, /upvote, /battle, /top, ...",
        description="Read bot commands (/rap topic:money bars:8, /upvote 3, /battle alice bob, "
        "/top, /lyrics submit ..., /help, /quit) from stdin — a terminal or a pipe — and print "
        "what the bot would post. Uses the same services and database as the Discord bot and "
        "the shipped starter models unless --forward/--reverse/--scorer say otherwise.",
    )
    parser.add_argument("--forward", type=Path, metavar="DIR", help="forward model directory")
    parser.add_argument("--reverse", type=Path, metavar="DIR", help="reverse model directory")
    parser.add_argument(
        "--scorer", metavar="DIR_OR_ID", help="rap scorer (default: the shipped one, if any)"
    )
    parser.add_argument(
        "--no-scorer", action="store_true", help="skip the rap scorer (verses show no rap score)"
    )
    parser.add_argument(
        "--db", type=Path, metavar="PATH", help="database file (default: the RGPT2_DB setting)"
    )
    parser.add_argument(
        "--as",
        dest="user",
        default="you",
        metavar="NAME",
        help="who is typing (default: you); change it with /as NAME or as:NAME on a line",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="per-member cooldown between verses (default 0 here; the bot uses "
        "RGPT2_COOLDOWN_SECONDS)",
    )
    parser.add_argument(
        "--no-echo",
        action="store_true",
        help="with piped input, do not repeat each command line before its answer",
    )
    parser.add_argument("--env-file", type=Path, default=Path(".env"), metavar="PATH")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import sys

    from bot.config import Settings
    from bot.play import play
    from bot.services.container import build_services
    from rgpt2.errors import CommandError

    if args.cooldown < 0:
        raise CommandError("--cooldown must be 0 or more seconds")
    settings = Settings.from_env(dotenv_path=args.env_file)
    changes: dict[str, Any] = {"cooldown_seconds": args.cooldown}
    if args.db is not None:
        changes["db_path"] = args.db
    settings = dataclasses.replace(settings, **changes)

    async def main() -> int:
        services = await build_services(
            settings,
            forward=args.forward,
            reverse=args.reverse,
            scorer=args.scorer,
            use_scorer=not args.no_scorer,
        )
        return await play(services, sys.stdin, user=args.user, echo=not args.no_echo)

    return asyncio.run(main())

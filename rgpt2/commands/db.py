"""``rgpt2 db migrate|status|backup``: the bot's SQLite database from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from rgpt2.errors import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "db",
        help="create, upgrade, inspect or back up the bot's database",
        description="The bot's SQLite database. --db defaults to the RGPT2_DB setting "
        "(environment or .env; default ./rgpt2.sqlite3).",
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)

    migrate = actions.add_parser("migrate", help="create the database or apply pending migrations")
    _db_option(migrate)
    migrate.set_defaults(func=_migrate)

    status = actions.add_parser(
        "status", help="print the schema version and pending migrations (changes nothing)"
    )
    _db_option(status)
    status.set_defaults(func=_status)

    backup = actions.add_parser(
        "backup", help="copy the database with SQLite's online backup API (safe while the bot runs)"
    )
    backup.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    _db_option(backup)
    backup.set_defaults(func=_backup)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, metavar="PATH", help="database file (default: the RGPT2_DB setting)"
    )


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return args.db
    from bot.config import Settings

    return Settings.from_env().db_path


def _migrate(args: argparse.Namespace) -> int:
    from bot.storage import migrate

    path = _db_path(args)
    if not path.parent.is_dir():
        raise CommandError(f"cannot create {path}: {path.parent} is not a directory")
    applied = migrate.migrate_path(path)
    version = applied[-1].version if applied else migrate.load_migrations()[-1].version
    if applied:
        for m in applied:
            print(f"applied {m.name}")
        print(f"{path}: schema version {version}")
    else:
        print(f"{path}: schema version {version}, up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    from bot.storage import maintenance

    path = _db_path(args)
    state = maintenance.status(path)
    if not state.exists:
        print(f"{path}: does not exist (rgpt2 db migrate creates it)")
    elif state.too_new:
        print(
            f"{path}: schema version {state.version} is NEWER than this rgpt2 knows "
            f"({state.latest}): upgrade rgpt2 or restore a backup"
        )
        return 1
    else:
        print(f"{path}: schema version {state.version} (latest {state.latest})")
    if state.pending:
        print(f"pending migrations ({len(state.pending)}):")
        for name in state.pending:
            print(f"  {name}")
    else:
        print("no pending migrations")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from bot.storage import maintenance

    source = _db_path(args)
    result = maintenance.backup(source, args.path, force=args.force)
    print(
        f"backed up {source} to {result.path}: {result.pages} pages, schema version {result.version}"
    )
    return 0

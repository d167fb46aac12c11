"""SQLite storage: :class:`Database` (one aiosqlite connection, migrations at open) and
:class:`Repository` (the only SQL in the project). API: docs/storage.md."""

from bot.storage.db import Database
from bot.storage.errors import (
    DatabaseTooNew,
    DuplicateLyrics,
    JobAlreadyActive,
    MigrationError,
    NotFound,
    StorageError,
)
from bot.storage.repo import ANY_GUILD, UNSET, Repository

__all__ = [
    "ANY_GUILD",
    "UNSET",
    "Database",
    "DatabaseTooNew",
    "DuplicateLyrics",
    "JobAlreadyActive",
    "MigrationError",
    "NotFound",
    "Repository",
    "StorageError",
]

"""Database upkeep outside the bot: status and online backup (used by ``rgpt2 db``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.storage import migrate
from bot.storage.errors import StorageError


@dataclass(frozen=True)
class DbStatus:
    path: Path
    exists: bool
    version: int  # PRAGMA user_version (0 for a missing file)
    latest: int  # the newest migration this code ships
    pending: tuple[str, ...]  # file names still to apply

    @property
    def too_new(self) -> bool:
        return self.version > self.latest


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    version: int


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection that never creates the file."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA user_version").fetchone()  # fails here if not a database
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from exc
    return conn


def status(path: str | Path) -> DbStatus:
    """The schema version and pending migrations, without creating or changing the file."""
    path = Path(path)
    migrations = migrate.load_migrations()
    latest = migrations[-1].version if migrations else 0
    if not path.exists():
        return DbStatus(path, False, 0, latest, tuple(m.name for m in migrations))
    conn = open_readonly(path)
    try:
        version = migrate.schema_version(conn)
    finally:
        conn.close()
    todo = tuple(m.name for m in migrations if m.version > version)
    return DbStatus(path, True, version, latest, todo)


def backup(source: str | Path, target: str | Path, *, force: bool = False) -> BackupResult:
    """Copy ``source`` to ``target`` with SQLite's online backup API.

    Safe while the bot writes: in WAL mode the copy is one consistent snapshot taken in a
    single step (``pages=-1``; a step-by-step copy would restart on every concurrent write)
    and does not block writers. Written to a temporary file, checked, then renamed, so
    ``target`` is never a half-written database.
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise StorageError(f"no database at {source}")
    if target.exists() and not force:
        raise StorageError(f"{target} exists; pass --force to overwrite it")
    if target.resolve() == source.resolve():
        raise StorageError("the backup must go to another file than the database")
    if not target.parent.is_dir():
        raise StorageError(f"cannot write {target}: {target.parent} is not a directory")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    src = open_readonly(source)
    try:
        dst = sqlite3.connect(str(temp), isolation_level=None)
        try:
            pages = 0

            def progress(status: int, remaining: int, total: int) -> None:
                nonlocal pages
                pages = total

            src.backup(dst, pages=-1, progress=progress)
            # the copy keeps no WAL around: one self-contained file
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise StorageError(f"the backup failed its integrity check: {check}")
            version = migrate.schema_version(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise StorageError(f"backup of {source} failed: {exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    finally:
        src.close()
    os.replace(temp, target)
    return BackupResult(target, pages, version)

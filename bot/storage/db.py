"""The bot's one long-lived SQLite connection (aiosqlite), migrated when it opens.

All statements go through one connection, so transactions from concurrent coroutines must
not interleave: :meth:`Database.transaction` and :meth:`Database.reading` take an
:class:`asyncio.Lock`. Statements run on aiosqlite's thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

import aiosqlite

from bot.storage import maintenance
from bot.storage import migrate as migrations
from bot.storage.errors import DatabaseTooNew, StorageError

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000


class Database:
    """Open with ``await Database.open(path)``; close with ``await db.close()`` (or ``async with``)."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrate: bool = True,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Database:
        """Open (and by default create and migrate) the database file at ``path``.

        With ``migrate=False`` a database that is not at the latest version is refused.
        DatabaseTooNew if the file was migrated by a newer rgpt2.
        """
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise StorageError("the database must be a file path (WAL needs a file)")
        path = Path(path)
        if not path.parent.exists():
            raise StorageError(f"cannot create the database {path}: {path.parent} does not exist")
        if migrate:
            applied = await asyncio.to_thread(migrations.migrate_path, path)
            for m in applied:
                log.info("database %s: applied migration %s", path, m.name)
        else:
            state = await asyncio.to_thread(maintenance.status, path)
            if state.too_new:
                raise DatabaseTooNew(
                    f"the database is at schema version {state.version} but this rgpt2 only "
                    f"knows up to {state.latest}: upgrade rgpt2"
                )
            if state.pending:
                raise StorageError(
                    f"the database {path} needs {len(state.pending)} migration(s): "
                    "run `rgpt2 db migrate`"
                )
        try:
            conn = await aiosqlite.connect(
                str(path), isolation_level=None, timeout=busy_timeout_ms / 1000
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        return cls(conn, path)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            # a checkpoint keeps the -wal file small for the next start and for copies
            try:
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # another connection may be reading: not fatal
                log.debug("checkpoint at close skipped: %s", exc)
            await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (also cancellation)."""
        async with self._lock:
            self._check_open()
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                # shielded: a second cancellation must not leave the transaction open
                await asyncio.shield(self._rollback())
                raise
            else:
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection in autocommit mode, for reads (each statement sees committed data)."""
        async with self._lock:
            self._check_open()
            yield self._conn

    async def schema_version(self) -> int:
        async with self.reading() as conn:
            async with conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the database is closed")

"""Schema migrations: ``NNNN_slug.sql`` files applied in order, version in ``user_version``.

Synchronous on purpose (plain :mod:`sqlite3`): the ``rgpt2 db`` commands use it directly and
:class:`bot.storage.db.Database` runs it in a thread before opening its connection.

Each file is applied inside ONE explicit transaction together with its ``PRAGMA
user_version`` bump, so a failing migration leaves the database exactly as it was.
``Connection.executescript`` would commit first and run the script outside our transaction,
so scripts are split into statements with :func:`sqlite3.complete_statement` (SQLite's own
tokenizer: it knows about strings, comments and trigger bodies) and executed one by one.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from bot.storage.errors import DatabaseTooNew, MigrationError, StorageError

MIGRATIONS_PACKAGE = "bot.storage.migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# statements a migration must not contain: they would break the one-transaction guarantee
_FORBIDDEN = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|PRAGMA)\b", re.I)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # file name, e.g. "0001_init.sql"
    sql: str

    def statements(self) -> list[str]:
        return split_statements(self.sql)


def split_statements(script: str) -> list[str]:
    """The statements of a script, each ending with ``;``, comments-only chunks dropped."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        # a line may end several statements ("CREATE ...; CREATE ...;"): cut at each ";"
        # that completes one, so statement errors point at the right statement
        while ";" in buffer:
            cut = _first_complete_cut(buffer)
            if cut is None:
                break
            statement, buffer = buffer[:cut], buffer[cut:]
            if _has_sql(statement):
                statements.append(_strip_leading_comments(statement).strip())
    if _has_sql(buffer):
        raise MigrationError(
            f"unterminated statement at the end of the script: {buffer.strip()[:80]!r}"
        )
    return statements


def _first_complete_cut(buffer: str) -> int | None:
    start = 0
    while (index := buffer.find(";", start)) != -1:
        if sqlite3.complete_statement(buffer[: index + 1]):
            return index + 1
        start = index + 1
    return None


def _has_sql(chunk: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", chunk, flags=re.S)
    return bool(without_comments.strip(" \t\r\n;"))


def load_migrations(source: str | Path | Traversable | None = None) -> list[Migration]:
    """The migrations in ``source`` (default: those shipped in :mod:`bot.storage.migrations`).

    Raises MigrationError for a misnamed ``.sql`` file, a duplicate number or a gap.
    """
    if source is None:
        folder: Traversable | Path = resources.files(MIGRATIONS_PACKAGE)
    elif isinstance(source, str | Path):
        folder = Path(source)
    else:
        folder = source
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if not match:
            raise MigrationError(
                f"migration file {entry.name!r} is not named NNNN_slug.sql (e.g. 0002_add_x.sql)"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations numbered {version:04d}: {found[version].name} and {entry.name}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    migrations = [found[v] for v in sorted(found)]
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migrations must be numbered 0001, 0002, ... without gaps: "
                f"expected {expected:04d}, found {migration.name}"
            )
    return migrations


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def pending(conn: sqlite3.Connection, migrations: list[Migration]) -> list[Migration]:
    """Migrations not yet applied; DatabaseTooNew if the database is ahead of the code."""
    current = schema_version(conn)
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise DatabaseTooNew(
            f"the database is at schema version {current} but this rgpt2 only knows up to "
            f"{latest}: upgrade rgpt2, or restore a backup made by this version"
        )
    return [m for m in migrations if m.version > current]


def apply(conn: sqlite3.Connection, migration: Migration) -> None:
    """Apply one migration and bump user_version in one transaction; all or nothing.

    Foreign keys are switched off while it runs (SQLite's recipe for table rebuilds;
    the pragma is a no-op inside a transaction) and checked before commit instead.
    """
    if conn.in_transaction:
        raise StorageError("cannot migrate inside an open transaction")
    statements = migration.statements()
    for statement in statements:
        forbidden = _FORBIDDEN.match(statement)
        if forbidden:
            raise MigrationError(
                f"{migration.name}: {forbidden.group(1).upper()} is not allowed in a "
                "migration (each file already runs in one transaction with its version bump)"
            )
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    raise MigrationError(
                        f"{migration.name} failed, database left at version "
                        f"{migration.version - 1}: {exc} in: {_first_line(statement)}"
                    ) from exc
            violations = conn.execute("PRAGMA foreign_key_check").fetchall()
            if violations:
                raise MigrationError(
                    f"{migration.name} failed, database left at version "
                    f"{migration.version - 1}: it leaves {len(violations)} foreign key "
                    f"violation(s), first in table {violations[0][0]}"
                )
            # PRAGMA takes no parameters; version is an int from the file name
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration in order; returns those applied (empty: up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    applied = []
    for migration in pending(conn, migrations):
        apply(conn, migration)
        applied.append(migration)
    return applied


def connect(path: str | Path, *, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A synchronous connection with the project's settings (autocommit, WAL, foreign keys)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_ms / 1000)
    configure(conn, busy_timeout_ms=busy_timeout_ms)
    return conn


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int = 5000) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable in WAL mode except for the last commits on power loss
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def migrate_path(path: str | Path, migrations: list[Migration] | None = None) -> list[Migration]:
    """Open (creating if needed) the database at ``path`` and migrate it."""
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    try:
        return migrate(conn, migrations)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate the database {path}: {exc}") from exc
    finally:
        conn.close()


def _strip_leading_comments(statement: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", statement, flags=re.S)


def _first_line(statement: str) -> str:
    line = statement.strip().splitlines()[0]
    return line if len(line) <= 80 else line[:77] + "..."

"""Migrations: applied in order, each all-or-nothing with its version bump."""

from __future__ import annotations

import fnmatch
import shutil
import sqlite3
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bot.storage import Database, DatabaseTooNew, MigrationError, StorageError
from bot.storage import migrate as m

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_TABLES = {
    "guild_settings",
    "verses",
    "upvotes",
    "battles",
    "battle_votes",
    "finetune_jobs",
    "lyrics",
}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def schema_dump(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


def version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A copy of the shipped migrations that a test may extend."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for entry in resources.files(m.MIGRATIONS_PACKAGE).iterdir():
        if entry.name.endswith(".sql"):
            (folder / entry.name).write_text(entry.read_text(encoding="utf-8"))
    return folder


def test_shipped_migrations_are_found_through_importlib_resources():
    shipped = m.load_migrations()
    assert [x.version for x in shipped] == list(range(1, len(shipped) + 1))
    assert shipped[0].name == "0001_init.sql"
    names = {e.name for e in resources.files("bot.storage.migrations").iterdir()}
    assert {x.name for x in shipped} <= names


def test_package_data_ships_the_sql_files_in_a_wheel():
    # a non-editable install only contains what package-data lists
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["bot.storage.migrations"]
    for migration in m.load_migrations():
        assert any(fnmatch.fnmatch(migration.name, p) for p in patterns), migration.name
    assert (ROOT / "bot" / "storage" / "migrations" / "__init__.py").is_file()


def test_fresh_file_gets_every_table_and_the_latest_version(tmp_path):
    db = tmp_path / "fresh.sqlite3"
    applied = m.migrate_path(db)
    assert [x.name for x in applied] == [x.name for x in m.load_migrations()]
    assert EXPECTED_TABLES <= tables(db)
    assert version(db) == m.load_migrations()[-1].version
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        strict = conn.execute(
            "SELECT name FROM pragma_table_list WHERE strict = 1 AND schema = 'main'"
        ).fetchall()
    assert EXPECTED_TABLES <= {r[0] for r in strict}


def test_rerunning_is_a_no_op(tmp_path):
    db = tmp_path / "again.sqlite3"
    m.migrate_path(db)
    before = schema_dump(db)
    assert m.migrate_path(db) == []
    assert schema_dump(db) == before
    assert version(db) == m.load_migrations()[-1].version


def test_broken_migration_rolls_back_its_changes_and_the_version(tmp_path, migrations_dir):
    db = tmp_path / "broken.sqlite3"
    m.migrate_path(db, m.load_migrations(migrations_dir))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, '2026-01-01T00:00:00.000000+00:00')"
        )
    before_schema, before_version = schema_dump(db), version(db)
    n = before_version + 1
    (migrations_dir / f"{n:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER) STRICT;\n"
        "INSERT INTO half_done VALUES (1);\n"
        "UPDATE guild_settings SET explicit_filter = 'mask';\n"
        "ALTER TABLE verses ADD COLUMN extra TEXT;\n"
        "INSERT INTO no_such_table VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match=f"{n:04d}_broken.sql failed.*no_such_table"):
        m.migrate_path(db, m.load_migrations(migrations_dir))
    assert version(db) == before_version
    assert schema_dump(db) == before_schema
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT explicit_filter FROM guild_settings").fetchone()[0] == "off"
    # once fixed, the same number applies cleanly
    (migrations_dir / f"{n:04d}_broken.sql").write_text("CREATE TABLE done (x INTEGER) STRICT;")
    assert [x.version for x in m.migrate_path(db, m.load_migrations(migrations_dir))] == [n]
    assert version(db) == n and "done" in tables(db)


def test_migration_leaving_foreign_key_violations_is_rolled_back(tmp_path, migrations_dir):
    db = tmp_path / "fk.sqlite3"
    m.migrate_path(db, m.load_migrations(migrations_dir))
    n = version(db) + 1
    (migrations_dir / f"{n:04d}_orphan.sql").write_text(
        "INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (999, 1, 'x');"
    )
    with pytest.raises(MigrationError, match="foreign key"):
        m.migrate_path(db, m.load_migrations(migrations_dir))
    assert version(db) == n - 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM upvotes").fetchone()[0] == 0


def test_transaction_control_in_a_migration_is_refused(tmp_path, migrations_dir):
    db = tmp_path / "tx.sqlite3"
    m.migrate_path(db, m.load_migrations(migrations_dir))
    n = version(db) + 1
    (migrations_dir / f"{n:04d}_commit.sql").write_text("CREATE TABLE a (x INTEGER);\nCOMMIT;\n")
    with pytest.raises(MigrationError, match="COMMIT is not allowed"):
        m.migrate_path(db, m.load_migrations(migrations_dir))
    assert "a" not in tables(db) and version(db) == n - 1


def test_database_from_the_future_is_refused(tmp_path):
    db = tmp_path / "future.sqlite3"
    m.migrate_path(db)
    latest = m.load_migrations()[-1].version
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {latest + 1}")
    with pytest.raises(DatabaseTooNew, match=f"version {latest + 1}.*upgrade rgpt2"):
        m.migrate_path(db)
    assert version(db) == latest + 1


async def test_database_open_refuses_the_future_too(tmp_path):
    db = tmp_path / "future.sqlite3"
    m.migrate_path(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(DatabaseTooNew):
        await Database.open(db)
    with pytest.raises(DatabaseTooNew):
        await Database.open(db, migrate=False)


async def test_database_open_without_migrate_refuses_a_stale_file(tmp_path):
    db = tmp_path / "stale.sqlite3"
    with pytest.raises(StorageError, match="rgpt2 db migrate"):
        await Database.open(db, migrate=False)
    opened = await Database.open(db)
    assert await opened.schema_version() == m.load_migrations()[-1].version
    await opened.close()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "without gaps: expected 0002"),
        (["0002_b.sql"], "expected 0001"),
        (["0001_a.sql", "0001_b.sql"], "two migrations numbered 0001"),
        (["0001_a.sql", "2_b.sql"], "not named NNNN_slug.sql"),
        (["0001_A-b.sql"], "not named NNNN_slug.sql"),
    ],
)
def test_numbering_is_checked(tmp_path, files, message):
    for name in files:
        (tmp_path / name).write_text("CREATE TABLE t (x INTEGER);")
    with pytest.raises(MigrationError, match=message):
        m.load_migrations(tmp_path)


def test_splitting_keeps_triggers_strings_and_comments_whole():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');  CREATE TABLE u (y INTEGER);
    /* block; comment */
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO u VALUES (1);
        INSERT INTO u VALUES (2);
    END;
    -- trailing comment only
    """
    statements = m.split_statements(script)
    assert len(statements) == 3
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")
    conn = sqlite3.connect(":memory:")
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO t DEFAULT VALUES")
    assert conn.execute("SELECT COUNT(*) FROM u").fetchone()[0] == 2


def test_unterminated_statement_is_reported():
    with pytest.raises(MigrationError, match="unterminated"):
        m.split_statements("CREATE TABLE t (x INTEGER);\nCREATE TABLE u (y INTEGER)")


def test_copying_the_shipped_folder_loads_the_same_migrations(tmp_path):
    source = Path(str(resources.files(m.MIGRATIONS_PACKAGE)))
    shutil.copytree(source, tmp_path / "copy")
    assert m.load_migrations(tmp_path / "copy") == m.load_migrations()

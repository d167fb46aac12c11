"""``rgpt2 db migrate|status|backup`` through the real command line."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.storage import migrate as m
from rgpt2.cli import main

LATEST = m.load_migrations()[-1].version


def rgpt2(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_migrate_then_status(tmp_path, capsys):
    db = tmp_path / "x.sqlite3"
    code, out, _ = rgpt2(capsys, "db", "status", "--db", str(db))
    assert code == 0 and "does not exist" in out and "0001_init.sql" in out
    assert not db.exists()  # status never creates the file

    code, out, _ = rgpt2(capsys, "db", "migrate", "--db", str(db))
    assert code == 0 and "applied 0001_init.sql" in out and f"schema version {LATEST}" in out
    code, out, _ = rgpt2(capsys, "db", "migrate", "--db", str(db))
    assert code == 0 and "up to date" in out and "applied" not in out

    code, out, _ = rgpt2(capsys, "db", "status", "--db", str(db))
    assert code == 0
    assert f"schema version {LATEST} (latest {LATEST})" in out and "no pending migrations" in out


def test_status_of_a_database_from_the_future(tmp_path, capsys):
    db = tmp_path / "future.sqlite3"
    m.migrate_path(db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 3}")
    code, out, _ = rgpt2(capsys, "db", "status", "--db", str(db))
    assert code == 1 and "NEWER" in out
    code, _, err = rgpt2(capsys, "db", "migrate", "--db", str(db))
    assert code == 2 and "upgrade rgpt2" in err and "Traceback" not in err


def test_not_a_database_is_one_clear_line(tmp_path, capsys):
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("hello")
    for action in ("migrate", "status"):
        code, _, err = rgpt2(capsys, "db", action, "--db", str(junk))
        assert code == 2 and "not a database" in err and len(err.strip().splitlines()) == 1


def test_db_defaults_to_the_rgpt2_db_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("RGPT2_DB", str(tmp_path / "from-env.sqlite3"))
    code, _, _ = rgpt2(capsys, "db", "migrate")
    assert code == 0 and (tmp_path / "from-env.sqlite3").exists()
    monkeypatch.delenv("RGPT2_DB")
    code, _, _ = rgpt2(capsys, "db", "migrate")
    assert code == 0 and (tmp_path / "rgpt2.sqlite3").exists()


def test_backup_refuses_to_overwrite_and_missing_sources(tmp_path, capsys):
    db, out_file = tmp_path / "src.sqlite3", tmp_path / "copy.sqlite3"
    code, _, err = rgpt2(capsys, "db", "backup", str(out_file), "--db", str(db))
    assert code == 2 and "no database" in err and not db.exists()
    m.migrate_path(db)
    assert rgpt2(capsys, "db", "backup", str(out_file), "--db", str(db))[0] == 0
    code, _, err = rgpt2(capsys, "db", "backup", str(out_file), "--db", str(db))
    assert code == 2 and "--force" in err
    assert rgpt2(capsys, "db", "backup", str(out_file), "--db", str(db), "--force")[0] == 0
    code, _, err = rgpt2(capsys, "db", "backup", str(db), "--db", str(db), "--force")
    assert code == 2 and "another file" in err


def verse_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, requester_id, text FROM verses ORDER BY id").fetchall()


def test_backup_while_a_writer_is_active_holds_the_same_rows(tmp_path, capsys):
    db = tmp_path / "live.sqlite3"
    m.migrate_path(db)
    stop = threading.Event()
    written = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        # the bot's side: its own connection, a commit per verse and an upvote, non-stop
        conn = m.connect(db)
        try:
            n = 0
            while not stop.is_set():
                n += 1
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "INSERT INTO verses (requester_id, bars, scheme, text, created_at) "
                    "VALUES (?, 1, 'free', ?, '2026-01-01T00:00:00.000000+00:00')",
                    (n, f"bar number {n}"),
                )
                conn.execute(
                    "INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, 1, 'x')",
                    (cur.lastrowid,),
                )
                conn.execute("COMMIT")
                if n >= 50:
                    written.set()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            written.set()
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(30)
        copies = []
        for i in range(3):  # several backups, each racing the writer
            target = tmp_path / f"backup-{i}.sqlite3"
            code, out, err = rgpt2(capsys, "db", "backup", str(target), "--db", str(db))
            assert code == 0, err
            assert f"schema version {LATEST}" in out
            copies.append(target)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    source = verse_rows(db)
    sizes = []
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            upvotes = conn.execute("SELECT COUNT(*) FROM upvotes").fetchone()[0]
        rows = verse_rows(copy)
        assert rows, "the backup is empty"
        # one consistent snapshot: exactly the source's first rows, each verse with its upvote
        assert rows == source[: len(rows)]
        assert upvotes == len(rows)
        sizes.append(len(rows))
    assert sizes == sorted(sizes)
    assert len(source) > sizes[0]  # the writer really kept writing around the backups

"""What the schema itself enforces, whatever code writes to it (raw SQL on purpose)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.storage import migrate as m

T = "2026-01-01T00:00:00.000000+00:00"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "schema.sqlite3"
    m.migrate_path(path)
    connection = m.connect(path)  # the project's settings: foreign_keys=ON
    yield connection
    connection.close()


def add_verse(conn: sqlite3.Connection, requester: int = 1) -> int:
    cur = conn.execute(
        "INSERT INTO verses (requester_id, bars, scheme, text, created_at) VALUES (?, 2, 'AABB', 'a\nb', ?)",
        (requester, T),
    )
    return cur.lastrowid


def add_battle(conn: sqlite3.Connection, state: str = "pending") -> int:
    cur = conn.execute(
        "INSERT INTO battles (challenger_id, opponent_id, bars, state, created_at, updated_at) "
        "VALUES (1, 2, 8, ?, ?, ?)",
        (state, T, T),
    )
    return cur.lastrowid


def test_settings_of_the_connection(conn):
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_double_upvote_by_one_member_is_rejected(conn):
    verse = add_verse(conn)
    conn.execute("INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, 7, ?)", (verse, T))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, 7, ?)", (verse, T)
        )
    # another member may
    conn.execute("INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, 8, ?)", (verse, T))
    assert conn.execute("SELECT COUNT(*) FROM upvotes").fetchone()[0] == 2


def test_double_battle_vote_is_rejected(conn):
    battle = add_battle(conn)
    sql = "INSERT INTO battle_votes (battle_id, voter_id, side, created_at, updated_at) VALUES (?, 5, ?, ?, ?)"
    conn.execute(sql, (battle, "challenger", T, T))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, (battle, "opponent", T, T))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (999, 1, '{T}')",
        "INSERT INTO battle_votes (battle_id, voter_id, side, created_at, updated_at) VALUES (999, 1, 'opponent', '{T}', '{T}')",
        "INSERT INTO lyrics (user_id, text, sha256, job_id, created_at) VALUES (1, 'x', '{H}', 999, '{T}')",
        "INSERT INTO battles (challenger_id, opponent_id, bars, challenger_verse_id, created_at, updated_at) VALUES (1, 2, 8, 999, '{T}', '{T}')",
    ],
)
def test_foreign_keys_hold(conn, sql):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute(sql.format(T=T, H="a" * 64))


def test_deleting_a_verse_removes_its_upvotes(conn):
    verse = add_verse(conn)
    conn.execute("INSERT INTO upvotes (verse_id, user_id, created_at) VALUES (?, 7, ?)", (verse, T))
    conn.execute("DELETE FROM verses WHERE id = ?", (verse,))
    assert conn.execute("SELECT COUNT(*) FROM upvotes").fetchone()[0] == 0


def test_a_verse_used_in_a_battle_cannot_be_deleted(conn):
    v1, v2 = add_verse(conn), add_verse(conn)
    battle = add_battle(conn)
    conn.execute("UPDATE battles SET state = 'writing' WHERE id = ?", (battle,))
    conn.execute(
        "UPDATE battles SET state = 'voting', challenger_verse_id = ?, opponent_verse_id = ? WHERE id = ?",
        (v1, v2, battle),
    )
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("DELETE FROM verses WHERE id = ?", (v1,))


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["pending", "writing", "voting", "closed"], True),
        (["pending", "declined"], True),
        (["pending", "expired"], True),
        (["pending", "writing", "cancelled"], True),
        (["pending", "voting"], False),
        (["pending", "closed"], False),
        (["pending", "declined", "writing"], False),
        (["pending", "writing", "voting", "closed", "voting"], False),
        (["pending", "expired", "pending"], False),
    ],
)
def test_battle_states_only_move_along_the_allowed_edges(conn, path, allowed):
    v1, v2 = add_verse(conn), add_verse(conn)
    battle = add_battle(conn, path[0])

    def step(state: str) -> None:
        extra = {"closed": ", winner = 'tie'"}.get(state, "")
        conn.execute(
            f"UPDATE battles SET state = ?, challenger_verse_id = ?, opponent_verse_id = ?{extra} WHERE id = ?",
            (state, v1, v2, battle),
        )

    for state in path[1:-1]:
        step(state)
    if allowed:
        step(path[-1])
        assert conn.execute("SELECT state FROM battles").fetchone()[0] == path[-1]
    else:
        with pytest.raises(sqlite3.IntegrityError, match="illegal battle state change"):
            step(path[-1])


def test_battle_checks(conn):
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # self-battle
        conn.execute(
            "INSERT INTO battles (challenger_id, opponent_id, bars, created_at, updated_at) VALUES (1, 1, 8, ?, ?)",
            (T, T),
        )
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # unknown state
        add_battle(conn, "won")
    battle = add_battle(conn)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # winner while open
        conn.execute("UPDATE battles SET winner = 'tie' WHERE id = ?", (battle,))


def test_only_one_finetune_job_active_at_a_time(conn):
    sql = "INSERT INTO finetune_jobs (state, started_by, epochs, created_at) VALUES (?, 1, 1, ?)"
    conn.execute(sql, ("running", T))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, ("queued", T))
    conn.execute(
        "INSERT INTO finetune_jobs (state, started_by, epochs, created_at, finished_at) VALUES ('failed', 1, 1, ?, ?)",
        (T, T),
    )
    assert conn.execute("SELECT COUNT(*) FROM finetune_jobs").fetchone()[0] == 2


def test_lyrics_duplicate_hash_is_rejected(conn):
    sql = "INSERT INTO lyrics (user_id, text, sha256, created_at) VALUES (?, 'x', ?, ?)"
    conn.execute(sql, (1, "b" * 64, T))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(sql, (2, "b" * 64, T))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO verses (requester_id, bars, scheme, text, sampling, created_at) VALUES (1, 2, 'AABB', 'x', 'not json', '{T}')",
        "INSERT INTO verses (requester_id, bars, scheme, text, rap_score, created_at) VALUES (1, 2, 'AABB', 'x', 1.5, '{T}')",
        "INSERT INTO verses (requester_id, bars, scheme, text, created_at) VALUES ('alice', 2, 'AABB', 'x', '{T}')",
        "INSERT INTO guild_settings (guild_id, explicit_filter, updated_at) VALUES (1, 'bleep', '{T}')",
        "INSERT INTO guild_settings (guild_id, allowed_channel_ids, updated_at) VALUES (1, '{{}}', '{T}')",
        "INSERT INTO finetune_jobs (started_by, epochs, progress, created_at) VALUES (1, 1, 1.5, '{T}')",
        "INSERT INTO lyrics (user_id, text, sha256, status, created_at) VALUES (1, 'x', '{H}', 'maybe', '{T}')",
    ],
)
def test_checks_and_strict_types(conn, sql):
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql.format(T=T, H="c" * 64))

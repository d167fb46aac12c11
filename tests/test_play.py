"""`rgpt2 play`: the terminal front-end over the bot's services (no Discord, no token)."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest

from bot.play import Play, member_id, parse_line
from rgpt2.cli import main
from tests.bot_fakes import make_services


def test_parse_line_reads_positional_words_and_key_value_options():
    assert parse_line("/rap topic:money on my mind bars:8") == (
        "rap",
        [],
        {"topic": "money on my mind", "bars": "8"},
    )
    assert parse_line("/battle alice bob topic:gold") == (
        "battle",
        ["alice", "bob"],
        {"topic": "gold"},
    )
    assert parse_line("/upvote 3 as:carol") == ("upvote", ["3"], {"as": "carol"})
    assert member_id("Alice") == member_id("alice") != member_id("bob")


SCRIPT = """\
/rap topic:money bars:4
/upvote 1 as:bob
/upvote 1 as:carol
/upvote 1 as:bob
/rap bars:99
/battle alice bob topic:gold bars:4 opponent_topic:silver
/vote 1 alice as:carol
/vote 1 opponent as:dave
/vote 1 challenger as:dave
/vote 1 challenger as:alice
/close 1
/top all
/leaderboard
/battle stats alice
/lyrics submit one two three / four five six / seven eight nine / ten eleven twelve
/lyrics submit one two three / four five six / seven eight nine / ten eleven twelve
/lyrics stats
/rap topic:ping
/nonsense
/quit
/rap topic:never reached
"""


async def test_a_piped_session_goes_through_the_services_and_database(tmp_path):
    services = await make_services(tmp_path / "play.sqlite3")
    repo = services.repo
    lines: list[str] = []
    session = Play(services, out=lines.append)
    assert await session.run(io.StringIO(SCRIPT), echo=True) == 0
    out = "\n".join(lines)

    assert "== Verse #1 — money ==" in out and "money number 3" in out
    assert "bob upvoted verse #1: [▲ 1]" in out
    assert "carol upvoted verse #1: [▲ 2]" in out
    assert "bob took back the upvote on verse #1: [▲ 1]" in out
    assert "(only you see this) Bars must be between 4 and 32" in out
    assert "Battle #1 — the challenger's verse (alice)" in out
    assert "gold number 0" in out and "silver number 0" in out
    assert "(dave only) You changed your vote to the challenger." in out
    assert "(alice only) You're in this battle" in out
    assert "🏆 @alice beats @bob, 2–0." in out
    assert "Battle record of alice: 1 wins, 0 losses" in out
    assert "Submission #1 (4 bars)" in out and "contributed already" in out
    assert "@everyone listen up @123" in out  # shown as text: a terminal pings nobody
    assert "Unknown command /nonsense" in out
    assert "never reached" not in out

    # the same database the bot uses: the verses, votes, battle and lyrics are there
    assert await repo.count_verses() == 4  # /rap money, two battle verses, /rap ping
    assert await repo.upvote_count(1) == 1 and await repo.has_upvoted(1, member_id("carol"))
    battle = await repo.get_battle(1)
    assert battle.state == "closed" and battle.winner_id == member_id("alice")
    assert (await repo.lyrics_stats()).pending == 1
    await services.close()


async def test_queue_order_and_leaderboard_in_play(tmp_path):
    services = await make_services(tmp_path / "play.sqlite3")
    lines: list[str] = []
    session = Play(services, out=lines.append, user="zed")
    for line in (
        "/rap a",
        "/rap b as:amy",
        "/rap c as:amy",
        "/upvote 2",
        "/upvote 3",
        "/upvote 1 as:amy",
    ):
        assert await session.handle(line)
    lines.clear()
    await session.handle("/leaderboard")
    board = "\n".join(lines)
    assert board.index("amy — ▲ 2 on 2 verses") < board.index("zed — ▲ 1 on 1 verses")
    await services.close()


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:

    from rgpt2.bench import build_tiny_models
    from tests.conftest import TINY_VERSES

    rnd = random.Random(0)
    words = [w for v in TINY_VERSES for bar in v for w in bar.split()]
    extra = [[" ".join(rnd.choice(words) for _ in range(5)) for _ in range(4)] for _ in range(20)]
    return build_tiny_models(tmp_path_factory.mktemp("models"), TINY_VERSES + extra)


def test_rgpt2_play_runs_the_real_generator_from_piped_input(
    tiny_models, tmp_path, monkeypatch, capsys
):
    fwd, rev = tiny_models
    monkeypatch.setattr(sys, "stdin", io.StringIO("/rap topic:money bars:4\n/upvote 1\n/top all\n"))
    monkeypatch.chdir(tmp_path)  # no .env here
    db = tmp_path / "play.sqlite3"
    code = main(
        ["play", "--forward", str(fwd), "--reverse", str(rev), "--db", str(db), "--no-scorer"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "== Verse #1 — money ==" in out
    assert "Model: fwd " in out and "rev " in out
    assert "you upvoted verse #1: [▲ 1]" in out
    assert "1. #1 · ▲ 1" in out
    assert db.is_file()


def test_rgpt2_play_without_models_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("/quit\n"))
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "play",
            "--forward",
            str(tmp_path / "nope"),
            "--reverse",
            str(tmp_path / "nope"),
            "--db",
            str(tmp_path / "x.sqlite3"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err

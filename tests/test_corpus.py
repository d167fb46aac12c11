import json

import pytest

from rgpt2.cli import main
from rgpt2.corpus import (
    CREDIT,
    DUPLICATE,
    HEADER,
    REPEATED_BAR,
    TOO_LONG,
    TOO_SHORT,
    chunk_verse,
    clean_text,
    fingerprint,
    load_corpus,
    read_verses,
    split_verses,
)

VERSE_A = ["I got money in the bank", "you know I never drank", "city is my home", "on my own"]
VERSE_B = ["we came up from the street", "never had enough to eat", "crowd on its feet", "beat"]


def write(path, verses, sep="\n\n"):
    path.write_text(sep.join("\n".join(v) for v in verses) + "\n", encoding="utf-8")
    return path


def test_clean_text_fixes_invisible_spaces_and_curly_quotes():
    assert clean_text("I\u200b\u200bain\u2019t  \u00a0 \u201cdone\u201d\ufeff ") == 'Iain\'t "done"'
    assert clean_text("\u2018yeah\u2019\u00a0yeah") == "'yeah' yeah"
    assert clean_text(" \u200b \u00a0 ") == ""


def test_headers_are_dropped_but_adlibs_kept(tmp_path):
    verse = [
        "[Verse 1: Nas]",
        "(Hook)",
        "Chorus:",
        "(x2)",
        "{sample plays}",
        *VERSE_A,
        "(come on)",
    ]
    corpus = load_corpus([write(tmp_path / "a.txt", [verse])])
    assert corpus.verses == [[*VERSE_A, "(come on)"]]
    assert corpus.stats.dropped[HEADER].bars == 5


def test_credit_lines_are_dropped_but_lyrics_about_writing_kept(tmp_path):
    verse = [
        "Produced by Somebody",
        "Song Title - Written by A and B. Published by C (ASCAP)",
        "Written on the walls of Cairo",
        *VERSE_A,
    ]
    corpus = load_corpus([write(tmp_path / "a.txt", [verse])])
    assert corpus.verses == [["Written on the walls of Cairo", *VERSE_A]]
    assert corpus.stats.dropped[CREDIT].bars == 2


def test_lines_over_200_chars_are_dropped(tmp_path):
    long_line = "word " * 41  # 205 characters before stripping
    corpus = load_corpus([write(tmp_path / "a.txt", [[long_line, *VERSE_A, "x" * 200]])])
    assert corpus.verses == [[*VERSE_A, "x" * 200]]
    assert corpus.stats.dropped[TOO_LONG].bars == 1
    assert corpus.stats.dropped[TOO_LONG].words == 41


def test_duplicates_and_short_verses_are_dropped_with_counts(tmp_path):
    short = ["just", "three", "bars"]
    write(tmp_path / "a.txt", [VERSE_A, short, VERSE_B])
    write(tmp_path / "b.txt", [VERSE_A])  # the same verse in another file
    corpus = load_corpus([tmp_path])
    assert corpus.verses == [VERSE_A, VERSE_B]
    s = corpus.stats
    assert s.files == 2
    assert (s.dropped[DUPLICATE].verses, s.dropped[DUPLICATE].bars) == (1, 4)
    assert (s.dropped[TOO_SHORT].verses, s.dropped[TOO_SHORT].bars) == (1, 3)
    assert (s.read.verses, s.kept.verses, s.kept.bars) == (4, 2, 8)
    assert s.kept.words == sum(len(b.split()) for b in VERSE_A + VERSE_B)


def test_a_bar_is_kept_at_most_twice_per_verse(tmp_path):
    hook = "coke and white"
    corpus = load_corpus([write(tmp_path / "a.txt", [[*VERSE_A, hook, hook, hook, hook]])])
    assert corpus.verses == [[*VERSE_A, hook, hook]]
    assert corpus.stats.dropped[REPEATED_BAR].bars == 2


def test_blank_lines_with_invisible_characters_separate_verses_and_songs():
    text = "a\nb\n\u200b\nc\n \u00a0\n\n\nd\n"
    assert split_verses(text) == [["a", "b"], ["c"], ["d"]]


def test_long_verses_are_chunked(tmp_path):
    bars = [f"bar number {i}" for i in range(20)]
    corpus = load_corpus([write(tmp_path / "a.txt", [bars])], max_bars=8)
    assert [len(v) for v in corpus.verses] == [8, 8, 4]
    assert sum(corpus.verses, []) == bars
    assert corpus.stats.chunked_verses == 1


def test_chunk_verse_by_a_measure():
    bars = ["a b c"] * 10
    words = lambda bs: sum(len(b.split()) for b in bs)  # noqa: E731
    chunks = chunk_verse(bars, 12, measure=words, min_bars=2)
    assert all(words(c) <= 12 for c in chunks)
    assert sum(chunks, []) == bars
    assert chunk_verse(bars[:3], 12, measure=words) == [bars[:3]]


def test_read_verses_of_files_and_folders_and_fingerprint(tmp_path):
    sub = tmp_path / "songs"
    sub.mkdir()
    write(sub / "a.txt", [VERSE_A])
    write(tmp_path / "b.txt", [VERSE_B])
    (sub / "notes.json").write_text("{}")  # not lyrics
    assert read_verses([sub, tmp_path / "b.txt"]) == [VERSE_A, VERSE_B]
    c1 = load_corpus([sub, tmp_path / "b.txt"])
    assert c1.fingerprint == fingerprint([VERSE_A, VERSE_B])
    assert c1.fingerprint != fingerprint([VERSE_B, VERSE_A])
    with pytest.raises(FileNotFoundError):
        read_verses([tmp_path / "missing"])


def test_corpus_stats_command(tmp_path, capsys):
    write(tmp_path / "a.txt", [["(Hook)", *VERSE_A], VERSE_A])
    assert main(["corpus", "stats", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kept"]["verses"] == 1
    assert data["dropped"][DUPLICATE]["verses"] == 1
    assert data["dropped"][HEADER]["bars"] == 1
    assert data["fingerprint"].startswith("sha256:")
    assert main(["corpus", "stats", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "duplicate_verse" in out
    assert main(["corpus", "stats", str(tmp_path / "nope")]) == 2

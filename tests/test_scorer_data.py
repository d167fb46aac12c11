"""Scorer data: masking normalisation, text normalisation, artist-disjoint splits, weights."""

from __future__ import annotations

import random
import string
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from scorer_fixtures import tiny_data_dir

from rgpt2.scorer_data import (
    BAR_SEP,
    POP,
    RAP,
    Example,
    build_data,
    example_weights,
    lines_as_verses,
    normalise_line,
    normalise_masking,
    rap_verse_blocks,
    repeated_phrase_share,
    split_groups,
    text_to_input,
    vocable_share,
    windows,
)


def test_masked_and_unmasked_profanity_normalise_identically():
    pairs = [
        ("F***in' n****s, s***!", "Fuckin' niggas, shit!"),
        ("b****es in the a** club", "bitches in the ass club"),
        ("Motherf***er, godd***", "motherfucker, goddamn"),
        ("you lil h*", "you lil ho"),
        ("Niggaz and niggers, N****", "niggas and niggas, nigga"),
        ("p**** d***", "pussy dick"),
        ("You can't imagine the f*ck I'm not giving", "you can't imagine the fuck i'm not giving"),
    ]
    for masked, plain in pairs:
        assert normalise_line(masked) == normalise_line(plain), masked


def test_masking_inside_ordinary_words_is_undone():
    # the line file masks "ass" and "tit" inside words: class, glass, pass
    assert normalise_line("first cla** tickets, gla** house, pa** it") == (
        "first class tickets glass house pass it"
    )
    assert normalise_masking("godd*** it") == "goddamn it"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + "*' ,!\u2019", max_size=60))
def test_no_asterisk_survives_normalisation(text):
    assert "*" not in normalise_line(text)


def test_stage_directions_and_bare_masks_lose_their_asterisks():
    assert normalise_line("*coughs* yeah ****") == "coughs yeah"


def test_text_normalisation_evens_out_sources():
    assert normalise_line("Don\u2019t  stop,\u00a0NOW!\u200b") == normalise_line("don't stop now")
    assert normalise_line("'Cause we rollin'") == "cause we rollin"
    for header in ("[Chorus]", "[Verse 2: Drake]", "(Hook)", "[Pre-Chorus: Lady Gaga]", "(2x)"):
        assert normalise_line(header) == "", header
    assert normalise_line("(yeah) we up") == "yeah we up"


def test_non_latin_letters_are_kept():
    assert normalise_line("Привет, МИР!") == "привет мир"
    assert normalise_line("こんにちは 世界") == "こんにちは 世界"


def test_text_to_input_joins_normalised_bars():
    verse = "[Verse 1]\nI got MONEY,\n\n  on my mind\u2019s eye  \n"
    assert text_to_input(verse) == f"i got money{BAR_SEP}on my mind's eye"
    assert text_to_input("") == ""


def test_split_groups_is_disjoint_seeded_and_complete():
    artists = [f"artist {i}" for i in range(20)] * 3
    train, val = split_groups(artists, 0.2, seed=3)
    assert train.isdisjoint(val)
    assert train | val == set(artists)
    assert len(val) == 4
    assert split_groups(artists, 0.2, seed=3) == (train, val)
    assert split_groups(artists, 0.2, seed=4) != (train, val)
    # two groups: one each side even with a tiny share
    assert split_groups(["a", "b"], 0.01, seed=0)[1] and split_groups(["a", "b"], 0.01, seed=0)[0]


def test_windows_cover_the_stream_in_order_within_bounds():
    stream = [f"bar {i}" for i in range(100)]
    chunks = windows(stream, random.Random(0), 4, 16)
    assert all(4 <= len(c) <= 16 for c in chunks)
    flat = [bar for c in chunks for bar in c]
    assert flat == stream[: len(flat)]
    assert len(stream) - len(flat) < 4  # only a too-short tail is dropped
    assert windows(["a", "b"], random.Random(0), 4, 16) == [["a", "b"]]
    assert windows(["a"], random.Random(0), 4, 16) == []


def test_build_data_holds_out_whole_artists(tmp_path: Path):
    root = tiny_data_dir(tmp_path / "data", n_rap_artists=6, n_pop_artists=6)
    data = build_data(root, val_share=0.34, seed=1)
    train_groups = {ex.group for ex in data.train if ex.source != "lines"}
    val_groups = {ex.group for ex in data.val_verses}
    assert val_groups and train_groups.isdisjoint(val_groups)
    assert set(data.split["val_rap_artists"]) == {g for g in val_groups if g.startswith("MC")}
    assert set(data.split["val_pop_artists"]) == {g for g in val_groups if g.startswith("Singer")}
    assert {ex.label for ex in data.val_verses} == {RAP, POP}
    # verse examples are several normalised bars; no validation verse is also in training
    assert all(BAR_SEP in ex.text and ex.text == ex.text.lower() for ex in data.val_verses)
    assert not {ex.text for ex in data.val_verses} & {ex.text for ex in data.train}
    assert not {ex.text for ex in data.val_lines} & {ex.text for ex in data.train}
    # same seed, same split; another seed, another split
    again = build_data(root, val_share=0.34, seed=1)
    assert [e.text for e in again.val_verses] == [e.text for e in data.val_verses]
    others = [build_data(root, val_share=0.34, seed=s).split for s in (2, 3, 4, 5)]
    assert any(o["val_rap_artists"] != data.split["val_rap_artists"] for o in others)


def test_line_file_rows_that_repeat_a_validation_bar_are_not_trained_on(tmp_path: Path):
    root = tiny_data_dir(tmp_path / "data")
    first = build_data(root, seed=0)
    val_bar = first.val_verses[0].text.split(BAR_SEP)[0]
    with (root / "genre" / "rap_pop_lines.csv").open("a") as fh:
        fh.write(f'"{val_bar.upper()}!",rap\n')
    data = build_data(root, seed=0)
    assert val_bar not in {ex.text for ex in data.train if ex.source == "lines"}
    assert data.split["line_rows_dropped_for_overlap"] >= 1


def test_masked_line_file_rows_train_as_unmasked_text(tmp_path: Path):
    root = tiny_data_dir(tmp_path / "data")
    with (root / "genre" / "rap_pop_lines.csv").open("a") as fh:
        for i in range(40):
            fh.write(f'"stack {i} the f***in\' money n****",rap\n')
    data = build_data(root, line_val_share=0.0, seed=0)
    texts = {ex.text for ex in data.train}
    assert "stack 7 the fuckin money nigga" in texts
    assert not any("*" in ex.text for ex in data.train)


def test_example_weights_balance_label_and_kind():
    examples = (
        [Example("r", RAP, "a", "rap_us")] * 8
        + [Example("p", POP, "b", "pop_songs")] * 2
        + [Example("l", RAP, "lines", "lines")] * 5
        + [Example("m", POP, "lines", "lines")] * 5
    )
    weights = example_weights(examples)
    totals: dict[tuple[str, int], float] = {}
    for ex, w in zip(examples, weights, strict=True):
        key = (ex.source == "lines", ex.label)
        totals[key] = totals.get(key, 0.0) + w
    assert len(totals) == 4
    assert max(totals.values()) - min(totals.values()) < 1e-9
    assert abs(sum(weights) - len(examples)) < 1e-9


def test_rap_sections_and_rap_artists_stay_off_the_pop_side(tmp_path: Path):
    import json

    from rgpt2.scorer_data import is_rap_header, read_pop_songs

    assert is_rap_header("[Verse 2: Ja Rule]")
    assert is_rap_header("[Verse 3: Pitbull & Jennifer Lopez]")
    assert is_rap_header("[Verse 2: RM, SUGA]") and is_rap_header("[Rap]")
    assert not is_rap_header("[Chorus: Jennifer Lopez]") and not is_rap_header("[Verse 1]")
    assert not is_rap_header("[Bridge: Grapefruit]")  # "rap" only as a word
    root = tiny_data_dir(tmp_path / "data", n_pop_artists=4)
    songs = root / "genre" / "pop_songs.jsonl"
    lyrics = "[Verse 1: Singer 0]\nsing la la\n\n[Verse 2: Ja Rule]\nzorblax here\nmore zorblax\n\nstill qwertyz\n[Chorus]\nsing la la"
    with songs.open("a") as fh:
        fh.write(json.dumps({"artist": "Singer 0", "title": "feat", "lyrics": lyrics}) + "\n")
        fh.write(
            json.dumps({"artist": "Pitbull", "title": "x", "lyrics": "dale\nmr worldwide"}) + "\n"
        )
    parsed = {s["title"]: s for s in read_pop_songs(songs)}
    assert parsed["feat"]["sections"] == [["sing la la"], ["sing la la"]]
    assert parsed["feat"]["rap_sections"] == 2 and parsed["x"]["rap_artist"]
    data = build_data(root, seed=0)
    texts = " ".join(ex.text for ex in data.train + data.val_verses)
    assert "zorblax" not in texts and "qwertyz" not in texts and "worldwide" not in texts
    assert data.split["pop_rap_artists_dropped"] == ["Pitbull"]
    assert "Pitbull" not in data.split["val_pop_artists"]


VERSE_ONE = [
    "started from the corner with a dream and a pen",
    "every block had a story and a gun in the den",
    "mama working double shifts to keep the lights on",
    "now i write it in the ledger every night till the dawn",
    "paper chasing never made a coward of me",
    "i was built from the pavement where the sirens run free",
]
VERSE_TWO = [
    "second round i came back with a sharper design",
    "took the hunger from the basement to the top of the sign",
    "every critic in the city had a word for my name",
    "now they quoting what i wrote like a verse in a frame",
    "broke the silence with a rhythm that the gutter could feel",
    "turned a whisper into thunder and the thunder to steel",
]


def test_rap_verse_blocks_leave_out_hooks():
    verse_one = list(VERSE_ONE)
    verse_two = list(VERSE_TWO)
    hook = ["we sing it all night long", "oh oh all night long"]
    text = "\n\n".join(
        [
            "\n".join(verse_one + ["(Hook)", *hook, "[Verse 2: MC]", "back to rapping here"]),
            "\n".join(hook * 2),  # a hook block, pasted twice: every copy goes
            "\n".join(verse_two),
            "\n".join(hook * 2),
            # hook bars with one new line: most of its bars occur in other blocks
            "\n".join([*hook, "oh oh all night long yeah", *hook]),
        ]
    )
    assert rap_verse_blocks(text) == [verse_one + ["back to rapping here"], verse_two]


def test_rap_verse_blocks_keep_a_verse_that_quotes_one_bar_of_another():
    first = [f"first bar {i}" for i in range(4)] + ["shared punchline"]
    second = ["shared punchline"] + [f"second bar {i}" for i in range(4)]
    assert rap_verse_blocks("\n".join(first) + "\n\n" + "\n".join(second)) == [first, second]


def test_rap_verse_blocks_leave_out_chants_vocables_and_short_blocks():
    chant = [  # a hook with no copy elsewhere, repeating its own phrase
        "say that's love that's love that's love",
        "that's love that's love we got that's love",
        "say that's love ooh that's love that's love",
        "that's love that's love that's love yeah",
    ]
    text = "\n\n".join(
        [
            "\n".join([*VERSE_ONE[:3], "ooh ooh yeah", "la la la la", *VERSE_ONE[3:]]),
            "\n".join(chant),
            "\n".join(["uh wolf gang", "here we go"]),  # an ad-lib block
            "\n".join(VERSE_TWO),
        ]
    )
    assert rap_verse_blocks(text) == [VERSE_ONE, VERSE_TWO]


def test_vocable_share_counts_sung_sounds_not_words():
    assert vocable_share("Ooh, ooh, yeah!") == 1.0
    assert vocable_share("la la la la la") == 1.0
    assert vocable_share("oh i got the money on my mind") == 1 / 8
    assert vocable_share("") == 1.0
    assert vocable_share("hoe hold on yo") == 0.0


def test_repeated_phrase_share():
    assert repeated_phrase_share(VERSE_ONE) == 0.0
    # trigrams run across bars: we-go-up, go-up-we, up-we-go, we-go-up
    assert repeated_phrase_share(["we go up", "we go up"]) == 0.5
    assert repeated_phrase_share(["go go go go go"]) == 1.0
    # 5 trigrams, the two copies of "a b c" repeat
    assert repeated_phrase_share(["a b c x a b c"]) == 2 / 5
    assert repeated_phrase_share(["too short"]) == 0.0


def test_lines_as_verses_string_lines_of_one_label():
    lines = [Example(f"rap line {i}", RAP, "lines", "lines") for i in range(40)]
    lines += [Example(f"pop line {i}", POP, "lines", "lines") for i in range(30)]
    verses = lines_as_verses(lines, random.Random(0), passes=2)
    assert {v.source for v in verses} == {"line_verses"}
    for v in verses:
        bars = v.text.split(BAR_SEP)
        assert 4 <= len(bars) <= 16
        assert all(b.startswith("rap" if v.label == RAP else "pop") for b in bars)
    used = Counter(b for v in verses for b in v.text.split(BAR_SEP))
    # two passes: every line in two verses, except a short tail window may be left out
    assert set(used.values()) <= {1, 2}
    assert sum(used.values()) >= 2 * 70 - 2 * 2 * 3
    # verses of line-file lines weigh as verses (the rap_us cell), not as lines
    real = Example("a real verse / with its bars", RAP, "mc", "rap_us")
    weights = example_weights([*lines, *verses, real])
    rap_line_verse = len(lines) + next(i for i, v in enumerate(verses) if v.label == RAP)
    assert weights[rap_line_verse] == weights[-1]
    assert weights[0] != weights[-1]  # a rap line sits in another cell

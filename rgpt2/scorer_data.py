"""Data for the rap scorer: text normalisation, example building and artist-disjoint splits.

Everything the classifier sees, in training *and* in scoring, goes through
:func:`normalise_line`, so that differences between the sources that are not about genre
(profanity masking, curly quotes, punctuation, section headers) cannot be learnt.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RAP = 1
POP = 0
LABELS = {"rap": RAP, "pop": POP}

# where train-scorer and eval-scorer find the lyrics (rap_us/, genre/) unless told
DEFAULT_DATA = os.environ.get("RGPT2_DATA_DIR", "../shared/data")

# Bars of a verse are joined with this separator: BERT's tokenizer treats newlines as plain
# whitespace, a visible separator keeps the bar boundaries (and rap's line density) visible.
BAR_SEP = " / "

# ---------------------------------------------------------------------------------------
# masking normalisation
#
# genre/rap_pop_lines.csv masks profanity by substring ("n****", "f***in'", "cla**" for
# "class", "godd***"), in rap rows ten times as often as in pop rows; rap_us/ and the pop
# songs are mostly unmasked. Unmasking every mask to one spelled-out form makes all sources
# look alike, so the classifier can learn profanity (a real genre signal) but not asterisks
# (an artefact of one file). Remaining asterisks (stage directions like "*coughs*", bare
# "****") are dropped with the rest of the punctuation.
_MASK_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"godd\*{2,}", re.I), "goddamn"),
    (re.compile(r"(?<![a-z])n\*{4,}", re.I), "nigga"),
    (re.compile(r"(?<![a-z])b\*{4,}", re.I), "bitch"),
    (re.compile(r"f\*{2,}|f\*ck", re.I), "fuck"),
    (re.compile(r"s\*{3}", re.I), "shit"),
    (re.compile(r"(?<![a-z])p\*{4,}", re.I), "pussy"),
    (re.compile(r"(?<![a-z])d\*{3}", re.I), "dick"),
    (re.compile(r"(?<![a-z])t\*{3}", re.I), "tit"),
    (re.compile(r"a\*\*", re.I), "ass"),
    (re.compile(r"(?<![a-z])h\*{1,3}(?![a-z*])", re.I), "ho"),
]

# Unmasked spellings folded onto the same forms the masks map to, so "nigger"/"niggas" and
# "n****s" end up identical whatever file they came from.
_FOLD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bnigg(?:er|a|ah|uh)(?:s|z)\b|\bniggaz\b", re.I), "niggas"),
    (re.compile(r"\bnigg(?:er|a|ah|uh)\b", re.I), "nigga"),
    (re.compile(r"\bmotherfuck", re.I), "motherfuck"),
    (re.compile(r"\bmoth(?:a|er)?f(?:uck|\*+)", re.I), "motherfuck"),
    (re.compile(r"\bmuh'?f(?:uck|\*+)", re.I), "motherfuck"),
]

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\ufeff": "",
    }
)
_HEADER = re.compile(
    r"^\s*[\[{(]\s*(?:verse|chorus|hook|bridge|intro|outro|pre-chorus|post-chorus|"
    r"refrain|interlude|break|\d+x|x\d+)[^\])}]*[\])}]\s*$",
    re.I,
)
_PUNCT = re.compile(r"[^\w\s']+")
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'+|'+(?!\w)")
_SPACES = re.compile(r"\s+")


def normalise_masking(text: str) -> str:
    """Unmask the line file's masked profanity and fold spelling variants to one form."""
    for pattern, repl in _MASK_RULES:
        text = pattern.sub(repl, text)
    for pattern, repl in _FOLD_RULES:
        text = pattern.sub(repl, text)
    return text


def normalise_line(line: str) -> str:
    """One bar as the classifier sees it: lower case words, no punctuation, masks undone.

    Section headers ("[Chorus]", "(Hook)") become the empty string. Works for any script:
    only punctuation and symbols are removed, letters of every alphabet are kept.
    """
    line = unicodedata.normalize("NFKC", line).translate(_QUOTES)
    if _HEADER.match(line):
        return ""
    line = normalise_masking(line).lower()
    line = _PUNCT.sub(" ", line.replace("_", " "))
    line = _EDGE_APOSTROPHE.sub(" ", line)
    return _SPACES.sub(" ", line).strip()


def normalise_bars(bars: Iterable[str]) -> list[str]:
    """Normalised non-empty bars."""
    out = []
    for bar in bars:
        norm = normalise_line(bar)
        if norm:
            out.append(norm)
    return out


def text_to_input(text: str) -> str:
    """A verse (bars separated by newlines, or a single line) as one classifier input."""
    return BAR_SEP.join(normalise_bars(text.splitlines()))


# ---------------------------------------------------------------------------------------
# examples and splits


@dataclass(frozen=True)
class Example:
    """One classifier input: ``text`` is already normalised (bars joined with BAR_SEP)."""

    text: str
    label: int
    group: str  # artist (rap_us, pop songs) or "lines" for the line file
    source: str  # "rap_us" | "pop_songs" | "lines"


@dataclass
class ScorerData:
    """Train and validation examples, verse level and line level, plus how they were split."""

    train: list[Example] = field(default_factory=list)
    val_verses: list[Example] = field(default_factory=list)
    val_lines: list[Example] = field(default_factory=list)
    split: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        def counts(examples: Sequence[Example]) -> dict[str, int]:
            out: dict[str, int] = {}
            for ex in examples:
                key = f"{ex.source}:{'rap' if ex.label == RAP else 'pop'}"
                out[key] = out.get(key, 0) + 1
            return dict(sorted(out.items()))

        return {
            "train": counts(self.train),
            "val_verses": counts(self.val_verses),
            "val_lines": counts(self.val_lines),
            **self.split,
        }


def split_groups(groups: Sequence[str], val_share: float, seed: int) -> tuple[set[str], set[str]]:
    """Seeded split of group names (artists) into disjoint (train, val) sets.

    At least one group goes to each side when there are two or more groups.
    """
    unique = sorted(set(groups))
    rng = random.Random(seed)
    rng.shuffle(unique)
    n_val = round(len(unique) * val_share)
    if len(unique) >= 2:
        n_val = min(max(n_val, 1), len(unique) - 1)
    return set(unique[n_val:]), set(unique[:n_val])


def windows(
    lines: Sequence[str], rng: random.Random, min_bars: int = 4, max_bars: int = 16
) -> list[list[str]]:
    """Cut a stream of bars into consecutive windows of random length in [min_bars, max_bars].

    Rap and pop are windowed with the same length distribution, so verse length (rap verses
    run 16+ bars, pop sections 4-8) cannot tell the classes apart. A short stream gives one
    window of what there is, if it has at least two bars.
    """
    out: list[list[str]] = []
    i = 0
    while i < len(lines):
        n = rng.randint(min_bars, max_bars)
        chunk = list(lines[i : i + n])
        if len(chunk) >= min_bars or (not out and len(chunk) >= 2):
            out.append(chunk)
        i += n
    return out


def _dedupe(examples: Iterable[Example]) -> list[Example]:
    seen: set[tuple[str, int]] = set()
    out = []
    for ex in examples:
        key = (ex.text, ex.label)
        if ex.text and key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def _cap_repeats(bars: Sequence[str], limit: int = 2) -> list[str]:
    # The rap corpus reader keeps a bar at most twice per verse; a pop chorus pasted five
    # times would otherwise make "repetition" a pop marker the rap side never shows.
    counts: dict[str, int] = {}
    out = []
    for bar in bars:
        counts[bar] = counts.get(bar, 0) + 1
        if counts[bar] <= limit:
            out.append(bar)
    return out


def read_rap_artists(rap_dir: Path) -> dict[str, list[list[str]]]:
    """Artist -> verses (lists of raw bars) from rap_us/, using MANIFEST.json for the names."""
    manifest_path = rap_dir / "MANIFEST.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = {entry["file"]: entry["artist"] for entry in manifest}
    else:
        files = {p.name: p.stem for p in sorted(rap_dir.glob("*.txt"))}
    out: dict[str, list[list[str]]] = {}
    for name, artist in sorted(files.items()):
        path = rap_dir / name
        if path.exists():
            out.setdefault(artist, []).extend(_read_verses(path))
    return out


# Sections that are sung or chanted rather than rapped; a verse header ends them.
_HOOK_SECTIONS = frozenset({"hook", "chorus", "refrain", "bridge", "intro", "outro"})

# Words that are sung sounds or ad-libs, not lyrics: "ooh", "ayy", "la", "yeah", "hmm".
_VOCABLE = re.compile(
    r"^(?:o+h*|a+h+|a+y+e*|u+h+|h+u+h+|h+e+y+|l+a+|n+a+|w+h?o+o+|w+h?o+a+h*|y+e+a+h*|y+e+h|"
    r"m+|h+m+|(?:h+a+)+h*|e+h|d+a+)$"
)
# Below this many bars a rap_us block is an ad-lib, a skit line or an intro, not a verse.
MIN_VERSE_BARS = 4
# A rapped verse rarely says the same three words twice; a hook that pastes its lines
# or chants a phrase ("that's love, that's love") does it in most of its trigrams.
MAX_REPEATED_PHRASE_SHARE = 0.3


def vocable_share(bar: str) -> float:
    """Share of a bar's words that are sung sounds or ad-libs (1.0 for a bar with no words)."""
    words = normalise_line(bar).split()
    if not words:
        return 1.0
    return sum(1 for w in words if _VOCABLE.match(w)) / len(words)


def repeated_phrase_share(bars: Sequence[str], n: int = 3) -> float:
    """Share of the word n-grams of ``bars`` that occur more than once in them."""
    words = [w for bar in bars for w in normalise_line(bar).split()]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def rap_verse_blocks(text: str, repeat_share: float = 0.5) -> list[list[str]]:
    """The rapped verses of one rap_us file: its blank-line blocks without the hooks.

    rap_us files interleave verses and hooks (mostly without headers), and a sung hook is
    the main way a "rap" example looks like pop. A hook repeats within a song, so dropped
    are: a block that occurs more than once in the file (every copy), a block whose bars
    mostly occur in other blocks of the file, the bars after a hook/chorus header up to
    the next verse header, and a block that repeats its own phrases (more than
    MAX_REPEATED_PHRASE_SHARE of its trigrams). Bars made mostly of vocables ("ooh ooh",
    "yeah yeah") are dropped, then blocks left with fewer than MIN_VERSE_BARS bars (ad-libs,
    skit lines, intros). What is left is cleaned like the generator's corpus.
    """
    from rgpt2.corpus import clean_text, clean_verse, header_section, split_verses

    blocks = split_verses(text)
    keys = [tuple(clean_text(line).lower() for line in block) for block in blocks]
    block_counts = Counter(keys)
    bar_counts = Counter(bar for key in set(keys) for bar in set(key))
    verses = []
    for block, key in zip(blocks, keys, strict=True):
        if block_counts[key] > 1:
            continue
        if sum(bar_counts[bar] > 1 for bar in key) > repeat_share * len(key):
            continue
        kept: list[str] = []
        in_hook = False
        for line in block:
            section = header_section(line)
            if section is not None:
                in_hook = section in _HOOK_SECTIONS or (in_hook and section == "")
            elif not in_hook:
                kept.append(line)
        bars = [bar for bar in clean_verse(kept) if vocable_share(bar) < 0.5]
        if len(bars) < MIN_VERSE_BARS or repeated_phrase_share(bars) > MAX_REPEATED_PHRASE_SHARE:
            continue
        verses.append(bars)
    return verses


def _read_verses(path: Path) -> list[list[str]]:
    return rap_verse_blocks(path.read_text(encoding="utf-8", errors="replace"))


# Pop songs with rap in them are label noise for a rap-vs-pop classifier: the pop file keeps
# songs by rappers filed under pop (Pitbull, Flo Rida, Kodak Black, Doja Cat, the Black Eyed
# Peas) and pop songs carry featured rap verses ("[Verse 2: Ja Rule]", BTS's rap line).
# Those songs and sections are left out of the pop side; the list is of performers, not
# words, and is matched against artist names and section headers only.
RAP_PERFORMERS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "2 Chainz", "50 Cent", "A$AP Rocky", "apl.de.ap", "B.o.B", "Big Sean", "Black Eyed Peas",
        "Busta Rhymes", "Cardi B", "Chance the Rapper", "Childish Gambino", "DaBaby", "Diddy",
        "Doja Cat", "Drake", "Eminem", "Eve", "Fabolous", "Fat Joe", "Flo Rida", "French Montana",
        "Future", "G-Eazy", "Gunna", "Iggy Azalea", "j-hope", "Ja Rule", "Jadakiss", "JAY-Z",
        "Kanye West", "Kendrick Lamar", "Kid Cudi", "Kodak Black", "Lil Baby", "Lil Jon",
        "Lil Kim", "Lil' Kim", "Lil Uzi Vert", "Lil Wayne", "Logic", "Ludacris", "Ma$e", "Mase",
        "Macklemore", "Megan Thee Stallion", "Method Man", "Missy Elliott", "Nas", "Nelly",
        "Nicki Minaj", "P. Diddy", "Pitbull", "Puff Daddy", "Q-Tip", "Quavo", "Redman",
        "Rick Ross", "RM", "Sean Paul", "Snoop Dogg", "Stormzy", "Styles P", "SUGA", "T.I.",
        "Taboo", "The Black Eyed Peas", "The Notorious B.I.G.", "Timbaland", "Tinie Tempah",
        "Travis Scott", "Twista", "Tyga", "will.i.am", "Wiz Khalifa", "Wyclef Jean",
        "Young Thug",
    )
)  # fmt: skip
_HEADER_NAMES = re.compile(r"\s*(?:,|&|\+|\band\b|\bfeat\.?|\bwith\b)\s*", re.I)


def is_rap_header(header: str) -> bool:
    """A section header that names a rap performer or says "rap" ("[Verse 2: Ja Rule]")."""
    body = header.strip().strip("[]")
    if re.search(r"\brap\b", body, re.I):
        return True
    if ":" not in body:
        return False
    names = _HEADER_NAMES.split(body.split(":", 1)[1])
    return any(re.sub(r"\s*\(.*\)", "", n).strip().lower() in RAP_PERFORMERS for n in names)


def read_pop_songs(path: Path) -> list[dict[str, object]]:
    """Pop songs as {"artist", "title", "sections", "rap_sections", "rap_artist"}.

    "sections" are lists of raw lines; sections whose header names a rap performer are
    dropped (counted in "rap_sections"; a header applies until the next header).
    "rap_artist" marks songs by a rap performer, which build_data leaves out after the
    split (so that the list does not move other artists between train and validation).
    """
    songs = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        song = json.loads(raw)
        artist = str(song.get("artist", ""))
        sections: list[list[str]] = [[]]
        rap_flags = [False]
        rap_header = False
        for line in str(song.get("lyrics", "")).splitlines():
            is_header = line.lstrip().startswith("[")
            if is_header:
                rap_header = is_rap_header(line)
            if not line.strip() or is_header:
                if sections[-1]:
                    sections.append([])
                    rap_flags.append(rap_header)
                rap_flags[-1] = rap_header
                continue
            sections[-1].append(line)
        kept = [s for s, rap in zip(sections, rap_flags, strict=True) if s and not rap]
        songs.append(
            {
                "artist": artist,
                "title": str(song.get("title", "")),
                "sections": kept,
                "rap_sections": sum(
                    1 for s, rap in zip(sections, rap_flags, strict=True) if s and rap
                ),
                "rap_artist": artist.lower() in RAP_PERFORMERS,
            }
        )
    return songs


def read_lines_csv(path: Path) -> list[tuple[str, int]]:
    """(raw lyric, label) rows of genre/rap_pop_lines.csv."""
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = LABELS.get(str(row.get("label", "")).strip().lower())
            if label is not None:
                rows.append((row.get("lyric", ""), label))
    return rows


def build_data(
    data_dir: str | Path,
    *,
    val_share: float = 0.2,
    line_val_share: float = 0.1,
    seed: int = 0,
    min_bars: int = 4,
    max_bars: int = 16,
    pop_passes: int = 3,
    line_verse_passes: int = 2,
) -> ScorerData:
    """Train/validation examples from ../shared/data.

    - rap_us: whole artists held out (MANIFEST.json artist names).
    - pop_songs.jsonl: whole artists held out (so every song of a held-out artist, too).
    - rap_pop_lines.csv has no song or artist id: a seeded random share of lines is held
      out, and lines that also occur (normalised) in a verse on the other side of the split
      are dropped, so neither side's verses leak into the other's lines.
    """
    root = Path(data_dir)
    rng = random.Random(seed)
    data = ScorerData()

    rap = read_rap_artists(root / "rap_us")
    rap_train, rap_val = split_groups(list(rap), val_share, seed)
    pop = read_pop_songs(root / "genre" / "pop_songs.jsonl")
    pop_train, pop_val = split_groups([str(s["artist"]) for s in pop], val_share, seed)

    train_verses: list[Example] = []
    val_verses: list[Example] = []
    for artist in sorted(rap):
        stream = [bar for verse in rap[artist] for bar in normalise_bars(verse)]
        target = val_verses if artist in rap_val else train_verses
        for chunk in windows(stream, rng, min_bars, max_bars):
            target.append(Example(BAR_SEP.join(chunk), RAP, artist, "rap_us"))
    for song in pop:
        artist = str(song["artist"])
        if song["rap_artist"]:
            continue
        sections = song["sections"]
        assert isinstance(sections, list)
        stream = _cap_repeats([bar for section in sections for bar in normalise_bars(section)])
        held_out = artist in pop_val
        # pop has a quarter of rap's verses: training cuts each song several times, at
        # different random lengths (validation once, so its windows do not overlap)
        for _ in range(1 if held_out else pop_passes):
            for chunk in windows(stream, rng, min_bars, max_bars):
                example = Example(BAR_SEP.join(chunk), POP, artist, "pop_songs")
                (val_verses if held_out else train_verses).append(example)

    train_bar_set = {bar for ex in train_verses for bar in ex.text.split(BAR_SEP)}
    val_bar_set = {bar for ex in val_verses for bar in ex.text.split(BAR_SEP)}
    lines = read_lines_csv(root / "genre" / "rap_pop_lines.csv")
    line_rng = random.Random(seed + 1)
    train_lines: list[Example] = []
    val_lines: list[Example] = []
    dropped = 0
    for raw, label in lines:
        text = normalise_line(raw)
        if not text:
            continue
        if line_rng.random() < line_val_share:
            if text in train_bar_set:
                dropped += 1
                continue
            val_lines.append(Example(text, label, "lines", "lines"))
        else:
            if text in val_bar_set:
                dropped += 1
                continue
            train_lines.append(Example(text, label, "lines", "lines"))

    line_verses = lines_as_verses(train_lines, random.Random(seed + 2), line_verse_passes)
    data.train = _dedupe(train_verses + line_verses + train_lines)
    data.val_verses = _dedupe(val_verses)
    # a line also in training (same words after normalisation) is not held out
    train_texts = {ex.text for ex in data.train}
    data.val_lines = [ex for ex in _dedupe(val_lines) if ex.text not in train_texts]
    data.split = {
        "seed": seed,
        "val_share": val_share,
        "line_val_share": line_val_share,
        "val_rap_artists": sorted(rap_val),
        "val_pop_artists": sorted(a for a in pop_val if a.lower() not in RAP_PERFORMERS),
        "pop_rap_artists_dropped": sorted({str(x["artist"]) for x in pop if x["rap_artist"]}),
        "line_rows_dropped_for_overlap": dropped,
        "pop_rap_sections_dropped": sum(int(song["rap_sections"]) for song in pop),
    }
    return data


def lines_as_verses(
    lines: Sequence[Example],
    rng: random.Random,
    passes: int,
    min_bars: int = 4,
    max_bars: int = 16,
) -> list[Example]:
    """Training verses made of shuffled line-file lines, per label (source "line_verses").

    The line file covers far more artists and songs than rap_us/ and the pop songs, but
    only as single lines; strung together they show the verse-level classifier that
    breadth. Both labels get them alike, so "lines that do not follow each other" is no
    class marker. Each pass shuffles again.
    """
    out: list[Example] = []
    for label in (RAP, POP):
        texts = [ex.text for ex in lines if ex.label == label]
        for _ in range(passes):
            rng.shuffle(texts)
            for chunk in windows(texts, rng, min_bars, max_bars):
                out.append(Example(BAR_SEP.join(chunk), label, "lines", "line_verses"))
    return out


def example_weights(examples: Sequence[Example]) -> list[float]:
    """Per-example loss weights: verses and lines, rap and pop, each cell counts equally.

    Balancing only the two classes is not enough: rap verses outnumber pop verses about
    four to one, so "several bars" would itself lean rap. Empty cells get no share.
    """
    cells: dict[tuple[bool, int], int] = {}
    for ex in examples:
        key = (ex.source == "lines", ex.label)
        cells[key] = cells.get(key, 0) + 1
    n = len(examples)
    return [n / (len(cells) * cells[(ex.source == "lines", ex.label)]) for ex in examples]

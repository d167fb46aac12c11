-- 0001: the schema for the whole bot.
--
-- Applied by bot.storage.migrate inside ONE transaction together with the
-- PRAGMA user_version bump: do not put BEGIN/COMMIT or PRAGMAs in a migration.
-- Times are UTC ISO-8601 strings with microseconds ("2026-11-22T00:09:22.123456+00:00"),
-- fixed width, so they sort and compare as text. Discord ids (snowflakes) fit INTEGER.
-- JSON columns are checked with json_valid so a bad write fails here, not on read.

-- Per-server settings; a server without a row uses the defaults below.
CREATE TABLE guild_settings (
    guild_id            INTEGER PRIMARY KEY,
    explicit_filter     TEXT    NOT NULL DEFAULT 'off' CHECK (explicit_filter IN ('off', 'mask')),
    -- NULL: the bot-wide RGPT2_COOLDOWN_SECONDS
    cooldown_seconds    REAL    CHECK (cooldown_seconds IS NULL OR cooldown_seconds >= 0),
    -- JSON array of channel ids where /rap may be used; [] means everywhere
    allowed_channel_ids TEXT    NOT NULL DEFAULT '[]'
                        CHECK (json_valid(allowed_channel_ids) AND json_type(allowed_channel_ids) = 'array'),
    updated_at          TEXT    NOT NULL
) STRICT;

-- Every verse the bot posted, with everything needed to reproduce it.
CREATE TABLE verses (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER,                  -- NULL outside a server (DM, `rgpt2 play`)
    channel_id     INTEGER,
    message_id     INTEGER,                  -- set once the verse is posted
    requester_id   INTEGER NOT NULL,
    requester_name TEXT,                     -- display name at the time, for front-ends without Discord
    topic          TEXT,
    bars           INTEGER NOT NULL CHECK (bars >= 1),   -- number of bars in text
    scheme         TEXT    NOT NULL,
    text           TEXT    NOT NULL,         -- bars joined by "\n"
    rap_score      REAL    CHECK (rap_score IS NULL OR rap_score BETWEEN 0 AND 1),
    rhyme_density  REAL    CHECK (rhyme_density IS NULL OR rhyme_density >= 0),
    end_rhyme      REAL    CHECK (end_rhyme IS NULL OR end_rhyme BETWEEN 0 AND 1),
    model_versions TEXT    NOT NULL DEFAULT '{}'
                   CHECK (json_valid(model_versions) AND json_type(model_versions) = 'object'),
    sampling       TEXT    NOT NULL DEFAULT '{}'
                   CHECK (json_valid(sampling) AND json_type(sampling) = 'object'),
    seed           INTEGER,
    created_at     TEXT    NOT NULL
) STRICT;
-- /top: a server's verses in a period; /leaderboard: grouped by requester
CREATE INDEX verses_guild_created ON verses (guild_id, created_at);
CREATE INDEX verses_guild_requester ON verses (guild_id, requester_id);
CREATE INDEX verses_requester ON verses (requester_id);

-- One upvote per member per verse: the primary key enforces it.
CREATE TABLE upvotes (
    verse_id   INTEGER NOT NULL REFERENCES verses (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (verse_id, user_id)
) STRICT, WITHOUT ROWID;

-- Rap battles. `deadline` is when the current phase ends: the challenge expires while
-- 'pending', voting closes while 'voting'.
CREATE TABLE battles (
    id                  INTEGER PRIMARY KEY,
    guild_id            INTEGER,
    channel_id          INTEGER,
    message_id          INTEGER,
    challenger_id       INTEGER NOT NULL,
    opponent_id         INTEGER NOT NULL CHECK (opponent_id <> challenger_id),
    challenger_topic    TEXT,
    opponent_topic      TEXT,
    bars                INTEGER NOT NULL CHECK (bars >= 1),
    state               TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN
                        ('pending', 'declined', 'expired', 'writing', 'voting', 'closed', 'cancelled')),
    challenger_verse_id INTEGER REFERENCES verses (id),
    opponent_verse_id   INTEGER REFERENCES verses (id),
    deadline            TEXT,
    winner              TEXT    CHECK (winner IN ('challenger', 'opponent', 'tie')),
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    CHECK ((winner IS NULL) = (state <> 'closed')),
    CHECK (state NOT IN ('voting', 'closed')
           OR (challenger_verse_id IS NOT NULL AND opponent_verse_id IS NOT NULL))
) STRICT;
CREATE INDEX battles_open ON battles (state, deadline)
    WHERE state IN ('pending', 'writing', 'voting');
CREATE INDEX battles_challenger ON battles (challenger_id, state);
CREATE INDEX battles_opponent ON battles (opponent_id, state);

-- A battle only moves forward along these edges, whatever the code does:
-- pending -> writing | declined | expired | cancelled; writing -> voting | cancelled;
-- voting -> closed | cancelled. Final states never change.
CREATE TRIGGER battles_state_machine
BEFORE UPDATE OF state ON battles
WHEN NEW.state <> OLD.state AND NOT (
       (OLD.state = 'pending' AND NEW.state IN ('writing', 'declined', 'expired', 'cancelled'))
    OR (OLD.state = 'writing' AND NEW.state IN ('voting', 'cancelled'))
    OR (OLD.state = 'voting'  AND NEW.state IN ('closed', 'cancelled'))
)
BEGIN
    SELECT RAISE(ABORT, 'illegal battle state change');
END;

-- One vote per member per battle; changing it updates the row.
CREATE TABLE battle_votes (
    battle_id  INTEGER NOT NULL REFERENCES battles (id) ON DELETE CASCADE,
    voter_id   INTEGER NOT NULL,
    side       TEXT    NOT NULL CHECK (side IN ('challenger', 'opponent')),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (battle_id, voter_id)
) STRICT, WITHOUT ROWID;

-- Fine-tune jobs of the reverse model.
CREATE TABLE finetune_jobs (
    id          INTEGER PRIMARY KEY,
    state       TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN
                ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    started_by  INTEGER NOT NULL,
    guild_id    INTEGER,
    channel_id  INTEGER,                     -- where the progress message is
    message_id  INTEGER,
    epochs      INTEGER NOT NULL CHECK (epochs >= 1),
    progress    REAL    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    status_line TEXT,                        -- last human-readable progress line
    metrics     TEXT    NOT NULL DEFAULT '{}'
                CHECK (json_valid(metrics) AND json_type(metrics) = 'object'),
    model_path  TEXT,
    swapped     INTEGER NOT NULL DEFAULT 0 CHECK (swapped IN (0, 1)),  -- its model went live
    error       TEXT,
    created_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    CHECK ((finished_at IS NULL) = (state IN ('queued', 'running')))
) STRICT;
-- one job at a time: at most one row may be queued or running
CREATE UNIQUE INDEX finetune_jobs_one_active ON finetune_jobs ((1))
    WHERE state IN ('queued', 'running');
CREATE INDEX finetune_jobs_created ON finetune_jobs (created_at);

-- Lyrics contributed by members for the next fine-tune.
CREATE TABLE lyrics (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER,
    user_id    INTEGER NOT NULL,
    text       TEXT    NOT NULL CHECK (length(text) > 0),
    -- sha256 of the normalised text (see Repository.add_lyrics): the duplicate check
    sha256     TEXT    NOT NULL UNIQUE CHECK (length(sha256) = 64),
    status     TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'used', 'rejected')),
    job_id     INTEGER REFERENCES finetune_jobs (id) ON DELETE SET NULL,
    created_at TEXT    NOT NULL
) STRICT;
CREATE INDEX lyrics_status ON lyrics (status, id);
CREATE INDEX lyrics_user ON lyrics (user_id);
CREATE INDEX lyrics_job ON lyrics (job_id);

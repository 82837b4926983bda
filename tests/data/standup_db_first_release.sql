-- The schema of standup.db as the first release (commit 151b434) created it: migration
-- 0001_initial, its record, and user_version 1. Kept verbatim so upgrades can be tested
-- against what is really on users' disks, whatever later edits do to MIGRATIONS.
CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE prompts (
    channel   TEXT NOT NULL,
    date      TEXT NOT NULL,           -- the standup date, YYYY-MM-DD in TIMEZONE
    ts        TEXT NOT NULL,           -- Slack ts of the prompt message
    posted_at TEXT NOT NULL,           -- UTC ISO timestamp
    PRIMARY KEY (channel, date)
);
CREATE UNIQUE INDEX prompts_by_ts ON prompts (channel, ts);

CREATE TABLE replies (
    channel     TEXT NOT NULL,
    date        TEXT NOT NULL,
    ts          TEXT NOT NULL,
    user        TEXT NOT NULL,
    text        TEXT NOT NULL,
    edited      INTEGER NOT NULL DEFAULT 0,
    version     TEXT NOT NULL,               -- ts of the message or of its latest edit
    files       TEXT NOT NULL DEFAULT '[]',  -- JSON list of file names
    deleted     INTEGER NOT NULL DEFAULT 0,  -- kept as a tombstone: a late edit must not revive it
    source      TEXT NOT NULL,               -- 'listener' or 'thread'
    recorded_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (channel, ts)
);
CREATE INDEX replies_by_day ON replies (channel, date, ts);

CREATE TABLE stage_runs (
    channel     TEXT NOT NULL,
    date        TEXT NOT NULL,
    stage       TEXT NOT NULL,             -- 'prompt', 'remind', 'digest'
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    owner       TEXT NOT NULL,             -- host:pid of the process that claimed it
    attempts    INTEGER NOT NULL DEFAULT 1,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    last_error  TEXT,
    PRIMARY KEY (channel, date, stage)
);

CREATE TABLE reminders (
    channel    TEXT NOT NULL,
    date       TEXT NOT NULL,
    user       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    updated_at TEXT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (channel, date, user)
);

CREATE TABLE seen_events (
    event_id    TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);

CREATE TABLE users (
    user_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    is_human   INTEGER NOT NULL,          -- not a bot, not deleted, not Slackbot
    tz         TEXT NOT NULL DEFAULT '',
    fetched_at TEXT NOT NULL
);

INSERT INTO migrations (name, applied_at) VALUES ('0001_initial', '2026-11-20T08:00:00+00:00');
INSERT INTO prompts (channel, date, ts, posted_at)
    VALUES ('C0STANDUP', '2026-11-26', '1764147600.000100', '2026-11-26T09:00:00+00:00');
PRAGMA user_version = 1;

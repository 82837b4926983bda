"""All state in one SQLite file: prompts, replies, stage runs, reminders, seen events, names.

Two processes (the listener and a stage) use it at once, so: WAL, a busy timeout, short
`BEGIN IMMEDIATE` transactions, and a claim row per (standup, date, stage) whose insert or
update must change exactly one row before a stage may act. Every row is keyed by the
standup's channel and date so several standups can share one file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

from .errors import StoreError
from .model import Reply, StoredReply, ts_key

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000

# Named migrations, applied in order, each in the same transaction as its record.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
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
        """,
    ),
    (
        # A new table needs a new migration: databases already at 0001 never rerun it.
        # IF NOT EXISTS: builds that briefly had this table inside 0001 upgrade cleanly.
        "0002_deliveries",
        """
        CREATE TABLE IF NOT EXISTS deliveries (
            channel      TEXT NOT NULL,
            date         TEXT NOT NULL,
            kind         TEXT NOT NULL,          -- 'digest'
            recipient    TEXT NOT NULL,
            delivered_at TEXT NOT NULL,
            PRIMARY KEY (channel, date, kind, recipient)
        );
        """,
    ),
    (
        "0003_away_and_late",
        """
        CREATE TABLE away (
            channel    TEXT NOT NULL,
            user       TEXT NOT NULL,
            start_date TEXT NOT NULL,              -- first day away, YYYY-MM-DD
            end_date   TEXT NOT NULL,              -- last day away (inclusive)
            source     TEXT NOT NULL,              -- 'slash' or 'cli'
            created_at TEXT NOT NULL,
            PRIMARY KEY (channel, user, start_date)
        );
        ALTER TABLE replies ADD COLUMN late INTEGER NOT NULL DEFAULT 0;  -- arrived after the digest
        """,
    ),
    (
        "0004_partial_stage_runs",
        # A reminder stage with members still due later (PER_MEMBER_TIMEZONE) is 'partial'.
        # SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
        """
        CREATE TABLE stage_runs_new (
            channel     TEXT NOT NULL,
            date        TEXT NOT NULL,
            stage       TEXT NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'partial')),
            owner       TEXT NOT NULL,
            attempts    INTEGER NOT NULL DEFAULT 1,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            last_error  TEXT,
            PRIMARY KEY (channel, date, stage)
        );
        INSERT INTO stage_runs_new SELECT channel, date, stage, status, owner, attempts, started_at,
            finished_at, last_error FROM stage_runs;
        DROP TABLE stage_runs;
        ALTER TABLE stage_runs_new RENAME TO stage_runs;
        """,
    ),
    (
        "0005_blockers",
        # One row per (report, contact): the blocker being or last sent to that contact.
        """
        CREATE TABLE escalations (
            channel      TEXT NOT NULL,
            date         TEXT NOT NULL,
            user         TEXT NOT NULL,              -- the member whose report names the blocker
            contact      TEXT NOT NULL,              -- one of BLOCKER_CONTACTS
            blocker      TEXT NOT NULL,              -- the text claimed for sending (Slack markup)
            reply_ts     TEXT NOT NULL,              -- the reply that holds it (linked in the DM)
            status       TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
            sent_blocker TEXT,                       -- the text the contact last received, NULL: none yet
            updated_at   TEXT NOT NULL,
            sent_at      TEXT,
            last_error   TEXT,
            PRIMARY KEY (channel, date, user, contact)
        );
        """,
    ),
    (
        "0006_form_reports",
        # A member's report sent with the form is one bot reply in the thread; a second
        # submission edits that reply (chat.update), so its ts is kept here. The reply
        # itself is a row in `replies` like any other, with source 'form'.
        """
        CREATE TABLE form_reports (
            channel    TEXT NOT NULL,
            date       TEXT NOT NULL,
            user       TEXT NOT NULL,               -- the member whose report it is
            ts         TEXT NOT NULL,               -- the bot's reply in the prompt's thread
            answers    TEXT NOT NULL,               -- JSON list, one answer per question, as typed
            updated_at TEXT NOT NULL,
            PRIMARY KEY (channel, date, user)
        );
        CREATE UNIQUE INDEX form_reports_by_ts ON form_reports (channel, ts);
        """,
    ),
    (
        "0007_addenda_and_findings",
        # Every digest and addendum email of a date (`mailings`) and the version of each reply
        # it showed (`mailed_replies`): an addendum shows only what differs from the latest
        # version mailed. Findings are what the sanity checks raised after a digest.
        """
        CREATE TABLE mailings (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- later mailings win
            channel    TEXT NOT NULL,
            date       TEXT NOT NULL,
            kind       TEXT NOT NULL CHECK (kind IN ('digest', 'addendum')),
            number     INTEGER NOT NULL,                   -- 0 for the digest; addenda 1, 2, …
            status     TEXT NOT NULL CHECK (status IN ('sending', 'partial', 'sent', 'failed')),
            subject    TEXT NOT NULL DEFAULT '',           -- an addendum's email, kept to finish a
            text_body  TEXT NOT NULL DEFAULT '',           -- partial delivery with the same content
            html_body  TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,                      -- UTC ISO, from the stage's clock
            sent_at    TEXT,                               -- first accepted by the mail server
            last_error TEXT
        );
        CREATE INDEX mailings_by_day ON mailings (channel, date, kind, number);

        CREATE TABLE mailed_replies (
            mailing INTEGER NOT NULL REFERENCES mailings (id),
            ts      TEXT NOT NULL,                         -- the reply
            version TEXT NOT NULL,                         -- hash of its text and files; '' = deleted
            PRIMARY KEY (mailing, ts)
        );

        CREATE TABLE findings (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            channel      TEXT NOT NULL,
            kind         TEXT NOT NULL,                    -- 'missed_standups', 'same_blocker', 'nobody_answered'
            subject      TEXT NOT NULL,                    -- a member ID, a blocker key, or '' (the channel)
            date         TEXT NOT NULL,                    -- the standup date whose digest raised it
            created_at   TEXT NOT NULL,
            handled_at   TEXT,
            handled_by   TEXT,                             -- a member ID, 'command line', 'superseded by #N'
            details      TEXT NOT NULL,                    -- one line for people
            notified     TEXT NOT NULL DEFAULT '{}',       -- JSON: contact (or channel) -> [DM channel, ts]
            notify_error TEXT                              -- the last failed notification, retried next time
        );
        CREATE INDEX findings_by_subject ON findings (channel, kind, subject, created_at);
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# No stage takes this long; a claim older than this is from a process that is gone (on
# another host, where we cannot ask the kernel).
STALE_CLAIM = dt.timedelta(hours=1)
# IDs bound in one `IN (…)` query by the bulk reads (SQLite before 3.32 allows 999 variables).
_IDS_PER_QUERY = 500

# A reply first recorded once the day's digest went out is late (it counts for its day).
_DIGEST_SENT = (
    "EXISTS (SELECT 1 FROM stage_runs WHERE channel = ? AND date = ? AND stage = 'digest' "
    "AND status = 'done')"
)


class Claim(Enum):
    """The outcome of trying to claim a stage for a date."""

    CLAIMED = "claimed"
    ALREADY_DONE = "already done"
    IN_PROGRESS = "in progress"


@dataclass(frozen=True)
class StageRun:
    """A stage's row: who claimed it, how it ended."""

    stage: str
    status: str
    owner: str
    attempts: int
    started_at: str
    finished_at: str | None
    last_error: str | None


@dataclass(frozen=True)
class Mailing:
    """A digest or addendum email of a date: its state and, for an addendum, its content."""

    id: int
    kind: str  # 'digest' or 'addendum'
    number: int  # 0 for the digest
    status: str  # 'sending', 'partial', 'sent', 'failed'
    subject: str
    text: str
    html: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Finding:
    """Something the sanity checks noticed after a digest, open until someone handles it."""

    id: int
    channel: str
    kind: str
    subject: str
    date: dt.date
    created_at: dt.datetime
    handled_at: dt.datetime | None
    handled_by: str | None
    details: str
    notified: Mapping[str, tuple[str, str]]  # contact (or channel) -> (channel, ts) of the message
    notify_error: str | None


def _iso(moment: dt.datetime) -> str:
    """Return an aware datetime as the UTC ISO string stored (they sort as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _files(stored: str) -> tuple[str, ...]:
    """Return a reply's file names from their JSON list (most replies have none: no parse)."""
    return () if stored == "[]" else tuple(json.loads(stored))


def _mailing(row: sqlite3.Row) -> Mailing:
    return Mailing(
        id=row["id"], kind=row["kind"], number=row["number"], status=row["status"], subject=row["subject"],
        text=row["text_body"], html=row["html_body"], created_at=dt.datetime.fromisoformat(row["created_at"]),
        sent_at=_when(row["sent_at"]), last_error=row["last_error"],
    )


def _finding(row: sqlite3.Row) -> Finding:
    notified = json.loads(row["notified"] or "{}")
    return Finding(
        id=row["id"], channel=row["channel"], kind=row["kind"], subject=row["subject"],
        date=dt.date.fromisoformat(row["date"]), created_at=dt.datetime.fromisoformat(row["created_at"]),
        handled_at=_when(row["handled_at"]), handled_by=row["handled_by"], details=row["details"],
        notified={str(k): (str(v[0]), str(v[1])) for k, v in notified.items()}, notify_error=row["notify_error"],
    )


def utc_now_iso() -> str:
    """Return the current UTC time as an ISO string (all stored times are UTC)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Store:
    """The SQLite database in DATA_DIR; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """Create DATA_DIR (mode 700) and the database (mode 600) if needed, and migrate it."""
        try:
            if not data_dir.exists():
                data_dir.mkdir(mode=0o700, parents=True)
            path = data_dir / "standup.db"
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {data_dir}: {exc.strerror}") from None
        store = cls(path)
        store.migrate()
        return store

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                    check_same_thread=False,
                )
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # Refuse a newer file before anything writes to it: switching it to WAL
                # rewrites its header, and the refusal promises to leave it untouched.
                version = _when_unlocked(lambda: conn.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    conn.close()
                    raise self._newer(version)
                _when_unlocked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                raise self._refusal(exc) from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _newer(self, version: int) -> StoreError:
        return StoreError(
            f"database {self.path} is from a newer standup bot (schema {version}, "
            f"this one knows {SCHEMA_VERSION}); upgrade the bot, the file was left untouched"
        )

    def _refusal(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(f"database {self.path} stayed locked by another process: {exc}")
        return StoreError(
            f"database {self.path} cannot be used ({exc}); it was left untouched: "
            "restore it from a backup or move it aside to start afresh"
        )

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a short write transaction (BEGIN IMMEDIATE takes the write lock up front)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._refusal(exc) from None
        try:
            yield conn
        except BaseException:
            _rollback(conn)
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._refusal(exc) from None

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._refusal(exc) from None

    def ping(self) -> None:
        """Read from the database, raising StoreError when it cannot be used."""
        self._read("SELECT count(*) FROM migrations")

    def migrate(self) -> None:
        """Apply the migrations this file lacks; refuse a file from a newer version."""
        try:
            with self.transaction() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise self._newer(version)
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
                for number, (name, sql) in enumerate(MIGRATIONS, start=1):
                    if number <= version:
                        continue
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, utc_now_iso())
                    )
                    conn.execute(f"PRAGMA user_version = {number}")
        except sqlite3.Error as exc:
            raise self._refusal(exc) from None

    # -- prompts -----------------------------------------------------------------------
    def save_prompt(self, channel: str, date: dt.date, ts: str) -> None:
        """Record the prompt's ts for a date (replacing an earlier one on --force)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO prompts (channel, date, ts, posted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (channel, date) DO UPDATE SET ts = excluded.ts, posted_at = excluded.posted_at",
                (channel, date.isoformat(), ts, utc_now_iso()),
            )

    def prompt_ts(self, channel: str, date: dt.date) -> str | None:
        """Return the ts of a date's prompt, or None when none was posted."""
        rows = self._read(
            "SELECT ts FROM prompts WHERE channel = ? AND date = ?", (channel, date.isoformat())
        )
        return rows[0]["ts"] if rows else None

    def date_of_prompt(self, channel: str, ts: str) -> dt.date | None:
        """Return the standup date whose prompt has this ts, or None."""
        rows = self._read("SELECT date FROM prompts WHERE channel = ? AND ts = ?", (channel, ts))
        return dt.date.fromisoformat(rows[0]["date"]) if rows else None

    # -- replies -----------------------------------------------------------------------
    def record_reply(
        self, channel: str, date: dt.date, reply: Reply, *, version: str | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Insert or update a reply from a live event; return True when it is new.

        `version` is the ts of the edit (or of the message itself): an older (or the same) version never
        overwrites a newer one, so a redelivered original cannot undo an edit, and a deleted
        reply stays deleted.
        """
        with self.transaction() as conn:
            return _record_reply(conn, ReplyChange(channel, reply.ts, date, reply, version or reply.ts, event_id))

    def delete_reply(self, channel: str, ts: str, *, event_id: str | None = None) -> bool:
        """Mark a reply deleted (a tombstone); return True when one was known.

        Events are handled on several threads, so a deletion may be applied before the
        reply it deletes: then a bare tombstone (no date, no author) is left, and the
        reply, when it comes, is not recorded.
        """
        with self.transaction() as conn:
            return _delete_reply(conn, ReplyChange(channel, ts, event_id=event_id))

    def apply_reply_changes(self, changes: Sequence[ReplyChange]) -> list[bool | StoreError]:
        """Apply several live-event changes in one transaction (one commit for all); return, for
        each, what `record_reply`/`delete_reply` would have returned, or the error that stopped it.
        When the shared transaction fails, each change is tried again on its own, so one bad
        change never costs the others."""
        try:
            with self.transaction() as conn:
                return [_apply_reply_change(conn, change) for change in changes]
        except (StoreError, sqlite3.Error) as exc:
            if len(changes) == 1:
                return [exc if isinstance(exc, StoreError) else self._refusal(exc)]
        results: list[bool | StoreError] = []
        for change in changes:
            try:
                with self.transaction() as conn:
                    results.append(_apply_reply_change(conn, change))
            except StoreError as exc:
                results.append(exc)
            except sqlite3.Error as exc:
                results.append(self._refusal(exc))
        return results

    def mark_event_seen(self, event_id: str) -> bool:
        """Record an event ID; return False when it had been seen before."""
        with self.transaction() as conn:
            return _first_sighting(conn, event_id, utc_now_iso())

    def forget_seen_events(self, before: dt.datetime) -> int:
        """Drop the event IDs received before a moment (Slack retries an event for an hour at
        most); return how many were dropped."""
        with self.transaction() as conn:
            cutoff = before.astimezone(dt.UTC).isoformat(timespec="seconds")
            return conn.execute("DELETE FROM seen_events WHERE received_at < ?", (cutoff,)).rowcount

    def stored_replies(self, channel: str, date: dt.date) -> list[StoredReply]:
        """Return every reply recorded for a date, deleted ones included, in ts order."""
        rows = self._read(
            "SELECT ts, user, text, edited, files, deleted FROM replies WHERE channel = ? AND date = ? "
            "ORDER BY ts",
            (channel, date.isoformat()),
        )
        return [
            StoredReply(
                Reply(r["ts"], r["user"], r["text"], bool(r["edited"]), _files(r["files"])),
                bool(r["deleted"]),
            )
            for r in rows
        ]

    def sync_thread(self, channel: str, date: dt.date, replies: Sequence[Reply], read_started: str) -> None:
        """Make the stored replies match a thread just read from Slack (the source of truth).

        Stored replies missing from the thread are marked deleted, except those newer than
        `read_started` (a Slack ts), which arrived while the thread was being read.
        """
        now, day = utc_now_iso(), date.isoformat()
        in_thread = {r.ts for r in replies}
        with self.transaction() as conn:
            # One statement for the whole thread (5,000 replies: one executemany, not 5,000
            # round trips through the sqlite3 module); whether the digest went out is the
            # same for every reply of the day, so it is read once, in this transaction.
            late = conn.execute(f"SELECT {_DIGEST_SENT}", (channel, day)).fetchone()[0]
            conn.executemany(
                "INSERT INTO replies (channel, date, ts, user, text, edited, version, files, source, "
                "recorded_at, updated_at, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'thread', ?, ?, ?) "
                "ON CONFLICT (channel, ts) DO UPDATE SET text = excluded.text, edited = excluded.edited, "
                "files = excluded.files, deleted = 0, updated_at = excluded.updated_at",
                [
                    (
                        channel, day, reply.ts, reply.user, reply.text, int(reply.edited), reply.ts,
                        json.dumps(list(reply.files)) if reply.files else "[]", now, now, late,
                    )
                    for reply in replies
                ],
            )
            rows = conn.execute(
                "SELECT ts FROM replies WHERE channel = ? AND date = ? AND deleted = 0", (channel, day)
            ).fetchall()
            started = ts_key(read_started)
            conn.executemany(
                "UPDATE replies SET deleted = 1, updated_at = ? WHERE channel = ? AND ts = ?",
                [
                    (now, channel, row["ts"]) for row in rows
                    if row["ts"] not in in_thread and ts_key(row["ts"]) < started
                ],
            )

    # -- stage runs --------------------------------------------------------------------
    def claim_stage(
        self, channel: str, date: dt.date, stage: str, owner: str, *, force: bool = False,
        owner_alive: Callable[[str], bool] = lambda owner: True,
    ) -> tuple[Claim, StageRun | None]:
        """Claim a stage for a date; only the caller that gets CLAIMED may act.

        A failed run is claimable again; a running one only when its recorded owner is no
        longer alive (a crash), which `owner_alive` decides, or with `force`.
        """
        now = utc_now_iso()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM stage_runs WHERE channel = ? AND date = ? AND stage = ?",
                (channel, date.isoformat(), stage),
            ).fetchone()
            previous = _stage_run(row) if row else None
            if previous is None:
                conn.execute(
                    "INSERT INTO stage_runs (channel, date, stage, status, owner, started_at) "
                    "VALUES (?, ?, ?, 'running', ?, ?)",
                    (channel, date.isoformat(), stage, owner, now),
                )
                return Claim.CLAIMED, None
            if previous.status == "done" and not force:
                return Claim.ALREADY_DONE, previous
            stale = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(previous.started_at) > STALE_CLAIM
            if previous.status == "running" and owner_alive(previous.owner) and not force and not stale:
                return Claim.IN_PROGRESS, previous
            conn.execute(
                "UPDATE stage_runs SET status = 'running', owner = ?, attempts = attempts + 1, "
                "started_at = ?, finished_at = NULL WHERE channel = ? AND date = ? AND stage = ?",
                (owner, now, channel, date.isoformat(), stage),
            )
            return Claim.CLAIMED, previous

    def finish_stage(
        self, channel: str, date: dt.date, stage: str, owner: str, *, error: str | None = None,
        partial: str | None = None,
    ) -> None:
        """Record how a claimed stage ended: done, failed with a one-line reason, or partial
        (more to do later; `partial` says what), which a later run may claim again."""
        status = "failed" if error else "partial" if partial else "done"
        with self.transaction() as conn:
            conn.execute(
                "UPDATE stage_runs SET status = ?, finished_at = ?, last_error = ? "
                "WHERE channel = ? AND date = ? AND stage = ? AND owner = ?",
                (status, utc_now_iso(), error or partial, channel, date.isoformat(), stage, owner),
            )

    def stage_run(self, channel: str, date: dt.date, stage: str) -> StageRun | None:
        """Return a stage's row for a date, or None when it never ran."""
        rows = self._read(
            "SELECT * FROM stage_runs WHERE channel = ? AND date = ? AND stage = ?",
            (channel, date.isoformat(), stage),
        )
        return _stage_run(rows[0]) if rows else None

    # -- reminders ---------------------------------------------------------------------
    def claim_reminder(self, channel: str, date: dt.date, user: str, *, force: bool = False) -> bool:
        """Claim one member's reminder; False when it was already sent (or is being sent)."""
        now = utc_now_iso()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status FROM reminders WHERE channel = ? AND date = ? AND user = ?",
                (channel, date.isoformat(), user),
            ).fetchone()
            if row is not None and row["status"] != "failed" and not force:
                return False
            conn.execute(
                "INSERT INTO reminders (channel, date, user, status, updated_at) VALUES (?, ?, ?, 'sending', ?) "
                "ON CONFLICT (channel, date, user) DO UPDATE SET status = 'sending', updated_at = excluded.updated_at",
                (channel, date.isoformat(), user, now),
            )
            return True

    def finish_reminder(self, channel: str, date: dt.date, user: str, *, error: str | None = None) -> None:
        """Record a reminder as sent, or as failed (retried on the next run)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE reminders SET status = ?, updated_at = ?, last_error = ? "
                "WHERE channel = ? AND date = ? AND user = ?",
                ("failed" if error else "sent", utc_now_iso(), error, channel, date.isoformat(), user),
            )

    def reminded(self, channel: str, date: dt.date) -> dict[str, str]:
        """Return member -> reminder status for a date."""
        rows = self._read(
            "SELECT user, status FROM reminders WHERE channel = ? AND date = ?", (channel, date.isoformat())
        )
        return {r["user"]: r["status"] for r in rows}

    # -- email deliveries --------------------------------------------------------------
    def delivered(self, channel: str, date: dt.date, kind: str) -> set[str]:
        """Return the addresses a date's email of this kind was already accepted for."""
        rows = self._read(
            "SELECT recipient FROM deliveries WHERE channel = ? AND date = ? AND kind = ?",
            (channel, date.isoformat(), kind),
        )
        return {r["recipient"] for r in rows}

    def record_delivery(self, channel: str, date: dt.date, kind: str, recipients: Sequence[str]) -> None:
        """Remember that the mail server accepted a date's email for these addresses."""
        now = utc_now_iso()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (channel, date, kind, recipient, delivered_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(channel, date.isoformat(), kind, r, now) for r in recipients],
            )

    def forget_deliveries(self, channel: str, date: dt.date, kind: str) -> None:
        """Forget a date's deliveries (a forced resend goes to everyone again)."""
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM deliveries WHERE channel = ? AND date = ? AND kind = ?",
                (channel, date.isoformat(), kind),
            )

    # -- time away ---------------------------------------------------------------------
    def set_away(self, channel: str, user: str, start: dt.date, end: dt.date, *, source: str) -> None:
        """Record a member as away from `start` to `end` (inclusive), merging overlapping ranges."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT start_date, end_date FROM away WHERE channel = ? AND user = ? "
                "AND start_date <= ? AND end_date >= ?",
                (channel, user, (end + dt.timedelta(days=1)).isoformat(), (start - dt.timedelta(days=1)).isoformat()),
            ).fetchall()
            for row in rows:
                start = min(start, dt.date.fromisoformat(row["start_date"]))
                end = max(end, dt.date.fromisoformat(row["end_date"]))
            conn.execute(
                "DELETE FROM away WHERE channel = ? AND user = ? AND start_date <= ? AND end_date >= ?",
                (channel, user, (end + dt.timedelta(days=1)).isoformat(), (start - dt.timedelta(days=1)).isoformat()),
            )
            conn.execute(
                "INSERT INTO away (channel, user, start_date, end_date, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (channel, user, start.isoformat(), end.isoformat(), source, utc_now_iso()),
            )

    def set_back(self, channel: str, user: str, today: dt.date) -> int:
        """End a member's time away from `today` on; return how many ranges changed."""
        with self.transaction() as conn:
            dropped = conn.execute(
                "DELETE FROM away WHERE channel = ? AND user = ? AND start_date >= ?",
                (channel, user, today.isoformat()),
            ).rowcount
            cut = conn.execute(
                "UPDATE away SET end_date = ? WHERE channel = ? AND user = ? AND end_date >= ?",
                ((today - dt.timedelta(days=1)).isoformat(), channel, user, today.isoformat()),
            ).rowcount
            return dropped + cut

    def away_on(self, channel: str, date: dt.date) -> set[str]:
        """Return the members recorded as away on a date."""
        rows = self._read(
            "SELECT user FROM away WHERE channel = ? AND start_date <= ? AND end_date >= ?",
            (channel, date.isoformat(), date.isoformat()),
        )
        return {r["user"] for r in rows}

    def away_ranges(self, channel: str, user: str, since: dt.date) -> list[tuple[dt.date, dt.date]]:
        """Return a member's time away that ends on or after `since`, in order."""
        rows = self._read(
            "SELECT start_date, end_date FROM away WHERE channel = ? AND user = ? AND end_date >= ? "
            "ORDER BY start_date",
            (channel, user, since.isoformat()),
        )
        return [(dt.date.fromisoformat(r["start_date"]), dt.date.fromisoformat(r["end_date"])) for r in rows]

    def late_replies(self, channel: str, date: dt.date) -> set[str]:
        """Return the ts of the day's replies that arrived after its digest was sent."""
        rows = self._read(
            "SELECT ts FROM replies WHERE channel = ? AND date = ? AND late = 1 AND deleted = 0",
            (channel, date.isoformat()),
        )
        return {r["ts"] for r in rows}

    def previous_replies(self, channel: str, user: str, before: dt.date) -> tuple[dt.date, list[Reply]] | None:
        """Return a member's replies of the latest date before `before` on which they replied, or None."""
        rows = self._read(
            "SELECT max(date) AS date FROM replies WHERE channel = ? AND user = ? AND date != '' AND date < ? "
            "AND deleted = 0",
            (channel, user, before.isoformat()),
        )
        if not rows or rows[0]["date"] is None:
            return None
        date = dt.date.fromisoformat(rows[0]["date"])
        replies = [
            stored.reply for stored in self.stored_replies(channel, date)
            if stored.reply.user == user and not stored.deleted
        ]
        return date, sorted(replies, key=lambda reply: ts_key(reply.ts))

    def previous_replies_of(
        self, channel: str, users: Iterable[str], before: dt.date
    ) -> dict[str, tuple[dt.date, list[Reply]]]:
        """Return `previous_replies` for many members at once, leaving out those with none.

        One pass over the channel's history finds each member's latest earlier date, then
        each of those dates is read once (usually one: the last standup), rather than two
        queries per member that each scan the history.
        """
        wanted = set(users)
        if not wanted:
            return {}
        rows = self._read(
            "SELECT user, max(date) AS date FROM replies WHERE channel = ? AND date != '' AND date < ? "
            "AND deleted = 0 GROUP BY user",
            (channel, before.isoformat()),
        )
        members_by_date: dict[str, set[str]] = {}
        for row in rows:
            if row["user"] in wanted:
                members_by_date.setdefault(row["date"], set()).add(row["user"])
        found: dict[str, tuple[dt.date, list[Reply]]] = {}
        for day, members in members_by_date.items():
            date = dt.date.fromisoformat(day)
            by_user: dict[str, list[Reply]] = {user: [] for user in members}
            for stored in self.stored_replies(channel, date):
                if stored.reply.user in by_user and not stored.deleted:
                    by_user[stored.reply.user].append(stored.reply)
            for user, replies in by_user.items():
                found[user] = (date, sorted(replies, key=lambda reply: ts_key(reply.ts)))
        return found

    # -- blocker escalations -----------------------------------------------------------
    def claim_escalation(
        self, channel: str, date: dt.date, user: str, contact: str, blocker: str, reply_ts: str
    ) -> str | None:
        """Claim the DM telling a contact about a member's blocker for a date.

        Return "new" (the contact has heard of no blocker in this report), "update" (they
        were sent another text) or None: nothing to send, because that text was sent or
        is being sent. A failed DM is claimable again.
        """
        now = utc_now_iso()
        key = (channel, date.isoformat(), user, contact)
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status, blocker, sent_blocker FROM escalations "
                "WHERE channel = ? AND date = ? AND user = ? AND contact = ?",
                key,
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO escalations (channel, date, user, contact, blocker, reply_ts, status, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'sending', ?)",
                    (*key, blocker, reply_ts, now),
                )
                return "new"
            if row["blocker"] == blocker and row["status"] in ("sent", "sending"):
                return None
            if row["sent_blocker"] == blocker and row["status"] != "sending":
                # Edited back to what the contact already has: nothing new to tell.
                conn.execute(
                    "UPDATE escalations SET blocker = ?, reply_ts = ?, status = 'sent', updated_at = ?, "
                    "last_error = NULL WHERE channel = ? AND date = ? AND user = ? AND contact = ?",
                    (blocker, reply_ts, now, *key),
                )
                return None
            conn.execute(
                "UPDATE escalations SET blocker = ?, reply_ts = ?, status = 'sending', updated_at = ? "
                "WHERE channel = ? AND date = ? AND user = ? AND contact = ?",
                (blocker, reply_ts, now, *key),
            )
            # Something reached (or is on its way to) the contact already: this corrects it.
            return "update" if row["sent_blocker"] is not None or row["status"] == "sending" else "new"

    def finish_escalation(
        self, channel: str, date: dt.date, user: str, contact: str, blocker: str, *, error: str | None = None
    ) -> None:
        """Record a claimed escalation DM as sent, or as failed (claimable again next time).

        A newer claim (the blocker edited meanwhile) keeps its own status.
        """
        now = utc_now_iso()
        key = (channel, date.isoformat(), user, contact)
        with self.transaction() as conn:
            if error is None:
                conn.execute(
                    "UPDATE escalations SET sent_blocker = ?, sent_at = ? "
                    "WHERE channel = ? AND date = ? AND user = ? AND contact = ?",
                    (blocker, now, *key),
                )
            conn.execute(
                "UPDATE escalations SET status = ?, updated_at = ?, last_error = ? "
                "WHERE channel = ? AND date = ? AND user = ? AND contact = ? AND blocker = ?",
                ("failed" if error else "sent", now, error, *key, blocker),
            )

    def escalations(self, channel: str, date: dt.date) -> dict[tuple[str, str], tuple[str, str | None]]:
        """Return (member, contact) -> (status, text the contact last received) for a date."""
        rows = self._read(
            "SELECT user, contact, status, sent_blocker FROM escalations WHERE channel = ? AND date = ?",
            (channel, date.isoformat()),
        )
        return {(r["user"], r["contact"]): (r["status"], r["sent_blocker"]) for r in rows}

    # -- digests and addenda mailed ----------------------------------------------------
    def record_digest_mailing(
        self, channel: str, date: dt.date, versions: Mapping[str, str], sent_at: dt.datetime
    ) -> None:
        """Record that the digest went out (at `sent_at`) showing these reply versions."""
        with self.transaction() as conn:
            mailing = conn.execute(
                "INSERT INTO mailings (channel, date, kind, number, status, created_at, sent_at) "
                "VALUES (?, ?, 'digest', 0, 'sent', ?, ?)",
                (channel, date.isoformat(), _iso(sent_at), _iso(sent_at)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO mailed_replies (mailing, ts, version) VALUES (?, ?, ?)",
                [(mailing, ts, version) for ts, version in versions.items()],
            )

    def mailings(self, channel: str, date: dt.date) -> list[Mailing]:
        """Return a date's digest and addendum mailings, oldest first."""
        rows = self._read(
            "SELECT * FROM mailings WHERE channel = ? AND date = ? ORDER BY id", (channel, date.isoformat())
        )
        return [_mailing(row) for row in rows]

    def mailed_versions(self, channel: str, date: dt.date) -> dict[str, str]:
        """Return reply ts -> the version recipients last received ('' for a deletion they were told of).

        Only mailings the mail server accepted (for some recipients at least) count.
        """
        rows = self._read(
            "SELECT r.ts, r.version FROM mailed_replies r JOIN mailings m ON m.id = r.mailing "
            "WHERE m.channel = ? AND m.date = ? AND m.status IN ('sent', 'partial') ORDER BY m.id",
            (channel, date.isoformat()),
        )
        return {row["ts"]: row["version"] for row in rows}

    def start_addendum(
        self, channel: str, date: dt.date, number: int, *, subject: str, text: str, html: str,
        versions: Mapping[str, str], now: dt.datetime,
    ) -> None:
        """Record an addendum about to be sent, replacing an attempt with that number that failed."""
        with self.transaction() as conn:
            old = [
                row["id"] for row in conn.execute(
                    "SELECT id FROM mailings WHERE channel = ? AND date = ? AND kind = 'addendum' AND number = ?",
                    (channel, date.isoformat(), number),
                )
            ]
            for mailing_id in old:
                conn.execute("DELETE FROM mailed_replies WHERE mailing = ?", (mailing_id,))
                conn.execute("DELETE FROM mailings WHERE id = ?", (mailing_id,))
            mailing = conn.execute(
                "INSERT INTO mailings (channel, date, kind, number, status, subject, text_body, html_body, "
                "created_at) VALUES (?, ?, 'addendum', ?, 'sending', ?, ?, ?, ?)",
                (channel, date.isoformat(), number, subject, text, html, _iso(now)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO mailed_replies (mailing, ts, version) VALUES (?, ?, ?)",
                [(mailing, ts, version) for ts, version in versions.items()],
            )

    def finish_addendum(
        self, channel: str, date: dt.date, number: int, status: str, *, now: dt.datetime,
        error: str | None = None,
    ) -> None:
        """Record how sending an addendum ended: 'sent', 'partial' (some recipients accepted it) or 'failed'."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE mailings SET status = ?, last_error = ?, "
                "sent_at = CASE WHEN ? IN ('sent', 'partial') THEN coalesce(sent_at, ?) ELSE sent_at END "
                "WHERE channel = ? AND date = ? AND kind = 'addendum' AND number = ?",
                (status, error, status, _iso(now), channel, date.isoformat(), number),
            )

    # -- history for the sanity checks ---------------------------------------------------
    def prompt_dates(self, channel: str, until: dt.date, limit: int) -> list[dt.date]:
        """Return the dates up to `until` (included) with a prompt, newest first."""
        rows = self._read(
            "SELECT date FROM prompts WHERE channel = ? AND date <= ? ORDER BY date DESC LIMIT ?",
            (channel, until.isoformat(), limit),
        )
        return [dt.date.fromisoformat(row["date"]) for row in rows]

    def reporters_on(self, channel: str, dates: Sequence[dt.date]) -> dict[dt.date, set[str]]:
        """Return, for each date, the members with a reply that is neither deleted nor empty."""
        found: dict[dt.date, set[str]] = {date: set() for date in dates}
        if not dates:
            return found
        marks = ", ".join("?" for _ in dates)
        rows = self._read(
            f"SELECT DISTINCT date, user FROM replies WHERE channel = ? AND date IN ({marks}) "
            "AND deleted = 0 AND (text != '' OR files != '[]')",
            (channel, *(date.isoformat() for date in dates)),
        )
        for row in rows:
            found[dt.date.fromisoformat(row["date"])].add(row["user"])
        return found

    # -- findings ------------------------------------------------------------------------
    def raise_finding(
        self, channel: str, kind: str, subject: str, date: dt.date, details: str, *,
        now: dt.datetime, repeat: dt.timedelta,
    ) -> Finding | None:
        """Record a finding unless the same one (kind and subject) was raised less than `repeat` ago.

        Return the new finding (whoever gets it notifies), or None. An older one still open
        is closed as superseded by the new one.
        """
        with self.transaction() as conn:
            recent = conn.execute(
                "SELECT 1 FROM findings WHERE channel = ? AND kind = ? AND subject = ? AND created_at > ?",
                (channel, kind, subject, _iso(now - repeat)),
            ).fetchone()
            if recent is not None:
                return None
            finding_id = conn.execute(
                "INSERT INTO findings (channel, kind, subject, date, created_at, details) VALUES (?, ?, ?, ?, ?, ?)",
                (channel, kind, subject, date.isoformat(), _iso(now), details),
            ).lastrowid
            conn.execute(
                "UPDATE findings SET handled_at = ?, handled_by = ? WHERE channel = ? AND kind = ? "
                "AND subject = ? AND handled_at IS NULL AND id != ?",
                (_iso(now), f"superseded by #{finding_id}", channel, kind, subject, finding_id),
            )
            row = conn.execute("SELECT * FROM findings WHERE id = ?", (finding_id,)).fetchone()
            return _finding(row)

    def finding(self, channel: str, finding_id: int) -> Finding | None:
        """Return one of the standup's findings, or None."""
        rows = self._read("SELECT * FROM findings WHERE channel = ? AND id = ?", (channel, finding_id))
        return _finding(rows[0]) if rows else None

    def findings(self, channel: str, *, open_only: bool = True) -> list[Finding]:
        """Return the standup's findings (only those not handled yet, by default), oldest first."""
        rows = self._read(
            "SELECT * FROM findings WHERE channel = ?" + (" AND handled_at IS NULL" if open_only else "")
            + " ORDER BY id",
            (channel,),
        )
        return [_finding(row) for row in rows]

    def handle_finding(self, channel: str, finding_id: int, by: str, now: dt.datetime) -> bool:
        """Mark a finding handled; False when it was handled already (or does not exist)."""
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE findings SET handled_at = ?, handled_by = ? WHERE channel = ? AND id = ? "
                "AND handled_at IS NULL",
                (_iso(now), by, channel, finding_id),
            ).rowcount == 1

    def record_finding_notice(
        self, finding_id: int, to: str, message: tuple[str, str] | None, *, error: str | None = None
    ) -> None:
        """Record that a contact (or the channel) was told of a finding: the message's (channel, ts),
        or the error that kept them from it (retried later)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT notified FROM findings WHERE id = ?", (finding_id,)).fetchone()
            if row is None:
                return
            notified = json.loads(row["notified"] or "{}")
            if message is not None:
                notified[to] = list(message)
            conn.execute(
                "UPDATE findings SET notified = ?, notify_error = ? WHERE id = ?",
                (json.dumps(notified), error, finding_id),
            )

    # -- user cache --------------------------------------------------------------------
    def cached_user(self, user_id: str, max_age: dt.timedelta) -> tuple[str, bool, str] | None:
        """Return (name, is_human, tz) when cached more recently than max_age."""
        rows = self._read("SELECT name, is_human, tz, fetched_at FROM users WHERE user_id = ?", (user_id,))
        if not rows:
            return None
        fetched = dt.datetime.fromisoformat(rows[0]["fetched_at"])
        if dt.datetime.now(dt.UTC) - fetched > max_age:
            return None
        return rows[0]["name"], bool(rows[0]["is_human"]), rows[0]["tz"]

    def cache_user(self, user_id: str, name: str, is_human: bool, tz: str) -> None:
        """Remember a member's Slack name and kind."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO users (user_id, name, is_human, tz, fetched_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, is_human = excluded.is_human, "
                "tz = excluded.tz, fetched_at = excluded.fetched_at",
                (user_id, name, int(is_human), tz, utc_now_iso()),
            )

    def cached_users(self, user_ids: Iterable[str], max_age: dt.timedelta) -> dict[str, tuple[str, bool, str]]:
        """Return {user_id: (name, is_human, tz)} for those cached more recently than max_age."""
        ids = sorted(set(user_ids))
        oldest = dt.datetime.now(dt.UTC) - max_age
        found: dict[str, tuple[str, bool, str]] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            rows = self._read(
                f"SELECT user_id, name, is_human, tz, fetched_at FROM users WHERE user_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                if dt.datetime.fromisoformat(row["fetched_at"]) >= oldest:
                    found[row["user_id"]] = (row["name"], bool(row["is_human"]), row["tz"])
        return found

    def cache_users(self, users: Iterable[tuple[str, str, bool, str]]) -> None:
        """Remember many members' (user_id, name, is_human, tz) in one transaction."""
        now = utc_now_iso()
        rows = [(user_id, name, int(is_human), tz, now) for user_id, name, is_human, tz in users]
        if not rows:
            return
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO users (user_id, name, is_human, tz, fetched_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, is_human = excluded.is_human, "
                "tz = excluded.tz, fetched_at = excluded.fetched_at",
                rows,
            )


    # -- form reports ------------------------------------------------------------------
    def save_form_report(
        self, channel: str, date: dt.date, user: str, ts: str, text: str, answers: Sequence[str]
    ) -> bool:
        """Record a report sent with the form as the member's reply (the bot's message `ts`).

        A later submission replaces it: the reply's text is overwritten and it counts as
        edited. When the earlier reply was gone and the new one is another message, the
        earlier one is marked deleted. Returns True when the member had no form report yet.
        """
        now = utc_now_iso()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT ts FROM form_reports WHERE channel = ? AND date = ? AND user = ?",
                (channel, date.isoformat(), user),
            ).fetchone()
            if row is not None and row["ts"] != ts:
                conn.execute(
                    "UPDATE replies SET deleted = 1, updated_at = ? WHERE channel = ? AND ts = ?",
                    (now, channel, row["ts"]),
                )
            conn.execute(
                "INSERT INTO replies (channel, date, ts, user, text, edited, version, files, source, "
                "recorded_at, updated_at, late) VALUES (?, ?, ?, ?, ?, 0, ?, '[]', 'form', ?, ?, "
                f"{_DIGEST_SENT}) "
                "ON CONFLICT (channel, ts) DO UPDATE SET user = excluded.user, text = excluded.text, "
                "edited = 1, deleted = 0, updated_at = excluded.updated_at",
                (channel, date.isoformat(), ts, user, text, ts, now, now, channel, date.isoformat()),
            )
            conn.execute(
                "INSERT INTO form_reports (channel, date, user, ts, answers, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, date, user) DO UPDATE SET ts = excluded.ts, answers = excluded.answers, "
                "updated_at = excluded.updated_at",
                (channel, date.isoformat(), user, ts, json.dumps(list(answers)), now),
            )
            return row is None

    def form_report(self, channel: str, date: dt.date, user: str) -> FormReport | None:
        """Return a member's report sent with the form for a date, or None."""
        rows = self._read(
            "SELECT date, user, ts, answers FROM form_reports WHERE channel = ? AND date = ? AND user = ?",
            (channel, date.isoformat(), user),
        )
        return _form_report(rows[0]) if rows else None

    def form_report_at(self, channel: str, ts: str) -> FormReport | None:
        """Return the report sent with the form whose thread reply has this ts, or None."""
        rows = self._read(
            "SELECT date, user, ts, answers FROM form_reports WHERE channel = ? AND ts = ?", (channel, ts)
        )
        return _form_report(rows[0]) if rows else None

    def member_reports(
        self, channel: str, user: str, *, until: dt.date, limit: int
    ) -> list[tuple[dt.date, list[Reply]]]:
        """Return a member's reports of the last `limit` dates up to `until` (included), newest first.

        A report is the member's replies of one date that are not deleted and not empty.
        """
        rows = self._read(
            "SELECT date, ts, user, text, edited, files FROM replies WHERE channel = ? AND user = ? "
            "AND deleted = 0 AND (text != '' OR files != '[]') AND date IN ("
            "  SELECT DISTINCT date FROM replies WHERE channel = ? AND user = ? AND deleted = 0 "
            "  AND (text != '' OR files != '[]') AND date != '' AND date <= ? ORDER BY date DESC LIMIT ?)",
            (channel, user, channel, user, until.isoformat(), limit),
        )
        by_date: dict[str, list[Reply]] = {}
        for r in rows:
            by_date.setdefault(r["date"], []).append(
                Reply(r["ts"], r["user"], r["text"], bool(r["edited"]), tuple(json.loads(r["files"])))
            )
        return [
            (dt.date.fromisoformat(date), sorted(replies, key=lambda reply: ts_key(reply.ts)))
            for date, replies in sorted(by_date.items(), reverse=True)
        ]


@dataclass(frozen=True)
class FormReport:
    """A member's report sent with the form: the bot's reply in the thread and the answers."""

    date: dt.date
    user: str
    ts: str
    answers: tuple[str, ...]


def _form_report(row: sqlite3.Row) -> FormReport:
    answers = json.loads(row["answers"])
    return FormReport(
        dt.date.fromisoformat(row["date"]), row["user"], row["ts"],
        tuple(str(a) for a in answers) if isinstance(answers, list) else (),
    )

def _statements(sql: str) -> Iterator[str]:
    """Split a migration into statements (a ';' inside a comment or string does not end one)."""
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        yield pending


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may have rolled back already (disk full, I/O error); the original error is
    # the one worth reporting, not "no transaction is active".
    with suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


@dataclass(frozen=True)
class ReplyChange:
    """A reply to record (`reply` and `date` given) or, without them, the reply `ts` to delete."""

    channel: str
    ts: str
    date: dt.date | None = None
    reply: Reply | None = None
    version: str = ""
    event_id: str | None = None


def _apply_reply_change(conn: sqlite3.Connection, change: ReplyChange) -> bool:
    return _record_reply(conn, change) if change.reply is not None else _delete_reply(conn, change)


def _record_reply(conn: sqlite3.Connection, change: ReplyChange) -> bool:
    reply, channel = change.reply, change.channel
    assert reply is not None and change.date is not None
    now = utc_now_iso()
    version = change.version or reply.ts
    if change.event_id and not _first_sighting(conn, change.event_id, now):
        return False
    row = conn.execute("SELECT deleted, version FROM replies WHERE channel = ? AND ts = ?", (channel, reply.ts)).fetchone()
    if row is not None and (row["deleted"] or ts_key(row["version"]) >= ts_key(version)):
        return False
    conn.execute(
        "INSERT INTO replies (channel, date, ts, user, text, edited, version, files, source, "
        "recorded_at, updated_at, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'listener', ?, ?, "
        f"{_DIGEST_SENT}) "
        "ON CONFLICT (channel, ts) DO UPDATE SET text = excluded.text, edited = excluded.edited, "
        "version = excluded.version, files = excluded.files, updated_at = excluded.updated_at",
        (
            channel, change.date.isoformat(), reply.ts, reply.user, reply.text, int(reply.edited),
            version, json.dumps(list(reply.files)), now, now, channel, change.date.isoformat(),
        ),
    )
    return row is None


def _delete_reply(conn: sqlite3.Connection, change: ReplyChange) -> bool:
    now = utc_now_iso()
    if change.event_id and not _first_sighting(conn, change.event_id, now):
        return False
    cursor = conn.execute(
        "UPDATE replies SET deleted = 1, updated_at = ? WHERE channel = ? AND ts = ? AND deleted = 0",
        (now, change.channel, change.ts),
    )
    if cursor.rowcount == 1:
        return True
    conn.execute(
        "INSERT OR IGNORE INTO replies (channel, date, ts, user, text, version, deleted, source, "
        "recorded_at, updated_at) VALUES (?, '', ?, '', '', ?, 1, 'listener', ?, ?)",
        (change.channel, change.ts, change.ts, now, now),
    )
    return False


def _when_unlocked(step: Callable[[], T]) -> T:
    """Run a connection's first statements, waiting while another process is switching a new
    file to WAL: SQLite answers "database is locked" then at once, without its busy handler
    (seen when two cron runs open a fresh install's database together)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _first_sighting(conn: sqlite3.Connection, event_id: str, now: str) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO seen_events (event_id, received_at) VALUES (?, ?)", (event_id, now)
    )
    return cursor.rowcount == 1


def _stage_run(row: sqlite3.Row) -> StageRun:
    return StageRun(
        stage=row["stage"], status=row["status"], owner=row["owner"], attempts=row["attempts"],
        started_at=row["started_at"], finished_at=row["finished_at"], last_error=row["last_error"],
    )

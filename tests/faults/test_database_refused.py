"""Fault 7: the database file is corrupt, or comes from a newer version of the bot.

`standup.py prompt` and `listener.py` refuse with one clear line (exit 1 for standup.py;
the listener exits non-zero), do nothing in Slack, and leave the file byte for byte as it was.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from standup_bot.slack_simulator import SlackSimulator
from standup_bot.store import SCHEMA_VERSION, Store

from .helpers import ListenerProcess, one_error_line, run_standup, wait_for


def _corrupt(db: Path) -> str:
    db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db.write_bytes(random.Random(7).randbytes(16 * 1024))
    return (f"error: database {db} cannot be used (file is not a database); it was left untouched: "
            "restore it from a backup or move it aside to start afresh")


def _malformed(db: Path) -> str:
    # A valid header (WAL mode, schema version) over a damaged first page: the schema is garbage.
    store = Store.open(db.parent)
    store.close()
    data = bytearray(db.read_bytes())
    data[100:4096] = random.Random(7).randbytes(4096 - 100)
    db.write_bytes(bytes(data))
    return (f"error: database {db} cannot be used (database disk image is malformed); it was left "
            "untouched: restore it from a backup or move it aside to start afresh")


def _newer(db: Path) -> str:
    store = Store.open(db.parent)  # a valid database, in WAL mode like every real one
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    return (f"error: database {db} is from a newer standup bot (schema 99, this one knows "
            f"{SCHEMA_VERSION}); upgrade the bot, the file was left untouched")


def _files(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir() if not path.name.endswith(".log")}


@pytest.mark.parametrize(
    "damage", [_corrupt, _malformed, _newer], ids=["random-bytes", "malformed-pages", "newer-schema"]
)
def test_a_database_the_bot_cannot_use_is_refused_and_left_untouched(
    damage: Callable[[Path], str], config: Path, workdir: Path, db: Path, sim: SlackSimulator,
    listeners: Callable[..., ListenerProcess],
) -> None:
    message = damage(db)
    before, files = db.read_bytes(), _files(db.parent)

    result = run_standup(config, "prompt", cwd=workdir)

    assert one_error_line(result) == message
    assert result.stdout == ""
    assert db.read_bytes() == before and _files(db.parent) == files

    listener = listeners(config, wait=False)
    wait_for(lambda: listener.process.poll() is not None, timeout=20, what="the listener to refuse and exit")

    assert listener.process.returncode not in (0, None)
    assert listener.output().splitlines() == [message], listener.output()
    assert db.read_bytes() == before and _files(db.parent) == files
    assert sim.requests == []  # neither of them did anything in Slack

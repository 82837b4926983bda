"""Group commit: replies that arrive together share one transaction, with the same outcomes
as writing each alone; a bad change never costs the others; old event IDs are dropped."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest

from standup_bot.errors import StoreError
from standup_bot.listener_app import EVENT_ID_KEEP, ReplyRecorder
from standup_bot.model import Reply
from standup_bot.reply_writer import ReplyWriter
from standup_bot.store import ReplyChange, Store
from tests.conftest import wait_for

CHANNEL = "C0STANDUP"
DAY = dt.date(2026, 11, 26)


def _change(ts: str, text: str = "did things", event_id: str | None = None, version: str = "") -> ReplyChange:
    return ReplyChange(CHANNEL, ts, DAY, Reply(ts=ts, user="U0ALICE", text=text), version or ts, event_id)


def _texts(store: Store) -> dict[str, str]:
    return {s.reply.ts: s.reply.text for s in store.stored_replies(CHANNEL, DAY) if not s.deleted}


@pytest.fixture
def store(tmp_path):
    opened = Store.open(tmp_path / "data")
    yield opened
    opened.close()


def test_a_batch_has_the_outcomes_of_single_writes(store):
    results = store.apply_reply_changes([
        _change("1764147700.000100", event_id="Ev1"),
        _change("1764147700.000100", event_id="Ev1"),  # the same event again: not new
        _change("1764147700.000200", text="v1", event_id="Ev2"),
        _change("1764147700.000200", text="v2", event_id="Ev3", version="1764147800.000000"),  # an edit
        ReplyChange(CHANNEL, "1764147700.000300", event_id="Ev4"),  # deletes a reply not seen yet
        _change("1764147700.000300", event_id="Ev5"),  # ... which then never comes back
    ])
    assert results == [True, False, True, False, False, False]
    assert _texts(store) == {"1764147700.000100": "did things", "1764147700.000200": "v2"}


def test_one_failing_change_does_not_cost_the_others(store, monkeypatch):
    from standup_bot import store as store_module

    real = store_module._record_reply

    def picky(conn: sqlite3.Connection, change: ReplyChange) -> bool:
        if change.reply is not None and change.reply.text == "poison":
            raise sqlite3.OperationalError("disk I/O error")
        return real(conn, change)

    monkeypatch.setattr(store_module, "_record_reply", picky)
    results = store.apply_reply_changes([
        _change("1764147700.000100"), _change("1764147700.000200", text="poison"), _change("1764147700.000300"),
    ])
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], StoreError)
    assert set(_texts(store)) == {"1764147700.000100", "1764147700.000300"}


def test_concurrent_writers_share_commits_and_every_reply_is_stored_once(store):
    writer = ReplyWriter(store)
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def post(worker: int) -> None:
        start.wait()
        for i in range(50):
            ts = f"17641477{worker:02d}.{i:06d}"
            outcome = writer.apply(_change(ts, event_id=f"Ev{worker}-{i}"))
            again = writer.apply(_change(ts, event_id=f"Ev{worker}-{i}"))
            with lock:
                results.extend([outcome, again])

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results.count(True) == 400 and results.count(False) == 400
    assert len(_texts(store)) == 400


def test_changes_that_wait_during_a_commit_go_together_in_the_next(store, monkeypatch):
    writer = ReplyWriter(store)
    real = store.apply_reply_changes
    batches: list[int] = []
    release = threading.Event()

    def observed(changes):
        batches.append(len(changes))
        if len(batches) == 1:
            release.wait(10)
        return real(changes)

    monkeypatch.setattr(store, "apply_reply_changes", observed)
    threads = [threading.Thread(target=writer.apply, args=(_change(f"1764147700.00010{i}"),)) for i in range(5)]
    threads[0].start()
    wait_for(lambda: batches == [1], what="the first commit to start")
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: len(writer._waiting) == 4, what="four changes waiting")
    release.set()
    for thread in threads:
        thread.join(10)
    assert batches == [1, 4]
    assert writer.commits == 2
    assert len(_texts(store)) == 5


def test_a_store_error_reaches_the_writer_of_that_change(store, monkeypatch):
    writer = ReplyWriter(store)
    monkeypatch.setattr(store, "apply_reply_changes", lambda changes: [StoreError("database is locked")])
    with pytest.raises(StoreError, match="locked"):
        writer.apply(_change("1764147700.000100"))
    monkeypatch.undo()
    assert writer.apply(_change("1764147700.000100")) is True  # the writer is not stuck


def test_event_ids_older_than_slack_retries_are_dropped(store, settings, sim):
    from standup_bot.slack import SlackApi, make_client

    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    clock = {"now": now}
    recorder = ReplyRecorder(settings, store, SlackApi(make_client("xoxb-fake", sim.base_url)),
                             now=lambda: clock["now"])
    store.mark_event_seen("EvOLD")
    with store.transaction() as conn:
        conn.execute("UPDATE seen_events SET received_at = ? WHERE event_id = 'EvOLD'",
                     ((now - EVENT_ID_KEEP - dt.timedelta(minutes=1)).isoformat(timespec="seconds"),))
    store.mark_event_seen("EvNEW")
    recorder.handle({"type": "message", "channel": CHANNEL, "text": "top level", "ts": "1.2"}, "EvX")
    assert store.mark_event_seen("EvOLD") is True  # forgotten
    assert store.mark_event_seen("EvNEW") is False  # still remembered


def test_the_handler_pool_makes_the_next_ack_wait_for_room(monkeypatch):
    from standup_bot import listener_app
    from standup_bot.listener_app import BoundedExecutor

    monkeypatch.setattr(listener_app, "ACK_WAIT_LIMIT", 10.0)
    pool = BoundedExecutor(threads=1, max_waiting=2)
    release = threading.Event()
    pool.submit(release.wait, 10)
    pool.submit(release.wait, 10)
    third_queued = threading.Event()
    threading.Thread(target=lambda: (pool.submit(lambda: None), third_queued.set()), daemon=True).start()
    assert not third_queued.wait(0.3)  # no room: the third waits
    release.set()
    assert third_queued.wait(5)  # room made by the first two finishing
    pool.shutdown(wait=True)


def test_past_the_wait_limit_the_event_is_queued_anyway(monkeypatch, caplog):
    from standup_bot import listener_app
    from standup_bot.listener_app import BoundedExecutor

    monkeypatch.setattr(listener_app, "ACK_WAIT_LIMIT", 0.05)
    pool = BoundedExecutor(threads=1, max_waiting=1)
    release = threading.Event()
    ran: list[str] = []
    pool.submit(release.wait, 10)
    late = pool.submit(lambda: ran.append("late"))  # waits 0.05 s, then goes in anyway
    assert "faster than they are stored" in caplog.text
    release.set()
    late.result(5)
    assert ran == ["late"]
    pool.shutdown(wait=True)

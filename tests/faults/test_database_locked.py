"""Fault 4: another process holds the SQLite write lock for four seconds.

The listener must still acknowledge every signed event within Slack's three seconds (it
acks before touching SQLite) and store the replies once the lock is gone; a stage started
meanwhile waits for the lock (busy timeout) and then succeeds.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, SIGNING_SECRET

from .helpers import (
    ListenerProcess,
    assert_consistent,
    db_rows,
    finish,
    prompt_row,
    replies,
    run_standup,
    stage_runs,
    start_standup,
    wait_for,
)

LOCK_SECONDS = 4.0


def test_listener_acks_in_time_and_a_stage_waits_while_another_process_holds_the_write_lock(
    config: Path, workdir: Path, db: Path, today: dt.date, sim: SlackSimulator,
    listeners: Callable[..., ListenerProcess], background: list, timing: Callable[[str, float], None],
) -> None:
    listener = listeners(config)
    sim.deliver_events_to(listener.events_url, SIGNING_SECRET)
    assert run_standup(config, "prompt", cwd=workdir).returncode == 0
    [prompt] = sim.messages(CHANNEL)
    thread = prompt["ts"]
    early = sim.user_posts(ALICE, CHANNEL, "Yesterday: before the lock", thread_ts=thread)
    wait_for(lambda: early in replies(db, today), what="the reply before the lock")

    # Another process (here: this one) takes the write lock and keeps it for four seconds.
    holder = sqlite3.connect(db, timeout=1, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO seen_events (event_id, received_at) VALUES ('Ev-lock-holder', 'now')")
    locked_at = time.monotonic()
    released = threading.Event()

    def release() -> None:
        holder.execute("COMMIT")
        released.set()

    timer = threading.Timer(LOCK_SECONDS, release)
    timer.start()
    tomorrow = today + dt.timedelta(days=1)
    try:
        output = workdir / "prompt-during-lock.out"
        stage = start_standup(config, "prompt", "--date", tomorrow.isoformat(), cwd=workdir, output=output)
        background.append(stage)

        acks: list[float] = []
        posted: list[str] = []
        for user, text in [(BOB, "Today: during the lock"), (CAROL, "guest note"), (ALICE, "Blockers: none")]:
            started = time.monotonic()
            posted.append(sim.user_posts(user, CHANNEL, text, thread_ts=thread))
            acks.append(time.monotonic() - started)
        started = time.monotonic()
        sim.user_edits(CHANNEL, early, "Yesterday: before the lock (edited during it)")
        acks.append(time.monotonic() - started)
        assert not released.is_set(), "the events were not all sent while the lock was held"
    finally:
        timer.join()
        holder.close()

    for seconds in acks:
        timing("listener ack while the db was locked", seconds)
    statuses = [status for _, status in sim.delivery_results[-len(acks):]]
    assert statuses == [200] * len(acks), sim.delivery_results
    assert max(acks) < 3.0, acks

    result = finish(stage, ["prompt", "--date", tomorrow.isoformat()], output, locked_at)
    timing("prompt started during the lock (from lock start to exit)", result.seconds)
    assert result.returncode == 0, result
    assert result.out_lines == [f"prompt for {tomorrow} posted in {CHANNEL}"], result
    assert result.seconds >= LOCK_SECONDS - 0.1  # it waited for the lock rather than failing

    stored = wait_for(
        lambda: (rows := replies(db, today)) and set(posted) <= set(rows)
        and rows[early]["text"].endswith("(edited during it)") and rows,
        timeout=15, what="the replies sent during the lock to be stored",
    )
    assert {ts for ts, row in stored.items() if not row["deleted"]} == {early, *posted}
    assert db_rows(db, "SELECT event_id FROM seen_events WHERE event_id = 'Ev-lock-holder'")
    assert len(sim.messages(CHANNEL)) == 2  # today's prompt and tomorrow's, once each
    assert prompt_row(db, tomorrow) is not None
    assert stage_runs(db, tomorrow)["prompt"]["attempts"] == 1
    assert_consistent(db, today, prompt_ts=thread)
    assert_consistent(db, tomorrow)
    assert listener.process.poll() is None, listener.output()

"""Listener memory with 100,000 stored replies, and the database size per reply.

    .venv/bin/python bench/memory.py [--stored 100000] [--paced 2000] [--burst 5000]

1. 100,000 replies are written directly rather than over HTTP, with the store's thread-sync
   write path (`Store.sync_thread`, one transaction per day) plus their event IDs in
   seen_events, received long ago: 100 a day over 1,000 days, what a 100-person team leaves
   after four years. (The listener drops event IDs older than two days when it handles its
   first event, so the final database shows what it keeps: the recent ones.) (Store.record_reply, one transaction per reply,
   takes ~40 s for 100,000 here; the rows are the same but for source='thread'.)
2. The real listener starts (`listener.py`, HTTP mode, reactions on) on that database.
3. --paced events are sent through HTTP at 200/s (below what the listener drains, so no
   backlog builds up), into today's thread.
4. Then --burst events as fast as 16 senders can post them (closed loop): acks run ahead of
   the handler pool, so a backlog builds up in memory until it drains.
RSS (VmRSS) is read from /proc after each step, and the peak (VmHWM) at the end. Bare
Python, and the same listener started on an empty database, are the baselines in the same run.
Last, the ReplayGuard's own footprint (it keeps each signature for five minutes) measured
with tracemalloc in this process, for the signatures a five-minute window can hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import _support as S
from _load import send_events


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_listener(config: Path, work: Path, name: str) -> tuple[subprocess.Popen, int]:
    port = S.free_port()
    with open(work / f"{name}.stderr", "wb") as err:
        proc = subprocess.Popen(
            [S.PYTHON, str(S.ROOT / "listener.py"), "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=err, env=S.clean_env(), cwd=work,
        )
    S.wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    time.sleep(0.5)
    return proc, port


def wait_stored(db: Path, date: str, expected: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with sqlite3.connect(db, timeout=30) as conn:
        while time.monotonic() < deadline:
            n = conn.execute("SELECT count(*) FROM replies WHERE date = ?", (date,)).fetchone()[0]
            if n >= expected:
                return
            time.sleep(0.05)
    raise TimeoutError(f"{n} of {expected} stored")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--paced", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=5000)
    args = parser.parse_args()

    from standup_bot import stages
    from standup_bot.listener_app import ReplayGuard
    from standup_bot.model import Reply
    from standup_bot.settings import load_settings
    from standup_bot.slack import SlackApi, make_client
    from standup_bot.store import Store

    S.header("Listener memory and database size (issue #6, target 5)")
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rows = []
    try:
        with S.SimHost() as sim:
            authors = S.member_ids(100)
            sim.call("users", ids=authors)
            sim.call("channel", id=S.CHANNEL, name="bench-standup", members=authors)

            def config_for(data: Path) -> Path:
                return S.write_config(data.parent / f"conf-{data.name}", **S.bench_settings(sim, data))

            base_py = subprocess.Popen([S.PYTHON, "-c", "import time; time.sleep(30)"])
            time.sleep(0.3)
            rows.append(["bare python (baseline)", "", S.rss_kb(base_py.pid) / 1024])
            base_py.kill()
            base_py.wait()

            # The same listener on an empty database, as the second baseline.
            empty = work / "empty"
            proc, _ = start_listener(config_for(empty), work, "empty")
            rows.append(["listener, empty database, idle", 0, S.rss_kb(proc.pid) / 1024])
            S.stop_process(proc)

            data = work / "data"
            config = config_for(data)
            settings = load_settings(config, {})
            store = Store.open(settings.data_dir)
            today = dt.datetime.now(dt.UTC).date()
            first_day = today - dt.timedelta(days=args.stored // 100 + 1)
            t0 = time.perf_counter()
            base_ts = int(time.time()) - 86400 * (args.stored // 100 + 2)
            per_day = 100
            for start in range(0, args.stored, per_day):
                day = first_day + dt.timedelta(days=start // per_day)
                replies = []
                for i in range(start, min(start + per_day, args.stored)):
                    text = (f"*Yesterday:* shipped <https://git.example.com/pr/{i}|PR {i}> &amp; reviewed "
                            f"<@{authors[(i + 1) % 100]}>'s draft\n*Today:* ticket {i * 3}\n*Blockers:* none")
                    replies.append(Reply(f"{base_ts + i * 3}.{i % 1_000_000:06d}", authors[i % 100], text))
                # The thread sync's write path: one transaction per day.
                store.sync_thread(S.CHANNEL, day, replies, replies[-1].ts)
                # ...and the event IDs the listener would have remembered for them.
                with store.transaction() as conn:
                    conn.executemany("INSERT INTO seen_events (event_id, received_at) VALUES (?, ?)",
                                     [(f"Ev0HIST{i:09d}", "2026-01-01T10:00:00+00:00")
                                      for i in range(start, start + len(replies))])
            insert_s = time.perf_counter() - t0
            client = make_client(S.TOKEN, sim.base_url, timeout=10)
            ctx = stages.Context(settings, store, SlackApi(client), now=lambda: dt.datetime.now(dt.UTC),
                                 sleep=time.sleep, say=lambda line: None)
            stages.prompt(ctx, today, force=True)
            prompt_ts = store.prompt_ts(S.CHANNEL, today)
            store.close()

            proc, port = start_listener(config, work, "listener")
            url = f"http://127.0.0.1:{port}/slack/events"
            try:
                rows.append([f"listener, {args.stored:,} stored, idle", args.stored, S.rss_kb(proc.pid) / 1024])
                sent = 0
                for label, count, rate in ((f"after {args.paced:,} events over HTTP at 200/s", args.paced, 200.0),
                                           (f"after {args.burst:,} more as fast as possible", args.burst, 0.0)):
                    made = sim.call("replies", channel=S.CHANNEL, thread_ts=prompt_ts,
                                    users=[authors[i % 100] for i in range(count)],
                                    texts=[f"Today: task {sent + i}\nBlockers: none" for i in range(count)],
                                    envelopes=True)
                    result = send_events(url, made["envelopes"], S.SIGNING_SECRET, senders=16, rate=rate)
                    sent += count
                    wait_stored(data / "standup.db", today.isoformat(), sent)
                    time.sleep(1.0)
                    rows.append([f"listener, {label} (drained)", args.stored + sent, S.rss_kb(proc.pid) / 1024,
                                 result.rate, S.percentile(result.latencies, 99) * 1000])
                peak = status_kb(proc.pid, "VmHWM") / 1024
            finally:
                S.stop_process(proc)

        # Database size: checkpoint the WAL into the file first.
        db = data / "standup.db"
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            replies = conn.execute("SELECT count(*) FROM replies").fetchone()[0]
            seen = conn.execute("SELECT count(*) FROM seen_events").fetchone()[0]
            try:
                tables = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
            except sqlite3.Error:
                tables = []
        size = db.stat().st_size

        # The replay guard: one entry per signed request for five minutes.
        tracemalloc.start()
        guard = ReplayGuard()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            guard.first_use(f"v0={i:064x}#0")
        guard_bytes = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()

        print(S.table(["listener state", "stored replies", "RSS MB", "events/s sent", "p99 ack ms"],
                      [r + [""] * (5 - len(r)) for r in rows]))
        print(f"peak RSS (VmHWM) of the listener over the whole run: {peak:.1f} MB")
        final = rows[-1][2]
        print(f"\ndatabase: {replies:,} replies, {seen:,} seen event IDs, {size / 1e6:.1f} MB -> "
              f"{size / replies:.0f} bytes per reply (all tables and indexes)")
        if tables:
            print(S.table(["table / index", "MB", "bytes per reply"],
                          [[n, b / 1e6, b / replies] for n, b in tables if b > 50_000]))
        print(f"writing the {args.stored:,} stored replies directly (Store.sync_thread, a day per transaction): "
              f"{insert_s:.1f} s")
        print(f"\nReplayGuard: {guard_bytes / 1e6:.1f} MB for 100,000 signatures ({guard_bytes / 100_000:.0f} B each); "
              f"it keeps them 5 minutes, so 1,000 events/s sustained would hold 300,000 "
              f"({guard_bytes * 3 / 1e6:.0f} MB)")
        print(f"\ntarget 5 (listener RSS < 100 MB with {args.stored:,} stored replies): "
              f"{final:.1f} MB after the traffic, peak {peak:.1f} MB -> "
              f"{'MET' if final < 100 and peak < 100 else 'NOT MET' if final >= 100 else 'MET at rest, peak over'}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

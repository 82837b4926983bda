"""Listener throughput and ack latency, against a bare Bolt app served the same way.

    .venv/bin/python bench/listener_throughput.py [--events 4000] [--rounds 3] [--senders 16] [--load wrk|python]

What runs (all on loopback):
* the Slack simulator and SMTP sink in their own process (bench/_simhost.py);
* the real listener: `listener.py --config ... --threads 8` as a subprocess, its config
  pointing SLACK_API_URL at the simulator (it calls auth.test at start; each new reply is
  stored, then its ✅ is queued and sent by one background thread paced to Slack's Tier 3
  limit, 50 at once then 50 a minute, as configured by default);
* the baseline: a bare Bolt app that only acks (bench/_bare_bolt.py), served by waitress with
  the same options and thread count;
* the load: 16 keep-alive connections, closed loop, posting signed reply events. By default
  wrk (a load generator in C: `apt-get install wrk`; bench/_load.py writes its Lua script),
  which spends ~0.1 ms of CPU per event; without wrk (or with --load python), 16 Python
  sender processes with one http.client connection each, which spend ~1.8 ms per event and
  so take most of the machine's two cores from the servers they measure.

Each round the simulator creates N real replies in the prompt's thread (delivery off) and
hands back the exact Events API envelopes Slack would send (unique event_id and ts); they are
posted to the listener and, in the same round, to the bare app (alternating which goes first).
After each listener run the script waits until every reply is in SQLite ("drained"):
sustained = N / (drained - start); "ticks" counts the reactions.add calls made by then.
At the end: 200 events are redelivered as Slack retries (X-Slack-Retry-Num) and every reply
must be stored exactly once.

Then, the seed's design as a reference (issue #6 point 6): the whole pickle file rewritten per
reply (flock, load, append, dump) at 1,000 and 10,000 stored replies, against the store's
SQLite insert at the same sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _support as S
from _load import send_events, send_events_wrk, wrk_available


def reply_text(i: int) -> str:
    return (
        f"*Yesterday:* reviewed PR #{i} and fixed the flaky <https://ci.example.com/job/{i}|build>\n"
        f"*Today:* pairing with <@UB{(i * 7) % 500:06d}> on the release notes &amp; docs\n"
        "*Blockers:* none"
    )


def wait_stored(db: Path, channel: str, date: str, expected: int, timeout: float = 180.0) -> float:
    """Wait until `expected` replies are stored; return that moment (time.perf_counter())."""
    deadline = time.monotonic() + timeout
    conn = sqlite3.connect(db, timeout=30)
    try:
        stored = 0
        while time.monotonic() < deadline:
            stored = conn.execute(
                "SELECT count(*) FROM replies WHERE channel = ? AND date = ? AND deleted = 0", (channel, date)
            ).fetchone()[0]
            if stored >= expected:
                return time.perf_counter()
            time.sleep(0.01)
        raise TimeoutError(f"only {stored} of {expected} replies stored")  # see the listener log
    finally:
        conn.close()


def run_listener_bench(args: argparse.Namespace, work: Path) -> dict:
    from standup_bot import stages
    from standup_bot.settings import load_settings
    from standup_bot.slack import SlackApi, make_client
    from standup_bot.store import Store

    with S.SimHost() as sim:
        authors = S.member_ids(args.authors)
        sim.call("users", ids=authors)
        sim.call("channel", id=S.CHANNEL, name="bench-standup", members=authors)
        data_dir = work / "data"
        config = S.write_config(work / "conf", **S.bench_settings(
            sim, data_dir, **({"CONFIRM_WITH_REACTION": False} if args.no_reaction else {})))
        settings = load_settings(config, {})
        store = Store.open(settings.data_dir)
        client = make_client(S.TOKEN, sim.base_url, timeout=10)
        ctx = stages.Context(settings, store, SlackApi(client), now=lambda: dt.datetime.now(dt.UTC),
                             sleep=time.sleep, say=lambda line: None)
        date = ctx.today()
        stages.prompt(ctx, date, force=True)
        prompt_ts = store.prompt_ts(S.CHANNEL, date)
        store.close()
        assert prompt_ts

        ports = {"listener": S.free_port(), "bare": S.free_port()}
        log_path = work / "listener.stderr"
        with open(log_path, "wb") as listener_err, open(work / "bare.stderr", "wb") as bare_err:
            procs = {
                "listener": subprocess.Popen(
                    [S.PYTHON, str(S.ROOT / "listener.py"), "--config", str(config), "--port",
                     str(ports["listener"]), "--threads", str(args.threads)],
                    stdout=subprocess.DEVNULL, stderr=listener_err, env=S.clean_env(), cwd=work,
                ),
                "bare": subprocess.Popen(
                    [S.PYTHON, str(S.BENCH_DIR / "_bare_bolt.py"), "--port", str(ports["bare"]), "--threads",
                     str(args.threads), "--api-url", sim.base_url, "--secret", S.SIGNING_SECRET, "--token", S.TOKEN],
                    stdout=subprocess.DEVNULL, stderr=bare_err, env=S.clean_env(), cwd=work,
                ),
            }
        try:
            S.wait_http(f"http://127.0.0.1:{ports['listener']}/healthz", proc=procs["listener"])
            S.wait_http(f"http://127.0.0.1:{ports['bare']}/slack/events", proc=procs["bare"])
            urls = {k: f"http://127.0.0.1:{p}/slack/events" for k, p in ports.items()}
            rows: dict[str, list[dict]] = {"listener": [], "bare": []}
            sent_ts: list[str] = []
            first_envelopes: list[dict] = []
            sim.call("reset")
            if args.reaction_delay:
                sim.call("slow", method="reactions.add", delay=args.reaction_delay, times=10**7)
            profiler = None
            for rnd in range(args.rounds):
                made = sim.call(
                    "replies", channel=S.CHANNEL, thread_ts=prompt_ts,
                    users=[authors[(rnd * args.events + i) % len(authors)] for i in range(args.events)],
                    texts=[reply_text(rnd * args.events + i) for i in range(args.events)], envelopes=True,
                )
                envelopes = made["envelopes"]
                first_envelopes = first_envelopes or envelopes
                order = ["listener", "bare"] if rnd % 2 == 0 else ["bare", "listener"]
                for target in order:
                    if target == "listener" and args.py_spy and rnd == 0:
                        profiler = subprocess.Popen(
                            [args.py_spy, "record", "--pid", str(procs["listener"].pid), "--rate", "200",
                             "--format", "raw", "--output", str(Path(args.py_spy_out).resolve()), "--threads",
                             "--duration", "15", "--nonblocking", *(["--gil"] if args.py_spy_gil else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )
                        time.sleep(1.0)
                    cpu0 = (S.cpu_seconds(procs[target].pid), S.cpu_seconds(sim.proc.pid), S.children_cpu_seconds())
                    if args.load == "wrk":
                        result = send_events_wrk(urls[target], envelopes, S.SIGNING_SECRET,
                                                 connections=args.senders, threads=args.wrk_threads, work=str(work))
                    else:
                        result = send_events(urls[target], envelopes, S.SIGNING_SECRET, senders=args.senders)
                    row = {
                        "round": rnd + 1, "events": result.count, "rate": result.rate,
                        "p50": result.latency(50) * 1000,
                        "p90": result.latency(90) * 1000,
                        "p99": result.latency(99) * 1000,
                        "max": result.latency(100) * 1000,
                        "non2xx": sum(n for s, n in result.statuses.items() if not 200 <= s < 300),
                    }
                    if target == "listener":
                        sent_ts.extend(made["ts"])
                        if row["non2xx"]:
                            print(f"round {rnd + 1}: {row['non2xx']} requests not acked with 2xx", file=sys.stderr)
                        stored_at = wait_stored(data_dir / "standup.db", S.CHANNEL, date.isoformat(), len(sent_ts))
                        row["stored_rate"] = result.count / (stored_at - result.started)
                        row["drain_lag"] = stored_at - result.finished
                        row["ticks"] = sim.call("stats")["calls"].get("reactions.add", 0)
                        row["rss_mb"] = S.rss_kb(procs["listener"].pid) / 1024
                    cpu1 = (S.cpu_seconds(procs[target].pid), S.cpu_seconds(sim.proc.pid), S.children_cpu_seconds())
                    row["cpu_server"], row["cpu_sim"], row["cpu_senders"] = (
                        (b - a) * 1000 / result.count for a, b in zip(cpu0, cpu1, strict=True))
                    rows[target].append(row)
                    time.sleep(0.3)
            if profiler is not None:
                profiler.wait(30)

            # Slack retries of events already handled: acked, nothing stored or confirmed twice.
            retry = send_events(urls["listener"], first_envelopes[:200], S.SIGNING_SECRET, senders=4,
                                extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            time.sleep(1.0)
            with sqlite3.connect(data_dir / "standup.db") as conn:
                stored = [r[0] for r in conn.execute(
                    "SELECT ts FROM replies WHERE channel = ? AND date = ?", (S.CHANNEL, date.isoformat()))]
                seen = conn.execute("SELECT count(*) FROM seen_events").fetchone()[0]
            stats = sim.call("stats")
            check = {
                "sent": len(sent_ts), "stored": len(stored), "distinct": len(set(stored)),
                "missing": len(set(sent_ts) - set(stored)), "extra": len(set(stored) - set(sent_ts)),
                "seen_events": seen, "retries_acked": retry.statuses.get(200, 0),
                "reactions": stats["calls"].get("reactions.add", 0),
                "ticked_twice": sum(n > 1 for n in sim.call("reactions", channel=S.CHANNEL, ts=sent_ts)),
            }
        finally:
            for proc in procs.values():
                S.stop_process(proc)
    return {"rows": rows, "check": check, "log": log_path}


# -- the seed's design: the whole pickle rewritten per reply --------------------------------------
def pickle_append(path: Path, lock_path: Path, reply: dict) -> None:
    """What the seed did per reply: take the file lock, load every reply, append, dump them all."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                with open(path, "rb") as f:
                    replies = pickle.load(f)
            except FileNotFoundError:
                replies = []
            replies.append(reply)
            with open(path, "wb") as f:
                pickle.dump(replies, f)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_reference(sizes: list[int], appends: int, work: Path) -> list[dict]:
    from standup_bot.model import Reply
    from standup_bot.store import Store

    day = dt.date(2026, 11, 26)
    out = []
    for size in sizes:
        def reply(i: int) -> dict:
            return {"channel": S.CHANNEL, "date": day.isoformat(), "ts": f"{1795000000 + i}.000100",
                    "user": f"UB{i % 500:06d}", "text": reply_text(i), "edited": False, "files": []}

        folder = work / f"ref-{size}"
        folder.mkdir()
        path, lock = folder / "replies.pickle", folder / "replies.lock"
        with open(path, "wb") as f:
            pickle.dump([reply(i) for i in range(size)], f)
        pickle_times = []
        for i in range(size, size + appends):
            t0 = time.perf_counter()
            pickle_append(path, lock, reply(i))
            pickle_times.append(time.perf_counter() - t0)
        pickle_bytes = path.stat().st_size

        store = Store.open(folder / "sqlite")
        for i in range(size):
            r = reply(i)
            store.record_reply(S.CHANNEL, day, Reply(r["ts"], r["user"], r["text"]), event_id=f"EvREF{i:08d}")
        sqlite_times = []
        for i in range(size, size + appends):
            r = reply(i)
            t0 = time.perf_counter()
            store.record_reply(S.CHANNEL, day, Reply(r["ts"], r["user"], r["text"]), event_id=f"EvREF{i:08d}")
            sqlite_times.append(time.perf_counter() - t0)
        store.close()
        p, q = S.median(pickle_times), S.median(sqlite_times)
        out.append({"size": size, "pickle_ms": p * 1000, "pickle_p99": S.percentile(pickle_times, 99) * 1000,
                    "sqlite_ms": q * 1000, "sqlite_p99": S.percentile(sqlite_times, 99) * 1000,
                    "ratio": p / q, "pickle_mb": pickle_bytes / 1e6})
        shutil.rmtree(folder)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events per run (default 4000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs the listener and the bare app")
    parser.add_argument("--senders", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--load", choices=["wrk", "python"], default="wrk" if wrk_available() else "python",
                        help="load generator: wrk (C; default when installed) or Python sender processes")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads, both servers (default 8)")
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--no-reaction", action="store_true", help="listener with CONFIRM_WITH_REACTION = False")
    parser.add_argument("--reaction-delay", type=float, default=0.0,
                        help="seconds the simulator takes to answer reactions.add (Slack's latency; default 0)")
    parser.add_argument("--skip-reference", action="store_true", help="skip the pickle reference")
    parser.add_argument("--py-spy", help="py-spy binary: profile the listener during its first run")
    parser.add_argument("--py-spy-out", default="/tmp/listener-profile.txt", help="collapsed stacks (py-spy raw)")
    parser.add_argument("--py-spy-gil", action="store_true", help="sample only the thread holding the GIL")
    args = parser.parse_args()

    S.header("Listener throughput and ack latency (issue #6, targets 1 and 6)")
    load = (f"wrk: {args.senders} keep-alive connections on {args.wrk_threads} threads" if args.load == "wrk"
            else f"{args.senders} Python sender processes, one keep-alive connection each")
    print(f"{load}, {args.events} events per run, {args.rounds} rounds, "
          f"waitress threads={args.threads}, reaction={'off' if args.no_reaction else 'on'}"
          f"{f', reactions.add answered after {args.reaction_delay * 1000:.0f} ms' if args.reaction_delay else ''}\n")
    work = Path(tempfile.mkdtemp(prefix="bench-listener-"))
    try:
        result = run_listener_bench(args, work)
        rows = result["rows"]
        per_round = []
        for lst, bare in zip(rows["listener"], rows["bare"], strict=True):
            per_round.append([lst["round"], "listener", lst["rate"], lst["p50"], lst["p90"], lst["p99"], lst["max"],
                              lst["non2xx"], lst["stored_rate"], lst["drain_lag"], lst["ticks"], lst["rss_mb"],
                              lst["cpu_server"], lst["cpu_sim"], lst["cpu_senders"]])
            per_round.append([bare["round"], "bare Bolt", bare["rate"], bare["p50"], bare["p90"], bare["p99"],
                              bare["max"], bare["non2xx"], "", "", "", "", bare["cpu_server"], bare["cpu_sim"],
                              bare["cpu_senders"]])
        print(S.table(["round", "app", "acks/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-2xx",
                       "stored/s", "store lag s", "ticks", "RSS MB", "server CPU ms/ev", "sim CPU ms/ev",
                       "senders CPU ms/ev"], per_round))
        print("(stored/s = events / (last reply in SQLite - first send); store lag: after the last ack, until the "
              "last reply is stored; ticks: reactions.add calls so far, all rounds)")
        print("(CPU per event, user+system, from /proc: the server under test, the simulator answering "
              "reactions.add, and the 16 sender processes; 2 cores = 2,000 CPU ms per wall second)")
        print()

        def med(target: str, key: str) -> float:
            return S.median(r[key] for r in rows[target])

        ratios = [lst["rate"] / bare["rate"] for lst, bare in zip(rows["listener"], rows["bare"], strict=True)]
        stored_ratios = [lst["stored_rate"] / bare["rate"] for lst, bare in zip(rows["listener"], rows["bare"], strict=True)]
        summary = [
            ["listener", med("listener", "rate"), med("listener", "stored_rate"), med("listener", "p50"),
             med("listener", "p90"), med("listener", "p99"), max(r["max"] for r in rows["listener"]),
             S.median(ratios), S.median(stored_ratios)],
            ["bare Bolt", med("bare", "rate"), med("bare", "rate"), med("bare", "p50"), med("bare", "p90"),
             med("bare", "p99"), max(r["max"] for r in rows["bare"]), 1.0, 1.0],
        ]
        print("Medians over rounds (max: the worst of all rounds; ratio: median of per-round ratios)")
        print(S.table(["app", "acks/s", "sustained stored/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                       "acks vs bare", "stored vs bare"], summary))
        print()
        check = result["check"]
        ok = (check["stored"] == check["distinct"] == check["sent"] and not check["missing"] and not check["extra"]
              and check["seen_events"] == check["sent"] and check["retries_acked"] == 200
              and check["reactions"] <= check["sent"] and not check["ticked_twice"]
              and (not args.no_reaction or check["reactions"] == 0))
        print(f"exactly once: sent {check['sent']}, stored {check['stored']} ({check['distinct']} distinct ts), "
              f"missing {check['missing']}, extra {check['extra']}, seen_events {check['seen_events']}, "
              f"200 retries acked {check['retries_acked']}/200 and ignored, reactions.add {check['reactions']} "
              f"({check['ticked_twice']} replies ticked twice) "
              f"-> {'OK' if ok else 'FAILED'}")
        target_met = (med("listener", "stored_rate") >= 1000 and med("listener", "p99") <= 50
                      and S.median(stored_ratios) >= 0.8 and ok)
        print(f"target 1 (>= 1,000 events/s sustained, p99 <= 50 ms, >= 0.8x bare, exactly once): "
              f"{'MET' if target_met else 'NOT MET'}")
        print()

        if not args.skip_reference:
            ref = run_reference([1_000, 10_000], 200, work)
            print("Reference (target 6): time to store one reply, the seed's pickle rewrite vs the SQLite store "
                  "(median of 200 appends; the pickle holds every reply of the day)")
            print(S.table(["stored replies", "pickle ms/reply", "pickle p99 ms", "SQLite ms/reply", "SQLite p99 ms",
                           "pickle / SQLite", "pickle file MB"],
                          [[r["size"], r["pickle_ms"], r["pickle_p99"], r["sqlite_ms"], r["sqlite_p99"], r["ratio"],
                            r["pickle_mb"]] for r in ref]))
            growth_p = ref[-1]["pickle_ms"] / ref[0]["pickle_ms"]
            growth_s = ref[-1]["sqlite_ms"] / ref[0]["sqlite_ms"]
            print(f"from 1,000 to 10,000 stored: pickle x{growth_p:.1f} per reply (O(n): whole file each time), "
                  f"SQLite x{growth_s:.2f} (O(log n) index insert); at 10,000 the pickle caps one writer at "
                  f"{1000 / ref[-1]['pickle_ms']:.0f} replies/s under its lock, SQLite at "
                  f"{1000 / ref[-1]['sqlite_ms']:.0f}/s")
        return 0 if ok else 1
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"(kept {work})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

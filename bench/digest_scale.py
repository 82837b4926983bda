"""The digest at 50, 500 and 5,000 members who all replied, end to end through `stages.digest`.

    .venv/bin/python bench/digest_scale.py [--runs 3] [--sizes 50,500,5000]

For each size, a fresh simulator (in its own process, bench/_simhost.py) holds N members in
the channel, the prompt (posted by `stages.prompt`) and one reply per member (three lines,
a mention and a link, as people write them). `stages.digest(ctx, date, force=True)` then
reads the thread back page by page (conversations.replies, the client asking limit=1000,
the simulator capping pages at page_size_cap), syncs it into SQLite, looks up names,
renders text and HTML, and sends one email to the local SMTP sink. Timed in-process with
time.perf_counter around the whole call; phases by timing wrappers around the functions the
stage calls (no package code changed).

"cold" is the first digest: no name is cached (the user cache in SQLite lasts 12 h, so a
daily digest finds it stale), so the names come from users.list pages (users.info for a
handful). "warm" is the median of the next runs (the run with the median time, CPU and
phases alike). Rows: page cap 1000 for 50/500/5000, and page cap 15 (Slack's limit for some
apps since 2025) for 500. --history D first stores D earlier days of replies (every member,
every day), so that each report is compared with the one before.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _support as S


def reply_text(i: int, n: int) -> str:
    return (
        f"*Yesterday:* finished <https://git.example.com/pr/{i}|PR {i}> &amp; reviewed <@UB{(i + 1) % n:06d}>'s draft\n"
        f"*Today:* write the migration for ticket {i * 3}, then on-call handover\n"
        "*Blockers:* none"
    )


class Phases:
    """Accumulate wall time per phase by wrapping callables."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1

        return timed


def store_history(store: Any, ids: list[str], today: dt.date, days: int) -> None:
    """Store `days` earlier days of replies, one per member a day, as thread reads leave them."""
    from standup_bot.model import Reply

    members = len(ids)
    for back in range(days, 0, -1):
        date = today - dt.timedelta(days=back)
        base = int(dt.datetime.combine(date, dt.time(9), tzinfo=dt.UTC).timestamp())
        replies = [Reply(f"{base + i // 1000}.{i % 1000:06d}", user, reply_text(i + back, members))
                   for i, user in enumerate(ids)]
        store.sync_thread(S.CHANNEL, date, replies, f"{base + 86_000}.000000")


def bench_size(members: int, cap: int, runs: int, work: Path, *, history: int = 0) -> dict:
    from standup_bot import answers, mail, render, slack, stages
    from standup_bot.settings import settings_from_mapping
    from standup_bot.store import Store

    folder = work / f"digest-{members}-{cap}-{history}"
    with S.SimHost(page_size_cap=cap) as sim:
        ids = S.member_ids(members)
        sim.call("users", ids=ids)
        sim.call("channel", id=S.CHANNEL, name="bench-standup", members=ids)
        settings = settings_from_mapping(S.bench_settings(
            sim, folder, MEMBERS=ids, DIGEST_RECIPIENTS=["lead@bench.example", "cto@bench.example"]))
        store = Store.open(settings.data_dir)
        client = slack.make_client(S.TOKEN, sim.base_url, timeout=30)
        ctx = stages.Context(settings, store, slack.SlackApi(client), now=lambda: dt.datetime.now(dt.UTC),
                             sleep=time.sleep, say=lambda line: None)
        date = ctx.today()
        if history:
            store_history(store, ids, date, history)
        stages.prompt(ctx, date, force=True)
        prompt_ts = store.prompt_ts(S.CHANNEL, date)
        sim.call("replies", channel=S.CHANNEL, thread_ts=prompt_ts, users=ids,
                 texts=[reply_text(i, members) for i in range(members)])
        sim.call("reset")

        phases = Phases()
        originals = {
            "thread": ctx.slack.thread, "sync": store.sync_thread, "names": stages.user_names,
            "previous": stages.previous_reports, "render": render.render_digest, "build": mail.build_message,
            "send": mail.send_message,
        }
        ctx.slack.thread = phases.wrap("fetch thread", originals["thread"])  # type: ignore[method-assign]
        store.sync_thread = phases.wrap("sync to SQLite", originals["sync"])  # type: ignore[method-assign]
        stages.user_names = phases.wrap("names", originals["names"])
        stages.previous_reports = phases.wrap("previous reports", originals["previous"])
        render.render_digest = phases.wrap("render", originals["render"])
        mail.build_message = phases.wrap("build mail", originals["build"])
        mail.send_message = phases.wrap("SMTP send", originals["send"])
        times, cpu, breakdown = [], [], []
        try:
            for _run in range(runs + 1):
                phases.seconds.clear()
                # Each run starts as a new process would (as cron starts the digest): nothing the
                # answer splitter memoised for an earlier run (its words, lines, headings) is kept.
                for memo in vars(answers).values():
                    if callable(getattr(memo, "cache_clear", None)):
                        memo.cache_clear()
                c0 = time.process_time()
                t0 = time.perf_counter()
                stages.digest(ctx, date, force=True)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                breakdown.append(dict(phases.seconds))
        finally:
            stages.user_names = originals["names"]
            stages.previous_reports = originals["previous"]
            render.render_digest = originals["render"]
            mail.build_message = originals["build"]
            mail.send_message = originals["send"]
            store.close()
        stats = sim.call("stats")
        mails = sim.call("mails")
        first = mails[0]
        ok = (
            len(mails) == runs + 1 and sorted(first["rcpt_tos"]) == ["cto@bench.example", "lead@bench.example"]
            and date.isoformat() in first["subject"] and f"({members} of {members} reported)" in first["subject"]
            and all(f"Member {i}" in first["text"] for i in (0, members // 2, members - 1))
        )
    shutil.rmtree(folder, ignore_errors=True)
    pages = stats["calls"].get("conversations.replies", 0) // (runs + 1)
    warm_runs = sorted(range(1, len(times)), key=lambda i: times[i])
    mid = warm_runs[len(warm_runs) // 2]  # the median warm run (its phases add up to its time)
    return {"members": members, "cap": cap, "cold": times[0], "warm": times[mid],
            "cold_cpu": cpu[0], "warm_cpu": cpu[mid],
            "cold_phases": breakdown[0], "warm_phases": breakdown[mid], "pages": pages,
            "users_info": stats["calls"].get("users.info", 0), "users_list": stats["calls"].get("users.list", 0),
            "mail_kb": first["bytes"] / 1024, "ok": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs after the cold one (default 3)")
    parser.add_argument("--sizes", default="50,500,5000")
    parser.add_argument("--history", type=int, default=0, metavar="DAYS",
                        help="add a row at the largest size with DAYS earlier days of replies stored")
    args = parser.parse_args()
    S.header("Digest at scale (issue #6, target 2)")
    work = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        results = [bench_size(n, 1000, args.runs, work) for n in sizes]
        if 500 in sizes:
            results.append(bench_size(500, 15, args.runs, work))
        if args.history:
            with_history = bench_size(max(sizes), 1000, args.runs, work, history=args.history)
            with_history["label"] = f"{args.history} days stored"
            results.append(with_history)
        rows = []
        for r in results:
            label = r.get("label", f"page cap {r['cap']}")
            rows.append([r["members"], label, r["pages"], r["users_list"], r["users_info"], r["cold"], r["cold_cpu"],
                         r["cold"] / r["members"] * 1000, r["warm"], r["warm_cpu"], r["warm"] / r["members"] * 1000,
                         r["mail_kb"], "OK" if r["ok"] else "FAILED"])
        print(S.table(["members", "variant", "replies calls (pages)", "users.list calls", "users.info calls", "cold s",
                       "cold CPU s", "cold ms/member", "warm s", "warm CPU s", "warm ms/member", "mail KB", "check"],
                      rows))
        print("(s: wall time of stages.digest; CPU s: this process's CPU time in it (the simulator and the SMTP "
              "sink run in another process), a figure that load from other processes does not inflate)")
        print()
        phase_names = ["fetch thread", "sync to SQLite", "names", "previous reports", "render", "build mail",
                       "SMTP send"]
        prow = []
        for r in results:
            for kind in ("cold", "warm"):
                p = r[f"{kind}_phases"]
                total = r[kind]
                other = total - sum(p.values())
                prow.append([r["members"], r.get("label", f"cap {r['cap']}"), kind, total,
                             *[p.get(n, 0.0) for n in phase_names], other])
        print("Where the time goes (seconds; names: from users.list when cold; 'other' = claim, store reads, "
              "mentions, same-blocker check, permalink, channel info, recording what was sent)")
        print(S.table(["members", "variant", "run", "total", *phase_names, "other"], prow))
        print()
        base = [r for r in results if r["cap"] == 1000 and "label" not in r]
        if len(base) >= 2:
            print("linearity: time per member at the larger size / at the smaller (1.00 = linear; the first "
                  "digest of a process also compiles the Jinja templates, which weighs on the smallest size)")
            for lo, hi in itertools.pairwise(base):
                def ratio(key: str, lo: dict = lo, hi: dict = hi) -> float:
                    return (hi[key] / hi["members"]) / (lo[key] / lo["members"])

                print(f"  {lo['members']:,} -> {hi['members']:,} members: cold x{ratio('cold'):.2f}, "
                      f"warm x{ratio('warm'):.2f}, warm CPU x{ratio('warm_cpu'):.2f}")
            big = base[-1]
            met = [kind for kind in ("cold", "warm") if big[kind] < 2]
            verdict = "MET" if len(met) == 2 else f"met {met[0]} only" if met else "NOT MET"
            print(f"target 2 ({big['members']:,} members end to end < 2 s): cold {big['cold']:.2f} s "
                  f"({big['cold_cpu']:.2f} s CPU), warm {big['warm']:.2f} s ({big['warm_cpu']:.2f} s CPU) -> {verdict}")
        return 0 if all(r["ok"] for r in results) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

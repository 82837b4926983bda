"""Reminder fan-out: 1,000 members who have not reported, under Slack's posting limits.

    .venv/bin/python bench/reminder_fanout.py [--members 1000] [--per-minute 900] [--burst 30]

The simulator (own process, bench/_simhost.py) enforces on chat.postMessage, at once:
* per channel: 1 message/s with a burst of 3 (Slack: "1 per second per channel, short
  bursts >1 allowed"); and
* workspace-wide: --per-minute (default 900 = 15/s) with a burst of --burst (default 30,
  i.e. two seconds' worth). Slack does not publish the workspace number; "several hundred
  per minute" is what is observed, and 900/min keeps the run under two minutes.
Refused calls get HTTP 429 with Retry-After and take no token (the simulator's `limit_rate`
holds both rules at once). Nothing else is limited. Each reminder is one chat.postMessage to
the member's user ID (Slack opens the DM), so no conversations.open (Tier 3, 50+/min on real
Slack) is made; the table counts them to show it.

Each reminder is a DM to a different member, i.e. to a different DM channel, so the
per-channel limit never binds; the workspace bucket does. The floor is the time that
bucket needs: (members - burst) / rate. `stages.remind` runs twice in the same run, for two
dates: first with no limits (the baseline: the bot's own pace), then under the limits.
Checked after each: every member got exactly one DM for that date, none lost or doubled, and
every reminder row in SQLite is 'sent'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import _support as S


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--per-minute", type=float, default=900.0, help="workspace-wide chat.postMessage limit")
    parser.add_argument("--burst", type=int, default=30, help="workspace-wide burst")
    parser.add_argument("--channel-burst", type=int, default=3, help="per-channel burst (rate 1/s)")
    args = parser.parse_args()

    from standup_bot import stages
    from standup_bot.settings import settings_from_mapping
    from standup_bot.slack import SlackApi, make_client
    from standup_bot.store import Store

    S.header("Reminder fan-out under rate limits (issue #6, target 3)")
    rate = args.per_minute / 60
    floor = max(0.0, (args.members - args.burst) / rate)
    print(f"{args.members} non-responders; chat.postMessage limited to 1/s per channel (burst {args.channel_burst}) "
          f"and {args.per_minute:.0f}/min = {rate:.1f}/s workspace-wide (burst {args.burst})")
    print(f"floor = (members - burst) / rate = ({args.members} - {args.burst}) / {rate:.1f} = {floor:.1f} s\n")
    work = Path(tempfile.mkdtemp(prefix="bench-remind-"))
    rows = []
    ok_all = True
    try:
        with S.SimHost() as sim:
            ids = S.member_ids(args.members)
            sim.call("users", ids=ids)
            sim.call("channel", id=S.CHANNEL, name="bench-standup", members=ids)
            settings = settings_from_mapping(S.bench_settings(sim, work / "data", MEMBERS=ids))
            store = Store.open(settings.data_dir)
            said: list[str] = []
            # The production client: its 429 handler waits exactly Retry-After.
            client = make_client(S.TOKEN, sim.base_url, timeout=30)
            ctx = stages.Context(settings, store, SlackApi(client), now=lambda: dt.datetime.now(dt.UTC),
                                 sleep=time.sleep, say=said.append)
            today = ctx.today()
            for n, (label, limited) in enumerate((("no limits (baseline)", False), ("Slack's limits", True))):
                date = today + dt.timedelta(days=n)
                stages.prompt(ctx, date, force=True)
                sim.call("reset")
                if limited:
                    sim.call("limit_rate", method="chat.postMessage", per_second=1.0, per_channel=True,
                             burst=args.channel_burst)
                    sim.call("limit_rate", method="chat.postMessage", per_second=rate, per_channel=False,
                             burst=args.burst)
                t0 = time.perf_counter()
                stages.remind(ctx, date)
                elapsed = time.perf_counter() - t0
                stats = sim.call("stats")
                counts = sim.call("dm_counts", users=ids)
                with sqlite3.connect(settings.data_dir / "standup.db") as conn:
                    status = dict(conn.execute(
                        "SELECT status, count(*) FROM reminders WHERE date = ? GROUP BY status", (date.isoformat(),)
                    ).fetchall())
                lost = sum(1 for c in counts if c < n + 1)
                doubled = sum(1 for c in counts if c > n + 1)
                ok = lost == 0 and doubled == 0 and status == {"sent": args.members}
                ok_all &= ok
                posts = stats["calls"].get("chat.postMessage", 0)
                refused = stats["limited"].get("chat.postMessage", 0)
                rows.append([label, elapsed, args.members / elapsed, posts, refused,
                             stats["calls"].get("conversations.open", 0), lost, doubled,
                             elapsed / floor if limited and floor else float("nan"), "OK" if ok else "FAILED"])
            store.close()
        print(S.table(["run", "seconds", "DMs/s", "postMessage calls", "429s", "conversations.open", "lost",
                       "doubled", "actual / floor", "check"], rows))
        actual = rows[-1][1]
        print(f"\nbaseline (no limits) {rows[0][1]:.1f} s; under the limits {actual:.1f} s = {actual / floor:.2f} x the "
              f"{floor:.1f} s floor")
        print(f"target 3 (<= 1.2 x floor, none lost or doubled): "
              f"{'MET' if actual <= 1.2 * floor and ok_all else 'NOT MET'}")
        return 0 if ok_all else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

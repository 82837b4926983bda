"""Start-up: `standup.py prompt` as a whole cold process, and what each command imports.

    .venv/bin/python bench/startup.py [--runs 10]

A fresh Python process per run, as cron starts it: `standup.py --config C prompt --date D`
against the Slack simulator (own process), each run for a new weekday so every run really
posts (no --force). Wall time from spawn to exit; median of --runs. In the same run, the
baselines: a bare interpreter (`python -c pass`), and the same interpreter importing only
slack_sdk's WebClient (the least any Slack command needs). Then `python -X importtime` for
`prompt` and `check`: the slowest imports, and the modules each loads that it does not need.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import _support as S

STANDUP = str(S.ROOT / "standup.py")
# Packages a command needs only for another stage: the digest (rendering, mail, the answer
# splitter), the scheduler, the listener. Not `email`: http.client (so slack_sdk) imports most of it.
DIGEST_ONLY = ("jinja2", "standup_bot.render", "standup_bot.answers", "standup_bot.structured",
               "standup_bot.blockers", "standup_bot.sanity", "standup_bot.addendum")
NOT_FOR_PROMPT = (*DIGEST_ONLY, "markupsafe", "smtplib", "standup_bot.mail", "apscheduler", "tzlocal",
                  "aiosmtpd", "slack_bolt", "waitress", "holidays")
NOT_FOR_CHECK = (*DIGEST_ONLY, "markupsafe", "apscheduler", "tzlocal", "aiosmtpd", "slack_bolt", "waitress",
                 "sqlite3")


def weekdays(start: dt.date, count: int) -> list[dt.date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


CPU: dict[str, list[float]] = defaultdict(list)


def timed(cmd: list[str], env: dict[str, str], cwd: Path, label: str = "") -> tuple[float, subprocess.CompletedProcess]:
    """Run a command; return its wall time (and record its CPU time, user + system, under label)."""
    c0 = S.children_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - t0
    if label:
        CPU[label].append(S.children_cpu_seconds() - c0)
    return wall, proc


def importtime(cmd: list[str], env: dict[str, str], cwd: Path) -> list[tuple[int, int, int, str]]:
    """Run with -X importtime; return (self_us, cumulative_us, depth, module) per import."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return rows


def by_package(rows: list[tuple[int, int, int, str]]) -> dict[str, float]:
    """Self time summed per top-level package (ms)."""
    out: dict[str, float] = defaultdict(float)
    for self_us, _, _, name in rows:
        root = name.split(".")[0]
        if root == "standup_bot":
            root = ".".join(name.split(".")[:2])
        out[root] += self_us / 1000
    return out


def unneeded(rows: list[tuple[int, int, int, str]], names: tuple[str, ...]) -> list[tuple[str, float]]:
    """For each unneeded package loaded, its self time in ms (summed over its modules)."""
    found = []
    for wanted in names:
        ms = sum(s for s, _, _, n in rows if n == wanted or n.startswith(wanted + ".")) / 1000
        if ms:
            found.append((wanted, ms))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    S.header("Start-up of standup.py (issue #6, target 4)")
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        with S.SimHost() as sim:
            ids = S.member_ids(5)
            sim.call("users", ids=ids)
            sim.call("channel", id=S.CHANNEL, name="bench-standup", members=ids)
            config = S.write_config(work / "conf", **S.bench_settings(sim, work / "data", MEMBERS=ids))
            env = S.clean_env()
            py = S.PYTHON
            dates = weekdays(dt.date(2030, 1, 7), args.runs + 2)
            # Warm the OS page cache and __pycache__ once (not counted): cron's daily start finds both warm
            # on a server that runs anything else; the first start after an install compiles .pyc files.
            first, _ = timed([py, STANDUP, "--config", str(config), "prompt", "--date", dates[-1].isoformat()], env, work)
            samples: dict[str, list[float]] = defaultdict(list)
            failures = []
            for i in range(args.runs):
                # Interleaved, so that load from other processes hits every kind alike.
                t, _ = timed([py, "-c", "pass"], env, work, "python -c pass")
                samples["python -c pass"].append(t)
                t, _ = timed([py, "-c", "import slack_sdk.web.client"], env, work,
                             "python -c 'import slack_sdk.web.client'")
                samples["python -c 'import slack_sdk.web.client'"].append(t)
                t, proc = timed([py, STANDUP, "--config", str(config), "prompt", "--date", dates[i].isoformat()],
                                env, work, "standup.py prompt")
                samples["standup.py prompt"].append(t)
                if proc.returncode != 0 or "posted" not in proc.stdout:
                    failures.append(f"prompt {dates[i]}: rc={proc.returncode} {proc.stdout.strip()} {proc.stderr.strip()}")
                if i < 5:
                    t, proc = timed([py, STANDUP, "--config", str(config), "check"], env, work, "standup.py check")
                    samples["standup.py check"].append(t)
                    if proc.returncode != 0:
                        failures.append(f"check: rc={proc.returncode} {proc.stdout.strip()} {proc.stderr.strip()}")
            base = S.median(samples["python -c pass"])
            rows = [[name, len(v), S.median(v) * 1000, min(v) * 1000, max(v) * 1000, S.median(v) / base,
                     S.median(CPU[name]) * 1000] for name, v in samples.items()]
            print(S.table(["command", "runs", "median ms", "min ms", "max ms", "x bare python", "median CPU ms"], rows))
            print("(wall time from spawn to exit; CPU = user + system of the process, which load from other "
                  "processes does not inflate)")
            print(f"(first start, not counted: {first * 1000:.0f} ms)")
            prompt_ms = S.median(samples["standup.py prompt"]) * 1000
            print(f"\ntarget 4 (standup.py prompt < 1 s as a whole process): {prompt_ms:.0f} ms -> "
                  f"{'MET' if prompt_ms < 1000 and not failures else 'NOT MET'}")
            for failure in failures:
                print("FAILED:", failure)

            for command, extra, skip in (("prompt", ["prompt", "--date", dates[-2].isoformat()], NOT_FOR_PROMPT),
                                         ("check", ["check"], NOT_FOR_CHECK)):
                rows_it = importtime([py, STANDUP, "--config", str(config), *extra], env, work)
                total = sum(s for s, _, _, _ in rows_it) / 1000
                print(f"\n`standup.py {command}` -X importtime: {len(rows_it)} modules, {total:.0f} ms of imports "
                      f"(self times summed)")
                pk = sorted(by_package(rows_it).items(), key=lambda kv: -kv[1])[:12]
                print(S.table(["package (self time summed)", "ms"], [[k, v] for k, v in pk]))
                slowest = sorted(rows_it, key=lambda r: -r[0])[:8]
                print(S.table(["slowest single modules", "self ms", "cumulative ms"],
                              [[n, s / 1000, c / 1000] for s, c, _, n in slowest]))
                extra_mods = unneeded(rows_it, skip)
                if extra_mods:
                    print(f"loaded but not needed by `{command}`: "
                          + ", ".join(f"{n} {ms:.0f} ms" for n, ms in extra_mods)
                          + f" (total {sum(ms for _, ms in extra_mods):.0f} ms)")
        return 0 if not failures else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

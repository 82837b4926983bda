"""Helpers for the fault suite: configs, the real entry points as subprocesses, the database.

Every process runs from a working directory that is not the repo, with SLACK_*, SMTP_*,
STANDUP_* and proxy variables removed from its environment; secrets reach it through the
`.env` beside its config, as in production.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from standup_bot.mail_sink import MailSink
from standup_bot.settings import PROJECT_DIR
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, TOKEN, wait_for

STANDUP = str(PROJECT_DIR / "standup.py")
LISTENER = str(PROJECT_DIR / "listener.py")
SECRET_NAMES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SMTP_PASSWORD")
ALL_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# -- time --------------------------------------------------------------------------------
def midday_zone() -> str:
    """Return a fixed-offset IANA zone in which it is now between 12:00 and 13:00.

    Stage times are HH:MM in TIMEZONE; with "now" at midday there, times two hours either
    side stay on the same date, whatever the wall clock of the machine running the tests.
    """
    hours = 12 - dt.datetime.now(dt.UTC).hour  # -11 .. +12; Etc/GMT-N is UTC+N
    if hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"


def local_now(zone: str) -> dt.datetime:
    """Return the current time in a zone."""
    return dt.datetime.now(ZoneInfo(zone))


def hhmm(moment: dt.datetime) -> str:
    """Return a time of day as the HH:MM the settings take."""
    return f"{moment:%H:%M}"


# -- processes ---------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without Slack, SMTP, standup or proxy settings."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "SMTP_", "STANDUP_"))
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(extra)
    return env


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, settings: dict[str, Any]) -> Path:
    """Write config.py (secrets read from the environment) and the `.env` that holds them.

    Rewriting it between two runs changes what the next process sees.
    """
    directory.mkdir(parents=True, exist_ok=True)
    secrets = {k: v for k, v in settings.items() if k in SECRET_NAMES}
    lines = ["import os"]
    lines += [f"{name} = os.environ.get({name!r}, '')" for name in secrets]
    lines += [f"{name} = {value!r}" for name, value in settings.items() if name not in secrets]
    config = directory / "config.py"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = directory / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8")
    env.chmod(0o600)
    return config


@dataclass
class Result:
    """A finished `standup.py` run: exit code, output, and how long it took."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def out_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def __str__(self) -> str:
        return (
            f"standup.py {' '.join(self.args)} -> exit {self.returncode} in {self.seconds:.1f} s\n"
            f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}"
        )


def standup_command(config: Path, *args: str) -> list[str]:
    """Return the command line that runs `standup.py ARGS --config CONFIG`."""
    return [sys.executable, STANDUP, *args, "--config", str(config)]


def run_standup(config: Path, *args: str, cwd: Path, timeout: float = 60) -> Result:
    """Run `standup.py` to completion and return what it did."""
    started = time.monotonic()
    done = subprocess.run(
        standup_command(config, *args), cwd=cwd, env=clean_env(), capture_output=True, text=True,
        timeout=timeout,
    )
    return Result(tuple(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start_standup(config: Path, *args: str, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start `standup.py` in the background, its stdout and stderr going to a file."""
    with output.open("ab") as sink:
        return subprocess.Popen(
            standup_command(config, *args), cwd=cwd, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT,
        )


def finish(process: subprocess.Popen[Any], args: Sequence[str], output: Path, started: float,
           timeout: float = 60) -> Result:
    """Wait for a background `standup.py` and return its Result (stdout and stderr together)."""
    process.wait(timeout=timeout)
    seconds = time.monotonic() - started
    text = output.read_text(encoding="utf-8")
    return Result(tuple(args), process.returncode, text, text, seconds)


def finish_all(processes: dict[str, tuple[subprocess.Popen[Any], Path]], started: float,
               timeout: float = 60) -> dict[str, Result]:
    """Wait for background `standup.py` runs started together; time each one to its own exit."""
    ended: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(processes):
        for name, (process, _) in processes.items():
            if name not in ended and process.poll() is not None:
                ended[name] = time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"still running after {timeout} s: {set(processes) - set(ended)}")
        time.sleep(0.02)
    results = {}
    for name, (process, output) in processes.items():
        text = output.read_text(encoding="utf-8")
        results[name] = Result((name,), process.returncode, text, text, ended[name] - started)
    return results


def one_error_line(result: Result) -> str:
    """Assert the run failed with exit 1 and exactly one stderr line `error: …`; return it."""
    assert result.returncode == 1, result
    assert len(result.err_lines) == 1, result
    [line] = result.err_lines
    assert line.startswith("error: "), result
    return line


def start_simulator() -> SlackSimulator:
    """Start another Slack simulator with the test cast (failures injected in one are its own)."""
    simulator = SlackSimulator(token=TOKEN)
    simulator.add_user(ALICE, "alice", display_name="Alice", real_name="Alice Adams")
    simulator.add_user(BOB, "bob", display_name="", real_name="Bob Brown")
    simulator.add_user(CAROL, "carol", display_name="Carol")
    simulator.add_channel(CHANNEL, "team-standup", [ALICE, BOB, CAROL])
    return simulator.start()


# -- the listener ------------------------------------------------------------------------
def http_status(url: str, timeout: float = 2.0) -> int:
    """GET a URL and return the HTTP status, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@dataclass
class ListenerProcess:
    """`listener.py` running in HTTP mode on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def kill(self) -> None:
        """SIGKILL it (no chance to clean up) and reap it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM it, wait, and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_listener(config: Path, cwd: Path, port: int | None = None, *, wait: bool = True) -> ListenerProcess:
    """Start `listener.py --port P` (output to a file, so a full pipe never blocks it).

    With `wait`, return once /healthz answers 200.
    """
    port = port or free_port()
    log = cwd / f"listener-{port}-{time.monotonic_ns()}.out"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, LISTENER, "--config", str(config), "--port", str(port), "--threads", "8"],
            cwd=cwd, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT,
        )
    listener = ListenerProcess(process, port, log)
    if wait:
        try:
            wait_for(
                lambda: process.poll() is not None or http_status(f"http://127.0.0.1:{port}/healthz") == 200,
                timeout=20, what="the listener to answer /healthz",
            )
        except AssertionError:
            listener.kill()
            raise
        assert process.poll() is None, listener.output()
    return listener


# -- the database ------------------------------------------------------------------------
def db_rows(path: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Read rows from the bot's SQLite file with a plain sqlite3 connection."""
    conn = sqlite3.connect(path, timeout=15)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def stage_runs(path: Path, date: dt.date) -> dict[str, dict[str, Any]]:
    """Return stage -> its stage_runs row for a date."""
    rows = db_rows(path, "SELECT * FROM stage_runs WHERE date = ?", (date.isoformat(),))
    return {row["stage"]: row for row in rows}


def prompt_row(path: Path, date: dt.date) -> dict[str, Any] | None:
    rows = db_rows(path, "SELECT * FROM prompts WHERE date = ?", (date.isoformat(),))
    return rows[0] if rows else None


def reminders(path: Path, date: dt.date) -> dict[str, str]:
    rows = db_rows(path, "SELECT user, status FROM reminders WHERE date = ?", (date.isoformat(),))
    return {row["user"]: row["status"] for row in rows}


def deliveries(path: Path, date: dt.date) -> set[str]:
    rows = db_rows(path, "SELECT recipient FROM deliveries WHERE date = ? AND kind = 'digest'",
                   (date.isoformat(),))
    return {row["recipient"] for row in rows}


def replies(path: Path, date: dt.date) -> dict[str, dict[str, Any]]:
    """Return ts -> reply row for a date (deleted ones included)."""
    rows = db_rows(path, "SELECT * FROM replies WHERE date = ?", (date.isoformat(),))
    return {row["ts"]: row for row in rows}


def assert_consistent(path: Path, date: dt.date, *, prompt_ts: str | None = None) -> None:
    """Check the invariants every fault must leave intact.

    The file passes SQLite's integrity check; no stage is left `running` and no reminder
    `sending` (every process has ended); a prompt row exists exactly when the prompt stage
    is done (and names the message posted); a done digest has a delivery for each
    recipient it was sent to.
    """
    [[check]] = [tuple(row.values()) for row in db_rows(path, "PRAGMA integrity_check")]
    assert check == "ok", check
    runs = stage_runs(path, date)
    assert all(run["status"] in ("done", "failed") for run in runs.values()), runs
    assert all(status in ("sent", "failed") for status in reminders(path, date).values()), reminders(path, date)
    prompt = prompt_row(path, date)
    prompt_done = runs.get("prompt", {}).get("status") == "done"
    assert (prompt is not None) == prompt_done, (prompt, runs)
    if prompt_ts is not None:
        assert prompt is not None and prompt["ts"] == prompt_ts, (prompt, prompt_ts)
    if runs.get("digest", {}).get("status") == "done":
        assert deliveries(path, date), "a digest marked done was delivered to nobody"


# -- mail --------------------------------------------------------------------------------
def received_by(sinks: Iterable[MailSink]) -> Counter[str]:
    """Count, per envelope recipient, the messages every sink received."""
    counts: Counter[str] = Counter()
    for sink in sinks:
        for mail in sink.messages:
            counts.update(address.lower() for address in mail.rcpt_tos)
    return counts


def plain_text(sink: MailSink, index: int = -1) -> str:
    """Return the text/plain part of a received message."""
    message = sink.messages[index].message
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the digest has no text/plain part"
    return str(part.get_content())

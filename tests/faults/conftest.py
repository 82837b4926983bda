"""Fixtures for the fault suite: a config on the simulator and the SMTP sink, process cleanup, timings.

The cast (from tests/conftest.py): alice reports, bob doesn't, carol is not in MEMBERS.
TIMEZONE is a fixed-offset zone in which it is now about midday (see `midday_zone`), with
every weekday a workday, so stage times a couple of hours either side of now stay today.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CHANNEL, SIGNING_SECRET, TOKEN

from .helpers import ALL_WEEKDAYS, ListenerProcess, local_now, midday_zone, start_listener, write_config

RECIPIENTS = ["lead@example.com", "cto@example.com"]

_TIMINGS: list[tuple[str, str, float]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the measured durations (how long each failing stage took to give up, …)."""
    if not _TIMINGS:
        return
    terminalreporter.section("fault suite timings")
    for test, label, seconds in _TIMINGS:
        terminalreporter.write_line(f"{seconds:6.2f} s  {test}: {label}")


@pytest.fixture
def timing(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Record a measured duration for the summary at the end of the run."""

    def record(label: str, seconds: float) -> None:
        _TIMINGS.append((request.node.name, label, seconds))

    return record


@pytest.fixture
def zone() -> str:
    """Return the TIMEZONE of the test config: one where it is now about midday."""
    return midday_zone()


@pytest.fixture
def today(zone: str) -> dt.date:
    """Return today's date in the config's zone (what the stages act on without --date)."""
    return local_now(zone).date()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Return a working directory for the processes that is not the repo."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Return where the bot keeps its SQLite file (DATA_DIR/standup.db)."""
    return tmp_path / "data" / "standup.db"


@pytest.fixture
def config_values(tmp_path: Path, sim: SlackSimulator, smtp: MailSink, zone: str) -> dict[str, Any]:
    """Return the settings of a valid config for the simulator and the SMTP sink (edit, then write)."""
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": sim.base_url,
        "STANDUP_CHANNEL": CHANNEL,
        "MEMBERS": [ALICE, BOB],
        "TIMEZONE": zone,
        "WORKDAYS": ALL_WEEKDAYS,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": smtp.port,
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "standup@example.com",
        "DIGEST_RECIPIENTS": list(RECIPIENTS),
        "DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def make_config(tmp_path: Path, config_values: dict[str, Any]) -> Callable[..., Path]:
    """Return a function that (re)writes the config: the base settings with overrides."""

    def make(**overrides: Any) -> Path:
        return write_config(tmp_path / "conf", {**config_values, **overrides})

    return make


@pytest.fixture
def config(make_config: Callable[..., Path]) -> Path:
    """Write the base config and return its path."""
    return make_config()


@pytest.fixture
def listeners(workdir: Path) -> Iterator[Callable[..., ListenerProcess]]:
    """Return a starter of `listener.py` processes; whatever still runs is killed at the end."""
    started: list[ListenerProcess] = []

    def start(config: Path, port: int | None = None, *, wait: bool = True) -> ListenerProcess:
        listener = start_listener(config, workdir, port, wait=wait)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.kill()


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Collect background processes; any still running at the end is killed."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

"""The real entry points, `standup.py` and `listener.py`, run as separate processes.

Each runs from a working directory that is not the repo, with SLACK_*, SMTP_* and
STANDUP_* cleared from its environment, against the Slack simulator and SMTP sink.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.settings import PROJECT_DIR
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.store import Store

from .conftest import ALICE, BOB, CHANNEL, SIGNING_SECRET, TEAM_TZ, TOKEN, wait_for

STANDUP = str(PROJECT_DIR / "standup.py")
LISTENER = str(PROJECT_DIR / "listener.py")


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without Slack, SMTP, standup or proxy settings."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "SMTP_", "STANDUP_"))
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(extra)
    return env


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, **settings: Any) -> Path:
    """Write config.py (secrets read from the environment) and a `.env` with the secrets."""
    directory.mkdir(parents=True, exist_ok=True)
    secrets = {k: settings.pop(k) for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET") if k in settings}
    lines = ["import os"]
    lines += [f"{name} = os.environ.get({name!r}, '')" for name in secrets]
    lines += [f"{name} = {value!r}" for name, value in settings.items()]
    config = directory / "config.py"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8")
    return config


def standup_config(tmp_path: Path, sim: SlackSimulator, smtp: MailSink) -> Path:
    """Write a valid config for the simulator and the SMTP sink (shared by the process tests)."""
    return write_config(
        tmp_path / "conf",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=sim.base_url,
        STANDUP_CHANNEL=CHANNEL,
        MEMBERS=[ALICE, BOB],
        TIMEZONE=TEAM_TZ,
        SMTP_HOST=smtp.host,
        SMTP_PORT=smtp.port,
        SMTP_SECURITY="none",
        MAIL_FROM="standup@example.com",
        DIGEST_RECIPIENTS=["lead@example.com"],
        DATA_DIR=str(tmp_path / "data"),
        # These run on the real date: every day is a standup day, so weekends pass too.
        WORKDAYS=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    )


@pytest.fixture
def config(tmp_path: Path, sim: SlackSimulator, smtp: MailSink) -> Path:
    """Write a valid config for the simulator and the SMTP sink."""
    return standup_config(tmp_path, sim, smtp)


def run(script: str, *args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run an entry point to completion with a clean environment."""
    return subprocess.run(
        [sys.executable, script, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
        timeout=timeout,
    )


# -- standup.py --------------------------------------------------------------------------
def test_standup_prompt_posts_once_and_exits_0(config: Path, sim: SlackSimulator, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run(STANDUP, "prompt", "--config", str(config), cwd=elsewhere)

    assert (result.returncode, result.stderr) == (0, ""), result
    assert re.fullmatch(rf"prompt for \d{{4}}-\d\d-\d\d posted in {CHANNEL}\n", result.stdout)
    assert len(sim.messages(CHANNEL)) == 1
    assert len(sim.calls("chat.postMessage")) == 1
    assert TOKEN not in (tmp_path / "data" / "standup.log").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args",
    [["prompt", "--date", "2026-02-30"], ["frobnicate"], ["prompt", "--config", "/nonexistent/config.py"]],
    ids=["bad-date", "unknown-command", "missing-config"],
)
def test_standup_usage_errors_print_exactly_one_error_line(tmp_path: Path, args: list[str]) -> None:
    result = run(STANDUP, *args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")


def test_standup_demo_finishes_quickly_and_writes_both_digests(tmp_path: Path) -> None:
    started = time.monotonic()

    result = run(STANDUP, "demo", cwd=tmp_path, timeout=60)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    paths = dict(re.findall(r"^\s*(HTML|text): (\S+)$", result.stdout, re.MULTILINE))
    assert set(paths) == {"HTML", "text"}, result.stdout
    html, text = Path(paths["HTML"]), Path(paths["text"])
    assert html.suffix == ".html" and text.suffix == ".txt"
    assert "<html" in html.read_text(encoding="utf-8").lower()
    assert "Alice" in text.read_text(encoding="utf-8")
    # A blocker escalation by the listener, one by the stages, and plan vs done in the digest.
    assert "DM to Lena Lopez: :rotating_light: Blocker from *Bob*" in result.stdout
    assert "DM to Lena Lopez: :rotating_light: Blocker from *Erin*" in result.stdout
    digest = text.read_text(encoding="utf-8")
    assert "\nBlockers:\n  - Bob: waiting on #team-standup for API keys (same as last time)\n" in digest
    assert "      Planned last time (" in digest
    # carol used the form: the bot posted her answers in the thread, and they are her report
    assert "the bot posts it in the thread: *Standup from <@U0CAROL>*" in result.stdout
    assert "Carol\n    Yesterday: paired with Alice on the release <3\n" in digest


# -- listener.py -------------------------------------------------------------------------
def http_get(url: str) -> tuple[int, bytes]:
    """GET a URL; return (status, body), or (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def listener_process(config: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start `listener.py` in HTTP mode on a free port and wait until /healthz answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, LISTENER, "--config", str(config), "--port", str(port)],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
            timeout=20, what="the listener to answer /healthz",
        )
        assert process.poll() is None, process.communicate()
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_listener_stores_signed_replies_answers_healthz_and_stops_on_sigterm(
    listener_process: tuple[subprocess.Popen[str], int], config: Path, sim: SlackSimulator, tmp_path: Path,
) -> None:
    process, port = listener_process
    assert run(STANDUP, "prompt", "--config", str(config), cwd=tmp_path).returncode == 0
    [prompt] = sim.messages(CHANNEL)
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    assert (status, body) == (200, b'{"ok": true}')

    sim.deliver_events_to(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: shipped\nToday: tests", thread_ts=prompt["ts"])

    store = Store.open(tmp_path / "data")
    try:
        date = store.date_of_prompt(CHANNEL, prompt["ts"])
        assert date is not None
        [stored] = wait_for(lambda: store.stored_replies(CHANNEL, date), timeout=10, what="the stored reply")
        reply = stored.reply
        assert (reply.user, reply.text) == (ALICE, "Yesterday: shipped\nToday: tests")
    finally:
        store.close()
    assert sim.delivery_results and all(status == 200 for _, status in sim.delivery_results)

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    log = (tmp_path / "data" / "listener.log").read_text(encoding="utf-8")
    for secret in (TOKEN, SIGNING_SECRET):
        assert secret not in log + out + err
    assert "stopping on signal" in log


def test_listener_without_signing_secret_or_app_token_exits_2_naming_the_setting(
    tmp_path: Path, sim: SlackSimulator, smtp: MailSink,
) -> None:
    config = write_config(
        tmp_path / "conf", SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=sim.base_url, STANDUP_CHANNEL=CHANNEL,
        SMTP_HOST=smtp.host, MAIL_FROM="standup@example.com", DIGEST_RECIPIENTS=["lead@example.com"],
        DATA_DIR=str(tmp_path / "data"),
    )

    result = run(LISTENER, "--config", str(config), "--port", str(free_port()), cwd=tmp_path)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: SLACK_SIGNING_SECRET: ")
    assert TOKEN not in result.stdout + result.stderr
    assert sim.requests == []


def test_run_stopped_with_sigterm_while_waiting_says_so_and_exits_130(tmp_path, sim, smtp) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    if dt.datetime.now(ZoneInfo("Etc/GMT+12")).hour >= 23:
        pytest.skip("too close to midnight in Etc/GMT+12 for a reminder due later today")
    values = {
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": sim.base_url, "STANDUP_CHANNEL": "C0STANDUP",
        "MEMBERS": ["UALICE", "UBOB"], "SMTP_HOST": smtp.host, "SMTP_PORT": smtp.port, "SMTP_SECURITY": "none",
        "MAIL_FROM": "standup@example.com", "DIGEST_RECIPIENTS": ["lead@example.com"],
        "DATA_DIR": str(tmp_path / "data"), "WORKDAYS": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "TIMEZONE": "Etc/GMT+12", "PROMPT_TIME": "00:00", "REMIND_TIME": "23:58", "DIGEST_TIME": "23:59",
    }
    config = tmp_path / "config.py"
    config.write_text("".join(f"{k} = {v!r}\n" for k, v in values.items()))
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, str(root / "standup.py"), "run", "--config", str(config)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    deadline = time.monotonic() + 20
    while not sim.messages("C0STANDUP") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.messages("C0STANDUP"), "the prompt was never posted"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)

    assert process.returncode == 130
    assert err.strip().splitlines() == ["error: stopped; run the same command again to finish what is left"]
    assert "stopped by a signal" in (tmp_path / "data" / "standup.log").read_text()

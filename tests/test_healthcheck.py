"""HEALTHCHECK_URL: a ping after each stage, `/fail` with the reason when it failed."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from standup_bot.healthcheck import ping
from tests.conftest import DAY, FakeClock


@dataclass
class Monitor:
    """A local stand-in for healthchecks.io that records the pings it gets."""

    url: str
    pings: list[tuple[str, str]] = field(default_factory=list)
    answer: int = 200


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    record = Monitor("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            record.pings.append((self.path, body))
            self.send_response(record.answer)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    record.url = f"http://127.0.0.1:{server.server_port}/ping/abc-123"
    yield record
    server.shutdown()
    server.server_close()


def _config(tmp_path, settings_values: dict) -> str:
    path = tmp_path / "config.py"
    path.write_text("".join(f"{k} = {v!r}\n" for k, v in settings_values.items()))
    return str(path)


def _values(sim, smtp, tmp_path, **overrides) -> dict:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": sim.base_url, "STANDUP_CHANNEL": "C0STANDUP",
        "MEMBERS": ["UALICE", "UBOB"], "TIMEZONE": "Europe/Berlin", "SMTP_HOST": smtp.host,
        "SMTP_PORT": smtp.port, "SMTP_SECURITY": "none", "MAIL_FROM": "standup@example.com",
        "DIGEST_RECIPIENTS": ["lead@example.com"], "DATA_DIR": str(tmp_path / "data"),
    }
    values.update(overrides)
    return values


def test_each_stage_pings_on_success_and_fail_with_the_reason(monitor, sim, smtp, tmp_path, clock: FakeClock):
    from standup_bot.cli import main

    config = _config(tmp_path, _values(sim, smtp, tmp_path, HEALTHCHECK_URL=monitor.url))
    out, err = io.StringIO(), io.StringIO()

    assert main(["remind", "--config", config], now=clock.now, stdout=out, stderr=err) == 1
    assert main(["prompt", "--config", config], now=clock.now, stdout=out, stderr=err) == 0

    assert monitor.pings[0][0] == "/ping/abc-123/fail"
    assert "remind for 2026-11-26: no prompt was posted" in monitor.pings[0][1]
    assert monitor.pings[1] == ("/ping/abc-123", "prompt for 2026-11-26: ok")


def test_no_pings_without_the_setting(monitor, sim, smtp, tmp_path, clock: FakeClock):
    from standup_bot.cli import main

    config = _config(tmp_path, _values(sim, smtp, tmp_path))
    assert main(["prompt", "--config", config], now=clock.now, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert monitor.pings == []


def test_a_monitor_that_is_down_never_fails_the_stage():
    slept: list[float] = []
    assert ping("http://127.0.0.1:1/ping/x", "digest", DAY, None, timeout=1, sleep=slept.append) is False
    assert slept == [1.0, 2.0]  # bounded retries


def test_a_monitor_answering_an_error_is_retried(monitor):
    monitor.answer = 500
    assert ping(monitor.url, "prompt", DAY, None, sleep=lambda s: None) is False
    assert len(monitor.pings) == 3

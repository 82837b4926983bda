"""Fixtures: the Slack simulator, a real SMTP sink, settings, the store, a clock, a live listener.

The cast: alice reports, bob doesn't, carol is not in MEMBERS but replies anyway,
dave is in the channel but is a deactivated account, and a bot is in the channel too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from standup_bot.listener_app import build_app, serve_http
from standup_bot.mail_sink import MailSink
from standup_bot.settings import Settings, settings_from_mapping
from standup_bot.slack import RetryPolicy, SlackApi, make_client
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.stages import Context
from standup_bot.store import Store

TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
CHANNEL = "C0STANDUP"
ALICE, BOB, CAROL, DAVE, ROBOT = "UALICE", "UBOB", "UCAROL", "UDAVE", "UROBOT"
TEAM_TZ = "Europe/Berlin"
# A Thursday, 10:00 in Berlin (UTC+1 in November).
DAY = dt.date(2026, 11, 26)
MORNING = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
# Fast retries so tests of failures don't wait for production back-off.
FAST_RETRY = RetryPolicy(rate_limited=2, server_errors=2, connection_errors=2, backoff_factor=0.01)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's real Slack/SMTP settings and proxies out of every test."""
    import os

    for name in list(os.environ):
        if name.startswith(("SLACK_", "SMTP_", "STANDUP_")) or name.lower() in (
            "http_proxy", "https_proxy", "all_proxy",
        ):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """Undo what `main` sets for the whole process: root log handlers, log level, umask."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    os.umask(umask)


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    """Return a running Slack simulator with the test cast and the standup channel."""
    simulator = SlackSimulator(token=TOKEN)
    simulator.add_user(ALICE, "alice", display_name="Alice", real_name="Alice Adams")
    simulator.add_user(BOB, "bob", display_name="", real_name="Bob Brown")
    simulator.add_user(CAROL, "carol", display_name="Carol")
    simulator.add_user(DAVE, "dave", display_name="Dave", deleted=True)
    simulator.add_user(ROBOT, "robot", display_name="Robot", is_bot=True)
    simulator.add_channel(CHANNEL, "team-standup", [ALICE, BOB, CAROL, DAVE, ROBOT])
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    """Return a real SMTP server on loopback that keeps what it receives."""
    sink = MailSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def make_settings(tmp_path: Path, sim: SlackSimulator, smtp: MailSink) -> Callable[..., Settings]:
    """Return a factory of valid settings pointing at the simulator and the SMTP sink."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": sim.base_url,
            "STANDUP_CHANNEL": CHANNEL,
            "MEMBERS": [ALICE, BOB],
            "TIMEZONE": TEAM_TZ,
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": smtp.port,
            "SMTP_SECURITY": "none",
            "MAIL_FROM": "standup@example.com",
            "DIGEST_RECIPIENTS": ["lead@example.com", "cto@example.com"],
            "DATA_DIR": str(tmp_path / "data"),
        }
        values.update(overrides)
        return settings_from_mapping(values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Return the default test settings."""
    return make_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """Return the store in the test's data dir."""
    opened = Store.open(settings.data_dir)
    yield opened
    opened.close()


@dataclass
class FakeClock:
    """An aware clock that moves only when told to (or when something sleeps)."""

    current: dt.datetime
    slept: list[float] = field(default_factory=list)

    def now(self) -> dt.datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += dt.timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    """Return a clock set to 10:00 in Berlin on the test day."""
    return FakeClock(MORNING)


@dataclass
class Said:
    """Collects what a stage tells the user on stdout."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def make_ctx(store: Store, clock: FakeClock) -> Callable[[Settings], Context]:
    """Return a factory of stage contexts on the test store and clock."""

    def make(settings: Settings) -> Context:
        client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=5, retry=FAST_RETRY)
        return Context(
            settings, store, SlackApi(client, sleep=lambda s: None), now=clock.now, sleep=clock.sleep,
            say=Said(),
        )

    return make


@pytest.fixture
def ctx(make_ctx: Callable[[Settings], Context], settings: Settings) -> Context:
    """Return a stage context with the default settings."""
    return make_ctx(settings)


@dataclass
class LiveListener:
    """A real listener (Bolt app behind waitress) serving on a free loopback port."""

    url: str
    server: Any
    thread: threading.Thread


@pytest.fixture
def listener(settings: Settings, store: Store, sim: SlackSimulator) -> Iterator[LiveListener]:
    """Serve the Bolt app over HTTP and point the simulator's event delivery at it."""
    client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=5, retry=FAST_RETRY)
    app = build_app(settings, store, client)
    server = serve_http(app, store, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"
    sim.deliver_events_to(url, SIGNING_SECRET)
    yield LiveListener(url, server, thread)
    sim.deliver_events_to(None, SIGNING_SECRET)
    stop_server(server, thread)


def post_prompt(ctx: Context, store: Store) -> str:
    """Post today's prompt through the stage and return its ts."""
    from standup_bot import stages

    stages.prompt(ctx, DAY)
    ts = store.prompt_ts(CHANNEL, DAY)
    assert ts is not None
    return ts


@pytest.fixture
def prompt_ts(ctx: Context, store: Store, listener: LiveListener) -> str:
    """Post today's prompt with the HTTP listener running; return its ts."""
    return post_prompt(ctx, store)


def stop_server(server: Any, thread: threading.Thread) -> None:
    """Stop a waitress server running in `thread`: its sockets are closed by the loop's own
    thread (closed from here, the loop's select() could meet a closed descriptor)."""
    from waitress import wasyncore

    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    thread.join(10)
    server.task_dispatcher.shutdown()


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.01
) -> Any:
    """Poll until `condition()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stored_texts(store: Store, channel: str = CHANNEL, date: dt.date = DAY) -> dict[str, str]:
    """Return ts -> text of a day's replies the store holds and were not deleted."""
    return {s.reply.ts: s.reply.text for s in store.stored_replies(channel, date) if not s.deleted}


def _register_hypothesis_profiles() -> None:
    """Register the property tests' profiles; HYPOTHESIS_PROFILE picks one (default "fast")."""
    from hypothesis import HealthCheck
    from hypothesis import settings as hypothesis_settings

    # One listener (a function-scoped fixture) serves every example of a test, and some
    # examples are 40,000-character messages: neither is a problem here.
    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    }
    hypothesis_settings.register_profile("fast", max_examples=30, **common)
    hypothesis_settings.register_profile("long", max_examples=10_000, **common)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


_register_hypothesis_profiles()

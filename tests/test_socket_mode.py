"""The real Bolt listener over Socket Mode: slack_sdk's built-in client on the simulator's WebSocket.

`SocketModeHandler(app, app_token)` asks the simulator's Web API (SLACK_API_URL) for a URL with
`apps.connections.open`, connects to the simulator's RFC 6455 server, gets `hello`, and receives
every produced event as an `events_api` envelope, which it must ack with `{"envelope_id": …}`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from standup_bot import stages
from standup_bot.listener_app import ReplyRecorder, build_app
from standup_bot.settings import PROJECT_DIR, Settings
from standup_bot.slack import make_client
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.stages import Context
from standup_bot.store import Store
from tests.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    DAY,
    FAST_RETRY,
    SIGNING_SECRET,
    TEAM_TZ,
    TOKEN,
    LiveListener,
    post_prompt,
    stored_texts,
    wait_for,
)

APP_TOKEN = "xapp-1-A0SIM-1-simulated-app-token"
ENVELOPE_KEYS = {"envelope_id", "type", "payload", "accepts_response_payload", "retry_attempt", "retry_reason"}


@dataclass
class SocketListener:
    """A connected SocketModeHandler and what its ReplyRecorder did: (event_id, result)."""

    handler: SocketModeHandler
    handled: list[tuple[str | None, str]] = field(default_factory=list)

    def results_for(self, event_id: str) -> list[str]:
        return [result for seen, result in list(self.handled) if seen == event_id]


@pytest.fixture
def app_token(sim: SlackSimulator) -> str:
    """Make the simulator accept only this app-level token."""
    sim.app_token = APP_TOKEN
    return APP_TOKEN


def _connect(app: App, sim: SlackSimulator, token: str) -> SocketModeHandler:
    handler = SocketModeHandler(app, token)
    handler.connect()  # apps.connections.open, then the WebSocket handshake; does not block
    if not sim.wait_for_socket_client(timeout=5):
        handler.close()
        raise AssertionError("the Socket Mode client did not connect")
    return handler


@pytest.fixture
def socket_listener(
    sim: SlackSimulator, store: Store, make_settings: Callable[..., Settings], app_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SocketListener]:
    """Run the real Bolt app behind the real SocketModeHandler, connected to the simulator."""
    handled: list[tuple[str | None, str]] = []
    handle = ReplyRecorder.handle

    def recording(self: ReplyRecorder, event: Any, event_id: str | None) -> str:
        result = handle(self, event, event_id)
        handled.append((event_id, result))  # after the handler finished, ✅ included
        return result

    monkeypatch.setattr(ReplyRecorder, "handle", recording)
    settings = make_settings(SLACK_APP_TOKEN=app_token)
    client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=5, retry=FAST_RETRY)
    handler = _connect(build_app(settings, store, client, socket_mode=True), sim, app_token)
    listener = SocketListener(handler, handled)
    try:
        yield listener
    finally:
        listener.handler.close()


@pytest.fixture
def prompt_ts(ctx: Context, store: Store, socket_listener: SocketListener) -> str:
    return post_prompt(ctx, store)


def _envelope(event: dict, event_id: str) -> dict:
    return {
        "token": "XXYYZZ", "team_id": "T0TEST", "api_app_id": "A0SIM", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT", "is_bot": True}],
    }


# -- the WebSocket server itself, through a raw client -------------------------------------
class RawClient:
    """A bare RFC 6455 client, to check what the simulator's server does frame by frame."""

    def __init__(self, url: str, *, key: str | None = "dGhlIHNhbXBsZSBub25jZQ==") -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        headers = ["Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
        if key is not None:
            headers.append(f"Sec-WebSocket-Key: {key}")
        request = f"GET {parts.path}?{parts.query} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        return chunk

    def send(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> None:
        header = bytes([(0x80 if fin else 0) | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([(0x80 if mask else 0) | length])
        else:
            header += bytes([(0x80 if mask else 0) | 126]) + length.to_bytes(2, "big")
        if mask:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + payload)

    def frame(self, skip_pings: bool = True) -> tuple[int, bytes]:
        """Return the next (opcode, payload) from the server; server frames are never masked."""
        while True:
            while len(self.buffer) < 2:
                self.buffer += self._recv()
            assert self.buffer[0] & 0x80 and not self.buffer[1] & 0x80, "a final, unmasked frame"
            length, start = self.buffer[1], 2
            if length == 126:
                while len(self.buffer) < 4:
                    self.buffer += self._recv()
                length, start = int.from_bytes(self.buffer[2:4], "big"), 4
            while len(self.buffer) < start + length:
                self.buffer += self._recv()
            opcode, payload = self.buffer[0] & 0x0F, self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
            if not (skip_pings and opcode == 0x9):
                return opcode, payload

    def json(self) -> dict:
        opcode, payload = self.frame()
        assert opcode == 0x1
        return json.loads(payload)

    def at_eof(self) -> bool:
        try:
            while True:
                self.buffer += self._recv()
        except EOFError:
            return True


def _socket_url(sim: SlackSimulator, token: str = APP_TOKEN) -> str:
    return WebClient(base_url=sim.base_url).apps_connections_open(app_token=token)["url"]


def test_the_websocket_server_speaks_rfc_6455_and_slacks_hello(sim: SlackSimulator, app_token: str) -> None:
    url = _socket_url(sim)
    assert url.startswith(sim.socket_url + "?ticket=") and url.endswith("&app_id=A0SIM")
    client = RawClient(url)  # the RFC 6455 section 1.3 example key and its accept value
    assert client.status == 101 and client.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert client.json() == {
        "type": "hello", "num_connections": 1,
        "debug_info": {"host": "applink-simulator", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A0SIM"},
    }
    assert sim.wait_for_socket_client(timeout=1) and sim.socket_connections == 1

    assert client.frame(skip_pings=False)[0] == 0x9  # the server pings a quiet client
    client.send(0x9, b"are you there")
    assert client.frame() == (0xA, b"are you there")
    ts = sim.user_posts(ALICE, CHANNEL, "hello socket")
    envelope = client.json()
    assert set(envelope) == ENVELOPE_KEYS and envelope["payload"]["event"]["ts"] == ts
    assert sim.socket_envelopes == [envelope] and sim.socket_acks == []
    ack = json.dumps({"envelope_id": envelope["envelope_id"]}).encode()
    client.send(0x1, ack[:5], fin=False)  # a fragmented ack, as RFC 6455 allows
    client.send(0x0, ack[5:])
    assert sim.wait_for_socket_acks(timeout=1) and sim.socket_acks == [envelope["envelope_id"]]

    client.send(0x8, (1000).to_bytes(2, "big") + b"bye")
    assert client.frame() == (0x8, (1000).to_bytes(2, "big"))  # the close is echoed
    assert client.at_eof()
    wait_for(lambda: sim.socket_connections == 0, what="the connection to be forgotten")
    assert sim.socket_connections_opened == 1


def test_bad_upgrades_and_unmasked_frames_are_refused(sim: SlackSimulator, app_token: str) -> None:
    with pytest.raises(SlackApiError) as wrong:
        _socket_url(sim, "xapp-1-someone-else")
    assert wrong.value.response["error"] == "invalid_auth"
    url = _socket_url(sim)
    assert RawClient(url.replace("ticket=", "ticket=0")).status == 401
    assert RawClient(url.replace("/link/", "/elsewhere/")).status == 401
    assert RawClient(url, key=None).status == 400

    client = RawClient(url)
    assert client.json()["type"] == "hello"
    client.send(0x1, b'{"envelope_id": "x"}', mask=False)
    opcode, payload = client.frame()
    assert (opcode, payload[:2]) == (0x8, (1002).to_bytes(2, "big")) and client.at_eof()
    assert sim.socket_acks == [] and sim.socket_connections_opened == 1


def test_the_delivery_mode_can_force_or_forbid_the_socket(sim: SlackSimulator, app_token: str) -> None:
    sim.deliver_events_to("http://127.0.0.1:9/slack/events", SIGNING_SECRET)  # nothing listens there
    sim.deliver_events_over_socket(True)
    sim.user_posts(ALICE, CHANNEL, "dropped: no client")
    assert sim.socket_envelopes == [] and sim.delivery_results == []
    with pytest.raises(RuntimeError):
        sim.send_socket_envelope({"type": "event_callback"})

    client = RawClient(_socket_url(sim))
    assert client.json()["type"] == "hello"
    sim.deliver_events_over_socket(False)
    sim.user_posts(ALICE, CHANNEL, "over http")
    assert sim.socket_envelopes == [] and sim.delivery_results[-1][1] == 0
    sim.deliver_events_over_socket(None)
    sim.user_posts(ALICE, CHANNEL, "over the socket")
    assert client.json()["payload"]["event"]["text"] == "over the socket"
    assert len(sim.delivery_results) == 1


def test_stop_closes_connections_with_1001_at_once() -> None:
    sim = SlackSimulator(socket_url_scheme="ws").start()
    try:
        url = _socket_url(sim, "xapp-any-token-is-fine-by-default")
        assert url.startswith("ws://127.0.0.1:")
        client = RawClient(url)
        assert client.json()["type"] == "hello"
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 1
        opcode, payload = client.frame()
        assert (opcode, payload[:2]) == (0x8, (1001).to_bytes(2, "big")) and client.at_eof()
        assert sim.socket_connections == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", urlsplit(url).port), timeout=1)
    finally:
        sim.stop()


# -- the Bolt app behind SocketModeHandler -------------------------------------------------
def test_a_reply_goes_over_the_socket_is_recorded_confirmed_and_acked(
    sim: SlackSimulator, store: Store, prompt_ts: str, listener: LiveListener
) -> None:
    # `listener` also points HTTP delivery at a live HTTP listener: the socket must win.
    ts = sim.user_posts(ALICE, CHANNEL, "done &amp; dusted", thread_ts=prompt_ts)

    wait_for(lambda: stored_texts(store).get(ts) == "done &amp; dusted", what="the reply to be stored")
    wait_for(lambda: sim.reactions_on(CHANNEL, ts) == ["white_check_mark"], what="the ✅")
    assert sim.wait_for_socket_acks(timeout=3), "an envelope was not acked within Slack's 3 s"

    # The bot's own prompt and Alice's reply, each in its own envelope, each acked once.
    sent = sim.socket_envelopes
    assert [m["payload"]["event"].get("user") for m in sent] == ["UBOT", ALICE]
    assert sorted(sim.socket_acks) == sorted(m["envelope_id"] for m in sent)
    reply = sent[1]
    assert set(reply) == ENVELOPE_KEYS and reply["type"] == "events_api"
    assert (reply["accepts_response_payload"], reply["retry_attempt"], reply["retry_reason"]) == (False, 0, "")
    assert reply["payload"] == sim.last_event()
    assert sim.delivery_results == []  # nothing went over HTTP while the socket was connected

    # SLACK_API_URL was honoured: the handler asked the simulator, with the app-level token.
    [opened] = [r for r in sim.requests if r.method == "apps.connections.open"]
    assert opened.token == APP_TOKEN
    assert (sim.socket_connections, sim.socket_connections_opened) == (1, 1)


def test_every_envelope_is_acked_even_events_the_bot_has_no_use_for(
    sim: SlackSimulator, socket_listener: SocketListener
) -> None:
    ids = [
        sim.send_socket_envelope(_envelope(event, f"Ev0{n}"))
        for n, event in enumerate([
            {"type": "reaction_added", "user": ALICE, "reaction": "tada",
             "item": {"type": "message", "channel": CHANNEL, "ts": "1.1"}},
            {"type": "app_mention", "user": ALICE, "text": "<@UBOT> hi", "ts": "1.2", "channel": CHANNEL},
            {"type": "member_joined_channel", "user": BOB, "channel": CHANNEL},
            {"type": "message", "subtype": "channel_join", "user": BOB, "ts": "1.3", "channel": CHANNEL},
        ])
    ]

    assert sim.wait_for_socket_acks(timeout=3), "an envelope was not acked within Slack's 3 s"
    assert sorted(sim.socket_acks) == sorted(ids)


def test_without_the_error_hook_bolt_sends_no_ack_for_an_unhandled_event(
    sim: SlackSimulator, app_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The control for the test above: a plain Bolt app answers 404 and, in Socket Mode, no ack.
    logger = logging.getLogger("test_socket_mode.plain_bolt")
    caplog.set_level(logging.INFO, logger=logger.name)
    app = App(client=make_client(TOKEN, sim.base_url, timeout=5), request_verification_enabled=False,
              token_verification_enabled=False, logger=logger)
    handler = _connect(app, sim, app_token)
    try:
        unacked = sim.send_socket_envelope(_envelope({"type": "reaction_added", "user": ALICE}, "Ev404"))
        wait_for(lambda: any("status: 404" in r.getMessage() for r in caplog.records), what="Bolt's 404")
        assert unacked not in sim.socket_acks
    finally:
        handler.close()


def test_a_redelivered_envelope_duplicates_nothing_and_undoes_no_edit(
    sim: SlackSimulator, store: Store, prompt_ts: str, socket_listener: SocketListener
) -> None:
    ts = sim.user_posts(ALICE, CHANNEL, "original", thread_ts=prompt_ts)
    original = sim.last_event()
    assert original is not None
    wait_for(lambda: socket_listener.results_for(original["event_id"]) == ["recorded"], what="the reply")
    sim.user_edits(CHANNEL, ts, "edited")
    edit = sim.last_event()
    assert edit is not None
    wait_for(lambda: socket_listener.results_for(edit["event_id"]) == ["updated"], what="the edit")

    retry = sim.send_socket_envelope(original, retry_attempt=1, retry_reason="timeout")

    # The retry was handled to the end (reaction step included) without changing anything.
    wait_for(lambda: len(socket_listener.results_for(original["event_id"])) == 2, what="the retry")
    assert socket_listener.results_for(original["event_id"]) == ["recorded", "updated"]
    assert stored_texts(store) == {ts: "edited"}
    assert len(store.stored_replies(CHANNEL, DAY)) == 1
    assert len(sim.calls("reactions.add")) == 1
    assert sim.wait_for_socket_acks(timeout=3) and retry in sim.socket_acks
    resent = sim.socket_envelopes[-1]
    assert resent["envelope_id"] == retry and resent["payload"] == original
    assert (resent["retry_attempt"], resent["retry_reason"]) == (1, "timeout")


def test_events_go_back_to_http_once_the_socket_client_leaves(
    sim: SlackSimulator, store: Store, prompt_ts: str, socket_listener: SocketListener, listener: LiveListener
) -> None:
    socket_listener.handler.close()
    wait_for(lambda: sim.socket_connections == 0, what="the socket to close")

    ts = sim.user_posts(ALICE, CHANNEL, "over http", thread_ts=prompt_ts)

    assert sim.delivery_results == [(sim.last_event()["event_id"], 200)]
    wait_for(lambda: stored_texts(store).get(ts) == "over http", what="the reply to be stored")
    assert all(m["payload"]["event"].get("text") != "over http" for m in sim.socket_envelopes)


def test_a_wrong_app_token_is_refused_by_apps_connections_open(
    sim: SlackSimulator, settings: Settings, store: Store, app_token: str
) -> None:
    client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=5, retry=FAST_RETRY)
    handler = SocketModeHandler(build_app(settings, store, client, socket_mode=True), "xapp-1-wrong")
    try:
        with pytest.raises(SlackApiError) as refused:
            handler.connect()
        assert refused.value.response["error"] == "invalid_auth"
        assert sim.socket_connections_opened == 0
    finally:
        handler.close()


# -- the listener command line -----------------------------------------------------------
def _write_config(directory: Path, sim: SlackSimulator, data_dir: Path, app_token: str) -> Path:
    """Write a Socket Mode config (no signing secret) with the tokens in a `.env` beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "SLACK_API_URL": sim.base_url, "STANDUP_CHANNEL": CHANNEL, "MEMBERS": [ALICE, BOB],
        "TIMEZONE": TEAM_TZ, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": 25, "SMTP_SECURITY": "none",
        "MAIL_FROM": "standup@example.com", "DIGEST_RECIPIENTS": ["lead@example.com"],
        "DATA_DIR": str(data_dir),
    }
    lines = ["import os", "SLACK_BOT_TOKEN = os.environ.get('SLACK_BOT_TOKEN', '')",
             "SLACK_APP_TOKEN = os.environ.get('SLACK_APP_TOKEN', '')"]
    lines += [f"{name} = {value!r}" for name, value in settings.items()]
    config = directory / "config.py"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / ".env").write_text(f"SLACK_BOT_TOKEN={TOKEN}\nSLACK_APP_TOKEN={app_token}\n", encoding="utf-8")
    return config


def _start_listener_cli(config: Path, cwd: Path) -> subprocess.Popen[str]:
    """Run `listener_cli.main(["--config", config])` in a process with a clean environment."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SLACK_", "SMTP_", "STANDUP_"))
           and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PYTHONPATH"] = str(PROJECT_DIR)
    code = "import sys; from standup_bot.listener_cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config)], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_the_listener_cli_runs_in_socket_mode_and_stops_on_sigterm(
    sim: SlackSimulator, ctx: Context, store: Store, settings: Settings, app_token: str, tmp_path: Path
) -> None:
    stages.prompt(ctx, DAY)  # no listener yet: the prompt's event is dropped, as Slack would
    prompt_ts = store.prompt_ts(CHANNEL, DAY)
    process = _start_listener_cli(_write_config(tmp_path / "conf", sim, settings.data_dir, app_token), tmp_path)
    try:
        wait_for(lambda: sim.socket_connections == 1 or process.poll() is not None, timeout=15,
                 what="the listener to connect")
        assert process.poll() is None, process.communicate()
        ts = sim.user_posts(ALICE, CHANNEL, "via the CLI", thread_ts=prompt_ts)
        wait_for(lambda: stored_texts(store).get(ts) == "via the CLI", what="the reply to be stored")
        wait_for(lambda: sim.reactions_on(CHANNEL, ts) == ["white_check_mark"], what="the ✅")
        assert sim.wait_for_socket_acks(timeout=3)

        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err
    assert "Traceback" not in err and "(Socket Mode)" in err
    wait_for(lambda: sim.socket_connections == 0, what="the connection to close")
    assert sim.delivery_results == [] and sim.socket_connections_opened == 1
    [opened] = [r for r in sim.requests if r.method == "apps.connections.open"]
    assert opened.token == APP_TOKEN
    log = (settings.data_dir / "listener.log").read_text(encoding="utf-8")
    assert APP_TOKEN not in log + err and TOKEN not in log + err


def test_the_listener_cli_reports_a_refused_app_token_in_one_line(
    sim: SlackSimulator, settings: Settings, app_token: str, tmp_path: Path
) -> None:
    process = _start_listener_cli(_write_config(tmp_path / "conf", sim, settings.data_dir, "xapp-1-wrong"),
                                  tmp_path)
    try:
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 2 and sim.socket_connections_opened == 0
    assert "Traceback" not in err
    assert any(line.startswith("error: SLACK_APP_TOKEN") for line in err.splitlines()), err

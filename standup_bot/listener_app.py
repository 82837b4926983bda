"""The Bolt app that records replies in the prompt's thread, and the servers that run it.

Bolt acknowledges each event before our handler runs (on its thread pool), so the ack
never waits for SQLite. Every valid request gets a 2xx, even events we have no use for:
Bolt's default 404 for unhandled requests makes Slack retry and, in time, disable the
subscription (https://api.slack.com/events/app_rate_limited).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient

from .away import AwayInputError, apply_request, parse_request
from .errors import SlackError, StoreError
from .reports import reply_from_message
from .settings import Settings
from .slack import SlackApi
from .store import Store

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
SIGNATURE_WINDOW = 5 * 60  # Slack's signatures are valid for five minutes
MAX_BODY_BYTES = 1024 * 1024  # Slack events are a few KB; a 40k-character message stays far below
CONFIRM_REACTION = "white_check_mark"


@dataclass(frozen=True)
class ReplyEvent:
    """What a message event means for the standup: a reply to record, or one to delete."""

    kind: str  # "reply", "edit" or "delete"
    channel: str
    ts: str
    thread_ts: str = ""
    message: Mapping[str, Any] | None = None
    version: str = ""


def interpret_message_event(event: Mapping[str, Any]) -> ReplyEvent | None:
    """Return what a `message` event changes, or None when it cannot be a thread reply.

    https://docs.slack.dev/reference/events/message/message_changed/ and /message_deleted/
    """
    channel = event.get("channel")
    if not isinstance(channel, str):
        return None
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        deleted_ts = event.get("deleted_ts")
        return ReplyEvent("delete", channel, deleted_ts) if isinstance(deleted_ts, str) else None
    if subtype == "message_changed":
        message = event.get("message")
        if not isinstance(message, Mapping):
            return None
        ts, thread_ts = message.get("ts"), message.get("thread_ts")
        edited = message.get("edited")
        version = edited.get("ts") if isinstance(edited, Mapping) else event.get("ts")
        if not (isinstance(ts, str) and isinstance(thread_ts, str)) or ts == thread_ts:
            return None
        return ReplyEvent("edit", channel, ts, thread_ts, message, str(version or ts))
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    if not (isinstance(ts, str) and isinstance(thread_ts, str)) or ts == thread_ts:
        return None
    return ReplyEvent("reply", channel, ts, thread_ts, event, ts)


class ReplyRecorder:
    """Apply message events to the store and confirm new replies with a reaction."""

    def __init__(self, settings: Settings, store: Store, slack: SlackApi) -> None:
        self.settings = settings
        self.store = store
        self.slack = slack

    def handle(self, event: Mapping[str, Any], event_id: str | None) -> str:
        """Record one message event; return what was done (for logs and tests)."""
        change = interpret_message_event(event)
        if change is None:
            return "ignored"
        if change.kind == "delete":
            deleted = self.store.delete_reply(change.channel, change.ts, event_id=event_id)
            return "deleted" if deleted else "ignored"
        date = self.store.date_of_prompt(change.channel, change.thread_ts)
        if date is None:
            return "ignored"  # a thread that is not a standup prompt
        assert change.message is not None
        reply = reply_from_message(change.message, change.thread_ts)
        if reply is None:
            return "ignored"
        is_new = self.store.record_reply(
            change.channel, date, reply, version=change.version, event_id=event_id
        )
        if is_new and change.kind == "reply" and self.settings.confirm_with_reaction:
            self._confirm(change.channel, reply.ts)
        log.info("%s reply %s from %s for %s", "recorded" if is_new else "updated", reply.ts, reply.user, date)
        return "recorded" if is_new else "updated"

    def _confirm(self, channel: str, ts: str) -> None:
        try:
            self.slack.add_reaction(channel, ts, CONFIRM_REACTION)
        except SlackError as exc:
            # The reply is recorded; the tick is a courtesy, so a failure is only logged.
            log.warning("could not add the confirmation reaction to %s: %s", ts, exc)


def build_app(
    settings: Settings, store: Store, client: WebClient, *, socket_mode: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> App:
    """Build the Bolt app: message events recorded, `/standup` answered, everything acknowledged."""
    recorder = ReplyRecorder(settings, store, SlackApi(client))
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,  # the entry point checks auth.test itself, with a clear error
        raise_error_for_unhandled_request=True,
        logger=logging.getLogger("slack_bolt"),
    )

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        try:
            recorder.handle(event, body.get("event_id"))
        except StoreError as exc:
            # Acked already; the digest reads the thread back from Slack, so nothing is lost.
            log.error("could not record event %s: %s", body.get("event_id"), exc)

    @app.command("/standup")
    def on_standup_command(ack: Ack, command: dict[str, Any]) -> None:
        # The answer goes back in the acknowledgement, shown only to the member who asked.
        ack(answer_standup_command(settings, store, command, now().astimezone(settings.zone).date()))

    @app.error
    def on_error(error: Exception, response: BoltResponse | None) -> None:
        if isinstance(error, BoltUnhandledRequestError) and response is not None:
            response.status = 200
            response.body = ""
            return
        log.error("listener error: %s", error, exc_info=error)

    return app


class ReplayGuard:
    """Refuse a signed request seen before: within the five minutes a signature is valid,
    a captured request could otherwise be sent again. Slack's retries carry a new
    X-Slack-Retry-Num, so they are keyed apart (and deduplicated by event_id instead)."""

    def __init__(self, window: float = SIGNATURE_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: set[str] = set()
        self._expiry: deque[tuple[float, str]] = deque()  # in insertion (= expiry) order
        self._lock = threading.Lock()

    def first_use(self, signature: str) -> bool:
        """Record a signature; return False when it was already used within the window."""
        now = self.clock()
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                self._seen.discard(self._expiry.popleft()[1])
            if signature in self._seen:
                return False
            self._seen.add(signature)
            self._expiry.append((now + self.window, signature))
            return True

    def forget(self, signature: str) -> None:
        """Drop a signature (its request turned out invalid, so it proves nothing)."""
        with self._lock:
            self._seen.discard(signature)


def answer_standup_command(settings: Settings, store: Store, command: Mapping[str, Any], today: dt.date) -> str:
    """Apply `/standup …` for the member who typed it and return the ephemeral answer."""
    user = command.get("user_id")
    if not isinstance(user, str) or not user:
        return "Sorry, Slack did not say who you are; try again."
    try:
        request = parse_request(str(command.get("text") or ""), today)
        return apply_request(store, settings.standup_channel, user, request, today, source="slash")
    except AwayInputError as exc:
        return str(exc)
    except StoreError as exc:
        log.error("could not record /standup from %s: %s", user, exc)
        return "Sorry, I could not save that just now; please try again in a minute."


def wsgi_app(app: App, store: Store) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """Return the WSGI application: Slack requests on /slack/events, a health check on /healthz."""
    slack_handler = SlackRequestHandler(app, path=EVENTS_PATH)
    replays = ReplayGuard()

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _health(store, start_response)
        length = environ.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
            return [b"request body too large\n"]
        # Slack's own retries may reuse the signed timestamp, but never the retry number.
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        signature += "#" + str(environ.get("HTTP_X_SLACK_RETRY_NUM") or "0")
        if path != EVENTS_PATH or signature.startswith("#"):
            return slack_handler(environ, start_response)
        if not replays.first_use(signature):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error": "replayed request"}']
        status: list[str] = []

        def remember_status(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        body = slack_handler(environ, remember_status)
        if status and status[0].startswith("401"):
            replays.forget(signature)
        return body

    return application


def _health(store: Store, start_response: StartResponse) -> list[bytes]:
    try:
        store.ping()
        status, body = "200 OK", {"ok": True}
    except StoreError as exc:
        status, body = "503 Service Unavailable", {"ok": False, "error": str(exc)}
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def serve_http(app: App, store: Store, host: str, port: int, *, threads: int = 8) -> Any:
    """Create the production HTTP server (waitress, multi-threaded); call .run() to serve."""
    from waitress.server import create_server

    return create_server(
        wsgi_app(app, store), host=host, port=port, threads=threads,
        max_request_body_size=MAX_BODY_BYTES, ident="standup-listener", clear_untrusted_proxy_headers=True,
    )


def serve_socket_mode(app: App, app_token: str) -> Any:
    """Return a Socket Mode handler for the app; call .start() to connect and block."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)


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
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from . import blockers, sanity, slash
from .away import AwayInputError, apply_request, parse_request
from .confirmations import ConfirmationQueue
from .errors import SlackError, StoreError
from .form import FormReports
from .messages import EDIT_FORM_ACTION, FORM_CALLBACK_ID, OPEN_FORM_ACTION
from .reply_writer import ReplyWriter
from .reports import group_reports, reply_from_message
from .settings import Settings
from .slack import SlackApi
from .store import ReplyChange, Store

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
SIGNATURE_WINDOW = 5 * 60  # Slack's signatures are valid for five minutes
MAX_BODY_BYTES = 1024 * 1024  # Slack events are a few KB; a 40k-character message stays far below
CONFIRM_REACTION = "white_check_mark"
# Bolt runs handlers after the ack on this many threads (its default is 5). Replies being stored
# at the same moment share one commit (reply_writer), so more threads means bigger, fewer commits.
HANDLER_THREADS = 16
# Events acked but not yet handled wait in memory; past this many, the next ack waits for room
# (at most ACK_WAIT_LIMIT, well inside the 3 s Slack allows), so a flood slows the acks down to
# the pace replies are stored instead of filling memory.
MAX_HANDLERS_WAITING = 256
ACK_WAIT_LIMIT = 1.5
EVENT_ID_KEEP = dt.timedelta(days=2)  # Slack retries a failed event three times within about an hour
EVENT_ID_PRUNE_EVERY = dt.timedelta(hours=6)


@dataclass(frozen=True)
class ReplyEvent:
    """What a message event means for the standup: a reply to record, or one to delete."""

    kind: str  # "reply", "edit" or "delete"
    channel: str
    ts: str
    thread_ts: str = ""
    message: Mapping[str, Any] | None = None
    version: str = ""


_SLACK_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")


def _ts(value: object) -> str | None:
    """Return a Slack ts ("1700000000.000100") or None for anything else."""
    return value if isinstance(value, str) and _SLACK_TS.match(value) else None


def interpret_message_event(event: Mapping[str, Any]) -> ReplyEvent | None:
    """Return what a `message` event changes, or None when it cannot be a thread reply.

    https://docs.slack.dev/reference/events/message/message_changed/ and /message_deleted/
    """
    channel = event.get("channel")
    if not isinstance(channel, str) or not channel:
        return None
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        deleted_ts = _ts(event.get("deleted_ts"))
        return ReplyEvent("delete", channel, deleted_ts) if deleted_ts else None
    if subtype == "message_changed":
        message = event.get("message")
        if not isinstance(message, Mapping):
            return None
        ts, thread_ts = _ts(message.get("ts")), _ts(message.get("thread_ts"))
        edited = message.get("edited")
        version = _ts(edited.get("ts") if isinstance(edited, Mapping) else event.get("ts"))
        if ts is None or thread_ts is None or ts == thread_ts:
            return None
        return ReplyEvent("edit", channel, ts, thread_ts, message, version or ts)
    ts, thread_ts = _ts(event.get("ts")), _ts(event.get("thread_ts"))
    if ts is None or thread_ts is None or ts == thread_ts:
        return None
    return ReplyEvent("reply", channel, ts, thread_ts, event, ts)


class BoundedExecutor(ThreadPoolExecutor):
    """A thread pool whose `submit` waits (up to ACK_WAIT_LIMIT) while `max_waiting` tasks are queued or running."""

    def __init__(self, threads: int, max_waiting: int) -> None:
        super().__init__(max_workers=threads, thread_name_prefix="handler")
        self._room = threading.BoundedSemaphore(max_waiting)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue a task, waiting for room first (past the limit the task is queued anyway: the
        event is already acked, and it must not be lost)."""
        took = self._room.acquire(timeout=ACK_WAIT_LIMIT)
        if not took:
            log.warning("events are arriving faster than they are stored; one waited %.1f s", ACK_WAIT_LIMIT)
        future = super().submit(fn, *args, **kwargs)
        if took:
            future.add_done_callback(lambda _: self._room.release())
        return future


def reaction_sender(slack: SlackApi) -> Callable[[str, str], None]:
    """Return what adds the ✅ to a recorded reply (a failure is logged: the tick is a courtesy)."""

    def confirm(channel: str, ts: str) -> None:
        try:
            slack.add_reaction(channel, ts, CONFIRM_REACTION)
        except SlackError as exc:
            log.warning("could not add the confirmation reaction to %s: %s", ts, exc)

    return confirm


class ReplyRecorder:
    """Apply message events to the store and confirm new replies with a reaction."""

    def __init__(
        self, settings: Settings, store: Store, slack: SlackApi, confirmations: ConfirmationQueue | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self.slack = slack
        self.now = now
        self._pruned_at: dt.datetime | None = None
        self._escalation_locks = [threading.Lock() for _ in range(64)]  # by member, striped
        self.confirmations = confirmations or ConfirmationQueue(reaction_sender(slack))
        self.writer = ReplyWriter(store)
        self._prompt_dates: dict[tuple[str, str], dt.date] = {}  # a prompt's date never changes

    def prompt_date(self, channel: str, thread_ts: str) -> dt.date | None:
        """Return the standup date of a prompt (remembered once found), or None for another thread."""
        key = (channel, thread_ts)
        date = self._prompt_dates.get(key)
        if date is None:
            date = self.store.date_of_prompt(channel, thread_ts)
            if date is not None:
                if len(self._prompt_dates) >= 1000:
                    self._prompt_dates.clear()
                self._prompt_dates[key] = date
        return date

    def forget_old_event_ids(self) -> None:
        """Every few hours, drop the IDs of events older than Slack could still retry (they are
        kept to ignore retries; kept forever they would be a fifth of the database)."""
        now = self.now()
        if self._pruned_at is not None and now - self._pruned_at < EVENT_ID_PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            dropped = self.store.forget_seen_events(now - EVENT_ID_KEEP)
        except StoreError as exc:
            log.warning("could not drop old event IDs: %s", exc)
            return
        if dropped:
            log.info("dropped %d event ID(s) older than %s", dropped, EVENT_ID_KEEP)

    def handle(self, event: Mapping[str, Any], event_id: str | None) -> str:
        """Record one message event; return what was done (for logs and tests)."""
        self.forget_old_event_ids()
        change = interpret_message_event(event)
        if change is None:
            return "ignored"
        if change.kind == "delete":
            deleted = self.writer.apply(ReplyChange(change.channel, change.ts, event_id=event_id))
            return "deleted" if deleted else "ignored"
        date = self.prompt_date(change.channel, change.thread_ts)
        if date is None:
            return "ignored"  # a thread that is not a standup prompt
        assert change.message is not None
        reply = reply_from_message(change.message, change.thread_ts)
        if reply is None:
            return "ignored"
        is_new = self.writer.apply(ReplyChange(change.channel, reply.ts, date, reply, change.version, event_id))
        if is_new and change.kind == "reply" and self.settings.confirm_with_reaction:
            self.confirmations.submit(change.channel, reply.ts)
        log.debug("%s reply %s from %s for %s", "recorded" if is_new else "updated", reply.ts, reply.user, date)
        # Also for a redelivery: escalation is claimed per contact, and this retries a failed DM.
        self.escalate_blockers(change.channel, date, reply.user)
        return "recorded" if is_new else "updated"

    def escalate_blockers(self, channel: str, date: dt.date, user: str) -> None:
        """DM BLOCKER_CONTACTS about the member's blocker for the date, from the stored report."""
        if not self.settings.blocker_contacts:
            return
        # One member's events are handled on several threads at once (two quick edits): without
        # the lock, one could read the report before the other's edit, claim after it, and send
        # the older blocker as an "update". With it, whoever reads last reads the latest text.
        with self._escalation_locks[hash((channel, date, user)) % len(self._escalation_locks)]:
            replies = [
                s.reply for s in self.store.stored_replies(channel, date) if s.reply.user == user and not s.deleted
            ]
            for report in group_reports(replies):
                blockers.escalate_report(
                    self.settings, self.store, self.slack, channel, date, report,
                    lambda member: blockers.member_name(self.store, self.slack, member),
                )


def build_app(
    settings: Settings, store: Store, client: WebClient, *, socket_mode: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    confirmations: ConfirmationQueue | None = None,
) -> App:
    """Build the Bolt app: message events recorded, `/standup` answered, the form served,
    everything acknowledged. New replies get their ✅ from `confirmations` (one is made if not given)."""
    recorder = ReplyRecorder(settings, store, SlackApi(client), confirmations, now)
    forms = FormReports(settings, store, SlackApi(client))
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,  # the entry point checks auth.test itself, with a clear error
        raise_error_for_unhandled_request=True,
        logger=logging.getLogger("slack_bolt"),
        listener_executor=BoundedExecutor(HANDLER_THREADS, MAX_HANDLERS_WAITING),
    )

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        try:
            event_id = body.get("event_id")
            recorder.handle(event, event_id if isinstance(event_id, str) else None)
        except StoreError as exc:
            # Acked already; the digest reads the thread back from Slack, so nothing is lost.
            log.error("could not record event %s: %s", body.get("event_id"), exc)
        except (TypeError, ValueError, AttributeError, LookupError) as exc:
            # A payload of an unexpected shape: nothing to record, and no traceback in the log.
            log.warning("ignored a malformed message event %s: %r", body.get("event_id"), exc)

    @app.command("/standup")
    def on_standup_command(ack: Ack, command: dict[str, Any]) -> None:
        # The answer goes back in the acknowledgement, shown only to the member who asked.
        ack(answer_standup_command(settings, store, command, now().astimezone(settings.zone).date()))

    # Buttons and modals: ack() first (Slack waits 3 s), then act; the trigger_id that
    # views.open needs lives 3 s too. https://docs.slack.dev/interactivity/handling-user-interaction/
    @app.action(OPEN_FORM_ACTION)
    def on_open_form(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        _interact("open the form", lambda: forms.open(body))

    @app.action(EDIT_FORM_ACTION)
    def on_edit_form(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        _interact("open the form to edit", lambda: forms.edit(body))

    @app.view(FORM_CALLBACK_ID)
    def on_form_submitted(ack: Ack, body: dict[str, Any]) -> None:
        try:
            checked = forms.check(body)
        except StoreError as exc:
            log.error("could not check a form submission: %s", exc)
            checked = {"q0": "Sorry, I could not save that just now; please try again in a minute."}
        if isinstance(checked, dict):
            ack(response_action="errors", errors=checked)  # the modal stays open, showing why
            return
        ack()  # closes the modal
        if _interact("post the form report", lambda: forms.publish(checked)) is None:
            forms.tell(checked.user, "Sorry, I could not post your standup just now; please send it again.")
            return
        # The bot's own message event is dropped by Bolt, so the recorder never sees it.
        _interact("escalate the form report's blocker", lambda: _escalate(checked.date, checked.user))

    # "Mark handled" in a sanity check's DM: the finding is handled and the DM says by whom.
    @app.action(sanity.FINDING_HANDLED_ACTION)
    def on_finding_handled(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        _interact("mark a finding handled", lambda: sanity.on_handled_button(
            settings, store, SlackApi(client), body, now()))

    def _escalate(date: dt.date, user: str) -> str:
        recorder.escalate_blockers(settings.standup_channel, date, user)
        return "done"

    def _interact(what: str, act: Callable[[], str]) -> str | None:
        """Run an interaction after its ack; a failure is logged (there is no one to answer)."""
        try:
            return act()
        except (SlackError, StoreError) as exc:
            log.error("could not %s: %s", what, exc)
            return None

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
    X-Slack-Retry-Num, so they are keyed apart (and deduplicated by event_id instead).

    Signatures are kept as 64-bit hashes in one set, and expire by the second (about 65 bytes
    each, not 250: at 1,000 requests a second that is 20 MB for the window, not 75). Two
    different requests colliding has odds of about 1 in 10^8 over a busy window; then the
    second is refused once, and Slack retries it."""

    def __init__(self, window: float = SIGNATURE_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: set[int] = set()
        self._by_second: deque[tuple[int, list[int]]] = deque()  # (second it expires after, keys), in order
        self._lock = threading.Lock()

    def first_use(self, signature: str) -> bool:
        """Record a signature; return False when it was already used within the window."""
        key = hash(signature)
        now = self.clock()
        with self._lock:
            while self._by_second and self._by_second[0][0] < now:
                self._seen.difference_update(self._by_second.popleft()[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            expires = int(now + self.window) + 1  # kept at least the whole window
            if self._by_second and self._by_second[-1][0] == expires:
                self._by_second[-1][1].append(key)
            else:
                self._by_second.append((expires, [key]))
            return True

    def forget(self, signature: str) -> None:
        """Drop a signature (its request turned out invalid, so it proves nothing)."""
        with self._lock:
            self._seen.discard(hash(signature))

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


def answer_standup_command(settings: Settings, store: Store, command: Mapping[str, Any], today: dt.date) -> str:
    """Apply `/standup …` for the member who typed it and return the ephemeral answer."""
    user = command.get("user_id")
    if not isinstance(user, str) or not user:
        return "Sorry, Slack did not say who you are; try again."
    words = str(command.get("text") or "").split()
    first = words[0].lower() if words else ""
    try:
        if first in slash.STATUS_WORDS:
            return slash.status_answer(settings, store, user, today)
        if first == "mine":
            return slash.mine_answer(store, settings.standup_channel, user, words[1:], today)
        request = parse_request(str(command.get("text") or ""), today)
        return apply_request(store, settings.standup_channel, user, request, today, source="slash")
    except AwayInputError as exc:
        return str(exc)
    except StoreError as exc:
        log.error("could not record /standup from %s: %s", user, exc)
        return "Sorry, I could not save that just now; please try again in a minute."


class TolerantRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler, except for a body Bolt cannot handle: one it cannot parse
    (`payload=` that is not a JSON object) fails before the signature is checked, and some
    malformed payloads (`"actions": []`, `"actions": "x"`) crash Bolt's listener matching;
    each would be a 500, which Slack retries to no avail. Such a request is dispatched again
    with an empty body but its raw bytes, so the signature is still verified (401 when bad)
    and a signed one gets a 200 that does nothing. The crash itself is logged by `on_error`."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        """Dispatch a request to the app; one it cannot handle as an empty one."""
        try:
            body, query, headers = request.get_body(), request.query_string, request.get_headers()
        except (UnicodeDecodeError, ValueError):
            return BoltResponse(status=400, body="request body is not UTF-8")
        try:
            bolt_request = BoltRequest(body=body, query=query, headers=headers)
            if isinstance(bolt_request.body, dict):
                response = self.app.dispatch(bolt_request)
                if response.status < 500:
                    return response
            log.warning("a request to %s could not be handled; acknowledging it", EVENTS_PATH)
        except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
            log.warning("a request to %s could not be handled (%r); acknowledging it", EVENTS_PATH, exc)
        empty = BoltRequest(body="", query=query, headers=headers)
        empty.raw_body = body  # the signature covers the bytes as sent
        return self.app.dispatch(empty)


def wsgi_app(app: App, store: Store) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """Return the WSGI application: Slack requests on /slack/events, a health check on /healthz."""
    slack_handler = TolerantRequestHandler(app, path=EVENTS_PATH)
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

    # waitress warns "Task queue depth is N" for every request queued behind busy threads: under a
    # burst that is one log line per event (and costly); the burst itself is normal and handled.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    return create_server(
        wsgi_app(app, store), host=host, port=port, threads=threads,
        max_request_body_size=MAX_BODY_BYTES, ident="standup-listener", clear_untrusted_proxy_headers=True,
    )


def serve_socket_mode(app: App, app_token: str) -> Any:
    """Return a Socket Mode handler for the app; call .start() to connect and block."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)


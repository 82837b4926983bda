"""Simulate a Slack workspace on loopback: the Web API over HTTP, Events API delivery signed over
HTTP or over a real Socket Mode WebSocket.

The real ``slack_sdk.WebClient(token=..., base_url=sim.base_url)`` talks to it unchanged, so the
test suite and the ``demo`` command exercise the same code paths as production. State (users,
channels, messages, reactions) lives in memory behind one lock; every Web API call is recorded in
``requests`` for assertions.

Simulated people act through ``user_posts``/``user_edits``/``user_deletes``; when event delivery
is on, each action (and each bot post) is POSTed, signed like Slack signs it, to the listener URL
given to ``deliver_events_to``, synchronously from the acting call.

Socket Mode: ``start`` also opens a minimal RFC 6455 WebSocket server (stdlib only) on its own
loopback port. ``apps.connections.open`` (with an ``xapp-`` token) answers a URL on that port;
the real ``slack_sdk`` Socket Mode client (``SocketModeHandler(app, app_token)`` in Bolt)
connects to it, gets Slack's ``hello`` message, is pinged, and acks envelopes with
``{"envelope_id": …}`` (recorded in ``socket_acks``). While a client is connected, produced
events go over the socket instead of HTTP (``deliver_events_over_socket`` changes that), each
wrapped as ``{"envelope_id", "type": "events_api", "payload": <the HTTP envelope>,
"accepts_response_payload": false, "retry_attempt": 0, "retry_reason": ""}``, written to one
connected client without waiting for its ack. ``send_socket_envelope`` sends any payload, e.g.
a retry with ``retry_attempt=1``.

Methods served: auth.test, chat.postMessage/postEphemeral/update/delete/getPermalink,
conversations.replies/history/members/info/open, users.info/list, reactions.add/remove,
views.open and apps.connections.open; any other method answers HTTP 404 ``unknown_method``.

Deliberate differences from Slack, to catch bugs early:

* ``chat.postMessage`` with a ``thread_ts`` that names no message answers ``thread_not_found``
  (Slack may accept it and hide the message).
* ``chat.postMessage`` to a user ID opens the bot's DM with them, as Slack does, but for a
  deactivated member it answers ``user_disabled`` (as ``conversations.open`` does); Slack has
  been reported to accept such a post (slackapi/python-slack-sdk#1156).
* Setup and acting helpers raise ``ValueError`` for unknown users, channels or messages.
* ``tz_label`` is the zone's abbreviation with its UTC offset, not Slack's long name.
* Rich-text blocks generated for human messages carry user, channel, broadcast, user-group,
  date and link elements, but no mrkdwn styles or emoji elements.
* The Socket Mode URL is plain TCP on loopback; its scheme is ``wss`` by default (slack_sdk's
  built-in client uses TLS only on port 443), ``ws`` with ``socket_url_scheme="ws"``. The server
  pings every ``socket_ping_interval`` seconds (default 0.25, far more often than Slack), which
  also lets the built-in client's ``close()`` return quickly. Tickets may be reused; Slack's
  ``disconnect`` refresh messages are never sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime as dt
import hashlib
import http.client
import json
import logging
import math
import re
import secrets
import selectors
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.signature import SignatureVerifier

__all__ = ["Request", "SlackSimulator"]

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

APP_ID = "A0SIM"
WORKSPACE_URL = "https://simulated.slack.com/"
WORKSPACE_NAME = "Simulated Workspace"
SLACKBOT_ID = "USLACKBOT"
BOT_NAME = "standupbot"
BOT_REAL_NAME = "Standup Bot"
DELIVERY_TIMEOUT_S = 5.0
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_IM_USERS = 8
SOCKET_PING_INTERVAL_S = 0.25
MAX_SOCKET_CONNECTIONS = 10  # Slack allows up to 10 Socket Mode connections per app

_POLL_INTERVAL_S = 0.05  # how quickly stop() is noticed by serve_forever
_TS_RE = re.compile(r"^\d{1,12}(\.\d{1,6})?$")  # ts-like values: oldest, latest, cursors
_MESSAGE_TS_RE = re.compile(r"^\d{1,12}\.\d{6}$")  # a message ts as Slack writes it
_TOKEN_RE = re.compile(r"<([^<>]*)>")
_THREAD_FIELDS = ("reply_count", "reply_users", "reply_users_count", "latest_reply")
_EVENT_HIDDEN_FIELDS = ("metadata", "reactions", *_THREAD_FIELDS)
_BROADCAST_RANGES = ("here", "channel", "everyone")

# One produced event that must be sent once the lock is released: (envelope, url, secret);
# the url is _SOCKET_ROUTE for delivery over a Socket Mode connection.
_Outgoing = tuple[JsonDict, str, str]
_SOCKET_ROUTE = "socket-mode:"
_MethodHandler = Callable[[JsonDict, list[_Outgoing]], JsonDict]


@dataclass(frozen=True)
class Request:
    """One Web API call the simulator received (the token is not part of ``params``)."""

    method: str
    params: dict[str, Any]
    token: str
    at: float  # time.time() when it arrived


class _ApiError(Exception):
    """Carry a Slack error code (and extra response fields) out of a method handler."""

    def __init__(self, error: str, **extra: Any) -> None:
        """Store the Slack error code and any extra fields for the ``ok: false`` body."""
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class _Response:
    """An HTTP answer ready to be written to the socket."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class _Failure:
    """An injected failure for one method, used by the next ``remaining`` calls."""

    error: str | None
    status: int
    retry_after: int | None
    remaining: int
    delay: float
    extra: JsonDict
    channel: str | None = None  # only calls with this ``channel`` argument; None: every call

    def response(self) -> _Response | None:
        """Build the injected answer, or return None when only a delay was injected."""
        if self.status == 429:
            return _rate_limited(1 if self.retry_after is None else self.retry_after)
        if self.status >= 400:
            if self.error is None and self.status == 503:
                html = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
                return _Response(503, html, content_type="text/html; charset=utf-8")
            code = self.error or ("fatal_error" if self.status >= 500 else "invalid_request")
            return _json_response(self.status, {"ok": False, "error": code, **self.extra})
        if self.error is not None:
            return _json_response(200, {"ok": False, "error": self.error, **self.extra})
        return None


@dataclass(frozen=True)
class _RateRule:
    """A token-bucket limit on one method."""

    per_second: float
    per_channel: bool
    burst: int


@dataclass
class _Bucket:
    """The token bucket state for one (method, per_channel, channel) key."""

    tokens: float
    updated: float  # time.monotonic()


@dataclass
class _User:
    """A workspace member as the simulator stores it."""

    id: str
    name: str
    display_name: str = ""
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False
    tz: str = "UTC"
    is_restricted: bool = False
    bot_id: str = ""
    status_text: str = ""
    status_emoji: str = ""
    status_expiration: int = 0


@dataclass
class _Channel:
    """A conversation: a public or private channel, a DM (IM) or a group DM (MPIM)."""

    id: str
    name: str
    members: list[str]
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    im_user: str = ""
    created: int = 0
    # Every message (top-level, replies, tombstones) keyed by ts; insertion order is ts order.
    messages: dict[str, JsonDict] = field(default_factory=dict)

    @property
    def channel_type(self) -> str:
        """Return the Events API ``channel_type`` of this conversation."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        if self.is_private or self.id.startswith("G"):
            return "group"
        return "channel"


class SlackSimulator:
    """Simulate one Slack workspace's Web API and Events API delivery on 127.0.0.1.

    Use it as a context manager (``with SlackSimulator() as sim:``) or call ``start``/``stop``.
    Public lists (``requests``, ``ephemerals``, ``views``, ``delivery_results``,
    ``socket_envelopes``, ``socket_acks``) are appended under the lock and may be read at any time.

    ``app_token`` is the app-level token ``apps.connections.open`` accepts (another ``xapp-``
    token gets ``invalid_auth``); None, the default, accepts any ``xapp-`` token.
    """

    def __init__(
        self,
        token: str = "xoxb-test-token",
        team_id: str = "T0TEST",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        page_size_cap: int = 1000,
        *,
        app_token: str | None = None,
        socket_url_scheme: str = "wss",
        socket_ping_interval: float | None = SOCKET_PING_INTERVAL_S,
    ) -> None:
        """Create a stopped simulator with Slackbot and the bot user in the workspace."""
        if page_size_cap < 1:
            raise ValueError("page_size_cap must be at least 1")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-")
        if socket_url_scheme not in ("ws", "wss"):
            raise ValueError("socket_url_scheme is ws or wss")
        if socket_ping_interval is not None and socket_ping_interval <= 0:
            raise ValueError("socket_ping_interval must be positive (or None for no pings)")
        self.token = token
        self.app_token = app_token
        self.socket_url_scheme = socket_url_scheme
        self.socket_ping_interval = socket_ping_interval
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.page_size_cap = page_size_cap

        self.requests: list[Request] = []
        self.ephemerals: list[dict] = []
        self.views: list[dict] = []
        self.delivery_results: list[tuple[str, int]] = []
        # Socket Mode: every message sent as an envelope (with its envelope_id), in order, and
        # the envelope_ids the clients acked, in arrival order.
        self.socket_envelopes: list[dict] = []
        self.socket_acks: list[str] = []

        self._lock = threading.RLock()
        self._socket_changed = threading.Condition(self._lock)
        self._socket_server: _SocketModeServer | None = None
        self._socket_conns: list[_SocketConnection] = []
        self._socket_tickets: set[str] = set()
        self._socket_mode: bool | None = None  # None: over the socket while a client is connected
        self._socket_next = 0  # round-robin position among the connections
        self._socket_opened_total = 0
        self._stopping = threading.Event()
        self._server: _ApiServer | None = None
        self._thread: threading.Thread | None = None
        self._created = int(time.time())
        self._last_micros = 0
        self._seq = 0
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._ims: dict[frozenset[str], str] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        # At most two rules per method: (method, True) per channel, (method, False) workspace-wide.
        self._rate_rules: dict[tuple[str, bool], _RateRule] = {}
        self._buckets: dict[tuple[str, bool, str], _Bucket] = {}
        # How many calls of each method the rate limits refused (injected 429s not counted).
        self.rate_limited: Counter[str] = Counter()
        self._delivery_url: str | None = None
        self._signing_secret = ""
        self._last_event: JsonDict | None = None
        self._methods: dict[str, _MethodHandler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "views.open": self._views_open,
            "apps.connections.open": self._apps_connections_open,
        }

        self.add_user(SLACKBOT_ID, "slackbot", real_name="Slackbot")
        self._users[bot_user_id] = _User(
            id=bot_user_id, name=BOT_NAME, real_name=BOT_REAL_NAME, is_bot=True, bot_id=bot_id
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlackSimulator:
        """Start serving the Web API and Socket Mode on ephemeral loopback ports; return self."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the simulator is already running")
            self._stopping.clear()
            server = _ApiServer(("127.0.0.1", 0), _ApiRequestHandler)
            server.simulator = self
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL_S},
                name="slack-simulator",
                daemon=True,
            )
            self._server, self._thread = server, thread
            self._socket_server = _SocketModeServer(self)
        thread.start()
        self._socket_server.start()
        logger.debug("slack simulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving; injected delays still sleeping end at once. Safe to call twice.

        Socket Mode connections get a close frame (1001, going away) and are shut at once.
        """
        with self._lock:
            server, thread = self._server, self._thread
            socket_server, self._socket_server = self._socket_server, None
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        if socket_server is not None:
            # Before the Web API, so a client that reconnects on the close frame gets a URL
            # that refuses it rather than a Web API that is gone.
            socket_server.stop()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackSimulator:
        """Start the simulator for a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the simulator at the end of a ``with`` block."""
        self.stop()

    @property
    def base_url(self) -> str:
        """Return the Web API base URL to pass to ``WebClient(base_url=...)``."""
        server = self._server
        if server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://127.0.0.1:{server.server_address[1]}/api/"

    # ------------------------------------------------------------------ workspace setup

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        display_name: str = "",
        real_name: str = "",
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "UTC",
        is_restricted: bool = False,
    ) -> None:
        """Add a member to the workspace, replacing any user with the same ID."""
        if not user_id or not name:
            raise ValueError("a user needs an ID and a name")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r} for user {user_id}") from exc
        with self._lock:
            self._users[user_id] = _User(
                id=user_id,
                name=name,
                display_name=display_name,
                real_name=real_name,
                is_bot=is_bot,
                deleted=deleted,
                tz=tz,
                is_restricted=is_restricted,
            )

    def set_status(self, user_id: str, text: str = "", emoji: str = "", expiration: int = 0) -> None:
        """Set a member's Slack status, as they would in their profile (empty clears it)."""
        with self._lock:
            if user_id not in self._users:
                raise ValueError(f"unknown user {user_id}")
            user = self._users[user_id]
            user.status_text, user.status_emoji, user.status_expiration = text, emoji, expiration

    def add_channel(
        self,
        channel_id: str,
        name: str,
        members: list[str],
        *,
        is_private: bool = False,
        bot_is_member: bool = True,
    ) -> None:
        """Add a channel (C… or G…) with these members; the bot joins it unless told not to."""
        if not channel_id or channel_id[0] not in "CG":
            raise ValueError(f"channel IDs start with C or G, not {channel_id!r}")
        with self._lock:
            if channel_id in self._channels:
                raise ValueError(f"channel {channel_id} already exists")
            unknown = [m for m in members if m not in self._users]
            if unknown:
                raise ValueError(f"unknown members for {channel_id}: {', '.join(unknown)}")
            roster = list(dict.fromkeys(members))
            if bot_is_member and self.bot_user_id not in roster:
                roster.append(self.bot_user_id)
            if not bot_is_member and self.bot_user_id in roster:
                roster.remove(self.bot_user_id)
            self._channels[channel_id] = _Channel(
                id=channel_id,
                name=name,
                members=roster,
                is_private=is_private or channel_id.startswith("G"),
                created=int(time.time()),
            )

    def open_im(self, user: str) -> str:
        """Return the ID of the bot's DM channel with this user, creating it if needed."""
        with self._lock:
            try:
                return self._open_conversation([user]).id
            except _ApiError as exc:
                raise ValueError(f"cannot open a DM with {user}: {exc.error}") from exc

    # ------------------------------------------------------------------ people acting

    def user_posts(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        files: list[dict] | None = None,
        blocks: list[dict] | None = None,
    ) -> str:
        """Post a message as someone else (a person or another app) and return its ts.

        ``text`` is Slack's wire markup (``&amp;``, ``<@U…>``). Human messages get a
        ``client_msg_id`` and rich-text ``blocks`` derived from the text unless ``blocks`` is
        given. ``bot_id`` marks a current-style app post (``user`` stays set); subtype
        ``"bot_message"`` makes a classic bot post (``user`` becomes ``username``). ``files``
        make a ``file_share`` message unless another subtype is given. Delivers the message
        event when delivery is on and the bot can see the channel.
        """
        if subtype == "thread_broadcast" and not thread_ts:
            raise ValueError("a thread_broadcast needs thread_ts")
        outgoing: list[_Outgoing] = []
        with self._lock:
            ch = self._require_channel(channel)
            classic = subtype == "bot_message"
            if not classic and user not in self._users:
                raise ValueError(f"unknown user {user}")
            parent = self._require_parent(ch, thread_ts) if thread_ts else None
            ts = self._next_ts()
            msg: JsonDict = {"type": "message", "text": text, "ts": ts, "team": self.team_id}
            if classic:
                msg["bot_id"] = bot_id or "B0CLASSIC"
                msg["username"] = user
            else:
                msg["user"] = user
                if bot_id:
                    msg["bot_id"] = bot_id
                else:
                    msg["client_msg_id"] = str(uuid.uuid4())
            if blocks is not None:
                msg["blocks"] = copy.deepcopy(blocks)
            elif "client_msg_id" in msg and text:
                msg["blocks"] = _rich_text_blocks(text)
            if files:
                msg["files"] = [self._normalize_file(f) for f in files]
                msg["upload"] = False
                msg["display_as_bot"] = False
                subtype = subtype or "file_share"
            if subtype:
                msg["subtype"] = subtype
            if parent is not None:
                msg["thread_ts"] = parent["ts"]
                msg["parent_user_id"] = parent.get("user") or parent.get("bot_id", "")
            self._store(ch, msg)
            self._emit_message(ch, msg, outgoing)
        self._deliver_all(outgoing)
        return ts

    def user_edits(self, channel: str, ts: str, new_text: str) -> None:
        """Edit a message as its author and deliver a ``message_changed`` event."""
        outgoing: list[_Outgoing] = []
        with self._lock:
            ch = self._require_channel(channel)
            msg = self._require_message(ch, ts)
            editor = msg.get("user") or msg.get("bot_id", "")
            blocks = _rich_text_blocks(new_text) if "client_msg_id" in msg and new_text else None
            self._edit(ch, msg, editor, new_text, blocks, outgoing)
        self._deliver_all(outgoing)

    def user_deletes(self, channel: str, ts: str) -> None:
        """Delete a message and deliver a ``message_deleted`` event.

        A thread parent that still has replies becomes a ``tombstone``, as in Slack.
        """
        outgoing: list[_Outgoing] = []
        with self._lock:
            ch = self._require_channel(channel)
            self._require_message(ch, ts)
            self._delete(ch, ts, outgoing)
        self._deliver_all(outgoing)

    # ------------------------------------------------------------------ event delivery

    def deliver_events_to(self, url: str | None, signing_secret: str) -> None:
        """Send future events to ``url`` signed with ``signing_secret``; None turns delivery off.

        Events produced while delivery is off are dropped, not queued, as Slack drops them.
        """
        if url is not None and not signing_secret:
            raise ValueError("event delivery needs a signing secret")
        with self._lock:
            self._delivery_url = url
            self._signing_secret = signing_secret

    def user_clicks(self, user: str, channel: str, message_ts: str, action_id: str, value: str = "") -> int:
        """Send the signed `block_actions` payload of a member clicking a button in a message.

        It goes where events go (Slack sends interactivity to the app's request URL); returns
        the HTTP status, or 0 when delivery is off.
        """
        payload = {
            "type": "block_actions", "api_app_id": APP_ID, "token": "XXYYZZ",
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "team": {"id": self.team_id, "domain": "simulated"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{int(time.time())}.simtrigger",  # unique, as Slack's
            "channel": {"id": channel, "name": self._channels[channel].name if channel in self._channels else ""},
            "message": {"type": "message", "ts": message_ts},
            "response_url": "https://hooks.simulated.slack.com/actions/x",
            "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button",
                         "action_ts": f"{time.time():.6f}"}],
        }
        return self._send_interaction(payload)

    def user_submits_view(self, user: str, view: dict, values: dict[str, dict[str, dict]]) -> int:
        """Send the signed `view_submission` payload of a member submitting a modal.

        `values` is the modal's state as Slack reports it: block_id -> action_id -> element
        state (e.g. {"type": "plain_text_input", "value": "…"}).
        """
        payload = {
            "type": "view_submission", "api_app_id": APP_ID, "token": "XXYYZZ",
            "team": {"id": self.team_id, "domain": "simulated"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{int(time.time())}.simtrigger",
            "view": {**view, "state": {"values": values}}, "response_urls": [], "is_enterprise_install": False,
        }
        return self._send_interaction(payload)

    def _send_interaction(self, payload: dict) -> int:
        with self._lock:
            url, secret = self._delivery_url, self._signing_secret
        if url is None:
            return 0
        body = urlencode({"payload": json.dumps(payload)}).encode()
        status, _ = self.send_signed(
            url, body, secret, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status

    def last_event(self) -> dict | None:
        """Return a copy of the last envelope produced, whether delivered or not."""
        with self._lock:
            return copy.deepcopy(self._last_event)

    def redeliver(self, envelope: dict, retry_num: int = 1, reason: str = "http_timeout") -> int:
        """POST an envelope again as a Slack retry and return the listener's HTTP status.

        Returns (and records) 0 when delivery is off or the listener cannot be reached.
        """
        with self._lock:
            url, secret = self._delivery_url, self._signing_secret
        if url is None:
            with self._lock:
                self.delivery_results.append((str(envelope.get("event_id", "")), 0))
            return 0
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}
        return self._deliver(envelope, url, secret, headers)

    def send_signed(
        self,
        url: str,
        body: bytes,
        signing_secret: str,
        *,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST ``body`` signed like Slack and return (HTTP status, response body).

        ``timestamp`` overrides the signing time (for stale-request cases); ``headers`` are
        merged over the generated ones case-insensitively, and an empty value drops a header.
        A connection error or timeout returns ``(0, b"")``.
        """
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
        merged: dict[str, tuple[str, str]] = {}
        defaults = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or "",
        }
        for key, value in [*defaults.items(), *(headers or {}).items()]:
            merged[key.lower()] = (key, value)
        final = {key: value for key, value in merged.values() if value}
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=DELIVERY_TIMEOUT_S)
        try:
            try:
                connection.request("POST", target, body=body, headers=final)
            except (BrokenPipeError, ConnectionResetError):
                # The listener answered before reading the whole body (e.g. 413) and closed
                # the connection; its answer may still be waiting in the socket.
                logger.debug("listener at %s closed the connection while we sent", url)
                if connection.sock is None:  # nothing left to read an answer from
                    return 0, b""
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            logger.debug("event delivery to %s failed: %s", url, exc)
            return 0, b""
        finally:
            connection.close()

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_url(self) -> str:
        """Return the WebSocket server's base URL (``apps.connections.open`` adds a ticket)."""
        socket_server = self._socket_server
        if socket_server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"{self.socket_url_scheme}://127.0.0.1:{socket_server.port}/link/"

    @property
    def socket_connections(self) -> int:
        """Return how many Socket Mode clients are connected now."""
        with self._lock:
            return len(self._socket_conns)

    @property
    def socket_connections_opened(self) -> int:
        """Return how many Socket Mode connections were opened since start (reconnects count)."""
        with self._lock:
            return self._socket_opened_total

    def deliver_events_over_socket(self, on: bool | None = True) -> None:
        """Choose where produced events go.

        None (the initial mode): over a Socket Mode connection while one is open, otherwise to
        the ``deliver_events_to`` URL (if any). True: only over the socket; events produced while
        no client is connected are dropped, as Slack drops them. False: never over the socket.
        """
        with self._lock:
            self._socket_mode = on

    def wait_for_socket_client(self, timeout: float = 5.0, count: int = 1) -> bool:
        """Wait until ``count`` Socket Mode clients are connected; False on timeout.

        A connection counts once its handshake is answered; its ``hello`` goes out before any
        envelope.
        """
        with self._socket_changed:
            return self._socket_changed.wait_for(
                lambda: len(self._socket_conns) >= count, timeout=timeout
            )

    def wait_for_socket_acks(self, timeout: float = 5.0) -> bool:
        """Wait until every envelope sent so far over the socket is acked; False on timeout."""
        with self._socket_changed:
            return self._socket_changed.wait_for(self._all_socket_envelopes_acked, timeout=timeout)

    def send_socket_envelope(
        self,
        payload: dict,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_type: str = "events_api",
    ) -> str:
        """Send ``payload`` in a Socket Mode envelope to one connected client; return its ID.

        For an Events API retry, pass the envelope again (e.g. ``last_event()``) with
        ``retry_attempt=1, retry_reason="timeout"``: the event_id stays the same, as in Slack.
        Raises RuntimeError when no client is connected.
        """
        message = self._socket_envelope(payload, envelope_type, retry_attempt, retry_reason)
        if not self._send_socket_envelope(message):
            raise RuntimeError("no Socket Mode client is connected")
        return str(message["envelope_id"])

    def _socket_envelope(
        self, payload: JsonDict, envelope_type: str, retry_attempt: int, retry_reason: str
    ) -> JsonDict:
        """Wrap a payload the way Slack's Socket Mode does."""
        return {
            "envelope_id": str(uuid.uuid4()),
            "type": envelope_type,
            "payload": copy.deepcopy(payload),
            # Slash commands and interactivity may answer with a payload; events may not.
            "accepts_response_payload": envelope_type != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }

    def _send_socket_envelope(self, message: JsonDict) -> bool:
        """Record and write one envelope to the next connection; False when none is open."""
        with self._lock:
            if not self._socket_conns:
                return False
            conn = self._socket_conns[self._socket_next % len(self._socket_conns)]
            self._socket_next += 1
            self.socket_envelopes.append(copy.deepcopy(message))
        if not conn.send_text(json.dumps(message)):
            logger.debug("socket mode envelope %s was lost with its connection", message["envelope_id"])
        return True

    def _all_socket_envelopes_acked(self) -> bool:
        """Tell whether every envelope sent so far was acked (call with the lock held)."""
        acked = set(self.socket_acks)
        return all(m["envelope_id"] in acked for m in self.socket_envelopes)

    def _socket_ticket_ok(self, path: str) -> bool:
        """Tell whether a handshake path is ``/link/?ticket=…`` with a ticket we issued."""
        parts = urlsplit(path)
        ticket = dict(parse_qsl(parts.query)).get("ticket", "")
        with self._lock:
            return parts.path in ("/link", "/link/") and ticket in self._socket_tickets

    def _socket_opened(self, conn: _SocketConnection) -> int | None:
        """Register a handshaken connection; return the connection count (None when full)."""
        with self._socket_changed:
            if len(self._socket_conns) >= MAX_SOCKET_CONNECTIONS:
                return None
            self._socket_conns.append(conn)
            self._socket_opened_total += 1
            self._socket_changed.notify_all()
            return len(self._socket_conns)

    def _socket_closed(self, conn: _SocketConnection) -> None:
        """Forget a connection that closed."""
        with self._socket_changed:
            if conn in self._socket_conns:
                self._socket_conns.remove(conn)
                self._socket_changed.notify_all()

    def _socket_message(self, text: str) -> None:
        """Record what a client sent: an ack is ``{"envelope_id": …}`` (maybe with a payload)."""
        try:
            message = json.loads(text)
        except ValueError:
            logger.debug("socket mode client sent something that is not JSON: %.200s", text)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str):
            logger.debug("socket mode client sent a message without envelope_id: %.200s", text)
            return
        with self._socket_changed:
            self.socket_acks.append(envelope_id)
            self._socket_changed.notify_all()

    # ------------------------------------------------------------------ failure injection

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        extra: dict | None = None,
        channel: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (queued after earlier injections).

        ``error`` gives a 200 ``ok: false`` answer with ``extra`` fields; ``status=429`` a
        rate-limit answer with ``Retry-After: retry_after`` (default 1); another 4xx/5xx that
        status (503 without ``error`` answers HTML, as a load balancer would). ``delay``
        sleeps that long first; alone it only slows the call down. With ``channel``, only
        calls whose ``channel`` argument is exactly that count (e.g. the DM posted to one
        member's user ID); other calls pass by it.
        """
        self._require_known_method(method)
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0:
            raise ValueError("delay cannot be negative")
        if status != 200 and not 400 <= status <= 599:
            raise ValueError(f"status must be 200 or an HTTP error status, not {status}")
        if retry_after is not None and (status != 429 or retry_after < 0):
            raise ValueError("retry_after goes with status=429 and cannot be negative")
        if status == 200 and error is None and delay == 0:
            raise ValueError("nothing to inject: give error, an error status or a delay")
        failure = _Failure(error, status, retry_after, times, delay, dict(extra or {}), channel)
        with self._lock:
            self._failures.setdefault(method, deque()).append(failure)

    def limit_rate(
        self, method: str, per_second: float, *, per_channel: bool = False, burst: int = 1
    ) -> None:
        """Rate-limit ``method`` with a token bucket; excess calls get 429 with Retry-After.

        A method holds one workspace-wide rule and one per-channel rule at once (Slack limits
        ``chat.postMessage`` both ways: ~1/s per channel and several hundred a minute per
        workspace); setting a rule again replaces the one of the same kind. A call is refused
        if any of its buckets is empty, and then takes no token from the others; Retry-After
        is the longest wait, in whole seconds. A post to a user ID and one to that user's DM
        share the DM's per-channel bucket.
        """
        self._require_known_method(method)
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        with self._lock:
            self._rate_rules[(method, per_channel)] = _RateRule(per_second, per_channel, burst)
            for key in [k for k in self._buckets if k[:2] == (method, per_channel)]:
                del self._buckets[key]

    # ------------------------------------------------------------------ inspection

    def calls(self, method: str) -> list[dict]:
        """Return the params of each call to ``method``, in arrival order."""
        with self._lock:
            return [copy.deepcopy(r.params) for r in self.requests if r.method == method]

    def messages(self, channel: str) -> list[dict]:
        """Return copies of the channel's top-level messages, oldest first."""
        with self._lock:
            ch = self._require_channel(channel)
            return [copy.deepcopy(m) for m in ch.messages.values() if _is_top_level(m)]

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Return copies of a thread's parent followed by its replies in ts order."""
        with self._lock:
            ch = self._require_channel(channel)
            parent = self._require_parent(ch, thread_ts)
            return [copy.deepcopy(m) for m in [parent, *self._replies(ch, parent["ts"])]]

    def dms_to(self, user: str) -> list[dict]:
        """Return copies of the messages the bot posted in its DM with ``user``, oldest first."""
        with self._lock:
            channel_id = self._ims.get(frozenset([user]))
            if channel_id is None:
                return []
            ch = self._channels[channel_id]
            return [
                copy.deepcopy(m) for m in ch.messages.values() if m.get("bot_id") == self.bot_id
            ]

    def reactions_on(self, channel: str, ts: str) -> list[str]:
        """Return the names of the reactions on a message, in the order first added."""
        with self._lock:
            ch = self._require_channel(channel)
            msg = self._require_message(ch, ts)
            return [r["name"] for r in msg.get("reactions", [])]

    # ------------------------------------------------------------------ request handling

    def _serve(
        self, method: str, params: JsonDict, token: str, parse_error: str | None = None
    ) -> _Response:
        """Answer one Web API call: record it, apply injections and limits, then dispatch."""
        with self._lock:
            self.requests.append(Request(method, copy.deepcopy(params), token, time.time()))
            handler = self._methods.get(method)
            failure = self._take_failure(method, params) if handler is not None else None
        if handler is None:
            return _json_response(404, {"ok": False, "error": "unknown_method"})
        if failure is not None:
            if failure.delay > 0:
                self._stopping.wait(failure.delay)
            injected = failure.response()
            if injected is not None:
                return injected
        if parse_error is not None:
            return _json_response(200, {"ok": False, "error": parse_error})
        outgoing: list[_Outgoing] = []
        with self._lock:
            limited = self._check_rate(method, params)
            if limited is not None:
                return limited
            try:
                self._check_token(method, token)
                result = handler(params, outgoing)
            except _ApiError as exc:
                return _json_response(200, {"ok": False, "error": exc.error, **exc.extra})
        self._deliver_all(outgoing)
        return _json_response(200, {"ok": True, **result})

    def _take_failure(self, method: str, params: JsonDict) -> _Failure | None:
        """Consume one use of the oldest failure injected for ``method`` that fits this call."""
        queue = self._failures.get(method)
        if not queue:
            return None
        channel = _opt_str(params, "channel")
        for index, failure in enumerate(queue):
            if failure.channel is None or failure.channel == channel:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del queue[index]
                return failure
        return None

    def _check_rate(self, method: str, params: JsonDict) -> _Response | None:
        """Take a token from each of the method's buckets, or return a 429 if any is empty."""
        rules = [r for r in (self._rate_rules.get((method, k)) for k in (True, False)) if r]
        if not rules:
            return None
        now = time.monotonic()
        buckets: list[tuple[_RateRule, _Bucket]] = []
        for rule in rules:
            channel = self._rate_channel(_opt_str(params, "channel")) if rule.per_channel else ""
            bucket = self._buckets.setdefault(
                (method, rule.per_channel, channel), _Bucket(tokens=float(rule.burst), updated=now)
            )
            bucket.tokens = min(
                float(rule.burst), bucket.tokens + (now - bucket.updated) * rule.per_second
            )
            bucket.updated = now
            buckets.append((rule, bucket))
        waits = [(1 - b.tokens) / r.per_second for r, b in buckets if b.tokens < 1]
        if waits:
            self.rate_limited[method] += 1
            return _rate_limited(max(1, math.ceil(max(waits))))
        for _, bucket in buckets:
            bucket.tokens -= 1
        return None

    def _rate_channel(self, channel: str) -> str:
        """Return the conversation a call's ``channel`` names, for per-channel limits.

        A user ID and the ID of the bot's DM with that user are the same conversation.
        """
        ch = self._channels.get(channel)
        if ch is not None and ch.is_im:
            return f"im:{ch.im_user}"
        if channel in self._users:
            return f"im:{channel}"
        return channel

    def _check_token(self, method: str, token: str) -> None:
        """Raise the error Slack gives for a missing, wrong or wrong-type token."""
        if not token:
            raise _ApiError("not_authed")
        if method == "apps.connections.open":
            if token.startswith("xapp-"):
                if self.app_token is not None and token != self.app_token:
                    raise _ApiError("invalid_auth")
                return
            raise _ApiError("not_allowed_token_type" if token == self.token else "invalid_auth")
        if token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if token != self.token:
            raise _ApiError("invalid_auth")

    def _require_known_method(self, method: str) -> None:
        """Raise ValueError for a method name the simulator does not implement."""
        if method not in self._methods:
            raise ValueError(f"the simulator does not implement {method!r}")

    # ------------------------------------------------------------------ Web API methods

    def _auth_test(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Answer ``auth.test`` with the bot's identity."""
        return {
            "url": WORKSPACE_URL,
            "team": WORKSPACE_NAME,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Post a bot message, top-level or in a thread, and emit its event."""
        ch = self._post_target(_opt_str(p, "channel"))
        text = _opt_str(p, "text")
        blocks = _json_list(p.get("blocks"), "invalid_blocks_format")
        attachments = _json_list(p.get("attachments"), "invalid_attachments")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise _ApiError("msg_too_long")
        if blocks and len(blocks) > MAX_BLOCKS:
            raise _ApiError("invalid_blocks")
        metadata = _parse_metadata(p.get("metadata"))
        thread_ts = _opt_str(p, "thread_ts")
        parent = self._find_parent(ch, thread_ts) if thread_ts else None
        msg = self._bot_message(text)
        if blocks:
            msg["blocks"] = blocks
        if attachments:
            msg["attachments"] = attachments
        if metadata is not None:
            msg["metadata"] = metadata
        if parent is not None:
            msg["thread_ts"] = parent["ts"]
            msg["parent_user_id"] = parent.get("user") or parent.get("bot_id", "")
            if _bool(p, "reply_broadcast"):
                msg["subtype"] = "thread_broadcast"
        self._store(ch, msg)
        self._emit_message(ch, msg, out)
        return {"channel": ch.id, "ts": msg["ts"], "message": copy.deepcopy(msg)}

    def _chat_post_ephemeral(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Record an ephemeral message shown to one member of a channel."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=True)
        user = _opt_str(p, "user")
        if user not in self._users:
            raise _ApiError("user_not_found")
        if user not in ch.members:
            raise _ApiError("user_not_in_channel")
        text = _opt_str(p, "text")
        blocks = _json_list(p.get("blocks"), "invalid_blocks_format")
        if not text and not blocks:
            raise _ApiError("no_text")
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": ch.id,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": _opt_str(p, "thread_ts") or None,
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def _chat_update(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Edit one of the bot's messages and emit ``message_changed``."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=True)
        msg = self._find_message(ch, _opt_str(p, "ts"))
        if msg.get("bot_id") != self.bot_id:
            raise _ApiError("cant_update_message")
        text = _opt_str(p, "text")
        blocks = _json_list(p.get("blocks"), "invalid_blocks_format")
        if not text and not blocks and not msg.get("blocks"):
            raise _ApiError("no_text")
        metadata = _parse_metadata(p.get("metadata"))
        if metadata is not None:  # chat.update replaces the metadata when it is given
            msg["metadata"] = metadata
        self._edit(ch, msg, self.bot_user_id, text, blocks, out)
        return {
            "channel": ch.id,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": copy.deepcopy(msg),
        }

    def _chat_delete(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Delete one of the bot's messages and emit ``message_deleted``."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=True)
        ts = _opt_str(p, "ts")
        msg = self._find_message(ch, ts)
        if msg.get("bot_id") != self.bot_id:
            raise _ApiError("cant_delete_message")
        self._delete(ch, ts, out)
        return {"channel": ch.id, "ts": ts}

    def _chat_get_permalink(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a permalink to a message (with thread_ts and cid for replies)."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=False)
        ts = _opt_str(p, "message_ts")
        msg = ch.messages.get(ts)
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"{WORKSPACE_URL}archives/{ch.id}/p{ts.replace('.', '')}"
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _conversations_replies(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a thread, parent first, one page at a time."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=True)
        ts = _opt_str(p, "ts")
        if not ts:
            raise _missing_argument("ts")
        msg = ch.messages.get(ts)
        if msg is None:
            raise _ApiError("thread_not_found")
        parent = ch.messages.get(msg.get("thread_ts", ts), msg)
        in_range = _ts_filter(p)
        replies = [m for m in self._replies(ch, parent["ts"]) if in_range(m["ts"])]
        items = [parent, *replies]
        limit = min(_int(p, "limit") or 1000, 1000, self.page_size_cap)
        start = 0
        cursor = _opt_str(p, "cursor")
        if cursor:
            after = _ts_decimal(_decode_cursor(cursor, "next_ts"), "invalid_cursor")
            start = next((i for i, m in enumerate(items) if _ts(m) >= after), len(items))
        page, next_cursor = _paginate(items, start, limit, lambda m: m["ts"])
        with_metadata = _bool(p, "include_all_metadata")
        return {
            "messages": [self._public_message(ch, m, with_metadata) for m in page],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_history(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a channel's top-level messages, newest first, one page at a time."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=True)
        in_range = _ts_filter(p)
        items = [
            m for m in reversed(ch.messages.values()) if _is_top_level(m) and in_range(m["ts"])
        ]
        limit = min(_int(p, "limit") or 100, 999, self.page_size_cap)
        start = 0
        cursor = _opt_str(p, "cursor")
        if cursor:
            before = _ts_decimal(_decode_cursor(cursor, "next_ts"), "invalid_cursor")
            start = next((i for i, m in enumerate(items) if _ts(m) <= before), len(items))
        page, next_cursor = _paginate(items, start, limit, lambda m: m["ts"])
        with_metadata = _bool(p, "include_all_metadata")
        return {
            "messages": [self._public_message(ch, m, with_metadata) for m in page],
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_members(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a conversation's member IDs (bots included), one page at a time."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=False)
        limit = min(_int(p, "limit") or 100, 1000)
        start = _member_cursor_start(_opt_str(p, "cursor"), ch.members)
        page, next_cursor = _paginate(list(ch.members), start, limit, lambda u: u, kind="user")
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_info(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a conversation object."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=False)
        info = self._channel_object(ch)
        if _bool(p, "include_num_members"):
            info["num_members"] = len(ch.members)
        return {"channel": info}

    def _conversations_open(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Open (or reopen) the bot's DM or group DM with the given users."""
        channel_id = _opt_str(p, "channel")
        if channel_id:
            ch = self._readable_channel(channel_id, need_member=True)
            existed = True
        else:
            users = [u.strip() for u in _opt_str(p, "users").split(",") if u.strip()]
            if not users:
                raise _ApiError("users_list_not_supplied")
            existed = frozenset(users) in self._ims
            ch = self._open_conversation(users)
        shown = self._channel_object(ch) if _bool(p, "return_im") else {"id": ch.id}
        result: JsonDict = {"channel": shown}
        if existed:
            result.update({"no_op": True, "already_open": True})
        return result

    def _users_info(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return a user object."""
        user = self._users.get(_opt_str(p, "user"))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": self._user_object(user)}

    def _users_list(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Return every workspace member, one page at a time."""
        ids = list(self._users)
        limit = min(_int(p, "limit") or 1000, 1000)
        start = _member_cursor_start(_opt_str(p, "cursor"), ids)
        page, next_cursor = _paginate(ids, start, limit, lambda u: u, kind="user")
        return {
            "members": [self._user_object(self._users[u]) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _reactions_add(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Add the bot's reaction to a message."""
        msg, name = self._reaction_target(p)
        reactions: list[JsonDict] = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if self.bot_user_id in entry["users"]:
            raise _ApiError("already_reacted")
        entry["users"].append(self.bot_user_id)
        entry["count"] = len(entry["users"])
        return {}

    def _reactions_remove(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Remove the bot's reaction from a message."""
        msg, name = self._reaction_target(p)
        reactions: list[JsonDict] = msg.get("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None or self.bot_user_id not in entry["users"]:
            raise _ApiError("no_reaction")
        entry["users"].remove(self.bot_user_id)
        entry["count"] = len(entry["users"])
        if not entry["users"]:
            reactions.remove(entry)
        if not reactions:
            msg.pop("reactions", None)
        return {}

    def _views_open(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Open a modal and record the view."""
        if not _opt_str(p, "trigger_id"):
            raise _missing_argument("trigger_id")
        raw = p.get("view")
        if raw is None or raw == "":
            raise _missing_argument("view")
        try:
            view = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise _ApiError("invalid_arguments") from exc
        if not isinstance(view, dict) or view.get("type") not in ("modal", "workflow_step"):
            raise _ApiError("invalid_arguments")
        self._seq += 1
        view_id = f"V0SIM{self._seq:06d}"
        opened = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views.append(copy.deepcopy(opened))
        return {"view": opened}

    def _apps_connections_open(self, p: JsonDict, out: list[_Outgoing]) -> JsonDict:
        """Issue a ticket and return the URL of the simulator's Socket Mode server."""
        ticket = str(uuid.uuid4())
        self._socket_tickets.add(ticket)
        return {"url": f"{self.socket_url}?ticket={ticket}&app_id={APP_ID}"}

    # ------------------------------------------------------------------ state helpers

    def _next_ts(self) -> str:
        """Return a fresh message ts, strictly greater than every earlier one."""
        micros = max(self._last_micros + 1, time.time_ns() // 1000)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _require_channel(self, channel: str) -> _Channel:
        """Return a channel for the acting/inspection helpers, or raise ValueError."""
        ch = self._channels.get(channel)
        if ch is None:
            raise ValueError(f"unknown channel {channel}")
        return ch

    def _require_message(self, ch: _Channel, ts: str) -> JsonDict:
        """Return a live message for the acting helpers, or raise ValueError."""
        try:
            return self._find_message(ch, ts)
        except _ApiError as exc:
            raise ValueError(f"no message {ts} in {ch.id}") from exc

    def _require_parent(self, ch: _Channel, thread_ts: str) -> JsonDict:
        """Return a thread's parent for the acting helpers, or raise ValueError."""
        try:
            return self._find_parent(ch, thread_ts)
        except _ApiError as exc:
            raise ValueError(f"no thread {thread_ts} in {ch.id}: {exc.error}") from exc

    def _find_message(self, ch: _Channel, ts: str) -> JsonDict:
        """Return a live (not tombstoned) message, or raise ``message_not_found``."""
        msg = ch.messages.get(ts)
        if msg is None or msg.get("subtype") == "tombstone":
            raise _ApiError("message_not_found")
        return msg

    def _find_parent(self, ch: _Channel, thread_ts: str) -> JsonDict:
        """Return the parent of the thread ``thread_ts`` names (a reply names its parent)."""
        if not _MESSAGE_TS_RE.match(thread_ts):
            raise _ApiError("invalid_thread_ts")
        msg = ch.messages.get(thread_ts)
        if msg is None:
            raise _ApiError("thread_not_found")
        return ch.messages.get(msg.get("thread_ts", thread_ts), msg)

    def _readable_channel(self, channel_id: str, *, need_member: bool) -> _Channel:
        """Return a conversation the bot may see, raising Slack's error otherwise."""
        ch = self._channels.get(channel_id) if channel_id else None
        if ch is None:
            raise _ApiError("channel_not_found")
        is_member = self.bot_user_id in ch.members
        if not is_member and (ch.is_private or ch.is_im or ch.is_mpim):
            raise _ApiError("channel_not_found")
        if need_member and not is_member:
            raise _ApiError("not_in_channel")
        return ch

    def _post_target(self, channel: str) -> _Channel:
        """Resolve ``chat.postMessage``'s channel: an ID, a #name, or a user ID (their DM)."""
        if channel in self._users and channel.startswith(("U", "W")):
            return self._open_conversation([channel])
        if channel not in self._channels:
            name = channel.removeprefix("#")
            named = next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )
            if named is not None:
                channel = named.id
        return self._readable_channel(channel, need_member=True)

    def _open_conversation(self, users: list[str]) -> _Channel:
        """Return the bot's DM (one user) or group DM (several), creating it if needed."""
        if len(users) > MAX_IM_USERS:
            raise _ApiError("too_many_users")
        for user_id in users:
            user = self._users.get(user_id)
            if user is None:
                raise _ApiError("user_not_found")
            if user.deleted:
                raise _ApiError("user_disabled")
            if user.is_bot or user_id == self.bot_user_id:
                raise _ApiError("cannot_dm_bot")
        key = frozenset(users)
        existing = self._ims.get(key)
        if existing is not None:
            return self._channels[existing]
        self._seq += 1
        if len(key) == 1:
            (user_id,) = key
            ch = _Channel(
                id=f"D0SIM{self._seq:06d}",
                name=user_id,
                members=[user_id, self.bot_user_id],
                is_private=True,
                is_im=True,
                im_user=user_id,
                created=int(time.time()),
            )
        else:
            names = "--".join(sorted(self._users[u].name for u in key))
            ch = _Channel(
                id=f"G0SIM{self._seq:06d}",
                name=f"mpdm-{self._users[self.bot_user_id].name}--{names}-1",
                members=[*sorted(key), self.bot_user_id],
                is_private=True,
                is_mpim=True,
                created=int(time.time()),
            )
        self._channels[ch.id] = ch
        self._ims[key] = ch.id
        return ch

    def _replies(self, ch: _Channel, parent_ts: str) -> list[JsonDict]:
        """Return a thread's replies (without the parent) in ts order."""
        return [
            m
            for m in ch.messages.values()
            if m.get("thread_ts") == parent_ts and m["ts"] != parent_ts
        ]

    def _store(self, ch: _Channel, msg: JsonDict) -> None:
        """Add a new message and update its thread parent's reply fields."""
        ch.messages[msg["ts"]] = msg
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            self._refresh_parent(ch, msg["thread_ts"])

    def _refresh_parent(self, ch: _Channel, parent_ts: str) -> None:
        """Recompute a parent's reply fields; drop a tombstone left with no replies."""
        parent = ch.messages.get(parent_ts)
        if parent is None:
            return
        replies = self._replies(ch, parent_ts)
        if not replies:
            parent.pop("thread_ts", None)
            for key in _THREAD_FIELDS:
                parent.pop(key, None)
            if parent.get("subtype") == "tombstone":
                del ch.messages[parent_ts]
            return
        users = list(dict.fromkeys(r.get("user") or r.get("bot_id", "") for r in replies))
        parent["thread_ts"] = parent_ts
        parent["reply_count"] = len(replies)
        parent["reply_users"] = users
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = replies[-1]["ts"]

    def _edit(
        self,
        ch: _Channel,
        msg: JsonDict,
        editor: str,
        text: str,
        blocks: list[dict] | None,
        out: list[_Outgoing],
    ) -> None:
        """Change a message's text (and blocks), mark it edited and emit ``message_changed``."""
        previous = copy.deepcopy(msg)
        edit_ts = self._next_ts()
        msg["text"] = text
        if blocks is not None:
            msg["blocks"] = blocks
        msg["edited"] = {"user": editor, "ts": edit_ts}
        if ch.is_im or self.bot_user_id in ch.members:
            self._emit(
                {
                    "type": "message",
                    "subtype": "message_changed",
                    "hidden": True,
                    "message": _event_copy(msg, hidden=("metadata",)),
                    "channel": ch.id,
                    "previous_message": _event_copy(previous, hidden=("metadata",)),
                    "event_ts": edit_ts,
                    "ts": edit_ts,
                    "channel_type": ch.channel_type,
                },
                out,
            )

    def _delete(self, ch: _Channel, ts: str, out: list[_Outgoing]) -> None:
        """Remove a message (tombstoning a parent with replies) and emit ``message_deleted``."""
        msg = ch.messages[ts]
        previous = copy.deepcopy(msg)
        delete_ts = self._next_ts()
        parent_ts = msg.get("thread_ts")
        if parent_ts == ts and self._replies(ch, ts):
            tombstone: JsonDict = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": SLACKBOT_ID,
                "hidden": True,
                "ts": ts,
                "team": self.team_id,
            }
            ch.messages[ts] = tombstone
            self._refresh_parent(ch, ts)
        else:
            del ch.messages[ts]
            if parent_ts and parent_ts != ts:
                self._refresh_parent(ch, parent_ts)
        if ch.is_im or self.bot_user_id in ch.members:
            self._emit(
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "hidden": True,
                    "deleted_ts": ts,
                    "channel": ch.id,
                    "previous_message": _event_copy(previous, hidden=("metadata",)),
                    "event_ts": delete_ts,
                    "ts": delete_ts,
                    "channel_type": ch.channel_type,
                },
                out,
            )

    def _reaction_target(self, p: JsonDict) -> tuple[JsonDict, str]:
        """Return the message and reaction name a ``reactions.*`` call names."""
        ch = self._readable_channel(_opt_str(p, "channel"), need_member=False)
        name = _opt_str(p, "name").strip(":")
        if not name:
            raise _ApiError("invalid_name")
        return self._find_message(ch, _opt_str(p, "timestamp")), name

    def _bot_message(self, text: str) -> JsonDict:
        """Return a new message as the bot posts it."""
        return {
            "type": "message",
            "text": text,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "ts": self._next_ts(),
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": APP_ID,
                "name": BOT_REAL_NAME,
                "icons": {},
                "deleted": False,
                "updated": self._created,
                "team_id": self.team_id,
            },
        }

    def _normalize_file(self, spec: dict) -> JsonDict:
        """Complete a file attachment with the fields Slack always sends."""
        entry = copy.deepcopy(spec)
        self._seq += 1
        name = str(entry.get("name") or "file")
        entry.setdefault("id", f"F0SIM{self._seq:06d}")
        entry["name"] = name
        entry.setdefault("title", name)
        entry.setdefault(
            "url_private", f"https://files.simulated.slack.com/files-pri/{self.team_id}-"
            f"{entry['id']}/{name}"
        )
        return entry

    def _public_message(self, ch: _Channel, msg: JsonDict, with_metadata: bool) -> JsonDict:
        """Return a message as history/replies show it (broadcasts carry their thread root)."""
        shown = copy.deepcopy(msg)
        if not with_metadata:
            shown.pop("metadata", None)
        if msg.get("subtype") == "thread_broadcast" and msg["thread_ts"] in ch.messages:
            shown["root"] = _event_copy(ch.messages[msg["thread_ts"]], hidden=("metadata",))
        return shown

    def _channel_object(self, ch: _Channel) -> JsonDict:
        """Return a conversation object as ``conversations.info`` shows it."""
        if ch.is_im:
            return {
                "id": ch.id,
                "created": ch.created,
                "is_im": True,
                "is_org_shared": False,
                "user": ch.im_user,
                "is_user_deleted": self._users[ch.im_user].deleted,
                "priority": 0,
                "context_team_id": self.team_id,
            }
        empty_text = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": ch.id,
            "name": ch.name,
            "name_normalized": ch.name,
            "is_channel": not ch.is_private and not ch.is_mpim,
            "is_group": ch.is_private and not ch.is_mpim,
            "is_im": False,
            "is_mpim": ch.is_mpim,
            "is_private": ch.is_private,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.bot_user_id in ch.members,
            "created": ch.created,
            "creator": ch.members[0] if ch.members else "",
            "context_team_id": self.team_id,
            "topic": dict(empty_text),
            "purpose": dict(empty_text),
        }

    def _user_object(self, user: _User) -> JsonDict:
        """Return a user object as ``users.info`` shows it."""
        offset, label = _tz_details(user.tz)
        real_name = user.real_name or user.name
        profile: JsonDict = {
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "real_name": real_name,
            "real_name_normalized": real_name,
            "status_text": user.status_text,
            "status_emoji": user.status_emoji,
            "status_expiration": user.status_expiration,
            "team": self.team_id,
        }
        if user.bot_id:
            profile.update({"bot_id": user.bot_id, "api_app_id": APP_ID, "always_active": True})
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": real_name,
            "tz": user.tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": user.is_restricted,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": self._created,
        }

    # ------------------------------------------------------------------ events

    def _emit_message(self, ch: _Channel, msg: JsonDict, out: list[_Outgoing]) -> None:
        """Emit the event for a new message if the bot can see the conversation."""
        if not (ch.is_im or self.bot_user_id in ch.members):
            return
        event = _event_copy(msg)
        if msg.get("subtype") == "thread_broadcast":
            event["root"] = _event_copy(ch.messages[msg["thread_ts"]], hidden=("metadata",))
        event.update({"channel": ch.id, "event_ts": msg["ts"], "channel_type": ch.channel_type})
        self._emit(event, out)

    def _emit(self, event: JsonDict, out: list[_Outgoing]) -> None:
        """Wrap an event in an Events API envelope; queue it for delivery if delivery is on."""
        self._seq += 1
        envelope: JsonDict = {
            "token": "XXYYZZ",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev0SIM{self._seq:06d}{secrets.token_hex(2).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-"
            + base64.urlsafe_b64encode(
                f"message-{self.team_id}-{event.get('channel', '')}".encode()
            ).decode(),
        }
        self._last_event = envelope
        over_socket = self._socket_mode
        if over_socket is None:
            over_socket = bool(self._socket_conns)
        if over_socket:
            out.append((copy.deepcopy(envelope), _SOCKET_ROUTE, ""))
        elif self._delivery_url is not None:
            out.append((copy.deepcopy(envelope), self._delivery_url, self._signing_secret))

    def _deliver_all(self, outgoing: list[_Outgoing]) -> None:
        """Send each produced envelope in order (called without the lock held)."""
        for envelope, url, secret in outgoing:
            if url == _SOCKET_ROUTE:
                message = self._socket_envelope(envelope, "events_api", 0, "")
                if not self._send_socket_envelope(message):
                    logger.debug("no socket mode client: event %s dropped", envelope["event_id"])
            else:
                self._deliver(envelope, url, secret)

    def _deliver(
        self, envelope: JsonDict, url: str, secret: str, headers: dict[str, str] | None = None
    ) -> int:
        """POST one signed envelope, record the attempt and return the HTTP status (0 if none)."""
        body = json.dumps(envelope).encode("utf-8")
        status, _ = self.send_signed(url, body, secret, headers=headers)
        with self._lock:
            self.delivery_results.append((str(envelope.get("event_id", "")), status))
        return status


class _ApiServer(ThreadingHTTPServer):
    """The threading HTTP server that carries a reference to its simulator."""

    daemon_threads = True
    simulator: SlackSimulator


class _ApiRequestHandler(BaseHTTPRequestHandler):
    """Translate HTTP requests to ``SlackSimulator._serve`` calls and write the answers."""

    server: _ApiServer
    server_version = "SlackSimulator/1.0"

    def do_POST(self) -> None:
        """Handle a Web API call (WebClient always POSTs)."""
        self._handle()

    def do_GET(self) -> None:
        """Handle a Web API call made with GET and a query string."""
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Send the server's access log to the module logger at debug level."""
        logger.debug("slack simulator: " + format, *args)

    def _handle(self) -> None:
        """Parse the request, let the simulator answer it and write the response."""
        parts = urlsplit(self.path)
        method = parts.path.removeprefix("/api/") if parts.path.startswith("/api/") else ""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        params, parse_error = _parse_params(parts.query, raw)
        token = str(params.pop("token", "") or "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        try:
            response = self.server.simulator._serve(method, params, token, parse_error)
        except Exception:
            logger.exception("slack simulator failed on %s", method)
            response = _json_response(500, {"ok": False, "error": "fatal_error"})
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the answer to %s", method)


# ---------------------------------------------------------------------- Socket Mode server

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_WS_MAX_HANDSHAKE = 16 * 1024
_WS_MAX_MESSAGE = 1024 * 1024
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY = 0x0, 0x1, 0x2
_OP_CLOSE, _OP_PING, _OP_PONG = 0x8, 0x9, 0xA
_WS_JOIN_TIMEOUT_S = 2.0


class _WsProtocolError(Exception):
    """A client broke RFC 6455; the connection is closed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        """Store the close code and reason to send."""
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _SocketModeServer:
    """Accept WebSocket connections on a loopback port, one thread per connection."""

    def __init__(self, simulator: SlackSimulator) -> None:
        """Bind an ephemeral loopback port (not accepting until ``start``)."""
        self.simulator = simulator
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[_SocketConnection] = []
        self._thread = threading.Thread(
            target=self._accept_loop, name="slack-simulator-socket-mode", daemon=True
        )

    def start(self) -> None:
        """Start accepting connections."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for their threads."""
        self._stopping.set()
        self._thread.join(timeout=_WS_JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close(1001, "going away")
        for conn in connections:
            conn.thread.join(timeout=_WS_JOIN_TIMEOUT_S)

    def _accept_loop(self) -> None:
        """Accept connections until stopped, polling so that ``stop`` is noticed quickly."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(_POLL_INTERVAL_S):
                    continue
                try:
                    sock, _ = self._listener.accept()
                except OSError:
                    logger.exception("socket mode server failed to accept a connection")
                    continue
                conn = _SocketConnection(self, sock)
                with self._lock:
                    if self._stopping.is_set():
                        sock.close()
                        return
                    self._connections = [c for c in self._connections if c.thread.is_alive()]
                    self._connections.append(conn)
                conn.thread.start()


class _SocketConnection:
    """One client connection: the HTTP upgrade, then frames until either side closes."""

    def __init__(self, server: _SocketModeServer, sock: socket.socket) -> None:
        """Wrap an accepted socket; ``thread`` serves it once started."""
        self.server = server
        self.sock = sock
        self.thread = threading.Thread(target=self._run, name="slack-simulator-socket", daemon=True)
        self._send_lock = threading.Lock()
        self._open = False  # the handshake was answered: frames may be sent
        self._close_sent = False
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    @property
    def simulator(self) -> SlackSimulator:
        """Return the simulator this connection reports to."""
        return self.server.simulator

    # -- sending (any thread)

    def send_text(self, text: str) -> bool:
        """Write one text frame; False when the connection is closing or gone."""
        return self._send(_OP_TEXT, text.encode("utf-8"))

    def close(self, code: int, reason: str) -> None:
        """Send a close frame (once open), then end the connection; the reader cleans up."""
        if self._open:
            self._send(_OP_CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8")[:123])
        self._shutdown()

    def _shutdown(self) -> None:
        """Wake the reader thread with EOF; it closes the socket."""
        with contextlib.suppress(OSError):  # already closed by the peer or the reader thread
            self.sock.shutdown(socket.SHUT_RDWR)

    def _send(self, opcode: int, payload: bytes) -> bool:
        """Write one frame, unless a close frame went out already; False if not written."""
        with self._send_lock:
            if self._close_sent:
                return False
            if opcode == _OP_CLOSE:
                self._close_sent = True
            try:
                self.sock.sendall(_ws_frame(opcode, payload))
            except OSError as exc:
                # A partly written frame leaves the stream unusable: end the connection.
                logger.debug("socket mode send failed: %s", exc)
                self._close_sent = True
                self._shutdown()
                return False
            return True

    # -- the connection's own thread

    def _run(self) -> None:
        """Serve the connection: handshake, hello, then frames until it ends."""
        registered = False
        try:
            self.sock.settimeout(DELIVERY_TIMEOUT_S)  # bounds the handshake and each send
            registered = self._handshake()
            if registered:
                self._read_frames()
        except _WsProtocolError as exc:
            logger.debug("socket mode client broke the protocol: %s", exc.reason)
            self.close(exc.code, exc.reason)
        except OSError as exc:
            logger.debug("socket mode connection ended: %s", exc)
        finally:
            if registered:
                self.simulator._socket_closed(self)
            with self._send_lock:
                self._close_sent = True
                self.sock.close()

    def _handshake(self) -> bool:
        """Answer the HTTP upgrade; on success send ``hello`` and register; return success."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > _WS_MAX_HANDSHAKE:
                self._http_error("431 Request Header Fields Too Large")
                return False
            chunk = self.sock.recv(4096)
            if not chunk:
                return False
            self._buffer += chunk
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        request_line = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key", "")
        if (
            len(request_line) != 3
            or request_line[0] != "GET"
            or headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-version") != "13"
            or not key
        ):
            self._http_error("400 Bad Request")
            return False
        if not self.simulator._socket_ticket_ok(request_line[1]):
            self._http_error("401 Unauthorized")
            return False
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        response = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode("ascii")
        # Registered and greeted under the send lock, so no envelope can overtake the hello.
        with self._send_lock:
            count = self.simulator._socket_opened(self)
            if count is None:
                self.sock.sendall(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n")
                return False
            hello = {
                "type": "hello",
                "num_connections": count,
                "debug_info": {
                    "host": "applink-simulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": APP_ID},
            }
            try:
                self.sock.sendall(response + _ws_frame(_OP_TEXT, json.dumps(hello).encode()))
            except OSError:
                self.simulator._socket_closed(self)
                raise
            self._open = True
        return True

    def _http_error(self, status: str) -> None:
        """Refuse an upgrade with a plain HTTP answer."""
        body = status.encode("ascii") + b"\n"
        self.sock.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode("ascii") + body
        )

    def _read_frames(self) -> None:
        """Read frames until a close frame or EOF, pinging the client while it is quiet."""
        interval = self.simulator.socket_ping_interval
        next_ping = time.monotonic() + interval if interval else math.inf
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while True:
                while (frame := _ws_take_frame(self._buffer)) is not None:
                    if not self._on_frame(*frame):
                        return
                wait = None if next_ping == math.inf else max(0.0, next_ping - time.monotonic())
                if not selector.select(wait):
                    if interval:
                        self._send(_OP_PING, f"ping {time.time():.6f}".encode())
                        next_ping = time.monotonic() + interval
                    continue
                chunk = self.sock.recv(65536)
                if not chunk:
                    return  # EOF: the client left (slack_sdk closes without a close frame)
                self._buffer += chunk

    def _on_frame(self, fin: bool, opcode: int, payload: bytes) -> bool:
        """Handle one frame; return False when the connection is over."""
        if opcode >= _OP_CLOSE:
            if not fin or len(payload) > 125:
                raise _WsProtocolError(1002, "control frames are final and short")
            if opcode == _OP_PING:
                self._send(_OP_PONG, payload)
            elif opcode == _OP_CLOSE:
                # Echo the code, as RFC 6455 asks; then the reader ends and closes the socket.
                self._send(_OP_CLOSE, payload[:2])
                return False
            elif opcode != _OP_PONG:
                raise _WsProtocolError(1002, f"unknown opcode {opcode:#x}")
            return True
        if opcode == _OP_CONTINUATION:
            if not self._fragments:
                raise _WsProtocolError(1002, "continuation without a first frame")
        elif opcode in (_OP_TEXT, _OP_BINARY):
            if self._fragments:
                raise _WsProtocolError(1002, "new message inside a fragmented one")
            self._fragment_opcode = opcode
        else:
            raise _WsProtocolError(1002, f"unknown opcode {opcode:#x}")
        self._fragments.append(payload)
        if sum(len(f) for f in self._fragments) > _WS_MAX_MESSAGE:
            raise _WsProtocolError(1009, "message too big")
        if not fin:
            return True
        data, self._fragments = b"".join(self._fragments), []
        if self._fragment_opcode == _OP_BINARY:
            logger.debug("socket mode client sent a binary message; ignored")
            return True
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _WsProtocolError(1007, "text frame is not UTF-8") from exc
        self.simulator._socket_message(text)
        return True


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """Return one final, unmasked frame (servers never mask, RFC 6455 section 5.1)."""
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, length])
    elif length < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + length.to_bytes(8, "big")
    return header + payload


def _ws_take_frame(buffer: bytearray) -> tuple[bool, int, bytes] | None:
    """Remove one complete client frame from ``buffer``: (fin, opcode, unmasked payload).

    Returns None while the frame is incomplete; raises _WsProtocolError for frames a client
    must not send (unmasked, reserved bits, oversized).
    """
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    if first & 0x70:
        raise _WsProtocolError(1002, "reserved bits set without an extension")
    if not second & 0x80:
        raise _WsProtocolError(1002, "client frames must be masked")
    length, pos = second & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, pos = int.from_bytes(buffer[2:4], "big"), 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, pos = int.from_bytes(buffer[2:10], "big"), 10
    if length > _WS_MAX_MESSAGE:
        raise _WsProtocolError(1009, "message too big")
    if len(buffer) < pos + 4 + length:
        return None
    mask = bytes(buffer[pos : pos + 4])
    data = bytes(buffer[pos + 4 : pos + 4 + length])
    del buffer[: pos + 4 + length]
    if data:
        key = (mask * (length // 4 + 1))[:length]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return bool(first & 0x80), first & 0x0F, data


# ---------------------------------------------------------------------- module helpers


def _json_response(status: int, payload: JsonDict) -> _Response:
    """Return a JSON answer."""
    return _Response(status, json.dumps(payload).encode("utf-8"))


def _rate_limited(retry_after: int) -> _Response:
    """Return Slack's HTTP 429 answer with a Retry-After header."""
    body = json.dumps({"ok": False, "error": "ratelimited"}).encode("utf-8")
    return _Response(429, body, headers={"Retry-After": str(retry_after)})


def _missing_argument(name: str) -> _ApiError:
    """Return the error Slack gives for a missing required argument."""
    return _ApiError(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


def _parse_params(query: str, raw: bytes) -> tuple[JsonDict, str | None]:
    """Merge query-string and body parameters; a body starting with ``{`` is JSON."""
    params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return params, "invalid_form_data"
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return params, "invalid_json"
        if not isinstance(data, dict):
            return params, "invalid_json"
        params.update(data)
    elif stripped:
        params.update(parse_qsl(stripped, keep_blank_values=True))
    return params, None


def _opt_str(p: JsonDict, key: str) -> str:
    """Return a parameter as a string ("" when absent); JSON numbers become strings."""
    value = p.get(key)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _int(p: JsonDict, key: str) -> int:
    """Return a parameter as a positive int, or 0 when absent or not a positive number."""
    try:
        value = int(_opt_str(p, key) or 0)
    except ValueError:
        return 0
    return max(value, 0)


def _bool(p: JsonDict, key: str) -> bool:
    """Return a boolean parameter sent as JSON true or form "1"/"true"."""
    return _opt_str(p, key).lower() in ("1", "true")


def _json_list(value: Any, error: str) -> list[dict] | None:
    """Return a list parameter sent as JSON or as a JSON string in a form."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _ApiError(error) from exc
    if not isinstance(value, list):
        raise _ApiError(error)
    return value


def _parse_metadata(value: Any) -> JsonDict | None:
    """Return message metadata ({event_type, event_payload}) or raise its format error."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _ApiError("invalid_metadata_format") from exc
    if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
        raise _ApiError("invalid_metadata_format")
    if not isinstance(value.get("event_payload", {}), dict):
        raise _ApiError("invalid_metadata_format")
    return value


def _ts_decimal(ts: str, error: str) -> Decimal:
    """Parse a Slack ts for numeric comparison, raising ``error`` if it is malformed."""
    if not _TS_RE.match(ts):
        raise _ApiError(error)
    try:
        return Decimal(ts)
    except InvalidOperation as exc:
        raise _ApiError(error) from exc


def _ts(msg: JsonDict) -> Decimal:
    """Return a stored message's ts as a number."""
    return Decimal(msg["ts"])


def _ts_filter(p: JsonDict) -> Callable[[str], bool]:
    """Return a predicate applying ``oldest``/``latest``/``inclusive`` to a ts."""
    oldest_raw, latest_raw = _opt_str(p, "oldest"), _opt_str(p, "latest")
    oldest = _ts_decimal(oldest_raw, "invalid_ts_oldest") if oldest_raw else None
    latest = _ts_decimal(latest_raw, "invalid_ts_latest") if latest_raw else None
    inclusive = _bool(p, "inclusive")

    def in_range(ts: str) -> bool:
        value = Decimal(ts)
        if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
            return False
        return not (latest is not None and (value > latest or (value == latest and not inclusive)))

    return in_range


def _encode_cursor(kind: str, value: str) -> str:
    """Return an opaque cursor naming the first item of the next page."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode("ascii")


def _decode_cursor(cursor: str, kind: str) -> str:
    """Return the item key inside a cursor, or raise ``invalid_cursor``."""
    try:
        raw = base64.b64decode(cursor.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise _ApiError("invalid_cursor") from exc
    prefix, sep, value = raw.partition(":")
    if prefix != kind or not sep or not value:
        raise _ApiError("invalid_cursor")
    return value


def _member_cursor_start(cursor: str, ids: list[str]) -> int:
    """Return the index a ``user:`` cursor points at in ``ids``."""
    if not cursor:
        return 0
    user = _decode_cursor(cursor, "user")
    if user not in ids:
        raise _ApiError("invalid_cursor")
    return ids.index(user)


def _paginate(
    items: list[Any], start: int, limit: int, key: Callable[[Any], str], kind: str = "next_ts"
) -> tuple[list[Any], str]:
    """Return one page of ``items`` and the cursor for the next ("" at the end)."""
    page = items[start : start + limit]
    rest = start + limit
    next_cursor = _encode_cursor(kind, key(items[rest])) if rest < len(items) else ""
    return page, next_cursor


def _is_top_level(msg: JsonDict) -> bool:
    """Tell whether a message shows in the channel (not only inside a thread)."""
    thread_ts = msg.get("thread_ts")
    return not thread_ts or thread_ts == msg["ts"] or msg.get("subtype") == "thread_broadcast"


def _event_copy(msg: JsonDict, hidden: tuple[str, ...] = _EVENT_HIDDEN_FIELDS) -> JsonDict:
    """Return a copy of a message without the fields (``hidden``) an event does not carry."""
    return {k: copy.deepcopy(v) for k, v in msg.items() if k not in hidden}


def _tz_details(tz: str) -> tuple[int, str]:
    """Return the current UTC offset in seconds and a label for an IANA zone."""
    now = dt.datetime.now(ZoneInfo(tz))
    offset = now.utcoffset() or dt.timedelta(0)
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return seconds, f"{now.tzname()} (UTC{sign}{hours:02d}:{minutes:02d})"


def _unescape(text: str) -> str:
    """Undo Slack's three entity escapes."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _rich_text_blocks(text: str) -> list[dict]:
    """Return the rich_text block Slack attaches to a human message with this markup."""
    elements: list[JsonDict] = []
    pos = 0
    for match in _TOKEN_RE.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": _unescape(text[pos : match.start()])})
        elements.append(_token_element(match.group(1)))
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": _unescape(text[pos:])})
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(2),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _token_element(token: str) -> JsonDict:
    """Return the rich-text element for one ``<…>`` token of Slack markup."""
    target, _, label = token.partition("|")
    if target.startswith("@") and len(target) > 1:
        return {"type": "user", "user_id": target[1:]}
    if target.startswith("#") and len(target) > 1:
        return {"type": "channel", "channel_id": target[1:]}
    if target.startswith("!subteam^"):
        return {"type": "usergroup", "usergroup_id": target.removeprefix("!subteam^")}
    if target.startswith("!date^"):
        parts = target.split("^")
        try:
            stamp = int(parts[1])
        except (IndexError, ValueError):
            return {"type": "text", "text": _unescape(label or target)}
        element: JsonDict = {
            "type": "date",
            "timestamp": stamp,
            "format": parts[2] if len(parts) > 2 else "",
            "fallback": _unescape(label),
        }
        if len(parts) > 3:
            element["url"] = _unescape(parts[3])
        return element
    if target.startswith("!"):
        name = target[1:]
        if name in _BROADCAST_RANGES:
            return {"type": "broadcast", "range": name}
        return {"type": "text", "text": _unescape(label or target)}
    link: JsonDict = {"type": "link", "url": _unescape(target)}
    if label:
        link["text"] = _unescape(label)
    return link

"""Bad input, generated: the listener stays up, the digest stays safe, settings say what is wrong.

Property-based (hypothesis). The "fast" profile runs a few dozen examples per test; for a
long run (10,000 examples per test; the listener property alone takes a long while):

    HYPOTHESIS_PROFILE=long ./run_tests.sh tests/test_properties.py
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import http.client
import io
import itertools
import json
import re
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from standup_bot.cli import main
from standup_bot.errors import ConfigError
from standup_bot.listener_app import HANDLER_THREADS, MAX_BODY_BYTES, ReplyRecorder
from standup_bot.mail import build_message
from standup_bot.markup import to_html, to_text
from standup_bot.model import Digest, PreviousReport, Reply
from standup_bot.render import render_digest
from standup_bot.reports import group_reports, missing_members
from standup_bot.settings import DEFAULT_QUESTIONS, SETTINGS, settings_from_mapping
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.store import Store
from tests.conftest import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAY,
    MORNING,
    SIGNING_SECRET,
    TEAM_TZ,
    TOKEN,
    LiveListener,
)

# A Slack ts: ASCII digits, a dot, digits ("1795683600.000100").
SLACK_TS = re.compile(r"[0-9]+\.[0-9]+")
# Everything str.splitlines() breaks a line at.
LINE_BREAK = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")

# ---------------------------------------------------------------------------------------
# Shared strategies: hostile text
# ---------------------------------------------------------------------------------------

_HOSTILE_SNIPPETS = (
    "\x00", "\x01", "\x02", "\x03", "\x07", "\x1b[31m", "\x7f", "\x85", "\x9b", "\t", "\n", "\r",
    "\r\n", "\v", "\f", "\u2028", "\u2029", "\u202e", "\u200f", "\u202dLTR\u202c", "\u200b", "\ufeff",
    "\ufffd", "שלום עולם", "مرحبا بالعالم", "🙂", "👩\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "e\u0301",
    "<", ">", "&", "&amp;", "&lt;", "&gt;", "&amp;lt;", "&#60;", "'", '"', "\\", "%s", "{0}", "{{ x }}",
    "*", "_", "~", "`", "```", "&gt; ", "&gt;&gt;&gt; ", ":tada:",
    "<@UALICE>", "<@UALICE|alice>", "<#C0STANDUP|team-standup>", "<!here>", "<!subteam^S1|@team>",
    "<!date^1795683600^{date_short}|today>", "<https://example.com/?a=1&amp;b=2|a link>",
    "<javascript:alert(1)|click>", "<mailto:lead@example.com|Lead>", "&lt;@UALICE&gt;", "&lt;!here&gt;",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</div></body>", "<!--", "-->",
    "\r\nBcc: evil@example.com", "=?utf-8?q?=0D=0ABcc:_evil@example.com?=",
)
_text_pieces = st.one_of(st.text(max_size=20), st.sampled_from(_HOSTILE_SNIPPETS))
_short_text = st.lists(_text_pieces, max_size=8).map("".join)


def _to_40k(piece: str) -> str:
    piece = piece or "x"
    return (piece * (40_000 // len(piece) + 1))[:40_000]


# Slack cuts messages at 40,000 characters; build them by repetition (hypothesis cannot
# draw that much text directly).
_long_text = st.lists(_text_pieces, min_size=1, max_size=4).map("".join).map(_to_40k)
_hostile_text = st.one_of(_short_text, _short_text, _long_text)

# ---------------------------------------------------------------------------------------
# 1. The live listener, fed arbitrary signed Events API payloads
# ---------------------------------------------------------------------------------------

PROMPT_TS = "1795683600.000100"  # the prompt of DAY in CHANNEL, saved before the first example
OTHER_CHANNEL = "C0ELSEWHERE"
DRAIN_CHANNEL = "C0DRAIN"
# Bolt runs listeners on ThreadPoolExecutor(max_workers=5) (slack_bolt/app/app.py) after
# acking; occupying all five workers at once proves every earlier handler has finished.
BOLT_LISTENER_WORKERS = HANDLER_THREADS
DRAIN_TIMEOUT = 20.0
_UNIQUE = "@@unique-event-id@@"  # replaced by a fresh event_id when the body is sent
_DEEP = "@@deeply-nested@@"  # replaced by raw, deeply nested JSON when the body is sent
_MISSING = object()  # a field left out



@dataclass(frozen=True)
class _Payload:
    """One request body: a JSON-able envelope (rendered when sent) or raw bytes."""

    obj: Any = None
    raw: bytes | None = None
    ensure_ascii: bool = True
    deep: int = 0
    expect: tuple[str, str, str] | None = None  # (ts, user, text) of a real reply that must be stored

    def body(self, event_id: str) -> bytes:
        """Render the body; `event_id` replaces the unique-id marker."""
        if self.raw is not None:
            return self.raw
        text = json.dumps(self.obj, ensure_ascii=self.ensure_ascii)
        text = text.replace(json.dumps(_UNIQUE), json.dumps(event_id))
        if self.deep:
            text = text.replace(json.dumps(_DEEP), "[" * self.deep + "]" * self.deep, 1)
        # surrogatepass: a lone surrogate in ensure_ascii=False output becomes invalid UTF-8.
        return text.encode("utf-8", "surrogatepass")

    def __repr__(self) -> str:
        shown = repr(self.raw if self.raw is not None else self.obj)
        if len(shown) > 600:
            shown = f"{shown[:600]}… ({len(shown)} characters)"
        return f"_Payload({shown}, ensure_ascii={self.ensure_ascii}, deep={self.deep}, expect={self.expect is not None})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis shows a failing example this way: short, not 40,000 characters


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_slack_ts = st.builds(
    lambda seconds, fraction: f"{seconds}.{fraction:06d}",
    st.integers(1795683601, 1795700000), st.integers(0, 999_999),
)
_unshaped_ts = st.sampled_from(["", "abc", "1795683601", "1.2.3", " 1.2", "1.2 ", "-1.0", "1e9", "١٧.٠٠"]) | st.text(
    max_size=15
).filter(lambda s: not SLACK_TS.fullmatch(s))
_bad_ts = _json | _unshaped_ts
_users = st.sampled_from([ALICE, BOB, CAROL, "UBOT", "USLACKBOT"])
_block = st.fixed_dictionaries(
    {"type": st.sampled_from(["rich_text", "section", "divider"]) | st.text(max_size=8)},
    optional={"elements": st.lists(_json, max_size=3), "text": _json, "block_id": st.text(max_size=8)},
)
_blocks = st.one_of(
    st.lists(_block, max_size=3),
    st.builds(lambda block, count: [block] * count, _block, st.integers(1_000, 3_000)),  # a huge array
)
_files = st.lists(st.fixed_dictionaries({"name": _short_text}, optional={"title": _json}), max_size=3)


def _draw_field(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = _json) -> Any:
    """Draw a field: usually a good value, sometimes one of the wrong type, sometimes _MISSING."""
    how = draw(st.sampled_from(("good", "good", "good", "bad", "missing")))
    if how == "missing":
        return _MISSING
    return draw(good if how == "good" else bad)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not _MISSING:
        target[key] = value


@st.composite
def _messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message event (or an edit's inner message) with any of its fields missing or mistyped."""
    message: dict[str, Any] = {}
    ts = draw(_slack_ts)
    _put(message, "type", _draw_field(draw, st.just("message")))
    _put(message, "channel", _draw_field(draw, st.sampled_from([CHANNEL, CHANNEL, OTHER_CHANNEL])))
    _put(message, "user", _draw_field(draw, _users))
    _put(message, "text", _draw_field(draw, _hostile_text))
    _put(message, "ts", _draw_field(draw, st.just(ts), _bad_ts))
    # Mostly the known prompt, so that many of these are replies in its thread.
    _put(message, "thread_ts", _draw_field(draw, st.sampled_from([PROMPT_TS, PROMPT_TS, "1795683600.000200", ts]), _bad_ts))
    subtypes = st.sampled_from(["thread_broadcast", "file_share", "me_message", "bot_message", "channel_join",
                                "message_replied", "tombstone", ""]) | st.text(max_size=12)
    _put(message, "subtype", draw(st.just(_MISSING) | subtypes | _json))
    _put(message, "blocks", draw(st.just(_MISSING) | _blocks | _json | st.just(_DEEP)))
    _put(message, "files", draw(st.just(_MISSING) | _files | _json))
    _put(message, "edited", draw(st.just(_MISSING) | st.fixed_dictionaries({"user": _users, "ts": _slack_ts}) | _json))
    _put(message, "bot_id", draw(st.just(_MISSING) | st.just(_MISSING) | _json))
    extra = draw(st.dictionaries(st.text(max_size=8).map("x-".__add__), _json, max_size=2))
    return {**message, **extra}


@st.composite
def _edits(draw: st.DrawFn) -> dict[str, Any]:
    """A message_changed event: garbage `message`, mistyped ts, missing channel, …"""
    event: dict[str, Any] = {"type": "message", "subtype": "message_changed", "hidden": True}
    _put(event, "channel", _draw_field(draw, st.sampled_from([CHANNEL, OTHER_CHANNEL])))
    _put(event, "ts", _draw_field(draw, _slack_ts, _bad_ts))
    _put(event, "message", _draw_field(draw, _messages()))
    _put(event, "previous_message", draw(st.just(_MISSING) | _messages() | _json))
    return event


@st.composite
def _deletes(draw: st.DrawFn) -> dict[str, Any]:
    """A message_deleted event, deleted_ts missing or mistyped at times."""
    event: dict[str, Any] = {"type": "message", "subtype": "message_deleted", "hidden": True}
    _put(event, "channel", _draw_field(draw, st.sampled_from([CHANNEL, OTHER_CHANNEL]), _json | st.text(max_size=10)))
    _put(event, "ts", _draw_field(draw, _slack_ts, _bad_ts))
    _put(event, "deleted_ts", _draw_field(draw, _slack_ts | st.just(PROMPT_TS), _bad_ts))
    _put(event, "previous_message", draw(st.just(_MISSING) | _messages() | _json))
    return event


_other_events = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(["reaction_added", "app_mention", "member_joined_channel", "app_home_opened"]) | _json,
    st.dictionaries(st.sampled_from(["user", "channel", "ts", "item", "text", "event_ts", "team"]), _json, max_size=4),
)


def _envelope(event: Any, event_id: Any = _UNIQUE) -> dict[str, Any]:
    """Wrap an event the way Slack does (SLACK-NOTES §1)."""
    return {
        "token": "XXYYZZ", "team_id": "T0TEST", "api_app_id": "A0SIM", "type": "event_callback",
        "event_id": event_id, "event_time": 1795683700, "event_context": "1-message-T0TEST-C0STANDUP",
        "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}],
        "event": event,
    }


@st.composite
def _garbage_payloads(draw: st.DrawFn) -> _Payload:
    """An Events API envelope with any field (of it or of its event) missing or mistyped."""
    event = draw(st.one_of(_messages(), _edits(), _deletes(), _other_events))
    envelope = _envelope(event)
    if draw(st.sampled_from(["event only", "event only", "envelope too"])) == "envelope too":
        _put(envelope, "type", _draw_field(draw, st.just("event_callback"),
                                           _json | st.sampled_from(["url_verification", "app_rate_limited"])))
        _put(envelope, "event_id", _draw_field(draw, st.just(_UNIQUE)))
        _put(envelope, "team_id", _draw_field(draw, st.just("T0TEST")))
        _put(envelope, "authorizations", _draw_field(draw, st.just(envelope["authorizations"])))
        envelope.pop("event")
        _put(envelope, "event", _draw_field(draw, st.just(event)))
    # Moderately or extremely deep nesting, never in between (where whether json.loads
    # gives up depends on how deep the parser's own stack already is).
    nesting = draw(st.sampled_from(["flat", "flat", "flat", "flat", "moderate", "extreme"]))
    depth = 0
    if nesting == "moderate":
        depth = draw(st.integers(20, 200))
    elif nesting == "extreme":
        depth = draw(st.integers(5_000, 100_000))
    has_marker = _DEEP in json.dumps(envelope)
    if depth and not has_marker:
        envelope["x-deep"] = _DEEP
    return _Payload(obj=envelope, ensure_ascii=draw(st.booleans()), deep=depth)


@st.composite
def _real_replies(draw: st.DrawFn) -> _Payload:
    """A well-formed reply (or edit) in the prompt's thread with hostile text: it must be stored."""
    kind = draw(st.sampled_from(["reply", "thread_broadcast", "file_share", "me_message", "edit"]))
    user = draw(st.sampled_from([ALICE, BOB, CAROL]))
    # Edge whitespace often: it must be stored as sent too.
    edges = st.sampled_from(["", "", " ", "\n", "\t", "\u3000", "\r\n "])
    text = draw(edges) + draw(_hostile_text) + draw(edges)
    ts = draw(_slack_ts)
    message: dict[str, Any] = {
        "type": "message", "user": user, "text": text, "ts": ts, "thread_ts": PROMPT_TS,
        "parent_user_id": "UBOT", "channel": CHANNEL, "channel_type": "channel", "event_ts": ts,
        "team": "T0TEST", "client_msg_id": "9f1c0000-0000-4000-8000-000000000000",
    }
    blocks = draw(st.just(_MISSING) | _blocks)
    _put(message, "blocks", blocks)
    if kind in ("thread_broadcast", "me_message"):
        message["subtype"] = kind
    if kind == "file_share":
        message.update(subtype="file_share", upload=False, files=draw(_files))
    event = message
    if kind == "edit":
        edit_ts = f"{int(ts.partition('.')[0]) + 60}.000001"
        message.pop("channel")
        message["edited"] = {"user": user, "ts": edit_ts}
        previous = {key: value for key, value in message.items() if key != "edited"}
        event = {
            "type": "message", "subtype": "message_changed", "hidden": True, "channel": CHANNEL,
            "ts": edit_ts, "event_ts": edit_ts, "message": message,
            "previous_message": {**previous, "text": "before the edit"},
        }
    return _Payload(obj=_envelope(event), ensure_ascii=draw(st.booleans()), expect=(ts, user, text))


_raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.sampled_from([
        b"", b"null", b"[]", b"{}", b"42", b'"event_callback"', b"true", b"{", b"}", b"{'a': 1}",
        b'{"type": "event_callback", "event": ', b'{"type": "event_callback"}}', b"\xef\xbb\xbf{}",
        b"a=b&c=d", b"payload=%7B%7D", b"payload=not-json", b'{"a": NaN, "b": -Infinity}',
        b'{"type": "event_callback", "event": {"type": "message", "text": "\xff\xfe"}}',
        b'{"type": "event_callback", "event": {"type": "message", "text": "\xed\xa0\x80"}}',
        b'{"type": "event_callback", "event_id": 1' + b"0" * 5_000 + b"}",
        b'{"type": "url_verification", "challenge": {"a": [1]}}',
        b'{"type": "event_callback", "type": "url_verification"}',
    ]),
    st.builds(lambda depth: b"[" * depth + b"]" * depth, st.integers(5_000, 200_000)),
    st.builds(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth, st.integers(5_000, 100_000)),
    st.builds(lambda body, cut: body.body("Ev0CUT")[:cut], _real_replies(), st.integers(0, 200)),
).map(lambda raw: _Payload(raw=raw))

_events_api_payloads = st.one_of(_real_replies(), _garbage_payloads(), _raw_bodies)


def _contains_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_contains_surrogate(k) or _contains_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_surrogate(v) for v in value)
    return False


def _post_signed(url: str, body: bytes, timestamp: int) -> int:
    """POST a body that is not UTF-8, signed by hand (SignatureVerifier decodes bodies as UTF-8)."""
    stamp = str(timestamp)
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    host, _, rest = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request("POST", "/" + rest, body=body, headers={
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + digest.hexdigest(),
        })
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


@dataclass
class _ListenerProbe:
    """The live listener plus what a test needs to drive it and to know when it is idle."""

    live: LiveListener
    sim: SlackSimulator
    store: Store
    barrier: threading.Barrier
    handler_errors: list[str] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def post(self, body: bytes) -> int:
        """Send a signed body; return the HTTP status (0 for a connection error)."""
        # Hypothesis repeats simple bodies (b"", b"[]"); a signature seen before is refused
        # as a replay (401). Timestamps spread over four minutes keep the signatures apart.
        stamp = int(time.time()) - next(self.ids) % 240
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return _post_signed(self.live.url, body, stamp)
        return self.sim.send_signed(self.live.url, body, SIGNING_SECRET, timestamp=stamp)[0]

    def next_event_id(self) -> str:
        return f"Ev0PROP{next(self.ids)}"

    def drain(self) -> None:
        """Wait until every handler started so far has returned."""
        if self.barrier.broken:
            self.barrier.reset()
        for _ in range(BOLT_LISTENER_WORKERS):
            event = {"type": "message", "channel": DRAIN_CHANNEL, "user": ALICE, "text": "drain", "ts": "1.000001"}
            status = self.post(json.dumps(_envelope(event, self.next_event_id())).encode())
            assert status == 200, f"the listener answered {status} to a drain event"
        try:
            self.barrier.wait(timeout=DRAIN_TIMEOUT)
        except threading.BrokenBarrierError:
            raise AssertionError("the listener's handlers did not finish in time") from None

    def health(self) -> int:
        url = self.live.url.replace("/slack/events", "/healthz")
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)

    def forget_replies(self) -> None:
        """Start an example afresh: no replies, no seen event IDs (the prompt stays)."""
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM replies")
            conn.execute("DELETE FROM seen_events")
        self.handler_errors.clear()

    def replies(self) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT channel, date, ts, user, text, version, deleted FROM replies").fetchall()
        return [dict(row) for row in rows]

    def prompts(self) -> set[tuple[str, str]]:
        with self.store.transaction() as conn:
            return {(row["channel"], row["date"]) for row in conn.execute("SELECT channel, date FROM prompts")}


@pytest.fixture
def listener_probe(
    listener: LiveListener, sim: SlackSimulator, store: Store, monkeypatch: pytest.MonkeyPatch
) -> _ListenerProbe:
    """Return the live listener with a prompt saved and its message handler observed."""
    store.save_prompt(CHANNEL, DAY, PROMPT_TS)
    probe = _ListenerProbe(listener, sim, store, threading.Barrier(BOLT_LISTENER_WORKERS + 1))
    original = ReplyRecorder.handle

    def observed_handle(recorder: ReplyRecorder, event: Mapping[str, Any], event_id: str | None) -> str:
        if isinstance(event, Mapping) and event.get("channel") == DRAIN_CHANNEL:
            with contextlib.suppress(threading.BrokenBarrierError):  # drain() reports the timeout
                probe.barrier.wait(timeout=DRAIN_TIMEOUT)
            return "drained"
        try:
            return original(recorder, event, event_id)
        except Exception:
            probe.handler_errors.append(traceback.format_exc())
            raise

    # Observe, not replace: the real handler runs; the probe only learns how it ended.
    monkeypatch.setattr(ReplyRecorder, "handle", observed_handle)
    return probe


def _check_replies_table(rows: list[dict[str, Any]], prompts: set[tuple[str, str]]) -> None:
    for row in rows:
        assert all(isinstance(row[key], str) for key in ("channel", "date", "ts", "user", "text", "version")), row
        assert SLACK_TS.fullmatch(row["ts"]), f"stored a reply whose ts is not a Slack ts: {row['ts']!r}"
        assert SLACK_TS.fullmatch(row["version"]), f"stored a version that is not a Slack ts: {row['version']!r}"
        if row["date"] == "":
            assert row["deleted"] == 1, f"only a tombstone may lack a date: {row!r:.300}"
        else:
            dt.date.fromisoformat(row["date"])
            assert (row["channel"], row["date"]) in prompts, f"stored a reply outside any prompt's thread: {row!r:.300}"


@given(payload=_events_api_payloads)
def test_the_listener_survives_any_signed_payload_and_stores_only_well_formed_replies(
    listener_probe: _ListenerProbe, payload: _Payload
) -> None:
    probe = listener_probe
    probe.forget_replies()
    body = payload.body(probe.next_event_id())
    note(f"body ({len(body)} bytes): {body[:2000]!r}")

    status = probe.post(body)

    hypothesis.event(f"HTTP {status}")
    assert status == 200 or 400 <= status < 500, f"HTTP {status}"
    probe.drain()
    assert probe.health() == 200
    assert probe.live.thread.is_alive()
    if probe.handler_errors:
        hypothesis.event("the handler raised")
    if probe.handler_errors:
        pytest.fail(f"the message handler raised:\n{probe.handler_errors[0]}")
    rows = probe.replies()
    hypothesis.event(f"replies table: {len(rows)} row(s)")
    _check_replies_table(rows, probe.prompts())
    if payload.expect is not None:
        ts, user, text = payload.expect
        if len(body) > MAX_BODY_BYTES:
            assert status == 413
            return
        assert status == 200
        stored = {row["ts"]: row for row in rows}
        assert ts in stored, "a real reply in the prompt's thread was not stored"
        assert (stored[ts]["user"], stored[ts]["text"], stored[ts]["deleted"]) == (user, text, 0)


# ---------------------------------------------------------------------------------------
# 2. Slack markup into the renderer
# ---------------------------------------------------------------------------------------

EMITTED_TAGS = frozenset({
    "a", "strong", "em", "s", "code", "pre", "br", "blockquote",  # markup.to_html
    "html", "head", "meta", "title", "body", "div", "h1", "h2", "p", "ol", "ul", "li", "span",  # the template
})
EMITTED_ATTRIBUTES = frozenset({"href", "style", "dir", "lang", "charset", "name", "content"})
LINK_SCHEMES = ("http:", "https:", "mailto:")
# The start of a raw Slack entity left in plain text: <@U…>/<@W…>, <#C…>/<#G…>/<#D…>, <!here>,
# <!subteam^…>, … (not any "<@" + alphanumeric: a typed "<@0" is no entity and may stay).
RAW_ENTITY = re.compile(r"<(?:@[UW][A-Z0-9]|#[CGD][A-Z0-9]|!(?:here|channel|everyone|subteam\^|date\^))")

_entity_ids = st.sampled_from(["UALICE", "U1", "W9", "C0STANDUP", "G0PRIV", "D0DM", "S0TEAM"]) | st.text(
    alphabet="UWCGDS0129AZ", min_size=1, max_size=6
)
_labels = st.none() | _short_text


def _with_label(head: str, label: str | None) -> str:
    return f"<{head}>" if label is None else f"<{head}|{label}>"


_entities = st.one_of(
    st.builds(lambda i, label: _with_label(f"@{i}", label), _entity_ids, _labels),
    st.builds(lambda i, label: _with_label(f"#{i}", label), _entity_ids, _labels),
    st.builds(lambda i, label: _with_label(f"!subteam^{i}", label), _entity_ids, _labels),
    st.builds(lambda b, label: _with_label(f"!{b}", label), st.sampled_from(["here", "channel", "everyone"]), _labels),
    st.builds(
        lambda epoch, label: _with_label(f"!date^{epoch}^{{date_short}}", label),
        st.integers(-(10**14), 10**14), _labels,
    ),
    st.builds(
        lambda scheme, rest, label: _with_label(f"{scheme}:{rest}", label),
        st.sampled_from(["http", "https", "HTTPS", "mailto", "javascript", "JavaScript", "data", "vbscript", "file"]),
        _short_text, _labels,
    ),
)
_markup = st.lists(st.one_of(_text_pieces, _entities), max_size=12).map("".join)
_names = _short_text
_user_ids = st.sampled_from([ALICE, BOB, CAROL, "UDAVE", "W0GRID"])
_name_maps = st.dictionaries(_user_ids | _entity_ids, _names, max_size=6)
_channel_maps = st.dictionaries(st.sampled_from([CHANNEL, "C0STANDUP", "G0PRIV"]) | _entity_ids, _names, max_size=4)


class _HtmlInventory(HTMLParser):
    """Collect every tag, attribute and markup declaration in an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(tag)

    def handle_decl(self, decl: str) -> None:
        if decl != "DOCTYPE html":
            self.other.append(decl)

    def handle_comment(self, data: str) -> None:
        self.other.append("<!--" + data)

    def handle_pi(self, data: str) -> None:
        self.other.append("<?" + data)

    def unknown_decl(self, data: str) -> None:
        self.other.append("<![" + data)


def _assert_safe_html(html: str) -> None:
    """Assert the HTML holds only our tags and attributes, and links only to http(s) or mailto."""
    inventory = _HtmlInventory()
    inventory.feed(html)
    inventory.close()
    assert set(inventory.tags) <= EMITTED_TAGS, f"unexpected tags {set(inventory.tags) - EMITTED_TAGS}"
    assert not inventory.other, f"unexpected markup {inventory.other}"
    for name, value in inventory.attributes:
        assert name in EMITTED_ATTRIBUTES, f"unexpected attribute {name}={value!r}"
        if name == "href":
            assert value is not None and value.lower().startswith(LINK_SCHEMES), f"unsafe link {value!r}"


@given(text=_markup, users=_name_maps, channels=_channel_maps)
def test_any_markup_renders_as_escaped_html_and_entity_free_text(
    text: str, users: dict[str, str], channels: dict[str, str]
) -> None:
    _assert_safe_html(str(to_html(text, users, channels)))
    plain = to_text(text, users, channels)
    assert not RAW_ENTITY.search(plain), f"raw entity in {plain!r}"


@st.composite
def _digests(draw: st.DrawFn, names: st.SearchStrategy[str] = _names) -> Digest:
    """A digest of generated replies by members with generated names."""
    # Structured reports too ("Yesterday: …" headings, numbered items), so that the
    # per-question sections, their labels and the plan-vs-done lines are rendered.
    structured = st.builds(
        lambda form, a, b, c: form.format(a, b, c),
        st.sampled_from(["Yesterday: {}\nToday: {}\nBlockers: {}", "1. {}\n2. {}\n3. {}", "*Done*\n{}\n*Plan*\n{}\n*Blocked*\n{}",
                         "{}\n\n{}\n\n{}"]),
        _markup, _markup, _markup,
    )
    replies = draw(st.lists(
        st.builds(
            Reply, ts=_slack_ts, user=_user_ids, text=_markup | structured, edited=st.booleans(),
            files=st.lists(names, max_size=2).map(tuple),
        ),
        max_size=5,
    ))
    reports = group_reports(replies)
    expected = tuple(draw(st.lists(_user_ids, unique=True, max_size=4)))
    missing = missing_members(expected, reports)
    away = draw(st.lists(st.sampled_from(missing), unique=True).map(tuple)) if missing else ()
    later = [m for m in missing if m not in away]
    not_yet_due = draw(st.lists(st.sampled_from(later), unique=True).map(tuple)) if later else ()
    previous = st.builds(
        PreviousReport, date=st.just(DAY - dt.timedelta(days=1)), plan=st.none() | _markup,
        blocker=st.none() | st.just("") | _markup,
    )
    return Digest(
        date=DAY,
        channel_id=CHANNEL,
        channel_name=draw(names),
        questions=tuple(draw(st.just(DEFAULT_QUESTIONS) | st.lists(names | st.sampled_from(DEFAULT_QUESTIONS), max_size=3))),
        reports=tuple(reports),
        missing=tuple(m for m in later if m not in not_yet_due),
        expected=expected,
        away=away,
        not_yet_due=not_yet_due,
        user_names=draw(st.dictionaries(_user_ids | _entity_ids, names, max_size=6)),
        channel_names=draw(st.dictionaries(st.sampled_from([CHANNEL, "G0PRIV"]) | _entity_ids, names, max_size=3)),
        thread_url=draw(st.none() | st.sampled_from([
            "https://example.slack.com/archives/C0STANDUP/p1795683600000100", "javascript:alert(1)",
            'https://x.example/"><script>alert(1)</script>', "https://x.example/\nBcc: x", "mailto:a@b.c",
            " https://x.example/", "data:text/html,<b>x</b>",
        ]) | _short_text),
        from_store_only=draw(st.booleans()),
        previous=draw(st.dictionaries(_user_ids, previous, max_size=3)),
    )


@given(digest=_digests())
def test_a_digest_of_hostile_replies_and_names_renders_safely(digest: Digest) -> None:
    rendered = render_digest(digest)

    _assert_safe_html(rendered.html)
    assert not RAW_ENTITY.search(rendered.text), f"raw entity in {rendered.text!r}"
    assert not LINE_BREAK.search(rendered.subject), f"line break in subject {rendered.subject!r}"


# ---------------------------------------------------------------------------------------
# 3. Settings of the wrong type or format
# ---------------------------------------------------------------------------------------

# Should a bad value ever pass, `check` must fail fast on loopback, never reach the internet.
VALID_CONFIG: dict[str, Any] = {
    "SLACK_BOT_TOKEN": TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
    "STANDUP_CHANNEL": CHANNEL,
    "MEMBERS": [ALICE, BOB],
    "TIMEZONE": TEAM_TZ,
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 9,
    "SLACK_TIMEOUT": 2,
    "SMTP_TIMEOUT": 2,
    "SMTP_SECURITY": "starttls",
    "MAIL_FROM": "standup@example.com",
    "DIGEST_RECIPIENTS": ["lead@example.com"],
}

_not_a_string = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_not_a_list = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.frozensets(st.text(max_size=5), max_size=2),
)


def _is_time_of_day(text: str) -> bool:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    return match is not None and int(match[1]) <= 23 and int(match[2]) <= 59


def _is_zone(text: str) -> bool:
    try:
        ZoneInfo(text.strip())
    except Exception:
        return False
    return True


_bad_times = st.one_of(
    st.sampled_from(["25:00", "24:00", "7:60", "", " ", "10", "10:0", "10:000", "1000", "10.00", "10h",
                     "-1:00", "10:-1", "noon", "10:00:00", "10:00 am", "10:00\n11:00", "1:2:3"]),
    st.text(max_size=8).filter(lambda s: not _is_time_of_day(s)),
    _not_a_string,
)
_bad_zones = st.one_of(
    st.sampled_from(["", " ", "Mars/Olympus", "Europe", "America", "Etc", "Berlin", "CEST", "UTC+1",
                     "../../etc/passwd", "/etc/localtime", "Europe/Berlin\x00", "zone.tab", "tzdata.zi",
                     "x" * 300, "Europe//Berlin", "Europe/Berlin/"]),
    st.text(max_size=20).filter(lambda s: not _is_zone(s)),
    _not_a_string,
)
_not_a_whole_number = st.one_of(
    st.none(), st.booleans(), st.floats(), st.sampled_from(["3", "", "three", "1.5"]), st.lists(st.integers(), max_size=2)
)
_bad_address_texts = st.sampled_from([
    "", " ", "lead", "lead@", "@example.com", "lead@example", "lead@@example.com", "lead@exa mple.com",
    "lead example.com", "<lead@example.com>", "Lead <lead@example.com>", "lead@example.com,cto@example.com",
    "lead@example.com;", "lead@example.com\r\nBcc: evil@example.com", "lead\x00@example.com",
    "lead@example.com\x1b", "lead@exam\u2028ple.com", '"lead"@example.com', "lead@exa\x85mple.com",
])
_bad_ids = st.sampled_from(["alice", "@alice", "U", "u0alice", "C0STANDUP", "", " ", "UALICE,UBOB"]) | _not_a_string


_bad_values: dict[str, st.SearchStrategy[Any]] = {
    "SLACK_BOT_TOKEN": st.sampled_from(["", " ", "xoxp-user-token", "xapp-1-app", "token"]) | _not_a_string,
    "SLACK_SIGNING_SECRET": _not_a_string,
    "SLACK_APP_TOKEN": st.sampled_from(["xoxb-bot", "token"]) | _not_a_string,
    "SLACK_API_URL": st.sampled_from(["", "slack.com/api", "ftp://slack.com/api/", "http://", "https:///api",
                                      "javascript:alert(1)", "https://slack.com/api/ x",
                                      "https://slack.com/api/\nX-Injected: 1"]) | _not_a_string,
    "STANDUP_CHANNEL": st.sampled_from(["", "#team-standup", "team-standup", "C0", "UALICE", "c0standup"]) | _not_a_string,
    "MEMBERS": _not_a_list | st.lists(_bad_ids, min_size=1, max_size=3),
    "BLOCKER_CONTACTS": _not_a_list | st.lists(_bad_ids, min_size=1, max_size=3),
    "QUESTIONS": _not_a_list | st.just([]) | st.lists(st.sampled_from(["", "  "]) | _not_a_string, min_size=1, max_size=3),
    "TIMEZONE": _bad_zones,
    "PROMPT_TIME": _bad_times,
    "REMIND_TIME": _bad_times,
    "DIGEST_TIME": _bad_times,
    "WORKDAYS": _not_a_list | st.just([]) | st.lists(
        st.sampled_from(["", "funday", "m", "mo", "1", "0"]) | st.integers() | st.none(), min_size=1, max_size=3
    ),
    "HOLIDAYS": st.sampled_from(["ZZ", "DE-ZZ", "Germany", "-BY", "D E", "DE_BY"]) | _not_a_string.filter(
        lambda v: v is not None
    ),
    "SKIP_DATES": _not_a_list.filter(lambda v: not isinstance(v, frozenset)) | st.lists(
        st.sampled_from(["2026-13-01", "2026-02-30", "tomorrow", "", "26.11.2026", "2026-11-26T10:00"]) | st.integers()
        | st.none() | st.floats(), min_size=1, max_size=3,
    ),
    "AWAY_STATUS": _not_a_list | st.lists(
        st.sampled_from(["", "  "]) | _not_a_string, min_size=1, max_size=3
    ),
    "SMTP_HOST": st.sampled_from(["", " "]) | _not_a_string,
    "SMTP_PORT": st.sampled_from(["", "abc", "587.0", "0", "-1", "65536", "9" * 5_000]) | st.floats()
    | st.integers().filter(lambda n: not 0 < n < 65536) | st.booleans() | st.none() | st.lists(st.integers(), max_size=2),
    "SMTP_USER": _not_a_string,
    "SMTP_PASSWORD": _not_a_string,
    "SMTP_SECURITY": st.sampled_from(["", "tls", "SSL/TLS", "starttls please"]) | _not_a_string,
    "MAIL_FROM": _bad_address_texts | _not_a_string,
    "DIGEST_RECIPIENTS": _not_a_list | st.just([]) | st.lists(_bad_address_texts | _not_a_string, min_size=1, max_size=3),
    "DATA_DIR": st.sampled_from(["", "  "]) | st.none() | st.booleans() | st.integers() | st.lists(st.text(max_size=3)),
    "CONFIRM_WITH_REACTION": st.sampled_from(["yes", "True", "false", ""]) | st.integers() | st.none() | st.floats(),
    "PER_MEMBER_TIMEZONE": st.sampled_from(["yes", "True", "false", ""]) | st.integers() | st.none() | st.floats(),
    "HEALTHCHECK_URL": st.sampled_from(["hc-ping.com/x", "ftp://x.example", "https://hc-ping.com/ x"]) | _not_a_string,
    "ADDENDUM_INTERVAL": _not_a_whole_number | st.integers(max_value=0),
    "SANITY_CHECKS": _not_a_list | st.lists(st.sampled_from(["", "missed", "Missed_Standups"]) | _not_a_string, min_size=1, max_size=2),
    "SANITY_MISSED_DAYS": _not_a_whole_number | st.integers(max_value=0),
    "SANITY_BLOCKER_DAYS": _not_a_whole_number | st.integers(max_value=1),
    "SANITY_REPEAT_DAYS": _not_a_whole_number | st.integers(max_value=0),
    "SLACK_TIMEOUT": st.sampled_from([0, -1, 0.0, -0.5, "10", float("nan"), float("inf"), 10**400])
    | st.booleans() | st.none() | st.lists(st.integers(), max_size=1),
    "SMTP_TIMEOUT": st.sampled_from([0, -5, "30", float("nan"), float("-inf")]) | st.none(),
}


def test_every_setting_has_bad_values_and_the_valid_config_is_valid() -> None:
    assert set(_bad_values) == set(SETTINGS)
    settings_from_mapping(VALID_CONFIG)


def _repr_round_trips(value: Any) -> bool:
    """Tell whether `NAME = repr(value)` in a config file gives the value back (nan does not)."""
    try:
        return repr(ast.literal_eval(repr(value))) == repr(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


@st.composite
def _bad_settings(draw: st.DrawFn, *, for_config_file: bool = False) -> dict[str, Any]:
    """One to four settings, each given a value of the wrong type or format."""
    names = draw(st.lists(st.sampled_from(sorted(_bad_values)), min_size=1, max_size=4, unique=True))
    values = {}
    for name in names:
        strategy = _bad_values[name]
        if for_config_file:
            strategy = strategy.filter(_repr_round_trips)
        values[name] = draw(strategy)
    return values


def _assert_one_line_each(problems: list[str]) -> None:
    for problem in problems:
        assert isinstance(problem, str) and problem.strip(), problem
        assert not LINE_BREAK.search(problem), f"a problem spans several lines: {problem!r}"
        assert "Traceback" not in problem


@given(bad=_bad_settings())
def test_each_bad_setting_gets_its_own_one_line_problem(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({**VALID_CONFIG, **bad})

    problems = raised.value.problems
    _assert_one_line_each(problems)
    for name in bad:
        assert any(p.startswith(f"{name}: ") for p in problems), f"no problem line for {name}: {problems}"


_CLI_EXAMPLES = max(5, hypothesis.settings.default.max_examples // 10)


@hypothesis.settings(max_examples=_CLI_EXAMPLES)
@given(bad=_bad_settings(for_config_file=True))
def test_the_cli_names_each_bad_setting_on_stderr_and_exits_2(tmp_path: Path, bad: dict[str, Any]) -> None:
    # A fresh directory per example: importlib may reuse a cached .pyc of an equal-sized
    # config.py written within the same second.
    config = Path(tempfile.mkdtemp(dir=tmp_path)) / "config.py"
    values = {**VALID_CONFIG, "DATA_DIR": str(config.parent / "data"), **bad}
    config.write_text("".join(f"{name} = {value!r}\n" for name, value in values.items()), encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()

    code = main(["check", "--config", str(config)], environ={}, stdout=stdout, stderr=stderr)

    lines = stderr.getvalue().splitlines()
    assert code == 2, stderr.getvalue()
    assert lines and all(line.startswith("error: ") for line in lines), lines
    for name in bad:
        assert any(line.startswith(f"error: {name}:") for line in lines), f"no error line for {name}: {lines}"


# ---------------------------------------------------------------------------------------
# 4. Hostile display names and channel names in the email
# ---------------------------------------------------------------------------------------

EXPECTED_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}
_injection_names = st.lists(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from([
            "\r\n", "\r", "\n", "\u2028", "\u2029", "\x85", "\v", "\f", "\x1c", "\x00", '"', "'", "\\", ":", ";",
            ",", "<", ">", "Bcc: evil@example.com", "\r\nBcc: evil@example.com", "\nSubject: spoofed",
            "\r\n\r\n<html>body</html>", "=?utf-8?q?=0D=0ABcc:_evil@example.com?=",
            "=?utf-8?b?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=", "=?utf-8?q?a=0Ab?=", "=?", "?=", " " * 80, "x" * 100,
        ]),
    ),
    max_size=6,
).map("".join)


@given(digest=_digests(names=_injection_names))
def test_hostile_names_never_add_a_mail_header(digest: Digest) -> None:
    rendered = render_digest(digest)
    message = build_message(
        subject=rendered.subject, text=rendered.text, html=rendered.html, mail_from="standup@example.com",
        recipients=["lead@example.com", "cto@example.com"], now=MORNING,
    )

    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert sorted(parsed.keys()) == sorted(EXPECTED_HEADERS)
    subject = str(parsed["Subject"])
    assert not LINE_BREAK.search(subject), f"line break in subject {subject!r}"
    # The decoded subject is not compared with the one sent: the email package's folding
    # (3.11) can add a leading space, drop a space between two encoded words, or split an
    # encoded word's "?=" across lines, for some mixes of spaces and non-ASCII text.
    assert subject.strip().startswith("Standup digest for #")
    assert parsed["To"].addresses[0].addr_spec == "lead@example.com"
    assert len(parsed["To"].addresses) == 2


# ---------------------------------------------------------------------------------------
# Inputs that once broke the listener (a 5xx, a raising handler, malformed rows), one each.
# ---------------------------------------------------------------------------------------


def _odd_envelope(event: Any, **fields: Any) -> dict[str, Any]:
    return {**_envelope(event, event_id="Ev0KNOWNBUG"), **fields}


def _reply_event(**fields: Any) -> dict[str, Any]:
    event = {"type": "message", "channel": CHANNEL, "user": ALICE, "text": "done", "ts": "1795683601.000200",
             "thread_ts": PROMPT_TS}
    event.update(fields)
    return event


_MALFORMED_BODIES = {
    "invalid JSON": b"{not json",
    "a JSON array": b"[1, 2]",
    "JSON null": b"null",
    "an integer of 5,000 digits": b'{"type": "event_callback", "event_id": 1' + b"0" * 5_000 + b"}",
    "event is a list": json.dumps(_odd_envelope([1])).encode(),
    "event is null": json.dumps(_odd_envelope(None)).encode(),
    "authorizations is a string": json.dumps(_odd_envelope(_reply_event(), authorizations="x")).encode(),
    "event.user is a number": json.dumps(_odd_envelope(_reply_event(user=5))).encode(),
    "event.channel is a number": json.dumps(_odd_envelope(_reply_event(channel=5))).encode(),
}


@pytest.mark.parametrize("body", _MALFORMED_BODIES.values(), ids=_MALFORMED_BODIES.keys())
def test_a_signed_malformed_body_gets_a_200_or_a_4xx(listener_probe: _ListenerProbe, body: bytes) -> None:
    status = listener_probe.post(body)
    assert status == 200 or 400 <= status < 500


_UNREADABLE_BODIES = {
    "deeply nested JSON": b"[" * 100_000 + b"]" * 100_000,
    "a deeply nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "a body that is not UTF-8": b'{"type": "event_callback", "event": {"type": "message", "text": "\xff"}}',
}


@pytest.mark.parametrize("body", _UNREADABLE_BODIES.values(), ids=_UNREADABLE_BODIES.keys())
def test_bodies_bolt_cannot_read_get_a_200_or_a_4xx(listener_probe: _ListenerProbe, body: bytes) -> None:
    status = listener_probe.post(body)
    assert status == 200 or 400 <= status < 500


_MISTYPED_EVENTS = {
    "files is a number": _odd_envelope(_reply_event(files=5)),
    "subtype is a list": _odd_envelope(_reply_event(subtype=["x"])),
    "event_id is a list": _odd_envelope(_reply_event(), event_id=["x"]),
    "text has a lone surrogate": _odd_envelope(_reply_event(text="\ud800")),
}


@pytest.mark.parametrize("envelope", _MISTYPED_EVENTS.values(), ids=_MISTYPED_EVENTS.keys())
def test_mistyped_fields_do_not_raise_in_the_handler(
    listener_probe: _ListenerProbe, envelope: dict[str, Any]
) -> None:
    assert listener_probe.post(json.dumps(envelope).encode()) == 200
    listener_probe.drain()
    assert listener_probe.handler_errors == []


_UNSHAPED_TS_EVENTS = {
    "reply ts 'abc'": _odd_envelope(_reply_event(ts="abc")),
    "deleted_ts 'zzz'": _odd_envelope({"type": "message", "subtype": "message_deleted", "channel": CHANNEL,
                                   "deleted_ts": "zzz"}),
    "edited.ts a list": _odd_envelope({
        "type": "message", "subtype": "message_changed", "channel": CHANNEL, "ts": "1795683700.000001",
        "message": {**_reply_event(), "edited": {"user": ALICE, "ts": ["x"]}},
    }),
}


@pytest.mark.parametrize("envelope", _UNSHAPED_TS_EVENTS.values(), ids=_UNSHAPED_TS_EVENTS.keys())
def test_only_slack_ts_values_are_stored(listener_probe: _ListenerProbe, envelope: dict[str, Any]) -> None:
    assert listener_probe.post(json.dumps(envelope).encode()) == 200
    listener_probe.drain()
    for row in listener_probe.replies():
        assert SLACK_TS.fullmatch(row["ts"]) and SLACK_TS.fullmatch(row["version"]), row

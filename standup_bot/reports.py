"""Decide what counts as a report and who is missing: pure functions over plain data."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .messages import REPORT_EVENT_TYPE, report_body
from .model import Reply, Report, StoredReply, ts_key

# Message subtypes that are still a person writing in the thread. Anything else
# (channel_join, bot_message, tombstones, …) is not a report.
# https://docs.slack.dev/reference/events/message/
REPORT_SUBTYPES = frozenset({None, "", "thread_broadcast", "file_share", "me_message"})


def reply_from_message(
    message: Mapping[str, Any], thread_ts: str, bot_user_id: str = "", bot_id: str = ""
) -> Reply | None:
    """Return the Reply a thread message represents, or None when it is not a report.

    Not reports: the parent, messages from any bot, system subtypes, and messages
    without an author. The one exception among bot messages: a report sent with the form,
    which the bot posts with `standup_report` metadata naming the member (see form_reply).
    """
    ts = message.get("ts")
    user = message.get("user")
    if not isinstance(ts, str) or ts == thread_ts or message.get("thread_ts") != thread_ts:
        return None
    subtype = message.get("subtype")
    if not (subtype is None or isinstance(subtype, str)) or subtype not in REPORT_SUBTYPES:
        return None
    if message.get("bot_id") or message.get("bot_profile") or user in (bot_user_id, "USLACKBOT"):
        return form_reply(message, bot_id)
    if not isinstance(user, str) or not user:
        return None
    text = message.get("text")
    attached = message.get("files")
    files: tuple[str, ...] = ()
    if isinstance(attached, list) and attached:  # most replies have none
        files = tuple(str(f.get("name") or f.get("title") or "file") for f in attached if isinstance(f, Mapping))
    return Reply(
        ts=ts,
        user=user,
        text=_clean_text(text) if isinstance(text, str) else "",
        edited=isinstance(message.get("edited"), Mapping),
        files=files,
    )


def form_reply(message: Mapping[str, Any], bot_id: str = "") -> Reply | None:
    """Return the member's Reply a bot message carries as `standup_report` metadata, or None.

    The bot posts a form submission as its own message; the metadata says whose report it
    is. Only our bot's messages count when its `bot_id` is known (any app may post metadata).
    https://docs.slack.dev/messaging/message-metadata/
    """
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != REPORT_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    member = payload.get("user") if isinstance(payload, Mapping) else None
    if not isinstance(member, str) or not _MEMBER_ID.match(member):
        return None
    if bot_id and message.get("bot_id") != bot_id:
        return None
    ts, text = message.get("ts"), message.get("text")
    if not isinstance(ts, str):
        return None
    return Reply(
        ts=ts, user=member, text=report_body(text) if isinstance(text, str) else "",
        edited=isinstance(message.get("edited"), Mapping),
    )


_MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _clean_text(text: str) -> str:
    """Return text that can be stored and mailed: a lone surrogate (invalid UTF-16 half) becomes '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


def replies_from_thread(
    messages: Iterable[Mapping[str, Any]], thread_ts: str, bot_user_id: str = "", bot_id: str = ""
) -> list[Reply]:
    """Return the reports among a thread's messages, in ts order, each ts once."""
    found: dict[str, Reply] = {}
    for message in messages:
        reply = reply_from_message(message, thread_ts, bot_user_id, bot_id)
        if reply is not None:
            found[reply.ts] = reply
    return sorted(found.values(), key=lambda r: ts_key(r.ts))


def merge_replies(
    thread: Sequence[Reply] | None, stored: Sequence[StoredReply], read_started: str
) -> list[Reply]:
    """Combine the thread read back from Slack with what the listener recorded.

    The thread is the truth for everything posted before the read started. The listener's
    copy adds replies that arrived while it was being read. Without a thread (it could not
    be read) the listener's copy is all there is.
    """
    if thread is None:
        return sorted((s.reply for s in stored if not s.deleted), key=lambda r: ts_key(r.ts))
    merged = {r.ts: r for r in thread}
    started = ts_key(read_started)
    for item in stored:
        if not item.deleted and item.reply.ts not in merged and ts_key(item.reply.ts) >= started:
            merged[item.reply.ts] = item.reply
    return sorted(merged.values(), key=lambda r: ts_key(r.ts))


def group_reports(replies: Iterable[Reply]) -> list[Report]:
    """Group replies by member; members in the order of their first reply."""
    by_user: dict[str, list[Reply]] = {}
    for reply in sorted(replies, key=lambda r: ts_key(r.ts)):
        if reply.text.strip() or reply.files:
            by_user.setdefault(reply.user, []).append(reply)
    return [Report(user, tuple(items)) for user, items in by_user.items()]


def missing_members(expected: Sequence[str], reports: Iterable[Report]) -> list[str]:
    """Return the expected members without a report, in the order they are expected."""
    reported = {r.user for r in reports}
    return [m for m in expected if m not in reported]


def who_to_remind(
    expected: Sequence[str], reports: Iterable[Report], reminder_status: Mapping[str, str]
) -> list[str]:
    """Return the expected members who have not reported and were not yet reminded."""
    return [m for m in missing_members(expected, reports) if reminder_status.get(m) in (None, "failed")]


def status_means_away(profile: Mapping[str, Any], away_status: Sequence[str], now: float) -> bool:
    """Tell whether a Slack profile's status (emoji or words) says the member is away now.

    An expired status (`status_expiration` in the past; 0 means it never expires) counts
    for nothing. Words match whole words of the status text, case-insensitively.
    """
    expiration = profile.get("status_expiration") or 0
    if isinstance(expiration, (int, float)) and 0 < expiration < now:
        return False
    emoji = str(profile.get("status_emoji") or "").strip().lower()
    text = f" {_words(str(profile.get('status_text') or ''))} "
    for entry in away_status:
        if entry.startswith(":") and entry.endswith(":") and len(entry) > 2:
            if emoji == entry:
                return True
        elif _words(entry) and f" {_words(entry)} " in text:
            return True
    return False


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))

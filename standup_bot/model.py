"""Plain data passed between the boundaries: replies, reports and the digest to render."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    """One reply in a prompt's thread, as Slack holds it now."""

    ts: str  # Slack message ts, kept as a string ("1.10" and "1.1" differ)
    user: str  # author's member ID
    text: str  # Slack markup as sent (mrkdwn with <@U…> tokens and &amp; entities)
    edited: bool = False
    files: tuple[str, ...] = ()  # names of attached files (their URLs need the bot token)


@dataclass(frozen=True)
class Report:
    """A member's report for one date: all of their replies in the thread, in order."""

    user: str
    replies: tuple[Reply, ...]


@dataclass(frozen=True)
class Digest:
    """Everything the digest email shows, resolved and ready to render."""

    date: dt.date
    channel_id: str
    channel_name: str  # without '#'; the ID when the name is unknown
    questions: tuple[str, ...]
    reports: tuple[Report, ...]  # in the order their first reply was posted
    missing: tuple[str, ...]  # expected members with no report
    expected: tuple[str, ...] = ()  # MEMBERS, or the channel's humans; empty when unknown
    away: tuple[str, ...] = ()  # expected members away today who did not report
    not_yet_due: tuple[str, ...] = ()  # members whose working day starts after the digest
    user_names: Mapping[str, str] = field(default_factory=dict)  # member ID -> Slack name
    channel_names: Mapping[str, str] = field(default_factory=dict)  # channel ID -> name
    thread_url: str | None = None  # permalink of the prompt
    from_store_only: bool = False  # the thread could not be read; built from the listener's copy
    # member -> what they said in their previous report (an earlier date in the store)
    previous: Mapping[str, PreviousReport] = field(default_factory=dict)
    # blockers reported SANITY_BLOCKER_DAYS reports in a row or more (the sanity checks)
    long_blockers: tuple[LongBlocker, ...] = ()


@dataclass(frozen=True)
class PreviousReport:
    """The answers of a member's most recent report before the digest's date that matter today.

    Both in Slack markup as typed. ``plan`` is None when unknown (no "today" answer, or a
    report without recognisable sections). ``blocker`` is "" when they reported none and
    None when unknown.
    """

    date: dt.date
    plan: str | None
    blocker: str | None


@dataclass(frozen=True)
class LongBlocker:
    """A member's blocker that their reports named several times in a row."""

    user: str
    days: int  # how many reports in a row, today's included
    since: dt.date  # the date of the first of them
    blocker: str  # today's text, Slack markup as typed


@dataclass(frozen=True)
class Change:
    """A reply added, edited or deleted in the thread since the day's digest (or last addendum) was mailed."""

    kind: str  # "late" (new since), "edited" or "deleted"
    reply: Reply  # as it is now; a deleted one as it was last seen
    posted: str  # local time the reply was first posted, "HH:MM"


@dataclass(frozen=True)
class Addendum:
    """What an addendum email shows: the day's context (a Digest without reports) and the changes."""

    context: Digest
    number: int  # 1 for the first addendum of a date
    since: str  # what the changes are relative to: "the digest" or "addendum 2"
    since_at: str  # when that was mailed, local time: "12:00 CET"
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class StoredReply:
    """A reply as the listener (or an earlier thread read) recorded it."""

    reply: Reply
    deleted: bool


def ts_key(ts: str) -> tuple[int, int]:
    """Return a sort key for a Slack ts ("1700000000.000100") that avoids float rounding."""
    seconds, _, fraction = ts.partition(".")
    try:
        return int(seconds or 0), int(fraction.ljust(6, "0")[:6] or 0)
    except ValueError:
        return (0, 0)

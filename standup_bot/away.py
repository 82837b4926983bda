"""Time away: `/standup away|back|skip` in Slack and `standup.py away|back` for an admin.

The same parsing and wording serve both, so a member and an admin see the same rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .store import Store

MAX_AWAY_DAYS = 366
USAGE = (
    "Usage: `/standup away YYYY-MM-DD [YYYY-MM-DD]` (away from the first date to the second, "
    "both included), `/standup back` (end it), `/standup skip` (skip today)."
)


@dataclass(frozen=True)
class AwayRequest:
    """A parsed request: `away` with its dates, `back`, `skip`, or `help`."""

    action: str
    start: dt.date | None = None
    end: dt.date | None = None


class AwayInputError(ValueError):
    """The request could not be understood; the message says how to write it."""


def parse_request(text: str, today: dt.date) -> AwayRequest:
    """Parse the words after `/standup`; raise AwayInputError with a helpful message."""
    words = text.split()
    if not words or words[0].lower() in ("help", "?"):
        return AwayRequest("help")
    action, arguments = words[0].lower(), words[1:]
    if action in ("back", "skip"):
        if arguments:
            raise AwayInputError(f"`{action}` takes no dates. {USAGE}")
        return AwayRequest(action, today, today) if action == "skip" else AwayRequest("back")
    if action != "away":
        raise AwayInputError(f"I don't know `{words[0]}`. {USAGE}")
    if not 1 <= len(arguments) <= 2:
        raise AwayInputError(f"`away` needs one or two dates. {USAGE}")
    dates = []
    for argument in arguments:
        try:
            dates.append(dt.date.fromisoformat(argument))
        except ValueError:
            raise AwayInputError(f"`{argument}` is not a date: write it as YYYY-MM-DD, e.g. {today}.") from None
    start, end = dates[0], dates[-1]
    if end < start:
        raise AwayInputError(f"The last day ({end}) is before the first ({start}).")
    if end < today:
        raise AwayInputError(f"That is all in the past (today is {today}).")
    if (end - start).days >= MAX_AWAY_DAYS:
        raise AwayInputError(f"That is more than a year; give at most {MAX_AWAY_DAYS} days.")
    return AwayRequest("away", start, end)


def _day(date: dt.date) -> str:
    return f"{date:%a} {date.isoformat()}"


def apply_request(
    store: Store, channel: str, user: str, request: AwayRequest, today: dt.date, *, source: str
) -> str:
    """Record the request and return the confirmation to show the member (or the admin)."""
    if request.action == "help":
        return USAGE
    if request.action == "back":
        changed = store.set_back(channel, user, today)
        return (
            "Welcome back: reminders are on again from today."
            if changed else "You were not marked away, so nothing changed."
        )
    assert request.start is not None and request.end is not None
    store.set_away(channel, user, request.start, request.end, source=source)
    if request.action == "skip":
        return f"OK, you skip today's standup ({today}): no reminder, and the digest shows you as away."
    span = _day(request.start) if request.start == request.end else f"{_day(request.start)} to {_day(request.end)}"
    return (
        f"OK, you are away {span}: no reminders, and the digest shows you as away. "
        "`/standup back` ends it early."
    )

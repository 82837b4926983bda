"""What `/standup` tells a member about their standup: what the bot expects today and whether
their report is in (`/standup`, `help`, `status`), and their last reports (`mine [N]`).

Time away (`away`, `back`, `skip`) is in away.py. Every answer is shown only to the member
who asked (the slash command's ephemeral reply).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from . import away, markup
from .settings import Settings
from .store import Store

MINE_DEFAULT = 7
MINE_MAX = 30
MINE_CHARS = 300  # of each report shown by `mine`
STATUS_WORDS = frozenset({"", "help", "?", "status"})
USAGE = (
    "`/standup` (or `help`, `status`): today's standup and whether your report is in. "
    "`/standup mine [N]`: your last N reports (default 7, at most 30)."
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def trim(text: str, limit: int) -> str:
    """Cut Slack text to `limit` characters with "…", never inside a <…> token or an &entity;."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    amp = cut.rfind("&")
    if amp > cut.rfind(";") and amp >= len(cut) - 5:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def status_answer(settings: Settings, store: Store, user: str, today: dt.date) -> str:
    """Return what the bot expects today, whether the member's report is recorded, and the usage."""
    channel = settings.standup_channel
    deadline = f"{settings.digest_time:%H:%M} ({settings.timezone})"
    questions = "\n".join(f"{i}. {_escape(q)}" for i, q in enumerate(settings.questions, start=1))
    reason = settings.calendar.why_not(today)
    if reason is None:
        lines = [
            f"*Standup in <#{channel}> today, {today:%A} {today.isoformat()}*",
            f"Answer these by *{deadline}*, when the digest goes out:",
        ]
    else:
        lines = [
            f"*No standup in <#{channel}> today*: {reason}.",
            f"On standup days the bot asks these, to be answered by {deadline}:",
        ]
    lines.append(questions)
    lines.append(_your_report(settings, store, user, today, standup_day=reason is None))
    lines.append(USAGE)
    lines.append(away.USAGE)
    return "\n".join(lines)


def _your_report(settings: Settings, store: Store, user: str, today: dt.date, *, standup_day: bool) -> str:
    channel = settings.standup_channel
    if user in store.away_on(channel, today):
        note = " You are marked away today (`/standup back` ends it)."
    else:
        note = ""
    reports = store.member_reports(channel, user, until=today, limit=1)
    if reports and reports[0][0] == today:
        count = len(reports[0][1])
        how = "sent with the form" if store.form_report(channel, today, user) else f"{count} message(s) in the thread"
        return f"Your report for today is *recorded* :white_check_mark: ({how}).{note}"
    if store.prompt_ts(channel, today) is None:
        when = f"it is due at {settings.prompt_time:%H:%M}" if standup_day else "none is planned"
        return f"Your report for today: none recorded, and the prompt is not posted yet ({when}).{note}"
    return (
        "Your report for today is *not recorded yet*: reply in the prompt's thread or use its "
        f"*Write my standup* button.{note}"
    )


def mine_answer(store: Store, channel: str, user: str, arguments: Sequence[str], today: dt.date) -> str:
    """Return the member's last N reports (date and text, each cut to MINE_CHARS), newest first."""
    if len(arguments) > 1:
        return f"`mine` takes at most one number. {USAGE}"
    count = MINE_DEFAULT
    if arguments:
        if not arguments[0].isdigit() or int(arguments[0]) < 1:
            return f"`{_escape(arguments[0])}` is not a number of reports: write e.g. `/standup mine 7`."
        count = min(int(arguments[0]), MINE_MAX)
    reports = store.member_reports(channel, user, until=today, limit=count)
    if not reports:
        return f"I have no reports of yours from <#{channel}> yet."
    capped = f" (I show at most {MINE_MAX})" if arguments and int(arguments[0]) > MINE_MAX else ""
    lines = [f"Your last {len(reports)} report(s) in <#{channel}>{capped}:"]
    for date, replies in reports:
        pieces = [reply.text for reply in replies if reply.text.strip()]
        pieces += [f"[file: {_escape(name)}]" for reply in replies for name in reply.files]
        lines.append(f"• *{date:%a} {date.isoformat()}*: {trim(markup.one_line(' / '.join(pieces)), MINE_CHARS)}")
    return "\n".join(lines)

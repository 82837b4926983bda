"""The Slack messages the bot posts: the daily prompt (Block Kit) and the reminder DM."""

from __future__ import annotations

import datetime as dt
from typing import Any

PROMPT_EVENT_TYPE = "standup_prompt"  # message metadata that identifies our prompt


def _mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack treats as markup in text we send."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_prompt(
    questions: tuple[str, ...],
    date: dt.date,
    deadline: dt.time,
    timezone: str,
    *,
    late_by: dt.timedelta | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Return the prompt's plain-text fallback and its Block Kit blocks."""
    day = f"{date:%A} {date.isoformat()}"
    deadline_text = f"{deadline:%H:%M} ({timezone})"
    numbered = "\n".join(f"{i}. {_mrkdwn_escape(q)}" for i, q in enumerate(questions, start=1))
    late = ""
    if late_by is not None and late_by >= dt.timedelta(minutes=1):
        minutes = int(late_by.total_seconds() // 60)
        late = f"\n_(posted late, {minutes // 60} h {minutes % 60:02d} min after the usual time)_"
    text = (
        f"Standup for {day}: reply in this thread by {deadline_text}.\n{numbered}{late}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Standup for {day}", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": numbered}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f":thread: Reply *in this thread* by *{deadline_text}*; "
                    "the digest goes out then." + late,
                }
            ],
        },
    ]
    return text, blocks


def prompt_metadata(date: dt.date) -> dict[str, Any]:
    """Return the message metadata that lets a rerun find a prompt it already posted."""
    return {"event_type": PROMPT_EVENT_TYPE, "event_payload": {"date": date.isoformat()}}


def build_reminder(channel: str, permalink: str, deadline: dt.time, timezone: str) -> str:
    """Return the reminder DM: names the channel and links to the thread."""
    return (
        f"Hi! You haven't posted your standup in <#{channel}> yet today. "
        f"<{permalink}|Reply in the thread> by {deadline:%H:%M} ({timezone}) to be in the digest."
    )

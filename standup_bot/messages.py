"""The Slack messages the bot posts: the daily prompt (Block Kit), the reminder DM, and the
"Write my standup" form (the modal and the report it posts in the thread)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

PROMPT_EVENT_TYPE = "standup_prompt"  # message metadata that identifies our prompt
REMINDER_EVENT_TYPE = "standup_reminder"  # … and a reminder DM
REPORT_EVENT_TYPE = "standup_report"  # message metadata of a report sent with the form
OPEN_FORM_ACTION = "standup_open_form"  # the prompt's "Write my standup" button
EDIT_FORM_ACTION = "standup_edit_form"  # the "Edit" button on a form report
FORM_CALLBACK_ID = "standup_form"  # the modal
ANSWER_ACTION = "answer"  # each question's input in the modal (block_id q0, q1, …)
REPORT_HEADER = "*Standup from <@{user}>*"  # first line of a form report
# A section block holds 3,000 characters: the answer plus its question in bold.
# https://docs.slack.dev/reference/block-kit/blocks/section-block/
MAX_ANSWER_CHARS = 2500


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
        f"Standup for {day}: reply in this thread, or use the \"Write my standup\" button, "
        f"by {deadline_text}.\n{numbered}{late}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Standup for {day}", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": numbered}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f":thread: Reply *in this thread* (or use the button) by *{deadline_text}*; "
                    "the digest goes out then." + late,
                }
            ],
        },
        {
            "type": "actions",
            "block_id": "standup_prompt_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": OPEN_FORM_ACTION,
                    "text": {"type": "plain_text", "text": "Write my standup", "emoji": True},
                    "value": date.isoformat(),
                    "style": "primary",
                }
            ],
        },
    ]
    return text, blocks


def prompt_metadata(date: dt.date) -> dict[str, Any]:
    """Return the message metadata that lets a rerun find a prompt it already posted."""
    return {"event_type": PROMPT_EVENT_TYPE, "event_payload": {"date": date.isoformat()}}


def reminder_metadata(date: dt.date) -> dict[str, Any]:
    """Return the message metadata that lets a rerun see that a reminder went out."""
    return {"event_type": REMINDER_EVENT_TYPE, "event_payload": {"date": date.isoformat()}}


def build_reminder(channel: str, permalink: str, deadline: dt.time, timezone: str) -> str:
    """Return the reminder DM: names the channel and links to the thread."""
    return (
        f"Hi! You haven't posted your standup in <#{channel}> yet today. "
        f"<{permalink}|Reply in the thread> by {deadline:%H:%M} ({timezone}) to be in the digest."
    )


# -- the form ------------------------------------------------------------------------------
def _plain(text: str, limit: int) -> dict[str, Any]:
    """Return a plain_text object, cut to Slack's limit for its field."""
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…", "emoji": True}


def build_form(
    questions: Sequence[str], date: dt.date, channel: str, values: Sequence[str], *,
    hint: str = "", optional: int | None = None, replacing: bool = False,
) -> dict[str, Any]:
    """Return the modal: one multi-line input per question (block_id q0, q1, …).

    `values` prefill the inputs (missing or empty: none); `hint` goes under the first one;
    the question at index `optional` (the blockers one) may be left empty.
    https://docs.slack.dev/reference/views/modal-views/ (title ≤ 24 characters, label ≤ 2,000)
    """
    blocks: list[dict[str, Any]] = []
    for index, question in enumerate(questions):
        element: dict[str, Any] = {
            "type": "plain_text_input", "action_id": ANSWER_ACTION, "multiline": True,
            "max_length": MAX_ANSWER_CHARS,
        }
        value = values[index] if index < len(values) else ""
        if value:
            element["initial_value"] = value[:MAX_ANSWER_CHARS]
        block: dict[str, Any] = {
            "type": "input", "block_id": f"q{index}", "label": _plain(question, 2000),
            "element": element, "optional": index == optional,
        }
        if index == 0 and hint:
            block["hint"] = _plain(hint, 2000)
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK_ID,
        "private_metadata": json.dumps({"date": date.isoformat(), "channel": channel}),
        "title": _plain(f"Standup {date:%a %d %b}", 24),
        "submit": _plain("Update" if replacing else "Post", 24),
        "close": _plain("Cancel", 24),
        "blocks": blocks,
    }


def format_answers(questions: Sequence[str], answers: Sequence[str]) -> str:
    """Return a form report's Slack text: each answered question in bold, its answer below.

    Answers are typed as plain text, so `&`, `<` and `>` are escaped: a typed `<!channel>`
    stays text. Blank lines inside an answer are dropped, so the blank lines between the
    sections are the only paragraph breaks and the reply parser (answers.split_answers)
    splits the text back at the questions, which it reads as headings.
    """
    sections = [
        f"*{_mrkdwn_escape(question)}*\n{_mrkdwn_escape(_compact(answer))}"
        for question, answer in zip(questions, answers, strict=False)
        if answer.strip()
    ]
    return "\n\n".join(sections)


def _compact(answer: str) -> str:
    return "\n".join(line.rstrip() for line in answer.strip().splitlines() if line.strip())


def report_body(text: str) -> str:
    """Return a form report's text without its first line ("*Standup from <@U…>*")."""
    first, newline, rest = text.partition("\n")
    if first.startswith(REPORT_HEADER.split("{", 1)[0]) and first.endswith("*"):
        return rest if newline else ""
    return text


def build_form_report(
    user: str, questions: Sequence[str], answers: Sequence[str], date: dt.date
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Return the thread reply for a form submission: its text, blocks and metadata.

    The metadata ({event_type: standup_report, event_payload: {user, date, answers}}) is
    what makes the bot's message count as the member's report when the thread is read back.
    https://docs.slack.dev/messaging/message-metadata/
    """
    header = REPORT_HEADER.format(user=user)
    text = f"{header}\n{format_answers(questions, answers)}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
    for question, answer in zip(questions, answers, strict=False):
        if answer.strip():
            section = format_answers([question], [answer])
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section[:3000]}})
    blocks.append({
        "type": "actions",
        "block_id": "standup_report_actions",
        "elements": [{
            "type": "button", "action_id": EDIT_FORM_ACTION, "value": date.isoformat(),
            "text": {"type": "plain_text", "text": "Edit", "emoji": True},
        }],
    })
    metadata = {
        "event_type": REPORT_EVENT_TYPE,
        "event_payload": {"user": user, "date": date.isoformat(), "answers": list(answers)},
    }
    return text, blocks, metadata

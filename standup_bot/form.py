"""The "Write my standup" form: the modal behind the prompt's button, a submission posted as
the member's report in the day's thread, and the Edit button on that report.

Slack allows 3 s to acknowledge an interaction and a trigger_id lives 3 s, so the Bolt
handlers ack first, then call `FormReports`, which opens the modal after a few SQLite reads.
A submission is checked before it is acknowledged, so a bad one keeps the modal open with
the error under the first field.
https://docs.slack.dev/interactivity/handling-user-interaction/
https://docs.slack.dev/surfaces/modals/#handling-submissions
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import markup
from .answers import BLOCKERS, PLAN, question_index, split_answers
from .errors import SlackError
from .messages import ANSWER_ACTION, MAX_ANSWER_CHARS, build_form, build_form_report, report_body
from .model import Reply
from .reports import form_reply
from .settings import Settings
from .slack import SlackApi
from .store import FormReport, Store

log = logging.getLogger(__name__)

# Slack answers these when chat.update cannot edit the earlier reply: post a new one.
_REPLY_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


@dataclass(frozen=True)
class Submission:
    """A checked form submission: whose report, for which date, and the answers."""

    user: str
    date: dt.date
    prompt_ts: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class ButtonClick:
    """Who clicked one of our buttons, where, and what the button carries."""

    user: str
    channel: str
    trigger_id: str
    value: str
    message_ts: str
    thread_ts: str
    message: Mapping[str, Any]


# -- reading payloads (pure) -------------------------------------------------------------
def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _iso_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def button_click(body: Mapping[str, Any]) -> ButtonClick | None:
    """Return the click a `block_actions` payload describes, or None when fields are missing."""
    actions = body.get("actions")
    action = _mapping(actions[0]) if isinstance(actions, list) and actions else {}
    container = _mapping(body.get("container"))
    message = _mapping(body.get("message"))
    click = ButtonClick(
        user=_text(_mapping(body.get("user")).get("id")),
        channel=_text(_mapping(body.get("channel")).get("id")) or _text(container.get("channel_id")),
        trigger_id=_text(body.get("trigger_id")),
        value=_text(action.get("value")),
        message_ts=_text(container.get("message_ts")) or _text(message.get("ts")),
        thread_ts=_text(container.get("thread_ts")) or _text(message.get("thread_ts")),
        message=message,
    )
    return click if click.user and click.channel and click.trigger_id else None


def form_target(view: Mapping[str, Any]) -> tuple[dt.date, str] | None:
    """Return (date, channel) from a submitted modal's private_metadata, or None."""
    try:
        meta = json.loads(_text(view.get("private_metadata")))
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    date = _iso_date(meta.get("date"))
    channel = _text(meta.get("channel"))
    return (date, channel) if date is not None and channel else None


def submitted_answers(view: Mapping[str, Any], count: int) -> tuple[str, ...]:
    """Return the text typed in each of the `count` inputs (block q0, q1, …), "" when empty."""
    values = _mapping(_mapping(view.get("state")).get("values"))
    answers = []
    for index in range(count):
        typed = _text(_mapping(_mapping(values.get(f"q{index}")).get(ANSWER_ACTION)).get("value"))
        answers.append(typed.strip()[:MAX_ANSWER_CHARS])
    return tuple(answers)


def prefill(
    questions: Sequence[str], current: FormReport | None,
    previous: tuple[dt.date, list[Reply]] | None, previous_form: FormReport | None,
) -> tuple[list[str], str]:
    """Return the modal's initial values and the hint under the first field.

    This date's form report, when there is one, fills every field. Otherwise the first
    field gets what the member said last time they would do (their answer to the "today"
    question): from the answers of their last form report, else split from their replies.
    """
    count = len(questions)
    if current is not None:
        values = [*current.answers[:count], *([""] * (count - len(current.answers)))]
        return values, "Your report as you sent it; submitting replaces it in the thread."
    plan = question_index(questions, PLAN)
    if plan is None or plan == 0 or previous is None:
        return [], ""
    date, replies = previous
    said: str | None
    if previous_form is not None and previous_form.date == date:
        said = previous_form.answers[plan] if plan < len(previous_form.answers) else None
    else:
        said = split_answers("\n\n".join(r.text for r in replies if r.text.strip()), questions).parts[plan]
        said = markup.to_text(said, {}, {}) if said else None
    if not said or not said.strip():
        return [], ""
    hint = f"Last time ({date:%a %d %b}) you said you would do this; make it what you did."
    return [said.strip()[:MAX_ANSWER_CHARS]], hint


# -- acting ------------------------------------------------------------------------------
class FormReports:
    """Open the form, post or replace a member's form report, and guard the Edit button."""

    def __init__(self, settings: Settings, store: Store, slack: SlackApi) -> None:
        self.settings = settings
        self.store = store
        self.slack = slack
        # One submission at a time: two quick ones by a member must edit one reply, not post two.
        self._publishing = threading.Lock()
        self._bot_id: str | None = None

    @property
    def channel(self) -> str:
        """Return the standup's channel ID."""
        return self.settings.standup_channel

    def open(self, body: Mapping[str, Any]) -> str:
        """Open the modal for the member who clicked "Write my standup"; return what was done."""
        click = button_click(body)
        date = _iso_date(click.value) if click else None
        if click is None or date is None or click.channel != self.channel:
            return "ignored"
        if self.store.prompt_ts(self.channel, date) is None:
            self.tell(click.user, f"There is no standup thread for {date} any more, so there is nothing to answer.")
            return "no prompt"
        self._open_form(click, date)
        return "opened"

    def edit(self, body: Mapping[str, Any]) -> str:
        """Open the modal on a form report's Edit button, for the member whose report it is only."""
        click = button_click(body)
        if click is None or click.channel != self.channel or not click.message_ts:
            return "ignored"
        report = self.store.form_report_at(self.channel, click.message_ts)
        owner: str | None
        if report is not None:
            owner, date = report.user, report.date
        else:  # not recorded here (a lost database): the message's metadata says whose it is
            fallback = form_reply(click.message, self._bot_id or "")
            owner, date = (fallback.user if fallback else None), _iso_date(click.value)
        if owner is None or date is None:
            self.tell(click.user, "I don't know this report any more; use the button on the standup prompt.",
                      thread_ts=click.thread_ts)
            return "unknown"
        if owner != click.user:
            self.tell(click.user, f"Only <@{owner}> can edit this report.", thread_ts=click.thread_ts)
            return "refused"
        self._open_form(click, date)
        return "opened"

    def _open_form(self, click: ButtonClick, date: dt.date) -> None:
        questions = self.settings.questions
        current = self.store.form_report(self.channel, date, click.user)
        previous = None if current else self.store.previous_replies(self.channel, click.user, date)
        previous_form = self.store.form_report(self.channel, previous[0], click.user) if previous else None
        values, hint = prefill(questions, current, previous, previous_form)
        view = build_form(
            questions, date, self.channel, values, hint=hint,
            optional=question_index(questions, BLOCKERS), replacing=current is not None,
        )
        self.slack.open_view(click.trigger_id, view)
        log.info("opened the form for %s (%s)", click.user, date)

    def check(self, body: Mapping[str, Any]) -> Submission | dict[str, str]:
        """Return the checked submission, or the errors to show in the modal (by block_id)."""
        view = _mapping(body.get("view"))
        user = _text(_mapping(body.get("user")).get("id"))
        target = form_target(view)
        if not user or target is None or target[1] != self.channel:
            return {"q0": "This form is out of date: close it and open it again from the standup prompt."}
        date = target[0]
        answers = submitted_answers(view, len(self.settings.questions))
        if not any(answers):
            return {"q0": "Write at least one answer."}
        prompt_ts = self.store.prompt_ts(self.channel, date)
        if prompt_ts is None:
            return {"q0": f"There is no standup thread for {date} any more, so this cannot be posted."}
        return Submission(user, date, prompt_ts, answers)

    def publish(self, submission: Submission) -> str:
        """Post the report in the thread, or edit the member's earlier one; record it."""
        questions = self.settings.questions
        text, blocks, metadata = build_form_report(submission.user, questions, submission.answers, submission.date)
        with self._publishing:
            existing = self.store.form_report(self.channel, submission.date, submission.user)
            ts = existing.ts if existing is not None else self._find_in_thread(submission)
            if ts is not None:
                try:
                    self.slack.update_message(self.channel, ts, text, blocks=blocks, metadata=metadata)
                except SlackError as exc:
                    if exc.code not in _REPLY_GONE:
                        raise
                    log.info("the earlier form report %s is gone (%s); posting a new one", ts, exc.code)
                    ts = None
            replaced = ts is not None
            if ts is None:
                ts = self.slack.post_message(
                    self.channel, text, blocks=blocks, thread_ts=submission.prompt_ts, metadata=metadata
                )
            self.store.save_form_report(
                self.channel, submission.date, submission.user, ts, report_body(text), submission.answers
            )
        log.info("%s the form report %s of %s for %s", "replaced" if replaced else "posted", ts,
                 submission.user, submission.date)
        return "replaced" if replaced else "posted"

    def _find_in_thread(self, submission: Submission) -> str | None:
        """Return the ts of a form report of this member already in the thread, unknown to the store.

        It happens when the listener posted it but could not record it (a crash, a full
        disk): the thread is the truth, so that reply is edited rather than doubled.
        """
        try:
            if self._bot_id is None:
                self._bot_id = str(self.slack.auth_test().get("bot_id") or "")
            messages = self.slack.thread(self.channel, submission.prompt_ts)
        except SlackError as exc:
            log.warning("could not read the thread to look for an earlier form report: %s", exc)
            return None
        for message in messages:
            payload = _mapping(_mapping(message.get("metadata")).get("event_payload"))
            reply = form_reply(message, self._bot_id)
            if reply is not None and reply.user == submission.user and payload.get("date") == submission.date.isoformat():
                return reply.ts
        return None

    def tell(self, user: str, text: str, *, thread_ts: str = "") -> None:
        """Show a member an ephemeral message in the standup channel (best effort)."""
        try:
            self.slack.post_ephemeral(self.channel, user, text, thread_ts=thread_ts or None)
        except SlackError as exc:
            log.warning("could not tell %s %r: %s", user, text, exc)

"""Read a member's report as answers to the configured questions: which is the plan, the blocker.

Pure functions over plain data. A report (all of a member's replies, in order) is split
with answers.split_answers; which question asks about what comes from the parser's own
keyword mapping, so a heading and a question agree on what "Blockers" means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .answers import BLOCKERS, DONE, PLAN, Answers, is_empty_blocker, question_index, split_answers
from .model import PreviousReport, Reply, Report
from .reports import group_reports

LABELS = {DONE: "Yesterday", PLAN: "Today", BLOCKERS: "Blockers"}
_MAX_LABEL = 40


@dataclass(frozen=True)
class Roles:
    """The index of the question that asks what was done, what is planned, what blocks; None: none does."""

    done: int | None
    plan: int | None
    blockers: int | None


def question_roles(questions: Sequence[str]) -> Roles:
    """Tell which questions ask about yesterday, today and blockers.

    By their words ("Anything blocking you?"); without such words the last question is the
    blockers question, unless it already asks about yesterday or today, or is the only one.
    """
    done = question_index(questions, DONE)
    plan = question_index(questions, PLAN)
    blockers = question_index(questions, BLOCKERS)
    last = len(questions) - 1
    if blockers is None and last >= 1 and last not in (done, plan):
        blockers = last
    return Roles(done, plan, blockers)


def question_labels(questions: Sequence[str]) -> tuple[str, ...]:
    """Return a short label per question: "Yesterday", "Today", "Blockers", else the question itself."""
    roles = question_roles(questions)
    named = {roles.done: LABELS[DONE], roles.plan: LABELS[PLAN], roles.blockers: LABELS[BLOCKERS]}
    labels = []
    for index, question in enumerate(questions):
        label = named.get(index) or " ".join(question.split())
        if len(label) > _MAX_LABEL:
            label = label[:_MAX_LABEL].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
        labels.append(label)
    return tuple(labels)


def report_text(report: Report) -> str:
    """Return the text of a member's replies joined in order, one after the other."""
    return "\n".join(reply.text for reply in report.replies if reply.text.strip())


# The answers of each report split so far, while `answers_remembered` is in effect.
_remembered: ContextVar[dict[tuple[Report, tuple[str, ...]], Answers] | None] = ContextVar(
    "remembered_answers", default=None
)


@contextmanager
def answers_remembered() -> Iterator[None]:
    """Within the block, split each report into its answers once however often they are asked for.

    A digest asks for every report's answers several times (the same-blocker check, the
    blocker escalations, the renderer); what is remembered is forgotten when the block ends.
    """
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)


def report_answers(report: Report, questions: Sequence[str]) -> Answers:
    """Split a member's report (all their replies, joined in order) into the questions' answers.

    The sections must be in what the member wrote: three loose replies are not read as
    one paragraph per question (the third would pass for a blocker). Once they are, each
    reply is its own paragraph, so a later "PS: …" reply is a note, not part of the last
    answer.
    """
    remembered = _remembered.get()
    if remembered is None:
        return _split_report(report, questions)
    key = (report, tuple(questions))
    answers = remembered.get(key)
    if answers is None:
        answers = remembered[key] = _split_report(report, questions)
    return answers


def _split_report(report: Report, questions: Sequence[str]) -> Answers:
    answers = split_answers(report_text(report), questions)
    texts = [reply.text for reply in report.replies if reply.text.strip()]
    if answers.structured and len(texts) > 1:
        apart = split_answers("\n\n".join(texts), questions)
        if apart.structured:
            return apart
    return answers


def _part(answers: Answers, index: int | None) -> str | None:
    if not answers.structured or index is None:
        return None
    part = answers.parts[index]
    return part.strip() if part and part.strip() else None


def blocker_of(answers: Answers, roles: Roles) -> str | None:
    """Return the blockers answer when it names a blocker; None when it is empty or absent."""
    part = _part(answers, roles.blockers)
    return None if part is None or is_empty_blocker(part) else part


def plan_of(answers: Answers, roles: Roles) -> str | None:
    """Return the answer to the "today" question, or None when there is none."""
    return _part(answers, roles.plan)


def reply_holding(report: Report, part: str) -> Reply:
    """Return the reply in which an answer was written (the last reply when it cannot tell)."""
    lines = part.strip().splitlines()
    first = lines[0] if lines else ""
    for reply in report.replies:
        if first and first in reply.text:
            return reply
    return report.replies[-1]


def previous_report(date: dt.date, replies: Sequence[Reply], questions: Sequence[str]) -> PreviousReport | None:
    """Read a member's earlier report (their replies of one date): what they planned and what blocked them.

    None when the replies make no report; a report without sections gives an unknown plan
    and an unknown blocker.
    """
    reports = group_reports(replies)
    if len(reports) != 1:
        return None
    answers = report_answers(reports[0], questions)
    if not answers.structured:
        return PreviousReport(date, None, None)
    roles = question_roles(questions)
    blocker = None if roles.blockers is None else blocker_of(answers, roles) or ""
    return PreviousReport(date, plan_of(answers, roles), blocker)

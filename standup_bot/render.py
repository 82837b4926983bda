"""Render a day's digest as an email subject, a plain-text part and an HTML part."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from standup_bot.answers import same_blocker
from standup_bot.markup import defuse_entities, is_safe_url, one_line, to_html, to_text
from standup_bot.model import Addendum, Change, Digest, LongBlocker, PreviousReport, Report
from standup_bot.structured import (
    Roles,
    blocker_of,
    question_labels,
    question_roles,
    report_answers,
)


@dataclass(frozen=True)
class RenderedDigest:
    """The digest ready to mail: a one-line subject and the two alternative bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _ReplyView:
    text: str  # plain text, possibly several lines
    html: Markup
    edited: bool
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Piece:
    """A piece of user text rendered both ways."""

    text: str  # plain text, possibly several lines
    html: Markup


@dataclass(frozen=True)
class _PlanView:
    date: str
    text: str
    html: Markup


@dataclass(frozen=True)
class _AnswerView:
    label: str
    text: str
    html: Markup
    planned: _PlanView | None = None  # what they planned last time, under their "yesterday" answer


@dataclass(frozen=True)
class _ReportView:
    name: str
    replies: tuple[_ReplyView, ...]  # shown as typed when the report has no recognisable sections
    answers: tuple[_AnswerView, ...] = ()  # shown instead when it has
    note: _Piece | None = None  # what a structured report says outside its sections
    edited: bool = False
    files: tuple[str, ...] = ()
    planned: _PlanView | None = None  # the plan, when there is no "yesterday" answer to show it under


@dataclass(frozen=True)
class _BlockerView:
    name: str
    text: str
    html: Markup
    change: str  # "new since last time", "same as last time", or "" when unknown


@dataclass(frozen=True)
class _LongBlockerView:
    name: str
    days: int
    since: str
    text: str
    html: Markup


@dataclass(frozen=True)
class _ChangeView:
    kind: str  # "late", "edited", "deleted"
    label: str  # e.g. "late reply (12:40)"
    text: str
    html: Markup
    files: tuple[str, ...]


@dataclass(frozen=True)
class _MemberChangesView:
    name: str
    changes: tuple[_ChangeView, ...]


@functools.cache
def _environment(*, html: bool) -> Environment:
    """Build (once) the Jinja environment for one of the two parts."""
    return Environment(
        loader=PackageLoader("standup_bot", "templates"),
        # Only the HTML part is escaped: escaping the text part would show "&amp;" to readers.
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _line(text: str) -> str:
    """Flatten a name or question to one line that cannot read as a raw Slack entity."""
    return defuse_entities(one_line(text))


def digest_subject(digest: Digest) -> str:
    """Return the digest's subject line, e.g. ``Standup digest for #dev, 2026-03-02 (2 of 3 reported)``.

    The channel name comes from Slack, so it is flattened to one line: a CR or LF in a
    subject would let it add mail headers.
    """
    reported, expected = _counts(digest)
    channel = _line(digest.channel_name) or digest.channel_id
    return f"Standup digest for #{channel}, {digest.date.isoformat()} ({reported} of {expected} reported)"


def _counts(digest: Digest) -> tuple[int, int]:
    """Count the expected members who reported, and how many were expected.

    Without an expected list, everyone who reported or is missing counts.
    """
    reporters = {report.user for report in digest.reports}
    if digest.expected:
        return len(reporters & set(digest.expected)), len(digest.expected)
    return len(reporters), len(reporters | set(digest.missing))


def _name(digest: Digest, user: str) -> str:
    return _line(digest.user_names.get(user, user)) or user


def _thread_url(digest: Digest) -> str | None:
    """Return the thread's permalink if it is a plain http(s) URL, else None (no link at all)."""
    url = digest.thread_url or ""
    if not url or not is_safe_url(url) or url.lower().startswith("mailto:"):
        return None
    return url if one_line(url) == url and " " not in url else None


def _piece(digest: Digest, text: str) -> _Piece:
    """Render a piece of Slack markup as plain text and as escaped HTML."""
    return _Piece(
        text=to_text(text, digest.user_names, digest.channel_names).strip(),
        html=to_html(text.strip(), digest.user_names, digest.channel_names),
    )


def _plan_view(digest: Digest, previous: PreviousReport | None) -> _PlanView | None:
    if previous is None or not previous.plan:
        return None
    piece = _piece(digest, previous.plan)
    return _PlanView(date=previous.date.isoformat(), text=piece.text, html=piece.html)


def _report_view(digest: Digest, report: Report, roles: Roles, labels: tuple[str, ...]) -> _ReportView:
    replies = tuple(
        _ReplyView(
            text=to_text(reply.text, digest.user_names, digest.channel_names).strip(),
            html=to_html(reply.text.strip(), digest.user_names, digest.channel_names),
            edited=reply.edited,
            files=tuple(_line(name) or "(unnamed)" for name in reply.files),
        )
        for reply in report.replies
    )
    planned = _plan_view(digest, digest.previous.get(report.user))
    answers = report_answers(report, digest.questions)
    name = _name(digest, report.user)
    if not answers.structured:
        return _ReportView(name=name, replies=replies, planned=planned)
    views: list[_AnswerView] = []
    for index, (label, part) in enumerate(zip(labels, answers.parts, strict=True)):
        if part is None or not part.strip():
            continue
        piece = _piece(digest, part)
        under = planned if index == roles.done else None
        planned = None if under is not None else planned
        views.append(_AnswerView(label=label, text=piece.text, html=piece.html, planned=under))
    return _ReportView(
        name=name, replies=replies, answers=tuple(views),
        note=_piece(digest, answers.note) if answers.note.strip() else None,
        edited=any(reply.edited for reply in report.replies),
        files=tuple(file for reply in replies for file in reply.files),
        planned=planned,
    )


def _blocker_views(digest: Digest, roles: Roles) -> list[_BlockerView]:
    """Return each reporter's blocker, in the order of the reports, marked new or the same as last time."""
    views = []
    for report in digest.reports:
        blocker = blocker_of(report_answers(report, digest.questions), roles)
        if blocker is None:
            continue
        previous = digest.previous.get(report.user)
        change = ""
        if previous is not None and previous.blocker is not None:
            same = bool(previous.blocker) and same_blocker(previous.blocker, blocker)
            change = "same as last time" if same else "new since last time"
        piece = _piece(digest, blocker)
        views.append(_BlockerView(_name(digest, report.user), piece.text, piece.html, change))
    return views


def _long_blocker_view(digest: Digest, item: LongBlocker) -> _LongBlockerView:
    piece = _piece(digest, item.blocker)
    return _LongBlockerView(_name(digest, item.user), item.days, item.since.isoformat(), piece.text, piece.html)


def render_digest(digest: Digest) -> RenderedDigest:
    """Render the digest's subject, plain-text part and HTML part."""
    subject = digest_subject(digest)
    reported, expected = _counts(digest)
    roles = question_roles(digest.questions)
    labels = tuple(_line(label) for label in question_labels(digest.questions))
    context = {
        "subject": subject,
        "channel": _line(digest.channel_name) or digest.channel_id,
        "date": digest.date.isoformat(),
        "reported": reported,
        "expected": expected,
        "thread_url": _thread_url(digest),
        "from_store_only": digest.from_store_only,
        "questions": [_line(question) for question in digest.questions],
        "has_blockers_question": roles.blockers is not None,
        "blockers": _blocker_views(digest, roles),
        "long_blockers": [_long_blocker_view(digest, item) for item in digest.long_blockers],
        "reports": [_report_view(digest, report, roles, labels) for report in digest.reports],
        "missing": [_name(digest, user) for user in digest.missing],
        "away": [_name(digest, user) for user in digest.away],
        "not_yet_due": [_name(digest, user) for user in digest.not_yet_due],
    }
    text = _environment(html=False).get_template("digest.txt.j2").render(context)
    html = _environment(html=True).get_template("digest.html.j2").render(context)
    return RenderedDigest(subject=subject, text=text, html=html)


_CHANGE_LABELS = {"late": "late reply ({})", "edited": "edited (reply of {})", "deleted": "deleted (reply of {})"}


def addendum_subject(addendum: Addendum) -> str:
    """Return an addendum's subject, e.g. ``Standup addendum for #dev, 2026-03-02 (2 changes)``.

    Short, like the digest's: what the changes are relative to is in the body.
    """
    context = addendum.context
    channel = _line(context.channel_name) or context.channel_id
    count = len(addendum.changes)
    return f"Standup addendum for #{channel}, {context.date.isoformat()} ({count} change{'' if count == 1 else 's'})"


def _change_view(context: Digest, change: Change) -> _ChangeView:
    piece = _piece(context, change.reply.text)
    return _ChangeView(
        kind=change.kind, label=_CHANGE_LABELS[change.kind].format(change.posted), text=piece.text,
        html=piece.html, files=tuple(_line(name) or "(unnamed)" for name in change.reply.files),
    )


def render_addendum(addendum: Addendum) -> RenderedDigest:
    """Render an addendum: the replies added, edited or deleted since the digest, by member."""
    context = addendum.context
    subject = addendum_subject(addendum)
    by_member: dict[str, list[_ChangeView]] = {}
    for change in addendum.changes:
        by_member.setdefault(change.reply.user, []).append(_change_view(context, change))
    values = {
        "subject": subject,
        "channel": _line(context.channel_name) or context.channel_id,
        "date": context.date.isoformat(),
        "number": addendum.number,
        "since": addendum.since,
        "since_at": addendum.since_at,
        "count": len(addendum.changes),
        "thread_url": _thread_url(context),
        "members": [
            _MemberChangesView(_name(context, user), tuple(views)) for user, views in by_member.items()
        ],
    }
    text = _environment(html=False).get_template("addendum.txt.j2").render(values)
    html = _environment(html=True).get_template("addendum.html.j2").render(values)
    return RenderedDigest(subject=subject, text=text, html=html)

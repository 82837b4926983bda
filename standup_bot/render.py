"""Render a day's digest as an email subject, a plain-text part and an HTML part."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from standup_bot.answers import Answers, same_blocker
from standup_bot.markup import defuse_entities, is_safe_url, one_line, to_text_and_html
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


# The views below are built for every report (tuples: cheaper to make than frozen dataclasses).
class _ReplyView(NamedTuple):
    text: str  # plain text, possibly several lines
    html: Markup
    edited: bool
    files: tuple[str, ...]


class _Piece(NamedTuple):
    """A piece of user text rendered both ways."""

    text: str  # plain text, possibly several lines
    html: Markup


class _PlanView(NamedTuple):
    date: str
    text: str
    html: Markup


class _AnswerView(NamedTuple):
    label: str
    text: str
    html: Markup
    planned: _PlanView | None = None  # what they planned last time, under their "yesterday" answer


class _ReportView(NamedTuple):
    name: str
    replies: tuple[_ReplyView, ...]  # shown as typed when the report has no recognisable sections
    answers: tuple[_AnswerView, ...] = ()  # shown instead when it has
    note: _Piece | None = None  # what a structured report says outside its sections
    edited: bool = False
    files: tuple[str, ...] = ()
    planned: _PlanView | None = None  # the plan, when there is no "yesterday" answer to show it under


class _BlockerView(NamedTuple):
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


class _Pieces:
    """Render pieces of Slack markup for one digest, each text once ("none" is many members' blockers)."""

    def __init__(self, digest: Digest) -> None:
        self._users = digest.user_names
        self._channels = digest.channel_names
        self._done: dict[str, _Piece] = {}

    def __call__(self, text: str) -> _Piece:
        """Render a piece of Slack markup as plain text and as escaped HTML."""
        piece = self._done.get(text)
        if piece is None:
            piece = self._done[text] = _Piece(*to_text_and_html(text, self._users, self._channels))
        return piece


def _plan_view(pieces: _Pieces, previous: PreviousReport | None) -> _PlanView | None:
    if previous is None or not previous.plan:
        return None
    piece = pieces(previous.plan)
    return _PlanView(date=previous.date.isoformat(), text=piece.text, html=piece.html)


def _files(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_line(name) or "(unnamed)" for name in names)


def _reply_views(pieces: _Pieces, report: Report) -> tuple[_ReplyView, ...]:
    views = []
    for reply in report.replies:
        piece = pieces(reply.text)
        views.append(_ReplyView(piece.text, piece.html, reply.edited, _files(reply.files)))
    return tuple(views)


def _report_view(
    digest: Digest, pieces: _Pieces, report: Report, answers: Answers, roles: Roles, labels: tuple[str, ...]
) -> _ReportView:
    planned = _plan_view(pieces, digest.previous.get(report.user))
    name = _name(digest, report.user)
    if not answers.structured:
        return _ReportView(name=name, replies=_reply_views(pieces, report), planned=planned)
    views: list[_AnswerView] = []
    for index, (label, part) in enumerate(zip(labels, answers.parts, strict=True)):
        if part is None or not part.strip():
            continue
        piece = pieces(part)
        under = planned if index == roles.done else None
        planned = None if under is not None else planned
        views.append(_AnswerView(label=label, text=piece.text, html=piece.html, planned=under))
    return _ReportView(
        # The replies as typed are shown only when there is no answer to show.
        name=name, replies=() if views else _reply_views(pieces, report), answers=tuple(views),
        note=pieces(answers.note) if answers.note.strip() else None,
        edited=any(reply.edited for reply in report.replies),
        files=tuple(file for reply in report.replies for file in _files(reply.files)),
        planned=planned,
    )


def _blocker_views(
    digest: Digest, pieces: _Pieces, answers: Sequence[Answers], roles: Roles
) -> list[_BlockerView]:
    """Return each reporter's blocker, in the order of the reports, marked new or the same as last time."""
    views = []
    for report, report_answers_ in zip(digest.reports, answers, strict=True):
        blocker = blocker_of(report_answers_, roles)
        if blocker is None:
            continue
        previous = digest.previous.get(report.user)
        change = ""
        if previous is not None and previous.blocker is not None:
            same = bool(previous.blocker) and same_blocker(previous.blocker, blocker)
            change = "same as last time" if same else "new since last time"
        piece = pieces(blocker)
        views.append(_BlockerView(_name(digest, report.user), piece.text, piece.html, change))
    return views


def _long_blocker_view(digest: Digest, pieces: _Pieces, item: LongBlocker) -> _LongBlockerView:
    piece = pieces(item.blocker)
    return _LongBlockerView(_name(digest, item.user), item.days, item.since.isoformat(), piece.text, piece.html)


def render_digest(digest: Digest) -> RenderedDigest:
    """Render the digest's subject, plain-text part and HTML part."""
    subject = digest_subject(digest)
    reported, expected = _counts(digest)
    roles = question_roles(digest.questions)
    labels = tuple(_line(label) for label in question_labels(digest.questions))
    pieces = _Pieces(digest)
    # Each report is split into its answers once, for its blocker and for its section.
    answers = [report_answers(report, digest.questions) for report in digest.reports]
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
        "blockers": _blocker_views(digest, pieces, answers, roles),
        "long_blockers": [_long_blocker_view(digest, pieces, item) for item in digest.long_blockers],
        "reports": [
            _report_view(digest, pieces, report, split, roles, labels)
            for report, split in zip(digest.reports, answers, strict=True)
        ],
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


def _change_view(pieces: _Pieces, change: Change) -> _ChangeView:
    piece = pieces(change.reply.text)
    return _ChangeView(
        kind=change.kind, label=_CHANGE_LABELS[change.kind].format(change.posted), text=piece.text,
        html=piece.html, files=_files(change.reply.files),
    )


def render_addendum(addendum: Addendum) -> RenderedDigest:
    """Render an addendum: the replies added, edited or deleted since the digest, by member."""
    context = addendum.context
    subject = addendum_subject(addendum)
    pieces = _Pieces(context)
    by_member: dict[str, list[_ChangeView]] = {}
    for change in addendum.changes:
        by_member.setdefault(change.reply.user, []).append(_change_view(pieces, change))
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

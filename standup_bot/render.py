"""Render a day's digest as an email subject, a plain-text part and an HTML part."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from standup_bot.markup import defuse_entities, is_safe_url, one_line, to_html, to_text
from standup_bot.model import Digest, Report


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
class _ReportView:
    name: str
    replies: tuple[_ReplyView, ...]


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


def _report_view(digest: Digest, report: Report) -> _ReportView:
    replies = tuple(
        _ReplyView(
            text=to_text(reply.text, digest.user_names, digest.channel_names).strip(),
            html=to_html(reply.text.strip(), digest.user_names, digest.channel_names),
            edited=reply.edited,
            files=tuple(_line(name) or "(unnamed)" for name in reply.files),
        )
        for reply in report.replies
    )
    return _ReportView(name=_name(digest, report.user), replies=replies)


def render_digest(digest: Digest) -> RenderedDigest:
    """Render the digest's subject, plain-text part and HTML part."""
    subject = digest_subject(digest)
    reported, expected = _counts(digest)
    context = {
        "subject": subject,
        "channel": _line(digest.channel_name) or digest.channel_id,
        "date": digest.date.isoformat(),
        "reported": reported,
        "expected": expected,
        "thread_url": _thread_url(digest),
        "from_store_only": digest.from_store_only,
        "questions": [_line(question) for question in digest.questions],
        "reports": [_report_view(digest, report) for report in digest.reports],
        "missing": [_name(digest, user) for user in digest.missing],
        "away": [_name(digest, user) for user in digest.away],
        "not_yet_due": [_name(digest, user) for user in digest.not_yet_due],
    }
    text = _environment(html=False).get_template("digest.txt.j2").render(context)
    html = _environment(html=True).get_template("digest.html.j2").render(context)
    return RenderedDigest(subject=subject, text=text, html=html)

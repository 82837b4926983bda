"""`standup.py addendum`: email what changed in a day's thread after its digest went out.

Replies keep coming after the digest: late reports, edits, deletions. An addendum lists
only those, relative to the version of each reply the recipients were last mailed (by the
digest or an earlier addendum), at most once per ADDENDUM_INTERVAL and never for nothing.
Like the digest it reads the thread back first (the thread is the truth), claims its run in
`stage_runs` (stage "addendum N"), records who the mail server accepted it for, and after a
partial refusal sends the same addendum to the others on the next run, nobody twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence

from . import mail, markup, render, stages
from .errors import MailError, SlackError, StageError
from .model import Addendum, Change, Digest, Reply, Report, ts_key
from .stages import Context
from .store import Mailing

log = logging.getLogger(__name__)

LATE, EDITED, DELETED = "late", "edited", "deleted"


def reply_version(reply: Reply) -> str:
    """Return a short fingerprint of what a reply says (its text and file names)."""
    data = json.dumps([reply.text, list(reply.files)], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def shown_versions(reports: Iterable[Report]) -> dict[str, str]:
    """Return reply ts -> version for every reply the reports show."""
    return {reply.ts: reply_version(reply) for report in reports for reply in report.replies}


def changes_since(
    mailed: Mapping[str, str], current: Sequence[Reply], last_seen: Mapping[str, Reply]
) -> list[tuple[str, Reply]]:
    """Return the replies added, edited or deleted since they were mailed, in the thread's order.

    `mailed` maps ts to the version last mailed ('' for a deletion already told);
    `current` is the thread now; `last_seen` gives the text of a reply that is gone. A reply
    emptied of text and files counts as deleted, as the digest would leave it out.
    """
    now = {reply.ts: reply for reply in current if reply.text.strip() or reply.files}
    found: list[tuple[str, Reply]] = []
    for ts, reply in now.items():
        version = mailed.get(ts)
        if not version:
            found.append((LATE, reply))
        elif version != reply_version(reply):
            found.append((EDITED, reply))
    for ts, version in mailed.items():
        if version and ts not in now:
            found.append((DELETED, last_seen.get(ts) or Reply(ts, "", "")))
    return sorted(found, key=lambda change: ts_key(change[1].ts))


def record_digest(ctx: Context, date: dt.date, digest: Digest) -> None:
    """Remember which version of each reply the digest showed, and when it went out."""
    ctx.store.record_digest_mailing(ctx.channel, date, shown_versions(digest.reports), ctx.now())


def addendum(ctx: Context, date: dt.date, *, force: bool = False) -> None:
    """Email the replies added, edited or deleted since the date's digest (or its last addendum).

    Nothing is sent before the digest, when nothing changed, or (unless `force`) before
    ADDENDUM_INTERVAL minutes have passed since the last email; each case is said and is
    not an error. A failure exits 1 (StandupError) and the next run tries again.
    """
    try:
        _addendum(ctx, date, force=force)
    except (SlackError, MailError, StageError) as exc:
        # A failure is worth a ping to /fail; a success is not pinged (it runs every few minutes
        # and must not mark a failed digest as fine).
        ctx.notify("addendum", date, str(exc))
        raise


def _addendum(ctx: Context, date: dt.date, *, force: bool) -> None:
    settings, store, channel = ctx.settings, ctx.store, ctx.channel
    digest_run = store.stage_run(channel, date, "digest")
    prompt_ts = store.prompt_ts(channel, date)
    if digest_run is None or digest_run.status != "done" or prompt_ts is None:
        ctx.say(f"no digest was sent for {date} yet: an addendum only follows the digest; nothing to do")
        return
    mailings = store.mailings(channel, date)
    unfinished = [m for m in mailings if m.kind == "addendum" and m.status == "partial"]
    if unfinished:
        _finish_partial(ctx, date, unfinished[-1])
        return
    stored = store.stored_replies(channel, date)  # as last seen, before the thread read updates it
    late = store.late_replies(channel, date)
    replies, from_store_only = stages.current_replies(ctx, date, prompt_ts)
    if from_store_only:
        raise SlackError(
            f"could not read the thread of {date} from Slack, so no addendum was sent "
            "(the thread is the truth); the next `standup.py addendum` tries again"
        )
    sent = [m for m in mailings if m.status in ("sent", "partial")]
    if sent:
        last = sent[-1]
        mailed = store.mailed_versions(channel, date)
        base = last.sent_at or last.created_at
        since = "the digest" if last.kind == "digest" else f"addendum {last.number}"
    else:
        # The digest went out before the bot recorded what digests show: take the replies
        # the listener had before the digest as shown (edits it recorded since are missed).
        mailed = {s.reply.ts: reply_version(s.reply) for s in stored if not s.deleted and s.reply.ts not in late}
        base = dt.datetime.fromisoformat(digest_run.finished_at) if digest_run.finished_at else ctx.now()
        since = "the digest"
    zone = settings.zone
    since_at = f"{base.astimezone(zone):%H:%M %Z}"
    found = changes_since(mailed, replies, {s.reply.ts: s.reply for s in stored})
    if not found:
        ctx.say(f"nothing new since {since} for {date} (sent {since_at}); no addendum sent")
        return
    next_at = base + dt.timedelta(minutes=settings.addendum_interval)
    if ctx.now() < next_at and not force:
        ctx.say(
            f"{len(found)} change(s) since {since} for {date}; next addendum possible at "
            f"{next_at.astimezone(zone):%H:%M %Z} (ADDENDUM_INTERVAL {settings.addendum_interval} min)"
        )
        return
    number = 1 + max((m.number for m in sent if m.kind == "addendum"), default=0)
    stage = f"addendum {number}"
    claimed, _ = stages._claim(ctx, date, stage, False)
    if not claimed:
        return
    try:
        content = _build(ctx, date, prompt_ts, number, since, since_at, found)
        rendered = render.render_addendum(content)
        versions = {reply.ts: "" if kind == DELETED else reply_version(reply) for kind, reply in found}
        store.start_addendum(
            channel, date, number, subject=rendered.subject, text=rendered.text, html=rendered.html,
            versions=versions, now=ctx.now(),
        )
        recipients = _send(ctx, date, number, rendered.subject, rendered.text, rendered.html)
    except (SlackError, StageError) as exc:
        store.finish_addendum(channel, date, number, "failed", now=ctx.now(), error=str(exc))
        stages._fail(ctx, date, stage, exc)
        raise
    counts = {kind: sum(1 for k, _ in found if k == kind) for kind in (LATE, EDITED, DELETED)}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    log.info("addendum %d for %s sent to %s", number, date, ", ".join(recipients))
    ctx.say(f"addendum {number} for {date} sent to {len(recipients)} recipient(s): {summary} since {since}")


def _finish_partial(ctx: Context, date: dt.date, mailing: Mailing) -> None:
    """Send an addendum the mail server refused for some recipients to those, as it was."""
    stage = f"addendum {mailing.number}"
    claimed, _ = stages._claim(ctx, date, stage, False)
    if not claimed:
        return
    recipients = _send(ctx, date, mailing.number, mailing.subject, mailing.text, mailing.html)
    ctx.say(f"addendum {mailing.number} for {date} sent to the {len(recipients)} remaining recipient(s)")


def _send(ctx: Context, date: dt.date, number: int, subject: str, text: str, html: str) -> list[str]:
    """Mail an addendum to the recipients who do not have it yet; record who the server accepted it for."""
    settings, store, channel = ctx.settings, ctx.store, ctx.channel
    kind = f"addendum {number}"
    already = store.delivered(channel, date, kind)
    recipients = [r for r in settings.digest_recipients if r not in already]
    try:
        message = mail.build_message(
            subject=subject, text=text, html=html, mail_from=settings.mail_from,
            recipients=settings.digest_recipients, now=ctx.now(),
        )
        if recipients:
            mail.send_message(
                message, smtp=stages.smtp_settings(settings), mail_from=settings.mail_from,
                recipients=recipients, sleep=ctx.sleep,
            )
    except MailError as exc:
        # Those who accepted it must not get it again; the others get this same addendum next time.
        store.record_delivery(channel, date, kind, exc.delivered_to)
        status = "partial" if already or exc.delivered_to else "failed"
        store.finish_addendum(channel, date, number, status, now=ctx.now(), error=str(exc))
        stages._fail(ctx, date, kind, exc)
        raise
    store.record_delivery(channel, date, kind, recipients)
    store.finish_addendum(channel, date, number, "sent", now=ctx.now())
    store.finish_stage(channel, date, kind, ctx.owner)
    return recipients


def _build(
    ctx: Context, date: dt.date, prompt_ts: str, number: int, since: str, since_at: str,
    found: Sequence[tuple[str, Reply]],
) -> Addendum:
    """Gather what the addendum shows: the changes, names, the thread's link."""
    zone = ctx.settings.zone
    users = {reply.user for _, reply in found if reply.user}
    channels = {ctx.channel}
    for _, reply in found:
        users |= markup.mentioned_user_ids(reply.text)
        channels |= markup.mentioned_channel_ids(reply.text)
    names = {user: stages.user_name(ctx, user) for user in sorted(users)}
    names[""] = "Someone"  # a deleted reply the bot never saw whole
    channel_names = {c: stages._channel_name(ctx, c) for c in sorted(channels)}
    try:
        thread_url: str | None = ctx.slack.permalink(ctx.channel, prompt_ts)
    except SlackError as exc:
        log.warning("no permalink for the prompt: %s", exc)
        thread_url = None
    context = Digest(
        date=date, channel_id=ctx.channel, channel_name=channel_names[ctx.channel],
        questions=ctx.settings.questions, reports=(), missing=(), user_names=names,
        channel_names=channel_names, thread_url=thread_url,
    )
    changes = tuple(
        Change(kind, reply, dt.datetime.fromtimestamp(ts_key(reply.ts)[0], dt.UTC).astimezone(zone).strftime("%H:%M"))
        for kind, reply in found
    )
    return Addendum(context=context, number=number, since=since, since_at=since_at, changes=changes)

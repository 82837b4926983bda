"""Sanity checks after each digest (after the SanityBot idea): notice what a team lead should.

- missed_standups: an expected member without a report at SANITY_MISSED_DAYS standups in a
  row (days away, by `/standup away` or by a Slack status that day, are skipped): a DM to
  each of BLOCKER_CONTACTS, with a "Mark handled" button.
- same_blocker: the same blocker (answers.same_blocker: by similarity, not exact text) in
  SANITY_BLOCKER_DAYS of a member's reports in a row: the digest says "Blocked for N days",
  and each of BLOCKER_CONTACTS gets a DM with the button.
- nobody_answered: no report at all although members were expected: a note in the channel,
  in the thread of that day's prompt.

Each finding is a row in `findings`, open until handled (`standup.py checks handle ID` or
the button). The same finding (kind and subject) is not raised again within
SANITY_REPEAT_DAYS. Inserting the row is the claim: only the process that inserted it
notifies; each message is recorded once Slack took it, so one that failed is retried by the
next digest's checks and nobody is told twice. A check that fails is logged and said; it
never fails the digest, which has gone out by then.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .answers import same_blocker
from .errors import SlackError, StoreError
from .markup import one_line, to_text
from .model import Digest, LongBlocker
from .reports import group_reports
from .settings import SANITY_CHECK_NAMES, Settings
from .slack import SlackApi
from .store import Finding, Store
from .structured import Roles, blocker_of, question_roles, report_answers

if TYPE_CHECKING:
    from .stages import Context  # stages calls these checks

log = logging.getLogger(__name__)

MISSED, BLOCKER, SILENCE = SANITY_CHECK_NAMES
FINDING_HANDLED_ACTION = "finding_handled"  # the "Mark handled" button in a finding's DM
CHANNEL_KEY = "channel"  # `notified` key of a note posted in the channel
LOOKBACK = 60  # standup dates (or reports) looked back at, at most
_MAX_BLOCKER_CHARS = 200


# -- pure decisions ------------------------------------------------------------------------
def missed_run(
    member: str, dates: Sequence[dt.date], reporters: Mapping[dt.date, set[str]],
    away: Mapping[dt.date, set[str]],
) -> list[dt.date]:
    """Return the standups the member missed in a row, newest first, walking back from `dates[0]`.

    `dates` are standup dates, newest first. A date they reported ends the run; a date
    they were away neither ends it nor counts.
    """
    run: list[dt.date] = []
    for date in dates:
        if member in reporters.get(date, set()):
            break
        if member in away.get(date, set()):
            continue
        run.append(date)
    return run


def blocker_run(
    date: dt.date, blocker: str, earlier: Iterator[tuple[dt.date, str | None]]
) -> tuple[int, dt.date]:
    """Count the reports in a row that name the same blocker, today's included; return it and the first date.

    `earlier` yields the member's earlier reports, newest first, with their blocker (None:
    none). Each is compared with the next newer one, as the digest's "same as last time".
    """

    def step(before: Mapping[str, dt.date]) -> dict[str, tuple[dt.date, str | None]]:
        found = next(earlier, None)
        return {} if found is None else {"": found}

    return blocker_runs(date, {"": blocker}, step)[""]


def blocker_runs(
    date: dt.date, blockers: Mapping[str, str],
    earlier: Callable[[Mapping[str, dt.date]], Mapping[str, tuple[dt.date, str | None]]],
) -> dict[str, tuple[int, dt.date]]:
    """Return `blocker_run` for many members, stepping back one report at a time for all of them.

    `earlier` is given, for each member whose run goes on, the date to look before, and
    returns their report before it (its date and blocker, None: none), leaving out those
    without one. It is asked at most LOOKBACK times, each time only about the members
    still in a run, so thousands of members cost a few bulk reads, not a walk each.
    """
    runs = {user: (1, date) for user in blockers}
    newer = dict(blockers)  # the blocker each member's next older one is compared with
    before = dict.fromkeys(blockers, date)
    for _ in range(LOOKBACK):
        if not before:
            break
        going: dict[str, dt.date] = {}
        for user, (day, older) in earlier(before).items():
            if user not in before or older is None or not same_blocker(older, newer[user]):
                continue
            runs[user] = (runs[user][0] + 1, day)
            newer[user], going[user] = older, day
        before = going
    return runs


# -- before the digest: "Blocked for N days" -------------------------------------------------
def long_blockers(ctx: Context, date: dt.date, digest: Digest) -> tuple[LongBlocker, ...]:
    """Return the blockers reported SANITY_BLOCKER_DAYS reports in a row or more (never raises)."""
    settings = ctx.settings
    if BLOCKER not in settings.sanity_checks:
        return ()
    roles = question_roles(settings.questions)
    try:
        blockers: dict[str, str] = {}
        for report in digest.reports:
            blocker = blocker_of(report_answers(report, settings.questions), roles)
            if blocker is not None:
                blockers[report.user] = blocker
        runs = blocker_runs(date, blockers, lambda before: _earlier_blockers(ctx, before, roles))
    except Exception as exc:  # a check must never keep the digest from going out
        log.exception("the same-blocker check for %s failed", date)
        ctx.say(f"warning: the same-blocker check for {date} failed ({exc}); the digest goes out without it")
        return ()
    return tuple(
        LongBlocker(user, days, since, blockers[user])
        for user, (days, since) in runs.items() if days >= settings.sanity_blocker_days
    )


def _earlier_blockers(
    ctx: Context, before: Mapping[str, dt.date], roles: Roles
) -> dict[str, tuple[dt.date, str | None]]:
    """Return each member's report before their date (its date and blocker), in one store read per date.

    The members usually share one date (the last standup each reported at), so this is
    one bulk read for all of them, not one per member.
    """
    members_before: dict[dt.date, list[str]] = {}
    for user, day in before.items():
        members_before.setdefault(day, []).append(user)
    found: dict[str, tuple[dt.date, str | None]] = {}
    for day, users in members_before.items():
        for user, (earlier_day, replies) in ctx.store.previous_replies_of(ctx.channel, users, day).items():
            reports = group_reports(replies)
            blocker = blocker_of(report_answers(reports[0], ctx.settings.questions), roles) if reports else None
            found[user] = (earlier_day, blocker)
    return found


# -- after the digest: findings ------------------------------------------------------------
def after_digest(ctx: Context, date: dt.date, digest: Digest) -> list[Finding]:
    """Run the configured checks on the day just mailed, record and notify what they find.

    Return the new findings. Never raises: a failure is logged and said.
    """
    checks = ctx.settings.sanity_checks
    raised: list[Finding] = []
    try:
        if MISSED in checks:
            raised += _check_missed(ctx, date, digest)
        if BLOCKER in checks:
            raised += _check_blockers(ctx, date, digest)
        if SILENCE in checks:
            raised += _check_silence(ctx, date, digest)
        failed = notify_open_findings(ctx)
    except Exception as exc:  # the digest went out; a check must not turn that into a failure
        log.exception("the sanity checks for %s failed", date)
        ctx.say(f"warning: the sanity checks for {date} failed ({exc}); the digest was sent")
        return raised
    if raised:
        listed = ", ".join(f"#{finding.id} {finding.kind}" for finding in raised)
        ctx.say(f"sanity checks for {date}: {len(raised)} new finding(s) ({listed}); see `standup.py checks`")
    if failed:
        ctx.say(f"could not send {len(failed)} finding notice(s) ({', '.join(failed)}); retried after the next digest")
    return raised


def _repeat(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.sanity_repeat_days)


def _check_missed(ctx: Context, date: dt.date, digest: Digest) -> list[Finding]:
    settings, store, channel = ctx.settings, ctx.store, ctx.channel
    if not digest.missing:
        return []
    dates = [date, *(d for d in store.prompt_dates(channel, date, LOOKBACK) if d < date)]
    reporters = store.reporters_on(channel, dates[1:])
    reporters[date] = {report.user for report in digest.reports}
    away = {day: store.away_on(channel, day) for day in dates[1:]}
    away[date] = set(digest.away) | set(digest.not_yet_due) | store.away_on(channel, date)
    raised = []
    for member in digest.missing:
        run = missed_run(member, dates, reporters, away)
        if len(run) < settings.sanity_missed_days:
            continue
        name = one_line(digest.user_names.get(member, member))
        details = (
            f"{name} ({member}) has not reported at {len(run)} standups in a row, since {run[-1]} "
            "(days away not counted)"
        )
        finding = store.raise_finding(channel, MISSED, member, date, details, now=ctx.now(), repeat=_repeat(settings))
        if finding is not None:
            raised.append(finding)
    return raised


def _check_blockers(ctx: Context, date: dt.date, digest: Digest) -> list[Finding]:
    settings, store = ctx.settings, ctx.store
    raised = []
    for item in digest.long_blockers:
        name = one_line(digest.user_names.get(item.user, item.user))
        text = one_line(to_text(item.blocker, digest.user_names, digest.channel_names))
        if len(text) > _MAX_BLOCKER_CHARS:
            text = text[: _MAX_BLOCKER_CHARS - 1] + "…"
        details = f"{name} ({item.user}) has reported the same blocker {item.days} times in a row since {item.since}: {text}"
        # The blocker's key: the member and the first day of this run of it.
        subject = f"{item.user}:{item.since.isoformat()}"
        finding = store.raise_finding(
            ctx.channel, BLOCKER, subject, date, details, now=ctx.now(), repeat=_repeat(settings)
        )
        if finding is not None:
            raised.append(finding)
    return raised


def _check_silence(ctx: Context, date: dt.date, digest: Digest) -> list[Finding]:
    expected = [user for user in digest.expected if user not in digest.away]
    if digest.reports or not expected:
        return []
    details = f"nobody answered the standup of {date} ({len(expected)} member(s) expected)"
    finding = ctx.store.raise_finding(
        ctx.channel, SILENCE, "", date, details, now=ctx.now(), repeat=_repeat(ctx.settings)
    )
    return [finding] if finding is not None else []


# -- telling people ------------------------------------------------------------------------
def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def recipients(settings: Settings, finding: Finding) -> list[str]:
    """Return who is told of a finding: the contacts (never about themselves), or the channel."""
    if finding.kind == SILENCE:
        return [CHANNEL_KEY]
    member = finding.subject.split(":", 1)[0]
    return [contact for contact in settings.blocker_contacts if contact != member]


def finding_message(finding: Finding, zone: ZoneInfo) -> tuple[str, list[dict[str, Any]]]:
    """Return a finding's DM (text and blocks): what was found and, while open, a "Mark handled" button."""
    lead = {MISSED: ":warning: Missed standups", BLOCKER: ":rotating_light: Long-standing blocker"}.get(
        finding.kind, ":warning: Standup check"
    )
    text = f"{lead} in <#{finding.channel}> (standup {finding.date}): {_mrkdwn_escape(finding.details)}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if finding.handled_at is None:
        blocks.append({
            "type": "actions", "block_id": "standup_finding",
            "elements": [{
                "type": "button", "action_id": FINDING_HANDLED_ACTION, "value": str(finding.id),
                "text": {"type": "plain_text", "text": "Mark handled", "emoji": True}, "style": "primary",
            }],
        })
        note = f"Finding #{finding.id}; also `standup.py checks handle {finding.id}`"
    else:
        by = finding.handled_by or "someone"
        who = f"<@{by}>" if by[:1] in ("U", "W") and by.isalnum() else _mrkdwn_escape(by)
        note = f":white_check_mark: Finding #{finding.id} handled by {who}, {finding.handled_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        text += f"\n{note}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return text, blocks


def _channel_note(finding: Finding) -> str:
    return (
        f":wave: Nobody answered the standup of {finding.date}. Reply here if you still can; "
        "if the time or the questions no longer suit the team, say so here."
    )


def notify_open_findings(ctx: Context) -> list[str]:
    """Tell everyone not yet told of each open finding; return "#ID→who" for each notice that failed."""
    failed = []
    for finding in ctx.store.findings(ctx.channel):
        error: str | None = None  # the last failure of this pass, kept until all were told
        for to in recipients(ctx.settings, finding):
            if to in finding.notified:
                continue
            try:
                if to == CHANNEL_KEY:
                    # Under that day's prompt, where the answers were expected: the channel
                    # itself keeps one top-level message per standup.
                    where = ctx.channel
                    prompt_ts = ctx.store.prompt_ts(ctx.channel, finding.date)
                    ts = ctx.slack.post_message(where, _channel_note(finding), thread_ts=prompt_ts)
                else:
                    where = ctx.slack.open_dm(to)
                    text, blocks = finding_message(finding, ctx.settings.zone)
                    ts = ctx.slack.post_message(where, text, blocks=blocks)
            except SlackError as exc:
                log.error("could not tell %s of finding #%d: %s", to, finding.id, exc)
                error = str(exc)
                ctx.store.record_finding_notice(finding.id, to, None, error=error)
                failed.append(f"#{finding.id}→{to}")
                continue
            ctx.store.record_finding_notice(finding.id, to, (where, ts), error=error)
            log.info("told %s of finding #%d (%s)", to, finding.id, finding.kind)
    return failed


# -- handling ------------------------------------------------------------------------------
def mark_handled(
    settings: Settings, store: Store, slack: SlackApi | None, finding_id: int, by: str, now: dt.datetime,
    extra_message: tuple[str, str] | None = None,
) -> tuple[bool, Finding | None]:
    """Mark a finding handled and show it in its DMs (and `extra_message`); return (changed, finding).

    A DM that cannot be updated is only logged: the finding is handled all the same.
    """
    channel = settings.standup_channel
    changed = store.handle_finding(channel, finding_id, by, now)
    finding = store.finding(channel, finding_id)
    if finding is None or slack is None:
        return changed, finding
    messages = {where: ts for to, (where, ts) in finding.notified.items() if to != CHANNEL_KEY}
    if extra_message is not None:
        messages[extra_message[0]] = extra_message[1]
    text, blocks = finding_message(finding, settings.zone)
    for where, ts in messages.items():
        try:
            slack.update_message(where, ts, text, blocks=blocks)
        except SlackError as exc:
            log.warning("could not show finding #%d as handled in %s: %s", finding_id, where, exc)
    return changed, finding


def on_handled_button(settings: Settings, store: Store, slack: SlackApi, body: Mapping[str, Any], now: dt.datetime) -> str:
    """Handle a click on "Mark handled" (after the ack): mark the finding, update the DMs; return what was done."""
    user = (body.get("user") or {}).get("id")
    actions = body.get("actions") or []
    value = actions[0].get("value") if actions and isinstance(actions[0], Mapping) else None
    container = body.get("container") or {}
    where, ts = container.get("channel_id"), container.get("message_ts")
    if not isinstance(user, str) or not isinstance(value, str) or not value.isdigit():
        return "ignored"
    extra = (where, ts) if isinstance(where, str) and isinstance(ts, str) else None
    try:
        changed, finding = mark_handled(settings, store, slack, int(value), user, now, extra)
    except StoreError as exc:
        log.error("could not mark finding #%s handled: %s", value, exc)
        if extra is not None:
            slack.post_ephemeral(extra[0], user, "Sorry, I could not save that just now; please try again in a minute.")
        return "failed"
    if finding is None:
        if extra is not None:
            slack.post_ephemeral(extra[0], user, f"I know of no finding #{value} in this standup.")
        return "unknown"
    log.info("finding #%d %s by %s", finding.id, "handled" if changed else "was already handled, clicked", user)
    return "handled" if changed else "already handled"


def finding_lines(findings: Sequence[Finding], zone: ZoneInfo) -> list[str]:
    """Return one line per finding for `standup.py checks`."""
    lines = []
    for finding in findings:
        raised = finding.created_at.astimezone(zone)
        told = ", ".join(sorted(finding.notified)) or "nobody yet"
        problem = f"; last notice failed: {finding.notify_error}" if finding.notify_error else ""
        lines.append(
            f"#{finding.id} {finding.kind} ({finding.date}, raised {raised:%Y-%m-%d %H:%M %Z}): "
            f"{finding.details} [told: {told}{problem}]"
        )
    return lines

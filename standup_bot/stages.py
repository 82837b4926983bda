"""The three stages of a standup day (prompt, remind, digest) and `run`, which chains them.

Each stage claims its (channel, date, stage) row before acting and records the outcome
after, so it happens at most once per date whoever launches it (cron, `run`, a rerun
after a crash). Slack's thread is read back before reminding and before the digest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import socket
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Only markup at module level: render (jinja2), mail (email, smtplib), blockers and sanity
# (the answer splitter) are imported by the stages that use them, so `prompt` starts
# without them (docs/benchmarks.md, section 4; tests/test_startup.py checks the list).
from . import markup
from .errors import MailError, SlackError, StageError, StandupError, StoreError
from .member_time import member_remind_at, not_yet_due
from .messages import (
    PROMPT_EVENT_TYPE,
    REMINDER_EVENT_TYPE,
    build_prompt,
    build_reminder,
    prompt_metadata,
    reminder_metadata,
)
from .model import Digest, PreviousReport, Reply, Report, ts_key
from .reports import (
    group_reports,
    merge_replies,
    missing_members,
    replies_from_thread,
    status_means_away,
    who_to_remind,
)
from .settings import Settings
from .slack import AMBIGUOUS, USERS_LIST_FROM, SlackApi, display_name, is_human
from .store import Claim, StageRun, Store

if TYPE_CHECKING:
    from . import mail

log = logging.getLogger(__name__)

# As long as names and zones from users.info are trusted; the same as blockers.USER_CACHE_AGE
# (a test holds them equal), not imported from there to keep blockers out of `prompt`.
USER_CACHE_AGE = dt.timedelta(hours=12)
STAGES = ("prompt", "remind", "digest")


@dataclass
class Context:
    """What a stage needs: settings, the store, Slack, the clock, and where to tell the user."""

    settings: Settings
    store: Store
    slack: SlackApi
    now: Callable[[], dt.datetime]  # aware datetime
    sleep: Callable[[float], None]
    say: Callable[[str], None] = print
    # Told how each stage ended (error None on success), e.g. to ping HEALTHCHECK_URL.
    notify: Callable[[str, dt.date, str | None], None] = lambda stage, date, error: None
    owner: str = field(default_factory=lambda: this_owner())
    _bot: dict[str, Any] | None = None

    @property
    def channel(self) -> str:
        """Return the standup's channel ID."""
        return self.settings.standup_channel

    def today(self) -> dt.date:
        """Return today's date in the team's time zone."""
        return self.now().astimezone(self.settings.zone).date()

    def local(self, date: dt.date, time: dt.time) -> dt.datetime:
        """Return the aware datetime of a local time of day on a date."""
        return dt.datetime.combine(date, time, tzinfo=self.settings.zone)

    def bot(self) -> dict[str, Any]:
        """Return the bot's identity from auth.test (once per context)."""
        if self._bot is None:
            self._bot = self.slack.auth_test()
        return self._bot


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """Return a process's start time in clock ticks since boot ('' when unknown)."""
    try:
        # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def this_owner() -> str:
    """Return who claims a stage: host, pid, boot and process start, so a reused pid after a
    reboot is not mistaken for the claimant."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_boot_id()}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    """Tell whether the process that claimed a stage may still be running.

    On this host we ask the kernel (and compare the boot and the process's start time, in
    case the pid was reused). A claim from another host (a shared data dir) is assumed
    alive; the store lets any claim go after an hour, and `--force` overrides it.
    """
    host, pid, boot, start = [*owner.split(":"), "", "", ""][:4]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if boot and boot != _boot_id():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start or start == _start_time(int(pid)) or not _start_time(int(pid))


_Stage = TypeVar("_Stage", bound=Callable[..., Any])


def _reported(stage: str) -> Callable[[_Stage], _Stage]:
    """Tell `ctx.notify` how the stage ended, whatever the outcome."""

    def decorate(function: _Stage) -> _Stage:
        @functools.wraps(function)
        def run_stage(ctx: Context, date: dt.date, *, force: bool = False) -> Any:
            try:
                result = function(ctx, date, force=force)
            except StandupError as exc:
                ctx.notify(stage, date, str(exc))
                raise
            ctx.notify(stage, date, None)
            return result

        return cast(_Stage, run_stage)

    return decorate


def _claim(ctx: Context, date: dt.date, stage: str, force: bool) -> tuple[bool, StageRun | None]:
    claim, previous = ctx.store.claim_stage(
        ctx.channel, date, stage, ctx.owner, force=force, owner_alive=owner_alive
    )
    if claim is Claim.ALREADY_DONE:
        ctx.say(f"{stage} for {date} already done; nothing to do (use --force to do it again)")
        return False, previous
    if claim is Claim.IN_PROGRESS:
        owner = previous.owner if previous else "another process"
        ctx.say(f"{stage} for {date} is being done right now by {owner}; nothing to do")
        return False, previous
    return True, previous


def _fail(ctx: Context, date: dt.date, stage: str, exc: Exception) -> None:
    ctx.store.finish_stage(ctx.channel, date, stage, ctx.owner, error=str(exc))
    log.error("%s for %s failed: %s", stage, date, exc)


# -- prompt ------------------------------------------------------------------------------
@_reported("prompt")
def prompt(ctx: Context, date: dt.date, *, force: bool = False) -> None:
    """Post the day's prompt in the channel and store its ts."""
    claimed, previous = _claim(ctx, date, "prompt", force)
    if not claimed:
        return
    try:
        ts = None
        if previous is not None and previous.status != "done" and not force:
            # The last attempt died or failed mid-way (a timeout, say): it may have
            # posted before it could record the ts.
            ts = _find_posted_prompt(ctx, date)
        if ts is None:
            ts = _post_prompt_once(ctx, date)
        ctx.store.save_prompt(ctx.channel, date, ts)
    except (SlackError, MailError) as exc:
        _fail(ctx, date, "prompt", exc)
        raise
    ctx.store.finish_stage(ctx.channel, date, "prompt", ctx.owner)
    log.info("prompt for %s posted in %s (ts %s)", date, ctx.channel, ts)
    ctx.say(f"prompt for {date} posted in {ctx.channel}")


def _post_prompt_once(ctx: Context, date: dt.date, attempts: int = 3) -> str:
    """Post the prompt, retrying a post that may have landed only after looking for it."""
    for attempt in range(attempts):
        try:
            return _post_prompt(ctx, date)
        except SlackError as exc:
            if exc.code not in AMBIGUOUS or attempt + 1 == attempts:
                raise
            log.warning("posting the prompt may have failed (%s); checking before trying again", exc)
            # After a timeout, give a slow Slack as long to finish the post as we gave it to answer.
            slow = ctx.settings.slack_timeout if exc.code == "timeout" else 0.0
            ctx.sleep(max(slow, 2.0**attempt))
            try:
                found = _find_posted_prompt(ctx, date)
            except SlackError:
                found = None
            if found is not None:
                return found
    raise AssertionError("unreachable")  # the loop returns or raises


def _post_prompt(ctx: Context, date: dt.date) -> str:
    settings = ctx.settings
    late_by = None
    if date == ctx.today():
        late_by = dt.timedelta(seconds=ctx.now().timestamp() - ctx.local(date, settings.prompt_time).timestamp())
        late_by = late_by if late_by > dt.timedelta(minutes=30) else None
    text, blocks = build_prompt(
        settings.questions, date, settings.digest_time, settings.timezone, late_by=late_by
    )
    return ctx.slack.post_message(ctx.channel, text, blocks=blocks, metadata=prompt_metadata(date))


def _find_posted_prompt(ctx: Context, date: dt.date) -> str | None:
    oldest = ctx.local(date, dt.time(0, 0)) - dt.timedelta(days=1)
    for message in ctx.slack.recent_messages(ctx.channel, oldest=f"{oldest.timestamp():.6f}"):
        if _is_our(ctx, message, PROMPT_EVENT_TYPE, date):
            log.info("found the prompt for %s already posted (ts %s); not posting again", date, message["ts"])
            return str(message["ts"])
    return None


# -- reading the thread ------------------------------------------------------------------
def _prompt_ts(ctx: Context, date: dt.date, stage: str) -> str:
    ts = ctx.store.prompt_ts(ctx.channel, date)
    if ts is None:
        raise StageError(
            f"no prompt was posted for {date} in {ctx.channel}, so there is nothing to {stage}; "
            "run `standup.py prompt` first"
        )
    return ts


def current_replies(ctx: Context, date: dt.date, prompt_ts: str) -> tuple[list[Reply], bool]:
    """Return the day's replies: the thread read back from Slack merged with the store.

    The second value is True when the thread could not be read and only the listener's
    copy was used.
    """
    stored = ctx.store.stored_replies(ctx.channel, date)
    try:
        messages = ctx.slack.thread(ctx.channel, prompt_ts)
    except SlackError as exc:
        log.warning("could not read the thread for %s (%s); using the listener's copy", date, exc)
        return merge_replies(None, stored, prompt_ts), True
    # Only our own bot's form replies are reports; another app's look-alikes are not.
    bot = ctx.bot()
    thread = replies_from_thread(messages, prompt_ts, str(bot.get("user_id") or ""), str(bot.get("bot_id") or ""))
    # Replies newer than the newest message we read arrived during the read.
    newest = max((str(m.get("ts", "")) for m in messages), key=ts_key, default=prompt_ts)
    ctx.store.sync_thread(ctx.channel, date, thread, newest)
    return merge_replies(thread, stored, _after(newest)), False


def _after(ts: str) -> str:
    seconds, fraction = ts_key(ts)
    fraction += 1
    return f"{seconds + fraction // 1_000_000}.{fraction % 1_000_000:06d}"


def expected_members(ctx: Context) -> list[str]:
    """Return MEMBERS, or when empty, the channel's human members (not bots, not deleted)."""
    if ctx.settings.members:
        return list(ctx.settings.members)
    bot_user = ctx.bot().get("user_id")
    members = [user_id for user_id in ctx.slack.channel_members(ctx.channel) if user_id != bot_user]
    cached = _cached_users(ctx, members)
    return [user for user in members if (cached[user][1] if user in cached else _user(ctx, user)[1])]


# Names, kinds and zones come from the user cache, filled by users.info one member at a time,
# or, once USERS_LIST_FROM or more are missing or stale (a daily digest finds the whole team
# stale: the cache lasts 12 h), by reading users.list. A users.list page (up to 1,000
# members) is one Tier 2 call (20+/min), a lookup one Tier 4 call (100+/min): a page pays
# for itself from five lookups saved. The pass stops once every member wanted was seen, or
# after LIST_READ_PER_MISSING members per member wanted (in a large workspace a few
# strangers are cheaper one by one). https://api.slack.com/methods/users.list
LIST_READ_PER_MISSING = 200


def _listed_users(ctx: Context, wanted: Collection[str]) -> dict[str, dict[str, Any]]:
    """Read users.list until every wanted member was seen or the budget is spent; return theirs.

    Every member read is cached, in one transaction. A failing users.list is logged and
    what was read so far is kept: the caller looks the others up one by one.
    """
    wanted_ids = set(wanted)
    found: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, str, bool, str]] = []
    try:
        for user in ctx.slack.users_until_seen(wanted_ids, max_read=len(wanted_ids) * LIST_READ_PER_MISSING):
            rows.append((user["id"], display_name(user), is_human(user), str(user.get("tz") or "")))
            if user["id"] in wanted_ids:
                found[user["id"]] = user
    except SlackError as exc:
        log.warning("could not list the workspace's members (%s); looking up %d one by one",
                    exc, len(wanted_ids) - len(found))
    ctx.store.cache_users(rows)
    return found


def _cached_users(ctx: Context, user_ids: Collection[str]) -> dict[str, tuple[str, bool, str]]:
    """Return the cached (name, is_human, tz) of members, from users.list first when many are missing.

    Members it cannot tell about are left out: the caller looks them up one by one.
    """
    cached = ctx.store.cached_users(user_ids, USER_CACHE_AGE)
    missing = [user_id for user_id in user_ids if user_id not in cached]
    if len(set(missing)) >= USERS_LIST_FROM:
        for user_id, user in _listed_users(ctx, missing).items():
            cached[user_id] = (display_name(user), is_human(user), str(user.get("tz") or ""))
    return cached


def _user(ctx: Context, user_id: str) -> tuple[str, bool]:
    cached = ctx.store.cached_user(user_id, USER_CACHE_AGE)
    if cached is not None:
        return cached[0], cached[1]
    info = ctx.slack.user_info(user_id)
    name, human = display_name(info), is_human(info)
    ctx.store.cache_user(user_id, name, human, str(info.get("tz") or ""))
    return name, human


def user_name(ctx: Context, user_id: str) -> str:
    """Return a member's Slack name, or the ID when Slack cannot tell."""
    try:
        return _user(ctx, user_id)[0]
    except SlackError as exc:
        log.warning("could not look up %s: %s", user_id, exc)
        return user_id


def user_names(ctx: Context, user_ids: Iterable[str]) -> dict[str, str]:
    """Return members' Slack names by ID, in ID order, as `user_name` does.

    From the cache, filled by one users.list pass when many are missing or stale.
    """
    ids = sorted(set(user_ids))
    cached = _cached_users(ctx, ids)
    return {user_id: cached[user_id][0] if user_id in cached else user_name(ctx, user_id) for user_id in ids}


def away_members(ctx: Context, date: dt.date, candidates: Sequence[str]) -> set[str]:
    """Return which of `candidates` are away on a date: by `/standup away` or, today, by Slack status."""
    away = ctx.store.away_on(ctx.channel, date) & set(candidates)
    if date != ctx.today() or not ctx.settings.away_status:
        return away
    now = ctx.now().timestamp()
    to_check = [user for user in candidates if user not in away]
    # Read now, not from the cache: a status changes during the day. For many members one
    # users.list pass is as fresh as a users.info each.
    listed = _listed_users(ctx, to_check) if len(set(to_check)) >= USERS_LIST_FROM else {}
    for user in to_check:
        info = listed.get(user)
        if info is None:
            try:
                info = ctx.slack.user_info(user)
            except SlackError as exc:
                log.warning("could not read the Slack status of %s: %s", user, exc)
                continue
            ctx.store.cache_user(user, display_name(info), is_human(info), str(info.get("tz") or ""))
        if status_means_away(info.get("profile") or {}, ctx.settings.away_status, now):
            away.add(user)
    return away


# -- remind ------------------------------------------------------------------------------
@_reported("remind")
def remind(ctx: Context, date: dt.date, *, force: bool = False) -> dt.datetime | None:
    """DM each expected member without a report one reminder linking to the thread.

    With PER_MEMBER_TIMEZONE only those whose time has come are reminded; the stage is
    then left partial and the time of the next reminder due is returned (else None).
    """
    prompt_ts = _prompt_ts(ctx, date, "remind")
    claimed, _ = _claim(ctx, date, "remind", force)
    if not claimed:
        return None
    later: list[dt.datetime] = []
    try:
        _settle_interrupted_reminders(ctx, date, prompt_ts)
        replies, _ = current_replies(ctx, date, prompt_ts)
        reports = group_reports(replies)
        _escalate_blockers(ctx, date, reports)  # the thread read back: one more chance before the digest
        expected = expected_members(ctx)
        status = {} if force else ctx.store.reminded(ctx.channel, date)
        targets = who_to_remind(expected, reports, status)
        away = away_members(ctx, date, targets)
        targets = [user for user in targets if user not in away]
        if ctx.settings.per_member_timezone:
            targets, later = _due_now(ctx, date, targets)
        if targets:
            permalink = ctx.slack.permalink(ctx.channel, prompt_ts)
            text = build_reminder(ctx.channel, permalink, ctx.settings.digest_time, ctx.settings.timezone)
            _send_reminders(ctx, date, targets, text, force)
    except (SlackError, StageError) as exc:
        _fail(ctx, date, "remind", exc)
        raise
    next_at = min(later, default=None)
    partial = f"{len(later)} member(s) due later, the next at {next_at:%H:%M %Z}" if next_at else None
    ctx.store.finish_stage(ctx.channel, date, "remind", ctx.owner, partial=partial)
    reported = len(expected) - len(missing_members(expected, reports))
    notes = (f", {len(away)} away" if away else "") + (f"; {partial}" if partial else "")
    ctx.say(f"reminded {len(targets)} member(s) for {date}; {reported} of {len(expected)} had reported{notes}")
    return next_at


def member_zone(ctx: Context, user: str) -> ZoneInfo:
    """Return a member's Slack time zone (`users.info` tz), else the team's."""
    cached = ctx.store.cached_user(user, USER_CACHE_AGE)
    try:
        tz = cached[2] if cached is not None else str(ctx.slack.user_info(user).get("tz") or "")
    except SlackError as exc:
        log.warning("could not read the time zone of %s: %s", user, exc)
        tz = ""
    return _zone(ctx, tz)


def member_zones(ctx: Context, users: Collection[str]) -> dict[str, ZoneInfo]:
    """Return `member_zone` for many members, from one users.list pass when many are not cached."""
    cached = _cached_users(ctx, users)
    return {user: _zone(ctx, cached[user][2]) if user in cached else member_zone(ctx, user) for user in users}


def _zone(ctx: Context, tz: str) -> ZoneInfo:
    """Return a Slack tz as a zone; the team's when it is empty or unknown here."""
    try:
        return ZoneInfo(tz) if tz else ctx.settings.zone
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ctx.settings.zone


def _due_now(ctx: Context, date: dt.date, targets: Sequence[str]) -> tuple[list[str], list[dt.datetime]]:
    """Split members into those to remind now and the times of those due later."""
    now, due, later = ctx.now(), [], []
    zones = member_zones(ctx, targets)  # one users.list pass for thousands, not a users.info each
    for user in targets:
        at = member_remind_at(ctx.settings, date, zones[user])
        if at is None:
            continue  # their reminder would come after the digest
        if at <= now:
            due.append(user)
        else:
            later.append(at)
    return due, later


def _settle_interrupted_reminders(ctx: Context, date: dt.date, since_ts: str) -> None:
    """Decide the reminders a killed run left half-done: sent if the DM is there, else retry.

    Each reminder carries message metadata, so the bot's DM history tells whether it went out.
    Reading that history needs the DM's channel ID, so only here, for the rare interrupted
    reminder, is the DM opened with conversations.open (reminders are posted to the user ID).
    """
    for user, state in ctx.store.reminded(ctx.channel, date).items():
        if state != "sending":
            continue
        try:
            sent = any(
                _is_our(ctx, message, REMINDER_EVENT_TYPE, date)
                for message in ctx.slack.recent_messages(ctx.slack.open_dm(user), oldest=since_ts)
            )
        except SlackError as exc:
            log.warning("could not check whether %s was reminded (%s); reminding again", user, exc)
            sent = False
        ctx.store.finish_reminder(ctx.channel, date, user, error=None if sent else "interrupted")


def _is_our(ctx: Context, message: dict[str, Any], event_type: str, date: dt.date) -> bool:
    metadata = message.get("metadata") or {}
    return (
        message.get("bot_id") == ctx.bot().get("bot_id")
        and metadata.get("event_type") == event_type
        and (metadata.get("event_payload") or {}).get("date") == date.isoformat()
    )


def _send_reminders(ctx: Context, date: dt.date, targets: Sequence[str], text: str, force: bool) -> None:
    failed: list[str] = []
    last_error = ""
    for user in targets:
        if not ctx.store.claim_reminder(ctx.channel, date, user, force=force):
            continue
        try:
            # To the member's ID: Slack opens the DM itself, so no conversations.open (Tier 3,
            # 50+/min: ~20 min for 1,000 members) per reminder (docs/benchmarks.md, section 3).
            ctx.slack.post_dm(user, text, metadata=reminder_metadata(date))
        except SlackError as exc:
            ctx.store.finish_reminder(ctx.channel, date, user, error=str(exc))
            log.error("reminder to %s failed: %s", user, exc)
            failed.append(user)
            last_error = str(exc)
            continue
        ctx.store.finish_reminder(ctx.channel, date, user)
        log.info("reminded %s for %s", user, date)
    if failed:
        raise SlackError(
            f"could not remind {len(failed)} member(s) ({', '.join(failed)}): {last_error}; "
            "the next `standup.py remind` retries only them"
        )


# -- digest ------------------------------------------------------------------------------
@_reported("digest")
def digest(ctx: Context, date: dt.date, *, force: bool = False) -> None:
    """Email the day's reports (and who did not report) to DIGEST_RECIPIENTS."""
    from . import mail, render, sanity  # the digest's alone: kept out of the other stages' start-up
    from .structured import answers_remembered

    prompt_ts = _prompt_ts(ctx, date, "digest")
    claimed, _ = _claim(ctx, date, "digest", force)
    if not claimed:
        return
    settings = ctx.settings
    if force:
        ctx.store.forget_deliveries(ctx.channel, date, "digest")
    already = ctx.store.delivered(ctx.channel, date, "digest")
    recipients = [r for r in settings.digest_recipients if r not in already]
    try:
        # The same-blocker check, the escalations and the renderer each read every report's answers.
        with answers_remembered(), _collector_paused():
            content = build_digest(ctx, date, prompt_ts)
            content = replace(content, long_blockers=sanity.long_blockers(ctx, date, content))
            _escalate_blockers(ctx, date, content.reports, content.user_names)  # by the digest at the latest
            rendered = render.render_digest(content)
        message = mail.build_message(
            subject=rendered.subject, text=rendered.text, html=rendered.html,
            mail_from=settings.mail_from, recipients=settings.digest_recipients, now=ctx.now(),
        )
        if recipients:
            mail.send_message(
                message, smtp=smtp_settings(settings), mail_from=settings.mail_from,
                recipients=recipients, sleep=ctx.sleep,
            )
    except MailError as exc:
        # A partial refusal: those accepted must not get it again on the next run.
        ctx.store.record_delivery(ctx.channel, date, "digest", exc.delivered_to)
        _fail(ctx, date, "digest", exc)
        raise
    except (SlackError, StageError) as exc:
        _fail(ctx, date, "digest", exc)
        raise
    ctx.store.record_delivery(ctx.channel, date, "digest", recipients)
    ctx.store.finish_stage(ctx.channel, date, "digest", ctx.owner)
    log.info("digest for %s sent to %s", date, ", ".join(recipients))
    ctx.say(
        f"digest for {date} sent to {len(recipients)} recipient(s): "
        f"{len(content.reports)} report(s), {len(content.missing)} not reported"
    )
    _after_digest(ctx, date, content)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector back for the block, then restore it as it was.

    Reading, splitting and rendering thousands of replies makes hundreds of thousands of
    small objects, nearly all freed by reference counting; the collector's passes over
    them cost a 5,000-member digest about 15 % of its CPU time. Cycles made meanwhile are
    collected once it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _after_digest(ctx: Context, date: dt.date, content: Digest) -> None:
    """Remember what the digest showed (addenda show what changed since) and run the sanity
    checks; the digest has gone out, so neither may fail it."""
    from . import sanity
    from .addendum import record_digest

    try:
        record_digest(ctx, date, content)
    except StoreError as exc:
        log.error("could not record what the digest for %s showed: %s", date, exc)
        ctx.say(f"warning: could not record what the digest showed ({exc}); an addendum may repeat some of it")
    sanity.after_digest(ctx, date, content)


def build_digest(ctx: Context, date: dt.date, prompt_ts: str) -> Digest:
    """Gather everything the digest shows: reports, who is missing, names, links."""
    replies, from_store_only = current_replies(ctx, date, prompt_ts)
    reports = group_reports(replies)
    expected = expected_members(ctx)
    away = away_members(ctx, date, missing_members(expected, reports))
    missing = [user for user in missing_members(expected, reports) if user not in away]
    later = set()
    if ctx.settings.per_member_timezone:
        zones = member_zones(ctx, missing)
        later = {user for user in missing if not_yet_due(ctx.settings, date, zones[user])}
        missing = [user for user in missing if user not in later]
    users = {r.user for r in reports} | set(missing) | away | later
    channels = {ctx.channel}
    previous = previous_reports(ctx, date, [report.user for report in reports])
    texts = [reply.text for reply in replies] + [earlier.plan or "" for earlier in previous.values()]
    for text in texts:
        mentioned_users, mentioned_channels = markup.mentioned_ids(text)
        users |= mentioned_users
        channels |= mentioned_channels
    names = user_names(ctx, users)
    channel_names = {c: _channel_name(ctx, c) for c in sorted(channels)}
    try:
        thread_url: str | None = ctx.slack.permalink(ctx.channel, prompt_ts)
    except SlackError as exc:
        log.warning("no permalink for the prompt: %s", exc)
        thread_url = None
    return Digest(
        date=date, channel_id=ctx.channel, channel_name=channel_names[ctx.channel],
        questions=ctx.settings.questions, reports=tuple(reports), missing=tuple(missing),
        expected=tuple(user for user in expected if user not in away and user not in later),
        away=tuple(user for user in expected if user in away),
        not_yet_due=tuple(user for user in expected if user in later),
        user_names=names, channel_names=channel_names, thread_url=thread_url,
        from_store_only=from_store_only, previous=previous,
    )


def previous_reports(ctx: Context, date: dt.date, users: Sequence[str]) -> dict[str, PreviousReport]:
    """Return each member's most recent report before a date, from the store, when there is one."""
    from .structured import previous_report

    found: dict[str, PreviousReport] = {}
    earlier_replies = ctx.store.previous_replies_of(ctx.channel, users, date)
    for user in users:
        earlier = earlier_replies.get(user)
        if earlier is not None:
            report = previous_report(earlier[0], earlier[1], ctx.settings.questions)
            if report is not None:
                found[user] = report
    return found


def _escalate_blockers(
    ctx: Context, date: dt.date, reports: Sequence[Report], names: Mapping[str, str] | None = None
) -> None:
    """DM BLOCKER_CONTACTS about each blocker not escalated yet (the listener may have been down).

    A failed DM holds neither the reminders nor the digest back: it is said, logged and
    retried on the next occasion.
    """
    if not ctx.settings.blocker_contacts:
        return
    from . import blockers

    failed = blockers.escalate_reports(
        ctx.settings, ctx.store, ctx.slack, ctx.channel, date, reports,
        lambda user: (names or {}).get(user) or user_name(ctx, user),
    )
    if failed:
        ctx.say(
            f"could not send {len(failed)} blocker DM(s) ({', '.join(failed)}); each is retried "
            "when the listener sees that member's reply again, or by the next remind or digest run"
        )


def _channel_name(ctx: Context, channel: str) -> str:
    try:
        return str(ctx.slack.channel_info(channel).get("name") or channel)
    except SlackError as exc:
        log.warning("could not look up channel %s: %s", channel, exc)
        return channel


def smtp_settings(settings: Settings) -> mail.SmtpSettings:
    """Return the mail server settings."""
    from . import mail

    return mail.SmtpSettings(
        host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user,
        password=settings.smtp_password, security=settings.smtp_security, timeout=settings.smtp_timeout,
    )


# -- run ---------------------------------------------------------------------------------
def wait_until(ctx: Context, target: dt.datetime) -> None:
    """Sleep until an aware datetime, in slices so a suspended VM or clock jump is noticed."""
    while True:
        # Timestamps, not datetime subtraction: two datetimes in one ZoneInfo subtract as
        # wall times, which is wrong across a daylight-saving change.
        remaining = target.timestamp() - ctx.now().timestamp()
        if remaining <= 0:
            return
        ctx.sleep(min(remaining, 300.0))


def run(ctx: Context, date: dt.date, *, force: bool = False) -> None:
    """Run the whole day: prompt now, remind at REMIND_TIME, digest at DIGEST_TIME.

    Safe to start again after a crash: stages already done are skipped, and waits for
    times already past return at once.
    """
    settings = ctx.settings
    reason = settings.calendar.why_not(date)
    if reason and not force:
        ctx.say(f"{reason}: no standup (--force runs it anyway)")
        return
    prompt(ctx, date, force=force)
    remind_failure: StandupError | None = None
    try:
        _remind_in_turn(ctx, date, force)
    except StandupError as exc:
        # The managers still get their digest; the failure is reported when the day ends.
        remind_failure = exc
        ctx.say(f"error: {exc}")
    digest_at = ctx.local(date, settings.digest_time)
    if ctx.now() < digest_at:
        ctx.say(f"waiting until {digest_at:%H:%M %Z} to send the digest")
    wait_until(ctx, digest_at)
    digest(ctx, date, force=force)
    if remind_failure is not None:
        raise remind_failure


def _remind_in_turn(ctx: Context, date: dt.date, force: bool) -> None:
    settings = ctx.settings
    if settings.per_member_timezone:
        # Each member at their own REMIND_TIME: remind returns when the next one is due.
        next_at = remind(ctx, date, force=force)
        while next_at is not None:
            ctx.say(f"waiting until {next_at.astimezone(settings.zone):%H:%M %Z} for the next reminder")
            wait_until(ctx, next_at)
            next_at = remind(ctx, date)
        return
    remind_at = ctx.local(date, settings.remind_time)
    if ctx.now() < remind_at:
        ctx.say(f"waiting until {remind_at:%H:%M %Z} to remind")
    wait_until(ctx, remind_at)
    remind(ctx, date, force=force)

"""`standup.py status`: a day's state at a glance, from the store (and Slack where it helps)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from .errors import SlackError
from .model import ts_key
from .reports import group_reports, merge_replies
from .stages import STAGES, Context, expected_members, user_name
from .store import StageRun

log = logging.getLogger(__name__)


def _local(ctx: Context, iso: str | None) -> str:
    if not iso:
        return "?"
    return dt.datetime.fromisoformat(iso).astimezone(ctx.settings.zone).strftime("%H:%M:%S %Z")


def _from_ts(ctx: Context, ts: str) -> str:
    seconds = ts_key(ts)[0]
    return dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone(ctx.settings.zone).strftime("%H:%M")


def stage_line(ctx: Context, date: dt.date, stage: str, run: StageRun | None) -> str:
    """Describe one stage: done, failed (with the reason), running, or not run (due or missed)."""
    due_at = ctx.local(date, getattr(ctx.settings, f"{stage}_time"))
    if run is None:
        if ctx.now() >= due_at:
            return f"{stage}: not run (missed: it was due at {due_at:%H:%M %Z})"
        return f"{stage}: not run yet (due at {due_at:%H:%M %Z})"
    if run.status == "done":
        tries = f" after {run.attempts} attempts" if run.attempts > 1 else ""
        return f"{stage}: done at {_local(ctx, run.finished_at)}{tries}"
    if run.status == "partial":
        return f"{stage}: partly done at {_local(ctx, run.finished_at)}: {run.last_error}"
    if run.status == "running":
        return f"{stage}: running since {_local(ctx, run.started_at)} ({run.owner})"
    return f"{stage}: FAILED at {_local(ctx, run.finished_at)} (attempt {run.attempts}): {run.last_error}"


def status_lines(ctx: Context, date: dt.date) -> list[str]:
    """Return the lines `standup.py status` prints for a date."""
    channel = ctx.channel
    lines = [f"standup {date} in {channel} ({ctx.settings.timezone})"]
    runs = {stage: ctx.store.stage_run(channel, date, stage) for stage in STAGES}
    prompt_ts = ctx.store.prompt_ts(channel, date)
    lines.append(stage_line(ctx, date, "prompt", runs["prompt"]))
    if prompt_ts:
        try:
            lines.append(f"  thread: {ctx.slack.permalink(channel, prompt_ts)}")
        except SlackError as exc:
            lines.append(f"  thread: ts {prompt_ts} (no link: {exc})")
    stored = ctx.store.stored_replies(channel, date)
    reports = group_reports(merge_replies(None, stored, prompt_ts or "0"))
    try:
        expected: Sequence[str] | None = expected_members(ctx)
    except SlackError as exc:
        expected = None
        lines.append(f"  members: unknown ({exc})")
    names = {user: user_name(ctx, user) for user in {r.user for r in reports} | set(expected or ())}
    lines.append(
        f"reports: {len(reports)} recorded by the listener"
        " (remind and digest read the thread itself)"
    )
    for report in reports:
        guest = "" if expected is None or report.user in expected else " (not in MEMBERS)"
        lines.append(f"  {names[report.user]}: {len(report.replies)} reply(s), first at "
                     f"{_from_ts(ctx, report.replies[0].ts)}{guest}")
    if expected is not None:
        reported = {r.user for r in reports}
        missing = [names[u] for u in expected if u not in reported]
        lines.append(f"  not reported: {', '.join(missing) if missing else 'nobody'}")
    lines.append(stage_line(ctx, date, "remind", runs["remind"]))
    reminded = ctx.store.reminded(channel, date)
    if reminded:
        lines.append("  " + ", ".join(f"{user_name(ctx, u)} ({state})" for u, state in sorted(reminded.items())))
    lines.append(stage_line(ctx, date, "digest", runs["digest"]))
    delivered = ctx.store.delivered(channel, date, "digest")
    pending = [r for r in ctx.settings.digest_recipients if r not in delivered]
    if delivered:
        lines.append(f"  delivered to: {', '.join(sorted(delivered))}")
    if pending and runs["digest"] is not None:
        lines.append(f"  pending for: {', '.join(pending)}")
    return lines

"""`standup.py schedule`: fire the three stages at their local times on WORKDAYS, no cron needed.

The jobs call the same stage functions as cron does, so the once-per-date claim holds
whichever launched them. On start (after a restart or with the VM off at a stage's time)
it catches up on today by `catch_up_stages`.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Collection
from types import FrameType
from typing import Any

from . import stages
from .errors import StandupError
from .settings import Settings

log = logging.getLogger(__name__)


def catch_up_stages(settings: Settings, local_now: dt.datetime, done: Collection[str]) -> list[str]:
    """Return the stages still worth doing today, in order, at `local_now` (team's zone).

    - Before PROMPT_TIME: nothing (the jobs will fire).
    - A missed prompt is posted late (it says so) while there is still time to answer,
      that is before DIGEST_TIME; the reminder follows if its time has passed.
    - At or after DIGEST_TIME: the digest if a prompt was posted; a day whose prompt never
      went out is skipped (a digest of an unasked question helps nobody).
    """
    if not settings.calendar.is_standup_date(local_now.date()):
        return []
    now = local_now.time()
    if now < settings.prompt_time:
        return []
    if now >= settings.digest_time:
        return ["digest"] if "prompt" in done and "digest" not in done else []
    due = ["prompt"]
    if now >= settings.remind_time:
        due.append("remind")
    return [stage for stage in due if stage not in done]


def _local_cron_trigger(**fields: Any) -> Any:
    """Return a CronTrigger that fires a local time repeated by a fall-back change only once.

    APScheduler 3.11 fires such a time on both offsets (02:30 CEST and 02:30 CET).
    """
    from apscheduler.triggers.cron import CronTrigger

    class LocalCronTrigger(CronTrigger):  # type: ignore[misc]
        def get_next_fire_time(self, previous_fire_time: Any, now: Any) -> Any:
            fire = super().get_next_fire_time(previous_fire_time, now)
            if fire is not None and previous_fire_time is not None and fire.fold:
                previous = previous_fire_time.astimezone(self.timezone).replace(tzinfo=None, fold=0)
                if fire.replace(tzinfo=None, fold=0) == previous:
                    return super().get_next_fire_time(fire, fire)
            return fire

    return LocalCronTrigger(**fields)


def stage_triggers(settings: Settings) -> list[tuple[str, Any]]:
    """Return each stage with its APScheduler cron trigger in the team's zone."""
    days = ",".join(settings.workdays)
    return [
        (stage, _local_cron_trigger(day_of_week=days, hour=at.hour, minute=at.minute, timezone=settings.zone))
        for stage, at in (
            ("prompt", settings.prompt_time),
            ("remind", settings.remind_time),
            ("digest", settings.digest_time),
        )
    ]


def member_reminder_trigger(settings: Settings) -> Any:
    """Return the trigger that checks for members' reminders every 5 minutes of the standup."""
    from apscheduler.triggers.cron import CronTrigger

    hours = f"{settings.prompt_time.hour}-{settings.digest_time.hour}"
    return CronTrigger(
        day_of_week=",".join(settings.workdays), hour=hours, minute="*/5", timezone=settings.zone
    )


ADDENDUM_CHECK_MINUTES = 15


def addendum_trigger(settings: Settings) -> Any:
    """Return the trigger that looks for an addendum to send every 15 minutes from DIGEST_TIME to midnight.

    The addendum stage itself keeps ADDENDUM_INTERVAL between two emails.
    """
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(
        day_of_week=",".join(settings.workdays), hour=f"{settings.digest_time.hour}-23",
        minute=f"*/{ADDENDUM_CHECK_MINUTES}", timezone=settings.zone,
    )


def run_scheduler(
    settings: Settings,
    make_context: Callable[[], stages.Context],
    *,
    scheduler: Any = None,
) -> None:
    """Run the scheduler until SIGTERM/SIGINT; each firing builds a fresh stage context."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    zone = settings.zone
    scheduler = scheduler or BlockingScheduler(timezone=zone)
    for stage, trigger in stage_triggers(settings):
        scheduler.add_job(
            _fire, trigger, args=(make_context, stage), id=stage, name=f"standup {stage}",
            # A slot missed by less than this (a busy machine, a short suspend) still runs.
            misfire_grace_time=15 * 60, coalesce=True, max_instances=1,
        )
    if settings.per_member_timezone:
        scheduler.add_job(
            _fire_member_reminders, member_reminder_trigger(settings), args=(make_context,),
            id="member reminders", name="standup reminders in members' own time zones",
            misfire_grace_time=5 * 60, coalesce=True, max_instances=1,
        )

    scheduler.add_job(
        _fire_addendum, addendum_trigger(settings), args=(make_context,), id="addendum",
        name="standup addendum (replies added or changed after the digest)",
        misfire_grace_time=ADDENDUM_CHECK_MINUTES * 60, coalesce=True, max_instances=1,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping on signal %s", signum)
        scheduler.shutdown(wait=False)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    ctx = make_context()
    today = ctx.today()
    try:
        done = {
            stage for stage in stages.STAGES
            if (run := ctx.store.stage_run(ctx.channel, today, stage)) is not None and run.status == "done"
        }
    finally:
        ctx.store.close()
    for stage in catch_up_stages(settings, ctx.now().astimezone(zone), done):
        ctx.say(f"catching up: {stage} for {today} was due and not done")
        _fire(make_context, stage)
    for job in scheduler.get_jobs():
        ctx.say(f"scheduled {job.name}: {job.trigger}")
    scheduler.start()


def _fire_member_reminders(make_context: Callable[[], stages.Context]) -> None:
    """Remind the members whose own REMIND_TIME has come (PER_MEMBER_TIMEZONE)."""
    ctx = make_context()
    try:
        date = ctx.today()
        now = ctx.now()
        prompt_at, _, digest_at = (ctx.local(date, t) for t in (
            ctx.settings.prompt_time, ctx.settings.remind_time, ctx.settings.digest_time))
        run = ctx.store.stage_run(ctx.channel, date, "remind")
        if not (prompt_at <= now < digest_at) or ctx.store.prompt_ts(ctx.channel, date) is None:
            return
        if run is not None and run.status == "done":
            return
    finally:
        ctx.store.close()
    _fire(make_context, "remind")


def _fire_addendum(make_context: Callable[[], stages.Context]) -> None:
    """Send today's addendum if the digest went out and something changed since (quiet otherwise)."""
    from .addendum import addendum

    ctx = make_context()
    try:
        date = ctx.today()
        digest = ctx.store.stage_run(ctx.channel, date, "digest")
        if (
            not ctx.settings.calendar.is_standup_date(date)
            or ctx.now() < ctx.local(date, ctx.settings.digest_time)
            or digest is None or digest.status != "done"
        ):
            return
        addendum(ctx, date)
    except StandupError as exc:
        log.error("addendum for %s failed: %s", ctx.today(), exc)
        ctx.say(f"error: addendum for {ctx.today()} failed: {exc}")
    finally:
        ctx.store.close()


def _fire(make_context: Callable[[], stages.Context], stage: str) -> None:
    ctx = make_context()
    date = ctx.today()
    action = {"prompt": stages.prompt, "remind": stages.remind, "digest": stages.digest}[stage]
    try:
        reason = ctx.settings.calendar.why_not(date)
        if reason:
            ctx.say(f"{reason}: no {stage}")
            return
        action(ctx, date)
    except StandupError as exc:
        # The scheduler must keep running; the stage stays failed in the store and the
        # next firing (or a manual run) retries it.
        log.error("%s for %s failed: %s", stage, date, exc)
        ctx.say(f"error: {stage} for {date} failed: {exc}")
    finally:
        ctx.store.close()

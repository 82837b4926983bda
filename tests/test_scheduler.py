"""`standup.py schedule`: stage times in the team's zone, catch-up after a restart, the jobs."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from standup_bot import stages
from standup_bot.scheduler import _fire, catch_up_stages, run_scheduler, stage_triggers
from tests.conftest import CHANNEL, DAY, wait_for

BERLIN = ZoneInfo("Europe/Berlin")


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("time", "done", "expected"),
    [
        ((9, 59), set(), []),
        ((10, 0), set(), ["prompt"]),
        ((10, 40), {"prompt"}, []),
        ((11, 45), set(), ["prompt", "remind"]),
        ((11, 45), {"prompt"}, ["remind"]),
        ((11, 45), {"prompt", "remind"}, []),
        ((12, 0), {"prompt"}, ["digest"]),
        ((15, 0), {"prompt", "remind"}, ["digest"]),
        ((15, 0), set(), []),  # no prompt went out: nothing to digest
        ((15, 0), {"prompt", "remind", "digest"}, []),
    ],
)
def test_catch_up_runs_what_is_still_worth_doing(settings, time, done, expected):
    assert catch_up_stages(settings, _at(DAY, *time), done) == expected


def test_catch_up_does_nothing_on_days_off(settings):
    saturday = dt.date(2026, 11, 28)
    assert catch_up_stages(settings, _at(saturday, 11, 0), set()) == []


def test_stages_fire_at_local_times_on_workdays_across_daylight_saving(settings):
    triggers = dict(stage_triggers(settings))
    # Friday before the end of summer time in Berlin (2026-10-25), and the Monday after.
    before = triggers["prompt"].get_next_fire_time(None, _at(dt.date(2026, 10, 23), 9))
    after = triggers["prompt"].get_next_fire_time(None, _at(dt.date(2026, 10, 23), 11))
    assert before.astimezone(BERLIN).replace(tzinfo=None) == dt.datetime(2026, 10, 23, 10, 0)
    assert after.astimezone(BERLIN).replace(tzinfo=None) == dt.datetime(2026, 10, 26, 10, 0)
    assert before.utcoffset() == dt.timedelta(hours=2) and after.utcoffset() == dt.timedelta(hours=1)
    digest = triggers["digest"].get_next_fire_time(None, _at(dt.date(2026, 10, 26), 11, 59))
    assert digest.astimezone(BERLIN).time() == dt.time(12, 0)


def test_a_job_firing_after_cron_already_did_the_stage_does_nothing(ctx, make_ctx, settings, sim):
    stages.prompt(ctx, DAY)
    _fire(lambda: make_ctx(settings), "prompt")
    assert len(sim.messages(CHANNEL)) == 1


def test_a_failing_stage_is_logged_and_the_scheduler_keeps_going(make_ctx, settings, sim):
    fresh = make_ctx(settings)
    _fire(lambda: fresh, "remind")  # no prompt yet: fails, but does not raise
    assert any("error: remind" in line for line in fresh.say.lines)


def test_the_scheduler_catches_up_then_waits_for_the_next_slot(make_ctx, settings, sim, clock):
    from apscheduler.schedulers.blocking import BlockingScheduler

    clock.advance(hours=1, minutes=40)  # started at 11:40: prompt and reminder are due
    scheduler = BlockingScheduler(timezone=settings.zone)
    contexts: list[stages.Context] = []

    def make_context() -> stages.Context:
        contexts.append(make_ctx(settings))
        return contexts[-1]

    thread = threading.Thread(target=run_scheduler, args=(settings, make_context), kwargs={"scheduler": scheduler})
    thread.start()
    try:
        wait_for(lambda: scheduler.running, what="the scheduler to start")
        assert len(sim.messages(CHANNEL)) == 1
        assert sim.dms_to("UBOB")
        assert {job.id for job in scheduler.get_jobs()} == {"prompt", "remind", "digest", "addendum"}
    finally:
        scheduler.shutdown(wait=False)
        thread.join(5)
    assert not thread.is_alive()

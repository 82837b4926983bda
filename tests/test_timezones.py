"""Time zones and daylight saving: `schedule` and `run` act at the team's local wall times.

Five teams: America/New_York, Europe/Berlin, Australia/Sydney (southern hemisphere: summer
time starts in October and ends in April), Asia/Kolkata (+05:30, no daylight saving) and
Pacific/Chatham (+12:45, +13:45 in summer). The transitions of 2026 and 2027 are found by
scanning zoneinfo for changes of UTC offset, never written down; Kolkata, which has none,
is checked on the other zones' transition dates and across New Year.

No real waiting: `schedule` is checked through APScheduler's own `get_next_fire_time`, `run`
with a FakeClock whose `sleep` only moves the clock.

A local time that does not exist, or exists twice (pinned by the tests below):
- skipped by spring-forward (02:30 in Berlin on 2026-03-29): `run` and `schedule` both act
  once, at the instant that time would have had on the old offset, that is one gap later on
  the wall clock (03:30 CEST);
- repeated by fall-back (02:30 in Berlin on 2026-10-25): `run` acts once, at the first
  occurrence, and so does `schedule` (its trigger skips the repeat that APScheduler's plain
  cron trigger would fire).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from standup_bot import cli, stages
from standup_bot.scheduler import _fire, stage_triggers
from standup_bot.settings import Settings, settings_from_mapping
from tests.conftest import ALICE, BOB, CHANNEL, TOKEN, FakeClock

UTC = dt.UTC
NEW_YORK, BERLIN, SYDNEY = "America/New_York", "Europe/Berlin", "Australia/Sydney"
KOLKATA, CHATHAM = "Asia/Kolkata", "Pacific/Chatham"
ZONES = (NEW_YORK, BERLIN, SYDNEY, KOLKATA, CHATHAM)
DST_ZONES = (NEW_YORK, BERLIN, SYDNEY, CHATHAM)
YEARS = (2026, 2027)
STAGE_NAMES = ("prompt", "remind", "digest")

MON_FRI = ("mon", "tue", "wed", "thu", "fri")
SUN_THU = ("sun", "mon", "tue", "wed", "thu")
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

SPRING, FALL, NONE = "spring-forward", "fall-back", "no-change"


def hm(text: str) -> dt.timedelta:
    """Return "+05:30" / "-04:00" as a timedelta."""
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return sign * dt.timedelta(hours=int(hours), minutes=int(minutes))


def show_offset(offset: dt.timedelta) -> str:
    """Return a timedelta as "+05:30" / "-04:00"."""
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def clock_time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


# -- the transitions, found by scanning zoneinfo ----------------------------------------------
@dataclass(frozen=True)
class Transition:
    """A change of UTC offset in the night before `day` (or a date checked for lack of one)."""

    zone: str
    day: dt.date  # the first local date on the new offset
    before: dt.timedelta
    after: dt.timedelta
    note: str = ""

    @property
    def kind(self) -> str:
        if self.after > self.before:
            return SPRING
        return FALL if self.after < self.before else NONE

    def offset_on(self, day: dt.date) -> dt.timedelta:
        """Return the offset in force during the day time of `day` (a week either side)."""
        return self.before if day < self.day else self.after

    @property
    def id(self) -> str:
        note = f"-{self.note}" if self.note else ""
        offsets = f"{show_offset(self.before)}->{show_offset(self.after)}"
        return f"{self.zone}-{self.day}-{self.kind}-{offsets}{note}"


def noon_offset(zone: str, day: dt.date) -> dt.timedelta:
    offset = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return offset


def find_transitions(zone: str, year: int) -> list[Transition]:
    """Scan every day of `year` for a change of the zone's noon UTC offset."""
    found = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        before, after = noon_offset(zone, day - dt.timedelta(days=1)), noon_offset(zone, day)
        if before != after:
            found.append(Transition(zone, day, before, after))
        day += dt.timedelta(days=1)
    return found


def checkpoints(zone: str, year: int) -> list[Transition]:
    """The zone's transitions of `year`, plus New Year's Day of the next year.

    Kolkata has no transitions: it is checked on the other zones' transition dates instead.
    """
    if zone == KOLKATA:
        others: dict[dt.date, list[str]] = {}
        for other in DST_ZONES:
            for change in find_transitions(other, year):
                others.setdefault(change.day, []).append(other)
        # Sydney and Chatham change on the same Sunday: each date once.
        found = [
            Transition(zone, day, noon_offset(zone, day), noon_offset(zone, day), "like-" + "+".join(names))
            for day, names in others.items()
        ]
    else:
        found = find_transitions(zone, year)
    new_year = dt.date(year + 1, 1, 1)
    found.append(Transition(zone, new_year, noon_offset(zone, new_year - dt.timedelta(days=1)),
                            noon_offset(zone, new_year), "new-year"))
    return sorted(found, key=lambda change: change.day)


def transition(zone: str, kind: str, year: int) -> Transition:
    [change] = [c for c in find_transitions(zone, year) if c.kind == kind]
    return change


# Offsets known independently of the scan, to check the scan itself.
KNOWN_OFFSETS = {
    NEW_YORK: ("-05:00", "-04:00"),
    BERLIN: ("+01:00", "+02:00"),
    SYDNEY: ("+10:00", "+11:00"),
    CHATHAM: ("+12:45", "+13:45"),
}
SPRING_MONTHS = {NEW_YORK: {3}, BERLIN: {3}, SYDNEY: {9, 10}, CHATHAM: {9, 10}}
FALL_MONTHS = {NEW_YORK: {10, 11}, BERLIN: {10}, SYDNEY: {4}, CHATHAM: {4}}


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("zone", DST_ZONES)
def test_the_scan_finds_one_spring_forward_and_one_fall_back_a_year(zone: str, year: int) -> None:
    changes = find_transitions(zone, year)
    standard, summer = (hm(text) for text in KNOWN_OFFSETS[zone])
    assert sorted(c.kind for c in changes) == [FALL, SPRING]
    spring, fall = transition(zone, SPRING, year), transition(zone, FALL, year)
    assert (spring.before, spring.after) == (standard, summer)
    assert (fall.before, fall.after) == (summer, standard)
    assert spring.day.month in SPRING_MONTHS[zone] and fall.day.month in FALL_MONTHS[zone]
    if zone in (SYDNEY, CHATHAM):  # southern hemisphere: summer time spans New Year
        assert fall.day < spring.day
    # Every one of them is a Sunday, so a Sun–Thu team meets them on a workday night.
    assert all(c.day.weekday() == 6 for c in changes)


@pytest.mark.parametrize("year", YEARS)
def test_kolkata_never_changes_offset(year: int) -> None:
    assert find_transitions(KOLKATA, year) == []
    assert all(c.before == c.after == hm("+05:30") for c in checkpoints(KOLKATA, year))


# -- helpers ---------------------------------------------------------------------------------
def team_settings(**overrides: Any) -> Settings:
    """Valid settings for trigger and clock checks that talk to no server."""
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": TOKEN,
        "STANDUP_CHANNEL": CHANNEL,
        "SMTP_HOST": "mail.invalid",
        "MAIL_FROM": "standup@example.com",
        "DIGEST_RECIPIENTS": ["lead@example.com"],
        "DATA_DIR": "/nonexistent/standup-data",
    }
    values.update(overrides)
    return settings_from_mapping(values)


def local_instant(zone: str, day: dt.date, at: dt.time, offset: dt.timedelta) -> dt.datetime:
    """Return the UTC instant of wall time `at` on `day` at a UTC offset known from the scan."""
    return (dt.datetime.combine(day, at) - offset).replace(tzinfo=UTC)


def fire_times(trigger: Any, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Return the trigger's fire times in [start, end), in UTC, asked the way the scheduler asks.

    In UTC because APScheduler returns them in the team's zone, where a skipped or repeated
    wall time never compares equal to any instant in another zone (PEP 495).
    """
    fires: list[dt.datetime] = []
    previous, now = None, start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire.astimezone(UTC) >= end:
            return fires
        fires.append(fire.astimezone(UTC))
        previous, now = fire, fire
        assert len(fires) < 100, "the trigger does not advance"


def wall(moment: dt.datetime, zone: str) -> str:
    """Return an instant as the team's wall clock shows it: "2026-03-29 03:30+02:00"."""
    # Through UTC: a datetime already in the zone (APScheduler's) would be taken as it is,
    # a wall time that does not exist included.
    local = moment.astimezone(UTC).astimezone(ZoneInfo(zone))
    offset = local.utcoffset()
    assert offset is not None
    return f"{local:%Y-%m-%d %H:%M}{show_offset(offset)}"


def minutes_between(start: dt.datetime, end: dt.datetime) -> float:
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 60


# -- 1. schedule: the cron triggers around every transition -----------------------------------
SCHEDULE_CASES = [
    pytest.param(change, workdays, id=f"{change.id}-{workdays[0]}-{workdays[-1]}")
    for zone in ZONES
    for year in YEARS
    for change in checkpoints(zone, year)
    for workdays in (MON_FRI, SUN_THU)
]


@pytest.mark.parametrize(("change", "workdays"), SCHEDULE_CASES)
def test_schedule_fires_at_local_times_on_the_workdays_around_a_transition(
    change: Transition, workdays: tuple[str, ...]
) -> None:
    settings = team_settings(TIMEZONE=change.zone, WORKDAYS=list(workdays))
    week = [change.day + dt.timedelta(days=n) for n in range(-7, 7)]
    workdays_in_week = [day for day in week if WEEKDAY_NAMES[day.weekday()] in workdays]
    workday_before = max(day for day in workdays_in_week if day < change.day)
    workday_after = min(day for day in workdays_in_week if day >= change.day)
    start = local_instant(change.zone, week[0], dt.time(0), change.before)
    end = local_instant(change.zone, week[-1] + dt.timedelta(days=1), dt.time(0), change.after)
    for stage, trigger in stage_triggers(settings):
        at = getattr(settings, f"{stage}_time")
        fires = fire_times(trigger, start, end)
        by_day = {fire.astimezone(ZoneInfo(change.zone)).date(): fire for fire in fires}
        # The workday before and the workday after, at the local time, each on its own offset.
        before, after = by_day[workday_before], by_day[workday_after]
        assert wall(before, change.zone) == f"{workday_before} {at:%H:%M}{show_offset(change.before)}"
        assert wall(after, change.zone) == f"{workday_after} {at:%H:%M}{show_offset(change.after)}"
        # Every firing of the fortnight: once on each workday, never on a day off, and at the
        # instant the scanned offset gives.
        assert [fire.astimezone(UTC) for fire in fires] == [
            local_instant(change.zone, day, at, change.offset_on(day)) for day in workdays_in_week
        ], stage


# Transition nights: the prompt before the change, the reminder and the digest after it (a
# Sun–Thu team: every transition falls on a Sunday). Expected minutes from the prompt are real
# elapsed time, worked out by hand; the naive difference of the wall times is not it.
# remind_wall is where the reminder lands on the wall clock: a skipped time lands one gap
# later, a repeated one on its first occurrence.
@dataclass(frozen=True)
class Night:
    zone: str
    kind: str
    prompt: str
    remind: str
    digest: str
    to_remind: int  # minutes of real time from prompt to reminder
    to_digest: int  # minutes of real time from prompt to digest
    remind_wall: str  # "HH:MM+hh:mm" on the wall clock when the reminder goes out
    what: str

    def naive_minutes(self) -> int:
        start, end = (dt.datetime.combine(dt.date.min, clock_time(t)) for t in (self.prompt, self.digest))
        return (end - start) // dt.timedelta(minutes=1)


NIGHTS = [
    Night(BERLIN, SPRING, "01:00", "03:30", "04:00", 90, 120, "03:30+02:00", "across"),
    Night(BERLIN, SPRING, "01:00", "02:30", "04:00", 90, 120, "03:30+02:00", "remind-skipped"),
    Night(BERLIN, FALL, "01:00", "03:30", "04:00", 210, 240, "03:30+01:00", "across"),
    Night(BERLIN, FALL, "01:00", "02:30", "04:00", 90, 240, "02:30+02:00", "remind-twice"),
    Night(NEW_YORK, SPRING, "01:00", "03:30", "04:00", 90, 120, "03:30-04:00", "across"),
    Night(NEW_YORK, SPRING, "01:00", "02:30", "04:00", 90, 120, "03:30-04:00", "remind-skipped"),
    # In New York the repeated hour is 01:00-02:00: the prompt at 01:00 itself is ambiguous
    # and is taken on its first occurrence (EDT).
    Night(NEW_YORK, FALL, "01:00", "03:30", "04:00", 210, 240, "03:30-05:00", "across"),
    Night(NEW_YORK, FALL, "01:00", "01:30", "04:00", 30, 240, "01:30-04:00", "remind-twice"),
    Night(SYDNEY, SPRING, "01:00", "03:30", "04:00", 90, 120, "03:30+11:00", "across"),
    Night(SYDNEY, SPRING, "01:00", "02:30", "04:00", 90, 120, "03:30+11:00", "remind-skipped"),
    Night(SYDNEY, FALL, "01:00", "03:30", "04:00", 210, 240, "03:30+10:00", "across"),
    Night(SYDNEY, FALL, "01:00", "02:30", "04:00", 90, 240, "02:30+11:00", "remind-twice"),
    # Chatham changes at 02:45 standard time: 02:45 -> 03:45 in September, back in April.
    Night(CHATHAM, SPRING, "01:00", "04:00", "04:30", 120, 150, "04:00+13:45", "across"),
    Night(CHATHAM, SPRING, "01:00", "03:00", "04:30", 120, 150, "04:00+13:45", "remind-skipped"),
    Night(CHATHAM, FALL, "01:00", "04:00", "04:30", 240, 270, "04:00+12:45", "across"),
    Night(CHATHAM, FALL, "01:00", "03:00", "04:30", 120, 270, "03:00+13:45", "remind-twice"),
]


def night_id(night: Night) -> str:
    return f"{night.zone}-{night.kind}-{night.what}-{night.prompt}-{night.remind}-{night.digest}"


def night_settings(night: Night, **overrides: Any) -> dict[str, Any]:
    return {
        "TIMEZONE": night.zone, "WORKDAYS": list(SUN_THU),
        "PROMPT_TIME": night.prompt, "REMIND_TIME": night.remind, "DIGEST_TIME": night.digest,
        **overrides,
    }


def first_fires_on(settings: Settings, change: Transition) -> dict[str, dt.datetime]:
    """Return each stage's first firing on or after local midnight of the transition day."""
    start = local_instant(change.zone, change.day, dt.time(0), change.before)
    end = start + dt.timedelta(days=1)
    return {stage: fire_times(trigger, start, end)[0] for stage, trigger in stage_triggers(settings)}


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("night", NIGHTS, ids=night_id)
def test_schedule_on_a_transition_night_between_prompt_and_digest(night: Night, year: int) -> None:
    change = transition(night.zone, night.kind, year)
    fires = first_fires_on(team_settings(**night_settings(night)), change)
    assert wall(fires["prompt"], night.zone) == f"{change.day} {night.prompt}{show_offset(change.before)}"
    assert wall(fires["remind"], night.zone) == f"{change.day} {night.remind_wall}"
    assert wall(fires["digest"], night.zone) == f"{change.day} {night.digest}{show_offset(change.after)}"
    assert minutes_between(fires["prompt"], fires["remind"]) == night.to_remind
    assert minutes_between(fires["prompt"], fires["digest"]) == night.to_digest != night.naive_minutes()
    # The next night, the reminder is back at its configured time on the new offset.
    next_day = change.day + dt.timedelta(days=1)
    after = first_fires_on(
        team_settings(**night_settings(night)), Transition(night.zone, next_day, change.after, change.after)
    )
    assert wall(after["remind"], night.zone) == f"{next_day} {night.remind}{show_offset(change.after)}"


TWICE = [night for night in NIGHTS if night.what == "remind-twice"]


@pytest.mark.parametrize("night", TWICE, ids=night_id)
def test_schedule_fires_a_time_repeated_by_fall_back_once(night: Night) -> None:
    change = transition(night.zone, FALL, 2026)
    settings = team_settings(**night_settings(night))
    start = local_instant(change.zone, change.day, dt.time(0), change.before)
    remind = dict(stage_triggers(settings))["remind"]
    fires = fire_times(remind, start, start + dt.timedelta(days=1))
    assert [wall(fire, night.zone) for fire in fires] == [f"{change.day} {night.remind_wall}"]


# -- shared by the tests that run stages against the simulator -------------------------------
@dataclass
class StageLog:
    """When (on the fake clock) each stage function was entered."""

    entered: dict[str, list[dt.datetime]]

    def last(self, stage: str) -> dt.datetime:
        return self.entered[stage][-1]


@pytest.fixture
def stage_log(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> StageLog:
    """Record the fake-clock time at which `run` calls each stage."""
    log = StageLog({stage: [] for stage in STAGE_NAMES})
    for stage in STAGE_NAMES:
        original = getattr(stages, stage)

        def spy(ctx: stages.Context, date: dt.date, *, force: bool = False,
                _stage: str = stage, _original: Callable[..., None] = original) -> None:
            log.entered[_stage].append(clock.now())
            _original(ctx, date, force=force)

        monkeypatch.setattr(stages, stage, spy)
    return log


def run_day(ctx: stages.Context, clock: FakeClock, day: dt.date, start: dt.datetime) -> list[float]:
    """Run the whole day for `day` from `start` (UTC) on the fake clock; return the sleeps."""
    clock.current = start
    clock.slept.clear()
    stages.run(ctx, day)
    return list(clock.slept)


# -- 2. run's waits ------------------------------------------------------------------------
RUN_CASES = [pytest.param(zone, year, id=f"{zone}-{year}") for zone in ZONES for year in YEARS]


@pytest.mark.parametrize(("zone", "year"), RUN_CASES)
def test_run_waits_until_the_local_remind_and_digest_times_around_every_transition(
    zone: str, year: int, make_settings, make_ctx, clock, stage_log, sim, smtp
) -> None:
    settings = make_settings(TIMEZONE=zone, WORKDAYS=list(EVERY_DAY))
    ctx = make_ctx(settings)
    days_run = 0
    for change in checkpoints(zone, year):
        if change.kind != NONE:  # both sides, and the day after
            days = [change.day - dt.timedelta(days=1), change.day, change.day + dt.timedelta(days=1)]
        elif zone != KOLKATA:  # New Year's Eve and Day: the schedule test covers them
            continue
        elif change.note == "new-year":  # New Year's Eve and Day
            days = [change.day - dt.timedelta(days=1), change.day]
        else:  # Kolkata on another zone's transition date
            days = [change.day]
        for day in days:
            offset = change.offset_on(day)
            start = local_instant(zone, day, dt.time(10), offset)  # PROMPT_TIME 10:00 local
            sleeps = run_day(ctx, clock, day, start)
            days_run += 1
            label = f"{zone} {day}"
            assert wall(stage_log.last("prompt"), zone) == f"{day} 10:00{show_offset(offset)}", label
            assert wall(stage_log.last("remind"), zone) == f"{day} 11:30{show_offset(offset)}", label
            assert wall(stage_log.last("digest"), zone) == f"{day} 12:00{show_offset(offset)}", label
            assert sum(sleeps) == 2 * 3600, label  # exactly: never a second early or late
            assert minutes_between(start, stage_log.last("remind")) == 90, label
    assert len(sim.messages(CHANNEL)) == days_run
    assert len(sim.dms_to(BOB)) == days_run
    assert len(smtp.wait_for(days_run)) == days_run


@pytest.mark.parametrize("night", NIGHTS, ids=night_id)
def test_run_on_a_transition_night_sleeps_the_real_time_between_wall_times(
    night: Night, make_settings, make_ctx, clock, stage_log, sim, smtp
) -> None:
    # 2026's night (the schedule test above covers 2027's too; one year keeps the suite fast).
    change = transition(night.zone, night.kind, 2026)
    ctx = make_ctx(make_settings(**night_settings(night)))
    start = local_instant(night.zone, change.day, clock_time(night.prompt), change.before)
    sleeps = run_day(ctx, clock, change.day, start)
    remind_at, digest_at = stage_log.last("remind"), stage_log.last("digest")
    assert wall(remind_at, night.zone) == f"{change.day} {night.remind_wall}"
    assert wall(digest_at, night.zone) == f"{change.day} {night.digest}{show_offset(change.after)}"
    assert minutes_between(start, remind_at) == night.to_remind
    assert sum(sleeps) == night.to_digest * 60 != night.naive_minutes() * 60
    # `run` and `schedule` agree on every instant, skipped and repeated times included.
    fires = first_fires_on(team_settings(**night_settings(night)), change)
    assert [fires[stage] for stage in STAGE_NAMES] == [start, remind_at, digest_at]
    # Once each, whatever the wall clock did in between.
    assert len(sim.messages(CHANNEL)) == 1
    assert len(sim.dms_to(BOB)) == 1 and len(sim.dms_to(ALICE)) == 1
    [mail] = smtp.wait_for(1)
    assert str(change.day) in str(mail.message["Subject"])


def test_the_second_firing_of_a_time_repeated_by_fall_back_does_nothing(
    make_settings, make_ctx, clock, sim
) -> None:
    settings = make_settings(
        TIMEZONE=BERLIN, WORKDAYS=list(SUN_THU), PROMPT_TIME="02:30", REMIND_TIME="03:30", DIGEST_TIME="04:00"
    )
    change = transition(BERLIN, FALL, 2026)
    start = local_instant(BERLIN, change.day, dt.time(0), change.before)
    prompt_trigger = dict(stage_triggers(settings))["prompt"]
    fires = fire_times(prompt_trigger, start, start + dt.timedelta(days=1))
    contexts = []
    for fire in fires:
        clock.current = fire
        contexts.append(make_ctx(settings))
        _fire(lambda: contexts[-1], "prompt")
    assert wall(fires[0], BERLIN) == f"{change.day} 02:30+02:00"
    assert len(sim.messages(CHANNEL)) == 1
    assert contexts[0].say.lines == [f"prompt for {change.day} posted in {CHANNEL}"]
    for later in contexts[1:]:
        assert later.say.lines == [
            f"prompt for {change.day} already done; nothing to do (use --force to do it again)"
        ]


@dataclass
class TeamZoneClock(FakeClock):
    """A correct clock that reports the time in the team's zone rather than in UTC."""

    zone: str = "UTC"

    def now(self) -> dt.datetime:
        return self.current.astimezone(ZoneInfo(self.zone))


@pytest.mark.parametrize(
    "reported_in",
    [
        pytest.param("UTC", id="clock-in-UTC"),
        pytest.param(BERLIN, id="clock-in-the-team-zone"),
    ],
)
def test_wait_until_is_exact_across_the_gap_whatever_zone_the_clock_reports(reported_in: str) -> None:
    change = transition(BERLIN, SPRING, 2026)
    settings = team_settings(TIMEZONE=BERLIN, PROMPT_TIME="01:03", REMIND_TIME="03:02", DIGEST_TIME="04:00")
    clock = TeamZoneClock(local_instant(BERLIN, change.day, dt.time(1, 3), change.before), zone=reported_in)
    ctx = stages.Context(settings, None, None, now=clock.now, sleep=clock.sleep)  # type: ignore[arg-type]
    target = ctx.local(change.day, settings.remind_time)
    stages.wait_until(ctx, target)
    assert wall(clock.current, BERLIN) == f"{change.day} 03:02+02:00"
    assert sum(clock.slept) == 59 * 60


# -- 3. "today" is the team's date, never the server's -----------------------------------------
@pytest.fixture
def server_tz() -> Iterator[Callable[[str], None]]:
    """Set the process's TZ (as if the server lived there); restore it afterwards."""
    saved = os.environ.get("TZ")

    def set_tz(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_tz
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


# 23:50 local is already tomorrow in Kiritimati (+14, even 15 minutes past Chatham's +13:45);
# 00:10 local is still yesterday in Pago Pago (-11).
EVENING, LATE_SERVER = dt.time(23, 50), "Pacific/Kiritimati"
MORNING, EARLY_SERVER = dt.time(0, 10), "Pacific/Pago_Pago"
THURSDAY = dt.date(2026, 11, 26)


def server_date(moment: dt.datetime) -> dt.date:
    """The date the server's own clock shows (process TZ)."""
    return dt.date(*time.localtime(moment.timestamp())[:3])


def team_instant(zone: str, day: dt.date, at: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


TODAY_CASES = [
    pytest.param(zone, day, at, server, id=f"{zone}-{day}-{at:%H:%M}-server-in-{server}")
    for zone in ZONES
    for day, at, server in (
        (THURSDAY, EVENING, LATE_SERVER),
        (THURSDAY + dt.timedelta(days=1), MORNING, EARLY_SERVER),
        # Berlin's fall-back night, and just after midnight on New Year's Eve.
        (dt.date(2026, 10, 25), EVENING, LATE_SERVER),
        (dt.date(2027, 1, 1), MORNING, EARLY_SERVER),
    )
]


@pytest.mark.parametrize(("zone", "day", "at", "server"), TODAY_CASES)
def test_today_is_the_team_date_whatever_the_server_zone(
    zone: str, day: dt.date, at: dt.time, server: str, server_tz: Callable[[str], None]
) -> None:
    server_tz(server)
    moment = team_instant(zone, day, at)
    assert server_date(moment) != day  # the server's own calendar would be wrong here
    for reported in (moment, moment.astimezone(ZoneInfo(server)), moment.astimezone()):
        ctx = stages.Context(team_settings(TIMEZONE=zone), store=None, slack=None,  # type: ignore[arg-type]
                             now=lambda reported=reported: reported, sleep=lambda s: None)
        assert ctx.today() == day


def test_one_instant_is_a_different_date_for_each_team() -> None:
    moment = team_instant(BERLIN, THURSDAY, dt.time(23, 30))  # 22:30 UTC
    today = {
        zone: stages.Context(team_settings(TIMEZONE=zone), store=None, slack=None,  # type: ignore[arg-type]
                             now=lambda: moment, sleep=lambda s: None).today()
        for zone in ZONES
    }
    friday = THURSDAY + dt.timedelta(days=1)
    assert today == {NEW_YORK: THURSDAY, BERLIN: THURSDAY, SYDNEY: friday, KOLKATA: friday, CHATHAM: friday}


@pytest.fixture
def standup_cli(tmp_path: Path, sim, smtp, clock: FakeClock) -> Callable[..., tuple[int, str, str]]:
    """Return a function that writes a config for `zone` and runs `standup.py ARGS` in-process."""

    def run(zone: str, *args: str) -> tuple[int, str, str]:
        values = {
            "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": sim.base_url, "STANDUP_CHANNEL": CHANNEL,
            "MEMBERS": [ALICE, BOB], "TIMEZONE": zone, "SMTP_HOST": smtp.host, "SMTP_PORT": smtp.port,
            "SMTP_SECURITY": "none", "MAIL_FROM": "standup@example.com",
            "DIGEST_RECIPIENTS": ["lead@example.com"], "DATA_DIR": str(tmp_path / "data"),
            "WORKDAYS": list(EVERY_DAY),
        }
        config = tmp_path / "config.py"
        config.write_text("".join(f"{name} = {value!r}\n" for name, value in values.items()), "utf-8")
        out, err = io.StringIO(), io.StringIO()
        code = cli.main([*args, "--config", str(config)], environ={}, now=clock.now, sleep=clock.sleep,
                        stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.mark.parametrize("zone", ZONES)
def test_prompt_and_run_act_on_the_team_date_near_midnight(
    zone: str, standup_cli, clock: FakeClock, server_tz, sim, smtp
) -> None:
    friday = THURSDAY + dt.timedelta(days=1)
    # 23:50 on Thursday for the team; Friday already on the server.
    server_tz(LATE_SERVER)
    clock.current = team_instant(zone, THURSDAY, EVENING)
    assert server_date(clock.current) == friday
    code, out, err = standup_cli(zone, "prompt")
    assert (code, err) == (0, "")
    assert f"prompt for {THURSDAY} posted" in out
    [prompt] = sim.messages(CHANNEL)
    assert prompt["text"].startswith(f"Standup for Thursday {THURSDAY}:")
    assert f"({zone})" in prompt["text"]
    # 00:10 on Friday for the team; still Thursday on the server.
    server_tz(EARLY_SERVER)
    clock.current = team_instant(zone, friday, MORNING)
    assert server_date(clock.current) < friday
    clock.slept.clear()
    code, out, err = standup_cli(zone, "run")
    assert (code, err) == (0, "")
    assert f"prompt for {friday} posted" in out and f"digest for {friday} sent" in out
    assert sim.messages(CHANNEL)[-1]["text"].startswith(f"Standup for Friday {friday}:")
    # It waited for Friday's 11:30 and 12:00 in the team's zone: 11 h 50 min from 00:10.
    assert sum(clock.slept) == (11 * 60 + 50) * 60
    assert wall(clock.current, zone).startswith(f"{friday} 12:00")
    [mail] = smtp.wait_for(1)
    assert str(friday) in str(mail.message["Subject"])


# -- 4. offsets that are not whole hours: exact to the minute --------------------------------
ODD_MINUTES = {"PROMPT_TIME": "09:07", "REMIND_TIME": "09:41", "DIGEST_TIME": "10:13"}
ODD_CASES = [
    # zone, standup date, and the UTC instants of 09:07, 09:41 and 10:13 local, worked out by hand.
    pytest.param(KOLKATA, dt.date(2026, 7, 15), ("2026-07-15 03:37", "2026-07-15 04:11", "2026-07-15 04:43"),
                 id="Asia/Kolkata-+05:30"),
    pytest.param(KOLKATA, dt.date(2027, 1, 14), ("2027-01-14 03:37", "2027-01-14 04:11", "2027-01-14 04:43"),
                 id="Asia/Kolkata-+05:30-january"),
    pytest.param(CHATHAM, dt.date(2026, 7, 15), ("2026-07-14 20:22", "2026-07-14 20:56", "2026-07-14 21:28"),
                 id="Pacific/Chatham-+12:45-winter"),
    pytest.param(CHATHAM, dt.date(2027, 1, 14), ("2027-01-13 19:22", "2027-01-13 19:56", "2027-01-13 20:28"),
                 id="Pacific/Chatham-+13:45-summer"),
]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("zone", "day", "expected"), ODD_CASES)
def test_schedule_is_exact_to_the_minute_on_a_non_whole_hour_offset(
    zone: str, day: dt.date, expected: tuple[str, str, str]
) -> None:
    settings = team_settings(TIMEZONE=zone, **ODD_MINUTES)
    start = utc(expected[0]) - dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=4)
    fires = {stage: fire_times(trigger, start, end) for stage, trigger in stage_triggers(settings)}
    assert [fires[stage] for stage in STAGE_NAMES] == [[utc(text)] for text in expected]


@pytest.mark.parametrize(("zone", "day", "expected"), ODD_CASES)
def test_run_is_exact_to_the_minute_on_a_non_whole_hour_offset(
    zone: str, day: dt.date, expected: tuple[str, str, str], make_settings, make_ctx, clock, stage_log
) -> None:
    ctx = make_ctx(make_settings(TIMEZONE=zone, **ODD_MINUTES))
    sleeps = run_day(ctx, clock, day, utc(expected[0]))
    assert [stage_log.last(stage) for stage in STAGE_NAMES] == [utc(text) for text in expected]
    assert sum(sleeps) == 66 * 60

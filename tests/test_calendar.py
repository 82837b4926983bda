"""Standup dates: WORKDAYS, public holidays (the holidays library) and SKIP_DATES."""

from __future__ import annotations

import datetime as dt

import pytest

from standup_bot import stages
from standup_bot.calendar_days import StandupCalendar
from standup_bot.errors import ConfigError
from standup_bot.settings import settings_from_mapping
from tests.conftest import CHANNEL
from tests.test_settings import VALID

WEEK = ("mon", "tue", "wed", "thu", "fri")


def test_german_holidays_and_skip_dates_over_christmas():
    calendar = StandupCalendar(WEEK, "DE", frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 31)}))
    assert calendar.next_dates(dt.date(2026, 12, 21)) == [
        dt.date(2026, 12, 21), dt.date(2026, 12, 22), dt.date(2026, 12, 23),
        dt.date(2026, 12, 28), dt.date(2026, 12, 29),
    ]
    assert calendar.why_not(dt.date(2026, 12, 25)) == "2026-12-25 is a public holiday in DE (Christmas Day)"
    assert calendar.why_not(dt.date(2026, 12, 24)) == "2026-12-24 is in SKIP_DATES"
    assert calendar.why_not(dt.date(2027, 1, 1)) == "2027-01-01 is a public holiday in DE (New Year's Day)"


def test_a_subdivision_adds_its_own_holidays():
    epiphany = dt.date(2027, 1, 6)  # a holiday in Bavaria, not in Berlin
    assert StandupCalendar(WEEK, "DE-BY").why_not(epiphany) is not None
    assert StandupCalendar(WEEK, "DE-BE").why_not(epiphany) is None


@pytest.mark.parametrize(
    ("workdays", "start", "expected"),
    [
        (("mon", "wed", "fri"), dt.date(2026, 11, 26), ["2026-11-27", "2026-11-30", "2026-12-02"]),
        (("sun", "mon", "tue", "wed", "thu"), dt.date(2026, 11, 27), ["2026-11-29", "2026-11-30", "2026-12-01"]),
    ],
)
def test_any_set_of_weekdays(workdays, start, expected):
    assert [d.isoformat() for d in StandupCalendar(workdays).next_dates(start, 3)] == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HOLIDAYS", "XX", "'XX' is not a country the holidays library knows"),
        ("HOLIDAYS", "DE-ZZ", "'DE-ZZ': DE has no subdivision 'ZZ' (known: "),
        ("HOLIDAYS", 49, "must be a string"),
        ("SKIP_DATES", "2026-12-24", "must be a list of ISO dates"),
        ("SKIP_DATES", ["2026-12-24", "24.12.2026"], "'24.12.2026' is not a date: use YYYY-MM-DD"),
    ],
)
def test_bad_calendar_settings_name_the_setting(name, value, message):
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({**VALID, name: value})
    [problem] = caught.value.problems
    assert problem.startswith(f"{name}: ") and message in problem


def test_calendar_settings_are_read(tmp_path):
    settings = settings_from_mapping({**VALID, "HOLIDAYS": "de-by", "SKIP_DATES": ["2026-12-31", "2026-12-24"]})
    assert settings.holidays == "DE-BY"
    assert settings.skip_dates == (dt.date(2026, 12, 24), dt.date(2026, 12, 31))


def test_run_on_a_holiday_does_nothing_and_says_why(make_ctx, make_settings, sim):
    ctx = make_ctx(make_settings(HOLIDAYS="DE"))
    stages.run(ctx, dt.date(2026, 12, 25))
    assert sim.messages(CHANNEL) == []
    assert ctx.say.lines == [
        "2026-12-25 is a public holiday in DE (Christmas Day): no standup (--force runs it anyway)"]


def test_a_single_stage_on_a_day_off_says_why_and_does_nothing_unless_forced(sim, smtp, tmp_path, clock):
    import io

    from standup_bot.cli import main

    config = tmp_path / "config.py"
    config.write_text(
        f"SLACK_BOT_TOKEN = 'xoxb-test-token'\nSLACK_API_URL = {sim.base_url!r}\nSTANDUP_CHANNEL = {CHANNEL!r}\n"
        f"MEMBERS = ['UALICE', 'UBOB']\nSMTP_HOST = {smtp.host!r}\nSMTP_PORT = {smtp.port}\n"
        "SMTP_SECURITY = 'none'\nMAIL_FROM = 'a@example.com'\nDIGEST_RECIPIENTS = ['b@example.com']\n"
        f"DATA_DIR = {str(tmp_path / 'data')!r}\nTIMEZONE = 'Europe/Berlin'\nSKIP_DATES = ['2026-11-26']\n"
    )
    out = io.StringIO()
    assert main(["prompt", "--config", str(config)], now=clock.now, stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue() == "2026-11-26 is in SKIP_DATES: no prompt (--force does it anyway)\n"
    assert sim.messages(CHANNEL) == []
    assert main(["prompt", "--force", "--config", str(config)], now=clock.now, stdout=out, stderr=io.StringIO()) == 0
    assert len(sim.messages(CHANNEL)) == 1

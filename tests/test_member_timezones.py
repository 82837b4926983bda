"""PER_MEMBER_TIMEZONE: each member reminded at REMIND_TIME in their own zone, before the digest."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from standup_bot import stages
from standup_bot.member_time import member_remind_at, not_yet_due
from standup_bot.scheduler import member_reminder_trigger
from tests.conftest import DAY, FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
# Team in Berlin (prompt 10:00, remind 11:30, digest 12:00 CET on 2026-11-26).
CAST = {
    "UBERLIN": "Europe/Berlin",       # 11:30 CET
    "UHELSINKI": "Europe/Helsinki",   # 11:30 EET = 10:30 CET: between prompt and digest
    "UKOLKATA": "Asia/Kolkata",       # 11:30 IST = 07:00 CET: before the prompt, so the team's 11:30
    "ULONDON": "Europe/London",       # 11:30 GMT = 12:30 CET: after the digest, never reminded
    "UNEWYORK": "America/New_York",   # 10:00 ET = 16:00 CET: their day starts after the digest
}


def _cet(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 26, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def team(sim, make_settings, make_ctx):
    for user, tz in CAST.items():
        sim.add_user(user, user.lower()[1:], display_name=user[1:].title(), tz=tz)
    sim.add_channel("C0WORLDTEAM", "world", list(CAST))
    settings = make_settings(STANDUP_CHANNEL="C0WORLDTEAM", MEMBERS=list(CAST), PER_MEMBER_TIMEZONE=True)
    return settings, make_ctx(settings)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Berlin", _cet(11, 30)),
        ("Europe/Helsinki", _cet(10, 30)),
        ("Asia/Kolkata", _cet(11, 30)),
        ("Europe/London", None),
        ("America/New_York", None),
    ],
)
def test_when_each_member_is_reminded(team, zone, expected):
    settings, _ = team
    assert member_remind_at(settings, DAY, ZoneInfo(zone)) == expected


def test_who_is_not_yet_due_at_the_digest(team):
    settings, _ = team
    assert [u for u, tz in CAST.items() if not_yet_due(settings, DAY, ZoneInfo(tz))] == ["UNEWYORK"]


def test_run_reminds_each_member_at_their_own_time_and_the_digest_says_who_is_not_yet_due(
    team, sim, smtp, clock: FakeClock, monkeypatch
):
    _, ctx = team
    reminded_at: dict[str, dt.datetime] = {}
    original_remind = stages.remind

    def remind_and_note(*args, **kwargs):
        result = original_remind(*args, **kwargs)
        for user in CAST:
            if sim.dms_to(user) and user not in reminded_at:
                reminded_at[user] = clock.now().astimezone(BERLIN)
        return result

    monkeypatch.setattr(stages, "remind", remind_and_note)
    stages.run(ctx, DAY)

    assert reminded_at == {
        "UHELSINKI": _cet(10, 30), "UBERLIN": _cet(11, 30), "UKOLKATA": _cet(11, 30),
    }
    assert all(len(sim.dms_to(user)) <= 1 for user in CAST)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    missing = text.split("Not reported:")[1].split("Not yet due")[0]
    assert "London" in missing and "Newyork" not in missing
    assert "Newyork" in text.split("Not yet due")[1]
    assert "(0 of 4 reported)" in smtp.messages[0].message["Subject"]


def test_a_partial_reminder_stage_is_shown_and_picked_up_by_the_next_run(team, sim, store, clock: FakeClock):
    _, ctx = team
    stages.prompt(ctx, DAY)
    clock.advance(minutes=45)  # 10:45 CET: only Helsinki is due
    assert stages.remind(ctx, DAY) == _cet(11, 30)
    run = store.stage_run("C0WORLDTEAM", DAY, "remind")
    assert (run.status, run.last_error) == ("partial", "2 member(s) due later, the next at 11:30 CET")
    clock.advance(minutes=45)  # 11:30
    assert stages.remind(ctx, DAY) is None
    assert store.stage_run("C0WORLDTEAM", DAY, "remind").status == "done"
    assert {u for u in CAST if sim.dms_to(u)} == {"UHELSINKI", "UBERLIN", "UKOLKATA"}


def test_the_scheduler_checks_for_due_reminders_every_five_minutes_of_the_standup(team):
    settings, _ = team
    trigger = member_reminder_trigger(settings)
    first = trigger.get_next_fire_time(None, _cet(9, 0))
    assert first == _cet(10, 0)
    assert trigger.get_next_fire_time(None, _cet(10, 31)) == _cet(10, 35)


def test_reminders_read_the_members_time_zones_from_users_list_not_one_users_info_each(
    sim, make_settings, make_ctx, clock: FakeClock
):
    zones = list(CAST.values())
    team = {f"UTZ{i:03d}": zones[i % len(zones)] for i in range(60)}
    for user, tz in team.items():
        sim.add_user(user, user.lower(), display_name=user, tz=tz)
    sim.add_channel("C0WORLDTEAM", "world", list(team))
    # AWAY_STATUS off: no users.list pass for statuses fills the cache first, so the zones
    # must come from the reminder's own bulk lookup (one users.info each would fail this test).
    ctx = make_ctx(make_settings(STANDUP_CHANNEL="C0WORLDTEAM", MEMBERS=list(team), PER_MEMBER_TIMEZONE=True,
                                 AWAY_STATUS=[]))
    stages.prompt(ctx, DAY)
    clock.advance(minutes=45)  # 10:45 CET: only Helsinki is due

    assert stages.remind(ctx, DAY) == _cet(11, 30)

    assert {u for u in team if sim.dms_to(u)} == {u for u, tz in team.items() if tz == "Europe/Helsinki"}
    assert sim.calls("users.info") == []
    assert len(sim.calls("users.list")) == 1

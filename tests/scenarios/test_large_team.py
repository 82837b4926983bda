"""A team too big to look up member by member: names, zones and statuses from users.list pages.

With fewer than stages.USERS_LIST_FROM members to look up, the stages call users.info for
each (as in the rest of the suite); from there on they read users.list instead, once per
run, and cache everyone it showed in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from standup_bot import stages
from standup_bot.settings import DEFAULT_AWAY_STATUS
from standup_bot.stages import LIST_READ_PER_MISSING, USERS_LIST_FROM
from tests.conftest import ALICE, BOB, CHANNEL, DAY

TEAM_CHANNEL = "C0BIGTEAM"
TEAM = [f"UTEAM{i:03d}" for i in range(16)]
REPORTERS, ABSENT = TEAM[:10], TEAM[10:]  # six do not report


def _name(user: str) -> str:
    return f"Member {user[-3:]}"


def _calls_from_now(sim) -> Callable[[str], list[dict]]:
    """Return a function giving the params of the calls to a method made from now on."""
    start = len(sim.requests)
    return lambda method: [r.params for r in sim.requests[start:] if r.method == method]


@pytest.fixture
def team(sim, make_settings, make_ctx):
    """Return a factory of contexts for the big team (Slack statuses ignored unless asked)."""
    for user in TEAM:
        sim.add_user(user, user.lower(), display_name=_name(user), tz="Europe/Berlin")
    sim.add_channel(TEAM_CHANNEL, "big-team", TEAM)

    def make(**overrides):
        values = {"STANDUP_CHANNEL": TEAM_CHANNEL, "MEMBERS": TEAM, "AWAY_STATUS": [], **overrides}
        return make_ctx(make_settings(**values))

    return make


def _day_with_reports(sim, ctx, store) -> None:
    stages.prompt(ctx, DAY)
    thread = store.prompt_ts(TEAM_CHANNEL, DAY)
    for i, user in enumerate(REPORTERS):
        sim.user_posts(
            user, TEAM_CHANNEL, f"Yesterday: fixed {i} with <@{ABSENT[-1]}>\nToday: more\nBlockers: none",
            thread_ts=thread,
        )


def _digest_text(smtp, number: int = 1) -> str:
    return smtp.wait_for(number)[number - 1].message.get_body(("plain",)).get_content()


def test_the_team_is_large_enough_to_use_users_list():
    assert len(ABSENT) >= USERS_LIST_FROM


def test_a_large_team_s_digest_reads_every_name_from_one_users_list_pass(team, sim, store, smtp):
    ctx = team()
    _day_with_reports(sim, ctx, store)
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY)

    assert len(calls("users.list")) == 1  # one page holds the simulator's whole workspace
    assert calls("users.info") == []
    text = _digest_text(smtp)
    assert all(_name(user) in text for user in REPORTERS)
    assert f"@{_name(ABSENT[-1])}" in text  # the member mentioned in the reports
    assert "Not reported:\n" + "".join(f"  - {_name(user)}\n" for user in ABSENT) in text


def test_names_from_the_pass_are_cached_for_the_next_digest(team, sim, store, smtp):
    ctx = team()
    _day_with_reports(sim, ctx, store)
    stages.digest(ctx, DAY)
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY, force=True)

    assert calls("users.list") == []
    assert calls("users.info") == []
    assert _name(REPORTERS[0]) in _digest_text(smtp, 2)


def test_a_failing_users_list_still_sends_the_digest_with_names_from_users_info(team, sim, store, smtp, caplog):
    ctx = team()
    _day_with_reports(sim, ctx, store)
    sim.fail("users.list", error="missing_scope", extra={"needed": "users:read"})
    calls = _calls_from_now(sim)

    with caplog.at_level(logging.WARNING, logger="standup_bot.stages"):
        stages.digest(ctx, DAY)

    assert len(calls("users.list")) == 1
    assert sorted(call["user"] for call in calls("users.info")) == TEAM
    text = _digest_text(smtp)
    assert all(_name(user) in text for user in TEAM)
    assert "could not list the workspace's members" in caplog.text
    assert store.stage_run(TEAM_CHANNEL, DAY, "digest").status == "done"


def test_when_users_info_fails_too_the_digest_names_members_by_their_id(team, sim, store, smtp):
    ctx = team()
    _day_with_reports(sim, ctx, store)
    sim.fail("users.list", error="missing_scope", extra={"needed": "users:read"})
    sim.fail("users.info", error="missing_scope", extra={"needed": "users:read"}, times=len(TEAM))

    stages.digest(ctx, DAY)

    text = _digest_text(smtp)
    assert all(f"\n{user}\n" in text for user in REPORTERS)  # each report under its author's ID
    assert all(f"  - {user}\n" in text for user in ABSENT)
    assert store.stage_run(TEAM_CHANNEL, DAY, "digest").status == "done"


def test_the_users_list_pass_stops_once_every_member_wanted_was_seen(team, sim, store, smtp):
    # 1,500 more members after the team: a users.list page holds 1,000, so the team is on the first.
    for i in range(1500):
        sim.add_user(f"UOTHER{i:04d}", f"other{i}")
    ctx = team()
    _day_with_reports(sim, ctx, store)
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY)

    assert [call.get("cursor") for call in calls("users.list")] == [None]  # the first page only
    assert calls("users.info") == []


def test_a_few_members_after_many_others_are_looked_up_one_by_one(sim, make_settings, make_ctx, store, smtp):
    # Five members to look up, listed after 1,000 others: users.list may read 5 x 200 = 1,000
    # members (one page) for them, then it is cheaper to ask users.info about each.
    assert USERS_LIST_FROM * LIST_READ_PER_MISSING == 1000
    for i in range(1000):
        sim.add_user(f"UOTHER{i:04d}", f"other{i}")
    late = [f"ULATE{i}" for i in range(USERS_LIST_FROM)]
    for user in late:
        sim.add_user(user, user.lower(), display_name=f"Late {user[-1]}")
    sim.add_channel("C0LATECOMERS", "late", late)
    ctx = make_ctx(make_settings(STANDUP_CHANNEL="C0LATECOMERS", MEMBERS=late, AWAY_STATUS=[]))
    stages.prompt(ctx, DAY)
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY)

    assert len(calls("users.list")) == 1
    assert sorted(call["user"] for call in calls("users.info")) == late
    assert all(f"Late {i}" in _digest_text(smtp) for i in range(USERS_LIST_FROM))


def test_away_statuses_of_a_large_team_are_read_fresh_from_one_users_list_pass_per_run(team, sim, store, smtp):
    ctx = team(AWAY_STATUS=list(DEFAULT_AWAY_STATUS))
    sim.set_status(ABSENT[0], "On vacation", ":palm_tree:")
    _day_with_reports(sim, ctx, store)
    calls = _calls_from_now(sim)

    stages.remind(ctx, DAY)

    assert len(calls("users.list")) == 1
    assert calls("users.info") == []
    assert sim.dms_to(ABSENT[0]) == []
    assert all(len(sim.dms_to(user)) == 1 for user in ABSENT[1:])

    sim.set_status(ABSENT[1], "Out sick")  # since the reminders: the digest reads statuses again
    calls = _calls_from_now(sim)
    stages.digest(ctx, DAY)

    assert len(calls("users.list")) == 1  # the statuses; the names it cached serve the digest too
    assert calls("users.info") == []
    text = _digest_text(smtp)
    assert f"{_name(ABSENT[0])} (away)" in text
    assert f"{_name(ABSENT[1])} (away)" in text
    assert f"{_name(ABSENT[2])} (away)" not in text


def test_member_zones_of_a_large_team_come_from_users_list(sim, make_settings, make_ctx, store, smtp):
    far = [f"UFAR{i}" for i in range(USERS_LIST_FROM)]
    for user in far:
        sim.add_user(user, user.lower(), display_name=f"Far {user[-1]}", tz="America/New_York")
    sim.add_channel("C0FARAWAY", "far", far)
    settings = make_settings(STANDUP_CHANNEL="C0FARAWAY", MEMBERS=far, PER_MEMBER_TIMEZONE=True, AWAY_STATUS=[])
    ctx = make_ctx(settings)
    stages.prompt(ctx, DAY)
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY)

    assert len(calls("users.list")) == 1
    assert calls("users.info") == []
    text = _digest_text(smtp)
    assert "Not yet due (their working day starts after the digest):" in text
    assert all(f"  - Far {i}\n" in text for i in range(USERS_LIST_FROM))


def test_a_small_team_is_still_looked_up_member_by_member(ctx, sim, store, smtp):
    stages.prompt(ctx, DAY)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: a\nToday: b", thread_ts=store.prompt_ts(CHANNEL, DAY))
    calls = _calls_from_now(sim)

    stages.digest(ctx, DAY)

    assert calls("users.list") == []
    assert {call["user"] for call in calls("users.info")} == {ALICE, BOB}


@pytest.mark.parametrize("enabled", [True, False])
def test_the_digest_leaves_the_garbage_collector_as_it_found_it(team, sim, store, smtp, enabled):
    import gc

    ctx = team()
    _day_with_reports(sim, ctx, store)
    (gc.enable if enabled else gc.disable)()
    try:
        stages.digest(ctx, DAY)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()

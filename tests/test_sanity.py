"""The sanity checks' pure parts: runs of missed standups and of the same blocker, their settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from standup_bot.errors import ConfigError
from standup_bot.sanity import blocker_run, blocker_runs, missed_run
from standup_bot.settings import settings_from_mapping

D = [dt.date(2026, 11, 26) - dt.timedelta(days=n) for n in range(6)]  # newest first


def test_missed_run_counts_back_to_the_last_report_and_skips_days_away():
    reporters = {D[0]: {"UALICE"}, D[1]: set(), D[2]: {"UALICE"}, D[3]: set(), D[4]: {"UBOB"}}
    away = {D[1]: {"UBOB"}}

    assert missed_run("UBOB", D, reporters, away) == [D[0], D[2], D[3]]
    assert missed_run("UALICE", D, reporters, away) == []


def test_missed_run_of_someone_who_never_reported_is_every_date():
    assert missed_run("UBOB", D[:3], {}, {}) == D[:3]


def test_blocker_run_follows_similar_blockers_back_until_one_differs():
    earlier = iter([
        (D[1], "still waiting for the VPN token"),
        (D[2], "waiting for the VPN token"),
        (D[3], "the staging DB is down"),
        (D[4], "waiting for the VPN token"),
    ])
    assert blocker_run(D[0], "waiting for the VPN token from IT", earlier) == (3, D[2])


@pytest.mark.parametrize("earlier", [[], [(D[1], None)], [(D[1], "the printer is on fire")]])
def test_blocker_run_of_a_new_blocker_is_one(earlier):
    assert blocker_run(D[0], "waiting for the VPN token", iter(earlier)) == (1, D[0])


def test_blocker_runs_step_back_together_asking_only_about_members_still_in_a_run():
    history = {  # each member's earlier reports, newest first
        "UALICE": [(D[1], "still waiting for the VPN token"), (D[2], "waiting for the VPN token"), (D[3], None)],
        "UBOB": [(D[1], "the printer is on fire")],
        "UCAROL": [(D[2], "the staging DB is down"), (D[4], "the staging DB is down again")],
    }
    asked: list[dict[str, dt.date]] = []

    def earlier(before):
        asked.append(dict(before))
        step = len(asked) - 1
        return {user: history[user][step] for user in before if step < len(history.get(user, []))}

    runs = blocker_runs(D[0], {
        "UALICE": "waiting for the VPN token from IT", "UBOB": "the staging DB is down",
        "UCAROL": "the staging DB is down", "UDAVE": "no laptop",
    }, earlier)

    assert runs == {"UALICE": (3, D[2]), "UBOB": (1, D[0]), "UCAROL": (3, D[4]), "UDAVE": (1, D[0])}
    assert asked == [
        dict.fromkeys(["UALICE", "UBOB", "UCAROL", "UDAVE"], D[0]),
        {"UALICE": D[1], "UCAROL": D[2]},
        {"UALICE": D[2], "UCAROL": D[4]},
    ]


def _values(**overrides: Any) -> dict[str, Any]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-x", "STANDUP_CHANNEL": "C0STANDUP", "SMTP_HOST": "localhost",
        "MAIL_FROM": "bot@example.com", "DIGEST_RECIPIENTS": ["lead@example.com"], **overrides,
    }


def test_sanity_settings_default_to_all_checks_three_days_and_a_week():
    settings = settings_from_mapping(_values())
    assert settings.sanity_checks == ("missed_standups", "same_blocker", "nobody_answered")
    assert (settings.sanity_missed_days, settings.sanity_blocker_days, settings.sanity_repeat_days) == (3, 3, 7)
    assert settings_from_mapping(_values(SANITY_CHECKS=[])).sanity_checks == ()


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("SANITY_MISSED_DAYS", 0, "must be a whole number of standups, at least 1, not 0"),
        ("SANITY_BLOCKER_DAYS", 1, "must be a whole number of reports, at least 2, not 1"),
        ("SANITY_REPEAT_DAYS", "7", "must be a whole number of days, at least 1, not '7'"),
        ("SANITY_CHECKS", ["missed"], "'missed' is not a check: use missed_standups, same_blocker, nobody_answered"),
        ("SANITY_CHECKS", "missed_standups", "must be a list of check names, e.g. "
                                             "['missed_standups', 'same_blocker', 'nobody_answered']"),
    ],
)
def test_bad_sanity_settings_are_one_line_each(name, value, problem):
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(_values(**{name: value}))
    assert raised.value.problems == [f"{name}: {problem}"]

"""Time away: `/standup away|back|skip`, `standup.py away|back`, and vacation statuses."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import urllib.parse

import pytest

from standup_bot import stages
from standup_bot.away import AwayInputError, parse_request
from standup_bot.cli import main
from standup_bot.reports import status_means_away
from standup_bot.settings import DEFAULT_AWAY_STATUS
from tests.conftest import ALICE, BOB, CHANNEL, DAY, SIGNING_SECRET, LiveListener

TODAY = DAY
_TRIGGERS = itertools.count(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("help", None, None)),
        ("help", ("help", None, None)),
        ("away 2026-12-22 2027-01-02", ("away", dt.date(2026, 12, 22), dt.date(2027, 1, 2))),
        ("AWAY 2026-11-27", ("away", dt.date(2026, 11, 27), dt.date(2026, 11, 27))),
        ("back", ("back", None, None)),
        ("skip", ("skip", TODAY, TODAY)),
    ],
)
def test_requests_are_parsed(text, expected):
    request = parse_request(text, TODAY)
    assert (request.action, request.start, request.end) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("holiday", "I don't know `holiday`"),
        ("away", "`away` needs one or two dates"),
        ("away 22.12.2026", "`22.12.2026` is not a date: write it as YYYY-MM-DD"),
        ("away 2026-12-30 2026-12-22", "The last day (2026-12-22) is before the first (2026-12-30)"),
        ("away 2026-01-01 2026-01-05", "That is all in the past (today is 2026-11-26)"),
        ("away 2026-12-01 2028-01-01", "more than a year"),
        ("skip tomorrow", "`skip` takes no dates"),
    ],
)
def test_bad_requests_say_how_to_write_them(text, message):
    with pytest.raises(AwayInputError, match=re.escape(message)):
        parse_request(text, TODAY)


def _slash(sim, listener: LiveListener, user: str, text: str) -> tuple[int, str]:
    body = urllib.parse.urlencode({
        "token": "XXYYZZ", "team_id": "T0TEST", "channel_id": CHANNEL, "user_id": user,
        "command": "/standup", "text": text, "response_url": "https://hooks.example.com/x",
        "trigger_id": f"{next(_TRIGGERS)}.2.3",  # Slack's is unique per invocation
    }).encode()
    status, answer = sim.send_signed(
        listener.url, body, SIGNING_SECRET, headers={"Content-Type": "application/x-www-form-urlencoded"})
    decoded = answer.decode()
    return status, json.loads(decoded)["text"] if decoded.startswith("{") else decoded


def test_slash_away_confirms_ephemerally_and_the_member_is_not_reminded(sim, store, ctx, listener, smtp):
    status, answer = _slash(sim, listener, BOB, "away 2026-11-26 2026-11-30")
    assert status == 200
    assert answer.startswith("OK, you are away Thu 2026-11-26 to Mon 2026-11-30: no reminders")

    stages.prompt(ctx, DAY)
    stages.remind(ctx, DAY)
    assert sim.dms_to(BOB) == [] and len(sim.dms_to(ALICE)) == 1
    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "Bob Brown (away)" in text
    assert "Bob Brown" not in text.split("Not reported:")[1].split("Away:")[0]


def test_slash_back_and_skip(sim, store, listener):
    assert _slash(sim, listener, BOB, "back")[1] == "You were not marked away, so nothing changed."
    assert _slash(sim, listener, BOB, "skip")[1].startswith("OK, you skip today's standup (")
    assert _slash(sim, listener, BOB, "back")[1] == "Welcome back: reminders are on again from today."
    assert _slash(sim, listener, BOB, "away yesterday")[1].startswith("`yesterday` is not a date")


def test_an_admin_marks_a_member_away_and_back_from_the_command_line(settings, store, clock, ctx, sim):
    config_dir = settings.data_dir.parent / "conf"
    config_dir.mkdir()
    config = config_dir / "config.py"
    config.write_text(
        f"SLACK_BOT_TOKEN = 'xoxb-test-token'\nSTANDUP_CHANNEL = {CHANNEL!r}\nSMTP_HOST = 'localhost'\n"
        f"MAIL_FROM = 'a@example.com'\nDIGEST_RECIPIENTS = ['b@example.com']\nDATA_DIR = {str(settings.data_dir)!r}\n"
        "TIMEZONE = 'Europe/Berlin'\n"
    )
    out, err = io.StringIO(), io.StringIO()
    assert main(["away", BOB, "2026-11-26", "2026-11-27", "--config", str(config)], now=clock.now, stdout=out, stderr=err) == 0
    assert out.getvalue().startswith("UBOB: OK, you are away Thu 2026-11-26 to Fri 2026-11-27")
    assert store.away_on(CHANNEL, DAY) == {BOB}

    assert main(["back", BOB, "--config", str(config)], now=clock.now, stdout=out, stderr=err) == 0
    assert store.away_on(CHANNEL, DAY) == set()
    assert main(["away", "bob", "2026-11-26", "--config", str(config)], now=clock.now, stdout=out, stderr=err) == 2
    assert err.getvalue().strip() == (
        "error: 'bob' is not a member ID (U… or W…); usage: standup.py away MEMBER FROM [TO]  |  standup.py back MEMBER")


def test_a_vacation_status_counts_as_away_today(sim, ctx, smtp):
    sim.set_status(BOB, "On vacation until Monday", ":palm_tree:")
    stages.prompt(ctx, DAY)
    stages.remind(ctx, DAY)
    assert sim.dms_to(BOB) == []
    stages.digest(ctx, DAY)
    assert "Bob Brown (away)" in smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()


def test_a_status_only_counts_for_today_not_for_a_past_date(sim, make_ctx, make_settings, clock):
    sim.set_status(BOB, "Vacation")
    ctx = make_ctx(make_settings())
    clock.advance(days=1)  # acting on yesterday's standup today
    stages.prompt(ctx, DAY)
    stages.remind(ctx, DAY)
    assert len(sim.dms_to(BOB)) == 1


@pytest.mark.parametrize(
    ("profile", "away"),
    [
        ({"status_emoji": ":palm_tree:"}, True),
        ({"status_text": "OOO until Jan 2"}, True),
        ({"status_text": "Out of office"}, True),
        ({"status_text": "Krank"}, True),
        ({"status_text": "reviewing the sickness policy"}, False),
        ({"status_text": "In a meeting", "status_emoji": ":calendar:"}, False),
        ({"status_text": "Vacation", "status_expiration": 100}, False),  # expired
        ({"status_text": "Vacation", "status_expiration": 0}, True),
        ({}, False),
    ],
)
def test_status_words_and_emoji(profile, away):
    assert status_means_away(profile, DEFAULT_AWAY_STATUS, now=1000) is away

"""Sanity checks after the digest, through the real stages, Slack simulator, SMTP server and the
live listener: missed standups, a long-standing blocker, a silent day; findings raised once per
SANITY_REPEAT_DAYS and handled from the command line or the "Mark handled" button."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from standup_bot import cli, sanity, stages
from standup_bot.errors import StoreError
from standup_bot.mail_sink import MailSink
from standup_bot.model import Digest, Reply
from standup_bot.reports import group_reports
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.stages import Context
from standup_bot.store import Store
from tests.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    DAY,
    SIGNING_SECRET,
    TEAM_TZ,
    FakeClock,
    LiveListener,
    wait_for,
)

LEAD, DEPUTY = "ULEAD", "UDEPUTY"
BERLIN = ZoneInfo(TEAM_TZ)
TUE, WED, THU, FRI = (DAY + dt.timedelta(days=n) for n in (-2, -1, 0, 1))
FINE = "Yesterday: the importer\nToday: tests\nBlockers: none"


@pytest.fixture
def settings(make_settings, sim):
    """Settings with a team lead who gets the findings' DMs."""
    sim.add_user(LEAD, "lead", display_name="Lena Lead")
    sim.add_user(DEPUTY, "deputy", display_name="Dan Deputy")
    return make_settings(BLOCKER_CONTACTS=[LEAD])


def _standup(ctx: Context, sim: SlackSimulator, store: Store, clock: FakeClock, date: dt.date,
             posts: dict[str, str]) -> str:
    """Hold a standup day: the prompt at 10:00, the replies, the digest at 12:00; return the prompt's ts."""
    clock.current = dt.datetime.combine(date, dt.time(10), tzinfo=BERLIN)
    stages.prompt(ctx, date)
    ts = store.prompt_ts(CHANNEL, date)
    assert ts is not None
    for user, text in posts.items():
        sim.user_posts(user, CHANNEL, text, thread_ts=ts)
    clock.current = dt.datetime.combine(date, dt.time(12), tzinfo=BERLIN)
    stages.digest(ctx, date)
    return ts


def _finding_dms(sim: SlackSimulator, user: str = LEAD) -> list[dict[str, Any]]:
    """Return the DMs to a member that are about a finding (they carry its number in a context block)."""
    return [
        m for m in sim.dms_to(user)
        if any("Finding #" in str(b.get("elements", "")) for b in m.get("blocks") or [])
    ]


def _buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"]) for b in message.get("blocks") or [] if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_a_member_who_missed_three_standups_in_a_row_is_a_finding_dmed_to_the_contact_once(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    for date in (TUE, WED):
        _standup(ctx, sim, store, clock, date, {ALICE: FINE})
    assert store.findings(CHANNEL) == [] and _finding_dms(sim) == []

    _standup(ctx, sim, store, clock, THU, {ALICE: FINE})

    [finding] = store.findings(CHANNEL)
    assert (finding.kind, finding.subject, finding.date) == ("missed_standups", BOB, THU)
    assert finding.details == (
        "Bob Brown (UBOB) has not reported at 3 standups in a row, since 2026-11-24 (days away not counted)"
    )
    assert finding.created_at == clock.current and finding.handled_at is None
    [dm] = _finding_dms(sim)
    assert dm["text"] == (
        f":warning: Missed standups in <#{CHANNEL}> (standup 2026-11-26): Bob Brown (UBOB) has not reported "
        "at 3 standups in a row, since 2026-11-24 (days away not counted)"
    )
    assert _buttons(dm) == [("finding_handled", str(finding.id))]
    assert ctx.say.lines[-1] == (
        f"sanity checks for 2026-11-26: 1 new finding(s) (#{finding.id} missed_standups); see `standup.py checks`"
    )

    _standup(ctx, sim, store, clock, FRI, {ALICE: FINE})  # a fourth miss, within SANITY_REPEAT_DAYS

    assert len(store.findings(CHANNEL, open_only=False)) == 1
    assert len(_finding_dms(sim)) == 1
    assert len(smtp.wait_for(4)) == 4


def test_a_finding_is_raised_again_after_the_repetition_interval(
    make_ctx, make_settings, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    ctx = make_ctx(make_settings(BLOCKER_CONTACTS=[LEAD], SANITY_REPEAT_DAYS=1))
    for date in (TUE, WED, THU):
        _standup(ctx, sim, store, clock, date, {ALICE: FINE})

    _standup(ctx, sim, store, clock, FRI, {ALICE: FINE})  # exactly a day later

    first, again = store.findings(CHANNEL, open_only=False)
    assert (first.subject, again.subject, again.date) == (BOB, BOB, FRI)
    assert first.handled_by == f"superseded by #{again.id}"
    assert "at 4 standups in a row" in again.details
    assert store.findings(CHANNEL) == [again]
    assert len(_finding_dms(sim)) == 2


def test_days_away_neither_count_as_missed_nor_break_the_run(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    store.set_away(CHANNEL, BOB, WED, WED, source="cli")
    for date in (TUE, WED, THU):
        _standup(ctx, sim, store, clock, date, {ALICE: FINE})
    assert store.findings(CHANNEL) == []  # missed Tue and Thu: two

    _standup(ctx, sim, store, clock, FRI, {ALICE: FINE})

    [finding] = store.findings(CHANNEL)
    assert finding.details == (
        "Bob Brown (UBOB) has not reported at 3 standups in a row, since 2026-11-24 (days away not counted)"
    )


def test_a_member_who_reported_in_between_is_not_a_finding(ctx: Context, sim, store: Store, smtp, clock: FakeClock):
    _standup(ctx, sim, store, clock, TUE, {ALICE: FINE})
    _standup(ctx, sim, store, clock, WED, {ALICE: FINE, BOB: FINE})
    _standup(ctx, sim, store, clock, THU, {ALICE: FINE})
    _standup(ctx, sim, store, clock, FRI, {ALICE: FINE})

    assert store.findings(CHANNEL) == []


def test_the_same_blocker_three_reports_in_a_row_is_escalated_and_named_in_the_digest(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    _standup(ctx, sim, store, clock, TUE, {BOB: "Yesterday: a\nToday: b\nBlockers: waiting for the VPN token"})
    _standup(ctx, sim, store, clock, WED, {BOB: "Yesterday: b\nToday: c\nBlockers: still waiting for the VPN token"})
    assert "Blocked for" not in smtp.wait_for(2)[1].message.get_body(("plain",)).get_content()

    _standup(ctx, sim, store, clock, THU, {
        ALICE: "Yesterday: a\nToday: b\nBlockers: the staging DB is down",
        BOB: "Yesterday: c\nToday: d\nBlockers: waiting for the VPN token from IT &amp; <@UALICE>",
    })

    message = smtp.wait_for(3)[2].message
    text = message.get_body(("plain",)).get_content()
    assert "\nBlocked for 3 days: Bob Brown: waiting for the VPN token from IT & @Alice (since 2026-11-24)\n" in text
    assert text.count("Blocked for") == 1  # alice's blocker is new
    html = message.get_body(("html",)).get_content()
    assert (
        '<strong style="color:#a01043;">Blocked for 3 days:</strong> Bob Brown: waiting for the VPN token from IT '
        "&amp; <strong>@Alice</strong>"
    ) in html
    [finding] = store.findings(CHANNEL)
    assert (finding.kind, finding.subject) == ("same_blocker", f"{BOB}:2026-11-24")
    [dm] = _finding_dms(sim)
    assert dm["text"] == (
        f":rotating_light: Long-standing blocker in <#{CHANNEL}> (standup 2026-11-26): Bob Brown (UBOB) has "
        "reported the same blocker 3 times in a row since 2026-11-24: waiting for the VPN token from IT &amp; @Alice"
    )

    _standup(ctx, sim, store, clock, FRI, {BOB: "Yesterday: d\nToday: e\nBlockers: the printer is on fire"})
    assert "Blocked for" not in smtp.wait_for(4)[3].message.get_body(("plain",)).get_content()
    assert len(store.findings(CHANNEL, open_only=False)) == 1


def test_the_same_blocker_check_reads_each_earlier_day_once_for_all_members(ctx: Context, store: Store):
    # 200 members with four earlier days stored: a walk back per member would read the
    # history 200 times and more (5,000 members took minutes); this reads each day once.
    members = [f"UM{i:03d}" for i in range(200)]
    vpn, db = "waiting for the VPN token", "the staging DB is down"
    blockers = {  # each member's blockers, oldest first, today last
        user: [[vpn] * 5, ["none", db, vpn, vpn, vpn], ["none"] * 4 + [vpn], ["none"] * 5][i % 4]
        for i, user in enumerate(members)
    }
    days = [THU - dt.timedelta(days=back) for back in range(4, -1, -1)]
    today: list[Reply] = []
    for n, day in enumerate(days):
        base = int(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC).timestamp())
        replies = [
            Reply(f"{base}.{i:06d}", user, f"Yesterday: a\nToday: b\nBlockers: {blockers[user][n]}")
            for i, user in enumerate(members)
        ]
        if day == THU:
            today = replies
        else:
            store.sync_thread(CHANNEL, day, replies, f"{base + 3600}.000000")
    digest = Digest(date=THU, channel_id=CHANNEL, channel_name="standup", questions=ctx.settings.questions,
                    reports=tuple(group_reports(today)), missing=())
    statements: list[str] = []
    store._connect().set_trace_callback(statements.append)  # this thread's connection: every SQL run

    found = sanity.long_blockers(ctx, THU, digest)

    store._connect().set_trace_callback(None)
    assert {(item.user, item.days, item.since, item.blocker) for item in found} == {
        *((user, 5, days[0], vpn) for user in members[0::4]),
        *((user, 3, days[2], vpn) for user in members[1::4]),
    }
    # Four steps back for those still blocked (the fifth finds nothing), two reads a step.
    assert len([sql for sql in statements if "FROM replies" in sql]) <= 2 * 5


def test_nobody_answering_puts_a_note_under_the_prompt_once(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    prompt_ts = _standup(ctx, sim, store, clock, THU, {})

    [note] = [m for m in sim.thread(CHANNEL, prompt_ts)[1:] if m.get("bot_id") == sim.bot_id]
    assert note["text"].startswith(":wave: Nobody answered the standup of 2026-11-26.")
    [finding] = store.findings(CHANNEL)
    assert (finding.kind, finding.subject, finding.details) == (
        "nobody_answered", "", "nobody answered the standup of 2026-11-26 (2 member(s) expected)"
    )
    assert len(sim.messages(CHANNEL)) == 1  # the channel keeps one top-level message per standup

    stages.digest(ctx, THU, force=True)

    assert len(sim.thread(CHANNEL, prompt_ts)) == 2
    assert len(smtp.wait_for(2)) == 2


def test_a_day_everyone_was_away_is_not_a_silent_day(ctx: Context, sim, store: Store, smtp, clock: FakeClock):
    for member in (ALICE, BOB):
        store.set_away(CHANNEL, member, THU, THU, source="cli")

    prompt_ts = _standup(ctx, sim, store, clock, THU, {})

    assert store.findings(CHANNEL) == []
    assert len(sim.thread(CHANNEL, prompt_ts)) == 1


@pytest.mark.parametrize("broken", ["the store under the missed-standups check", "the same-blocker check"])
def test_a_failing_check_is_said_and_logged_but_never_fails_the_digest(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock, monkeypatch, broken
):
    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError("database is on fire")

    if broken == "the same-blocker check":
        monkeypatch.setattr(sanity, "blocker_runs", fail)
    else:
        monkeypatch.setattr(store, "prompt_dates", fail)

    _standup(ctx, sim, store, clock, THU, {ALICE: "Yesterday: a\nToday: b\nBlockers: the VPN is down"})

    assert len(smtp.wait_for(1)) == 1
    assert store.stage_run(CHANNEL, THU, "digest").status == "done"
    assert any(line.startswith("warning: the ") and "(database is on fire)" in line for line in ctx.say.lines)


def test_a_failed_dm_is_retried_after_the_next_digest_and_nobody_is_told_twice(
    make_ctx, make_settings, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    ctx = make_ctx(make_settings(BLOCKER_CONTACTS=[LEAD, DEPUTY]))
    for date in (TUE, WED):
        _standup(ctx, sim, store, clock, date, {ALICE: FINE})
    sim.fail("conversations.open", error="user_disabled")  # the lead's DM

    _standup(ctx, sim, store, clock, THU, {ALICE: FINE})

    [finding] = store.findings(CHANNEL)
    assert (len(_finding_dms(sim, LEAD)), len(_finding_dms(sim, DEPUTY))) == (0, 1)
    assert finding.notify_error is not None and "user_disabled" in finding.notify_error
    assert ctx.say.lines[-1] == (
        f"could not send 1 finding notice(s) (#{finding.id}→{LEAD}); retried after the next digest"
    )

    _standup(ctx, sim, store, clock, FRI, {ALICE: FINE})

    assert (len(_finding_dms(sim, LEAD)), len(_finding_dms(sim, DEPUTY))) == (1, 1)
    [finding] = store.findings(CHANNEL)
    assert set(finding.notified) == {LEAD, DEPUTY} and finding.notify_error is None


# -- handling a finding ------------------------------------------------------------------------
def _three_missed_days(ctx: Context, sim, store: Store, clock: FakeClock) -> tuple[int, dict[str, Any]]:
    for date in (TUE, WED, THU):
        _standup(ctx, sim, store, clock, date, {ALICE: FINE})
    [finding] = store.findings(CHANNEL)
    [dm] = _finding_dms(sim)
    return finding.id, dm


def _click(user: str, finding_id: str, dm: dict[str, Any], channel: str) -> bytes:
    payload = {
        "type": "block_actions", "api_app_id": "A0SIM", "token": "XXYYZZ",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "team": {"id": "T0TEST", "domain": "simulated"},
        "container": {"type": "message", "message_ts": dm["ts"], "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "1.1700000000.abcdef",
        "channel": {"id": channel, "name": "directmessage"},
        "message": dm,
        "response_url": "https://hooks.example.com/actions/T0TEST/1/x",
        "actions": [{"action_id": "finding_handled", "block_id": "standup_finding", "value": finding_id,
                     "type": "button", "action_ts": "1700000000.000001"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_mark_handled_in_the_dm_handles_the_finding_and_updates_the_dm(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock, listener: LiveListener
):
    finding_id, dm = _three_missed_days(ctx, sim, store, clock)
    dm_channel = sim.open_im(LEAD)

    forged = sim.send_signed(listener.url, _click(LEAD, str(finding_id), dm, dm_channel), "not-the-secret", headers=FORM)
    assert forged[0] == 401
    assert store.finding(CHANNEL, finding_id).handled_at is None

    status, _ = sim.send_signed(listener.url, _click(LEAD, str(finding_id), dm, dm_channel), SIGNING_SECRET, headers=FORM)

    assert status == 200
    handled = wait_for(lambda: store.finding(CHANNEL, finding_id).handled_at, what="the finding handled")
    assert store.finding(CHANNEL, finding_id).handled_by == LEAD
    assert store.findings(CHANNEL) == []
    updated = wait_for(lambda: [m for m in _finding_dms(sim) if "handled by" in m["text"]], what="the DM updated")
    assert updated[0]["ts"] == dm["ts"] and _buttons(updated[0]) == []
    local = handled.astimezone(BERLIN)
    assert updated[0]["text"].endswith(f"handled by <@{LEAD}>, {local:%Y-%m-%d %H:%M %Z}")


def test_a_click_on_an_unknown_finding_is_answered_ephemerally_and_changes_nothing(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock, listener: LiveListener
):
    finding_id, dm = _three_missed_days(ctx, sim, store, clock)
    dm_channel = sim.open_im(LEAD)

    status, _ = sim.send_signed(listener.url, _click(LEAD, "999", dm, dm_channel), SIGNING_SECRET, headers=FORM)

    assert status == 200
    [answer] = wait_for(lambda: sim.calls("chat.postEphemeral"), what="the ephemeral answer")
    assert (answer["user"], answer["text"]) == (LEAD, "I know of no finding #999 in this standup.")
    assert store.finding(CHANNEL, finding_id).handled_at is None


def test_checks_handle_on_the_command_line_updates_the_dm_and_is_said(
    ctx: Context, make_ctx, settings, sim, store: Store, smtp: MailSink, clock: FakeClock
):
    finding_id, _ = _three_missed_days(ctx, sim, store, clock)
    said: list[str] = []

    code = cli._checks_command(["handle", str(finding_id)], settings, lambda: make_ctx(settings), clock.now, said.append)

    assert code == 0
    assert said == [f"finding #{finding_id} marked handled: {store.finding(CHANNEL, finding_id).details}"]
    [updated] = _finding_dms(sim)
    assert updated["text"].endswith("handled by command line, 2026-11-26 12:00 CET") and _buttons(updated) == []

    cli._checks_command(["handle", f"#{finding_id}"], settings, lambda: make_ctx(settings), clock.now, said.append)
    assert said[-1] == f"finding #{finding_id} was already handled (command line, 2026-11-26 12:00 CET); nothing to do"

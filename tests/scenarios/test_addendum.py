"""Addenda through the real stages, Slack simulator and SMTP server: after the digest went out,
late replies, edits and deletions are mailed once, only when something changed, at most once
per ADDENDUM_INTERVAL, and a partial refusal is finished on the next run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from standup_bot import stages
from standup_bot.addendum import addendum
from standup_bot.errors import MailError, SlackError
from standup_bot.mail_sink import MailSink, ReceivedMail
from standup_bot.stages import Context
from standup_bot.store import Store
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, DAY, TEAM_TZ, FakeClock

RECIPIENTS = ("lead@example.com", "cto@example.com")


def _text(mail: ReceivedMail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def _html(mail: ReceivedMail) -> str:
    return mail.message.get_body(("html",)).get_content()


def _hhmm(ts: str) -> str:
    """Return a reply's local posting time (the simulator stamps messages with the real time)."""
    return dt.datetime.fromtimestamp(int(ts.split(".")[0]), dt.UTC).astimezone(ZoneInfo(TEAM_TZ)).strftime("%H:%M")


def _at(clock: FakeClock, hour: int, minute: int = 0) -> None:
    clock.current = clock.current.replace(hour=hour, minute=minute)


@pytest.fixture
def day(ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock) -> dict[str, str]:
    """Post the prompt, let alice reply twice and carol once, send the digest at 12:00."""
    stages.prompt(ctx, DAY)
    prompt_ts = store.prompt_ts(CHANNEL, DAY)
    assert prompt_ts is not None
    replies = {
        "prompt": prompt_ts,
        "alice": sim.user_posts(ALICE, CHANNEL, "Yesterday: importer\nToday: tests\nBlockers: none", thread_ts=prompt_ts),
        "alice_ps": sim.user_posts(ALICE, CHANNEL, "PS: pairing with Carol after lunch", thread_ts=prompt_ts),
        "carol": sim.user_posts(CAROL, CHANNEL, "Reviewing the importer today", thread_ts=prompt_ts),
    }
    _at(clock, 12)
    stages.digest(ctx, DAY)
    assert len(smtp.wait_for(1)) == 1
    ctx.say.lines.clear()
    return replies


def test_an_addendum_mails_only_the_late_edited_and_deleted_replies_once_the_interval_passed(
    ctx: Context, sim, smtp: MailSink, clock: FakeClock, day: dict[str, str]
):
    _at(clock, 12, 20)
    late = sim.user_posts(BOB, CHANNEL, "Yesterday: VPN &lt;setup&gt; &amp; docs\nToday: deploy\nBlockers: none",
                          thread_ts=day["prompt"])
    sim.user_edits(CHANNEL, day["alice"], "Yesterday: importer v2\nToday: tests\nBlockers: none")
    sim.user_deletes(CHANNEL, day["carol"])

    _at(clock, 12, 30)
    addendum(ctx, DAY)

    assert ctx.say.lines == [
        "3 change(s) since the digest for 2026-11-26; next addendum possible at 13:00 CET (ADDENDUM_INTERVAL 60 min)"
    ]
    assert len(smtp.messages) == 1  # still only the digest

    _at(clock, 13)
    addendum(ctx, DAY)

    [_, mail] = smtp.wait_for(2)
    assert mail.message["Subject"] == "Standup addendum for #team-standup, 2026-11-26 (3 changes)"
    assert set(mail.rcpt_tos) == set(RECIPIENTS)
    text = _text(mail)
    assert "3 changes in the thread since the digest (12:00 CET)" in text
    assert (
        f"\nAlice\n  edited (reply of {_hhmm(day['alice'])}):\n    Yesterday: importer v2\n    Today: tests\n"
        "    Blockers: none\n"
    ) in text
    assert f"\nCarol\n  deleted (reply of {_hhmm(day['carol'])}), it said:\n    Reviewing the importer today\n" in text
    assert f"\nBob Brown\n  late reply ({_hhmm(late)}):\n    Yesterday: VPN <setup> & docs\n" in text
    assert "pairing with Carol" not in text  # unchanged since the digest
    html = _html(mail)
    assert "VPN &lt;setup&gt; &amp; docs" in html and "<setup>" not in html
    assert ctx.say.lines[-1] == "addendum 1 for 2026-11-26 sent to 2 recipient(s): 1 late, 1 edited, 1 deleted since the digest"

    # Nothing since: nothing sent. A later edit goes out alone, an interval after addendum 1.
    _at(clock, 13, 30)
    addendum(ctx, DAY)
    assert ctx.say.lines[-1] == "nothing new since addendum 1 for 2026-11-26 (sent 13:00 CET); no addendum sent"
    sim.user_edits(CHANNEL, day["alice_ps"], "PS: pairing with Carol tomorrow instead")
    addendum(ctx, DAY)
    assert ctx.say.lines[-1].endswith("next addendum possible at 14:00 CET (ADDENDUM_INTERVAL 60 min)")

    _at(clock, 14)
    addendum(ctx, DAY)

    [*_, second] = smtp.wait_for(3)
    assert second.message["Subject"] == "Standup addendum for #team-standup, 2026-11-26 (1 change)"
    text = _text(second)
    assert "PS: pairing with Carol tomorrow instead" in text
    assert "Bob Brown" not in text and "importer v2" not in text


def test_no_addendum_is_sent_when_nothing_changed_since_the_digest(
    ctx: Context, sim, smtp: MailSink, clock: FakeClock, day: dict[str, str]
):
    sim.user_edits(CHANNEL, day["alice_ps"], "PS: pairing with Carol after lunch")  # "edited", same words
    _at(clock, 18)

    addendum(ctx, DAY)

    assert ctx.say.lines == ["nothing new since the digest for 2026-11-26 (sent 12:00 CET); no addendum sent"]
    assert len(smtp.messages) == 1


def test_force_sends_before_the_interval_but_never_for_nothing(
    ctx: Context, sim, smtp: MailSink, clock: FakeClock, day: dict[str, str]
):
    _at(clock, 12, 5)
    addendum(ctx, DAY, force=True)
    assert ctx.say.lines[-1].startswith("nothing new since the digest")

    sim.user_posts(BOB, CHANNEL, "Yesterday: docs\nToday: more docs\nBlockers: none", thread_ts=day["prompt"])
    addendum(ctx, DAY, force=True)

    assert len(smtp.wait_for(2)) == 2
    assert ctx.say.lines[-1].startswith("addendum 1 for 2026-11-26 sent to 2 recipient(s): 1 late")


def test_no_addendum_before_the_digest_went_out(ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock):
    addendum(ctx, DAY)  # no prompt either
    stages.prompt(ctx, DAY)
    sim.user_posts(ALICE, CHANNEL, "on it", thread_ts=store.prompt_ts(CHANNEL, DAY))
    _at(clock, 15)
    addendum(ctx, DAY)

    assert ctx.say.lines == [
        "no digest was sent for 2026-11-26 yet: an addendum only follows the digest; nothing to do",
        f"prompt for {DAY} posted in {CHANNEL}",
        "no digest was sent for 2026-11-26 yet: an addendum only follows the digest; nothing to do",
    ]
    assert smtp.messages == []


@pytest.fixture
def refusing(make_settings) -> Iterator[MailSink]:
    """A second mail server that refuses the second recipient."""
    sink = MailSink(refuse_recipients=[RECIPIENTS[1]])
    sink.start()
    yield sink
    sink.stop()


def test_a_partial_refusal_sends_the_same_addendum_to_the_others_next_time_and_nobody_twice(
    ctx: Context, make_ctx, make_settings, sim, store: Store, smtp: MailSink, refusing: MailSink,
    clock: FakeClock, day: dict[str, str],
):
    sim.user_posts(BOB, CHANNEL, "Yesterday: docs\nToday: more docs\nBlockers: none", thread_ts=day["prompt"])
    _at(clock, 13)
    half = make_ctx(make_settings(SMTP_PORT=refusing.port))

    with pytest.raises(MailError, match="refused recipient"):
        addendum(half, DAY)

    [first] = refusing.wait_for(1)
    assert first.rcpt_tos == (RECIPIENTS[0],)
    assert store.delivered(CHANNEL, DAY, "addendum 1") == {RECIPIENTS[0]}
    sim.user_posts(CAROL, CHANNEL, "one more thing", thread_ts=day["prompt"])  # waits for the next addendum

    addendum(ctx, DAY)

    [_, rest] = smtp.wait_for(2)
    assert rest.rcpt_tos == (RECIPIENTS[1],)
    assert rest.message["Subject"] == first.message["Subject"]
    assert _text(rest) == _text(first) and "one more thing" not in _text(rest)
    assert ctx.say.lines[-1] == "addendum 1 for 2026-11-26 sent to the 1 remaining recipient(s)"
    assert store.delivered(CHANNEL, DAY, "addendum 1") == set(RECIPIENTS)

    addendum(ctx, DAY)  # carol's reply: a new addendum, but only an interval after addendum 1
    assert ctx.say.lines[-1].endswith("next addendum possible at 14:00 CET (ADDENDUM_INTERVAL 60 min)")
    assert len(smtp.messages) == 2 and len(refusing.messages) == 1


def test_a_mail_server_failure_marks_nothing_sent_and_the_next_run_sends_it(
    ctx: Context, make_ctx, make_settings, sim, store: Store, smtp: MailSink, clock: FakeClock,
    day: dict[str, str],
):
    sim.user_posts(BOB, CHANNEL, "late but here", thread_ts=day["prompt"])
    _at(clock, 13)

    with pytest.raises(MailError):
        addendum(make_ctx(make_settings(SMTP_PORT=1)), DAY)

    assert store.delivered(CHANNEL, DAY, "addendum 1") == set()
    assert store.stage_run(CHANNEL, DAY, "addendum 1").status == "failed"

    addendum(ctx, DAY)

    [_, mail] = smtp.wait_for(2)
    assert set(mail.rcpt_tos) == set(RECIPIENTS) and "late but here" in _text(mail)
    assert ctx.say.lines[-1].startswith("addendum 1 for 2026-11-26 sent to 2 recipient(s)")


def test_an_unreadable_thread_sends_nothing_and_fails(
    ctx: Context, sim, store: Store, smtp: MailSink, clock: FakeClock, day: dict[str, str]
):
    sim.user_posts(BOB, CHANNEL, "late but here", thread_ts=day["prompt"])
    _at(clock, 13)
    sim.fail("conversations.replies", error="channel_not_found")

    with pytest.raises(SlackError, match="could not read the thread of 2026-11-26 from Slack, so no addendum was sent"):
        addendum(ctx, DAY)

    assert len(smtp.messages) == 1


def test_a_forced_digest_is_the_new_baseline(ctx: Context, sim, smtp: MailSink, clock: FakeClock, day: dict[str, str]):
    sim.user_posts(BOB, CHANNEL, "late but here", thread_ts=day["prompt"])
    _at(clock, 13)
    stages.digest(ctx, DAY, force=True)  # the late reply is in this digest

    _at(clock, 15)
    addendum(ctx, DAY)

    assert ctx.say.lines[-1] == "nothing new since the digest for 2026-11-26 (sent 13:00 CET); no addendum sent"
    assert len(smtp.wait_for(2)) == 2


def test_scheduled_runs_wait_for_the_digest_then_send(make_ctx, settings, sim, store: Store, smtp: MailSink, clock: FakeClock):
    from standup_bot.scheduler import _fire_addendum, addendum_trigger

    contexts: list[Context] = []

    def make_context() -> Context:
        contexts.append(make_ctx(settings))
        return contexts[-1]

    ctx = make_context()
    stages.prompt(ctx, DAY)
    _fire_addendum(make_context)  # before the digest: quiet
    assert [line for c in contexts for line in c.say.lines] == [f"prompt for {DAY} posted in {CHANNEL}"]
    _at(clock, 12)
    stages.digest(ctx, DAY)
    sim.user_posts(BOB, CHANNEL, "late", thread_ts=store.prompt_ts(CHANNEL, DAY))
    _at(clock, 13)

    _fire_addendum(make_context)

    assert len(smtp.wait_for(2)) == 2
    assert contexts[-1].say.lines[-1].startswith("addendum 1 for 2026-11-26 sent")
    fire = addendum_trigger(settings).get_next_fire_time(None, clock.current.replace(hour=11, minute=50))
    assert fire.astimezone(settings.zone).time() == dt.time(12, 0)
    later = addendum_trigger(settings).get_next_fire_time(None, clock.current.replace(hour=23, minute=50))
    assert later.astimezone(settings.zone).date() == DAY + dt.timedelta(days=1)

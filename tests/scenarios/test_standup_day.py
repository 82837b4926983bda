"""Whole standup days through the real stages, Slack simulator and SMTP server."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from standup_bot import stages
from standup_bot.errors import MailError, SlackError, StageError
from standup_bot.stages import Context
from standup_bot.store import Store
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, DAVE, DAY, FakeClock


def _prompt_ts(store: Store) -> str:
    ts = store.prompt_ts(CHANNEL, DAY)
    assert ts is not None
    return ts


def _bot_posts(sim, channel: str = CHANNEL) -> list[dict]:
    return [c for c in sim.calls("chat.postMessage") if c.get("channel") == channel]


def test_prompt_posts_one_message_showing_every_question_and_the_deadline(ctx: Context, sim, store):
    stages.prompt(ctx, DAY)

    [message] = sim.messages(CHANNEL)
    assert message["ts"] == _prompt_ts(store)
    for question in ctx.settings.questions:
        assert question in message["text"]
        assert question in str(message["blocks"])
    assert "12:00 (Europe/Berlin)" in message["text"]
    assert "2026-11-26" in message["text"]


def test_second_prompt_for_the_same_date_does_nothing_and_says_so(ctx: Context, sim):
    stages.prompt(ctx, DAY)
    stages.prompt(ctx, DAY)

    assert len(sim.messages(CHANNEL)) == 1
    assert "already done" in ctx.say.lines[-1]
    assert "--force" in ctx.say.lines[-1]


def test_force_posts_the_prompt_again_and_follows_the_new_thread(ctx: Context, sim, store):
    stages.prompt(ctx, DAY)
    first = _prompt_ts(store)
    stages.prompt(ctx, DAY, force=True)

    assert len(sim.messages(CHANNEL)) == 2
    assert _prompt_ts(store) != first


def test_prompt_that_slack_refuses_is_not_marked_posted_and_a_rerun_posts_it(ctx: Context, sim, store):
    sim.fail("chat.postMessage", error="not_in_channel")
    with pytest.raises(SlackError, match="/invite @standup"):
        stages.prompt(ctx, DAY)
    assert store.prompt_ts(CHANNEL, DAY) is None
    assert store.stage_run(CHANNEL, DAY, "prompt").status == "failed"

    stages.prompt(ctx, DAY)
    assert len(sim.messages(CHANNEL)) == 1
    assert store.stage_run(CHANNEL, DAY, "prompt").status == "done"


def test_a_prompt_posted_by_a_run_that_crashed_before_recording_it_is_not_posted_again(
    ctx: Context, sim, store
):
    # A crashed run: it claimed the stage and posted, then died before storing the ts.
    stages.prompt(ctx, DAY)
    with store.transaction() as conn:
        conn.execute("DELETE FROM prompts")
        conn.execute("UPDATE stage_runs SET status = 'running', owner = 'nohost:1'")
    ctx.owner = "testhost:2"
    from standup_bot import stages as stage_module

    original = stage_module.owner_alive
    stage_module.owner_alive = lambda owner: False
    try:
        stages.prompt(ctx, DAY)
    finally:
        stage_module.owner_alive = original

    assert len(sim.messages(CHANNEL)) == 1
    assert store.prompt_ts(CHANNEL, DAY) == sim.messages(CHANNEL)[0]["ts"]


def _running_prompt_claim(store, owner: str, started_at: str) -> None:
    """Leave the day's prompt claimed as 'running' by `owner`, as a process that is (or was) posting it."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO stage_runs (channel, date, stage, status, owner, started_at) "
            "VALUES (?, ?, 'prompt', 'running', ?, ?)",
            (CHANNEL, DAY.isoformat(), owner, started_at),
        )


def test_a_prompt_claimed_by_a_live_process_is_left_to_it(ctx: Context, sim, store):
    from standup_bot.store import utc_now_iso

    _running_prompt_claim(store, f"{os.uname().nodename}:{os.getpid()}", utc_now_iso())
    stages.prompt(ctx, DAY)

    assert sim.messages(CHANNEL) == []
    assert "being done right now" in ctx.say.lines[-1]


def test_reminder_goes_only_to_members_without_a_report(ctx: Context, sim, store):
    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    sim.user_posts(ALICE, CHANNEL, "did things", thread_ts=ts)
    sim.user_posts(CAROL, CHANNEL, "not in MEMBERS but here", thread_ts=ts)

    stages.remind(ctx, DAY)

    assert sim.dms_to(ALICE) == []
    assert sim.dms_to(CAROL) == []
    [dm] = sim.dms_to(BOB)
    permalink = sim.calls("chat.getPermalink")[-1]
    assert f"<#{CHANNEL}>" in dm["text"]
    assert "https://" in dm["text"] and permalink["message_ts"] == ts


def test_a_second_remind_sends_nothing(ctx: Context, sim):
    stages.prompt(ctx, DAY)
    stages.remind(ctx, DAY)
    stages.remind(ctx, DAY)

    assert len(sim.dms_to(BOB)) == 1
    assert len(sim.dms_to(ALICE)) == 1


def test_each_reminder_is_one_post_to_the_member_id_with_no_dm_opened_first(ctx: Context, sim):
    # Slack opens the DM for a post to a user ID; conversations.open is Tier 3 (50+/min).
    stages.prompt(ctx, DAY)
    posts_before = len(sim.calls("chat.postMessage"))

    stages.remind(ctx, DAY)

    assert [call["channel"] for call in sim.calls("chat.postMessage")[posts_before:]] == [ALICE, BOB]
    assert sim.calls("conversations.open") == []
    assert len(sim.dms_to(ALICE)) == 1 and len(sim.dms_to(BOB)) == 1


def test_reminder_that_failed_for_one_member_is_retried_for_that_member_only(ctx: Context, sim, store):
    stages.prompt(ctx, DAY)
    sim.fail("chat.postMessage", error="user_disabled")  # the first member's reminder fails
    with pytest.raises(SlackError, match="retries only them"):
        stages.remind(ctx, DAY)
    assert store.reminded(CHANNEL, DAY) == {ALICE: "failed", BOB: "sent"}

    stages.remind(ctx, DAY)
    assert len(sim.dms_to(ALICE)) == 1
    assert len(sim.dms_to(BOB)) == 1


def test_remind_or_digest_without_a_prompt_fails_saying_so(ctx: Context):
    with pytest.raises(StageError, match="no prompt was posted for 2026-11-26"):
        stages.remind(ctx, DAY)
    with pytest.raises(StageError, match=r"run `standup\.py prompt` first"):
        stages.digest(ctx, DAY)


def test_empty_members_means_the_channels_humans(make_ctx, make_settings, sim, store):
    ctx = make_ctx(make_settings(MEMBERS=[]))
    stages.prompt(ctx, DAY)
    stages.remind(ctx, DAY)

    reminded = {u for u in (ALICE, BOB, CAROL, DAVE, "UROBOT", "UBOT") if sim.dms_to(u)}
    assert reminded == {ALICE, BOB, CAROL}  # not the deactivated dave, the bot, or us


def test_channel_members_are_read_page_by_page_and_users_cached(make_ctx, make_settings, sim, store):
    for n in range(450):
        sim.add_user(f"UX{n:04d}", f"x{n}")
    sim.add_channel("C0BIGTEAM", "big", [f"UX{n:04d}" for n in range(450)])
    ctx = make_ctx(make_settings(MEMBERS=[], STANDUP_CHANNEL="C0BIGTEAM"))

    assert len(stages.expected_members(ctx)) == 450
    assert len(sim.calls("conversations.members")) >= 3
    lookups = len(sim.calls("users.info"))
    stages.expected_members(ctx)
    assert len(sim.calls("users.info")) == lookups  # cached in the store


def test_digest_is_one_multipart_email_to_every_recipient(ctx: Context, sim, store, smtp):
    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    sim.user_posts(ALICE, CHANNEL, "shipped the <https://example.com/pr/1|PR> &amp; fixed <@UBOB>'s bug", thread_ts=ts)
    sim.user_posts(ALICE, CHANNEL, "also: <script>alert(1)</script>", thread_ts=ts)
    sim.user_posts(CAROL, CHANNEL, "guest report", thread_ts=ts)

    stages.digest(ctx, DAY)

    [received] = smtp.wait_for(1)
    assert sorted(received.rcpt_tos) == ["cto@example.com", "lead@example.com"]
    assert received.mail_from == "standup@example.com"
    message = received.message
    assert "2026-11-26" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Alice" in text and "Carol" in text
    assert "@Bob Brown" in text and "<@UBOB>" not in text
    assert "PR (https://example.com/pr/1)" in text
    assert '<a href="https://example.com/pr/1">PR</a>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Not reported" in text and "Bob Brown" in text.split("Not reported")[1]


def test_digest_when_nobody_reported_lists_everyone_as_not_reported(ctx: Context, smtp):
    stages.prompt(ctx, DAY)
    stages.digest(ctx, DAY)

    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    missing = text.split("Not reported")[1]
    assert "Alice" in missing and "Bob Brown" in missing


def test_digest_is_sent_once_per_date(ctx: Context, smtp):
    stages.prompt(ctx, DAY)
    stages.digest(ctx, DAY)
    stages.digest(ctx, DAY)

    assert len(smtp.messages) == 1
    assert "already done" in ctx.say.lines[-1]


def test_digest_stays_unsent_when_smtp_refuses_and_the_next_run_sends_it(
    make_ctx, make_settings, store, smtp
):
    ctx = make_ctx(make_settings(SMTP_PORT=1))  # nothing listens there
    stages.prompt(ctx, DAY)
    with pytest.raises(MailError):
        stages.digest(ctx, DAY)
    assert store.stage_run(CHANNEL, DAY, "digest").status == "failed"

    working = make_ctx(make_settings())
    stages.digest(working, DAY)
    assert len(smtp.wait_for(1)) == 1
    assert store.stage_run(CHANNEL, DAY, "digest").status == "done"


def test_the_thread_is_the_truth_for_replies_edits_and_deletions_the_listener_missed(
    ctx: Context, sim, store, smtp
):
    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    # The listener is down all morning: nothing reaches the store.
    reply = sim.user_posts(BOB, CHANNEL, "first draft", thread_ts=ts)
    sim.user_edits(CHANNEL, reply, "final words")
    gone = sim.user_posts(ALICE, CHANNEL, "oops wrong thread", thread_ts=ts)
    sim.user_deletes(CHANNEL, gone)

    stages.remind(ctx, DAY)
    assert sim.dms_to(BOB) == []  # bob answered: not nagged
    assert len(sim.dms_to(ALICE)) == 1  # alice's only reply was deleted

    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "final words" in text and "first draft" not in text
    assert "oops wrong thread" not in text


def test_a_reply_the_listener_stored_but_slack_deleted_is_not_in_the_digest(ctx: Context, sim, store, smtp):
    from standup_bot.model import Reply

    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    gone = sim.user_posts(ALICE, CHANNEL, "posted then deleted", thread_ts=ts)
    store.record_reply(CHANNEL, DAY, Reply(gone, ALICE, "posted then deleted"))
    sim.user_deletes(CHANNEL, gone)
    sim.user_posts(BOB, CHANNEL, "a later reply", thread_ts=ts)

    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "posted then deleted" not in text
    assert [s.deleted for s in store.stored_replies(CHANNEL, DAY) if s.reply.ts == gone] == [True]


def test_bot_posts_top_level_messages_and_other_threads_are_not_reports(ctx: Context, sim, store, smtp):
    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    sim.user_posts("UROBOT", CHANNEL, "beep", thread_ts=ts, bot_id="BROBOT")
    sim.user_posts(ALICE, CHANNEL, "top-level chatter")
    other = sim.user_posts(ALICE, CHANNEL, "another topic")
    sim.user_posts(BOB, CHANNEL, "reply elsewhere", thread_ts=other)

    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    for not_a_report in ("beep", "top-level chatter", "reply elsewhere"):
        assert not_a_report not in text
    assert "Robot" not in text


def test_a_long_thread_is_read_across_pages(make_ctx, make_settings, sim, store, smtp):
    sim.page_size_cap = 15  # Slack's limit for some apps since 2025
    ctx = make_ctx(make_settings())
    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    for n in range(40):
        sim.user_posts(ALICE, CHANNEL, f"item {n:02d}", thread_ts=ts)

    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert all(f"item {n:02d}" in text for n in range(40))
    assert len([c for c in sim.calls("conversations.replies")]) >= 3


def test_digest_falls_back_on_the_listeners_copy_when_the_thread_cannot_be_read(
    ctx: Context, sim, store, smtp
):
    from standup_bot.model import Reply

    stages.prompt(ctx, DAY)
    ts = _prompt_ts(store)
    posted = sim.user_posts(ALICE, CHANNEL, "recorded by the listener", thread_ts=ts)
    store.record_reply(CHANNEL, DAY, Reply(posted, ALICE, "recorded by the listener"))
    sim.fail("conversations.replies", status=503, times=10)

    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "recorded by the listener" in text
    assert "could not be read" in text


def test_run_does_the_whole_day_at_the_local_times(ctx: Context, sim, store, smtp, clock: FakeClock):
    def reply_while_waiting(seconds: float) -> None:
        if not sim.thread(CHANNEL, _prompt_ts(store))[1:]:
            sim.user_posts(ALICE, CHANNEL, "done", thread_ts=_prompt_ts(store))
        clock.sleep(seconds)

    ctx.sleep = reply_while_waiting
    stages.run(ctx, DAY)

    assert clock.current.astimezone(ctx.settings.zone).time() == dt.time(12, 0)
    assert sim.dms_to(ALICE) == [] and len(sim.dms_to(BOB)) == 1
    assert len(smtp.wait_for(1)) == 1
    assert [line.split(" for ")[0] for line in ctx.say.lines if " for 2026" in line][:1] == ["prompt"]


def test_run_started_again_after_a_crash_skips_what_was_done(ctx: Context, sim, smtp, clock: FakeClock):
    stages.prompt(ctx, DAY)
    clock.advance(hours=1, minutes=45)  # restarted at 11:45: the reminder is due, the digest not yet

    stages.run(ctx, DAY)

    assert len(sim.messages(CHANNEL)) == 1
    assert len(sim.dms_to(BOB)) == 1
    assert len(smtp.wait_for(1)) == 1
    assert sum(clock.slept) == pytest.approx(15 * 60)  # only the wait for the digest


def test_a_recipient_refused_once_gets_the_digest_on_the_next_run_and_nobody_gets_it_twice(
    make_ctx, make_settings, store
):
    from standup_bot.mail_sink import MailSink

    with MailSink(refuse_recipients=["cto@example.com"]) as picky, MailSink() as healthy:
        ctx = make_ctx(make_settings(SMTP_HOST=picky.host, SMTP_PORT=picky.port))
        stages.prompt(ctx, DAY)
        with pytest.raises(MailError, match=r"cto@example\.com"):
            stages.digest(ctx, DAY)
        assert [m.rcpt_tos for m in picky.wait_for(1)] == [("lead@example.com",)]
        assert store.stage_run(CHANNEL, DAY, "digest").status == "failed"

        stages.digest(make_ctx(make_settings(SMTP_HOST=healthy.host, SMTP_PORT=healthy.port)), DAY)
        assert [m.rcpt_tos for m in healthy.wait_for(1)] == [("cto@example.com",)]
        assert store.stage_run(CHANNEL, DAY, "digest").status == "done"


def test_run_on_a_day_outside_workdays_does_nothing_and_says_why(ctx: Context, sim, smtp):
    saturday = dt.date(2026, 11, 28)
    stages.run(ctx, saturday)

    assert sim.messages(CHANNEL) == []
    assert ctx.say.lines == ["2026-11-28 is a Saturday, not one of WORKDAYS: no standup (--force runs it anyway)"]


def test_a_prompt_whose_post_timed_out_is_found_not_posted_twice(make_settings, store, sim, clock: FakeClock):
    import time

    from standup_bot.slack import SlackApi, make_client
    from tests.conftest import FAST_RETRY, Said

    settings = make_settings(SLACK_TIMEOUT=1)
    client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=1, retry=FAST_RETRY)
    ctx = Context(settings, store, SlackApi(client), now=clock.now, sleep=time.sleep, say=Said())
    sim.fail("chat.postMessage", delay=1.5)  # Slack posts it, but answers too late

    stages.prompt(ctx, DAY)

    assert len(sim.calls("chat.postMessage")) == 1  # looked for, found, not posted again
    assert len(sim.messages(CHANNEL)) == 1
    assert store.prompt_ts(CHANNEL, DAY) == sim.messages(CHANNEL)[0]["ts"]


def test_a_claim_older_than_an_hour_is_taken_over_even_from_another_host(ctx: Context, sim, store):
    _running_prompt_claim(store, "otherhost:123", "2020-01-01T09:00:00+00:00")
    stages.prompt(ctx, DAY)
    assert len(sim.messages(CHANNEL)) == 1


def test_a_reused_pid_after_a_reboot_does_not_block_the_stage(ctx: Context, sim, store):
    from standup_bot.stages import this_owner
    from standup_bot.store import utc_now_iso

    host, pid, _, start = this_owner().split(":")
    _running_prompt_claim(store, f"{host}:{pid}:oldboot0:{start}", utc_now_iso())
    stages.prompt(ctx, DAY)
    assert len(sim.messages(CHANNEL)) == 1

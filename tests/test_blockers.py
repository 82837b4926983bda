"""Blocker escalation: the DM's text, and the live listener escalating from signed events."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from standup_bot import stages
from standup_bot.blockers import escalation_text
from tests.conftest import ALICE, BOB, CHANNEL, DAY, wait_for

LEAD, DEPUTY = "ULEAD", "UDEPUTY"
REPORT = "Yesterday: the importer\nToday: tests\nBlockers: waiting on <@UBOB> for the VPN token"
BLOCKER = "waiting on <@UBOB> for the VPN token"


# --- the DM ---------------------------------------------------------------------------------


def test_the_dm_names_the_member_quotes_the_blocker_and_links_the_reply():
    text = escalation_text("new", "Alice <Ops> & co", "C1", DAY, "the DB\n\nis *down* <!here>", "https://x/p1")
    assert text == (
        ":rotating_light: Blocker from *Alice &lt;Ops&gt; &amp; co* in <#C1> (standup 2026-11-26):\n"
        "&gt; the DB\n&gt;\n&gt; is *down* @here\n<https://x/p1|View the reply>"
    )


def test_an_update_says_so():
    text = escalation_text("update", "Alice", "C1", DAY, "still the DB", "https://x/p1")
    assert text.startswith(":rotating_light: Updated blocker from *Alice* in <#C1> (standup 2026-11-26):\n")


# --- the listener ---------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings, sim):
    """Settings with two blocker contacts, who are members of the workspace."""
    sim.add_user(LEAD, "lead", display_name="Lena Lead")
    sim.add_user(DEPUTY, "deputy", display_name="Dan Deputy")
    return make_settings(BLOCKER_CONTACTS=[LEAD, DEPUTY])


def _dm_texts(sim, user: str) -> list[str]:
    return [message["text"] for message in sim.dms_to(user)]


def test_a_blocker_is_escalated_live_once_whatever_the_redeliveries_and_digest_runs(
    sim, store, ctx, prompt_ts, smtp
):
    reply = sim.user_posts(ALICE, CHANNEL, REPORT, thread_ts=prompt_ts)
    original = sim.last_event()

    wait_for(lambda: len(sim.dms_to(LEAD)) == len(sim.dms_to(DEPUTY)) == 1, what="a DM to each contact")
    [text] = _dm_texts(sim, LEAD)
    assert text.startswith(":rotating_light: Blocker from *Alice* in <#C0STANDUP> (standup 2026-11-26):\n")
    assert f"&gt; {BLOCKER}\n" in text
    assert f"/p{reply.replace('.', '')}?thread_ts={prompt_ts}" in text  # the reply's permalink
    assert [c["message_ts"] for c in sim.calls("chat.getPermalink")][-1] == reply

    assert sim.redeliver(original, retry_num=1) == 200
    assert sim.redeliver(original, retry_num=2, reason="http_error") == 200
    time.sleep(0.2)  # give the (wrongly) re-run handler a chance to act before we look
    stages.digest(ctx, DAY)
    stages.digest(ctx, DAY, force=True)

    assert len(smtp.wait_for(2)) == 2
    assert [len(sim.dms_to(LEAD)), len(sim.dms_to(DEPUTY))] == [1, 1]
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sent", BLOCKER), (ALICE, DEPUTY): ("sent", BLOCKER)}


def test_an_edit_that_changes_the_blocker_sends_one_update_and_other_edits_nothing(sim, store, prompt_ts):
    reply = sim.user_posts(ALICE, CHANNEL, REPORT, thread_ts=prompt_ts)
    wait_for(lambda: len(sim.dms_to(LEAD)) == len(sim.dms_to(DEPUTY)) == 1, what="the first DMs")

    sim.user_edits(CHANNEL, reply, REPORT.replace("Today: tests", "Today: more tests"))  # same blocker
    sim.user_edits(CHANNEL, reply, REPORT.replace("VPN token", "VPN token and a laptop"))

    wait_for(lambda: len(sim.dms_to(LEAD)) == len(sim.dms_to(DEPUTY)) == 2, what="the update DMs")
    update = _dm_texts(sim, LEAD)[1]
    assert update.startswith(":rotating_light: Updated blocker from *Alice*")
    assert "&gt; waiting on <@UBOB> for the VPN token and a laptop\n" in update
    time.sleep(0.2)  # any DM for the first edit would have come by now
    assert len(sim.dms_to(LEAD)) == 2


def test_a_dm_that_failed_in_the_listener_is_retried_on_the_next_reply_for_that_contact_only(
    sim, store, prompt_ts
):
    sim.fail("chat.postMessage", error="channel_not_found")  # the DM to the first contact
    sim.user_posts(ALICE, CHANNEL, REPORT, thread_ts=prompt_ts)
    wait_for(lambda: store.escalations(CHANNEL, DAY).get((ALICE, LEAD), ("",))[0] == "failed", what="the failure")
    wait_for(lambda: len(sim.dms_to(DEPUTY)) == 1, what="the DM to the second contact")
    assert sim.dms_to(LEAD) == []

    sim.user_posts(ALICE, CHANNEL, "PS: back at 2pm", thread_ts=prompt_ts)

    wait_for(lambda: len(sim.dms_to(LEAD)) == 1, what="the retried DM")
    assert _dm_texts(sim, LEAD)[0].startswith(":rotating_light: Blocker from *Alice*")
    time.sleep(0.2)  # a second DM to the deputy would have come by now
    assert len(sim.dms_to(DEPUTY)) == 1


def test_a_member_with_no_blocker_or_a_contact_reporting_their_own_gets_no_dm(sim, store, prompt_ts):
    sim.user_posts(BOB, CHANNEL, "Yesterday: x\nToday: y\nBlockers: nothing", thread_ts=prompt_ts)
    sim.user_posts(LEAD, CHANNEL, "Yesterday: 1:1s\nToday: hiring\nBlockers: budget sign-off", thread_ts=prompt_ts)

    wait_for(lambda: len(sim.dms_to(DEPUTY)) == 1, what="the lead's blocker to the deputy")
    assert "Blocker from *Lena Lead*" in _dm_texts(sim, DEPUTY)[0]
    time.sleep(0.2)  # any DM about bob, or to the lead about herself, would have come by now
    assert sim.dms_to(LEAD) == [] and len(sim.dms_to(DEPUTY)) == 1
    assert set(store.escalations(CHANNEL, DAY)) == {(LEAD, DEPUTY)}


def test_a_previous_days_report_in_the_store_is_not_escalated_again(sim, store, ctx, prompt_ts):
    # Only today's report is looked at when a reply for today arrives.
    from standup_bot.model import Reply

    store.record_reply(CHANNEL, DAY - dt.timedelta(days=1), Reply("1.1", ALICE, REPORT))
    sim.user_posts(ALICE, CHANNEL, "Yesterday: a\nToday: b\nBlockers: none", thread_ts=prompt_ts)
    wait_for(lambda: any(s.reply.user == ALICE for s in store.stored_replies(CHANNEL, DAY)))
    time.sleep(0.2)
    assert sim.dms_to(LEAD) == []

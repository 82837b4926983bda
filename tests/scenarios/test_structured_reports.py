"""Structured reports through the real stages, Slack simulator and SMTP server: answers by
question, blockers escalated by DM and listed first, what was planned last time."""

from __future__ import annotations

import datetime as dt

import pytest

from standup_bot import stages
from standup_bot.errors import MailError
from standup_bot.stages import Context
from standup_bot.store import Store
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, DAY

LEAD, DEPUTY = "ULEAD", "UDEPUTY"
PREVIOUS_DAY = DAY - dt.timedelta(days=1)
BLOCKED = "Yesterday: the importer\nToday: tests\nBlockers: waiting on <@UCAROL> for the prod DB password &amp; VPN"
BLOCKER = "waiting on <@UCAROL> for the prod DB password &amp; VPN"


@pytest.fixture
def settings(make_settings, sim):
    """Settings with two blocker contacts, who are members of the workspace."""
    sim.add_user(LEAD, "lead", display_name="Lena Lead")
    sim.add_user(DEPUTY, "deputy", display_name="Dan Deputy")
    return make_settings(BLOCKER_CONTACTS=[LEAD, DEPUTY])


def _prompt(ctx: Context, store: Store, date: dt.date = DAY) -> str:
    stages.prompt(ctx, date)
    ts = store.prompt_ts(CHANNEL, date)
    assert ts is not None
    return ts


def _texts(messages: list[dict]) -> list[str]:
    return [message["text"] for message in messages]


def test_the_digest_escalates_a_blocker_the_listener_never_saw_before_sending_the_email(
    make_ctx, make_settings, sim, store
):
    # No listener: the reply reaches the bot only through the thread, and the mail server is down.
    ctx = make_ctx(make_settings(BLOCKER_CONTACTS=[LEAD], SMTP_PORT=1))
    ts = _prompt(ctx, store)
    reply = sim.user_posts(ALICE, CHANNEL, BLOCKED, thread_ts=ts)

    with pytest.raises(MailError):
        stages.digest(ctx, DAY)

    [dm] = sim.dms_to(LEAD)
    [permalink] = [c for c in sim.calls("chat.getPermalink") if c["message_ts"] == reply]
    link = f"https://simulated.slack.com/archives/{CHANNEL}/p{reply.replace('.', '')}?thread_ts={ts}&cid={CHANNEL}"
    assert dm["text"] == (
        f":rotating_light: Blocker from *Alice* in <#{CHANNEL}> (standup 2026-11-26):\n"
        f"&gt; {BLOCKER}\n<{link}|View the reply>"
    )
    assert permalink["channel"] == CHANNEL
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sent", BLOCKER)}


def test_a_blocker_is_escalated_once_per_report_however_often_the_digest_runs(ctx: Context, sim, store, smtp):
    ts = _prompt(ctx, store)
    sim.user_posts(ALICE, CHANNEL, BLOCKED, thread_ts=ts)

    stages.remind(ctx, DAY)  # reads the thread: the first occasion
    stages.digest(ctx, DAY)
    stages.digest(ctx, DAY, force=True)

    assert len(smtp.wait_for(2)) == 2
    assert [len(sim.dms_to(LEAD)), len(sim.dms_to(DEPUTY))] == [1, 1]
    assert sim.dms_to(ALICE) == []  # she reported: neither reminded nor told of her own blocker


def test_a_blocker_changed_in_the_thread_while_nobody_listened_is_sent_as_an_update(
    ctx: Context, sim, store, smtp
):
    ts = _prompt(ctx, store)
    reply = sim.user_posts(ALICE, CHANNEL, BLOCKED, thread_ts=ts)
    stages.remind(ctx, DAY)
    sim.user_edits(CHANNEL, reply, BLOCKED.replace("&amp; VPN", "(VPN sorted)"))

    stages.digest(ctx, DAY)

    first, update = _texts(sim.dms_to(LEAD))
    assert first.startswith(":rotating_light: Blocker from *Alice*")
    assert update.startswith(":rotating_light: Updated blocker from *Alice*")
    assert "&gt; waiting on <@UCAROL> for the prod DB password (VPN sorted)\n" in update
    assert len(sim.dms_to(DEPUTY)) == 2


@pytest.mark.parametrize(
    "text",
    [
        "Yesterday: the importer\nToday: tests\nBlockers: none",
        "Yesterday: the importer\nToday: tests\nBlockers: n/a",
        "Yesterday: the importer\nToday: tests\nBlockers: -",
        "Yesterday: the importer\nToday: tests\nBlockers: nothing",
        "1. the importer\n2. tests\n3. No blockers :tada:",
    ],
)
def test_an_empty_blockers_answer_is_not_escalated(ctx: Context, sim, store, smtp, text):
    ts = _prompt(ctx, store)
    sim.user_posts(ALICE, CHANNEL, text, thread_ts=ts)
    sim.user_posts(BOB, CHANNEL, "Yesterday: x\nToday: y\nBlockers: the CI runners are down", thread_ts=ts)

    stages.digest(ctx, DAY)

    [dm] = sim.dms_to(LEAD)  # bob's only
    assert "*Bob Brown*" in dm["text"] and "the CI runners are down" in dm["text"]
    assert set(store.escalations(CHANNEL, DAY)) == {(BOB, LEAD), (BOB, DEPUTY)}
    assert "- Alice:" not in smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()


def test_a_failed_dm_is_retried_on_the_next_occasion_for_that_contact_only(ctx: Context, sim, store, smtp):
    ts = _prompt(ctx, store)
    sim.user_posts(ALICE, CHANNEL, BLOCKED, thread_ts=ts)
    sim.fail("conversations.open", error="user_disabled")  # the first contact's DM

    stages.remind(ctx, DAY)

    assert sim.dms_to(LEAD) == [] and len(sim.dms_to(DEPUTY)) == 1
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("failed", None), (ALICE, DEPUTY): ("sent", BLOCKER)}
    assert ctx.say.lines[1].startswith("could not send 1 blocker DM(s) (UALICE→ULEAD); each is retried")
    assert len(sim.dms_to(BOB)) == 1  # the failed escalation held no reminder back

    stages.digest(ctx, DAY)

    assert len(sim.dms_to(LEAD)) == 1 and len(sim.dms_to(DEPUTY)) == 1
    assert sim.dms_to(LEAD)[0]["text"].startswith(":rotating_light: Blocker from *Alice*")  # new to him
    assert len(smtp.wait_for(1)) == 1


def test_the_digest_shows_blockers_first_answers_by_question_and_what_was_planned_last_time(
    ctx: Context, sim, store, smtp
):
    earlier = _prompt(ctx, store, PREVIOUS_DAY)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: setup\nToday: write the *importer* for <@UBOB>\nBlockers: none",
                   thread_ts=earlier)
    sim.user_posts(BOB, CHANNEL, "1. reviews\n2. VPN setup\n3. waiting for the VPN token", thread_ts=earlier)
    stages.digest(ctx, PREVIOUS_DAY)

    ts = _prompt(ctx, store)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: wrote the importer &lt;v2&gt;", thread_ts=ts)
    sim.user_posts(ALICE, CHANNEL, "Today: tests\nBlockers: the staging DB is down", thread_ts=ts)
    sim.user_posts(BOB, CHANNEL, "1. docs\n2. more docs\n3. still waiting for the VPN token from IT", thread_ts=ts)
    sim.user_posts(CAROL, CHANNEL, "pairing with Alice, no sections here", thread_ts=ts)
    stages.digest(ctx, DAY)

    message = smtp.wait_for(2)[1].message
    assert "2026-11-26" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert (
        "\nBlockers:\n"
        "  - Alice: the staging DB is down (new since last time)\n"
        "  - Bob Brown: still waiting for the VPN token from IT (same as last time)\n"
    ) in text
    assert text.index("Blockers:") < text.index("Questions:") < text.index("\nAlice\n")
    assert (
        "\nAlice\n"
        "    Yesterday: wrote the importer <v2>\n"
        "      Planned last time (2026-11-25): write the *importer* for @Bob Brown\n"
        "    Today: tests\n"
        "    Blockers: the staging DB is down\n"
    ) in text
    assert "\nBob Brown\n    Yesterday: docs\n      Planned last time (2026-11-25): VPN setup\n" in text
    assert "\nCarol\n    pairing with Alice, no sections here\n" in text  # no earlier report: no plan
    html = message.get_body(("html",)).get_content()
    assert "<strong>Yesterday:</strong> wrote the importer &lt;v2&gt;</div>" in html
    assert (
        "Planned last time (2026-11-25): write the <strong>importer</strong> for <strong>@Bob Brown</strong></div>"
    ) in html
    assert html.index(">Blockers</h2>") < html.index(">Alice</h2>")

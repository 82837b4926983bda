"""What counts as a report, and who is missing: pure functions over recorded Slack JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from standup_bot.model import Reply, Report, StoredReply
from standup_bot.reports import (
    group_reports,
    merge_replies,
    missing_members,
    replies_from_thread,
    reply_from_message,
    who_to_remind,
)

DATA = Path(__file__).parent / "data"
PARENT = "1795683600.000100"
BOT_USER, BOT_ID = "UBOT", "BBOT"
ALICE, BOB, CAROL, DAVE, ERIN = "UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"

ALICE_FIRST = Reply(
    "1795683900.000200", ALICE,
    "*Yesterday:* shipped the login page &amp; fixed <@UBOB>'s flaky test\n*Today:* the digest email\n"
    "*Blockers:* none",
)
CAROL_EDITED = Reply(
    "1795684320.000300", CAROL,
    "Reviewing <https://github.com/acme/app/pull/42|PR #42> today, then the release notes", edited=True,
)
ALICE_BROADCAST = Reply("1795684800.000400", ALICE, "Heads-up: staging is down until noon <!here>")
CAROL_FILE = Reply("1795685460.000500", CAROL, "", files=("burndown.png",))
ALICE_LATER = Reply("1795687320.001100", ALICE, "Also: pairing with <@UCAROL> on the release")


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def thread_page() -> list[dict[str, Any]]:
    return _load("conversations_replies_standup_thread.json")["messages"]


def _message(thread_page: list[dict[str, Any]], ts: str) -> dict[str, Any]:
    return next(m for m in thread_page if m["ts"] == ts)


# -- reading a thread ---------------------------------------------------------------------------


def test_the_reports_in_a_thread_are_the_human_replies_in_order(thread_page):
    replies = replies_from_thread(thread_page, PARENT, BOT_USER, BOT_ID)

    assert replies == [ALICE_FIRST, CAROL_EDITED, ALICE_BROADCAST, CAROL_FILE, ALICE_LATER]


def test_the_order_of_the_page_does_not_matter_and_each_reply_counts_once(thread_page):
    shuffled = [*reversed(thread_page), _message(thread_page, ALICE_FIRST.ts)]

    assert replies_from_thread(shuffled, PARENT, BOT_USER, BOT_ID) == replies_from_thread(
        thread_page, PARENT, BOT_USER, BOT_ID
    )


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        (PARENT, "the prompt itself"),
        ("1795686000.000600", "a classic bot_message"),
        ("1795686060.000700", "another app's bot post (user plus bot_id)"),
        ("1795686300.000800", "the bot's own post in the thread"),
        ("1795686600.000900", "a channel_join"),
        ("1795686900.001000", "a reply in another thread"),
    ],
)
def test_these_messages_are_not_reports(thread_page, ts, why):
    assert reply_from_message(_message(thread_page, ts), PARENT, BOT_USER, BOT_ID) is None, why


def test_an_edited_reply_is_marked_edited(thread_page):
    reply = reply_from_message(_message(thread_page, CAROL_EDITED.ts), PARENT, BOT_USER, BOT_ID)

    assert reply == CAROL_EDITED


def test_a_thread_broadcast_is_still_a_reply(thread_page):
    assert reply_from_message(_message(thread_page, ALICE_BROADCAST.ts), PARENT) == ALICE_BROADCAST


def test_a_file_share_without_text_is_a_reply_listing_its_file_names(thread_page):
    assert reply_from_message(_message(thread_page, CAROL_FILE.ts), PARENT) == CAROL_FILE


def test_the_message_inside_an_edit_event_gives_the_edited_reply():
    event = _load("event_message_changed_reply.json")["event"]

    assert reply_from_message(event["message"], PARENT) == CAROL_EDITED


def test_a_thread_parent_written_by_a_person_is_not_a_report():
    parent = {
        "type": "message", "user": ALICE, "text": "async standup today, reply here", "ts": PARENT,
        "thread_ts": PARENT, "reply_count": 2, "client_msg_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b77",
    }

    assert reply_from_message(parent, PARENT) is None


def test_a_message_without_an_author_is_not_a_report():
    message = {"type": "message", "text": "who wrote this?", "ts": "1795683999.000001", "thread_ts": PARENT}

    assert reply_from_message(message, PARENT) is None


# -- merging the thread with the listener's copy ------------------------------------------------


def test_the_thread_wins_over_the_listeners_copy():
    stale = Reply(CAROL_EDITED.ts, CAROL, "Reviewing PR 42 today")

    merged = merge_replies([ALICE_FIRST, CAROL_EDITED], [StoredReply(stale, deleted=False)], "1795686000.000000")

    assert merged == [ALICE_FIRST, CAROL_EDITED]


def test_the_thread_wins_even_for_a_reply_newer_than_the_read_start():
    stale = Reply(ALICE_LATER.ts, ALICE, "Also: pairing")

    merged = merge_replies([ALICE_LATER], [StoredReply(stale, deleted=False)], ALICE_FIRST.ts)

    assert merged == [ALICE_LATER]


def test_a_stored_reply_missing_from_the_thread_was_deleted_and_is_dropped():
    deleted_while_down = Reply("1795684000.000250", BOB, "oops, wrong channel")

    merged = merge_replies([ALICE_FIRST], [StoredReply(deleted_while_down, deleted=False)], "1795686000.000000")

    assert merged == [ALICE_FIRST]


def test_a_stored_reply_newer_than_the_read_is_kept():
    arrived_during_read = Reply("1795686500.000950", BOB, "sorry, late: all good")

    merged = merge_replies(
        [ALICE_LATER, ALICE_FIRST], [StoredReply(arrived_during_read, deleted=False)], "1795686000.000000"
    )

    assert merged == [ALICE_FIRST, arrived_during_read, ALICE_LATER]


def test_a_stored_reply_newer_than_the_read_but_deleted_is_dropped():
    gone = Reply("1795686500.000950", BOB, "never mind")

    assert merge_replies([ALICE_FIRST], [StoredReply(gone, deleted=True)], "1795686000.000000") == [ALICE_FIRST]


def test_without_a_thread_the_stored_replies_that_are_not_deleted_are_used():
    stored = [
        StoredReply(ALICE_LATER, deleted=False),
        StoredReply(Reply("1795684000.000250", BOB, "deleted"), deleted=True),
        StoredReply(ALICE_FIRST, deleted=False),
        StoredReply(CAROL_EDITED, deleted=False),
    ]

    assert merge_replies(None, stored, PARENT) == [ALICE_FIRST, CAROL_EDITED, ALICE_LATER]


def test_an_empty_thread_is_not_the_same_as_no_thread():
    stored = [StoredReply(ALICE_FIRST, deleted=False)]

    assert merge_replies([], stored, "1795686000.000000") == []
    assert merge_replies(None, stored, "1795686000.000000") == [ALICE_FIRST]


# -- grouping -----------------------------------------------------------------------------------


def test_reports_group_each_members_replies_in_the_order_of_their_first_reply(thread_page):
    replies = replies_from_thread(thread_page, PARENT, BOT_USER, BOT_ID)

    reports = group_reports(reversed(replies))

    assert reports == [
        Report(ALICE, (ALICE_FIRST, ALICE_BROADCAST, ALICE_LATER)),
        Report(CAROL, (CAROL_EDITED, CAROL_FILE)),
    ]


def test_a_member_who_replied_first_comes_first_whatever_the_input_order():
    bob_early = Reply("1795683700.000150", BOB, "first!")

    reports = group_reports([ALICE_LATER, ALICE_FIRST, bob_early])

    assert [r.user for r in reports] == [BOB, ALICE]


def test_replies_with_no_text_and_no_files_are_dropped():
    empty = Reply("1795683700.000150", BOB, "")
    blank = Reply("1795683800.000160", BOB, "  \n ")

    reports = group_reports([empty, ALICE_FIRST, blank, CAROL_FILE])

    assert reports == [Report(ALICE, (ALICE_FIRST,)), Report(CAROL, (CAROL_FILE,))]


# -- who is missing, who gets reminded ----------------------------------------------------------


@pytest.fixture
def reports(thread_page) -> list[Report]:
    return group_reports(replies_from_thread(thread_page, PARENT, BOT_USER, BOT_ID))


def test_missing_members_keep_the_order_they_are_expected_in(reports):
    assert missing_members([ERIN, ALICE, BOB, DAVE], reports) == [ERIN, BOB, DAVE]


def test_a_reporter_outside_the_expected_members_is_never_missing(reports):
    assert missing_members([BOB], reports) == [BOB]
    assert CAROL not in missing_members([ALICE, BOB], reports)


def test_only_members_who_have_not_reported_and_were_not_reminded_are_reminded(reports):
    status = {BOB: "sent", DAVE: "sending"}

    assert who_to_remind([ALICE, BOB, DAVE, ERIN], reports, status) == [ERIN]


def test_a_member_whose_reminder_failed_is_reminded_again(reports):
    assert who_to_remind([BOB, ERIN], reports, {BOB: "failed"}) == [BOB, ERIN]


def test_a_member_who_reported_is_not_reminded_even_if_the_reminder_failed(reports):
    assert who_to_remind([ALICE], reports, {ALICE: "failed"}) == []


def test_only_expected_members_are_reminded_even_when_nobody_reported():
    assert who_to_remind([ALICE, BOB], [], {}) == [ALICE, BOB]  # carol is not expected


def test_only_our_own_bots_form_replies_count_as_reports():
    def form_reply(bot_id: str) -> dict:
        return {
            "type": "message", "ts": "1700000002.000100", "thread_ts": "1700000000.000100",
            "user": "UOTHERBOT", "bot_id": bot_id, "text": "*Standup from <@UMEMBER2>*",
            "metadata": {"event_type": "standup_report",
                         "event_payload": {"user": "UMEMBER2", "date": "2026-11-26", "answers": ["a"]}},
        }

    ours = replies_from_thread([form_reply("BBOT")], "1700000000.000100", "UBOT", "BBOT")
    theirs = replies_from_thread([form_reply("BIMPOSTER")], "1700000000.000100", "UBOT", "BBOT")
    assert [r.user for r in ours] == ["UMEMBER2"]
    assert theirs == []

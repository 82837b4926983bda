"""The addendum's pure parts: what changed since the last mailing, and how it is rendered."""

from __future__ import annotations

import datetime as dt

import pytest

from standup_bot.addendum import changes_since, reply_version
from standup_bot.errors import ConfigError
from standup_bot.model import Addendum, Change, Digest, Reply
from standup_bot.render import render_addendum
from standup_bot.settings import settings_from_mapping

DAY = dt.date(2026, 11, 26)
A = Reply("1.000100", "UALICE", "Yesterday: importer\nToday: tests")
B = Reply("1.000200", "UBOB", "late")
C = Reply("1.000300", "UCAROL", "gone soon", files=("plan.pdf",))


def test_nothing_changed_gives_no_changes():
    mailed = {r.ts: reply_version(r) for r in (A, C)}
    assert changes_since(mailed, [A, Reply(C.ts, C.user, C.text, edited=True, files=C.files)], {}) == []


def test_new_edited_and_deleted_replies_are_found_in_thread_order():
    mailed = {A.ts: reply_version(A), C.ts: reply_version(C)}
    edited = Reply(A.ts, A.user, "Yesterday: importer v2\nToday: tests", edited=True)

    assert changes_since(mailed, [edited, B], {C.ts: C}) == [("edited", edited), ("late", B), ("deleted", C)]


def test_a_deletion_already_told_and_a_reply_emptied_of_everything():
    mailed = {A.ts: reply_version(A), C.ts: ""}
    emptied = Reply(A.ts, A.user, "  ")

    assert changes_since(mailed, [emptied], {A.ts: A}) == [("deleted", A)]


def test_a_file_added_is_a_change():
    mailed = {B.ts: reply_version(B)}
    assert changes_since(mailed, [Reply(B.ts, B.user, B.text, files=("log.txt",))], {})[0][0] == "edited"


def test_the_addendum_renders_escaped_html_and_plain_text_by_member():
    context = Digest(
        date=DAY, channel_id="C0STANDUP", channel_name="team-standup", questions=("Q?",), reports=(), missing=(),
        user_names={"UBOB": "Bob <b>", "UALICE": "Alice"}, thread_url="https://x.slack.com/archives/C0/p1",
    )
    changes = (
        Change("late", Reply("2.0", "UBOB", "a &lt;script&gt; &amp; <@UALICE>"), "12:40"),
        Change("deleted", Reply("1.0", "UALICE", "old words"), "10:04"),
    )

    rendered = render_addendum(Addendum(context, 1, "the digest", "12:00 CET", changes))

    assert rendered.subject == "Standup addendum for #team-standup, 2026-11-26 (2 changes)"
    assert "\nBob <b>\n  late reply (12:40):\n    a <script> & @Alice\n" in rendered.text
    assert "\nAlice\n  deleted (reply of 10:04), it said:\n    old words\n" in rendered.text
    assert "2 changes in the thread since the digest (12:00 CET)" in rendered.text
    assert "<script>" not in rendered.html and "Bob &lt;b&gt;" in rendered.html
    assert "a &lt;script&gt; &amp; <strong>@Alice</strong>" in rendered.html
    assert 'href="https://x.slack.com/archives/C0/p1"' in rendered.html


@pytest.mark.parametrize("value", [0, -5, "60", 1.5, True, None])
def test_addendum_interval_must_be_a_positive_whole_number_of_minutes(value):
    values = {
        "SLACK_BOT_TOKEN": "xoxb-x", "STANDUP_CHANNEL": "C0STANDUP", "SMTP_HOST": "localhost",
        "MAIL_FROM": "bot@example.com", "DIGEST_RECIPIENTS": ["lead@example.com"], "ADDENDUM_INTERVAL": value,
    }
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(values)
    assert raised.value.problems == [f"ADDENDUM_INTERVAL: must be a whole number of minutes, at least 1, not {value!r}"]

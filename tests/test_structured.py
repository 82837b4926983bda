"""Tests for standup_bot.structured: which question is which, the blocker and the plan of a report."""

from __future__ import annotations

import datetime as dt

import pytest

from standup_bot.model import PreviousReport, Reply, Report
from standup_bot.settings import DEFAULT_QUESTIONS
from standup_bot.structured import (
    Roles,
    blocker_of,
    plan_of,
    previous_report,
    question_labels,
    question_roles,
    reply_holding,
    report_answers,
    report_text,
)

ROLES = question_roles(DEFAULT_QUESTIONS)


def _report(*texts: str, user: str = "U1") -> Report:
    return Report(user, tuple(Reply(f"1.{n}", user, text) for n, text in enumerate(texts, start=1)))


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        (DEFAULT_QUESTIONS, Roles(0, 1, 2)),
        # The blockers question found by its words, wherever it is.
        (("Any impediments?", "What did you finish?", "What's next?"), Roles(1, 2, 0)),
        # No blocker words: the last question is the blockers question…
        (("What did you do yesterday?", "What will you do today?", "Anything in your way?"), Roles(0, 1, 2)),
        # …unless it asks about something else, or is the only question.
        (("What did you do yesterday?", "What will you do today?"), Roles(0, 1, None)),
        (("How are you?",), Roles(None, None, None)),
    ],
)
def test_question_roles_come_from_the_questions_words_and_the_last_question(questions, expected):
    assert question_roles(questions) == expected


def test_question_labels_are_short_and_fall_back_on_the_question():
    questions = (*DEFAULT_QUESTIONS, "What is the one thing the whole team should know about today's release?")
    assert question_labels(questions) == (
        "Yesterday", "Today", "Blockers", "What is the one thing the whole team…",
    )


def test_a_report_is_its_replies_joined_in_order():
    report = _report("Yesterday: shipped", "", "Today: docs\nBlockers: the CI is red")
    assert report_text(report) == "Yesterday: shipped\nToday: docs\nBlockers: the CI is red"
    answers = report_answers(report, DEFAULT_QUESTIONS)
    assert answers.structured
    assert answers.parts == ("shipped", "docs", "the CI is red")


def test_loose_replies_are_not_taken_for_one_answer_per_question():
    report = _report("shipped the importer", "oh and reviewed a PR", "lunch at 1?")
    assert not report_answers(report, DEFAULT_QUESTIONS).structured


def test_a_later_reply_is_its_own_paragraph_so_a_postscript_stays_out_of_the_last_answer():
    report = _report("Yesterday: a\nToday: b\nBlockers: the VPN", "PS: back at 2pm")
    answers = report_answers(report, DEFAULT_QUESTIONS)
    assert answers.parts == ("a", "b", "the VPN")
    assert answers.note == "PS: back at 2pm"


@pytest.mark.parametrize(
    "text",
    [
        "Yesterday: x\nToday: y\nBlockers: none",
        "Yesterday: x\nToday: y\nBlockers: n/a",
        "Yesterday: x\nToday: y\nBlockers: -",
        "Yesterday: x\nToday: y\nBlockers: nothing",
        "Yesterday: x\nToday: y\nBlockers: No blockers :tada:",
        "Yesterday: x\nToday: y\nBlockers:",
        "Yesterday: x\nToday: y",  # no blockers section at all
        "shipped the release, blocked by nothing at all really",  # no sections: not read as a blocker
    ],
)
def test_an_empty_or_missing_blockers_answer_is_no_blocker(text):
    assert blocker_of(report_answers(_report(text), DEFAULT_QUESTIONS), ROLES) is None


def test_a_real_blocker_is_the_blockers_answer_as_typed():
    answers = report_answers(_report("1. x\n2. y\n3. waiting on <@U2> for *keys*"), DEFAULT_QUESTIONS)
    assert blocker_of(answers, ROLES) == "waiting on <@U2> for *keys*"
    assert plan_of(answers, ROLES) == "y"


def test_the_reply_holding_a_blocker_is_found_among_the_replies():
    report = _report("Yesterday: x\nToday: y", "Blockers: the staging DB\nis down", "PS: lunch at 1")
    assert reply_holding(report, "the staging DB\nis down").ts == "1.2"
    assert reply_holding(report, "not in any reply").ts == "1.3"


def test_a_previous_report_gives_the_plan_and_the_blocker():
    day = dt.date(2026, 11, 25)
    replies = [Reply("1.1", "U1", "Yesterday: a\nToday: write the importer"), Reply("1.2", "U1", "Blockers: VPN")]
    assert previous_report(day, replies, DEFAULT_QUESTIONS) == PreviousReport(day, "write the importer", "VPN")
    calm = [Reply("1.1", "U1", "Yesterday: a\nToday: b\nBlockers: none")]
    assert previous_report(day, calm, DEFAULT_QUESTIONS) == PreviousReport(day, "b", "")


def test_a_previous_report_without_sections_is_unknown_and_no_replies_are_no_report():
    day = dt.date(2026, 11, 25)
    loose = [Reply("1.1", "U1", "busy with this and that")]
    assert previous_report(day, loose, DEFAULT_QUESTIONS) == PreviousReport(day, None, None)
    assert previous_report(day, [Reply("1.1", "U1", "  ")], DEFAULT_QUESTIONS) is None
    # Without a blockers question, whether they had one is unknown.
    two = ("What did you do yesterday?", "What will you do today?")
    assert previous_report(day, [Reply("1.1", "U1", "Yesterday: a\nToday: b")], two) == PreviousReport(day, "b", None)


def test_within_answers_remembered_each_report_is_split_once():
    from standup_bot.structured import answers_remembered

    report = _report("Yesterday: shipped", "Today: docs\nBlockers: none")
    assert report_answers(report, DEFAULT_QUESTIONS) is not report_answers(report, DEFAULT_QUESTIONS)
    with answers_remembered():
        first = report_answers(report, DEFAULT_QUESTIONS)
        assert report_answers(_report("Yesterday: shipped", "Today: docs\nBlockers: none"), DEFAULT_QUESTIONS) is first
        assert report_answers(report, list(DEFAULT_QUESTIONS)) is first
        assert report_answers(report, DEFAULT_QUESTIONS[:2]) is not first  # other questions, other answers
        assert report_answers(report, DEFAULT_QUESTIONS[:2]).parts == ("shipped", "docs\nBlockers: none")
    assert first == report_answers(report, DEFAULT_QUESTIONS)
    assert report_answers(report, DEFAULT_QUESTIONS) is not first  # forgotten after the block

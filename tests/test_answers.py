"""Tests for standup_bot.answers: replies split into answers, empty blockers, same blockers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from standup_bot.answers import Answers, blocker_similarity, is_empty_blocker, same_blocker, split_answers
from standup_bot.settings import DEFAULT_QUESTIONS

CORPUS_PATH = Path(__file__).parent / "data" / "reply_corpus.json"
CORPUS: list[dict[str, Any]] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_large_and_varied_enough() -> None:
    ids = [entry["id"] for entry in CORPUS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    languages = {entry_id.split("-")[0] for entry_id in ids}
    assert {"en", "de"} <= languages
    assert any(entry["expected"] is None for entry in CORPUS)
    assert all(
        entry["expected"] is None or len(entry["expected"]) == len(entry.get("questions", DEFAULT_QUESTIONS))
        for entry in CORPUS
    )


@pytest.mark.parametrize("entry", CORPUS, ids=[entry["id"] for entry in CORPUS])
def test_reply_splits_as_expected(entry: dict[str, Any]) -> None:
    questions = tuple(entry.get("questions", DEFAULT_QUESTIONS))
    answers = split_answers(entry["text"], questions)
    assert answers.whole == entry["text"]
    if entry["expected"] is None:
        assert answers == Answers((None,) * len(questions), False, entry["text"])
    else:
        assert answers.structured
        assert list(answers.parts) == entry["expected"]
        assert answers.note == entry.get("note", "")


# --- split_answers: edges -----------------------------------------------------------------


def test_answers_are_frozen() -> None:
    answers = split_answers("Yesterday: a\nToday: b", DEFAULT_QUESTIONS)
    with pytest.raises(AttributeError):
        answers.structured = False  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_blank_reply_is_unstructured(text: str) -> None:
    assert split_answers(text, DEFAULT_QUESTIONS) == Answers((None, None, None), False, text)


def test_no_questions_gives_no_parts() -> None:
    assert split_answers("Yesterday: a", ()) == Answers((), False, "Yesterday: a")


def test_windows_line_ends_are_split_too() -> None:
    answers = split_answers("Yesterday: a\r\nToday: b\r\nBlockers: none", DEFAULT_QUESTIONS)
    assert answers.parts == ("a", "b", "none")


def test_single_question_is_answered_by_its_heading_only() -> None:
    questions = ("What are you working on?",)
    assert split_answers("Working on: the importer", questions).parts == ("the importer",)
    assert not split_answers("the importer\n\nand the exporter", questions).structured


def test_heading_without_configured_question_stays_in_the_text() -> None:
    questions = ("What did you do yesterday?", "What will you do today?")
    answers = split_answers("Yesterday: a\nToday: b\nBlockers: none", questions)
    assert answers.parts == ("a", "b\nBlockers: none")


def test_repeated_heading_joins_both_sections() -> None:
    answers = split_answers("Yesterday: a\nToday: b\nYesterday: also c", DEFAULT_QUESTIONS)
    assert answers.parts == ("a\n\nalso c", "b", None)


def test_markup_in_parts_is_kept_as_received() -> None:
    text = "*Yesterday:* _shipped_ <https://x.example/a?b=1&amp;c=2|the PR> &lt;3\nToday: ~nothing~"
    assert split_answers(text, DEFAULT_QUESTIONS).parts == (
        "_shipped_ <https://x.example/a?b=1&amp;c=2|the PR> &lt;3",
        "~nothing~",
        None,
    )


def test_bullet_letter_is_no_abbreviated_heading() -> None:
    answers = split_answers("*Yesterday:*\n- a\n- b\n*Today:* c", DEFAULT_QUESTIONS)
    assert answers.parts == ("- a\n- b", "c", None)


def test_note_keeps_what_is_outside_the_sections() -> None:
    text = "Heads-up: short day.\nYesterday: a\nToday: b\nBlockers: none\n\nP.S. cake in the kitchen"
    answers = split_answers(text, DEFAULT_QUESTIONS)
    assert answers.parts == ("a", "b", "none")
    assert answers.note == "Heads-up: short day.\n\nP.S. cake in the kitchen"


def test_unstructured_reply_has_no_note() -> None:
    text = "Shipped it.\n\nPS: cake in the kitchen"
    assert split_answers(text, DEFAULT_QUESTIONS) == Answers((None, None, None), False, text)


# Inputs that once took minutes (nested repetition in a regex, difflib on long text).
PATHOLOGICAL = [
    "thanks " + "all " * 2000 + "x",
    "morning " + "all " * 2000 + "x",
    "hi " + "!." * 5000 + "x",
    "Yesterday: " + "a. Today: b, " * 2000,
    "*" * 5000 + "Yesterday" + "*" * 5000 + ":",
    "<" * 5000 + ">" * 5000,
    "1" * 5000,
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_reply_is_handled_quickly(text: str) -> None:
    deadline = time.monotonic() + 10
    split_answers(text, DEFAULT_QUESTIONS)
    is_empty_blocker(text)
    blocker_similarity(text, text[::-1])
    assert time.monotonic() < deadline


REPLY_PIECES = st.sampled_from(
    [
        "Yesterday:", "*Today*", ":no_entry: Blockers:", "Gestern:", "1.", "2)", "(3)", ":one:", "- ", "• ",
        "none", "thanks!", "Morning all!", "PS:", "```", "&amp;", "&lt;", "<@U024BE7LH>", "<https://x.io|x>",
        ":white_check_mark:", "✅", "fixed the bug", "today I'll", "No blockers", "?", ":", ".", " ", "\n", "\n\n",
    ]
)


@given(st.lists(REPLY_PIECES, max_size=30).map("".join))
def test_parts_are_cut_from_the_reply(text: str) -> None:
    answers = split_answers(text, DEFAULT_QUESTIONS)
    assert answers.whole == text
    assert len(answers.parts) == len(DEFAULT_QUESTIONS)
    if not answers.structured:
        assert answers.parts == (None, None, None)
        assert answers.note == ""
    for part in (*answers.parts, answers.note):
        for line in (part or "").split("\n"):
            assert line.strip() in text


# --- is_empty_blocker ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        None, "", "   ", "none", "None.", "NONE!", "no", "No", "nope", "Nope!", "n/a", "N/A", "na", "-", "—",
        "–", "...", "nothing", "Nothing.", "no blockers", "No blockers!", "none so far", "Nothing blocking",
        "nothing blocking me", "all good", "All good :+1:", ":no_entry_sign:", ":white_check_mark:", "✅",
        ":thumbsup::skin-tone-2:", "*none*", "_nope_", "*No blockers*", "  none  ", "none, thanks!",
        "Nope, all good", "None at the moment", "no blockers today", "not blocked", "&lt;none&gt;",
        "keine", "Keine.", "nichts", "nein", "keine Blocker", "Alles gut", "keine Probleme", "ninguno", "nada",
        "aucun", "rien",
    ],
)
def test_empty_blocker(text: str | None) -> None:
    assert is_empty_blocker(text)


@pytest.mark.parametrize(
    "text",
    [
        "waiting on the API keys from IT", "blocked by <@U0LEGAL1>", "need access to prod", "yes",
        "Yes, waiting on design", "no access to the VPN", "none of the test servers work",
        "nothing works on staging", "CI is red", "blocked", "-- waiting on legal",
        "n/a until the vendor replies", ":sos:", ":fire: prod is down", "🚨", ":rotating_light:",
        "keine Rechte auf dem Cluster", "nichts geht mehr", "<!here> need a reviewer",
    ],
)
def test_real_blocker(text: str) -> None:
    assert not is_empty_blocker(text)


# --- blocker_similarity -------------------------------------------------------------------

SAME = [
    ("waiting on the API keys from IT", "still waiting for API keys from IT"),
    ("Waiting on API keys from IT", "waiting on *API keys* from IT :hourglass:"),
    ("need access to the prod database", "Still need access to the prod database!"),
    ("CI is red on main", "main CI still red"),
    ("blocked by <@U0LEGAL1> on the contract review", "still blocked by <@U0LEGAL1>: contract review"),
    ("warte auf die API-Schlüssel von der IT", "warte immer noch auf API-Schlüssel von IT"),
    ("Waiting on API keys", "waiting on the API keys from IT, pinged them again"),
]
DIFFERENT = [
    ("flaky CI", "waiting on API keys"),
    ("waiting on design review", "waiting on API keys from IT"),
    ("VPN access", "prod database access"),
    ("laptop keeps rebooting", "need a reviewer for the billing PR"),
    ("keine Rechte auf dem Cluster", "warte auf die API-Schlüssel von der IT"),
    ("waiting on the API keys from IT", ""),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_blocker_despite_rewording(a: str, b: str) -> None:
    assert same_blocker(a, b)
    assert same_blocker(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_blockers(a: str, b: str) -> None:
    assert not same_blocker(a, b)
    assert not same_blocker(b, a)


@pytest.mark.parametrize(("a", "b"), SAME + DIFFERENT)
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    score = blocker_similarity(a, b)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(blocker_similarity(b, a))


def test_identical_blockers_score_one() -> None:
    assert blocker_similarity("Waiting on *IT*", "waiting on IT") == 1.0


def test_threshold_decides() -> None:
    a, b = "waiting on design review", "waiting on API keys from IT"
    score = blocker_similarity(a, b)
    assert same_blocker(a, b, threshold=score)
    assert not same_blocker(a, b, threshold=min(1.0, score + 0.01))

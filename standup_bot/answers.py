"""Split a free-text standup reply into answers to the configured questions; judge blockers.

Pure functions over Slack message text as received (mrkdwn, ``&amp;`` entities, ``<@U…>``
tokens). The split never rewrites a part: it only cuts the text, so each part keeps its
markup for the renderer (https://api.slack.com/reference/surfaces/formatting).

A reply is split, in this order of preference, by

1. headings: "Yesterday:", "*Today*", ":no_entry: Blockers – …", "Gestern:", "Hoy:", the
   question itself, … (English, German, Spanish and French keyword groups below, mapped
   to the configured questions, plus the words of the questions themselves);
2. numbered items 1./1)/1-/(1)/:one: — between two and as many as there are questions;
3. one paragraph (blank-line separated) per question;
4. one line per question, each led by a different emoji;
5. lines that open with a keyword ("Yesterday I …", "Today I'll …", "No blockers").

Anything else is kept whole (``structured`` is False). Greetings, intros ("My update:")
and sign-offs ("thanks!") are never part of an answer.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from .markup import tokenize, unescape

__all__ = [
    "BLOCKERS", "DONE", "PLAN", "Answers", "blocker_similarity", "is_empty_blocker", "question_index",
    "same_blocker", "split_answers",
]


@dataclass(frozen=True)
class Answers:
    """A reply split into one part per configured question, or kept whole.

    ``parts`` has one entry per question, in the questions' order: the Slack markup of
    that section as typed, ``""`` when the reply has the heading but nothing under it,
    ``None`` when the reply has no section for that question (always all None when
    ``structured`` is False). ``whole`` is the reply exactly as received, in both cases.
    ``note`` is what a structured reply says outside its sections: a remark before the
    first heading ("Short one, I'm out from 2pm.") or a last paragraph such as "PS: …".
    Greetings ("Morning all!") and sign-offs ("thanks!") are in neither.
    """

    parts: tuple[str | None, ...]
    structured: bool
    whole: str
    note: str = ""


# --- vocabulary -------------------------------------------------------------------------

DONE, PLAN, BLOCKERS = "done", "plan", "blockers"


def _word_set(text: str) -> frozenset[str]:
    """Return the whitespace-separated words of a word list as a set."""
    return frozenset(text.split())


# Heading words and phrases per keyword group. They are matched as whole words after
# lower-casing and dropping a plural "s" (see _norm), so list other forms explicitly.
_GROUP_PHRASES: dict[str, tuple[str, ...]] = {
    DONE: (
        # English
        "yesterday", "done", "did", "completed", "complete", "previously", "last time",
        "accomplished", "accomplishment", "finished", "worked on", "since last standup",
        "since last time", "last standup", "what i did", "shipped", "progress", "achievement",
        "y",
        # German
        "gestern", "erledigt", "fertig", "geschafft", "gemacht", "zuletzt", "letztes mal",
        "seit dem letzten standup",
        # Spanish
        "ayer", "hecho", "hice", "completado", "terminado", "realizado",
        # French
        "hier", "fait", "terminé", "accompli", "réalisé",
    ),
    PLAN: (
        "today", "tomorrow", "plan", "planned", "planning", "will", "will do", "i'll", "we'll",
        "going to", "next", "doing", "focus", "focusing on", "working on", "up next", "next up",
        "next step", "to do", "todo", "on deck", "goal", "priority", "priorities", "this time", "t",
        "heute", "morgen", "geplant", "plan", "als nächstes", "vorhaben", "ziele", "mache",
        "hoy", "mañana", "planes", "para hoy", "voy a hacer", "haré", "objetivo", "pendiente",
        "aujourd'hui", "demain", "prévu", "à faire", "au programme", "objectif",
    ),
    BLOCKERS: (
        "blocker", "blocked", "blocking", "blocked by", "impediment", "issue", "problem",
        "help needed", "need help", "obstacle", "risk", "concern", "stuck", "b",
        "hindernis", "hindernisse", "probleme", "blockiert", "blockade", "blockaden",
        "brauche hilfe", "hilfe", "risiken",
        "bloqueo", "bloqueado", "bloqueador", "impedimento", "problema", "obstáculo",
        "necesito ayuda", "riesgo",
        "blocage", "bloquant", "bloqué", "problème", "risque", "besoin d'aide",
    ),
}
# "Today" means "done" in a reply that also has a "Tomorrow" heading (written at day's end).
_TODAY = frozenset({"today", "heute", "hoy", "aujourd'hui"})
_TOMORROW = frozenset({"tomorrow", "morgen", "mañana", "demain"})

# Words a heading or a question may hold besides the keywords ("What I did on Monday").
_FILLER = _word_set(
    """
    what i we my our the a an for of on in to from and or so far any anything s do will
    have has had you your are is am me all since with now currently this that item thing
    stuff work task update status how was were it there
    ich hab habe hast du für fur und oder mein meine die der das den dem bisher von seit zu
    mit gibt es etwas wirst bist
    lo que de para y mis mi el la los las del has tienes algún alguna
    ce que j ai je pour de la le les mes et d du as tu
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun
    montag dienstag mittwoch donnerstag freitag samstag sonntag
    lunes martes miércoles jueves viernes sábado domingo
    lundi mardi mercredi jeudi vendredi samedi dimanche
    """
)

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SHORTCODE_RE = re.compile(r":[a-z0-9_+'\-]+:(?::skin-tone-\d:)?", re.IGNORECASE)
# Pictographs, dingbats, arrows, keycaps and their joiners/selectors.
_EMOJI_CHAR = (
    "[\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe0f\u200d\u20e3\U0001f000-\U0001faff]"
)
_EMOJI_RE = re.compile(f"{_SHORTCODE_RE.pattern}|{_EMOJI_CHAR}", re.IGNORECASE)


_R = TypeVar("_R")


def _memoised_if_short(maxsize: int, longest: int) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Memoise a function of a string (and hashable arguments after it), for strings up to `longest`.

    What repeats from reply to reply is short (words, headings, "none"). The caches last as
    long as the process (the listener runs for weeks), so they are bounded in entries and,
    as a 40,000-character line is worked out but never kept, in memory too.
    """

    def decorate(function: Callable[..., _R]) -> Callable[..., _R]:
        remembered = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(text: str | None, *args: Any) -> _R:
            if text is not None and len(text) > longest:
                return function(text, *args)
            return remembered(text, *args)

        call.cache_clear = remembered.cache_clear  # type: ignore[attr-defined]  # as lru_cache has
        return call

    return decorate


@_memoised_if_short(8192, 40)
def _norm(word: str) -> str:
    """Lower-case a word and drop a possessive or a plural "s" (blockers → blocker)."""
    word = word.lower().replace("’", "'")
    word = word.removesuffix("'s")
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word


@_memoised_if_short(8192, 40)
def _stem(word: str) -> str:
    """Reduce a word a little further than _norm (focusing → focus, approved → approv)."""
    word = _norm(word)
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
                word = word[:-1]
            break
    if len(word) > 4 and word.endswith("e"):  # approve/approved, close/closed alike
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    """Return the normalised words of a piece of heading or question text."""
    return [_norm(word) for word in _WORD_RE.findall(text)]


_PHRASES: dict[tuple[str, ...], str] = {
    tuple(_words(phrase)): group for group, phrases in _GROUP_PHRASES.items() for phrase in phrases
}
_LONGEST_PHRASE = max(len(phrase) for phrase in _PHRASES)
_FILLER_WORDS = frozenset(_norm(word) for word in _FILLER)
_VOCAB_STEMS: dict[str, str] = {
    _stem(phrase[0]): group for phrase, group in _PHRASES.items() if len(phrase) == 1 and len(phrase[0]) > 1
}
# Every word of every keyword phrase: a heading word outside these, the filler and the
# questions' own words rules the line out as a heading (see _vote).
_PHRASE_WORDS = frozenset(word for phrase in _PHRASES for word in phrase)


def _phrase_hits(words: Sequence[str]) -> tuple[list[tuple[str, int, int]], list[int]]:
    """Find keyword phrases in words, longest first.

    Return the hits as (group, start, end) and the indexes of the words in no phrase.
    """
    hits: list[tuple[str, int, int]] = []
    unmatched: list[int] = []
    index = 0
    while index < len(words):
        for size in range(min(_LONGEST_PHRASE, len(words) - index), 0, -1):
            phrase = tuple(words[index : index + size])
            if phrase in _PHRASES:
                hits.append((_PHRASES[phrase], index, index + size))
                index += size
                break
        else:
            unmatched.append(index)
            index += 1
    return hits, unmatched


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per questions (see _vocabulary)
class _Vocabulary:
    """What the headings of a reply may say, derived from the configured questions."""

    questions: tuple[tuple[str, ...], ...]  # each question's words, for an exact match
    group_question: dict[str, int]  # keyword group -> index of the question it answers
    content: tuple[frozenset[str], ...]  # each question's own words (stems), minus filler
    any_content: frozenset[str]  # the union of `content`
    lengths: frozenset[int]  # how many words the questions have, for an exact match
    typed: re.Pattern[str] | None  # any question typed out (see _break_at_questions)
    typed_ascii: tuple[str, ...]  # the same questions lower-cased, when all are ASCII; else ()


def _question_group(words: Sequence[str]) -> str | None:
    """Return the keyword group a question asks about, or None when it names none."""
    votes: dict[str, int] = {}
    hits, unmatched = _phrase_hits(words)
    for group, _start, _end in hits:
        votes[group] = votes.get(group, 0) + 1
    for index in unmatched:  # "What did you accomplish?" → accomplish(ed)
        stem_group = _VOCAB_STEMS.get(_stem(words[index]))
        if stem_group is not None:
            votes[stem_group] = votes.get(stem_group, 0) + 1
    if not votes:
        return None
    best = max(votes.values())
    return next(group for group in _GROUP_PHRASES if votes.get(group) == best)


@functools.lru_cache(maxsize=32)
def _vocabulary(questions: tuple[str, ...]) -> _Vocabulary:
    """Map keyword groups and question words to the configured questions."""
    words = tuple(tuple(_words(question)) for question in questions)
    group_question: dict[str, int] = {}
    for index, question_words in enumerate(words):
        group = _question_group(question_words)
        if group is not None and group not in group_question:
            group_question[group] = index
    content = tuple(
        frozenset(_stem(word) for word in question_words if word not in _FILLER_WORDS)
        for question_words in words
    )
    typed = [q.strip() for q in questions if len(q.strip()) > 3]
    pattern = re.compile("|".join(re.escape(q) for q in typed), re.IGNORECASE) if typed else None
    lowered = tuple(q.lower() for q in typed) if all(q.isascii() for q in typed) else ()
    return _Vocabulary(
        words, group_question, content, frozenset().union(*content), frozenset(len(q) for q in words if q),
        pattern, lowered,
    )


# --- lines --------------------------------------------------------------------------------

# Before a heading: quote marks, bullets, list numbers and emoji, in any order.
_PREFIX_RE = re.compile(
    rf"(?:\s+|&gt;|[-•◦▪‣+]\s|\*\s|\d{{1,2}}[.)]\s|\(\d{{1,2}}\)\s|{_SHORTCODE_RE.pattern}|{_EMOJI_CHAR})",
    re.IGNORECASE,
)
_EMOJI_PREFIX_RE = re.compile(f"(?:{_SHORTCODE_RE.pattern}|{_EMOJI_CHAR})", re.IGNORECASE)
# Entities and shortcodes hide their colons from the heading separator search.
_MASK_RE = re.compile(rf"<[^<>]*>|{_SHORTCODE_RE.pattern}", re.IGNORECASE)
_SEPARATOR_RE = re.compile(r"[:?]|\s[-–—]{1,2}>?\s|\s→\s")
_MARKERS = "*_~"
_MAX_HEADING_WORDS = 6

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_NUMBERED_RE = re.compile(
    r"\s*[*_]*(?:\((?P<paren>\d{1,2})\)|(?P<num>\d{1,2})(?:[.):]|\s?[-–])|:(?P<word>one|two|three|four|five|six|seven|eight|nine):)"
    r"[*_]*(?=\s|$)\s*(?P<rest>.*)",
    re.IGNORECASE,
)

_ADDRESSEE = (
    r"(?:all|team|everyone|everybody|folks|guys|y'all|people|zusammen|leute|alle|a\s+todos|equipo"
    r"|tout\s+le\s+monde|<[@!][^<>]*>|:[\w+\-']+:|" + _EMOJI_CHAR + r"|[!.,:;~\-–—])"
)
_DAY = (
    r"(?:today|heute|hoy|aujourd'hui|<!date[^<>]*>|\d[\d./\-]*"
    r"|(?:mon|tue|wed|thu|fri|sat|sun|montag|dienstag|mittwoch|donnerstag|freitag|jan|feb|mar|apr|may"
    r"|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?:,?\s*\d[\d./\-]*)?)"
)
_GREETING_RE = re.compile(
    # "Morning all!", "Hi <@U1>", "Here's my standup for today:", "Hi! Kurzes Update:"
    r"\s*(?=\S)(?:(?:hi|hey|hello|hallo|hola|bonjour|salut|servus|moin|morning|good\s+morning"
    r"|guten\s+morgen|buenos\s+d[ií]as|gm|yo)"
    rf"(?:\s*{_ADDRESSEE})*)?\s*"
    r"(?:(?:(?:here(?:'s|\s+is)\s+)?(?:my|today's|daily|mein|kurzes|quick|short)\s+)?"
    r"(?:standup|stand-up|update|status|report|daily)(?:\s+(?:update|report))?"
    rf"(?:\s*[-–—,]?\s*(?:for\s+|from\s+|vom\s+|für\s+)?{_DAY})?"
    r"\s*[:!.\-–—]*(?:\s*" + _EMOJI_CHAR + r"|\s*:[\w+\-']+:)*)?\s*",
    re.IGNORECASE,
)
_SIGN_OFF_RE = re.compile(
    r"\s*(?:thanks?|thank\s+you|thx|ty|tia|cheers|danke(?:\s+schön)?|vielen\s+dank|merci|gracias"
    r"|that's\s+(?:all|it)|das\s+war'?s|eom|eof)"
    # _ADDRESSEE already holds "all", "team", …: listing them twice would make the regex
    # try exponentially many ways to fail on "thanks all all all … x".
    r"(?:\s*(?:euch|allen|" + _ADDRESSEE + r"))*\s*",
    re.IGNORECASE,
)


def _is_blank(line: str) -> bool:
    return not line.strip()


def _code_flags(lines: Sequence[str]) -> list[bool]:
    """Flag the lines that start inside a ``` code block (not the opening fence's line)."""
    if "```" not in "\n".join(lines):  # the usual reply: no code block at all
        return [False] * len(lines)
    flags: list[bool] = []
    inside = False
    for line in lines:
        flags.append(inside)
        if line.count("```") % 2:
            inside = not inside
    return flags


def _trim(lines: Sequence[str]) -> list[str]:
    """Drop blank lines at both ends."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return list(lines[start:end])


def _drop_greetings(lines: Sequence[str]) -> list[str]:
    """Drop greeting and intro lines ("Morning all!", "My update for today:") at the start."""
    lines = _trim(lines)
    while lines and _GREETING_RE.fullmatch(lines[0]):
        lines = _trim(lines[1:])
    return lines


def _drop_sign_offs(lines: Sequence[str]) -> list[str]:
    """Drop sign-off lines ("thanks!", "Danke :pray:") at the end."""
    lines = _trim(lines)
    while lines and _SIGN_OFF_RE.fullmatch(lines[-1]):
        lines = _trim(lines[:-1])
    return lines


def _join(lines: Sequence[str]) -> str:
    # Blank lines at the ends are whitespace: strip() drops them as _trim would.
    return "\n".join(lines).strip()


# --- headings -----------------------------------------------------------------------------


class _HeadShape(NamedTuple):
    """What a heading's words say, apart from the text after it (see _head_shape)."""

    # The question it heads: the question typed out in full, else the one its words vote
    # for most (see _vote), None on a tie; "today" counted as planned, then as done.
    question: int | None
    done_question: int | None
    tomorrow: bool
    colon: bool  # "Today: x" rather than "Today – x", "*Today*" or a bare "Today"
    bare: bool  # a line of heading words only: no separator, bold or emoji
    needs_more: bool  # a heading only when something follows it (a bare "Today" line)


class _Heading(NamedTuple):  # tuples, not dataclasses: built for many lines of every reply
    """A line recognised as a heading: what it asks about and the text after it."""

    question: int | None  # see _HeadShape
    done_question: int | None
    tomorrow: bool
    colon: bool
    bare: bool
    rest: str


def _vote(words: Sequence[str], vocab: _Vocabulary, today_is_done: bool) -> dict[int, int] | None:
    """Count which question a heading's words point at; None when a word is no heading word.

    A keyword votes for the question its group answers; any other word votes for the
    questions that contain it ("Focusing on:" for "What are you focusing on?").
    """
    votes: dict[int, int] = {}
    hits, unmatched = _phrase_hits(words)
    leftover = list(unmatched)
    for group, start, end in hits:
        if today_is_done and group == PLAN and words[start] in _TODAY:
            group = DONE
        question = vocab.group_question.get(group)
        if question is None:
            leftover.extend(range(start, end))
        else:
            votes[question] = votes.get(question, 0) + 1
    for index in leftover:
        stem = _stem(words[index])
        matched = False
        for question, content in enumerate(vocab.content):
            if stem in content:
                votes[question] = votes.get(question, 0) + 1
                matched = True
        if index in unmatched and not matched and words[index] not in _FILLER_WORDS:
            return None
    return votes


# A line's heading, worked out once per split (_break_inline_headings looks at each line,
# then _find_headings again): line -> (heading or None, whether it needs more to follow).
_HeadingMemo = dict[str, tuple["_Heading | None", bool]]


def _parse_heading(line: str, vocab: _Vocabulary, more_follows: bool, memo: _HeadingMemo) -> _Heading | None:
    """Recognise a heading line such as ``*Yesterday:* fixed it`` or ``:no_entry: Blockers``.

    A bare line of heading words ("Today") is one only when something follows it.
    """
    found = memo.get(line)
    if found is None:
        found = memo[line] = _heading_of(line, vocab)
    heading, needs_more = found
    return None if needs_more and not more_follows else heading


# Short lines recur from reply to reply ("*Blockers:* none", "Today:"); longer ones hardly.
@_memoised_if_short(1024, 40)
def _heading_of(line: str, vocab: _Vocabulary) -> tuple[_Heading | None, bool]:
    """Return the line's heading as if more follows it, and whether it is one only then."""
    position = 0
    emoji = False
    while match := _PREFIX_RE.match(line, position):
        if not match.group():
            break
        emoji = emoji or bool(_EMOJI_PREFIX_RE.fullmatch(match.group()))
        position = match.end()
    text = line[position:]
    if not text:
        return None, False
    first = _FIRST_WORD_RE.match(text)
    if first is not None and _never_in_heading(_norm(first.group()), vocab):
        return None, False  # most lines of running text: "Then the migration …"
    separator = _separator(text)
    head_raw = text[: separator.start()] if separator else text
    rest = text[separator.end() :] if separator else ""
    if separator and separator.group().strip() not in (":", "?") and not rest.strip():
        return None, False  # "Today -" with nothing after it is no heading
    shape = _head_shape(head_raw, separator.group() if separator else None, emoji, vocab)
    if shape is None:
        return None, False
    opening = len(head_raw) - len(head_raw.lstrip(_MARKERS))
    closing = len(head_raw.rstrip()) - len(head_raw.rstrip().rstrip(_MARKERS))
    if opening > closing:  # "*Yesterday:* text": the bold closes after the colon
        stripped = rest.lstrip()
        unclosed = len(stripped) - len(stripped.lstrip(_MARKERS))
        rest = stripped[min(unclosed, opening - closing) :]
    question, done_question, tomorrow, colon, bare, needs_more = shape
    return _Heading(question, done_question, tomorrow, colon, bare, rest.strip()), needs_more


@_memoised_if_short(2048, 200)
def _head_shape(head_raw: str, separator: str | None, emoji: bool, vocab: _Vocabulary) -> _HeadShape | None:
    """Read a heading's words (the text before its separator, if any); None when it is no heading.

    Memoised: headings repeat from reply to reply ("*Yesterday", "Blockers").
    """
    head = _EMOJI_RE.sub(" ", unescape(head_raw)).strip(" \t" + _MARKERS)
    raw_words = _WORD_RE.findall(head)
    if not raw_words:
        return None
    if len(raw_words) > _MAX_HEADING_WORDS and len(raw_words) not in vocab.lengths:
        return None  # too long for a heading, and no question has that many words
    words = tuple(_norm(word) for word in raw_words)
    exact = None
    if len(words) in vocab.lengths:
        exact = next((i for i, question in enumerate(vocab.questions) if question and words == question), None)
    if exact is None and (
        len(words) > _MAX_HEADING_WORDS or any(_never_in_heading(word, vocab) for word in words)
    ):
        return None
    styled = head_raw[:1] in ("*", "_", "~")  # opens with one of _MARKERS (bold, italic, strike)
    if len(words) == 1 and len(words[0]) == 1 and separator != ":":
        return None  # "Y:", "T:", "B:" are headings; a bullet "- b" is not
    if separator is None and head_raw.rstrip(" \t" + _MARKERS).endswith((".", "!")):
        return None  # "Yesterday I did a." is a sentence
    votes = _vote(words, vocab, today_is_done=False)
    today_votes = _vote(words, vocab, today_is_done=True)
    if exact is None and (not votes or today_votes is None):
        return None
    return _HeadShape(
        question=exact if exact is not None else _winner(votes or {}),
        done_question=exact if exact is not None else _winner(today_votes or {}),
        tomorrow=not _TOMORROW.isdisjoint(words),
        colon=separator == ":",
        bare=separator is None and not styled and not emoji,
        needs_more=separator is None and not (styled or emoji),
    )


# The first word of a line that opens with ASCII letters, when the word ends there for
# _WORD_RE as well (not before a letter or an apostrophe), so that it is the heading's first
# word if the line is a heading.
_FIRST_WORD_RE = re.compile(r"[A-Za-z]+(?![^\W\d_]|['’])")


def _never_in_heading(word: str, vocab: _Vocabulary) -> bool:
    """Tell whether a (normalised) word rules out a heading, unless the line is a question typed out.

    A word in no keyword phrase, not filler and in no question is a word _vote finds
    unmatched: it says the line is no heading.
    """
    return word not in _PHRASE_WORDS and word not in _FILLER_WORDS and _stem(word) not in vocab.any_content


def _separator(text: str) -> re.Match[str] | None:
    """Find a heading's separator (":", "?", " - ", …), never inside an entity or a shortcode.

    Masking them costs; the first separator of the text as it is is the one when no
    entity opens before it and it does not open a shortcode itself (a shortcode before it
    would have shown a ":" earlier, and masking never makes a separator).
    """
    found = _SEPARATOR_RE.search(text)
    if found is None or (
        text.find("<", 0, found.start()) == -1
        and not (found.group() == ":" and _SHORTCODE_RE.match(text, found.start()))
    ):
        return found
    return _SEPARATOR_RE.search(_MASK_RE.sub(_mask, text))


def _mask(match: re.Match[str]) -> str:
    """Hide an entity or shortcode (their colons are no heading separator), keeping its length."""
    return "\x00" * len(match.group())


def _winner(votes: dict[int, int]) -> int | None:
    """Return the question with the most votes; None when there is a tie or no vote."""
    if not votes:
        return None
    best = max(votes.values())
    winners = [question for question, count in votes.items() if count == best]
    return winners[0] if len(winners) == 1 else None


def _find_headings(
    lines: Sequence[str], code: Sequence[bool], vocab: _Vocabulary, memo: _HeadingMemo
) -> list[tuple[int, int, str]]:
    """Return the heading lines as (line index, question index, text after the heading)."""
    last = len(lines) - 1  # the last line that is not blank
    while last >= 0 and not lines[last].strip():
        last -= 1
    found = [
        (index, heading)
        for index, line in enumerate(lines)
        if not code[index] and (heading := _parse_heading(line, vocab, index < last, memo)) is not None
    ]
    today_is_done = any(heading.tomorrow for _index, heading in found)
    resolved: list[tuple[int, _Heading, int]] = []
    for index, heading in found:
        question = heading.done_question if today_is_done else heading.question
        if question is None or (resolved and resolved[-1][2] == question):
            continue  # "Today:\n- plan: x" stays inside today's section
        resolved.append((index, heading, question))
    if len({question for _index, _heading, question in resolved}) < 2:
        # A lone "Done" line in running text is a word, not a heading: bare headings
        # count only beside a heading for another question.
        resolved = [(index, heading, question) for index, heading, question in resolved if not heading.bare]
    return [(index, question, heading.rest) for index, heading, question in resolved]


def _split_exact(lines: Sequence[str], code: Sequence[bool], count: int) -> list[str] | None:
    """Split lines into exactly count pieces: by numbers, by paragraphs, or one line each."""
    items = _numbered_items(lines, code)
    if items is not None and len(items) == count:
        return _item_parts(lines, items)
    spans = _paragraph_spans(lines, code)
    if len(spans) == count:
        return [_join(lines[start:end]) for start, end in spans]
    non_blank = [line.strip() for line in lines if not _is_blank(line)]
    if len(non_blank) == count and not any(code):
        return non_blank
    return None


def _heading_parts(
    lines: Sequence[str], headings: Sequence[tuple[int, int, str]], count: int
) -> tuple[list[str | None], str]:
    """Cut the reply at its headings; return the parts and the note before the first heading.

    Text before the first heading (other than a greeting) answers the questions before
    that heading's question when there are any: split among them when it splits into as
    many pieces, else all of it to the first. Otherwise it is a note.
    """
    sections: dict[int, list[str]] = {}
    for position, (start, question, rest) in enumerate(headings):
        end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        body = ([rest] if rest else []) + list(lines[start + 1 : end])
        if position + 1 == len(headings):
            body = _drop_sign_offs(body)
        if question in sections:  # the same heading twice: one answer, in the order written
            sections[question].extend(["", *body])
        else:
            sections[question] = body

    first_line, first_question = headings[0][0], headings[0][1]
    preamble = _drop_greetings(lines[:first_line])
    note = ""
    if preamble:
        earlier = [q for q in range(first_question) if q not in sections]
        pieces = None
        if len(earlier) == first_question > 1:
            pieces = _split_exact(preamble, _code_flags(preamble), first_question)
        if pieces is not None:  # "Fixed X\nPlan Y\nBlockers: none"
            for question, piece in zip(earlier, pieces, strict=True):
                sections[question] = [piece]
        elif first_question > 0 and 0 not in sections:  # "Fixed the login bug.\nBlockers: none"
            sections[0] = preamble
        else:  # "Short one today.\nYesterday: …"
            note = _join(preamble)
    return [_join(sections[q]) if q in sections else None for q in range(count)], note


# --- numbers and paragraphs ---------------------------------------------------------------


def _numbered_items(lines: Sequence[str], code: Sequence[bool]) -> list[tuple[int, str]] | None:
    """Find the items numbered 1, 2, 3, … as (line index, text after the number).

    Numbers out of sequence (a sub-list) are ordinary text. Return None when there is no
    item 1 or something other than a greeting comes before it (then it is a list).
    """
    items: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if code[index] or not (match := _NUMBERED_RE.match(line)):
            continue
        number = match["paren"] or match["num"]
        value = int(number) if number else _NUMBER_WORDS[match["word"].lower()]
        if value == len(items) + 1:
            items.append((index, match["rest"]))
    if not items or _drop_greetings(lines[: items[0][0]]):
        return None
    return items


def _item_parts(lines: Sequence[str], items: Sequence[tuple[int, str]]) -> list[str]:
    """Return each numbered item's text, continuation lines included."""
    parts: list[str] = []
    for position, (start, rest) in enumerate(items):
        end = items[position + 1][0] if position + 1 < len(items) else len(lines)
        body = [rest, *lines[start + 1 : end]]
        if position + 1 == len(items):
            body = _drop_sign_offs(body)
        parts.append(_join(body))
    return parts


def _paragraph_spans(lines: Sequence[str], code: Sequence[bool]) -> list[tuple[int, int]]:
    """Return the paragraphs as line ranges, without a greeting before or a sign-off after.

    Blank lines inside a code block do not end a paragraph.
    """
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for index, (line, in_code) in enumerate(zip(lines, code, strict=True)):
        if _is_blank(line) and not in_code:
            if start is not None:
                spans.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        spans.append((start, len(lines)))
    while spans:
        first, end = spans[0]
        while first < end and (_is_blank(lines[first]) or _GREETING_RE.fullmatch(lines[first])):
            first += 1
        if first < end:
            spans[0] = (first, end)
            break
        spans.pop(0)
    while spans:
        first, end = spans[-1]
        while end > first and (_is_blank(lines[end - 1]) or _SIGN_OFF_RE.fullmatch(lines[end - 1])):
            end -= 1
        if end > first:
            spans[-1] = (first, end)
            break
        spans.pop()
    return spans


def _paragraph_parts(
    lines: Sequence[str], spans: Sequence[tuple[int, int]], headings: Sequence[tuple[int, int, str]]
) -> list[str | None] | None:
    """Give each paragraph to the question in its position, when the headings agree.

    Every heading must open the paragraph in its own question's position ("Blockers: none"
    as the third of three paragraphs); a heading's text replaces its heading line.
    """
    opening = {start: index for index, (start, _end) in enumerate(spans)}
    rests: dict[int, str] = {}
    for line, question, rest in headings:
        if opening.get(line) != question:
            return None
        rests[line] = rest
    parts: list[str | None] = []
    for start, end in spans:
        if start in rests:
            parts.append(_join([rests[start], *lines[start + 1 : end]]))
        else:
            parts.append(_join(lines[start:end]))
    return parts


# --- lines led by an emoji or a keyword ---------------------------------------------------

# Words that may come before the keyword that leads a line ("I'm blocked …", "No blockers");
# not "was": "I was blocked for an hour" is history, not a blocker.
_LEAD_WORDS = _word_set(
    """
    no nothing not i i'm im i've we we're still am also and then my our
    keine kein nichts ich bin noch immer auch und dann
    """
)
_LEADING_EMOJI_RE = re.compile(rf"\s*(?:[-•◦▪‣+]\s+|\*\s+)?((?:(?:{_SHORTCODE_RE.pattern}|{_EMOJI_CHAR})\s*)+)", re.IGNORECASE)


def _content_lines(lines: Sequence[str]) -> list[str]:
    """Return the lines without a greeting before and a sign-off after them."""
    return _drop_sign_offs(_drop_greetings(lines))


def _emoji_led_parts(lines: Sequence[str], count: int) -> list[str | None] | None:
    """Give each line led by a different emoji to the question in its position.

    ":white_check_mark: shipped it\n:arrow_right: docs\n:no_entry: none" has as many
    emoji-led lines as questions; lines without an emoji continue the one before.
    """
    content = _content_lines(lines)
    code = _code_flags(content)
    pieces: list[tuple[str, list[str]]] = []  # (emoji, lines)
    for line, in_code in zip(content, code, strict=True):
        match = None if in_code else _LEADING_EMOJI_RE.match(line)
        if match is not None:
            emoji = "".join(_EMOJI_RE.findall(match[1])).lower()
            pieces.append((emoji, [line[match.end() :]]))
        elif pieces:
            pieces[-1][1].append(line)
        else:
            return None
    if len(pieces) != count or len({emoji for emoji, _lines in pieces}) != count:
        return None
    return [_join(body) for _emoji_text, body in pieces]


def _led_group(line: str) -> tuple[str, tuple[str, ...]] | None:
    """Return the keyword group and words of a line that opens with a keyword ("Yesterday I …")."""
    position = 0
    while (match := _PREFIX_RE.match(line, position)) and match.group():
        position = match.end()
    words = _words(_EMOJI_RE.sub(" ", unescape(line[position:])))[:4]
    hits, _unmatched = _phrase_hits(words)
    for group, start, end in hits:
        if len(words[start]) > 1 and all(word in _LEAD_WORDS for word in words[:start]):
            return group, tuple(words[start:end])
        break
    return None


def _keyword_led_parts(lines: Sequence[str], vocab: _Vocabulary, count: int) -> list[str | None] | None:
    """Split at lines that open with a keyword, keeping the whole sentence as the answer.

    "Yesterday I fixed the login bug\nToday I'll do the signup page\nNo blockers": the
    first line must open with one, at least two answers must be found, and other lines
    continue the answer before them.
    """
    content = _content_lines(lines)
    code = _code_flags(content)
    led = [None if in_code else _led_group(line) for line, in_code in zip(content, code, strict=True)]
    today_is_done = any(hit is not None and hit[1][0] in _TOMORROW for hit in led)
    sections: dict[int, list[str]] = {}
    current: int | None = None
    for line, hit in zip(content, led, strict=True):
        question = None
        if hit is not None:
            group = DONE if today_is_done and hit[0] == PLAN and hit[1][0] in _TODAY else hit[0]
            question = vocab.group_question.get(group)
        if question is not None and question not in sections:
            sections[question] = [line]
            current = question
        elif current is not None:
            sections[current].append(line)
        else:
            return None
    if len(sections) < 2:
        return None
    return [_join(sections[q]) if q in sections else None for q in range(count)]


def _may_hold_question(text: str, vocab: _Vocabulary) -> bool:
    """Tell whether any question may be typed out in the text (False: none is)."""
    if vocab.typed_ascii and text.isascii():
        # ASCII on both sides: the pattern's IGNORECASE is lower-casing, and `in` is faster.
        lowered = text.lower()
        return any(question in lowered for question in vocab.typed_ascii)
    return vocab.typed is not None and vocab.typed.search(text) is not None


def _break_at_questions(lines: Sequence[str], vocab: _Vocabulary) -> list[str]:
    """Start a new line wherever a configured question is typed out mid-line.

    "what did you do yesterday? shipped it. what will you do today? rest" then has one
    question heading per line.
    """
    pattern = vocab.typed
    if pattern is None or not _may_hold_question("\n".join(lines), vocab):
        return list(lines)
    broken: list[str] = []
    for line, in_code in zip(lines, _code_flags(lines), strict=True):
        cuts = [0]
        if not in_code and "```" not in line:
            for match in pattern.finditer(line):
                before = _EMOJI_RE.sub(" ", unescape(line[: match.start()]))
                if _WORD_RE.search(before):  # not after a mere quote mark, bullet or emoji
                    cuts.append(match.start())
        cuts.append(len(line))
        pieces = [line[start:end] for start, end in itertools.pairwise(cuts)]
        broken.extend([*(piece.rstrip() for piece in pieces[:-1]), pieces[-1]])
    return broken


# A last paragraph that opens like this is a postscript, not part of the last answer.
_POSTSCRIPT_RE = re.compile(
    r"\s*[*_]*(?:p\.?\s?s\b\.?|fyi\b|note\b|btw\b|by\s+the\s+way\b|heads[\s-]up\b|reminder\b|ooo\b"
    r"|nachtrag\b|hinweis\b|übrigens\b|info\b)",
    re.IGNORECASE,
)
# Where a second heading may start on the same line: after a sentence, a comma or a pipe.
_INLINE_BREAK_RE = re.compile(r"(?:[.!;,]|\s[|•])\s+")
_MAX_INLINE_LINE = 1000  # each break is tried by parsing the rest of the line: keep it short


def _cut_postscript(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split off a last paragraph that opens with "PS", "FYI", "Note", … as a postscript."""
    if all(line.strip() for line in lines):
        return list(lines), []  # no blank line: one paragraph
    content = _drop_sign_offs(lines)
    spans = _paragraph_spans(content, _code_flags(content))
    if len(spans) < 2 or not _POSTSCRIPT_RE.match(content[spans[-1][0]]):
        return list(lines), []
    start, end = spans[-1]
    return content[:start], content[start:end]


def _break_inline_headings(lines: Sequence[str], vocab: _Vocabulary, memo: _HeadingMemo) -> list[str]:
    """Start a new line at a second heading on a heading's line.

    "Yesterday: A. Today: B. Blockers: none" becomes three lines; only lines that open
    with a "Heading:" are broken, only before another "Heading:" for another question.
    """
    broken: list[str] = []
    for line, in_code in zip(lines, _code_flags(lines), strict=True):
        if in_code or "```" in line or len(line) > _MAX_INLINE_LINE:
            broken.append(line)
            continue
        first = _parse_heading(line, vocab, True, memo)
        if first is None or not first.colon:
            broken.append(line)
            continue
        current = first.question
        # Another "Heading:" needs a colon after the break before it.
        last_colon = line.rfind(":")
        if _INLINE_BREAK_RE.search(line, 0, last_colon) is None:
            broken.append(line)
            continue
        masked = _MASK_RE.sub(_mask, line)
        start = 0
        for match in _INLINE_BREAK_RE.finditer(masked):
            if match.end() > last_colon:
                break  # no colon after it: no "Heading:" either
            heading = _parse_heading(line[match.end() :], vocab, True, memo)
            if heading is None or not heading.colon:
                continue
            question = heading.question
            if question is not None and question != current:
                broken.append(line[start : match.start() + 1].rstrip())
                start, current = match.end(), question
        broken.append(line[start:])
    return broken


def question_index(questions: Sequence[str], group: str) -> int | None:
    """Return the index of the question that asks about a keyword group, or None.

    ``group`` is DONE, PLAN or BLOCKERS; a question belongs to the group whose keywords
    its words name most ("Anything blocking you?" → BLOCKERS), the first such question
    when several do. The same mapping decides which heading answers which question.
    """
    return _vocabulary(tuple(questions)).group_question.get(group)


def split_answers(text: str, questions: Sequence[str]) -> Answers:
    """Split a reply into one part per question when it has recognisable sections.

    Headings are preferred, then numbered items, then paragraphs, then lines that each
    open with a different emoji, then lines that open with a keyword ("Yesterday I …").
    Two refinements: numbered items win when only some of them carry a heading ("1.
    Finished:" over a sub-list), and paragraphs win when there is one per question and
    every heading opens the paragraph in its question's position. Text outside the
    sections goes to ``note`` (see :class:`Answers` and :func:`_heading_parts`).
    """
    questions = tuple(questions)
    count = len(questions)
    if not count or not text.strip():
        return Answers((None,) * count, False, text)
    vocab = _vocabulary(questions)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    memo: _HeadingMemo = {}
    lines = _break_inline_headings(_break_at_questions(lines, vocab), vocab, memo)
    lines, postscript = _cut_postscript(lines)
    code = _code_flags(lines)
    headings = _find_headings(lines, code, vocab, memo)
    items = _numbered_items(lines, code)
    spans = _paragraph_spans(lines, code)

    parts: list[str | None] | None = None
    note = ""
    if items is not None and 2 <= len(items) <= count:
        heading_lines = {line for line, _question, _rest in headings}
        if heading_lines < {line for line, _rest in items}:
            parts = [*_item_parts(lines, items), *([None] * (count - len(items)))]
    if parts is None and headings:
        if count >= 2 and len(spans) == count:
            parts = _paragraph_parts(lines, spans, headings)
        if parts is None:
            parts, note = _heading_parts(lines, headings, count)
    if parts is None and count >= 2 and len(spans) == count:
        parts = [_join(lines[start:end]) for start, end in spans]
    if parts is None and count >= 2:
        parts = _emoji_led_parts(lines, count)
    if parts is None:
        parts = _keyword_led_parts(lines, vocab, count)
    if parts is None:
        return Answers((None,) * count, False, text)
    note = "\n\n".join(piece for piece in (note, _join(postscript)) if piece)
    return Answers(tuple(parts), True, text, note)


# --- blockers -----------------------------------------------------------------------------

# Emoji that say "help" rather than "all clear": an answer of only these is a blocker.
_ALARM_EMOJI = frozenset(
    {":sos:", ":rotating_light:", ":fire:", ":warning:", ":bangbang:", ":exclamation:", ":red_circle:",
     ":construction:", ":octagonal_sign:", ":stop_sign:", "🆘", "🚨", "🔥", "⚠", "‼", "❗", "🔴", "🚧", "🛑"}
)
_STYLE_RE = re.compile(r"[*_~`]+")
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
# An answer made of these words only, with at least one of _NO_WORDS, says "no blocker".
_NO_WORDS = _word_set(
    """
    none no nope nah nothing nil zero n na not nein nö nee ne keine kein keiner nichts ninguno ninguna
    nada aucun aucune rien non ras good fine clear ok okay gut klar bien
    """
)
_EMPTY_WORDS = _NO_WORDS | _word_set(
    """
    all blockers blocker blocking blocked issues issue problems problem impediments impediment
    obstacles obstacle risks risk currently so far at the moment moments right now for me here yet
    really today this time as of in sight to report from my side on end everything looks is
    thanks thank you thx ty cheers that i know of am a major big serious new else special much
    worth mentioning
    alles bisher gerade aktuell heute momentan im moment mir bei von meiner seite seite sicht gar
    neues besonderes weiter
    hindernisse probleme blockiert blocker danke soweit sonst derzeit zurzeit
    por ahora bloqueos problemas de momento todo bien gracias
    pas de problème problèmes blocage bloquant pour moi merci tout va
    """
)


def _plain(text: str) -> str:
    """Reduce Slack markup to lower-case words: no styles, entities' text only, no emoji."""
    pieces: list[str] = []
    for token in tokenize(text):
        if token.kind == "text":
            pieces.append(token.value)
        elif token.kind == "link":
            pieces.append(token.label or token.value)
        else:
            pieces.append(f" {token.kind}{token.value} ")
    plain = _EMOJI_RE.sub(" ", "".join(pieces))  # before styles: ":no_entry:" holds "_"
    return _STYLE_RE.sub(" ", plain).lower()


def _emoji(text: str) -> list[str]:
    """Return the emoji of a text, shortcodes lower-cased and without selectors or skin tones."""
    found = []
    for match in _EMOJI_RE.finditer(text):
        value = re.sub(r"::skin-tone-\d:$", ":", match.group().lower())
        if value not in ("\ufe0f", "\u200d", "\u20e3"):
            found.append(value.replace("\ufe0f", ""))
    return found


@_memoised_if_short(1024, 200)  # "none", "n/a", "-": most members' blockers, checked once
def is_empty_blocker(text: str | None) -> bool:
    """Tell whether a blockers answer says there is nothing blocking ("none", "n/a", "-", …).

    Case, spaces, punctuation, mrkdwn styles, emoji and a trailing "thanks" are ignored;
    an answer of only emoji is empty unless one of them calls for help (:sos:, :fire:, …).
    """
    if text is None:
        return True
    plain = _plain(text).replace("n/a", " na ").replace("k.a.", " keine ")
    words = _TOKEN_RE.findall(plain)
    if not words:
        return not any(emoji in _ALARM_EMOJI for emoji in _emoji(unescape(text)))
    return all(word in _EMPTY_WORDS for word in words) and any(word in _NO_WORDS for word in words)


# Words that carry no meaning when comparing two blockers ("still waiting on the …").
_STOP_WORDS = _word_set(
    """
    a an the on for from of to in at by with and or but is are am was were be been being it its
    still again also just really very some any this that these those my our we i me us
    currently now today yet more has have had hasn haven isn aren didn doesn don won t s got
    der die das den dem des ein eine einen und oder auf für von mit im in am ist sind noch immer
    wieder auch nur ich wir mein unser zu bei heute
    """
)


_MAX_COMPARED_CHARS = 200


def _blocker_words(text: str) -> list[str]:
    """Return the meaningful, stemmed words of a blocker in order."""
    return [_stem(word) for word in _TOKEN_RE.findall(_plain(text)) if word not in _STOP_WORDS]


def blocker_similarity(a: str, b: str) -> float:
    """Score how alike two blockers are, from 0 (unrelated) to 1 (the same words).

    The mean of the Jaccard index of their word sets (or, when one blocker is a shorter
    restatement of the other, most of their overlap coefficient) and difflib's ratio over
    the words in order, so rewording and reordering both count.
    """
    words_a, words_b = _blocker_words(a), _blocker_words(b)
    if not words_a or not words_b:
        return 1.0 if not words_a and not words_b and _plain(a).split() == _plain(b).split() else 0.0
    set_a, set_b = set(words_a), set(words_b)
    common = len(set_a & set_b)
    jaccard = common / len(set_a | set_b)
    overlap = common / min(len(set_a), len(set_b))
    token_score = max(jaccard, 0.8 * overlap)
    # difflib is quadratic or worse: compare the opening only (a blocker is a sentence or two).
    text_a, text_b = " ".join(words_a)[:_MAX_COMPARED_CHARS], " ".join(words_b)[:_MAX_COMPARED_CHARS]
    # SequenceMatcher is not symmetric: average both directions so that order does not matter.
    ratio = (
        difflib.SequenceMatcher(None, text_a, text_b, autojunk=False).ratio()
        + difflib.SequenceMatcher(None, text_b, text_a, autojunk=False).ratio()
    ) / 2
    return max(0.0, min(1.0, (token_score + ratio) / 2))


def same_blocker(a: str, b: str, threshold: float = 0.6) -> bool:
    """Tell whether two blockers describe the same obstacle (similarity at least threshold)."""
    return blocker_similarity(a, b) >= threshold

"""Tests for standup_bot.render: the digest's subject, text part and HTML part."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from html.parser import HTMLParser

import pytest

from standup_bot.model import Digest, PreviousReport, Reply, Report
from standup_bot.render import RenderedDigest, digest_subject, render_digest

QUESTIONS = ("What did you do yesterday?", "What will you do today?", "Anything blocking you?")
THREAD_URL = "https://acme.slack.com/archives/C1/p1772445600000100"
NAMES = {"U1": "Alice", "U2": 'Bob "B" O\'Neil', "U3": "Carol"}

ALICE = Report(
    user="U1",
    replies=(
        Reply(
            ts="1772445700.000200",
            user="U1",
            text=(
                "Yesterday: done &amp; shipped with <@U2>, see "
                "<https://example.com/a?b=1&amp;c=2|the PR>\nToday: *release* in <#C1|general>"
            ),
            edited=True,
        ),
        Reply(ts="1772445800.000300", user="U1", text="Blockers: none :tada:", files=("plan.pdf",)),
    ),
)
# Carol is not in MEMBERS: she is shown, and counted, but never "missing".
CAROL = Report(
    user="U3",
    replies=(Reply(ts="1772445900.000400", user="U3", text="", files=("screenshot.png",)),),
)


def make_digest(**changes: object) -> Digest:
    """Build the standard day (alice and carol reported, bob did not) with some fields changed."""
    digest = Digest(
        date=dt.date(2026, 3, 2),
        channel_id="C1",
        channel_name="general",
        questions=QUESTIONS,
        reports=(ALICE, CAROL),
        missing=("U2",),
        user_names=NAMES,
        channel_names={"C1": "general"},
        thread_url=THREAD_URL,
    )
    return dataclasses.replace(digest, **changes)  # type: ignore[arg-type]


EXPECTED_TEXT = """\
Standup digest for #general, 2026-03-02
2 of 3 reported
View the thread in Slack: https://acme.slack.com/archives/C1/p1772445600000100

Blockers: none

Questions:
  1. What did you do yesterday?
  2. What will you do today?
  3. Anything blocking you?

Alice
    Yesterday: done & shipped with @Bob "B" O'Neil, see the PR (https://example.com/a?b=1&c=2)
    Today: *release* in #general
    Blockers: none :tada:
    (edited)
    [file: plan.pdf]

Carol
    [file: screenshot.png]

Not reported:
  - Bob "B" O'Neil
"""


class DocumentParser(HTMLParser):
    """Collect tags, attributes and visible text from an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> DocumentParser:
    """Parse an HTML document."""
    parser = DocumentParser()
    parser.feed(html)
    parser.close()
    return parser


def visible_text(html: str) -> str:
    """Return the document's text with whitespace collapsed, as a reader would see it."""
    return " ".join("".join(parse(html).text).split())


# --- subject --------------------------------------------------------------------------


def test_subject_names_channel_date_and_counts() -> None:
    assert render_digest(make_digest()).subject == (
        "Standup digest for #general, 2026-03-02 (2 of 3 reported)"
    )


def test_subject_counts_nobody_when_nobody_reported() -> None:
    digest = make_digest(reports=(), missing=("U1", "U2"))
    assert digest_subject(digest) == "Standup digest for #general, 2026-03-02 (0 of 2 reported)"


@pytest.mark.parametrize(
    "channel_name",
    [
        "general\r\nBcc: victim@example.com",
        "general\nBcc: victim@example.com",
        "general\u2028Bcc: victim@example.com",
        "general\x85Bcc:\x00 victim@example.com",
    ],
)
def test_subject_never_contains_a_line_break(channel_name: str) -> None:
    subject = render_digest(make_digest(channel_name=channel_name)).subject
    assert subject == ("Standup digest for #general Bcc: victim@example.com, 2026-03-02 (2 of 3 reported)")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subject)


def test_subject_falls_back_on_the_channel_id() -> None:
    assert digest_subject(make_digest(channel_name="\r\n")).startswith("Standup digest for #C1, ")


# --- text part ------------------------------------------------------------------------


def test_text_part_shows_every_report_and_who_is_missing() -> None:
    assert render_digest(make_digest()).text == EXPECTED_TEXT


def test_text_part_warns_when_built_from_the_listeners_copy() -> None:
    text = render_digest(make_digest(from_store_only=True)).text
    assert (
        "WARNING: the Slack thread could not be read. This digest is built from the\n"
        "listener's copy of the replies and may be incomplete or out of date.\n"
    ) in text
    assert "WARNING" not in render_digest(make_digest()).text


def test_text_part_has_no_thread_line_without_a_thread_url() -> None:
    text = render_digest(make_digest(thread_url=None)).text
    assert text.startswith("Standup digest for #general, 2026-03-02\n2 of 3 reported\n\nBlockers: none\n\nQuestions:")
    assert "View the thread" not in text


def test_text_part_says_everyone_reported() -> None:
    text = render_digest(make_digest(missing=())).text
    assert text.endswith("    [file: screenshot.png]\n\nEveryone reported.\n")
    assert "Not reported" not in text


def test_text_part_lists_everyone_when_nobody_reported() -> None:
    text = render_digest(make_digest(reports=(), missing=("U1", "U2", "U9"))).text
    assert text.endswith('\nNobody reported.\n\nNot reported:\n  - Alice\n  - Bob "B" O\'Neil\n  - U9\n')
    assert "Everyone reported." not in text


def test_text_part_indents_every_line_of_a_reply() -> None:
    reply = Reply(ts="1.1", user="U1", text="one\ntwo\n\n&gt; three\n", edited=True)
    text = render_digest(make_digest(reports=(Report("U1", (reply,)),))).text
    assert "\nAlice\n    one\n    two\n\n    > three (edited)\n\nNot reported:" in text


def test_text_part_never_contains_a_raw_mention() -> None:
    reply = Reply(ts="1.1", user="U4", text="<@U4> <@W9> &lt;@U1&gt; <#C7> <!here>")
    text = render_digest(make_digest(reports=(Report("U4", (reply,)),))).text
    assert not re.search(r"<[@#!]", text)
    assert "    @U4 @W9 <\u200b@U1> #C7 @here\n" in text


def test_text_part_keeps_user_text_unescaped() -> None:
    reply = Reply(ts="1.1", user="U1", text="&lt;script&gt; &amp; <https://x.example/?a=1&amp;b=2>")
    text = render_digest(make_digest(reports=(Report("U1", (reply,)),))).text
    assert "    <script> & https://x.example/?a=1&b=2\n" in text


# --- HTML part ------------------------------------------------------------------------


def test_html_part_shows_the_same_content() -> None:
    html = render_digest(make_digest()).html
    assert visible_text(html) == (
        "Standup digest for #general, 2026-03-02 (2 of 3 reported) "
        "Standup digest for #general 2026-03-02 · 2 of 3 reported "
        "View the thread in Slack "
        "Blockers None. "
        "Questions: What did you do yesterday? What will you do today? Anything blocking you? "
        "Alice "
        'Yesterday: done & shipped with @Bob "B" O\'Neil, see the PR '
        "Today: release in #general "
        "Blockers: none :tada: (edited) [file: plan.pdf] "
        "Carol [file: screenshot.png] "
        'Not reported Bob "B" O\'Neil'
    )


def test_html_part_renders_reply_markup() -> None:
    html = render_digest(make_digest()).html
    assert (
        "<strong>Yesterday:</strong> done &amp; shipped with <strong>@Bob &#34;B&#34; O&#39;Neil</strong>, see "
        '<a href="https://example.com/a?b=1&amp;c=2">the PR</a></div>'
    ) in html
    assert "<strong>Today:</strong> <strong>release</strong> in <strong>#general</strong></div>" in html
    # A reply without sections is shown as typed, its lines joined by <br>.
    unstructured = Reply(ts="1.1", user="U1", text="done &amp; shipped\n*release* in <#C1|general>")
    html = render_digest(make_digest(reports=(Report("U1", (unstructured,)),))).html
    assert "done &amp; shipped<br><strong>release</strong> in <strong>#general</strong>" in html


def test_html_part_links_to_the_thread() -> None:
    tags = parse(render_digest(make_digest()).html).tags
    hrefs = [attrs["href"] for tag, attrs in tags if tag == "a"]
    assert hrefs == [THREAD_URL, "https://example.com/a?b=1&c=2"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "mailto:a@b.example", "https://x\n.com"])
def test_html_part_does_not_link_an_unsafe_thread_url(url: str) -> None:
    html = render_digest(make_digest(thread_url=url)).html
    assert "View the thread in Slack" not in html
    assert "View the thread" not in render_digest(make_digest(thread_url=url)).text


def test_html_part_styles_the_fallback_warning() -> None:
    html = render_digest(make_digest(from_store_only=True)).html
    warning = re.search(r'<div style="([^"]*)">\s*<strong>Warning:</strong>', html)
    assert warning is not None
    assert "background:#fff8e5" in warning[1]
    assert "Warning:" not in render_digest(make_digest()).html


def test_html_part_lists_the_missing_at_the_end() -> None:
    html = render_digest(make_digest()).html
    assert html.index("Not reported") > html.index("screenshot.png")
    assert '<li dir="auto">Bob &#34;B&#34; O&#39;Neil</li>' in html


def test_html_part_escapes_names_from_users() -> None:
    names = {"U1": "<script>alert(1)</script>", "U2": '"><img src=x onerror=alert(1)>'}
    html = render_digest(make_digest(user_names=names, channel_name="<b>gen</b>")).html
    assert '<h2 dir="auto" style="margin:0 0 6px;font-size:16px">' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</h2>" in html
    assert '<li dir="auto">&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</li>' in html
    assert "Standup digest for #&lt;b&gt;gen&lt;/b&gt;</h1>" in html
    assert "<script" not in html and "<img" not in html


def test_html_part_is_an_email_friendly_document() -> None:
    html = render_digest(make_digest()).html
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in html
    assert "max-width:640px" in html
    # Long words wrap everywhere: the rule is set once on the page's box, which all inherit.
    assert html.count("overflow-wrap:break-word") == 1
    assert re.search(r'<div style="max-width:640px;[^"]*word-wrap:break-word;overflow-wrap:break-word">', html)
    assert "<style" not in html and "<link" not in html and "<script" not in html


def test_html_part_shows_rtl_text_in_its_own_direction() -> None:
    reply = Reply(ts="1.1", user="U5", text="مرحبا <@U1> שלום")
    digest = make_digest(reports=(Report("U5", (reply,)),), user_names={**NAMES, "U5": "סמי"})
    html = render_digest(digest).html
    assert '<h2 dir="auto" style="margin:0 0 6px;font-size:16px">סמי</h2>' in html
    assert "مرحبا <strong>@Alice</strong> שלום" in html


TEMPLATE_TAGS = {"html", "head", "meta", "title", "body", "div", "h1", "h2", "p", "ol", "ul", "li"}
TEMPLATE_TAGS |= {"span"}
MARKUP_TAGS = {"a", "strong", "em", "s", "code", "pre", "br", "blockquote"}

NASTY = [
    "<script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '"><img src=x onerror=alert(1)>',
    "<javascript:alert(1)|click>",
    '<https://a.example/" onclick="alert(1)|x>',
    "*&lt;img src=x&gt;* `&lt;b&gt;` ```&lt;i&gt;```",
    "&gt; &lt;/blockquote&gt;&lt;script&gt;",
    "\x000\x01\x020\x03</div></body>",
    "<!subteam^S1|&lt;iframe&gt;> <#C1|&lt;/a&gt;> <@U9|&lt;b&gt;>",
]


def test_html_part_contains_only_our_tags_whatever_users_write() -> None:
    names = {f"U{i}": nasty for i, nasty in enumerate(NASTY)}
    reports = tuple(
        Report(f"U{i}", (Reply(ts=f"1.{i}", user=f"U{i}", text=nasty, files=(nasty,)),))
        for i, nasty in enumerate(NASTY)
    )
    digest = make_digest(
        reports=reports,
        missing=("U0", "U2"),
        user_names=names,
        channel_names={"C1": '"><script>'},
        channel_name="<script>",
        questions=tuple(NASTY),
        from_store_only=True,
    )
    rendered = render_digest(digest)
    tags = parse(rendered.html).tags
    assert {tag for tag, _ in tags} <= TEMPLATE_TAGS | MARKUP_TAGS
    for tag, attrs in tags:
        if tag == "a":
            assert (attrs.get("href") or "").startswith(("https://", "http://", "mailto:"))
        assert set(attrs) <= {"href", "style", "dir", "lang", "charset", "name", "content"}
        assert not any(name.startswith("on") for name in attrs)
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_html_part_handles_a_forty_thousand_character_reply() -> None:
    text = ("shipped &amp; tested <@U2> *ok* " * 1300)[:40000]
    digest = make_digest(reports=(Report("U1", (Reply(ts="1.1", user="U1", text=text),)),))
    rendered = render_digest(digest)
    assert rendered.html.count("<strong>@Bob &#34;B&#34; O&#39;Neil</strong>") == text.count("<@U2>")
    assert rendered.text.count('@Bob "B" O\'Neil') == text.count("<@U2>")
    assert rendered.text.endswith('\n\nNot reported:\n  - Bob "B" O\'Neil\n')


# --- structured reports, blockers, plan vs done ------------------------------------------

BOB_BLOCKED = Report(
    user="U2",
    replies=(Reply(ts="1772446000.000500", user="U2", text="1. VPN setup\n2. docs\n3. waiting on <@U1> for the *VPN* token"),),
)
CAROL_BLOCKED = Report(
    user="U3",
    replies=(Reply(ts="1772446100.000600", user="U3", text="Yesterday: x\nToday: y\nBlockers: the staging DB is down"),),
)
YESTERDAY = dt.date(2026, 2, 27)


def test_blockers_come_first_each_with_its_member_and_whether_it_is_new() -> None:
    digest = make_digest(
        reports=(ALICE, BOB_BLOCKED, CAROL_BLOCKED), missing=(),
        previous={
            "U2": PreviousReport(YESTERDAY, None, "still waiting for the VPN token from Alice"),
            "U3": PreviousReport(YESTERDAY, None, ""),
        },
    )
    rendered = render_digest(digest)
    assert (
        "\n\nBlockers:\n"
        '  - Bob "B" O\'Neil: waiting on @Alice for the *VPN* token (same as last time)\n'
        "  - Carol: the staging DB is down (new since last time)\n"
        "\nQuestions:"
    ) in rendered.text
    assert rendered.text.index("Blockers:") < rendered.text.index("\nAlice\n")
    assert "Alice:" not in rendered.text.split("Questions:")[0]  # "none" is no blocker
    html = rendered.html
    assert html.index(">Blockers</h2>") < html.index(">\nQuestions:") < html.index(">Alice</h2>")
    assert (
        '<li dir="auto" style="margin:0 0 4px"><strong>Carol</strong>: the staging DB is down '
        '<span style="color:#868686;font-size:13px">(new since last time)</span></li>'
    ) in html
    # Without an earlier report to compare with, nothing is claimed about it.
    assert "  - Carol: the staging DB is down\n" in render_digest(make_digest(reports=(CAROL_BLOCKED,))).text


def test_the_blockers_section_is_left_out_without_a_blockers_question_or_reports() -> None:
    two = ("What did you do yesterday?", "What will you do today?")
    rendered = render_digest(make_digest(questions=two, reports=(CAROL_BLOCKED,)))
    assert "Blockers" not in rendered.text.split("Questions:")[0]
    assert ">Blockers</h2>" not in rendered.html
    rendered = render_digest(make_digest(reports=(), missing=("U1",)))
    assert "Blockers" not in rendered.text and "Blockers" not in rendered.html


def test_a_structured_report_shows_each_answer_under_its_short_label() -> None:
    text = render_digest(make_digest(reports=(BOB_BLOCKED,))).text
    assert (
        'Bob "B" O\'Neil\n'
        "    Yesterday: VPN setup\n"
        "    Today: docs\n"
        "    Blockers: waiting on @Alice for the *VPN* token\n"
    ) in text
    custom = ("Wins?", "Anything in your way?")
    report = Report("U3", (Reply("1.1", "U3", "shipped\nline two\n\nthe build"),))
    text = render_digest(make_digest(questions=custom, reports=(report,))).text
    assert "Carol\n    Wins?: shipped\n      line two\n    Blockers: the build\n" in text


def test_what_was_planned_last_time_is_shown_under_what_was_done() -> None:
    plan = PreviousReport(YESTERDAY, "set up the *VPN* with <@U1>", "")
    digest = make_digest(reports=(BOB_BLOCKED,), previous={"U2": plan})
    rendered = render_digest(digest)
    assert (
        "    Yesterday: VPN setup\n"
        "      Planned last time (2026-02-27): set up the *VPN* with @Alice\n"
        "    Today: docs\n"
    ) in rendered.text
    assert (
        '<div dir="auto" style="margin:0 0 6px"><strong>Yesterday:</strong> VPN setup</div>\n'
        '<div dir="auto" style="margin:-4px 0 6px 12px;color:#616061;font-size:14px">'
        "Planned last time (2026-02-27): set up the <strong>VPN</strong> with <strong>@Alice</strong></div>"
    ) in rendered.html


def test_the_plan_follows_a_report_without_sections_and_is_skipped_when_unknown() -> None:
    loose = Report("U2", (Reply("1.1", "U2", "mostly meetings"),))
    plan = PreviousReport(YESTERDAY, "ship the VPN", None)
    text = render_digest(make_digest(reports=(loose,), previous={"U2": plan})).text
    assert 'Bob "B" O\'Neil\n    mostly meetings\n    Planned last time (2026-02-27): ship the VPN\n' in text
    unknown = PreviousReport(YESTERDAY, None, None)
    text = render_digest(make_digest(reports=(BOB_BLOCKED,), previous={"U2": unknown})).text
    assert "Planned" not in text and "(same as" not in text and "(new since" not in text


def test_structured_answers_blockers_and_plans_stay_escaped() -> None:
    nasty = "<script>alert(1)</script> &lt;img src=x onerror=alert(1)&gt; <javascript:alert(1)|click>"
    reports = tuple(
        Report(user, (Reply(f"1.{n}", user, f"Yesterday: {nasty}\nToday: {nasty}\nBlockers: {nasty}"),))
        for n, user in enumerate(("U1", "U2", "U3"))
    )
    previous = {user: PreviousReport(YESTERDAY, nasty, "") for user in ("U1", "U2", "U3")}
    names = {"U1": "<b>Alice</b>", "U2": '"><img src=x>', "U3": "Carol"}
    rendered = render_digest(make_digest(reports=reports, previous=previous, user_names=names))
    tags = parse(rendered.html).tags
    assert {tag for tag, _ in tags} <= TEMPLATE_TAGS | MARKUP_TAGS
    assert [attrs["href"] for tag, attrs in tags if tag == "a"] == [THREAD_URL]  # javascript: is no link
    assert "<script" not in rendered.html and "<img" not in rendered.html and "<b>" not in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    # Per report: three answers, the plan under "Yesterday", the blocker in the Blockers section.
    assert rendered.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3 * 5
    assert "  - <b>Alice</b>: <script>alert(1)</script> <img src=x onerror=alert(1)> click" in rendered.text


def test_rendered_digest_is_frozen() -> None:
    rendered = render_digest(make_digest())
    assert isinstance(rendered, RenderedDigest)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rendered.subject = "changed"  # type: ignore[misc]


def test_subject_counts_only_expected_members_when_they_are_known() -> None:
    # carol reported but is not in MEMBERS: she is shown, not counted.
    digest = make_digest(expected=("U1", "U2"))
    assert digest_subject(digest).endswith("(1 of 2 reported)")


def test_a_report_of_empty_sections_is_shown_as_typed() -> None:
    report = Report("U1", (Reply("1.1", "U1", "*Yesterday:*\n*Today:*", files=("a.png",)),))
    rendered = render_digest(make_digest(reports=(report,)))
    assert "Alice\n    *Yesterday:*\n    *Today:*\n    [file: a.png]\n" in rendered.text
    assert "<strong>Yesterday:</strong><br><strong>Today:</strong>" in rendered.html  # the reply's own bold


def test_the_same_text_in_many_reports_renders_alike() -> None:
    # Each text is rendered once per digest and reused: the reuse must not mix up members.
    reports = tuple(
        Report(user, (Reply(f"1.{n}", user, "Yesterday: <@U3>\nToday: <@U3>\nBlockers: waiting on <@U3>"),))
        for n, user in enumerate(("U1", "U2", "U3"))
    )
    rendered = render_digest(make_digest(reports=reports))
    assert "  - Alice: waiting on @Carol\n  - Bob \"B\" O'Neil: waiting on @Carol\n  - Carol: waiting on @Carol\n" in rendered.text
    for name in ("Alice", 'Bob "B" O\'Neil', "Carol"):
        assert f"{name}\n    Yesterday: @Carol\n    Today: @Carol\n    Blockers: waiting on @Carol\n" in rendered.text
    assert rendered.html.count("<strong>@Carol</strong>") == 3 * 3 + 3

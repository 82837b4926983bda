"""Tests for standup_bot.markup: Slack markup to plain text and to safe HTML."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markupsafe import Markup, escape

from standup_bot.markup import (
    Token,
    is_safe_url,
    mentioned_channel_ids,
    mentioned_ids,
    mentioned_user_ids,
    one_line,
    to_html,
    to_text,
    to_text_and_html,
    tokenize,
    unescape,
)

USERS = {
    "U1": "Alice",
    "U2": "Bob",
    "U666": "<script>alert(1)</script>",
    "U7": 'Bob "B" O\'Neil',
}
CHANNELS = {"C1": "general", "C2": "dev & ops"}

PR_MESSAGE = "done &amp; shipped <@U2> see <https://example.com/a?b=1&amp;c=2|the PR>"
CODE = '<code style="background:#f4f4f4;font-family:monospace">'
PRE = (
    '<pre style="margin:4px 0;padding:8px;background:#f4f4f4;font-family:monospace;'
    'white-space:pre-wrap;word-break:break-word">'
)
QUOTE = '<blockquote style="margin:4px 0;padding:0 0 0 10px;border-left:4px solid #dddddd;color:#555555">'


# --- tokenize -------------------------------------------------------------------------


def test_tokenize_splits_a_real_message_into_text_and_entities() -> None:
    assert tokenize(PR_MESSAGE) == [
        Token("text", "done & shipped "),
        Token("user", "U2"),
        Token("text", " see "),
        Token("link", "https://example.com/a?b=1&c=2", "the PR"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<#C1|general>", [Token("channel", "C1", "general")]),
        ("<#C1>", [Token("channel", "C1")]),
        ("<#C1|>", [Token("channel", "C1", "")]),
        ("<#G0PRIVATE|secret>", [Token("channel", "G0PRIVATE", "secret")]),
        ("<@W0GRID>", [Token("user", "W0GRID")]),
        ("<@U3|carl>", [Token("user", "U3", "carl")]),
        ("<!subteam^S1|@devs>", [Token("usergroup", "S1", "@devs")]),
        ("<!here>", [Token("broadcast", "here")]),
        ("<!channel>", [Token("broadcast", "channel")]),
        ("<!everyone>", [Token("broadcast", "everyone")]),
        ("<!date^1392734382^{date_short}|Feb 18, 2014>", [Token("date", "Feb 18, 2014")]),
        ("<!date^1392734382^{date_short}>", [Token("date", "2014-02-18 14:39 UTC")]),
        ("<https://example.com>", [Token("link", "https://example.com")]),
        ("<mailto:a@b.example|Alice>", [Token("link", "mailto:a@b.example", "Alice")]),
        ("<https://x.example|a &amp; b>", [Token("link", "https://x.example", "a & b")]),
    ],
)
def test_tokenize_recognises_every_entity_shape(text: str, expected: list[Token]) -> None:
    assert tokenize(text) == expected


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("a < b", "a < b"),
        ("x <@U1", "x <@U1"),
        ("<foo>", "<foo>"),
        ("<>", "<>"),
        ("<!unknown>", "<!unknown>"),
        ("<@bob>", "<@bob>"),
        ("<https://a b|c>", "<https://a b|c>"),
        ("<a <@U1>", None),
    ],
)
def test_tokenize_keeps_unmatched_and_unknown_brackets_as_text(text: str, literal: str | None) -> None:
    tokens = tokenize(text)
    if literal is None:
        assert tokens == [Token("text", "<a "), Token("user", "U1")]
    else:
        assert tokens == [Token("text", literal)]


def test_tokenize_unescapes_only_once() -> None:
    # A user who typed "&lt;" sees it again, not "<".
    assert tokenize("&amp;lt; &lt;b&gt;") == [Token("text", "&lt; <b>")]
    assert unescape("&amp;amp;") == "&amp;"


def test_tokenize_of_empty_text_is_empty() -> None:
    assert tokenize("") == []


def test_mentioned_ids_are_collected_for_name_lookup() -> None:
    text = "<@U1> and <@U2|bob> in <#C1|general>, <#C9>; not &lt;@U3&gt; nor <!subteam^S1>"
    assert mentioned_user_ids(text) == {"U1", "U2"}
    assert mentioned_channel_ids(text) == {"C1", "C9"}


# --- to_text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PR_MESSAGE, "done & shipped @Bob see the PR (https://example.com/a?b=1&c=2)"),
        ("<#C1|general>", "#general"),
        ("<#C1>", "#general"),
        ("<#C1|old-name>", "#general"),
        ("<#C9|random>", "#random"),
        ("<#C9>", "#C9"),
        ("<#C9|>", "#C9"),
        ("<#C2>", "#dev & ops"),
        ("<@U1>", "@Alice"),
        ("<@U3|carl>", "@carl"),
        ("<@U3>", "@U3"),
        ("<@W0GRID>", "@W0GRID"),
        ("<@U7>", '@Bob "B" O\'Neil'),
        ("<!here> <!channel> <!everyone> <!here|@here>", "@here @channel @everyone @here"),
        ("<!subteam^S1|@devs> <!subteam^S2>", "@devs @group"),
        ("<!date^1392734382^{date_short}|Feb 18, 2014>", "Feb 18, 2014"),
        ("<https://example.com>", "https://example.com"),
        ("<https://example.com|https://example.com>", "https://example.com"),
        ("<mailto:a@b.example|Alice>", "Alice"),
        ("<mailto:a@b.example>", "a@b.example"),
        ("<javascript:alert(1)|click>", "click (javascript:alert(1))"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("a < b and <foo>", "a < b and <foo>"),
        ("*bold* `code` :tada: :+1:", "*bold* `code` :tada: :+1:"),
        ("مرحبا <@U1> שלום", "مرحبا @Alice שלום"),
        ("line one\r\nline two\x00\x07", "line one\nline two"),
        ("", ""),
    ],
)
def test_to_text_renders_slack_markup(text: str, expected: str) -> None:
    assert to_text(text, USERS, CHANNELS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<@U1> <@U2|bob> <@W1> <@U404>",
        "&lt;@U1&gt; typed literally",
        "&lt;@W1|x&gt; and &lt;#C1&gt; and &lt;!here&gt;",
        "<@U1 >",
        "<#C1|&lt;@U2&gt;>",
        "<@U9|&lt;@U2&gt;>",
    ],
)
def test_to_text_never_leaves_a_raw_mention(text: str) -> None:
    result = to_text(text, {"U8": "<@U2>"}, {})
    for lookalike in ("<@U", "<@W", "<#C", "<!here"):
        assert lookalike not in result


def test_to_text_keeps_a_typed_mention_readable() -> None:
    assert to_text("&lt;@U1&gt;", USERS, CHANNELS) == "<\u200b@U1>"


def test_to_text_flattens_names_to_one_line() -> None:
    assert to_text("hi <@U1>", {"U1": "Ann\r\nBcc: x@y"}, {}) == "hi @Ann Bcc: x@y"


def test_to_text_keeps_forty_thousand_characters() -> None:
    text = ("shipped &amp; done <@U1> " * 2000)[:40000]
    result = to_text(text, USERS, CHANNELS)
    assert result == unescape(text).replace("<@U1>", "@Alice")[: len(result)]
    assert result.count("@Alice") == text.count("<@U1>")


# --- to_html --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PR_MESSAGE,
            "done &amp; shipped <strong>@Bob</strong> see "
            '<a href="https://example.com/a?b=1&amp;c=2">the PR</a>',
        ),
        ("<#C1|general> <#C9>", "<strong>#general</strong> <strong>#C9</strong>"),
        ("<!here> <!subteam^S1|@devs>", "<strong>@here</strong> <strong>@devs</strong>"),
        ("<@U666>", "<strong>@&lt;script&gt;alert(1)&lt;/script&gt;</strong>"),
        ("<@U7>", "<strong>@Bob &#34;B&#34; O&#39;Neil</strong>"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("&amp;lt;b&amp;gt;", "&amp;lt;b&amp;gt;"),
        ("<javascript:alert(1)|click>", "click (javascript:alert(1))"),
        ("<JavaScript:alert(1)>", "JavaScript:alert(1)"),
        ("<data:text/html;base64,PHNjcmlwdD4=|x>", "x (data:text/html;base64,PHNjcmlwdD4=)"),
        (
            '<https://x.example/"onmouseover="alert(1)|hover>',
            '<a href="https://x.example/&#34;onmouseover=&#34;alert(1)">hover</a>',
        ),
        ("<mailto:a@b.example|Alice>", '<a href="mailto:a@b.example">Alice</a>'),
        ("<mailto:a@b.example>", '<a href="mailto:a@b.example">a@b.example</a>'),
        ("<https://example.com>", '<a href="https://example.com">https://example.com</a>'),
        ("<!date^1392734382^{date_short}|Feb 18, 2014>", "Feb 18, 2014"),
        ("*bold* _italic_ ~gone~", "<strong>bold</strong> <em>italic</em> <s>gone</s>"),
        ("*bold _both_*", "<strong>bold <em>both</em></strong>"),
        ("*<@U1>*", "<strong><strong>@Alice</strong></strong>"),
        ("snake_case_name 2*3*4 * not bold *", "snake_case_name 2*3*4 * not bold *"),
        ("my_var_ is __init__", "my_var_ is __init__"),
        ("run `make *all*` now", f"run {CODE}make *all*</code> now"),
        ("`&lt;b&gt;`", f"{CODE}&lt;b&gt;</code>"),
        ("```\nif a &lt; b:\n    *x*\n```\nafter", f"{PRE}if a &lt; b:\n    *x*</pre>after"),
        ("&gt; quoted *b*\n&gt; two\nnot", f"{QUOTE}quoted <strong>b</strong><br>two</blockquote>not"),
        ("intro\n&gt;&gt;&gt; all\nof this", f"intro{QUOTE}all<br>of this</blockquote>"),
        ("a\nb\n\nc", "a<br>b<br><br>c"),
        (":tada: done :white_check_mark:", ":tada: done :white_check_mark:"),
        ("مرحبا *<@U1>* שלום", "مرحبا <strong><strong>@Alice</strong></strong> שלום"),
        ("a < b <foo>", "a &lt; b &lt;foo&gt;"),
        # Control characters are our placeholders inside to_html; user text can't forge one.
        ("\x000\x01 <@U2> \x020\x03", "0 <strong>@Bob</strong> 0"),
        ("", ""),
    ],
)
def test_to_html_renders_escaped_markup(text: str, expected: str) -> None:
    assert to_html(text, USERS, CHANNELS) == expected


def test_to_html_returns_markup_that_is_not_escaped_twice() -> None:
    result = to_html(PR_MESSAGE, USERS, CHANNELS)
    assert isinstance(result, Markup)
    assert escape(result) == result


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.com", True),
        ("HTTP://example.com", True),
        ("mailto:a@b.example", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,x", False),
        ("vbscript:x", False),
        ("//example.com", False),
    ],
)
def test_is_safe_url_allows_only_http_https_and_mailto(url: str, safe: bool) -> None:
    assert is_safe_url(url) is safe


def test_one_line_removes_line_breaks_and_controls() -> None:
    assert one_line(" a\r\nb\u2028c\x85d\x00e\t ") == "a b c d e"


# --- HTML safety by construction --------------------------------------------------------

MARKUP_TAGS = {"a", "strong", "em", "s", "code", "pre", "br", "blockquote"}
MARKUP_STYLES = {
    "code": CODE.split('"')[1],
    "pre": PRE.split('"')[1],
    "blockquote": QUOTE.split('"')[1],
}

NASTY_TEXTS = [
    "<script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '"><img src=x onerror=alert(1)>',
    "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
    '<https://a.example/" onclick="alert(1)|x>',
    "<https://a.example/'onclick='alert(1)'|x>",
    "<javascript:alert(1)|click me>",
    "<JAVASCRIPT:alert(1)>",
    "<data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;|x>",
    "<https://ok.example|<b>bold</b>>",
    "<https://ok.example|&lt;img src=x&gt;>",
    "<@U1|<img src=x>>",
    "<@U666> <@U7> <#C1|&lt;/a&gt;> <!subteam^S1|&lt;b&gt;>",
    "*<img src=x>* _&lt;i&gt;_ ~&lt;s&gt;~",
    "`<b>` ```<i>x</i>``` `&lt;u&gt;`",
    "&gt; &lt;blockquote&gt;\n&gt;&gt;&gt; &lt;/blockquote&gt;&lt;script&gt;",
    "<!date^1^x|&lt;script&gt;>",
    "\x000\x01\x021\x03<@U1>",
    "<<<<>>>>",
    "<https://example.com|`*_~>",
    "&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;",
    "<mailto:x@y.example?subject=&quot;&gt;&lt;script&gt;|mail>",
]


class TagCollector(HTMLParser):
    """Collect every start tag and its attributes from an HTML string."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def collect_tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse HTML and return its start tags with their attributes."""
    parser = TagCollector()
    parser.feed(html)
    parser.close()
    return parser.tags


def assert_only_our_markup(html: str) -> None:
    """Fail unless every tag and attribute in an HTML fragment is one to_html emits."""
    for tag, attrs in collect_tags(html):
        assert tag in MARKUP_TAGS, (tag, html)
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"], html
            href = attrs[0][1] or ""
            assert href.startswith(("https://", "http://", "mailto:")), html
        elif tag in MARKUP_STYLES:
            assert attrs == [("style", MARKUP_STYLES[tag])], html
        else:
            assert attrs == [], html


@pytest.mark.parametrize("text", NASTY_TEXTS)
def test_to_html_emits_only_its_own_tags(text: str) -> None:
    names = {**USERS, "U1": "<img src=x onerror=alert(1)>"}
    assert_only_our_markup(to_html(text, names, {"C1": '"><script>'}))


def test_to_html_emits_only_its_own_tags_for_all_nasty_texts_at_once() -> None:
    assert_only_our_markup(to_html("\n".join(NASTY_TEXTS), USERS, CHANNELS))


def test_to_html_keeps_javascript_links_as_text() -> None:
    html = to_html("<javascript:alert(1)|click me>", USERS, CHANNELS)
    assert collect_tags(html) == []
    assert html == "click me (javascript:alert(1))"


def test_to_html_handles_forty_thousand_characters() -> None:
    chunk = "*done* &amp; <@U1> <https://example.com/x?a=1&amp;b=2|link> `x` &lt;b&gt;\n"
    text = (chunk * (40000 // len(chunk) + 1))[:40000]
    html = to_html(text, USERS, CHANNELS)
    assert_only_our_markup(html)
    complete = text.count("\n")
    assert html.count('<a href="https://example.com/x?a=1&amp;b=2">link</a>') == complete
    assert html.count("<strong>@Alice</strong>") >= complete
    assert "<b>" not in html


@pytest.mark.parametrize("text", ["*" * 40000, "`" * 40000, "_a" * 20000, "<" * 40000])
def test_to_html_survives_pathological_forty_thousand_characters(text: str) -> None:
    html = to_html(text, USERS, CHANNELS)
    assert_only_our_markup(html)
    assert len(html) < 5 * len(text)


# --- one pass for both parts ----------------------------------------------------------

_EDGES = [
    "", " ", "\n", "\t \r\n", "\x00", "\x0b", "\x1c", "\x85", "\u2028", "\u3000", "&amp;", "&lt;@U1&gt;", "<", "<@U1",
    "@U1>", "<@U1>", "<#C2|dev>", "*b*", "> q", "&gt; q", "`c`", "```x```", "<https://x.y|a b>",
]


@pytest.mark.parametrize("before", _EDGES)
@pytest.mark.parametrize("after", _EDGES)
def test_text_and_html_in_one_pass_are_what_to_text_and_to_html_give(before: str, after: str) -> None:
    for middle in ("", PR_MESSAGE, "line one\n> quoted <@U666>\n*bold* _it_ ~s~"):
        text = before + middle + after
        plain, html = to_text_and_html(text, USERS, CHANNELS)
        assert plain == to_text(text, USERS, CHANNELS).strip()
        assert html == to_html(text.strip(), USERS, CHANNELS)
        assert isinstance(html, Markup)


@pytest.mark.parametrize("text", [*_EDGES, PR_MESSAGE, "<@U1|alice> <@W2> <#C1> <#G3|x|y> <@U1 > <@u1> <#c1> <<@U4>> <@U5|<b>>"])
def test_mentioned_ids_are_the_mentioned_members_and_channels(text: str) -> None:
    assert mentioned_ids(text) == (mentioned_user_ids(text), mentioned_channel_ids(text))

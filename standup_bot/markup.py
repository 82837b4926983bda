"""Turn Slack message markup into plain text and into safe HTML for the digest email.

Slack escapes only ``&``, ``<`` and ``>`` in message text, and a raw ``<`` always opens an
entity (https://api.slack.com/reference/surfaces/formatting). So the order is: split the
``<…>`` entities off first, then unescape the text runs and labels, then (for HTML) escape
everything again as markupsafe does. Any other order double-escapes text or lets user text
turn into markup.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Literal, NamedTuple

from markupsafe import Markup

TokenKind = Literal["text", "user", "channel", "usergroup", "broadcast", "date", "link"]

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

_ENTITY_RE = re.compile(r"<([^<>]*)>")
_SLACK_ESCAPE_RE = re.compile(r"&(amp|lt|gt);")
_SLACK_UNESCAPES = {"amp": "&", "lt": "<", "gt": ">"}
# Member IDs are U… (W… on Enterprise Grid); channels C…, private ones G…, DMs D….
_USER_RE = re.compile(r"@([UW][A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_CHANNEL_RE = re.compile(r"#([CGD][A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_SUBTEAM_RE = re.compile(r"!subteam\^([A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_BROADCAST_RE = re.compile(r"!(here|channel|everyone)(?:\|(.*))?", re.DOTALL)
# <!date^epoch^format[^link]|fallback>: https://api.slack.com/reference/surfaces/formatting#date-formatting
_DATE_RE = re.compile(r"!date\^(\d{1,12})\^[^|]*(?:\|(.*))?", re.DOTALL)
# A whole mention entity in message text (see mentioned_ids).
_USER_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_CHANNEL_MENTION_RE = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^<>]*)?>")
_LINK_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):([^|\s]+)(?:\|(.*))?", re.DOTALL)
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")

# Control characters are invalid in HTML and in mail headers; our HTML renderer also uses
# a few of them as placeholders, which is only sound because user text can never hold one.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ANY_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A typed "&lt;@U1&gt;" unescapes to "<@U1>"; in plain text that would read as an
# unresolved mention (and Slack would treat it as one if the text were posted back).
_ENTITY_LOOKALIKE_RE = re.compile(
    r"<(?=@[UW][A-Z0-9]|#[CGD][A-Z0-9]|!(?:subteam\^|here|channel|everyone|date\^))"
)
_ZERO_WIDTH_SPACE = "\u200b"

_PRE_STYLE = (
    "margin:4px 0;padding:8px;background:#f4f4f4;font-family:monospace;"
    "white-space:pre-wrap;word-break:break-word"
)
_CODE_STYLE = "background:#f4f4f4;font-family:monospace"
_QUOTE_STYLE = "margin:4px 0;padding:0 0 0 10px;border-left:4px solid #dddddd;color:#555555"

# Placeholders for already-rendered HTML while mrkdwn is applied to the escaped text around
# it: \x00N\x01 is an entity, \x02N\x03 a code span or block.
_ATOM_RE = re.compile(r"\x00(\d+)\x01")
_CODE_SLOT_RE = re.compile(r"\x02(\d+)\x03")
_CODE_BLOCK_RE = re.compile(r"```(?!`)(.+?)```", re.DOTALL)
_CODE_SPAN_RE = re.compile(r"`([^`\n]+)`")
# mrkdwn styles need a non-word character (or the edge) outside the markers and no space
# just inside them, so snake_case_names and 2*3*4 stay as typed. Each style's text cannot
# contain its own marker, which bounds the nesting depth at three.
_STYLE_RE = re.compile(
    r"(?<![\w*])\*(?![\s*])(?P<strong>[^*\n]*?[^\s*])\*(?![\w*])"
    r"|(?<!\w)_(?![\s_])(?P<em>[^_\n]*?[^\s_])_(?!\w)"
    r"|(?<![\w~])~(?![\s~])(?P<s>[^~\n]*?[^\s~])~(?![\w~])"
)
_QUOTE_PREFIX = "&gt;"
_QUOTE_REST_PREFIX = "&gt;&gt;&gt;"


class Token(NamedTuple):
    """One piece of Slack message text: a plain-text run or a ``<…>`` entity.

    ``value`` is, by kind: ``text`` the unescaped text; ``user``, ``channel`` and
    ``usergroup`` the ID; ``broadcast`` one of ``here``, ``channel``, ``everyone``;
    ``date`` the text to show; ``link`` the unescaped URL. ``label`` is the unescaped
    ``|label``, ``None`` when the entity has none. (A tuple rather than a dataclass: a
    digest makes tens of thousands of them.)
    """

    kind: TokenKind
    value: str
    label: str | None = None


def unescape(text: str) -> str:
    """Undo Slack's escaping of &, < and >, in one pass so ``&amp;lt;`` stays ``&lt;``."""
    if "&" not in text:
        return text
    return _SLACK_ESCAPE_RE.sub(_unescaped, text)


def _unescaped(match: re.Match[str]) -> str:
    return _SLACK_UNESCAPES[match[1]]


def is_safe_url(url: str) -> bool:
    """Tell whether a URL may become a link: only http, https and mailto may."""
    match = _SCHEME_RE.match(url)
    return match is not None and match[1].lower() in SAFE_SCHEMES


def tokenize(text: str) -> list[Token]:
    """Split Slack message text into plain-text runs and ``<…>`` entities.

    An unmatched ``<`` or an entity of an unknown shape is kept as literal text.
    Adjacent text runs are merged.
    """
    if "<" not in text:  # no entity: one text run
        return [Token("text", unescape(text))] if text else []
    tokens: list[Token] = []
    pending: list[str] = []
    pos = 0
    for match in _ENTITY_RE.finditer(text):
        pending.append(unescape(text[pos : match.start()]))
        pos = match.end()
        token = _parse_entity(match[1])
        if token is None:
            pending.append(unescape(match[0]))
        else:
            if run := "".join(pending):
                tokens.append(Token("text", run))
            pending.clear()
            tokens.append(token)
    pending.append(unescape(text[pos:]))
    if run := "".join(pending):
        tokens.append(Token("text", run))
    return tokens


def _label(raw: str | None) -> str | None:
    return None if raw is None else unescape(raw)


def _parse_entity(body: str) -> Token | None:
    """Parse the inside of ``<…>``; return None for a shape Slack does not send."""
    first = body[:1]
    # Each shape but a link opens with its own character: try only the ones that can match.
    if first == "@":
        match = _USER_RE.fullmatch(body)
        return Token("user", match[1], _label(match[2])) if match else None
    if first == "#":
        match = _CHANNEL_RE.fullmatch(body)
        return Token("channel", match[1], _label(match[2])) if match else None
    if first != "!":
        match = _LINK_RE.fullmatch(body)
        return Token("link", unescape(f"{match[1]}:{match[2]}"), _label(match[3])) if match else None
    if match := _SUBTEAM_RE.fullmatch(body):
        return Token("usergroup", match[1], _label(match[2]))
    if match := _BROADCAST_RE.fullmatch(body):
        return Token("broadcast", match[1], _label(match[2]))
    if match := _DATE_RE.fullmatch(body):
        if match[2]:
            return Token("date", unescape(match[2]))
        try:
            when = dt.datetime.fromtimestamp(int(match[1]), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return Token("date", when.strftime("%Y-%m-%d %H:%M UTC"))
    if match := _LINK_RE.fullmatch(body):
        return Token("link", unescape(f"{match[1]}:{match[2]}"), _label(match[3]))
    return None


def mentioned_user_ids(text: str) -> set[str]:
    """Return the IDs of the members mentioned in Slack message text."""
    return {token.value for token in tokenize(text) if token.kind == "user"}


def mentioned_channel_ids(text: str) -> set[str]:
    """Return the IDs of the channels mentioned in Slack message text."""
    return {token.value for token in tokenize(text) if token.kind == "channel"}


def mentioned_ids(text: str) -> tuple[set[str], set[str]]:
    """Return the IDs of the members and of the channels mentioned in Slack message text.

    The same as mentioned_user_ids and mentioned_channel_ids, found without tokenizing:
    an entity is any ``<…>`` without a ``<`` or ``>`` inside, so each match below is one.
    """
    if "<" not in text:
        return set(), set()
    return set(_USER_MENTION_RE.findall(text)), set(_CHANNEL_MENTION_RE.findall(text))


def clean(text: str) -> str:
    """Normalise line ends to ``\\n`` and drop control characters other than tab and newline."""
    return _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def defuse_entities(text: str) -> str:
    """Put a zero-width space after each ``<`` that would read as a raw Slack entity (``<@U1``)."""
    return _ENTITY_LOOKALIKE_RE.sub("<" + _ZERO_WIDTH_SPACE, text)


def one_line(text: str) -> str:
    """Flatten text to one line: control characters and runs of whitespace become one space."""
    if text.isprintable():  # no control character to replace (the common case: a name)
        return " ".join(text.split())
    return " ".join(_ANY_CONTROL_RE.sub(" ", text).split())


def _display(token: Token, user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> str:
    """Return the plain text an entity stands for (without link URLs)."""
    if token.kind == "user":
        name = one_line(user_names.get(token.value) or "")
        return "@" + (name or one_line(token.label or "") or token.value)
    if token.kind == "channel":
        name = one_line(channel_names.get(token.value) or "")
        return "#" + (name or one_line(token.label or "") or token.value)
    label = one_line(token.label or "")
    if token.kind == "usergroup":
        label = label or "group"
        return label if label.startswith("@") else "@" + label
    if token.kind == "broadcast":
        return "@" + token.value
    return token.value


def _link_text(token: Token) -> str:
    """Return a link as plain text: ``label (url)``, or the URL alone when that says it all."""
    url = token.value
    if url[:7].lower() == "mailto:":
        return token.label or url[7:]
    if not token.label or token.label == url:
        return url
    return f"{token.label} ({url})"


def to_text(text: str, user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> str:
    """Render Slack message text as plain text: ``@Name``, ``#channel``, ``label (url)``."""
    return _text_of(tokenize(clean(text)), user_names, channel_names)


def to_text_and_html(
    text: str, user_names: Mapping[str, str], channel_names: Mapping[str, str]
) -> tuple[str, Markup]:
    """Return ``to_text(text).strip()`` and ``to_html(text.strip())``, reading the markup once.

    Whitespace around the text (all that strip() removes) comes out of to_text as the same
    whitespace around the rest, so the plain text can be rendered from the stripped text too.
    """
    tokens = tokenize(clean(text.strip()))
    return _text_of(tokens, user_names, channel_names).strip(), _html_of(tokens, user_names, channel_names)


def _text_of(tokens: list[Token], user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> str:
    parts: list[str] = []
    for token in tokens:
        if token.kind == "text":
            parts.append(token.value)
        elif token.kind == "link":
            parts.append(_link_text(token))
        else:
            parts.append(_display(token, user_names, channel_names))
    return defuse_entities(clean("".join(parts)))


def _escaped(text: str) -> str:
    """Escape text for HTML exactly as markupsafe.escape does, without making a Markup of it."""
    return (
        text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
        .replace("'", "&#39;").replace('"', "&#34;")
    )


def _atom_html(token: Token, user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> str:
    """Render one entity as HTML; every piece of text in it is escaped."""
    if token.kind == "link":
        if not is_safe_url(token.value):
            return _escaped(_link_text(token))
        url = token.value
        label = token.label or (url[7:] if url[:7].lower() == "mailto:" else url)
        return f'<a href="{_escaped(url)}">{_escaped(label)}</a>'
    if token.kind == "date":
        return _escaped(token.value)
    return f"<strong>{_escaped(_display(token, user_names, channel_names))}</strong>"


def _replace_slots(pattern: re.Pattern[str], html: str, slots: list[str]) -> str:
    if not slots:  # user text holds no control character, so no placeholder either
        return html
    return pattern.sub(lambda m: slots[int(m[1])], html)


def _slot(slots: list[str], html: str, opener: str, closer: str) -> str:
    slots.append(html)
    return f"{opener}{len(slots) - 1}{closer}"


def _styles(line: str) -> str:
    """Apply mrkdwn bold, italic and strike to one escaped line."""
    if "*" not in line and "_" not in line and "~" not in line:
        return line
    out: list[str] = []
    pos = 0
    for match in _STYLE_RE.finditer(line):
        tag = match.lastgroup or "strong"
        out.append(line[pos : match.start()])
        out.append(f"<{tag}>{_styles(match[tag])}</{tag}>")
        pos = match.end()
    out.append(line[pos:])
    return "".join(out)


def _mrkdwn(escaped: str) -> str:
    """Apply mrkdwn to HTML-escaped text; the tags added only ever wrap escaped text."""
    if (
        "`" not in escaped and "*" not in escaped and "_" not in escaped and "~" not in escaped
        and "\n" + _QUOTE_PREFIX not in escaped and not escaped.startswith(_QUOTE_PREFIX)
    ):
        return escaped.replace("\n", "<br>")  # no code, style or quote: lines joined by <br>
    codes: list[str] = []

    def block(match: re.Match[str]) -> str:
        body = match[1].removeprefix("\n").removesuffix("\n")
        return _slot(codes, f'<pre style="{_PRE_STYLE}">{body}</pre>', "\x02", "\x03")

    def span(match: re.Match[str]) -> str:
        return _slot(codes, f'<code style="{_CODE_STYLE}">{match[1]}</code>', "\x02", "\x03")

    def inline(line: str) -> str:
        return _styles(_CODE_SPAN_RE.sub(span, line) if "`" in line else line)

    # (is_block, html) pairs: <br> goes only between two inline lines.
    pieces: list[tuple[bool, str]] = []
    quoted: list[str] = []

    def end_quote() -> None:
        if quoted:
            body = "<br>".join(quoted)
            pieces.append((True, f'<blockquote style="{_QUOTE_STYLE}">{body}</blockquote>'))
            quoted.clear()

    lines = (_CODE_BLOCK_RE.sub(block, escaped) if "```" in escaped else escaped).split("\n")
    for index, line in enumerate(lines):
        if line.startswith(_QUOTE_REST_PREFIX):
            # ">>>" quotes everything after it, to the end of the message.
            rest = [line.removeprefix(_QUOTE_REST_PREFIX).removeprefix(" "), *lines[index + 1 :]]
            quoted.extend(inline(item) for item in rest)
            break
        if line.startswith(_QUOTE_PREFIX):
            quoted.append(inline(line.removeprefix(_QUOTE_PREFIX).removeprefix(" ")))
            continue
        end_quote()
        if _CODE_SLOT_RE.fullmatch(line):
            pieces.append((True, line))
        else:
            pieces.append((False, inline(line)))
    end_quote()

    out: list[str] = []
    previous_inline = False
    for is_block, html in pieces:
        if previous_inline and not is_block:
            out.append("<br>")
        out.append(html)
        previous_inline = not is_block
    return _replace_slots(_CODE_SLOT_RE, "".join(out), codes)


def to_html(text: str, user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> Markup:
    """Render Slack message text as an HTML fragment in which all user text is escaped.

    Links become ``<a>`` only for http, https and mailto; mentions become
    ``<strong>@Name</strong>``; mrkdwn bold, italic, strike, code, code blocks and ``>``
    quotes are kept; newlines become ``<br>``; ``:emoji:`` shortcodes stay as typed.
    """
    return _html_of(tokenize(clean(text)), user_names, channel_names)


def _html_of(tokens: list[Token], user_names: Mapping[str, str], channel_names: Mapping[str, str]) -> Markup:
    atoms: list[str] = []
    parts: list[str] = []
    for token in tokens:
        if token.kind == "text":
            parts.append(_escaped(token.value))
        else:
            parts.append(_slot(atoms, _atom_html(token, user_names, channel_names), "\x00", "\x01"))
    html = _mrkdwn("".join(parts))
    return Markup(_replace_slots(_ATOM_RE, html, atoms))

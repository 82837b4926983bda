"""Build the digest email and deliver it over SMTP in one transaction, retrying only the transient."""

from __future__ import annotations

import copy
import email.contentmanager
import email.generator
import email.policy
import email.utils
import io
import logging
import random
import re
import smtplib
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage

from standup_bot.errors import MailError

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "ssl", "none")

# Everything str.splitlines() treats as a line break: the email package refuses any of them
# in a header value, and a bare CR or LF in a subject is how header injection starts.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
_WHITESPACE = re.compile(r"\s+")

# CRLF line ends as SMTP wants them and RFC 2047 headers; the parts are quoted-printable
# (see build_message), so the message is 7-bit and survives relays without 8BITMIME.
_POLICY = email.policy.SMTP

# Bytes that quoted-printable leaves as they are in a body (email.quoprimime's safe set:
# printable ASCII but "=", tab, and the line ends).
_QP_SAFE = bytes([9, 10, 13, *range(0x20, 0x3D), *range(0x3E, 0x7F)])
# A line end in a body, as email.generator reads them.
_LINE_END = re.compile(r"\r\n|\r|\n")

_STEP_OBJECTS = {
    "connect": "the connection",
    "starttls": "STARTTLS",
    "login": "the login",
    "send": "the digest",
    "noop": "NOOP",
}


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the mail server (SMTP_* settings)."""

    host: str
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)  # kept out of reprs, logs and tracebacks
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    timeout: float = 30.0

    @property
    def server(self) -> str:
        """Return the server as host:port, the way error messages name it."""
        return f"{self.host}:{self.port}"


class MailSendError(MailError):
    """Report a failed send; `delivered_to` names the recipients who got the message anyway."""

    def __init__(self, message: str, delivered_to: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.delivered_to: tuple[str, ...] = tuple(delivered_to)


def clean_subject(subject: str) -> str:
    """Return the subject as one line: every line break becomes a space.

    Text that looks like an RFC 2047 encoded word ("=?utf-8?q?=0D=0A…?=") is broken up with a
    zero-width space: the email package decodes such words when the header is set, and a
    decoded CR LF would be written out as is, starting a new header.
    """
    return _LINE_BREAKS.sub(" ", subject).strip().replace("=?", "=\u200b?")


def build_message(
    *,
    subject: str,
    text: str,
    html: str,
    mail_from: str,
    recipients: Sequence[str],
    message_id_domain: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """Build a multipart/alternative message (plain text, then HTML) addressed to every recipient.

    Raises ValueError for an address that is not a single valid address or a naive `now`.
    """
    to = [_parse_address(address) for address in recipients]
    if not to:
        raise ValueError("a message needs at least one recipient")
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")

    message = EmailMessage(policy=_POLICY)
    message["Subject"] = clean_subject(subject)
    message["From"] = mail_from
    senders = message["From"].addresses
    if len(senders) != 1 or not senders[0].domain or message["From"].defects:
        raise ValueError(f"invalid sender address {mail_from!r}")
    message["To"] = to
    message["Date"] = now
    message["Message-ID"] = email.utils.make_msgid(
        # The sender's domain, not socket.getfqdn(): that can block on DNS for seconds.
        domain=message_id_domain or senders[0].domain
    )
    # Quoted-printable rather than the shorter base64 the email package may pick: the raw mail
    # stays readable, and line ends stay line ends instead of encoded CRLF bytes.
    message.set_content(text, subtype="plain", content_manager=_QUOTED_PRINTABLE_TEXT)
    message.add_alternative(html, subtype="html", content_manager=_QUOTED_PRINTABLE_TEXT)
    # The boundary now, as the generator would make it but without searching the 4 MB of a
    # large digest for it: a quoted-printable body cannot hold it ("=" is written "=3D").
    message.set_boundary(_boundary())
    return message


def _boundary() -> str:
    """Return a MIME boundary of the form the email package's generator makes."""
    digits = len(repr(sys.maxsize - 1))
    return "=" * 15 + f"{random.randrange(sys.maxsize):0{digits}d}" + "=="


def _set_text(message: EmailMessage, text: str, subtype: str) -> None:
    """Set a text part in UTF-8, quoted-printable: what the email package's own str handler
    (email.contentmanager.set_text_content) does with charset="utf-8" and
    cte="quoted-printable", byte for byte, with a faster encoder (see _quoted_printable)."""
    message["Content-Type"] = f"text/{subtype}"
    # The policy's line length, as the email package uses (78 for SMTP: RFC 5322's "should").
    message.set_payload(_quoted_printable(text, message.policy.max_line_length or 78))
    message.set_param("charset", "utf-8", replace=True)
    message["Content-Transfer-Encoding"] = "quoted-printable"


_QUOTED_PRINTABLE_TEXT = email.contentmanager.ContentManager()
_QUOTED_PRINTABLE_TEXT.add_set_handler(str, _set_text)


def _quoted_printable(text: str, max_line: int) -> str:
    """Encode text as the email package does for a quoted-printable UTF-8 body.

    The same result as email.quoprimime.body_encode of the text's UTF-8 lines, which is
    what set_content calls, several times faster for a 5,000-member digest (4 MB): the
    bytes to quote are replaced a kind at a time rather than translated one by one, and
    only the lines to cut or to end with a quoted space are worked on one by one.
    """
    data = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    # "=" first: the "=XX" of the others must stay as they are.
    for byte in sorted(set(data.translate(None, _QP_SAFE)), key=lambda byte: byte != ord("=")):
        data = data.replace(bytes([byte]), b"=%02X" % byte)
    return "\n".join([
        _qp_cut(line, max_line) if len(line) > max_line or line.endswith((" ", "\t")) else line
        for line in data.decode("ascii").split("\n")
    ])


def _qp_cut(line: str, max_line: int) -> str:
    """Cut a quoted line with soft line breaks and quote a space or tab at its end.

    As the loop of email.quoprimime.body_encode(body, max_line, "\n") does.
    """
    pieces: list[str] = []
    width = max_line - 1  # room for the "=" of a soft line break
    start = 0
    last_start = len(line) - 1 - max_line
    while start <= last_start:
        stop = start + width
        if line[stop - 2] == "=":  # never cut a "=XX" apart
            pieces.append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            pieces.append(line[start:stop])
            start = stop - 1
        else:
            pieces.append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":
        room = start - last_start
        if room >= 3:
            end = f"={ord(line[-1]):02X}"
        elif room == 2:
            end = line[-1] + "=\n"
        else:
            end = f"=\n={ord(line[-1]):02X}"
        pieces.append(line[start:-1] + end)
    else:
        pieces.append(line[start:])
    return "\n".join(pieces)


def send_message(
    message: EmailMessage,
    *,
    smtp: SmtpSettings,
    mail_from: str,
    recipients: Sequence[str],
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send the message in one SMTP transaction whose envelope lists every recipient.

    Transient failures (unreachable, disconnected, timeouts, 4xx replies) are retried up to
    `attempts` tries in all, sleeping 1 s, 2 s, 4 s, ... in between. Anything else raises at once.
    Raises MailSendError (a MailError) whose `delivered_to` names who got the message: empty
    unless the server accepted it for some recipients and refused others.
    """
    to_addrs = list(recipients)
    if not to_addrs:
        raise ValueError("a message needs at least one recipient")
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            with _connection(smtp, ssl_context) as conn, _step("send"):
                refused = _send(conn, message, mail_from, to_addrs)
        except _StepError as failure:
            if attempt == attempts or not _is_transient(failure.cause):
                raise _error_for(failure, smtp, attempt) from failure.cause
            delay = float(2 ** (attempt - 1))
            log.warning(
                "mail server %s: %s failed (%s); retrying in %.0f s (attempt %d of %d)",
                smtp.server,
                failure.step,
                _describe(failure.cause),
                delay,
                attempt,
                attempts,
            )
            sleep(delay)
            continue
        if refused:
            delivered = tuple(address for address in to_addrs if address not in refused)
            raise _mail_error(
                smtp,
                f"mail server {smtp.server} refused recipient(s) {_refusals(refused)}; "
                f"the digest was delivered to the others; check DIGEST_RECIPIENTS",
                delivered_to=delivered,
            )
        log.info("mail server %s accepted the message for %d recipient(s)", smtp.server, len(to_addrs))
        return


def _send(
    conn: smtplib.SMTP, message: EmailMessage, mail_from: str, to_addrs: list[str]
) -> dict[str, tuple[int, bytes]]:
    """Send the message as smtplib's send_message does, flattening it faster.

    The same steps and bytes as `conn.send_message(message, mail_from, to_addrs)`: no Bcc
    or Resent-Bcc header, SMTPUTF8 when an address needs it. smtplib's generator writes a
    4 MB digest out line by line (0.1 s of the digest); _Generator writes each part at once.
    """
    conn.ehlo_or_helo_if_needed()
    if len(message.get_all("Resent-Date") or ()) > 1:
        raise ValueError("message has more than one 'Resent-' header block")
    copied = copy.copy(message)
    del copied["Bcc"]
    del copied["Resent-Bcc"]
    options: tuple[str, ...] = ()
    policy = None
    if not "".join([mail_from, *to_addrs]).isascii():
        if not conn.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "One or more source or delivery addresses require internationalized email support, but "
                "the server does not advertise the required SMTPUTF8 capability"
            )
        policy = message.policy.clone(utf8=True)  # type: ignore[call-arg]  # an EmailPolicy, as smtplib has it
        options = ("SMTPUTF8", "BODY=8BITMIME")
    with io.BytesIO() as flat:
        _Generator(flat, policy=policy).flatten(copied, linesep="\r\n")
        data = flat.getvalue()
    return conn.sendmail(mail_from, to_addrs, data, options)


class _Generator(email.generator.BytesGenerator):
    """email's BytesGenerator, writing a body's lines in one go rather than one by one."""

    def _write_lines(self, lines: str) -> None:
        # The same output as the base class: each line, and the line end after all but the last.
        if lines:
            newline: str = self._NL  # type: ignore[attr-defined]  # the line end flatten() was given
            self.write(_LINE_END.sub(newline, lines) if "\r" in lines else lines.replace("\n", newline))


def check_connection(smtp: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> str:
    """Connect, secure and log in as configured, then NOOP; return a one-line success report.

    Raises MailError (one attempt, no retries) with what to fix.
    """
    try:
        with _connection(smtp, ssl_context) as conn, _step("noop"):
            code, reply = conn.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
    except _StepError as failure:
        raise _error_for(failure, smtp, 1) from failure.cause
    tls = {"starttls": "STARTTLS", "ssl": "SSL/TLS", "none": "no TLS"}[smtp.security]
    login = "login ok" if smtp.user else "no login"
    return f"mail server {smtp.server} reachable ({tls}, {login})"


class _StepError(Exception):
    """Carry a failure together with the step of the SMTP conversation it happened in."""

    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(step, cause)
        self.step = step
        self.cause = cause


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Tag any SMTP or socket failure inside the block with the step's name."""
    try:
        yield
    # OSError covers refused and reset connections, timeouts and ssl.SSLError; UnicodeError is
    # smtplib encoding a non-ASCII login.
    except (smtplib.SMTPException, OSError, UnicodeError) as exc:
        raise _StepError(name, exc) from exc


@contextmanager
def _connection(smtp: SmtpSettings, ssl_context: ssl.SSLContext | None) -> Iterator[smtplib.SMTP]:
    """Open a connection, secured and logged in as the settings say; always close it."""
    if smtp.security not in SECURITY_MODES:
        raise ValueError(f"SMTP security must be one of {SECURITY_MODES}, not {smtp.security!r}")
    context = None
    if smtp.security != "none":
        context = ssl_context or ssl.create_default_context()
    with _step("connect"):
        if smtp.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.security == "starttls":
            with _step("starttls"):
                conn.ehlo()
                conn.starttls(context=context)
                conn.ehlo()
        if smtp.user:
            with _step("login"):
                conn.login(smtp.user, smtp.password)
        yield conn
    finally:
        _close_quietly(conn)


def _close_quietly(conn: smtplib.SMTP) -> None:
    """Say QUIT and close, ignoring failures."""
    try:
        conn.quit()
    # By now the transaction's outcome is known: a failed QUIT must not turn a delivered
    # digest into a retry (and a duplicate).
    except (smtplib.SMTPException, OSError):
        conn.close()


def _is_transient(exc: Exception) -> bool:
    """Tell whether trying again later may succeed."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    # SMTPException and ssl.SSLError are OSErrors too, but a missing extension, a wrong port or
    # an untrusted certificate stays wrong.
    if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        return False
    return isinstance(exc, OSError)


def _error_for(failure: _StepError, smtp: SmtpSettings, attempts: int) -> MailSendError:
    """Turn a failed step into a one-line error that says what to check."""
    exc, step, server = failure.cause, failure.step, smtp.server
    desc = _describe(exc)
    retried = f"; gave up after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, ssl.SSLError):
        text = (
            f"mail server {server} failed the TLS handshake ({desc}); check SMTP_SECURITY / "
            f'SMTP_PORT ("starttls" usually goes with port 587, "ssl" with 465)'
        )
    elif step == "starttls" and isinstance(exc, smtplib.SMTPNotSupportedError):
        text = (
            f"mail server {server} does not offer STARTTLS; check SMTP_SECURITY / SMTP_PORT "
            f'("ssl" usually goes with port 465, "none" only suits a local relay)'
        )
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        text = (
            f"mail server {server} rejected the login of SMTP_USER {smtp.user!r} ({desc})"
            f"{retried}; check SMTP_USER / SMTP_PASSWORD"
        )
    elif step == "login" and isinstance(exc, UnicodeError):
        # The UnicodeError's own text quotes the offending character, maybe the password's.
        text = f"mail server {server}: SMTP_USER and SMTP_PASSWORD must be ASCII to log in"
    elif step == "login" and isinstance(exc, smtplib.SMTPNotSupportedError):
        text = (
            f"mail server {server} does not offer a login (no AUTH; many servers offer it only "
            f"over TLS); check SMTP_USER / SMTP_SECURITY"
        )
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = (
            f"mail server {server} refused every recipient: {_refusals(exc.recipients)}"
            f"{retried}; nobody got the digest; check DIGEST_RECIPIENTS"
        )
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        hint = (
            "check SMTP_USER / SMTP_PASSWORD (the server wants a login)"
            if exc.smtp_code == 530
            else "check MAIL_FROM"
        )
        text = f"mail server {server} refused the sender {exc.sender} ({desc}){retried}; {hint}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = f"mail server {server} closed the connection ({desc}){retried}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        temporarily = "temporarily " if 400 <= exc.smtp_code < 500 else ""
        what = _STEP_OBJECTS.get(step, step)
        text = f"mail server {server} {temporarily}refused {what} ({desc}){retried}"
    elif isinstance(exc, smtplib.SMTPException):
        text = f"mail server {server} failed during {step} ({desc}){retried}"
    elif isinstance(exc, OSError) and step == "connect":
        text = f"cannot reach mail server {server} ({desc}){retried}; check SMTP_HOST / SMTP_PORT"
    elif isinstance(exc, OSError):
        text = f"lost the connection to mail server {server} during {step} ({desc}){retried}"
    else:
        text = f"mail server {server} failed during {step} ({desc}){retried}"
    return _mail_error(smtp, text)


def _mail_error(
    smtp: SmtpSettings, text: str, delivered_to: Sequence[str] = ()
) -> MailSendError:
    """Make the error: one line, and never the password, whatever a server echoed back."""
    text = _WHITESPACE.sub(" ", text).strip()
    if smtp.password:
        text = text.replace(smtp.password, "***")
    return MailSendError(text, delivered_to=delivered_to)


def _describe(exc: BaseException) -> str:
    """Describe a failure in one short line: an SMTP reply as 'code text'."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refusals(exc.recipients)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply_text(exc.smtp_error)}".strip()
    return _WHITESPACE.sub(" ", str(exc)).strip() or type(exc).__name__


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    """List refused recipients with the server's reply for each."""
    return ", ".join(
        f"{address} ({code} {_reply_text(reply)})" for address, (code, reply) in refused.items()
    )


def _reply_text(reply: bytes | str) -> str:
    """Decode a server reply into one line."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return _WHITESPACE.sub(" ", reply).strip()


def _parse_address(address: str) -> Address:
    """Parse one bare address (user@domain); raise ValueError for anything else."""
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError) as exc:  # IndexError: the parser's answer to ""
        raise ValueError(f"invalid email address {address!r}") from exc
    if not parsed.domain:
        raise ValueError(f"invalid email address {address!r}")
    return parsed

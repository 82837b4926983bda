"""Build and send the digest email against a real SMTP server (MailSink) on loopback."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from standup_bot.errors import MailError
from standup_bot.mail import (
    MailSendError,
    SmtpSettings,
    _error_for,
    _StepError,
    build_message,
    check_connection,
    send_message,
)
from standup_bot.mail_sink import MailSink, _free_port

MAIL_FROM = "standup@example.com"
ALICE = "alice@example.com"
BOB = "bob@example.com"
USER = "standup-bot"
PASSWORD = "s3cret-Pa55word!"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def make_message(subject: str = "Standup digest 2026-03-02", **overrides: object) -> EmailMessage:
    """Build a digest message for alice and bob, with any argument overridden."""
    arguments: dict[str, object] = {
        "subject": subject,
        "text": "alice: shipped the release\nbob: not reported\n",
        "html": "<p>alice: shipped the release</p><p>bob: not reported</p>",
        "mail_from": MAIL_FROM,
        "recipients": [ALICE, BOB],
        "now": NOW,
    }
    arguments.update(overrides)
    return build_message(**arguments)  # type: ignore[arg-type]


def settings_for(sink: MailSink, **overrides: object) -> SmtpSettings:
    """Return SMTP settings that reach the sink (plain SMTP, no login, short timeout)."""
    values: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "security": "none",
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpSettings(**values)  # type: ignore[arg-type]


class RecordingSleep:
    """Stand in for time.sleep: remember each delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def send(
    message: EmailMessage,
    smtp: SmtpSettings,
    sleep: RecordingSleep | None = None,
    *,
    recipients: Sequence[str] = (ALICE, BOB),
    attempts: int = 3,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send to alice and bob from MAIL_FROM."""
    send_message(
        message,
        smtp=smtp,
        mail_from=MAIL_FROM,
        recipients=recipients,
        attempts=attempts,
        sleep=sleep if sleep is not None else RecordingSleep(),
        ssl_context=ssl_context,
    )


def assert_well_formed(error: MailError, smtp: SmtpSettings) -> None:
    """Check the rules every MailError follows: one line, lowercase start, server named."""
    text = str(error)
    assert "\n" not in text and "\r" not in text
    assert text[0].islower(), text
    assert f"{smtp.host}:{smtp.port}" in text
    assert PASSWORD not in text


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink() as running:
        yield running


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Make a self-signed certificate for 127.0.0.1 with the openssl command line."""
    # The cryptography package is not among our dependencies; the openssl tool usually is.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed; cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """Return a client context that trusts only the test certificate (and checks the host)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


# build_message


def test_message_has_the_headers_and_both_parts() -> None:
    message = make_message()

    assert message["From"] == MAIL_FROM
    assert [a.addr_spec for a in message["To"].addresses] == [ALICE, BOB]
    assert message["Subject"] == "Standup digest 2026-03-02"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())


def test_message_id_uses_the_given_domain() -> None:
    assert make_message(message_id_domain="standup.test")["Message-ID"].endswith("@standup.test>")


@pytest.mark.parametrize(
    "subject",
    [
        "x\r\nBcc: evil@example.com",
        "x\nBcc: evil@example.com",
        "x\rBcc: evil@example.com",
        "x\u2028Bcc: evil@example.com",
        "x\r\n\r\nBcc: evil@example.com",
    ],
)
def test_line_breaks_in_the_subject_become_spaces(subject: str) -> None:
    message = make_message(subject)

    assert message["Subject"] == "x Bcc: evil@example.com"
    assert message["Bcc"] is None
    assert b"\r\nBcc:" not in message.as_bytes()


@pytest.mark.parametrize(
    "recipients",
    [
        ["alice@example.com\r\nBcc: evil@example.com"],
        ["alice@example.com, evil@example.com"],
        ["Alice <alice@example.com>"],
        ["not-an-address"],
        [""],
        [],
    ],
)
def test_bad_recipients_are_refused(recipients: list[str]) -> None:
    with pytest.raises(ValueError):
        make_message(recipients=recipients)


@pytest.mark.parametrize("sender", ["bot@example.com\r\nBcc: evil@example.com", "a@b.c, d@e.f", "x"])
def test_bad_sender_is_refused(sender: str) -> None:
    with pytest.raises(ValueError):
        make_message(mail_from=sender)


def test_sender_may_have_a_display_name() -> None:
    message = make_message(mail_from="Standup Bøt <standup@example.com>")

    assert message["From"].addresses[0].display_name == "Standup Bøt"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_message(now=datetime(2026, 3, 2, 12, 0))


def test_date_keeps_the_offset() -> None:
    berlin_noon = datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=1)))

    assert make_message(now=berlin_noon)["Date"].endswith("+0100")


# Delivery


def test_digest_arrives_as_one_message_addressed_to_every_recipient(sink: MailSink) -> None:
    send(make_message(), settings_for(sink))

    [mail] = sink.wait_for(1)
    assert mail.mail_from == MAIL_FROM
    assert mail.rcpt_tos == (ALICE, BOB)
    assert mail.message.get_content_type() == "multipart/alternative"
    plain, html = mail.message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content() == "alice: shipped the release\nbob: not reported\n"
    assert html.get_content_type() == "text/html"
    assert "<p>alice: shipped the release</p>" in html.get_content()
    assert mail.message["To"] == f"{ALICE}, {BOB}"


def test_non_ascii_subject_and_body_arrive_intact(sink: MailSink) -> None:
    subject = "Stand-up 2026-03-02 ✓ für Zoë"
    message = make_message(subject, text="Zoë: prêt ✓\n", html="<p>Zoë: prêt ✓</p>")

    send(message, settings_for(sink))

    [mail] = sink.wait_for(1)
    assert mail.data.isascii()  # RFC 2047 subject, quoted-printable body: any relay takes it
    assert mail.message["Subject"] == subject
    plain, html = mail.message.iter_parts()
    assert plain.get_content() == "Zoë: prêt ✓\n"
    assert "<p>Zoë: prêt ✓</p>" in html.get_content()


def test_subject_injection_adds_no_header_and_no_recipient(sink: MailSink) -> None:
    send(make_message("x\r\nBcc: evil@example.com"), settings_for(sink))

    [mail] = sink.wait_for(1)
    assert mail.rcpt_tos == (ALICE, BOB)
    assert mail.message["Bcc"] is None
    assert mail.message["Subject"] == "x Bcc: evil@example.com"
    header_names = [name.lower() for name in mail.message]
    assert sorted(header_names) == sorted(
        ["subject", "from", "to", "date", "message-id", "content-type", "mime-version"]
    )


def test_login_with_the_right_credentials_delivers() -> None:
    with MailSink(require_auth=(USER, PASSWORD)) as sink:
        send(make_message(), settings_for(sink, user=USER, password=PASSWORD))

        assert len(sink.wait_for(1)) == 1


def test_bad_login_names_smtp_user_and_hides_the_password() -> None:
    sleep = RecordingSleep()
    with MailSink(require_auth=(USER, "the-right-one")) as sink:
        smtp = settings_for(sink, user=USER, password=PASSWORD)
        with pytest.raises(MailError) as caught:
            send(make_message(), smtp, sleep)

        assert sink.messages == []
    assert str(caught.value) == (
        f"mail server {sink.host}:{sink.port} rejected the login of SMTP_USER '{USER}' "
        "(535 5.7.8 Authentication credentials invalid); check SMTP_USER / SMTP_PASSWORD"
    )
    assert_well_formed(caught.value, smtp)
    assert sleep.delays == []  # a wrong password stays wrong: no retry


def test_sending_without_login_to_a_server_that_wants_one_says_so() -> None:
    with MailSink(require_auth=(USER, PASSWORD)) as sink:
        smtp = settings_for(sink)
        with pytest.raises(MailError, match=r"530 .*check SMTP_USER / SMTP_PASSWORD"):
            send(make_message(), smtp)


def test_unreachable_server_is_retried_with_backoff_then_fails() -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=_free_port("127.0.0.1"), security="none", timeout=5)
    sleep = RecordingSleep()

    with pytest.raises(MailError) as caught:
        send(make_message(), smtp, sleep, attempts=3)

    assert sleep.delays == [1.0, 2.0]
    assert str(caught.value).startswith(f"cannot reach mail server 127.0.0.1:{smtp.port} (")
    assert str(caught.value).endswith("; gave up after 3 attempts; check SMTP_HOST / SMTP_PORT")
    assert isinstance(caught.value, MailSendError) and caught.value.delivered_to == ()
    assert_well_formed(caught.value, smtp)


def test_temporary_failure_is_retried_and_delivered_once() -> None:
    sleep = RecordingSleep()
    with MailSink(temp_fail_times=1) as sink:
        send(make_message(), settings_for(sink), sleep)

        # send_message returns only after the 250, and the sink records before answering.
        assert len(sink.messages) == 1
    assert sleep.delays == [1.0]
    assert sink.messages[0].rcpt_tos == (ALICE, BOB)


def test_temporary_failure_every_time_gives_up_after_the_attempts() -> None:
    sleep = RecordingSleep()
    with MailSink(temp_fail_times=10) as sink:
        smtp = settings_for(sink)
        with pytest.raises(MailError) as caught:
            send(make_message(), smtp, sleep, attempts=4)

        assert sink.messages == []
    assert sleep.delays == [1.0, 2.0, 4.0]
    assert str(caught.value) == (
        f"mail server {smtp.host}:{smtp.port} temporarily refused the digest "
        "(451 4.3.0 try again later); gave up after 4 attempts"
    )


def test_refused_recipient_is_named_and_the_others_got_it() -> None:
    sleep = RecordingSleep()
    with MailSink(refuse_recipients=[BOB]) as sink:
        smtp = settings_for(sink)
        with pytest.raises(MailSendError) as caught:
            send(make_message(), smtp, sleep)

        [mail] = sink.wait_for(1)
    assert mail.rcpt_tos == (ALICE,)
    assert caught.value.delivered_to == (ALICE,)
    assert str(caught.value) == (
        f"mail server {smtp.host}:{smtp.port} refused recipient(s) {BOB} "
        "(550 5.1.1 mailbox unavailable); the digest was delivered to the others; "
        "check DIGEST_RECIPIENTS"
    )
    assert sleep.delays == []
    assert_well_formed(caught.value, smtp)


def test_every_recipient_refused_is_permanent_and_nobody_got_it() -> None:
    sleep = RecordingSleep()
    with MailSink(refuse_recipients=[ALICE, BOB]) as sink:
        smtp = settings_for(sink)
        with pytest.raises(MailSendError) as caught:
            send(make_message(), smtp, sleep)

        assert sink.messages == []
    assert caught.value.delivered_to == ()
    assert sleep.delays == []
    assert "refused every recipient" in str(caught.value)
    assert "nobody got the digest" in str(caught.value)


# TLS


def test_starttls_delivers_over_a_verified_connection(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    # The sink requires STARTTLS when it offers it, so delivery proves the channel was TLS.
    with MailSink(tls_context=server_tls, require_auth=(USER, PASSWORD)) as sink:
        smtp = settings_for(sink, security="starttls", user=USER, password=PASSWORD)
        send(make_message(), smtp, ssl_context=client_tls)

        assert sink.wait_for(1)[0].rcpt_tos == (ALICE, BOB)


def test_implicit_tls_delivers(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    with MailSink(tls_context=server_tls, implicit_tls=True) as sink:
        send(make_message(), settings_for(sink, security="ssl"), ssl_context=client_tls)

        assert len(sink.wait_for(1)) == 1


def test_plain_smtp_to_a_server_that_requires_starttls_fails(server_tls: ssl.SSLContext) -> None:
    with MailSink(tls_context=server_tls) as sink, pytest.raises(MailError, match="530"):
        send(make_message(), settings_for(sink))


def test_starttls_to_a_server_without_it_names_smtp_security(sink: MailSink) -> None:
    smtp = settings_for(sink, security="starttls")
    sleep = RecordingSleep()

    with pytest.raises(MailError) as caught:
        send(make_message(), smtp, sleep)

    assert str(caught.value).startswith(
        f"mail server {smtp.host}:{smtp.port} does not offer STARTTLS; "
        "check SMTP_SECURITY / SMTP_PORT"
    )
    assert sleep.delays == []
    assert sink.messages == []


def test_untrusted_certificate_is_a_tls_error_naming_smtp_security(
    server_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    # A client that trusts nothing: the sink's self-signed certificate cannot verify.
    distrustful = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sleep = RecordingSleep()
    with MailSink(tls_context=server_tls) as sink:
        smtp = settings_for(sink, security="starttls", user=USER, password=PASSWORD)
        with pytest.raises(MailError) as caught:
            send(make_message(), smtp, sleep, ssl_context=distrustful)

    assert "failed the TLS handshake (" in str(caught.value)
    assert "certificate verify failed" in str(caught.value)
    assert "check SMTP_SECURITY / SMTP_PORT" in str(caught.value)
    assert sleep.delays == []
    assert_well_formed(caught.value, smtp)


def test_ssl_to_a_plain_server_names_smtp_security(sink: MailSink) -> None:
    smtp = settings_for(sink, security="ssl")

    with pytest.raises(MailError, match=r"TLS handshake.*check SMTP_SECURITY / SMTP_PORT"):
        send(make_message(), smtp)


# check_connection


def test_check_connection_reports_reachable_server(sink: MailSink) -> None:
    assert check_connection(settings_for(sink)) == (
        f"mail server {sink.host}:{sink.port} reachable (no TLS, no login)"
    )


def test_check_connection_with_starttls_and_login(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with MailSink(tls_context=server_tls, require_auth=(USER, PASSWORD)) as sink:
        smtp = settings_for(sink, security="starttls", user=USER, password=PASSWORD)

        assert check_connection(smtp, ssl_context=client_tls) == (
            f"mail server {sink.host}:{sink.port} reachable (STARTTLS, login ok)"
        )


def test_check_connection_fails_on_a_bad_login() -> None:
    with MailSink(require_auth=(USER, "the-right-one")) as sink:
        smtp = settings_for(sink, user=USER, password=PASSWORD)
        with pytest.raises(MailError, match="check SMTP_USER / SMTP_PASSWORD") as caught:
            check_connection(smtp)

    assert_well_formed(caught.value, smtp)


def test_check_connection_fails_when_nothing_listens() -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=_free_port("127.0.0.1"), security="none", timeout=5)

    with pytest.raises(MailError) as caught:
        check_connection(smtp)

    assert str(caught.value).startswith(f"cannot reach mail server 127.0.0.1:{smtp.port} (")
    assert "gave up" not in str(caught.value)


# The password never leaks


def test_password_stays_out_of_errors_even_when_the_server_echoes_it() -> None:
    smtp = SmtpSettings(host="mail.example.com", port=587, user=USER, password=PASSWORD)
    echoed = smtplib.SMTPAuthenticationError(535, f"bad password {PASSWORD}".encode())

    error = _error_for(_StepError("login", echoed), smtp, 1)

    assert "bad password ***" in str(error)
    assert_well_formed(error, smtp)


def test_settings_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(SmtpSettings(host="h", user=USER, password=PASSWORD))


def test_sink_wait_for_times_out(sink: MailSink) -> None:
    with pytest.raises(TimeoutError, match="received 0 message"):
        sink.wait_for(1, timeout=0.05)


def test_unknown_security_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="security"):
        check_connection(SmtpSettings(host="127.0.0.1", port=1, security="tls"))


_AWKWARD_TEXT = "".join([
    "plain line\n", "a = b =\n", "x" * 77 + "\n", "y" * 78 + "=\n", "z" * 200 + " \n", "tab at the end\t\n", ".\n",
    "From here\n", "Zoë ✓ prêt " * 12 + "\n", "w" * 75 + "\t\n", "v" * 76 + " \n", "crlf\r\nlone cr\rend", "\x00\x0b\x1c\x85 ",
])


@pytest.mark.parametrize("text", ["", "one line", "ends with a newline\n", _AWKWARD_TEXT, "=" * 500, "é" * 300])
def test_the_parts_are_encoded_byte_for_byte_as_the_email_package_encodes_them(text: str) -> None:
    ours = make_message(text=text, html=f"<p style=\"a:b\">{text}</p>")
    reference = EmailMessage(policy=ours.policy)
    for name in ("Subject", "From", "To", "Date", "Message-ID"):
        reference[name] = ours[name]
    reference.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    reference.add_alternative(f"<p style=\"a:b\">{text}</p>", subtype="html", charset="utf-8", cte="quoted-printable")
    reference.set_boundary(ours.get_boundary())

    assert ours.as_bytes() == reference.as_bytes()


def test_what_arrives_is_what_smtplib_s_send_message_would_have_sent(sink: MailSink) -> None:
    message = make_message(text=_AWKWARD_TEXT, html=f"<p>{_AWKWARD_TEXT}</p>")
    message["Bcc"] = "hidden@example.com"  # never sent, as smtplib's send_message leaves it out
    sent_by_smtplib: list[bytes] = []

    class Recorder(smtplib.SMTP):
        def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):  # type: ignore[no-untyped-def]
            sent_by_smtplib.append(msg)
            return {}

    recorder = Recorder()  # not connected: it only flattens the message as smtplib sends it
    recorder.ehlo_or_helo_if_needed = lambda: None  # type: ignore[method-assign]
    recorder.send_message(message, from_addr=MAIL_FROM, to_addrs=[ALICE, BOB])

    send(message, settings_for(sink))

    [mail] = sink.wait_for(1)
    assert mail.data == sent_by_smtplib[0]
    assert b"hidden@example.com" not in mail.data


def test_a_non_ascii_envelope_address_is_sent_with_smtputf8(sink: MailSink) -> None:
    send(make_message(), settings_for(sink), recipients=["zoë@example.com"])

    [mail] = sink.wait_for(1)
    assert mail.rcpt_tos == ("zoë@example.com",)
    assert mail.message.get_body(("plain",)).get_content() == "alice: shipped the release\nbob: not reported\n"

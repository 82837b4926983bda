"""Run a local SMTP server that keeps what it receives: the demo's mail server and the tests'."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REFUSED_RECIPIENT_REPLY = "550 5.1.1 mailbox unavailable"
TEMPORARY_FAILURE_REPLY = "451 4.3.0 try again later"
AUTH_REQUIRED_REPLY = "530 5.7.0 authentication required"


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted: its envelope, raw bytes and parsed form."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage  # parsed with email.policy.default, line ends as "\n"


class MailSink:
    """Serve SMTP on a free local port in a background thread and record every message.

    Failures can be chosen: refuse some recipients (550), answer the DATA of the first
    `temp_fail_times` transactions with 451, require a login (535 for bad credentials,
    530 for mail without one), offer STARTTLS with `tls_context` (and then require it),
    or speak TLS from the first byte (`implicit_tls=True`, for SMTP_SECURITY="ssl").
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        require_auth: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        refuse_recipients: Collection[str] = (),
        temp_fail_times: int = 0,
        implicit_tls: bool = False,
    ) -> None:
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self.host = host
        self.port = port if port is not None else _free_port(host)
        self.messages: list[ReceivedMail] = []
        self._require_auth = require_auth
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._refuse = {address.lower() for address in refuse_recipients}
        self._temp_failures_left = temp_fail_times
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> MailSink:
        """Start serving; return self."""
        if self._controller is not None:
            raise RuntimeError("the mail sink is already running")
        smtp_options: dict[str, Any] = {}
        if self._require_auth is not None:
            # Loopback only, so plain-text AUTH is acceptable here.
            smtp_options.update(authenticator=self._authenticate, auth_require_tls=False)
        if self._tls_context is not None and not self._implicit_tls:
            smtp_options.update(tls_context=self._tls_context, require_starttls=True)
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            # A fixed name: the default, socket.getfqdn(), can block on DNS.
            server_hostname="mail-sink.localhost",
            ssl_context=self._tls_context if self._implicit_tls else None,
            ready_timeout=10.0,
            **smtp_options,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop serving (a no-op when not running)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived and return them all.

        Raises TimeoutError when they have not arrived within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"mail sink {self.host}:{self.port} received {len(self.messages)} "
                        f"message(s) within {timeout} s, expected {count}"
                    )
                self._condition.wait(remaining)
            return list(self.messages)

    def _record(self, envelope: Envelope) -> None:
        """Keep an accepted message and wake anyone waiting for it."""
        data = envelope.original_content or b""
        # SMTP's CRLF line ends become "\n", which is what policy.default's contents use.
        parsed = email.message_from_bytes(
            data.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message=parsed,
        )
        with self._condition:
            self.messages.append(mail)
            self._condition.notify_all()

    def _take_temporary_failure(self) -> bool:
        """Use up one of the DATA failures still to give; tell whether there was one."""
        with self._condition:
            if self._temp_failures_left > 0:
                self._temp_failures_left -= 1
                return True
            return False

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """Accept exactly the configured login; anything else gets aiosmtpd's 535."""
        assert self._require_auth is not None
        user, password = self._require_auth
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)


class _Handler:
    """aiosmtpd hooks that apply the sink's chosen failures and record what gets through."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # aiosmtpd's own auth_required would also refuse AUTH over plain text on loopback.
        if self._sink._require_auth is not None and not session.authenticated:
            return AUTH_REQUIRED_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._sink._refuse:
            return REFUSED_RECIPIENT_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink._take_temporary_failure():
            return TEMPORARY_FAILURE_REPLY
        self._sink._record(envelope)
        return "250 OK: queued"


def _free_port(host: str) -> int:
    """Return a port that is free on `host` right now (aiosmtpd's Controller cannot take 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])

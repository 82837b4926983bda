"""Fault 6: the mail server refuses the connection, fails TLS, rejects the login, answers 4xx
on every try, or refuses one recipient of several.

`standup.py digest` exits 1 with one line naming the server (host:port) or the recipient;
whoever did not get it stays pending (`standup.py status` says so); the next `digest`,
with a healthy server, delivers to the remaining recipients only; nobody gets it twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, CHANNEL

from .helpers import (
    assert_consistent,
    deliveries,
    free_port,
    one_error_line,
    received_by,
    run_standup,
    stage_runs,
)

LEAD, CTO, OPS = "lead@example.com", "cto@example.com", "ops@example.com"
SMTP_USER, RIGHT_PASSWORD, WRONG_PASSWORD = "standup", "right-Pa55word", "wrong-Pa55word"


@dataclass
class MailFault:
    """A broken mail server setup: settings that reach it, what the error says, what gets through."""

    settings: dict[str, Any]
    error: Callable[[str], str]  # server (host:port) -> expected stderr line (a prefix when it ends in "(")
    sinks: list[MailSink] = field(default_factory=list)
    delivered_first: set[str] = field(default_factory=set)
    fixed: dict[str, Any] = field(default_factory=dict)  # the settings of the healthy second run


def _refused(smtp: MailSink) -> MailFault:
    port = free_port()
    return MailFault(
        {"SMTP_PORT": port},
        lambda server: f"error: cannot reach mail server 127.0.0.1:{port} ([Errno 111] Connection refused); "
        "gave up after 3 attempts; check SMTP_HOST / SMTP_PORT",
    )


def _tls(smtp: MailSink) -> MailFault:
    # SMTP_SECURITY="ssl" (TLS from the first byte) against a plain-text server.
    return MailFault(
        {"SMTP_SECURITY": "ssl"},
        lambda server: f"error: mail server {server} failed the TLS handshake (",
    )


def _auth(smtp: MailSink) -> MailFault:
    sink = MailSink(require_auth=(SMTP_USER, RIGHT_PASSWORD)).start()
    base = {"SMTP_PORT": sink.port, "SMTP_USER": SMTP_USER}
    return MailFault(
        {**base, "SMTP_PASSWORD": WRONG_PASSWORD},
        lambda server: f"error: mail server {server} rejected the login of SMTP_USER '{SMTP_USER}' "
        "(535 5.7.8 Authentication credentials invalid); check SMTP_USER / SMTP_PASSWORD",
        sinks=[sink],
        fixed={**base, "SMTP_PASSWORD": RIGHT_PASSWORD},  # the fix is the password
    )


def _temporary(smtp: MailSink) -> MailFault:
    sink = MailSink(temp_fail_times=1000).start()
    return MailFault(
        {"SMTP_PORT": sink.port},
        lambda server: f"error: mail server {server} temporarily refused the digest "
        "(451 4.3.0 try again later); gave up after 3 attempts",
        sinks=[sink],
    )


def _one_recipient(smtp: MailSink) -> MailFault:
    sink = MailSink(refuse_recipients=[CTO]).start()
    return MailFault(
        {"SMTP_PORT": sink.port},
        lambda server: f"error: mail server {server} refused recipient(s) {CTO} (550 5.1.1 mailbox "
        "unavailable); the digest was delivered to the others; check DIGEST_RECIPIENTS",
        sinks=[sink],
        delivered_first={LEAD, OPS},
    )


FAULTS = {
    "connection-refused": _refused,
    "tls-handshake": _tls,
    "auth-failure": _auth,
    "4xx-every-try": _temporary,
    "one-recipient-refused": _one_recipient,
}


@pytest.fixture(params=list(FAULTS))
def fault(request: pytest.FixtureRequest, smtp: MailSink) -> Iterator[MailFault]:
    made = FAULTS[request.param](smtp)
    yield made
    for sink in made.sinks:
        sink.stop()


def test_a_digest_the_mail_server_did_not_take_stays_pending_and_goes_only_to_the_rest_next_time(
    fault: MailFault, make_config: Callable[..., Path], workdir: Path, db: Path, today: dt.date,
    sim: SlackSimulator, smtp: MailSink, timing: Callable[[str, float], None],
) -> None:
    recipients = [LEAD, CTO, OPS]
    config = make_config(DIGEST_RECIPIENTS=recipients, **fault.settings)
    assert run_standup(config, "prompt", cwd=workdir).returncode == 0
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(ALICE, CHANNEL, "Today: mail", thread_ts=prompt["ts"])
    server = f"127.0.0.1:{fault.settings.get('SMTP_PORT', smtp.port)}"

    failed = run_standup(config, "digest", cwd=workdir)

    timing("digest gives up", failed.seconds)
    line = one_error_line(failed)
    expected = fault.error(server)
    assert line.startswith(expected) if expected.endswith("(") else line == expected, line
    assert failed.stdout == ""
    assert deliveries(db, today) == fault.delivered_first
    assert stage_runs(db, today)["digest"]["status"] == "failed"
    status = run_standup(config, "status", cwd=workdir)
    assert status.returncode == 0, status
    [digest_line] = [line for line in status.out_lines if line.startswith("digest: ")]
    assert digest_line.startswith("digest: FAILED at ") and digest_line.endswith(
        f"(attempt 1): {line.removeprefix('error: ')}"
    ), digest_line
    pending = [r for r in recipients if r not in fault.delivered_first]
    assert f"  pending for: {', '.join(pending)}" in status.out_lines, status

    healthy = make_config(DIGEST_RECIPIENTS=recipients, **(fault.fixed or {"SMTP_PORT": smtp.port}))
    resent = run_standup(healthy, "digest", cwd=workdir)

    assert (resent.returncode, resent.stderr) == (0, ""), resent
    assert resent.out_lines == [
        f"digest for {today} sent to {len(pending)} recipient(s): 1 report(s), 1 not reported"
    ]
    healthy_sink = fault.sinks[0] if fault.fixed else smtp
    assert sorted(healthy_sink.messages[-1].rcpt_tos) == sorted(pending)
    assert received_by([*fault.sinks, smtp]) == dict.fromkeys(recipients, 1)  # everyone once, nobody twice
    again = run_standup(healthy, "digest", cwd=workdir)
    assert again.returncode == 0 and "already done" in again.stdout, again
    assert received_by([*fault.sinks, smtp]) == dict.fromkeys(recipients, 1)

    assert deliveries(db, today) == set(recipients)
    runs = stage_runs(db, today)
    assert (runs["digest"]["status"], runs["digest"]["attempts"]) == ("done", 2)
    for output in (failed.stdout, failed.stderr, status.stdout, (db.parent / "standup.log").read_text()):
        assert RIGHT_PASSWORD not in output and WRONG_PASSWORD not in output
    assert_consistent(db, today, prompt_ts=prompt["ts"])

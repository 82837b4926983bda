"""`standup.py status`: the day's state at a glance, including stages that never ran."""

from __future__ import annotations

import pytest

from standup_bot import stages
from standup_bot.errors import MailError
from standup_bot.model import Reply
from standup_bot.status import status_lines
from tests.conftest import ALICE, CAROL, CHANNEL, DAY, FakeClock


def test_status_before_anything_ran_shows_each_stage_as_due(ctx, clock: FakeClock):
    clock.advance(minutes=-30)  # 09:30
    lines = status_lines(ctx, DAY)
    assert lines[0] == "standup 2026-11-26 in C0STANDUP (Europe/Berlin)"
    assert "prompt: not run yet (due at 10:00 CET)" in lines
    assert "digest: not run yet (due at 12:00 CET)" in lines


def test_status_shows_a_missed_stage(ctx, clock: FakeClock):
    clock.advance(hours=3)  # 13:00, and nothing ran: the VM was off
    lines = status_lines(ctx, DAY)
    assert "prompt: not run (missed: it was due at 10:00 CET)" in lines
    assert "remind: not run (missed: it was due at 11:30 CET)" in lines


def test_status_shows_reports_reminders_and_a_failed_digest(make_ctx, make_settings, sim, store, clock):
    ctx = make_ctx(make_settings())
    stages.prompt(ctx, DAY)
    ts = store.prompt_ts(CHANNEL, DAY)
    for user in (ALICE, CAROL):
        posted = sim.user_posts(user, CHANNEL, "done", thread_ts=ts)
        store.record_reply(CHANNEL, DAY, Reply(posted, user, "done"))
    stages.remind(ctx, DAY)
    broken = make_ctx(make_settings(SMTP_PORT=1))
    with pytest.raises(MailError):
        stages.digest(broken, DAY)

    lines = status_lines(ctx, DAY)
    text = "\n".join(lines)
    assert any(line.startswith("prompt: done at ") for line in lines)
    assert "  thread: https://" in text
    assert "reports: 2 recorded by the listener" in text
    assert "  Carol: 1 reply(s), first at " in text and "(not in MEMBERS)" in text
    assert "  not reported: Bob Brown" in lines
    assert "  Bob Brown (sent)" in lines
    [digest] = [line for line in lines if line.startswith("digest: ")]
    assert digest.startswith("digest: FAILED at ") and "(attempt 1): cannot reach mail server" in digest
    assert "  pending for: lead@example.com, cto@example.com" in lines

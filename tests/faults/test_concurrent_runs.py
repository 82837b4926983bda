"""Fault 3: two `standup.py digest` started at the same moment (cron overlap, a manual run).

Exactly one email goes out; the other process sees the claim and does nothing, exit 0.
(Two overlapping `run_standup.sh prompt` are in tests/test_run_standup_sh.py.)
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, CHANNEL

from .helpers import (
    assert_consistent,
    deliveries,
    finish,
    received_by,
    run_standup,
    stage_runs,
    start_standup,
)


def test_two_digests_started_at_once_send_one_email(
    config: Path, workdir: Path, db: Path, today: dt.date, sim: SlackSimulator, smtp: MailSink,
    background: list,
) -> None:
    assert run_standup(config, "prompt", cwd=workdir).returncode == 0
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(ALICE, CHANNEL, "Today: one digest only", thread_ts=prompt["ts"])
    # Slack reads the thread slowly, so whichever process claims the digest first is still
    # busy with it when the other one tries.
    sim.fail("conversations.replies", delay=2.0)

    started = time.monotonic()
    outputs = [workdir / f"digest-{i}.out" for i in range(2)]
    processes = [start_standup(config, "digest", cwd=workdir, output=out) for out in outputs]
    background.extend(processes)
    results = [finish(p, ["digest"], out, started) for p, out in zip(processes, outputs, strict=True)]

    assert [r.returncode for r in results] == [0, 0], results
    said = sorted(line for r in results for line in r.out_lines)
    assert len(said) == 2, said
    # Normally the loser finds the claim `running`; on a loaded machine it may start so late
    # that the digest is already done. Either way it does nothing.
    assert said[0].startswith(f"digest for {today} is being done right now by ") or said[0].startswith(
        f"digest for {today} already done; nothing to do"
    ), said
    assert "nothing to do" in said[0], said
    assert said[1] == f"digest for {today} sent to 2 recipient(s): 1 report(s), 1 not reported", said
    assert len(smtp.messages) == 1
    assert received_by([smtp]) == {"lead@example.com": 1, "cto@example.com": 1}
    assert stage_runs(db, today)["digest"]["status"] == "done"
    assert stage_runs(db, today)["digest"]["attempts"] == 1
    assert deliveries(db, today) == {"lead@example.com", "cto@example.com"}
    assert_consistent(db, today, prompt_ts=prompt["ts"])

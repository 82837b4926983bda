"""Fault 8: a stage did not run at all (the VM was off at PROMPT_TIME).

`standup.py status` shows it as missed; `standup.py run` catches up: the prompt goes out late
with a note saying so, then the reminder and the digest (their times are past too).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.stages import _boot_id
from tests.conftest import ALICE, BOB, CHANNEL

from .helpers import (
    assert_consistent,
    clean_env,
    db_rows,
    hhmm,
    local_now,
    received_by,
    run_standup,
    stage_runs,
)

MINUTE = dt.timedelta(minutes=1)


def test_a_stage_missed_while_the_machine_was_off_shows_as_missed_and_run_catches_up(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, smtp: MailSink, timing: Callable[[str, float], None],
) -> None:
    now = local_now(zone).replace(second=0, microsecond=0)
    due = {"prompt": now - 120 * MINUTE, "remind": now - 90 * MINUTE, "digest": now - 60 * MINUTE}
    config = make_config(PROMPT_TIME=hhmm(due["prompt"]), REMIND_TIME=hhmm(due["remind"]),
                         DIGEST_TIME=hhmm(due["digest"]))

    status = run_standup(config, "status", cwd=workdir)

    assert (status.returncode, status.stderr) == (0, ""), status
    for stage, at in due.items():
        when = at.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z")
        assert f"{stage}: not run (missed: it was due at {when})" in status.out_lines, status
    assert sim.calls("chat.postMessage") == []  # status only looks

    caught_up = run_standup(config, "run", cwd=workdir)

    timing("run catching up on a missed day", caught_up.seconds)
    assert (caught_up.returncode, caught_up.stderr) == (0, ""), caught_up
    assert caught_up.out_lines == [
        f"prompt for {today} posted in {CHANNEL}",
        f"reminded 2 member(s) for {today}; 0 of 2 had reported",
        f"digest for {today} sent to 2 recipient(s): 0 report(s), 2 not reported",
        f"sanity checks for {today}: 1 new finding(s) (#1 nobody_answered); see `standup.py checks`",
    ], caught_up
    [prompt] = sim.messages(CHANNEL)
    assert re.search(r"posted late, 2 h 0[01] min after the usual time", prompt["text"]), prompt["text"]
    assert len(sim.dms_to(ALICE)) == 1 and len(sim.dms_to(BOB)) == 1
    assert received_by([smtp]) == {"lead@example.com": 1, "cto@example.com": 1}

    status = run_standup(config, "status", cwd=workdir)
    for stage in due:
        assert any(line.startswith(f"{stage}: done at ") for line in status.out_lines), status
    again = run_standup(config, "run", cwd=workdir)
    assert again.returncode == 0 and all("already done" in line for line in again.out_lines), again
    assert len(sim.messages(CHANNEL)) == 1 and len(smtp.messages) == 1
    assert_consistent(db, today, prompt_ts=prompt["ts"])


def test_a_claim_left_by_a_process_that_died_before_a_reboot_does_not_block_the_stage(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, background: list,
) -> None:
    # Before the reboot, `standup.py prompt` claimed the stage and the machine went off. After
    # it, the PID it had belongs to another process (here: a sleeping python) on the same host.
    config = make_config()
    sim.fail("chat.postMessage", error="fatal_error")  # the claim is made, the post fails
    assert run_standup(config, "prompt", cwd=workdir).returncode == 1
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=clean_env())
    background.append(unrelated)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "UPDATE stage_runs SET status = 'running', finished_at = NULL, owner = ? WHERE stage = 'prompt'",
        # The claim names the boot and the start time of the process that made it; the pid
        # is the same but the process now running under it started at another time.
        (f"{socket.gethostname()}:{unrelated.pid}:{_boot_id()}:1",),
    )
    conn.close()
    assert os.getpid() != unrelated.pid

    result = run_standup(config, "prompt", cwd=workdir)

    assert result.returncode == 0, result
    assert len(sim.messages(CHANNEL)) == 1, f"no prompt today: {result.stdout.strip()}"
    assert stage_runs(db, today)["prompt"]["status"] == "done"
    assert db_rows(db, "SELECT count(*) AS n FROM prompts")[0]["n"] == 1

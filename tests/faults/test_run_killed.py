"""Fault 2: `standup.py run` is SIGKILLed, then started again the same day.

The first run's REMIND_TIME is an hour ahead, so after posting the prompt it sleeps; it is
killed there. The config is then rewritten with REMIND_TIME and DIGEST_TIME already past
(same PROMPT_TIME), so the second run does not wait: it must skip the prompt, remind once
and send one digest. TIMEZONE is a zone where it is now about midday, so no time here
crosses midnight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CHANNEL

from .helpers import (
    assert_consistent,
    hhmm,
    local_now,
    prompt_row,
    received_by,
    reminders,
    run_standup,
    stage_runs,
    start_standup,
    wait_for,
)

MINUTE = dt.timedelta(minutes=1)


def _posts_to_channel(sim: SlackSimulator) -> list[dict]:
    """Return the top-level posts in the channel (a silent day's note goes in the prompt's thread)."""
    return [
        call for call in sim.calls("chat.postMessage") if call.get("channel") == CHANNEL and not call.get("thread_ts")
    ]


def test_run_killed_while_waiting_for_the_reminder_resumes_without_a_second_prompt(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, smtp: MailSink, background: list, timing: Callable[[str, float], None],
) -> None:
    now = local_now(zone).replace(second=0, microsecond=0)
    prompt_at = hhmm(now - 3 * MINUTE)
    config = make_config(PROMPT_TIME=prompt_at, REMIND_TIME=hhmm(now + 60 * MINUTE),
                         DIGEST_TIME=hhmm(now + 90 * MINUTE))
    output = workdir / "first-run.out"
    first = start_standup(config, "run", cwd=workdir, output=output)
    background.append(first)
    wait_for(lambda: "waiting until" in output.read_text(encoding="utf-8") or first.poll() is not None,
             timeout=20, what="the first run to post the prompt and wait for REMIND_TIME")
    assert first.poll() is None, output.read_text(encoding="utf-8")
    first.kill()  # SIGKILL: no handler, no cleanup
    first.wait(timeout=10)

    assert len(sim.messages(CHANNEL)) == 1
    runs = stage_runs(db, today)
    assert set(runs) == {"prompt"} and runs["prompt"]["status"] == "done", runs
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: the fault suite", thread_ts=prompt["ts"])

    config = make_config(PROMPT_TIME=prompt_at, REMIND_TIME=hhmm(now - 2 * MINUTE),
                         DIGEST_TIME=hhmm(now - MINUTE))
    second = run_standup(config, "run", cwd=workdir)
    timing("second run (remind + digest, times past)", second.seconds)

    assert second.returncode == 0, second
    assert second.stderr == "", second
    assert second.out_lines == [
        f"prompt for {today} already done; nothing to do (use --force to do it again)",
        f"reminded 1 member(s) for {today}; 1 of 2 had reported",
        f"digest for {today} sent to 2 recipient(s): 1 report(s), 1 not reported",
    ], second
    third = run_standup(config, "run", cwd=workdir)
    assert third.returncode == 0 and all("already done" in line for line in third.out_lines), third

    assert len(sim.messages(CHANNEL)) == 1 and len(_posts_to_channel(sim)) == 1
    assert len(sim.dms_to(BOB)) == 1 and sim.dms_to(ALICE) == []
    assert len(smtp.messages) == 1
    assert received_by([smtp]) == {"lead@example.com": 1, "cto@example.com": 1}
    runs = stage_runs(db, today)
    assert {stage: (run["status"], run["attempts"]) for stage, run in runs.items()} == {
        "prompt": ("done", 1), "remind": ("done", 1), "digest": ("done", 1),
    }
    assert reminders(db, today) == {BOB: "sent"}
    assert_consistent(db, today, prompt_ts=prompt["ts"])


def test_run_killed_while_its_prompt_post_hangs_finds_the_posted_prompt_on_the_next_run(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, smtp: MailSink, background: list,
) -> None:
    # Slack takes 2 s to post the prompt; the run is killed while it waits, so the post lands
    # but nobody recorded its ts, and the claim is left `running` by a dead process.
    now = local_now(zone).replace(second=0, microsecond=0)
    times = {"PROMPT_TIME": hhmm(now - 3 * MINUTE), "REMIND_TIME": hhmm(now - 2 * MINUTE),
             "DIGEST_TIME": hhmm(now - MINUTE)}
    config = make_config(**times)
    sim.fail("chat.postMessage", delay=2.0)
    first = start_standup(config, "run", cwd=workdir, output=workdir / "first.out")
    background.append(first)
    wait_for(lambda: sim.calls("chat.postMessage") or first.poll() is not None, timeout=20,
             what="the run to post the prompt")
    first.kill()
    first.wait(timeout=10)
    [landed] = wait_for(lambda: sim.messages(CHANNEL), what="the slow post to land")
    assert prompt_row(db, today) is None and stage_runs(db, today)["prompt"]["status"] == "running"

    second = run_standup(config, "run", cwd=workdir)

    assert (second.returncode, second.stderr) == (0, ""), second
    assert second.out_lines[0] == f"prompt for {today} posted in {CHANNEL}", second
    assert len(sim.messages(CHANNEL)) == 1 and len(_posts_to_channel(sim)) == 1  # found, not posted again
    assert len(sim.dms_to(ALICE)) == 1 and len(sim.dms_to(BOB)) == 1
    assert received_by([smtp]) == {"lead@example.com": 1, "cto@example.com": 1}
    runs = stage_runs(db, today)
    assert {stage: run["status"] for stage, run in runs.items()} == dict.fromkeys(runs, "done")
    assert runs["prompt"]["attempts"] == 2
    assert_consistent(db, today, prompt_ts=landed["ts"])


@pytest.mark.parametrize("landed", [False, True], ids=["reminder-lost", "reminder-landed"])
def test_run_killed_in_the_middle_of_reminding_reminds_the_member_exactly_once_on_the_next_run(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, smtp: MailSink, background: list, landed: bool,
) -> None:
    # Nobody reports. Alice's reminder (the first, posted to her user ID) hangs in Slack and
    # the run is killed while it waits for the answer. Slack either never posted it or posted
    # it all the same; the next run reads the bot's DM history with her to tell which.
    now = local_now(zone).replace(second=0, microsecond=0)
    config = make_config(PROMPT_TIME=hhmm(now - 3 * MINUTE), REMIND_TIME=hhmm(now - 2 * MINUTE),
                         DIGEST_TIME=hhmm(now + 60 * MINUTE))
    if landed:
        sim.fail("chat.postMessage", delay=2.0, channel=ALICE)  # slow, then posted
    else:
        sim.fail("chat.postMessage", delay=30, error="fatal_error", channel=ALICE)  # hangs, never posted
    output = workdir / "first-run.out"
    first = start_standup(config, "run", cwd=workdir, output=output)
    background.append(first)
    wait_for(lambda: _reminders_posted_to(sim, ALICE) or first.poll() is not None, timeout=20,
             what="the run to start reminding")
    first.kill()
    first.wait(timeout=10)
    assert reminders(db, today) == {ALICE: "sending"}
    if landed:
        wait_for(lambda: sim.dms_to(ALICE), what="the slow reminder to land")
    else:
        assert sim.dms_to(ALICE) == []
    assert sim.dms_to(BOB) == []

    config = make_config(PROMPT_TIME=hhmm(now - 3 * MINUTE), REMIND_TIME=hhmm(now - 2 * MINUTE),
                         DIGEST_TIME=hhmm(now - MINUTE))
    second = run_standup(config, "run", cwd=workdir)

    assert second.returncode == 0, second
    assert prompt_row(db, today) is not None and len(sim.messages(CHANNEL)) == 1
    assert len(sim.dms_to(BOB)) == 1, (second, reminders(db, today))
    assert len(sim.dms_to(ALICE)) == 1, (
        f"alice got {len(sim.dms_to(ALICE))} reminders; hers stays {reminders(db, today).get(ALICE)!r}")
    assert len(_reminders_posted_to(sim, ALICE)) == (1 if landed else 2)  # found, or posted again
    assert reminders(db, today) == {ALICE: "sent", BOB: "sent"}
    # Only the interrupted reminder needs its DM opened, to read the history.
    assert [call["users"] for call in sim.calls("conversations.open")] == [ALICE]
    assert len(smtp.messages) == 1
    assert_consistent(db, today, prompt_ts=sim.messages(CHANNEL)[0]["ts"])


def _reminders_posted_to(sim: SlackSimulator, user: str) -> list[dict]:
    return [call for call in sim.calls("chat.postMessage") if call.get("channel") == user]

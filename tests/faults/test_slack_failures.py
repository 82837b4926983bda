"""Fault 5: Slack answers 5xx, storms of 429, refuses the connection, or times out.

A stage retries the transient (honouring Retry-After) a bounded number of times, then exits
1 with one line `error: …` in bounded time, and records nothing it did not do: a prompt
that was never posted has no prompt row and its stage is `failed`; a reminder that failed
for one member is retried for that member only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CHANNEL

from .helpers import (
    assert_consistent,
    finish_all,
    free_port,
    hhmm,
    local_now,
    one_error_line,
    prompt_row,
    reminders,
    run_standup,
    stage_runs,
    start_simulator,
    start_standup,
    write_config,
)

ERIN = "UERIN"
# Production retries (slack.RetryPolicy): 3 for 5xx and connection errors with 0.5 s, 1 s,
# 2 s back-off plus up to 1 s jitter each; 5 for 429, each waiting exactly Retry-After.
GIVE_UP_WITHIN = 20.0  # at most ~6.5 s (5xx, refused) or 5 s (429) of waiting, plus start-up
MINUTE = dt.timedelta(minutes=1)


def _assert_prompt_not_recorded(db: Path, date: dt.date, error: str) -> None:
    assert prompt_row(db, date) is None
    run = stage_runs(db, date)["prompt"]
    assert run["status"] == "failed", run
    assert run["last_error"] == error.removeprefix("error: "), run
    assert_consistent(db, date)


@dataclass
class NeverRecovers:
    """A Slack that keeps failing one way, and what the prompt must say about it."""

    break_slack: Callable[[SlackSimulator], str]  # -> the SLACK_API_URL to use
    message: Callable[[str], str]  # SLACK_API_URL -> the stderr line (a prefix when it ends in "(")
    tries: int | None  # calls of chat.postMessage Slack sees: the first and the retries


def _storm(**failure: Any) -> Callable[[SlackSimulator], str]:
    def break_slack(sim: SlackSimulator) -> str:
        sim.fail("chat.postMessage", times=100, **failure)
        return sim.base_url

    return break_slack


NEVER_RECOVERS = {
    # 503 without an error code: the HTML page a load balancer answers, not Slack's JSON.
    "503 storm": NeverRecovers(
        _storm(status=503),
        lambda url: "error: Slack API chat.postMessage failed with HTTP 503 after retries; Slack may be "
        "having trouble (https://slack-status.com), try again later",
        tries=3,  # a post answered 5xx may have landed: each retry looks for it first
    ),
    "429 storm (Retry-After: 1)": NeverRecovers(
        _storm(status=429, retry_after=1),
        lambda url: "error: Slack kept rate-limiting chat.postMessage after retries (ratelimited): try again later",
        tries=6,
    ),
    "connection refused": NeverRecovers(
        lambda sim: f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        lambda url: f"error: cannot reach Slack at {url} (chat.postMessage: [Errno 111] "
        "Connection refused); check the network and SLACK_API_URL",
        tries=None,
    ),
}


def test_a_slack_that_never_recovers_fails_the_prompt_in_bounded_time_and_records_nothing(
    tmp_path: Path, config_values: dict[str, Any], zone: str, timing: Callable[[str, float], None],
) -> None:
    # The three run at once, each against its own broken Slack, so their back-offs overlap.
    with contextlib.ExitStack() as stack:
        sims: dict[str, SlackSimulator] = {}
        urls: dict[str, str] = {}
        processes: dict[str, tuple[subprocess.Popen[Any], Path]] = {}
        for name, case in NEVER_RECOVERS.items():
            sims[name] = start_simulator()
            stack.callback(sims[name].stop)
            urls[name] = case.break_slack(sims[name])
            base = tmp_path / name.split()[0]
            config = write_config(base / "conf", {
                **config_values, "SLACK_API_URL": urls[name], "DATA_DIR": str(base / "data"),
            })
            (base / "work").mkdir()
            output = base / "prompt.out"
            processes[name] = (start_standup(config, "prompt", cwd=base / "work", output=output), output)
        today = local_now(zone).date()
        started = time.monotonic()
        results = finish_all(processes, started)

        for name, case in NEVER_RECOVERS.items():
            result, sim = results[name], sims[name]
            timing(f"prompt gives up: {name}", result.seconds)
            message = one_error_line(result)
            assert message == case.message(urls[name]), (name, message)
            assert result.seconds < GIVE_UP_WITHIN, (name, result)
            tries = [r.at for r in sim.requests if r.method == "chat.postMessage"]
            if case.tries is not None:
                assert len(tries) == case.tries, (name, tries)
            if "429" in name:
                gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
                assert min(gaps) >= 1.0, gaps  # each retry waited Retry-After
            assert sim.messages(CHANNEL) == [], name
            _assert_prompt_not_recorded(tmp_path / name.split()[0] / "data" / "standup.db", today, message)


def test_a_timed_out_post_is_not_retried_blindly_but_found(
    make_config: Callable[..., Path], workdir: Path, db: Path, today: dt.date, sim: SlackSimulator,
    timing: Callable[[str, float], None],
) -> None:
    # Slack is slow: it posts the prompt after 1.5 s, but the bot gave up waiting after 1 s,
    # so it cannot know the post went through. It waits as long again, then looks for it (by
    # its metadata) before posting again, and finds it.
    config = make_config(SLACK_TIMEOUT=1)
    sim.fail("chat.postMessage", delay=1.5)

    result = run_standup(config, "prompt", cwd=workdir)

    timing("prompt after a 1 s timeout", result.seconds)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert len(sim.calls("chat.postMessage")) == 1  # a post that may have landed is not retried blindly
    [landed] = sim.messages(CHANNEL)
    assert result.seconds < GIVE_UP_WITHIN, result
    runs = stage_runs(db, today)
    assert (runs["prompt"]["status"], runs["prompt"]["attempts"]) == ("done", 1)
    assert_consistent(db, today, prompt_ts=landed["ts"])

def test_a_reminder_that_failed_for_one_member_is_retried_for_that_member_only(
    make_config: Callable[..., Path], workdir: Path, db: Path, today: dt.date, sim: SlackSimulator,
    timing: Callable[[str, float], None],
) -> None:
    sim.add_user(ERIN, "erin", display_name="Erin")
    config = make_config(MEMBERS=[ALICE, BOB, ERIN])
    assert run_standup(config, "prompt", cwd=workdir).returncode == 0
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(ALICE, CHANNEL, "Today: done", thread_ts=prompt["ts"])
    # Bob's reminder fails for good; erin's goes through.
    sim.fail("chat.postMessage", error="fatal_error", channel=BOB)

    first = run_standup(config, "remind", cwd=workdir)

    timing("remind with one member failing", first.seconds)
    assert one_error_line(first) == (
        f"error: could not remind 1 member(s) ({BOB}): Slack API chat.postMessage failed: fatal_error; "
        "the next `standup.py remind` retries only them"
    )
    assert sim.dms_to(BOB) == [] and len(sim.dms_to(ERIN)) == 1
    assert reminders(db, today) == {BOB: "failed", ERIN: "sent"}
    assert stage_runs(db, today)["remind"]["status"] == "failed"
    assert_consistent(db, today, prompt_ts=prompt["ts"])

    second = run_standup(config, "remind", cwd=workdir)

    assert (second.returncode, second.stderr) == (0, ""), second
    assert second.out_lines == [f"reminded 1 member(s) for {today}; 1 of 3 had reported"]
    assert len(sim.dms_to(BOB)) == 1 and len(sim.dms_to(ERIN)) == 1 and sim.dms_to(ALICE) == []
    assert reminders(db, today) == {BOB: "sent", ERIN: "sent"}
    assert stage_runs(db, today)["remind"]["status"] == "done"
    assert_consistent(db, today, prompt_ts=prompt["ts"])


def test_run_still_sends_the_digest_when_a_reminder_fails(
    make_config: Callable[..., Path], workdir: Path, db: Path, zone: str, today: dt.date,
    sim: SlackSimulator, smtp: MailSink,
) -> None:
    # Slack refuses alice's reminder (her account was deactivated), for good.
    now = local_now(zone).replace(second=0, microsecond=0)
    config = make_config(PROMPT_TIME=hhmm(now - 3 * MINUTE), REMIND_TIME=hhmm(now - 2 * MINUTE),
                         DIGEST_TIME=hhmm(now - MINUTE))
    sim.fail("chat.postMessage", error="user_disabled", channel=ALICE)

    result = run_standup(config, "run", cwd=workdir)

    assert len(sim.dms_to(BOB)) == 1  # the others are still reminded
    assert len(smtp.messages) == 1, f"no digest: {result.stderr.strip()}"  # the team still gets it
    assert stage_runs(db, today)["digest"]["status"] == "done"
    assert one_error_line(result).startswith(f"error: could not remind 1 member(s) ({ALICE}): ")
    assert reminders(db, today) == {ALICE: "failed", BOB: "sent"}


def test_a_reminder_refused_for_a_deactivated_member_names_the_member(
    config: Path, workdir: Path, sim: SlackSimulator,
) -> None:
    assert run_standup(config, "prompt", cwd=workdir).returncode == 0
    sim.fail("chat.postMessage", error="user_disabled", channel=ALICE)  # her reminder, posted to her ID

    result = run_standup(config, "remind", cwd=workdir)

    line = one_error_line(result)
    assert line.startswith(f"error: could not remind 1 member(s) ({ALICE}): "), line
    assert f"member {ALICE} is deactivated (user_disabled): remove it from MEMBERS" in line, line

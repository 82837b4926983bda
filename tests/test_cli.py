"""`standup.py`'s command line, run in-process: exit codes, stdout and stderr lines, the log file.

Each test writes a real config.py (secrets in a `.env` beside it) that points at the Slack
simulator and a real SMTP server that requires a login, then calls `cli.main` with a fixed
clock and captured output streams.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from standup_bot import cli
from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.store import Store

from .conftest import ALICE, BOB, CHANNEL, DAVE, DAY, ROBOT, TEAM_TZ, TOKEN, FakeClock

SMTP_USER = "standup-mailer"
SMTP_PASSWORD = "smtp-pass-9f3c1e77"  # distinctive, so a leak is easy to spot
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ \S+: ")


@dataclass(frozen=True)
class FromEnv:
    """A config value read from the environment (so from `.env`), as config_EDIT_ME.py does."""

    name: str

    def __repr__(self) -> str:
        return f"os.environ.get({self.name!r}, '')"


def write_config(directory: Path, settings: dict[str, Any], env: dict[str, str]) -> Path:
    """Write config.py from a dict (FromEnv values read `.env`) and `.env` beside it, mode 600."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["import os", ""] + [f"{name} = {value!r}" for name, value in settings.items()]
    config = directory / "config.py"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dotenv = directory / ".env"
    dotenv.write_text("".join(f"{name}={value}\n" for name, value in env.items()), encoding="utf-8")
    for path in (config, dotenv):
        path.chmod(0o600)
    return config


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    """What one `standup.py` run returned and printed."""

    code: int
    out: str
    err: str

    @property
    def out_lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()




@pytest.fixture
def mail_server() -> Iterator[MailSink]:
    """Return a real SMTP server on loopback that requires the test login."""
    sink = MailSink(require_auth=(SMTP_USER, SMTP_PASSWORD))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def config_values(tmp_path: Path, sim: SlackSimulator, mail_server: MailSink) -> dict[str, Any]:
    """Return valid settings for the simulator and the SMTP server; secrets come from `.env`."""
    return {
        "SLACK_BOT_TOKEN": FromEnv("SLACK_BOT_TOKEN"),
        "SLACK_API_URL": sim.base_url,
        "STANDUP_CHANNEL": CHANNEL,
        "MEMBERS": [ALICE, BOB],
        "TIMEZONE": TEAM_TZ,
        "SMTP_HOST": mail_server.host,
        "SMTP_PORT": mail_server.port,
        "SMTP_SECURITY": "none",
        "SMTP_USER": SMTP_USER,
        "SMTP_PASSWORD": FromEnv("SMTP_PASSWORD"),
        "MAIL_FROM": "standup@example.com",
        "DIGEST_RECIPIENTS": ["lead@example.com", "cto@example.com"],
        "DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def secrets_env() -> dict[str, str]:
    """Return the `.env` contents: the real secrets."""
    return {"SLACK_BOT_TOKEN": TOKEN, "SMTP_PASSWORD": SMTP_PASSWORD}


@pytest.fixture
def config(tmp_path: Path, config_values: dict[str, Any], secrets_env: dict[str, str]) -> Path:
    """Write the valid config and its `.env`; return the config's path."""
    return write_config(tmp_path / "conf", config_values, secrets_env)


@pytest.fixture
def standup(clock: FakeClock) -> Callable[..., Result]:
    """Return a function that runs `standup.py ARGS` in-process on the test clock."""

    def run(*args: str, environ: dict[str, str] | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        before = set(os.environ)
        try:
            code = cli.main(
                list(args), environ=environ or {}, now=clock.now, sleep=clock.sleep, stdout=out, stderr=err
            )
        finally:
            # python-dotenv loads .env into os.environ; the next run must start like a new
            # process, without it.
            for name in set(os.environ) - before:
                del os.environ[name]
        return Result(code, out.getvalue(), err.getvalue())

    return run


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "data" / "standup.log").read_text(encoding="utf-8")


def assert_one_error_line(result: Result, code: int, starts: str = "error: ") -> str:
    """Check the exit code and that stderr is exactly one `error:` line; return it."""
    assert result.code == code, result
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith(starts), result.err
    assert "Traceback" not in result.err
    return result.err_lines[0]


# -- the stages --------------------------------------------------------------------------
def test_prompt_remind_and_digest_exit_0_and_say_what_they_did(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator, mail_server: MailSink
) -> None:
    prompted = standup("prompt", "--config", str(config))
    assert (prompted.code, prompted.out_lines, prompted.err) == (0, [f"prompt for {DAY} posted in {CHANNEL}"], "")
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(ALICE, CHANNEL, "Yesterday: tests\nToday: more tests\nBlockers: none", thread_ts=prompt["ts"])

    reminded = standup("remind", "--config", str(config))
    assert (reminded.code, reminded.err) == (0, "")
    assert reminded.out_lines == [f"reminded 1 member(s) for {DAY}; 1 of 2 had reported"]
    assert len(sim.dms_to(BOB)) == 1 and sim.dms_to(ALICE) == []

    digested = standup("digest", "--config", str(config))
    assert (digested.code, digested.err) == (0, "")
    assert digested.out_lines == [f"digest for {DAY} sent to 2 recipient(s): 1 report(s), 1 not reported"]
    [mail] = mail_server.wait_for(1)
    assert DAY.isoformat() in mail.message["Subject"]


def test_a_second_prompt_says_it_was_already_done_and_posts_nothing(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator
) -> None:
    assert standup("prompt", "--config", str(config)).code == 0

    again = standup("prompt", "--config", str(config))

    assert (again.code, again.err) == (0, "")
    assert again.out_lines == [f"prompt for {DAY} already done; nothing to do (use --force to do it again)"]
    assert len(sim.messages(CHANNEL)) == 1


def test_force_posts_the_prompt_again(standup: Callable[..., Result], config: Path, sim: SlackSimulator) -> None:
    assert standup("prompt", "--config", str(config)).code == 0

    forced = standup("prompt", "--config", str(config), "--force")

    assert (forced.code, forced.out_lines) == (0, [f"prompt for {DAY} posted in {CHANNEL}"])
    assert len(sim.messages(CHANNEL)) == 2


def test_date_names_the_standup_date_a_stage_acts_on(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator, tmp_path: Path
) -> None:
    result = standup("prompt", "--config", str(config), "--date", "2026-12-01")

    assert (result.code, result.out_lines) == (0, [f"prompt for 2026-12-01 posted in {CHANNEL}"])
    [prompt] = sim.messages(CHANNEL)
    assert "2026-12-01" in prompt["text"]
    store = Store.open(tmp_path / "data")
    try:
        assert store.prompt_ts(CHANNEL, dt.date(2026, 12, 1)) == prompt["ts"]
        assert store.prompt_ts(CHANNEL, DAY) is None
    finally:
        store.close()


# -- finding the config ------------------------------------------------------------------
def test_standup_config_environment_variable_locates_the_config(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator
) -> None:
    result = standup("prompt", environ={"STANDUP_CONFIG": str(config)})

    assert (result.code, result.err) == (0, "")
    assert len(sim.messages(CHANNEL)) == 1


def test_config_option_wins_over_the_environment_variable(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator, tmp_path: Path
) -> None:
    result = standup("prompt", "--config", str(config), environ={"STANDUP_CONFIG": str(tmp_path / "nope.py")})

    assert (result.code, result.err) == (0, "")
    assert len(sim.messages(CHANNEL)) == 1


def test_secrets_are_read_from_the_dotenv_beside_the_config(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator
) -> None:
    (config.parent / ".env").unlink()

    result = standup("prompt", "--config", str(config))

    line = assert_one_error_line(result, 2)
    assert line.startswith("error: SLACK_BOT_TOKEN: ")
    assert sim.calls("chat.postMessage") == []


# -- configuration and usage errors: exit 2 ----------------------------------------------
def test_each_bad_setting_gets_its_own_error_line_and_exit_2(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], sim: SlackSimulator,
) -> None:
    bad = {
        **config_values,
        "STANDUP_CHANNEL": "#team-standup",
        "TIMEZONE": "Mars/Olympus_Mons",
        "SMTP_PORT": "smtp",
        "DIGEST_RECIPIENTS": "lead@example.com",
    }
    config = write_config(tmp_path / "bad", bad, secrets_env)

    result = standup("prompt", "--config", str(config))

    assert (result.code, result.out) == (2, "")
    assert [line.split(":")[1].strip() for line in result.err_lines] == [
        "STANDUP_CHANNEL", "TIMEZONE", "SMTP_PORT", "DIGEST_RECIPIENTS",
    ]
    assert all(line.startswith("error: ") for line in result.err_lines)
    assert "Traceback" not in result.err
    assert sim.requests == []


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["prompt", "--config", "{tmp}/missing/config.py"], "error: config file "),
        (["prompt", "--config", "{config}", "--date", "2026-02-30"], "error: --date: '2026-02-30' is not a date"),
        (["frobnicate", "--config", "{config}"], "error: unknown command 'frobnicate'"),
        (["prompt", "--config", "{config}", "--frobnicate"], "error: "),
    ],
    ids=["missing-config", "bad-date", "unknown-command", "unknown-option"],
)
def test_usage_and_config_file_errors_exit_2_with_one_line(
    standup: Callable[..., Result], config: Path, tmp_path: Path, sim: SlackSimulator,
    args: list[str], starts: str,
) -> None:
    argv = [a.format(tmp=tmp_path, config=config) for a in args]

    result = standup(*argv)

    assert_one_error_line(result, 2, starts)
    assert result.out == ""
    assert sim.requests == []


# -- runtime failures: exit 1 ------------------------------------------------------------
def test_remind_without_a_prompt_exits_1_saying_so(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator
) -> None:
    result = standup("remind", "--config", str(config))

    line = assert_one_error_line(result, 1)
    assert line == (
        f"error: no prompt was posted for {DAY} in {CHANNEL}, so there is nothing to remind; "
        "run `standup.py prompt` first"
    )
    assert sim.dms_to(BOB) == []


def test_a_rejected_slack_token_exits_1_naming_the_setting(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any], sim: SlackSimulator,
) -> None:
    wrong = "xoxb-wrong-token-5d1a"
    config = write_config(tmp_path / "c", config_values, {"SLACK_BOT_TOKEN": wrong, "SMTP_PASSWORD": SMTP_PASSWORD})

    result = standup("prompt", "--config", str(config))

    line = assert_one_error_line(result, 1)
    assert "SLACK_BOT_TOKEN" in line and "invalid_auth" in line
    assert wrong not in result.err + result.out + log_text(tmp_path)
    assert sim.messages(CHANNEL) == []


def test_an_unreachable_slack_exits_1_after_bounded_retries(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # slack_sdk's retry handlers sleep with time.sleep; record those waits instead of waiting.
    import slack_sdk.http_retry.builtin_handlers as builtin_handlers
    import slack_sdk.http_retry.handler as handler

    waits: list[float] = []
    fake_time = SimpleNamespace(sleep=waits.append)
    monkeypatch.setattr(handler, "time", fake_time)
    monkeypatch.setattr(builtin_handlers, "time", fake_time)
    closed = f"http://127.0.0.1:{free_port()}/api/"
    config = write_config(tmp_path / "c", {**config_values, "SLACK_API_URL": closed}, secrets_env)

    result = standup("prompt", "--config", str(config))

    line = assert_one_error_line(result, 1)
    assert line.startswith(f"error: cannot reach Slack at {closed}")
    assert 1 <= len(waits) <= 10  # retried, but not forever


@pytest.mark.parametrize("failure", ["server down", "recipients refused"])
def test_digest_exits_1_when_the_mail_server_fails_and_the_next_run_sends_it(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], mail_server: MailSink, failure: str,
) -> None:
    good = write_config(tmp_path / "good", config_values, secrets_env)
    assert standup("prompt", "--config", str(good)).code == 0
    if failure == "server down":
        failing = {**config_values, "SMTP_PORT": free_port()}
        refusing = None
    else:
        refusing = MailSink(require_auth=(SMTP_USER, SMTP_PASSWORD),
                            refuse_recipients=config_values["DIGEST_RECIPIENTS"]).start()
        failing = {**config_values, "SMTP_PORT": refusing.port}
    try:
        bad = write_config(tmp_path / "bad", failing, secrets_env)
        result = standup("digest", "--config", str(bad))
    finally:
        if refusing is not None:
            refusing.stop()

    assert_one_error_line(result, 1)
    assert SMTP_PASSWORD not in result.err + log_text(tmp_path)
    retried = standup("digest", "--config", str(good))
    assert (retried.code, retried.err) == (0, "")
    assert len(mail_server.wait_for(1)) == 1


# -- logging and secrets -----------------------------------------------------------------
def test_log_file_is_private_and_has_timestamps(standup: Callable[..., Result], config: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert not data_dir.exists()

    assert standup("prompt", "--config", str(config)).code == 0

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    log_file = data_dir / "standup.log"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    assert any("prompt for 2026-11-26 posted" in line for line in lines)


def test_log_lines_go_to_stderr_only_with_verbose(standup: Callable[..., Result], config: Path) -> None:
    quiet = standup("prompt", "--config", str(config))
    verbose = standup("prompt", "--config", str(config), "--verbose", "--force")

    assert quiet.err == ""
    assert verbose.code == 0
    assert verbose.err_lines and all(LOG_LINE.match(line) for line in verbose.err_lines), verbose.err
    assert any("prompt for 2026-11-26 posted" in line for line in verbose.err_lines)


def test_secrets_never_appear_in_output_or_log(
    standup: Callable[..., Result], config: Path, tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], sim: SlackSimulator,
) -> None:
    # Fail on purpose so error paths run too: a wrong SMTP password, a Slack error.
    wrong_password = "wrong-smtp-pass-0b7e"
    bad_mail = write_config(tmp_path / "bad-mail", config_values, {**secrets_env, "SMTP_PASSWORD": wrong_password})
    results = [
        standup("prompt", "--config", str(config), "--verbose"),
        standup("check", "--config", str(config), "--verbose"),
        standup("digest", "--config", str(bad_mail), "--verbose"),
        standup("remind", "--config", str(config), "--verbose", "--date", "2026-11-27"),
    ]
    sim.fail("chat.postMessage", error="invalid_auth")
    results.append(standup("prompt", "--config", str(config), "--verbose", "--force"))

    assert [r.code for r in results] == [0, 0, 1, 1, 1]
    everything = "".join(r.out + r.err for r in results) + log_text(tmp_path)
    for secret in (TOKEN, SMTP_PASSWORD, wrong_password):
        assert secret not in everything


def test_a_secret_echoed_back_in_an_error_is_redacted_everywhere(
    standup: Callable[..., Result], config: Path, tmp_path: Path, sim: SlackSimulator
) -> None:
    # A misbehaving proxy in SLACK_API_URL could echo the request, token included.
    sim.fail("chat.postMessage", error=f"bad_request token={TOKEN}")

    result = standup("prompt", "--config", str(config), "--verbose")

    assert result.code == 1
    assert [line for line in result.err_lines if line.startswith("error:")] == [
        "error: Slack API chat.postMessage failed: bad_request token=[redacted]"
    ]
    assert TOKEN not in result.out + result.err + log_text(tmp_path)
    assert "token=[redacted]" in log_text(tmp_path)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_an_unexpected_error_is_one_line_and_never_shows_a_secret(
    standup: Callable[..., Result], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    verbose: bool,
) -> None:
    def broken_prompt(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"a bug that prints the token {TOKEN}")

    monkeypatch.setattr("standup_bot.stages.prompt", broken_prompt)

    result = standup("prompt", "--config", str(config), *(["--verbose"] if verbose else []))

    assert result.code == 1
    errors = [line for line in result.err_lines if line.startswith("error:")]
    assert errors == ["error: unexpected RuntimeError: a bug that prints the token [redacted]"]
    assert ("Traceback" in result.err) is verbose
    assert TOKEN not in result.out + result.err + log_text(tmp_path)
    assert "Traceback" in log_text(tmp_path)  # the log file keeps the details


# -- check -------------------------------------------------------------------------------
def test_check_prints_one_line_per_check_and_exits_0_when_all_pass(
    standup: Callable[..., Result], config: Path
) -> None:
    result = standup("check", "--config", str(config))

    assert (result.code, result.err) == (0, ""), result
    first, dates, *checks, summary = result.out_lines
    assert summary == "all checks passed"
    assert dates == "next standups: 2026-11-26 2026-11-27 2026-11-30 2026-12-01 2026-12-02"
    assert all(line.startswith("ok ") for line in [first, *checks]), checks
    topics = [line.split(None, 1)[1].split(":")[0] for line in [first, *checks]]
    assert {"config", "Slack", "channel"} <= set(topics), topics
    assert any("mail server" in line for line in checks)


def test_check_fails_when_the_bot_is_not_in_the_channel(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], sim: SlackSimulator,
) -> None:
    sim.add_channel("C0NOBOT", "no-bot", [ALICE, BOB], bot_is_member=False)
    config = write_config(tmp_path / "c", {**config_values, "STANDUP_CHANNEL": "C0NOBOT"}, secrets_env)

    result = standup("check", "--config", str(config))

    assert result.code == 1
    [failed] = [line for line in result.out_lines if line.startswith("FAIL")]
    assert failed.startswith("FAIL channel: the bot is not a member of #no-bot (C0NOBOT)")
    assert "/invite" in failed


def test_check_fails_for_members_who_can_never_report(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str],
) -> None:
    # DAVE is deactivated, ROBOT a bot: Slack may even accept a DM to a deactivated account,
    # so a reminder would seem to go out every day for someone who will never answer.
    config = write_config(tmp_path / "c", {**config_values, "MEMBERS": [ALICE, DAVE, ROBOT]}, secrets_env)

    result = standup("check", "--config", str(config))

    assert result.code == 1
    [failed] = [line for line in result.out_lines if line.startswith("FAIL")]
    assert failed == f"FAIL members: deactivated or bots, they will never report; remove them from MEMBERS: {DAVE}, {ROBOT}"


def test_check_reads_a_large_channel_with_one_users_list_pass(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any],
    secrets_env: dict[str, str], sim: SlackSimulator,
) -> None:
    team = [f"U0TEAM{i:03d}" for i in range(40)]
    for user in team:
        sim.add_user(user, user.lower(), display_name=f"Member {user[-3:]}")
    sim.add_channel("C0BIGTEAM", "big-team", team)
    values = {key: value for key, value in config_values.items() if key != "MEMBERS"}
    config = write_config(tmp_path / "c", {**values, "STANDUP_CHANNEL": "C0BIGTEAM"}, secrets_env)

    result = standup("check", "--config", str(config))

    assert result.code == 0, result
    assert "ok   members: 40 expected from the channel's human members: Member 000, Member 001" in result.out
    assert sim.calls("users.info") == []
    assert 1 <= len(sim.calls("users.list")) <= 2


def test_check_fails_when_the_mail_server_is_down(
    standup: Callable[..., Result], tmp_path: Path, config_values: dict[str, Any], secrets_env: dict[str, str],
) -> None:
    config = write_config(tmp_path / "c", {**config_values, "SMTP_PORT": free_port()}, secrets_env)

    result = standup("check", "--config", str(config))

    assert result.code == 1
    [failed] = [line for line in result.out_lines if line.startswith("FAIL")]
    assert failed.startswith("FAIL mail: ")


@pytest.mark.parametrize("name", ["config.py", ".env"])
@pytest.mark.parametrize("mode", [0o640, 0o604], ids=["group-readable", "world-readable"])
def test_check_warns_when_a_secret_file_is_readable_by_others(
    standup: Callable[..., Result], config: Path, name: str, mode: int
) -> None:
    path = config.parent / name
    path.chmod(mode)

    result = standup("check", "--config", str(config))

    warnings = [line for line in result.out_lines if line.startswith("warn")]
    assert len(warnings) == 1 and str(path) in warnings[0] and "chmod 600" in warnings[0], result.out
    assert result.code == 0


def test_check_does_not_warn_about_private_files(standup: Callable[..., Result], config: Path) -> None:
    result = standup("check", "--config", str(config))

    assert not [line for line in result.out_lines if line.startswith("warn")]


# -- addendum and checks -------------------------------------------------------------------
def test_addendum_before_the_digest_exits_0_saying_there_is_nothing_to_add_to(
    standup: Callable[..., Result], config: Path, mail_server: MailSink
) -> None:
    assert standup("prompt", "--config", str(config)).code == 0

    result = standup("addendum", "--config", str(config))

    assert (result.code, result.err) == (0, "")
    assert result.out_lines == [f"no digest was sent for {DAY} yet: an addendum only follows the digest; nothing to do"]
    assert mail_server.messages == []


def test_addendum_exits_1_when_the_mail_server_refuses_and_sends_it_next_time(
    standup: Callable[..., Result], config: Path, sim: SlackSimulator, mail_server: MailSink, clock: FakeClock
) -> None:
    assert standup("prompt", "--config", str(config)).code == 0
    assert standup("digest", "--config", str(config)).code == 0
    [prompt] = sim.messages(CHANNEL)
    sim.user_posts(BOB, CHANNEL, "late, sorry", thread_ts=prompt["ts"])
    clock.advance(hours=2)
    mail_server.stop()

    failed = standup("addendum", "--config", str(config))

    assert_one_error_line(failed, 1, "error: cannot reach mail server")
    mail_server.start()
    sent = standup("addendum", "--config", str(config))
    assert (sent.code, sent.err) == (0, "")
    assert sent.out_lines == [f"addendum 1 for {DAY} sent to 2 recipient(s): 1 late since the digest"]
    assert "addendum" in mail_server.wait_for(2)[1].message["Subject"]


def test_checks_lists_the_open_findings_and_checks_handle_marks_one(
    standup: Callable[..., Result], config: Path, tmp_path: Path, clock: FakeClock
) -> None:
    assert standup("checks", "--config", str(config)).out_lines == [f"no open findings for {CHANNEL}"]
    store = Store.open(tmp_path / "data")
    try:
        missed = store.raise_finding(CHANNEL, "missed_standups", BOB, DAY, "Bob Brown (UBOB) missed 3",
                                     now=clock.now(), repeat=dt.timedelta(days=7))
        silent = store.raise_finding(CHANNEL, "nobody_answered", "", DAY, "nobody answered",
                                     now=clock.now(), repeat=dt.timedelta(days=7))
    finally:
        store.close()
    assert missed is not None and silent is not None

    listed = standup("checks", "--config", str(config))

    assert (listed.code, listed.err) == (0, "")
    assert listed.out_lines == [
        f"2 open finding(s) for {CHANNEL} (handle one: standup.py checks handle ID):",
        f"  #{missed.id} missed_standups (2026-11-26, raised 2026-11-26 10:00 CET): Bob Brown (UBOB) missed 3 "
        "[told: nobody yet]",
        f"  #{silent.id} nobody_answered (2026-11-26, raised 2026-11-26 10:00 CET): nobody answered [told: nobody yet]",
    ]

    handled = standup("checks", "handle", str(missed.id), "--config", str(config))

    assert (handled.code, handled.out_lines) == (0, [f"finding #{missed.id} marked handled: Bob Brown (UBOB) missed 3"])
    assert standup("checks", "--config", str(config)).out_lines[1].startswith(f"  #{silent.id} nobody_answered")
    again = standup("checks", "handle", str(missed.id), "--config", str(config))
    assert again.out_lines == [
        f"finding #{missed.id} was already handled (command line, 2026-11-26 10:00 CET); nothing to do"
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["handle", "99"], f"error: no finding #99 for {CHANNEL}; `standup.py checks` lists the open ones"),
        (["handle"], "error: unexpected argument(s) after checks: handle; usage: standup.py checks  |  "
                     "standup.py checks handle ID"),
        (["close", "1"], "error: unexpected argument(s) after checks: close 1; usage: standup.py checks  |  "
                         "standup.py checks handle ID"),
    ],
)
def test_checks_with_a_bad_id_or_arguments_exits_2(
    standup: Callable[..., Result], config: Path, arguments: list[str], message: str
) -> None:
    result = standup("checks", *arguments, "--config", str(config))

    assert assert_one_error_line(result, 2) == message

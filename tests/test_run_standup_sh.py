"""`run_standup.sh` run the way cron runs it: bare environment, another working directory.

cron gives a job little more than HOME and PATH=/usr/bin:/bin, no virtualenv, and its
own working directory. The wrapper uses the repo's existing .venv (built by run_tests.sh);
its first run here may call pip, which is a no-op without network when requirements.txt
is already installed.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.settings import PROJECT_DIR
from standup_bot.slack_simulator import SlackSimulator

from .conftest import CHANNEL, TOKEN
from .test_processes import standup_config

WRAPPER = PROJECT_DIR / "run_standup.sh"
CRON_PATH = "/usr/bin:/bin"


def _python3_for_cron() -> str | None:
    """Return a python3 >= 3.11 that the wrapper finds on cron's PATH (it adds /usr/local/bin)."""
    for directory in ("/usr/local/bin", *CRON_PATH.split(":")):
        candidate = Path(directory, "python3")
        if not candidate.exists():
            continue
        check = subprocess.run(
            [str(candidate), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True, timeout=30,
        )
        return str(candidate) if check.returncode == 0 else None
    return None


pytestmark = [
    pytest.mark.skipif(
        _python3_for_cron() is None,
        reason="no python3 >= 3.11 in /usr/local/bin, /usr/bin or /bin, where the wrapper looks under cron",
    ),
    pytest.mark.skipif(
        not (PROJECT_DIR / ".venv" / "bin" / "python").exists(),
        reason="the repo's .venv is missing (./run_tests.sh builds it); the wrapper would download packages",
    ),
    pytest.mark.skipif(shutil.which("sh", path=CRON_PATH) is None, reason="no /bin/sh"),
]


@pytest.fixture
def config(tmp_path: Path, sim: SlackSimulator, smtp: MailSink) -> Path:
    """Write a valid config for the simulator and the SMTP sink."""
    return standup_config(tmp_path, sim, smtp)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    """Return where the wrapper appends its output (STANDUP_LOG); its directory does not exist yet."""
    return tmp_path / "logs" / "run_standup.log"


def cron_command(tmp_path: Path, log_file: Path, *args: str) -> list[str]:
    """Return the wrapper's command line as cron would run it: `env -i HOME=… PATH=/usr/bin:/bin`."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return [
        "/usr/bin/env", "-i", f"HOME={home}", f"PATH={CRON_PATH}", f"STANDUP_LOG={log_file}",
        "/bin/sh", str(WRAPPER), *args,
    ]


def run_like_cron(tmp_path: Path, log_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the wrapper from tmp_path in cron's bare environment and wait for it."""
    return subprocess.run(
        cron_command(tmp_path, log_file, *args), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )


def test_wrapper_runs_a_stage_from_cron_and_passes_exit_0_through(
    tmp_path: Path, config: Path, log_file: Path, sim: SlackSimulator
) -> None:
    result = run_like_cron(tmp_path, log_file, "prompt", "--config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(sim.messages(CHANNEL)) == 1
    log = log_file.read_text(encoding="utf-8")
    assert re.search(rf"^prompt for \d{{4}}-\d\d-\d\d posted in {CHANNEL}$", log, re.MULTILINE)
    assert result.stdout == "" and result.stderr == ""  # so cron has nothing to mail


def test_wrapper_appends_everything_to_its_log_file(
    tmp_path: Path, config: Path, log_file: Path, sim: SlackSimulator
) -> None:
    first = run_like_cron(tmp_path, log_file, "prompt", "--config", str(config))
    second = run_like_cron(tmp_path, log_file, "prompt", "--config", str(config))

    assert (first.returncode, second.returncode) == (0, 0)
    log = log_file.read_text(encoding="utf-8")
    assert len(re.findall(r"^=== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ run_standup.sh prompt --config ", log, re.M)) == 2
    posted = log.index(" posted in ")
    assert log.index("already done; nothing to do", posted) > posted
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert TOKEN not in log


def test_wrapper_passes_exit_2_through_for_a_bad_config(
    tmp_path: Path, config: Path, log_file: Path, sim: SlackSimulator
) -> None:
    config.write_text(config.read_text(encoding="utf-8") + "STANDUP_CHANNEL = '#general'\n", encoding="utf-8")

    result = run_like_cron(tmp_path, log_file, "prompt", "--config", str(config))

    assert result.returncode == 2, result.stdout + result.stderr
    [error] = [line for line in log_file.read_text(encoding="utf-8").splitlines() if line.startswith("error:")]
    assert error.startswith("error: STANDUP_CHANNEL: '#general' is not a channel ID")
    assert sim.requests == []


def test_two_overlapping_wrapper_runs_post_the_prompt_once(
    tmp_path: Path, config: Path, log_file: Path, sim: SlackSimulator
) -> None:
    # Slack answers the first post slowly, so the second run arrives while the first is
    # still posting, whichever of them gets there first.
    sim.fail("chat.postMessage", delay=1.0)
    command = cron_command(tmp_path, log_file, "prompt", "--config", str(config))
    runs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(sim.messages(CHANNEL)) == 1
    assert len(sim.calls("chat.postMessage")) == 1
    log = log_file.read_text(encoding="utf-8")
    assert log.count(" posted in ") == 1, log
    assert log.count("nothing to do") == 1, log

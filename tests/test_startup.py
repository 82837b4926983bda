"""What `standup.py` loads to start: each command imports only what it uses.

A cron-started command spends most of its start-up importing (docs/benchmarks.md, section
4): jinja2 and the renderer, smtplib and the mail builder, the answer splitter are the
digest's alone. These tests hold the list of modules a command loads, never a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from standup_bot.mail_sink import MailSink
from standup_bot.settings import PROJECT_DIR
from standup_bot.slack_simulator import SlackSimulator

from .conftest import ALICE, BOB, CHANNEL, DAY
from .test_processes import clean_env, standup_config

# Runs the CLI in-process as standup.py does, then prints its exit code and every module loaded.
PROBE = """
import json, sys
from standup_bot.cli import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
DIGEST_ONLY = ("jinja2", "smtplib", "standup_bot.render", "standup_bot.mail", "standup_bot.answers",
               "standup_bot.addendum")


def _modules_loaded_by(config: Path, *args: str, cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["--config", str(config), *args])],
        cwd=cwd, env=clean_env(PYTHONPATH=str(PROJECT_DIR)), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, done.stdout
    return set(result["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


@pytest.fixture
def config(tmp_path: Path, sim: SlackSimulator, smtp: MailSink) -> Path:
    return standup_config(tmp_path, sim, smtp)


def test_prompt_remind_and_status_load_neither_the_renderer_nor_mail_nor_the_answer_splitter(
    config: Path, tmp_path: Path, sim: SlackSimulator
) -> None:
    date = ["--date", DAY.isoformat()]
    loaded = {command: _modules_loaded_by(config, command, *date, cwd=tmp_path)
              for command in ("prompt", "remind", "status")}

    assert len(sim.messages(CHANNEL)) == 1 and len(sim.dms_to(ALICE)) == len(sim.dms_to(BOB)) == 1  # they ran
    for command, modules in loaded.items():
        assert "standup_bot.stages" in modules, command
        assert _loaded(modules, DIGEST_ONLY) == [], command


def test_check_loads_mail_to_try_the_server_but_not_the_renderer(config: Path, tmp_path: Path) -> None:
    modules = _modules_loaded_by(config, "check", cwd=tmp_path)

    assert "smtplib" in modules
    assert _loaded(modules, ("jinja2", "standup_bot.render", "standup_bot.answers", "standup_bot.addendum")) == []


def test_the_digest_loads_what_the_others_leave_out(config: Path, tmp_path: Path, smtp: MailSink) -> None:
    # The probe's control: the modules the tests above look for are the digest's.
    date = ["--date", DAY.isoformat()]
    _modules_loaded_by(config, "prompt", *date, cwd=tmp_path)

    modules = _modules_loaded_by(config, "digest", *date, cwd=tmp_path)

    assert len(smtp.wait_for(1)) == 1
    assert _loaded(modules, DIGEST_ONLY) == list(DIGEST_ONLY)  # addendum: it records what the digest showed


def test_stages_trust_cached_names_as_long_as_blockers_do() -> None:
    # stages keeps its own copy so that importing it does not import blockers.
    from standup_bot import blockers, stages

    assert stages.USER_CACHE_AGE == blockers.USER_CACHE_AGE

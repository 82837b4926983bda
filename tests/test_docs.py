"""The docs keep up with the code: every command, setting and Slack scope is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from standup_bot.cli import COMMANDS
from standup_bot.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEMPLATE = (ROOT / "config_EDIT_ME.py").read_text(encoding="utf-8")
MANIFEST = (ROOT / "slack_app_manifest.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_section(command):
    headings = [line for line in README.splitlines() if line.startswith("### ")]
    assert any(f"`{command}`" in heading for heading in headings)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_setting_is_in_the_readme_table_and_the_template(name):
    assert re.search(rf"^\| `{name}` \|", README, re.MULTILINE), f"{name} missing from README's table"
    assert re.search(rf"^(# )?{name}\b.*=", TEMPLATE, re.MULTILINE), f"{name} missing from config_EDIT_ME.py"


def test_the_quick_start_is_two_commands_and_ci_runs_the_second():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./run_standup.sh demo", "./run_tests.sh"]
    assert "./run_tests.sh" in (ROOT / ".ci" / "run").read_text()


def test_the_manifest_asks_for_exactly_the_scopes_the_readme_explains():
    bot_scopes = re.search(r"^    bot:\n((?:\s+(?:-.*|#.*)\n)+)", MANIFEST, re.MULTILINE)
    assert bot_scopes is not None
    scopes = set(re.findall(r"^\s+- ([a-z.:]+)", bot_scopes.group(1), re.MULTILINE))
    table = README.split("| scope | why |", 1)[1].split("\n\n", 1)[0]
    first_column = [row.split("|")[1] for row in table.splitlines() if row.strip().startswith("|")]
    documented = {scope for cell in first_column for scope in re.findall(r"`([a-z.:]+)`", cell)}
    assert scopes == documented
    assert "message.channels" in MANIFEST and "message.groups" in MANIFEST


def test_the_readme_shows_the_architecture_diagram_that_exists():
    assert "(diagrams/architecture.svg)" in README
    assert (ROOT / "diagrams" / "architecture.svg").stat().st_size > 1000

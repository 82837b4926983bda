"""Settings: every bad value is reported, one line per setting, before anything runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from standup_bot.errors import ConfigError
from standup_bot.settings import load_settings, settings_from_mapping

VALID = {
    "SLACK_BOT_TOKEN": "xoxb-test-token",
    "STANDUP_CHANNEL": "C0STANDUP",
    "SMTP_HOST": "smtp.example.com",
    "MAIL_FROM": "bot@example.com",
    "DIGEST_RECIPIENTS": ["lead@example.com"],
}


def _problems(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({**VALID, **overrides})
    return caught.value.problems


def test_defaults_follow_the_contract(tmp_path: Path):
    settings = settings_from_mapping(VALID, base_dir=tmp_path)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.members == ()
    assert settings.blocker_contacts == ()
    assert len(settings.questions) == 3
    assert settings.timezone == "UTC"
    assert (settings.prompt_time, settings.remind_time, settings.digest_time) == (
        dt.time(10), dt.time(11, 30), dt.time(12))
    assert settings.workdays == ("mon", "tue", "wed", "thu", "fri")
    assert (settings.smtp_port, settings.smtp_security, settings.smtp_user) == (587, "starttls", "")
    assert settings.confirm_with_reaction is True
    assert settings.data_dir.name == "data"


def test_every_missing_required_setting_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "SLACK_BOT_TOKEN", "STANDUP_CHANNEL", "SMTP_HOST", "MAIL_FROM", "DIGEST_RECIPIENTS"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-user-token", "must be a bot token starting with xoxb-"),
        ("SLACK_BOT_TOKEN", 42, "must be a string"),
        ("SLACK_APP_TOKEN", "xoxb-wrong", "starting with xapp-"),
        ("SLACK_API_URL", "slack.com/api", "must be an http(s) URL"),
        ("STANDUP_CHANNEL", "#general", "is not a channel ID: use the ID"),
        ("STANDUP_CHANNEL", "general", "Channel ID at the bottom"),
        ("MEMBERS", "U012AB3CD", "must be a list of member IDs"),
        ("MEMBERS", ["alice"], "'alice' is not a member ID"),
        ("BLOCKER_CONTACTS", "U0LEAD", "must be a list of member IDs"),
        ("BLOCKER_CONTACTS", ["@lead"], "'@lead' is not a member ID"),
        ("QUESTIONS", [], "non-empty list"),
        ("QUESTIONS", "What?", "must be a list of strings"),
        ("TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("PROMPT_TIME", "25:00", "'25:00' is not a time of day"),
        ("DIGEST_TIME", "noon", "'noon' is not a time of day"),
        ("WORKDAYS", ["mon", "funday"], "'funday' is not a weekday"),
        ("SMTP_PORT", "smtp", "'smtp' is not a port number"),
        ("SMTP_PORT", 70000, "70000 is not a port number"),
        ("SMTP_SECURITY", "tls", "'tls' is not one of"),
        ("MAIL_FROM", "bot-at-example.com", "is not an email address"),
        ("DIGEST_RECIPIENTS", "lead@example.com", "must be a list of addresses"),
        ("DIGEST_RECIPIENTS", ["lead@example.com", "nobody"], "'nobody' is not an email address"),
        ("DIGEST_RECIPIENTS", [], "is empty"),
        ("CONFIRM_WITH_REACTION", "yes", "must be True or False"),
        ("DIGEST_RECIPENTS", ["x@example.com"], "unknown setting; did you mean DIGEST_RECIPIENTS?"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(name, value, message):
    [problem] = _problems(**{name: value})
    assert problem.startswith(f"{name}: ")
    assert message in problem
    assert "\n" not in problem


def test_stage_times_must_be_in_order():
    assert _problems(REMIND_TIME="12:30") == [
        "REMIND_TIME: must be after PROMPT_TIME and before DIGEST_TIME"]


def test_config_file_is_found_and_env_file_beside_it_is_loaded_first(tmp_path: Path, monkeypatch):
    config = tmp_path / "config.py"
    config.write_text(
        "import os\n"
        "SLACK_BOT_TOKEN = os.environ.get('SLACK_BOT_TOKEN', '')\n"
        "STANDUP_CHANNEL = 'C0STANDUP'\nSMTP_HOST = 'localhost'\n"
        "MAIL_FROM = 'bot@example.com'\nDIGEST_RECIPIENTS = ['lead@example.com']\n"
        "DATA_DIR = 'state'\n"
    )
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)

    settings = load_settings(None, {"STANDUP_CONFIG": str(config)})

    assert settings.slack_bot_token == "xoxb-from-dotenv"
    assert settings.data_dir == tmp_path / "state"
    assert "xoxb-from-dotenv" not in repr(settings)


def test_a_missing_config_file_says_how_to_create_it(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "config.py", {})
    assert caught.value.problems == [
        f"config file {tmp_path / 'config.py'} not found (copy config_EDIT_ME.py to config.py and edit it)"]


def test_a_config_file_with_a_syntax_error_is_one_line(tmp_path: Path):
    config = tmp_path / "config.py"
    config.write_text("STANDUP_CHANNEL = 'C0STANDUP\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    [problem] = caught.value.problems
    assert problem.startswith(f"config file {config}, line 1:")


def test_the_template_is_complete_and_only_needs_secrets(tmp_path: Path, monkeypatch):
    template = Path(__file__).parent.parent / "config_EDIT_ME.py"
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    settings = load_settings(template, {})
    assert settings.standup_channel.startswith("C")


def test_secrets_can_come_from_files_named_by_NAME_FILE(tmp_path: Path, monkeypatch):
    secret = tmp_path / "bot-token"
    secret.write_text("xoxb-from-a-file\n")
    config = tmp_path / "config.py"
    config.write_text(
        "import os\n"
        "SLACK_BOT_TOKEN = os.environ.get('SLACK_BOT_TOKEN', '')\n"
        f"SMTP_PASSWORD_FILE = {str(tmp_path / 'smtp-password')!r}\n"
        "STANDUP_CHANNEL = 'C0STANDUP'\nSMTP_HOST = 'localhost'\n"
        "MAIL_FROM = 'bot@example.com'\nDIGEST_RECIPIENTS = ['lead@example.com']\n"
    )
    (tmp_path / "smtp-password").write_text("hunter2")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(secret))

    settings = load_settings(config, {})

    assert settings.slack_bot_token == "xoxb-from-a-file"
    assert settings.smtp_password == "hunter2"


def test_an_unreadable_secret_file_is_a_config_error_naming_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "missing"))
    config = tmp_path / "config.py"
    config.write_text("STANDUP_CHANNEL = 'C0STANDUP'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert caught.value.problems == [
        f"SLACK_BOT_TOKEN_FILE: cannot read {tmp_path / 'missing'}: No such file or directory"]

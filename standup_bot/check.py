"""`standup.py check`: one line per check of the config, Slack, the channel, the members and mail."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable

from . import mail
from .errors import MailError, SlackError, StoreError
from .settings import Settings
from .slack import SlackApi, display_name, is_human, make_client
from .store import Store


def run_checks(
    settings: Settings, *, say: Callable[[str], None], today: dt.date, slack: SlackApi | None = None
) -> int:
    """Run every check, print `ok`/`FAIL` lines, and return 0 only if all passed."""
    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        say(f"{'ok  ' if ok else 'FAIL'} {what}")

    report(True, f"config: {settings.config_path or '(built in)'} is valid")
    say("next standups: " + " ".join(d.isoformat() for d in settings.calendar.next_dates(today)))
    _check_permissions(settings, say)
    try:
        store = Store.open(settings.data_dir)
        store.close()
        report(True, f"data: {settings.db_path} is usable")
    except StoreError as exc:
        report(False, f"data: {exc}")

    slack = slack or SlackApi(make_client(settings.slack_bot_token, settings.slack_api_url, timeout=settings.slack_timeout))
    try:
        identity = slack.auth_test()
        report(True, f"Slack: token works, bot user {identity.get('user_id')} in {identity.get('team') or identity.get('team_id')}")
        bot_user = str(identity.get("user_id") or "")
    except SlackError as exc:
        report(False, f"Slack: {exc}")
        bot_user = ""
    if bot_user:
        _check_channel(settings, slack, bot_user, report)

    try:
        report(True, mail.check_connection(_smtp(settings)))
    except MailError as exc:
        report(False, f"mail: {exc}")
    say("all checks passed" if not failures else f"{failures} check(s) failed")
    return 0 if not failures else 1


def _check_channel(
    settings: Settings, slack: SlackApi, bot_user: str, report: Callable[[bool, str], None]
) -> None:
    channel = settings.standup_channel
    try:
        info = slack.channel_info(channel)
        members = slack.channel_members(channel)
    except SlackError as exc:
        report(False, f"channel: {exc}")
        return
    name = info.get("name") or channel
    if bot_user not in members:
        report(False, f"channel: the bot is not a member of #{name} ({channel}): type /invite @standup in the channel")
        return
    report(True, f"channel: #{name} ({channel}), the bot is a member")
    try:
        expected = list(settings.members) or [
            m for m in members if m != bot_user and is_human(slack.user_info(m))
        ]
        names = [display_name(slack.user_info(m)) for m in expected[:5]]
    except SlackError as exc:
        report(False, f"members: {exc}")
        return
    source = "MEMBERS" if settings.members else "the channel's human members"
    more = ", …" if len(expected) > 5 else ""
    outside = [m for m in settings.members if m not in members]
    report(True, f"members: {len(expected)} expected from {source}: {', '.join(names)}{more}")
    if outside:
        report(False, f"members: not in the channel, so they cannot reply in its thread: {', '.join(outside)}")


def _check_permissions(settings: Settings, say: Callable[[str], None]) -> None:
    candidates = [settings.config_path, settings.config_path.parent / ".env"] if settings.config_path else []
    for path in candidates:
        if path is not None and path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            say(f"warn {path} is readable by other users; it may hold secrets: chmod 600 {path}")


def _smtp(settings: Settings) -> mail.SmtpSettings:
    from .stages import smtp_settings

    return smtp_settings(settings)

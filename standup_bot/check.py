"""`standup.py check`: one line per check of the config, Slack, the channel, the members and mail."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from typing import Any

from . import mail
from .errors import MailError, SlackError, StoreError
from .settings import Settings
from .slack import USERS_LIST_FROM, SlackApi, display_name, is_human, make_client
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
        users = _users(slack, list(settings.members) or [m for m in members if m != bot_user])
    except SlackError as exc:
        report(False, f"members: {exc}")
        return
    expected = list(settings.members) or [m for m in members if m != bot_user and is_human(users[m])]
    names = [display_name(users[m]) for m in expected[:5]]
    source = "MEMBERS" if settings.members else "the channel's human members"
    more = ", …" if len(expected) > 5 else ""
    outside = [m for m in settings.members if m not in members]
    report(True, f"members: {len(expected)} expected from {source}: {', '.join(names)}{more}")
    if outside:
        report(False, f"members: not in the channel, so they cannot reply in its thread: {', '.join(outside)}")
    # Slack may accept a DM to a deactivated account, so such a member would look reminded forever.
    never = [m for m in settings.members if not is_human(users[m])]
    if never:
        report(False, f"members: deactivated or bots, they will never report; remove them from MEMBERS: "
                      f"{', '.join(never)}")


def _users(slack: SlackApi, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Return members' Slack profiles: one users.info each for a few, one users.list pass for many."""
    wanted = set(user_ids)
    found: dict[str, dict[str, Any]] = {}
    if len(wanted) >= USERS_LIST_FROM:
        found = {user["id"]: user for user in slack.users_until_seen(wanted) if user["id"] in wanted}
    for user_id in wanted - found.keys():
        found[user_id] = slack.user_info(user_id)
    return found


def _check_permissions(settings: Settings, say: Callable[[str], None]) -> None:
    candidates = [settings.config_path, settings.config_path.parent / ".env"] if settings.config_path else []
    for path in candidates:
        if path is not None and path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            say(f"warn {path} is readable by other users; it may hold secrets: chmod 600 {path}")


def _smtp(settings: Settings) -> mail.SmtpSettings:
    from .stages import smtp_settings

    return smtp_settings(settings)

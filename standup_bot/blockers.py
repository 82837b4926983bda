"""Escalate blockers: a DM to each of BLOCKER_CONTACTS about a report's blocker, once per report.

The listener calls `escalate_report` when it records a reply or an edit; the digest stage
calls it again for every report read back from the thread, so a listener outage loses no
escalation. Each DM is claimed in the store (per report and contact) before it is sent and
recorded after, so a redelivered event or a second run sends nothing twice, an edited
blocker sends one update, and a failed DM is retried on the next occasion for that contact
only.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence

from .errors import SlackError
from .model import Report
from .settings import Settings
from .slack import SlackApi, display_name, is_human
from .store import Store
from .structured import blocker_of, question_roles, reply_holding, report_answers

log = logging.getLogger(__name__)

USER_CACHE_AGE = dt.timedelta(hours=12)
# @here, @channel and @everyone typed in a blocker must not notify the contact a second time.
_BROADCAST_RE = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>")


def _mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack treats as markup in text we send."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escalation_text(kind: str, name: str, channel: str, date: dt.date, blocker: str, link: str) -> str:
    """Return the DM about a blocker: who, where, the blocker as a quote, and a link to the reply.

    `kind` is "new" or "update"; `blocker` is Slack markup as the member typed it.
    """
    lead = "Updated blocker" if kind == "update" else "Blocker"
    quoted = "\n".join(f"&gt; {line}" if line.strip() else "&gt;" for line in blocker.strip().splitlines())
    quoted = _BROADCAST_RE.sub(r"@\1", quoted)
    return (
        f":rotating_light: {lead} from *{_mrkdwn_escape(name)}* in <#{channel}> "
        f"(standup {date.isoformat()}):\n{quoted}\n<{link}|View the reply>"
    )


def member_name(store: Store, slack: SlackApi, user: str) -> str:
    """Return a member's Slack name (cached in the store), or the ID when Slack cannot tell."""
    cached = store.cached_user(user, USER_CACHE_AGE)
    if cached is not None:
        return cached[0]
    try:
        info = slack.user_info(user)
    except SlackError as exc:
        log.warning("could not look up %s: %s", user, exc)
        return user
    store.cache_user(user, display_name(info), is_human(info), str(info.get("tz") or ""))
    return display_name(info)


def escalate_report(
    settings: Settings, store: Store, slack: SlackApi, channel: str, date: dt.date, report: Report,
    name_of: Callable[[str], str],
) -> list[str]:
    """DM each contact about the report's blocker unless they already have that text.

    Return the contacts whose DM failed (each is retried on the next occasion). A contact
    is not told about their own blocker.
    """
    contacts = [contact for contact in settings.blocker_contacts if contact != report.user]
    if not contacts or not report.replies:
        return []
    blocker = blocker_of(report_answers(report, settings.questions), question_roles(settings.questions))
    if blocker is None:
        return []
    reply = reply_holding(report, blocker)
    link: str | None = None
    name: str | None = None
    failed: list[str] = []
    for contact in contacts:
        kind = store.claim_escalation(channel, date, report.user, contact, blocker, reply.ts)
        if kind is None:
            continue
        try:
            if link is None:
                link = slack.permalink(channel, reply.ts)
            if name is None:
                name = name_of(report.user)
            slack.post_message(
                slack.open_dm(contact), escalation_text(kind, name, channel, date, blocker, link)
            )
        except SlackError as exc:
            store.finish_escalation(channel, date, report.user, contact, blocker, error=str(exc))
            log.error("could not tell %s about the blocker of %s for %s: %s", contact, report.user, date, exc)
            failed.append(contact)
            continue
        store.finish_escalation(channel, date, report.user, contact, blocker)
        log.info("told %s about the %s blocker of %s for %s", contact, kind, report.user, date)
    return failed


def escalate_reports(
    settings: Settings, store: Store, slack: SlackApi, channel: str, date: dt.date, reports: Sequence[Report],
    name_of: Callable[[str], str],
) -> list[str]:
    """Escalate every report's blocker; return "member→contact" for each DM that failed."""
    failed: list[str] = []
    for report in reports:
        for contact in escalate_report(settings, store, slack, channel, date, report, name_of):
            failed.append(f"{report.user}→{contact}")
    return failed

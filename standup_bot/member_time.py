"""Per-member time zones (PER_MEMBER_TIMEZONE): when each member is reminded, and who is not
yet due. Pure functions over aware datetimes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .settings import Settings


def team_instants(settings: Settings, date: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Return the team's prompt, reminder and digest instants on a standup date."""
    zone = settings.zone
    return tuple(  # type: ignore[return-value]
        dt.datetime.combine(date, at, tzinfo=zone)
        for at in (settings.prompt_time, settings.remind_time, settings.digest_time)
    )


def member_remind_at(settings: Settings, date: dt.date, zone: ZoneInfo) -> dt.datetime | None:
    """Return when a member in `zone` is reminded, or None when it would be after the digest.

    Their own REMIND_TIME when it falls between the team's prompt and digest; the team's
    REMIND_TIME when theirs passed before the prompt went out (someone far east); never when
    theirs comes after the digest (someone far west, whose day has barely begun).
    """
    prompt_at, team_remind_at, digest_at = team_instants(settings, date)
    own = dt.datetime.combine(date, settings.remind_time, tzinfo=zone)
    if own >= digest_at:
        return None
    if own <= prompt_at:
        return team_remind_at
    return own


def not_yet_due(settings: Settings, date: dt.date, zone: ZoneInfo) -> bool:
    """Tell whether a member's working day (their PROMPT_TIME) starts only after the digest."""
    digest_at = team_instants(settings, date)[2]
    return digest_at < dt.datetime.combine(date, settings.prompt_time, tzinfo=zone)

"""Which dates are standup dates: WORKDAYS, minus public holidays (HOLIDAYS), minus SKIP_DATES."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_holiday_region(code: str) -> tuple[str, str | None]:
    """Split "DE-BY" into ("DE", "BY"); "DE" into ("DE", None)."""
    country, _, subdivision = code.strip().upper().partition("-")
    return country, subdivision or None


def holiday_region_problem(code: str) -> str | None:
    """Return why a HOLIDAYS code is not usable, or None when it is."""
    import holidays

    country, subdivision = parse_holiday_region(code)
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f"{code!r} is not a country the holidays library knows; use an ISO code such as 'DE' or 'US'"
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) + (", …" if len(supported[country]) > 12 else "")
        return f"{code!r}: {country} has no subdivision {subdivision!r} (known: {known})"
    return None


@functools.lru_cache(maxsize=8)
def _holidays(code: str) -> Any:
    import holidays

    country, subdivision = parse_holiday_region(code)
    return holidays.country_holidays(country, subdiv=subdivision)


@dataclass(frozen=True)
class StandupCalendar:
    """The team's standup dates."""

    workdays: tuple[str, ...]
    holiday_region: str = ""  # "" for none, else "DE", "DE-BY", …
    skip_dates: frozenset[dt.date] = frozenset()

    def why_not(self, date: dt.date) -> str | None:
        """Return why a date has no standup ("a Saturday, not one of WORKDAYS", …), or None."""
        if WEEKDAYS[date.weekday()] not in self.workdays:
            return f"{date} is a {date:%A}, not one of WORKDAYS"
        if date in self.skip_dates:
            return f"{date} is in SKIP_DATES"
        if self.holiday_region:
            name = _holidays(self.holiday_region).get(date)
            if name:
                return f"{date} is a public holiday in {self.holiday_region} ({name})"
        return None

    def is_standup_date(self, date: dt.date) -> bool:
        """Tell whether a date has a standup."""
        return self.why_not(date) is None

    def next_dates(self, start: dt.date, count: int = 5) -> list[dt.date]:
        """Return the next `count` standup dates from `start` (included)."""
        found: list[dt.date] = []
        day = start
        # Two years is far more than any sane calendar needs to yield five dates.
        for _ in range(731):
            if len(found) == count:
                break
            if self.is_standup_date(day):
                found.append(day)
            day += dt.timedelta(days=1)
        return found

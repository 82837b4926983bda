"""Ping HEALTHCHECK_URL after each stage (healthchecks.io convention), so a missed or
failed stage alerts an admin: the URL itself on success, URL + "/fail" on failure, with
the one-line reason as the body. https://healthchecks.io/docs/http_api/
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_BODY = 10_000  # healthchecks.io keeps the first 10 KB of a ping body


def ping(
    url: str, stage: str, date: dt.date, error: str | None, *, timeout: float = 10.0,
    attempts: int = 3, sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Send one ping; return True when the monitor answered 2xx. Never raises."""
    target = url.rstrip("/") + ("/fail" if error else "")
    body = (f"{stage} for {date}: {error}" if error else f"{stage} for {date}: ok").encode()[:MAX_BODY]
    for attempt in range(attempts):
        request = urllib.request.Request(
            target, data=body, method="POST",
            headers={"User-Agent": "standup-bot", "Content-Type": "text/plain; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return True
        except (urllib.error.URLError, OSError) as exc:
            # A monitor that is down must never fail the standup itself.
            log.warning("healthcheck ping to %s failed (attempt %d): %s", _safe(target), attempt + 1, exc)
        if attempt + 1 < attempts:
            sleep(2.0**attempt)
    return False


def _safe(url: str) -> str:
    """Return the URL without its path: the ping key in it is a secret of sorts."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"

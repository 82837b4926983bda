"""The ✅ the listener adds to each recorded reply, sent from one background thread.

The reply is stored before its tick is queued, so the tick never holds up storing: a burst
of replies is recorded at full speed and the ticks follow, paced to what Slack allows
(`reactions.add` is Tier 3, "50+ per minute" per workspace,
https://docs.slack.dev/apis/web-api/rate-limits). The tick is a courtesy: when more are
waiting than could be sent in a reasonable time, the oldest are skipped and that is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PER_MINUTE = 50  # Slack's Tier 3 floor
BURST = 50  # a minute's worth at once: a normal standup's replies are all ticked at once
MAX_WAITING = 1000
MAX_AGE = 10 * 60.0  # seconds; a tick later than this says nothing useful any more


@dataclass(frozen=True)
class _Tick:
    channel: str
    ts: str
    queued_at: float


class TokenBucket:
    """`rate` tokens a second up to `burst`; `wait()` tells how long until one is available."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Spend one token (call after `wait()` returned 0)."""
        self._refill()
        self._tokens -= 1


class ConfirmationQueue:
    """Queue ticks and send them on one daemon thread, started on first use."""

    def __init__(
        self,
        add_reaction: Callable[[str, str], None],
        *,
        per_minute: float = PER_MINUTE,
        burst: float = BURST,
        max_waiting: int = MAX_WAITING,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._add_reaction = add_reaction
        self._bucket = TokenBucket(per_minute / 60.0, burst, clock)
        self._max_age = max_age
        self._clock = clock
        self._waiting: deque[_Tick] = deque(maxlen=max_waiting)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False
        self.sent = 0
        self.skipped = 0

    def submit(self, channel: str, ts: str) -> None:
        """Queue a tick for a reply (the oldest waiting one is skipped when the queue is full)."""
        with self._changed:
            if self._closed:
                return
            if len(self._waiting) == self._waiting.maxlen:
                self._skip(1, f"more than {self._waiting.maxlen} waiting")
            was_empty = not self._waiting
            self._waiting.append(_Tick(channel, ts, self._clock()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="confirmations", daemon=True)
                self._thread.start()
            if was_empty:  # otherwise the thread is busy or waiting for a token, and wakes by itself
                self._changed.notify()

    def waiting(self) -> int:
        """How many ticks are queued or being sent."""
        with self._changed:
            return len(self._waiting) + int(self._busy)

    def close(self, timeout: float = 2.0) -> None:
        """Stop sending; ticks still queued are dropped (and counted in the log)."""
        with self._changed:
            self._closed = True
            left = len(self._waiting)
            self._waiting.clear()
            self._changed.notify_all()
            thread = self._thread
        if left:
            log.info("stopping with %d confirmation reaction(s) not sent", left)
        if thread is not None:
            thread.join(timeout)

    def _skip(self, count: int, why: str) -> None:
        # Called with the lock held. One line per 100 skipped keeps a long burst from flooding the log.
        before = self.skipped
        self.skipped += count
        if before // 100 != self.skipped // 100 or before == 0:
            log.warning(
                "skipped %d confirmation reaction(s) so far (%s); the replies themselves are recorded",
                self.skipped, why,
            )

    def _next(self) -> _Tick | None:
        """Block until a tick may be sent now; None once closed."""
        with self._changed:
            while True:
                if self._closed:
                    return None
                if not self._waiting:
                    self._changed.wait()
                    continue
                pause = self._bucket.wait()
                if pause > 0:
                    self._changed.wait(pause)
                    continue
                tick = self._waiting.popleft()
                if self._clock() - tick.queued_at > self._max_age:
                    self._skip(1, f"waited longer than {self._max_age / 60:.0f} min")
                    continue
                self._bucket.take()
                self._busy = True
                return tick

    def _run(self) -> None:
        while (tick := self._next()) is not None:
            try:
                self._add_reaction(tick.channel, tick.ts)
                self.sent += 1
            except Exception:  # the thread must outlive any one failure; the reply is stored
                log.exception("could not add the confirmation reaction to %s", tick.ts)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

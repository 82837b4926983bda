"""The ✅ queue: paced to Slack's limit, bounded, never in the way of storing a reply."""

from __future__ import annotations

import logging
import threading

import pytest

from standup_bot.confirmations import ConfirmationQueue, TokenBucket
from tests.conftest import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_one_per_interval():
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.wait() == 0
        bucket.take()
    assert bucket.wait() == pytest.approx(1.0)
    clock.now += 0.25
    assert bucket.wait() == pytest.approx(0.75)
    clock.now += 0.75
    assert bucket.wait() == 0
    clock.now += 3600  # a long quiet spell refills only up to the burst
    for _ in range(3):
        bucket.take()
    assert bucket.wait() > 0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_the_bucket_refuses_nonsense(rate, burst):
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=rate, burst=burst, clock=Clock())


def test_ticks_are_sent_in_order():
    sent: list[str] = []
    queue = ConfirmationQueue(lambda channel, ts: sent.append(f"{channel}/{ts}"))
    for i in range(5):
        queue.submit("C1", f"1.{i}")
    wait_for(lambda: len(sent) == 5, what="five ticks")
    assert sent == [f"C1/1.{i}" for i in range(5)]
    assert queue.sent == 5 and queue.skipped == 0
    wait_for(lambda: queue.waiting() == 0)
    queue.close()


def test_a_tick_waits_for_its_token():
    clock = Clock()
    sent: list[str] = []
    queue = ConfirmationQueue(lambda _c, ts: sent.append(ts), per_minute=60, burst=1, clock=clock)
    queue.submit("C1", "1.1")
    queue.submit("C1", "1.2")
    wait_for(lambda: sent == ["1.1"])
    threading.Event().wait(0.3)
    assert sent == ["1.1"]  # the clock has not moved: no token for the second
    clock.now += 1.0
    wait_for(lambda: sent == ["1.1", "1.2"], what="the second tick after a second")
    queue.close()


def test_when_the_queue_is_full_the_oldest_waiting_tick_is_skipped(caplog):
    release = threading.Event()
    sent: list[str] = []

    def slow_add(_channel: str, ts: str) -> None:
        release.wait(10)
        sent.append(ts)

    queue = ConfirmationQueue(slow_add, max_waiting=3)
    queue.submit("C1", "1.0")
    wait_for(lambda: queue.waiting() == 1 and not queue._waiting, what="the first tick to be taken")
    with caplog.at_level(logging.WARNING, logger="standup_bot.confirmations"):
        for i in range(1, 6):
            queue.submit("C1", f"1.{i}")
    release.set()
    wait_for(lambda: len(sent) == 4, what="the ticks that fit")
    assert sent == ["1.0", "1.3", "1.4", "1.5"]
    assert queue.skipped == 2
    assert "skipped 1 confirmation reaction(s) so far (more than 3 waiting)" in caplog.text
    queue.close()


def test_a_tick_that_waited_too_long_is_skipped():
    clock = Clock()
    release = threading.Event()
    sent: list[str] = []

    def slow_add(_channel: str, ts: str) -> None:
        release.wait(10)
        sent.append(ts)

    queue = ConfirmationQueue(slow_add, max_age=600, clock=clock)
    queue.submit("C1", "1.0")
    wait_for(lambda: not queue._waiting)
    queue.submit("C1", "1.1")
    clock.now += 601
    queue.submit("C1", "1.2")
    release.set()
    wait_for(lambda: queue.waiting() == 0)
    assert sent == ["1.0", "1.2"]
    assert queue.skipped == 1
    queue.close()


def test_a_failure_is_logged_and_the_next_tick_still_goes(caplog):
    sent: list[str] = []

    def flaky_add(_channel: str, ts: str) -> None:
        if ts == "1.1":
            raise RuntimeError("boom")
        sent.append(ts)

    queue = ConfirmationQueue(flaky_add)
    with caplog.at_level(logging.ERROR, logger="standup_bot.confirmations"):
        queue.submit("C1", "1.1")
        queue.submit("C1", "1.2")
        wait_for(lambda: sent == ["1.2"])
    assert "could not add the confirmation reaction to 1.1" in caplog.text
    queue.close()


def test_close_drops_what_is_waiting_and_says_so(caplog):
    clock = Clock()
    sent: list[str] = []
    queue = ConfirmationQueue(lambda _c, ts: sent.append(ts), per_minute=1, burst=1, clock=clock)
    for i in range(4):
        queue.submit("C1", f"1.{i}")
    wait_for(lambda: sent == ["1.0"])
    with caplog.at_level(logging.INFO, logger="standup_bot.confirmations"):
        queue.close()
    assert "stopping with 3 confirmation reaction(s) not sent" in caplog.text
    queue.submit("C1", "1.9")  # after close: ignored, no thread restarted
    assert queue.waiting() == 0 and sent == ["1.0"]

"""The replay guard: a signed request is accepted once within the window a signature is valid."""

from __future__ import annotations

from standup_bot.listener_app import ReplayGuard


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_a_signature_is_accepted_once_within_the_window_and_again_after_it():
    clock = Clock()
    guard = ReplayGuard(window=300, clock=clock)
    assert guard.first_use("v0=abc#0") is True
    assert guard.first_use("v0=abc#0") is False
    assert guard.first_use("v0=abc#1") is True  # a Slack retry: another retry number
    clock.now += 299.9
    assert guard.first_use("v0=abc#0") is False
    clock.now += 2.0  # the window (rounded up to the whole second) has passed
    assert guard.first_use("v0=abc#0") is True


def test_old_signatures_are_dropped_so_memory_stays_bounded():
    clock = Clock()
    guard = ReplayGuard(window=300, clock=clock)
    for second in range(600):
        for i in range(10):
            guard.first_use(f"v0={second}-{i}#0")
        clock.now += 1
    assert 3000 <= len(guard) <= 3020  # about the last 300 seconds' worth


def test_a_forgotten_signature_may_be_used_again():
    guard = ReplayGuard(window=300, clock=Clock())
    assert guard.first_use("v0=bad#0") is True
    guard.forget("v0=bad#0")
    assert guard.first_use("v0=bad#0") is True
    assert guard.first_use("v0=bad#0") is False

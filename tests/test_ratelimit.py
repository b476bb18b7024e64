"""The per-client sliding-window rate limiter."""

from __future__ import annotations

import threading

import pytest

from evaluator.errors import RateLimitedError
from evaluator.ratelimit import RateLimiter


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_refuses_with_retry_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)
    for _ in range(3):
        limiter.check("1.2.3.4")
        clock.now += 10
    with pytest.raises(RateLimitedError) as info:
        limiter.check("1.2.3.4")
    # The first hit (t=1000) leaves the window at t=1060; now is t=1030.
    assert info.value.retry_after == pytest.approx(30.0)
    assert "3 per minute" in str(info.value)
    assert "30 s" in str(info.value)


def test_window_slides_rather_than_resetting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    limiter.check("a")  # t=1000
    clock.now = 1040.0
    limiter.check("a")  # t=1040
    clock.now = 1061.0  # the first hit has left the window, the second has not
    limiter.check("a")
    with pytest.raises(RateLimitedError):
        limiter.check("a")
    clock.now = 1101.0
    limiter.check("a")


def test_clients_are_counted_separately() -> None:
    limiter = RateLimiter(1, clock=FakeClock())
    limiter.check("a")
    limiter.check("b")
    with pytest.raises(RateLimitedError):
        limiter.check("a")


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    limiter.check("a")
    for _ in range(5):
        clock.now += 10
        with pytest.raises(RateLimitedError):
            limiter.check("a")
    clock.now = 1060.0
    limiter.check("a")


def test_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(0, clock=FakeClock())
    assert not limiter.enabled
    for _ in range(1000):
        limiter.check("a")


def test_negative_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="-1"):
        RateLimiter(-1)


def test_exact_count_under_concurrent_callers() -> None:
    limiter = RateLimiter(50, clock=FakeClock())
    allowed = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            try:
                limiter.check("same-client")
                allowed.append(1)
            except RateLimitedError:
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 50


def test_idle_clients_are_forgotten() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    for n in range(1100):
        limiter.check(f"client-{n}")
    clock.now += 61
    limiter.check("late")
    assert len(limiter._hits) == 1

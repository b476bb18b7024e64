"""Per-client rate limiting: a thread-safe sliding-window counter keyed by client (e.g. its IP)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import RateLimitedError

# Above this many tracked clients, idle ones are dropped so memory stays bounded.
_SWEEP_ABOVE = 1024


class RateLimiter:
    """Allow at most ``per_minute`` actions per client in any sliding ``window`` seconds; 0 turns it off.

    Args:
        per_minute: actions allowed per client per window (``RATE_LIMIT_PER_MINUTE``); 0 disables the limit.
        window: the window length in seconds (60 for "per minute").
        clock: a monotonic clock in seconds; tests inject a fake one.

    Example::

        limiter = RateLimiter(30)
        limiter.check("203.0.113.7")  # raises RateLimitedError on the 31st call within a minute
    """

    def __init__(self, per_minute: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be 0 (off) or more, got {per_minute!r}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when a limit is set."""
        return self.per_minute > 0

    def check(self, client: str) -> None:
        """Count one action for ``client``, or raise :class:`RateLimitedError` saying when to retry.

        Refused actions are not counted, so a client that keeps retrying is let in again as soon
        as its oldest counted action leaves the window.
        """
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            self._expire(hits, now)
            if len(hits) >= self.per_minute:
                retry_after = max(0.0, hits[0] + self.window - now)
                raise RateLimitedError(
                    f"Too many requests: the limit is {self.per_minute} per minute. "
                    f"Try again in {max(1, math.ceil(retry_after))} s.",
                    retry_after=retry_after,
                )
            hits.append(now)
            if len(self._hits) > _SWEEP_ABOVE:
                self._sweep(now)

    def _expire(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self.window:
            hits.popleft()

    def _sweep(self, now: float) -> None:
        for client in list(self._hits):
            hits = self._hits[client]
            self._expire(hits, now)
            if not hits:
                del self._hits[client]

"""Cost controls of a public app: limits the owner sets (in :class:`~evaluator.config.Settings`), not a visitor.

* rows per batch (``MAX_BATCH_ROWS``) and the candidate models a visitor may name (``ALLOWED_CANDIDATE_MODELS``);
* model calls (judge and candidate) per client in any sliding hour (``JUDGE_CALLS_PER_CLIENT_HOUR``) and in total per
  UTC day (``JUDGE_CALLS_PER_DAY``).

Calls are reserved before they are made, so a batch that does not fit is refused before its first call, with
a message saying what is left; what a run did not use (stopped, resumed items) is given back.

Example::

    limits = CostLimits.from_settings(settings)
    with limits.reserve("203.0.113.7", calls=3) as spent:
        ...  # make at most 3 calls; spent.use(2) gives the unused one back at the end
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import Settings
from .errors import InputError, RateLimitedError

HOUR = 3600.0
_SWEEP_ABOVE = 1024  # tracked clients above which idle ones are forgotten


def _wait(seconds: float) -> str:
    """``seconds`` as a short human duration: "45 s", "12 min", "3 h"."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / 3600)} h"


@dataclass
class Reservation:
    """Calls set aside for one action; :meth:`use` records how many were really made (the rest is refunded)."""

    limits: CostLimits
    client: str
    calls: int
    used: int | None = field(default=None)

    def use(self, calls: int) -> None:
        """Record that ``calls`` of the reserved calls were made."""
        self.used = max(0, min(self.calls, calls))

    def settle(self) -> None:
        """Give back the reserved calls not :meth:`use`-d (all were used if :meth:`use` was never called)."""
        used = self.calls if self.used is None else self.used
        if used < self.calls:
            self.limits.refund(self.client, self.calls - used)
        self.calls = used

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.settle()


class CostLimits:
    """Thread-safe counters of model calls per client (sliding hour) and per UTC day, and the batch limits.

    Args:
        max_batch_rows: rows one batch may have (0: no limit).
        candidate_models: model names a visitor may choose as candidate (empty: any).
        per_client_hour: calls per client in any 60 minutes (0: no limit).
        per_day: calls by everyone per UTC day (0: no limit).
        clock: wall clock in seconds; tests inject a fake one.
    """

    def __init__(
        self,
        *,
        max_batch_rows: int = 0,
        candidate_models: tuple[str, ...] = (),
        per_client_hour: int = 0,
        per_day: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("max_batch_rows", max_batch_rows), ("per_client_hour", per_client_hour)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (off) or more, got {value!r}")
        if per_day < 0:
            raise ValueError(f"per_day must be 0 (off) or more, got {per_day!r}")
        self.max_batch_rows = max_batch_rows
        self.candidate_models = candidate_models
        self.per_client_hour = per_client_hour
        self.per_day = per_day
        self._clock = clock
        self._lock = threading.Lock()
        self._hour: dict[str, deque[list[float]]] = {}  # client -> [[time, calls], ...], oldest first
        self._day = ""
        self._day_calls = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> CostLimits:
        """The limits ``settings`` ask for."""
        return cls(
            max_batch_rows=settings.max_batch_rows,
            candidate_models=settings.candidate_models,
            per_client_hour=settings.judge_calls_per_client_hour,
            per_day=settings.judge_calls_per_day,
        )

    # -- checks that cost nothing ------------------------------------------------------------------
    def check_rows(self, rows: int) -> None:
        """:class:`InputError` if a batch of ``rows`` rows is over ``MAX_BATCH_ROWS``."""
        if self.max_batch_rows and rows > self.max_batch_rows:
            raise InputError(
                f"This batch has {rows} rows; this app grades at most {self.max_batch_rows} per batch. "
                "Split the file, or run the batch locally with the command line."
            )

    def check_model(self, name: str) -> None:
        """:class:`InputError` if ``name`` is not a candidate model a visitor may use."""
        if self.candidate_models and name not in self.candidate_models:
            allowed = ", ".join(self.candidate_models)
            raise InputError(f"The candidate model {name[:80]!r} is not available here; choose one of: {allowed}.")

    # -- budgets -------------------------------------------------------------------------------------
    def reserve(self, client: str, calls: int) -> Reservation:
        """Set ``calls`` model calls aside for ``client``, or raise :class:`RateLimitedError` saying what is left."""
        calls = max(0, int(calls))
        now = self._clock()
        with self._lock:
            self._roll_day(now)
            hits = self._expire(client, now)
            used_hour = sum(n for _, n in hits)
            if self.per_client_hour and calls > self.per_client_hour:
                raise InputError(
                    f"This needs {calls} model calls; each visitor may make {self.per_client_hour} per hour. "
                    "Use fewer rows."
                )
            if self.per_client_hour and used_hour + calls > self.per_client_hour:
                left = max(0, self.per_client_hour - used_hour)
                retry = self._hour_retry(hits, now, calls - left)
                raise RateLimitedError(
                    f"This needs {calls} model call(s) and {left} of your {self.per_client_hour} per hour are left. "
                    f"Try again in {_wait(retry)}" + (" or with fewer rows." if calls > 1 else "."),
                    retry_after=retry,
                )
            if self.per_day and self._day_calls + calls > self.per_day:
                left = max(0, self.per_day - self._day_calls)
                retry = self._until_tomorrow(now)
                raise RateLimitedError(
                    f"This app's daily budget of {self.per_day} model calls is used up ({left} left; "
                    f"this needs {calls}). It resets at 00:00 UTC, in {_wait(retry)}.",
                    retry_after=retry,
                )
            if calls:
                hits.append([now, float(calls)])
                self._day_calls += calls
            if len(self._hour) > _SWEEP_ABOVE:
                self._sweep(now)
        return Reservation(self, client, calls)

    def refund(self, client: str, calls: int) -> None:
        """Give back ``calls`` reserved but not made (newest reservations first)."""
        now = self._clock()
        with self._lock:
            hits = self._hour.get(client)
            left = calls
            while hits and left > 0:
                take = min(left, hits[-1][1])
                hits[-1][1] -= take
                left -= take
                if hits[-1][1] <= 0:
                    hits.pop()
            if self._day == self._today(now):
                self._day_calls = max(0, self._day_calls - calls)

    def status(self) -> dict[str, Any]:
        """The limits and today's usage, for the owner on ``/healthz`` (no client addresses)."""
        with self._lock:
            self._roll_day(self._clock())
            return {
                "max_batch_rows": self.max_batch_rows or None,
                "candidate_models": list(self.candidate_models) or None,
                "model_calls_per_client_hour": self.per_client_hour or None,
                "model_calls_per_day": self.per_day or None,
                "model_calls_today": self._day_calls,
            }

    # -- bookkeeping ---------------------------------------------------------------------------------
    @staticmethod
    def _today(now: float) -> str:
        return datetime.fromtimestamp(now, UTC).date().isoformat()

    def _roll_day(self, now: float) -> None:
        today = self._today(now)
        if today != self._day:
            self._day, self._day_calls = today, 0

    def _until_tomorrow(self, now: float) -> float:
        return HOUR * 24 - now % (HOUR * 24)

    def _expire(self, client: str, now: float) -> deque[list[float]]:
        hits = self._hour.setdefault(client, deque())
        while hits and hits[0][0] <= now - HOUR:
            hits.popleft()
        return hits

    def _hour_retry(self, hits: deque[list[float]], now: float, needed: float) -> float:
        """Seconds until ``needed`` more calls have left the client's hour (an hour if never)."""
        freed = 0.0
        for at, n in hits:
            freed += n
            if freed >= needed:
                return max(1.0, at + HOUR - now)
        return HOUR

    def _sweep(self, now: float) -> None:
        for client in list(self._hour):
            if not self._expire(client, now):
                del self._hour[client]

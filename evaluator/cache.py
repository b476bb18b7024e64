"""A persistent cache of judge grades in SQLite (WAL): safe across threads and processes.

The key is a SHA-256 of (question, reference, answer, model, temperature, prompt version) — and
the number of consistency runs when more than one — so changing the judge model, its temperature
or the prompt never serves a stale grade. Only successful grades are stored. A cache failure
(locked or unwritable file, damaged row) is logged and treated as a miss: it never fails a grading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from .models import Consistency, Grade, GradeRequest, utc_now

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grades (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class CacheEntry(NamedTuple):
    """A cached grade and, for a consistency check, the spread of its runs."""

    grade: Grade
    consistency: Consistency | None


def cache_key(request: GradeRequest, *, model: str, temperature: float, prompt_version: str, runs: int = 1) -> str:
    """The SHA-256 hex key of one grading; ``runs`` only counts when a consistency check is on."""
    parts: list[object] = [
        request.question,
        request.reference,
        request.answer,
        model,
        float(temperature),
        prompt_version,
    ]
    if runs > 1:
        parts.append(runs)
    # A JSON list, not a joined string: no separator inside a field can make two keys collide.
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


class GradeCache:
    """Grades by key in one SQLite file; the connection opens on first use."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GradeCache({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit; one connection shared by threads under self._lock; WAL lets other
            # processes read while one writes, busy_timeout makes writers wait instead of failing.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            # Switching a new file to WAL takes an exclusive lock that SQLite does not wait for: when
            # two processes create the cache at once, one gets "database is locked" and tries again.
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.01)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
        return self._conn

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry for ``key``, or None (also when the cache cannot be read)."""
        try:
            with self._lock:
                row = self._connect().execute("SELECT value FROM grades WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            logger.warning("Judge cache %s unreadable, treated as a miss: %s", self.path, exc)
            return None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            consistency = data.get("consistency")
            return CacheEntry(Grade(**data["grade"]), Consistency(**consistency) if consistency else None)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("Damaged judge cache entry %s… ignored: %s", key[:12], exc)
            return None

    def put(
        self,
        key: str,
        grade: Grade,
        *,
        model: str,
        prompt_version: str,
        consistency: Consistency | None = None,
    ) -> None:
        """Store a successful grade under ``key`` (replacing any older one)."""
        value = json.dumps(
            {"grade": asdict(grade), "consistency": asdict(consistency) if consistency else None},
            ensure_ascii=False,
        )
        try:
            with self._lock:
                self._connect().execute(
                    "INSERT OR REPLACE INTO grades (key, value, model, prompt_version, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (key, value, model, prompt_version, utc_now()),
                )
        except sqlite3.Error as exc:
            logger.warning("Could not write judge cache %s: %s", self.path, exc)

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT COUNT(*) FROM grades").fetchone()[0]

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

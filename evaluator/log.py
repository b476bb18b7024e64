"""The evaluation log: JSON Lines, one record per line. (Minimal first version; see issue 3.)"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from .config import Settings

logger = logging.getLogger(__name__)


class EvalLog:
    """Append-only JSONL log of evaluation and feedback records."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.damaged_lines = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> EvalLog:
        """The log at ``LOG_PATH``."""
        return cls(settings.log_path)

    def append(self, record: Any) -> None:
        """Append one record (anything with ``to_dict()``, or a dict) as one line."""
        data = record.to_dict() if hasattr(record, "to_dict") else record
        line = json.dumps(data, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """All records (of ``kind`` if given), oldest first; damaged lines are skipped and counted."""
        if not self.path.exists():
            return []
        out, damaged = [], 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                damaged += 1
                continue
            if kind is None or rec.get("kind") == kind:
                out.append(rec)
        self.damaged_lines = damaged
        return out

    def get(self, record_id: str) -> dict[str, Any] | None:
        """The record with this id, or None."""
        return next((r for r in self.records() if r.get("id") == record_id), None)

    def status(self) -> dict[str, Any]:
        """Log health for ``/healthz``."""
        return {"path": str(self.path), "hub": None}

    def close(self) -> None:
        """Nothing to flush yet."""

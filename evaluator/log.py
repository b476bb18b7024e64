"""The evaluation log: JSON Lines files, safe appends, incremental reads (its statistics: :mod:`log_stats`).

Layout, everything next to ``LOG_PATH`` (default ``data/evaluations_log.jsonl``)::

    data/evaluations_log.jsonl           the local log, written while HF_LOG_REPO is unset (any number of processes)
    data/logs/evaluations-<uuid4>.jsonl  HF_LOG_REPO set: one file per process, pushed to <repo>/logs/
    data/hub/logs/evaluations-*.jsonl    copy of the repo's log files, pulled at start

Reading merges all of them, deduplicated by record id, oldest first.

Appends: the whole encoded line goes out in one ``os.write`` on an ``O_APPEND`` descriptor (the kernel places it
at the end of the file, so lines of concurrent processes never interleave), under a thread lock, plus an exclusive
``flock`` when the payload is larger than ``PIPE_BUF``. If the file does not end with a newline (a crash cut the
last line), the next append starts with one, so the damage stays in that one line. No ``fsync`` per line: a record
is safe from a crash of the process once ``append`` returns, not from a power cut (the file is fsynced at
``close()``; the Hub copy is the durable one).

Reads are incremental: parsed records stay in memory and each read parses only the bytes added since the last one;
this process's own appends are added to that cache directly. A damaged line is skipped and counted.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import select
import threading
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .config import Settings
from .errors import LogError
from .log_stats import LogStats, timestamp_of
from .models import EvaluationRecord, FeedbackRecord

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from .hub import HubSync

logger = logging.getLogger(__name__)

LOCAL_DIR = "logs"  # this machine's per-process files, next to LOG_PATH
MIRROR_DIR = "hub"  # the pulled copy of the Hub repo, next to LOG_PATH
REPO_DIR = "logs"  # where log files live inside the Hub dataset repo
MAX_PENDING = 10_000  # records kept in memory while the disk refuses writes
_PIPE_BUF = select.PIPE_BUF
_HEAD = 64


@dataclass
class _FileState:
    """How far one log file has been parsed."""

    ino: int
    head: bytes = b""  # the file's first bytes: inode numbers get reused, so identify the file by them too
    offset: int = 0  # bytes parsed, always just after a newline
    size: int = 0  # file size at the last read
    damaged: int = 0  # damaged complete lines
    tail_damaged: int = 0  # 1 when the file ends with an unterminated line


class EvalLog:
    """Append-only JSONL log of evaluation and feedback records, merged from every log file of this deployment.

    Args:
        path: ``LOG_PATH``; the per-process folder and the Hub copy live next to it (see the module docstring).
        hub: the Hub sync (:class:`evaluator.hub.HubSync`); with it, this process writes its own file in
            ``logs/`` under the sync's lock, and ``close()`` makes the last push.

    Example:
        >>> log = EvalLog("data/evaluations_log.jsonl")  # doctest: +SKIP
        >>> log.append(record)  # an EvaluationRecord, a FeedbackRecord or a dict  # doctest: +SKIP
        >>> log.aggregate()["mean_score"]  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, hub: HubSync | None = None) -> None:
        self.path = Path(path)
        self.folder = self.path.parent / LOCAL_DIR
        self.mirror = self.path.parent / MIRROR_DIR / REPO_DIR
        self.hub = hub
        self.write_path = hub.write_path if hub is not None else self.path
        self._write_lock = threading.Lock()
        self._fd: int | None = None
        self._fd_ino = -1
        self._end = -1  # file size right after our last write (the file ended with "\n" there)
        self._pending: list[tuple[bytes, dict[str, Any]]] = []
        self._read_lock = threading.Lock()
        self._reset()

    @classmethod
    def from_settings(cls, settings: Settings, *, hf_api: HfApi | None = None) -> EvalLog:
        """The log at ``LOG_PATH``, synced to ``HF_LOG_REPO`` when it and ``HF_TOKEN`` are set.

        The Hub connection (repo creation, pull of existing files, scheduled pushes) runs in a background
        thread: an unreachable Hub is a logged warning, never a startup failure.
        """
        if not settings.hf_log_repo:
            return cls(settings.log_path)
        if not settings.hf_token:
            logger.warning("HF_LOG_REPO is set without HF_TOKEN: the evaluation log stays local.")
            return cls(settings.log_path)
        from .hub import HubSync  # huggingface_hub is imported only when the Hub is used

        hub = HubSync(
            repo_id=settings.hf_log_repo,
            token=settings.hf_token,
            folder=settings.log_path.parent / LOCAL_DIR,
            mirror=settings.log_path.parent / MIRROR_DIR,
            path_in_repo=REPO_DIR,
            every_minutes=settings.hf_push_every_minutes,
            hf_api=hf_api,
        )
        log = cls(settings.log_path, hub=hub)
        try:
            hub.start()  # claims this process's file in the folder: the folder must be writable
        except OSError as exc:
            raise LogError(
                f"Cannot write the evaluation log (LOG_PATH) in {hub.folder}: {exc.strerror or exc}"
            ) from None
        return log

    def ensure_writable(self) -> None:
        """Open (creating it if needed) the file records go to; :class:`LogError` naming it if the disk refuses."""
        if self.hub is not None:
            return  # the sync took this process's lock file in the same folder when it started
        with self._write_lock:
            try:
                self._open()
            except OSError as exc:
                raise LogError(
                    f"Cannot write the evaluation log (LOG_PATH) {self.write_path}: {exc.strerror or exc}"
                ) from None

    # -- writing ---------------------------------------------------------------------------
    def append(self, record: Any) -> None:
        """Append one record (anything with ``to_dict()``, or a dict) as one line.

        Raises :class:`LogError` if the disk refuses the write; the record is then kept in memory and
        written before the next one (up to ``MAX_PENDING`` records).
        """
        if hasattr(record, "to_dict"):
            data = record.to_dict()
            line = orjson.dumps(data) + b"\n"
        else:
            line = orjson.dumps(record) + b"\n"
            data = orjson.loads(line)  # an owned copy: the caller may mutate its dict afterwards
        with self._write_lock:
            batch = [*self._pending, (line, data)]
            try:
                self._write_batch(batch)
            except OSError as exc:
                self._keep_pending(batch)
                raise LogError(
                    f"Could not write the evaluation log {self.write_path}: {exc.strerror or exc}. "
                    f"{len(self._pending)} record(s) are kept in memory and retried at the next write."
                ) from exc
            self._pending = []

    def _keep_pending(self, batch: list[tuple[bytes, dict[str, Any]]]) -> None:
        if len(batch) > MAX_PENDING:
            logger.error(
                "Evaluation log: dropped %d unwritten record(s), the disk still fails", len(batch) - MAX_PENDING
            )
            batch = batch[-MAX_PENDING:]
        self._pending = batch

    def _open(self) -> tuple[int, int]:
        """The append descriptor (reopened if the file was removed or replaced under us) and the file size."""
        if self._fd is not None:
            st = os.fstat(self._fd)
            if st.st_nlink:  # still the file at write_path (a rename over it or an unlink leaves 0 links)
                return self._fd, st.st_size
            os.close(self._fd)
            self._fd = None
        self.write_path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.write_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        st = os.fstat(self._fd)
        self._fd_ino, self._end = st.st_ino, -1
        return self._fd, st.st_size

    def _write_batch(self, batch: list[tuple[bytes, dict[str, Any]]]) -> None:
        payload = b"".join(line for line, _ in batch)
        hub_lock = self.hub.lock if self.hub is not None else nullcontext()
        with hub_lock:
            fd, size = self._open()
            big = len(payload) > _PIPE_BUF
            if big:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
            try:
                # A crash may have cut the last line: start ours on a fresh line so only that one is damaged.
                if size and size != self._end and os.pread(fd, 1, size - 1) != b"\n":
                    payload = b"\n" + payload
                written = os.write(fd, payload)
                # With O_APPEND the descriptor's offset is now the end of *our* line, whatever others write next.
                end = os.lseek(fd, 0, os.SEEK_CUR)
            finally:
                if big:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        if written != len(payload):
            self._end = -1
            raise OSError(f"short write ({written} of {len(payload)} bytes)")
        self._end = end
        self._feed_cache(end - len(payload), end, [data for _, data in batch])

    def _feed_cache(self, start: int, end: int, records: list[dict[str, Any]]) -> None:
        """Add just-written records to the read cache when nothing else was written since it was last read."""
        if not self._read_lock.acquire(blocking=False):
            return  # a reader is busy: it (or the next one) parses the new bytes from disk
        try:
            state = self._files.get(self.write_path)
            if state is None and start == 0:  # we created the file: nothing in it to parse
                state = self._files[self.write_path] = _FileState(ino=self._fd_ino)
            if state is None or state.ino != self._fd_ino or state.offset != start or state.size != start:
                return
            state.offset = state.size = end
            if not state.head and self._fd is not None:
                state.head = os.pread(self._fd, _HEAD, 0)
            for rec in records:
                self._add(rec)
        finally:
            self._read_lock.release()

    # -- reading ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._files: dict[Path, _FileState] = {}
        self._by_id: dict[str, dict[str, Any]] = {}
        self._records: list[dict[str, Any]] = []
        self._sorted = True
        self._stats = LogStats(self._by_id)
        self._last_ts = ""
        self._generation = 0
        self._aggregate: tuple[int, dict[str, Any]] | None = None
        self._warned_damaged = 0
        self._warned_unreadable: set[Path] = set()

    def _add(self, rec: dict[str, Any]) -> None:
        rid = rec["id"]
        if rid in self._by_id:
            return
        self._by_id[rid] = rec
        ts = rec.get("timestamp")
        if ts.__class__ is not str:
            ts = ""
        if ts >= self._last_ts:
            self._last_ts = ts
        else:
            self._sorted = False
        self._records.append(rec)
        self._stats.add(rec)
        self._generation += 1

    def files(self) -> list[Path]:
        """Every log file that is read: ``LOG_PATH``, then ``logs/*.jsonl``, then the Hub copy."""
        out = [self.path]
        for folder in (self.folder, self.mirror):
            if folder.is_dir():
                out.extend(sorted(p for p in folder.glob("*.jsonl") if p.is_file()))
        return out

    def _refresh(self) -> None:
        """Parse what was added to the log files since the last read (caller holds ``_read_lock``)."""
        paths = self.files()
        if not all(self._read_file(p) for p in paths):
            # A file was replaced or shrank (e.g. a fresh pull from the Hub): parse everything again.
            self._reset()
            for p in paths:
                self._read_file(p)
        damaged = self._damaged()
        if damaged > self._warned_damaged:
            logger.warning("Evaluation log: skipped %d damaged line(s) (truncated or not JSON records)", damaged)
        self._warned_damaged = damaged

    def _read_file(self, path: Path) -> bool:
        """Parse the new complete lines of one file; False if the file was replaced or truncated."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return path not in self._files
        except OSError as exc:
            self._unreadable(path, exc)
            return True
        try:
            st = os.fstat(fd)
            state = self._files.get(path)
            if state is None:
                state = self._files[path] = _FileState(ino=st.st_ino)
            elif (
                state.ino != st.st_ino
                or st.st_size < state.size
                or (state.head and os.pread(fd, len(state.head), 0) != state.head)
            ):
                return False
            if not state.head:
                state.head = os.pread(fd, _HEAD, 0)
            if st.st_size == state.size:
                return True
            data = os.pread(fd, st.st_size - state.offset, state.offset)
        except OSError as exc:
            self._unreadable(path, exc)
            return True
        finally:
            os.close(fd)
        cut = data.rfind(b"\n") + 1
        state.offset += cut
        state.size = state.offset + len(data) - cut
        # An unterminated last line is a crash's leftover, or a line another process is writing right now.
        state.tail_damaged = 1 if data[cut:].strip() else 0
        state.damaged += self._parse(data[:cut].split(b"\n"))
        return True

    def _unreadable(self, path: Path, exc: OSError) -> None:
        if path not in self._warned_unreadable:
            self._warned_unreadable.add(path)
            logger.warning("Evaluation log: cannot read %s (%s); skipping it", path, exc.strerror or exc)

    def _parse(self, lines: Iterable[bytes]) -> int:
        """Add the records among ``lines``; returns how many lines were damaged."""
        damaged = 0
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        for raw in lines:
            if not raw or raw.isspace():
                continue
            try:
                rec = loads(raw)
            except decode_error:
                damaged += 1
                continue
            if type(rec) is not dict or not isinstance(rec.get("id"), str):
                damaged += 1
                continue
            self._add(rec)
        return damaged

    def _damaged(self) -> int:
        return sum(s.damaged + s.tail_damaged for s in self._files.values())

    @property
    def damaged_lines(self) -> int:
        """Damaged lines skipped by the last read (truncated, not JSON, or not a record)."""
        with self._read_lock:
            return self._damaged()

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """All records (of ``kind`` if given), oldest first, as fresh dicts; damaged lines are skipped and counted."""
        with self._read_lock:
            self._refresh()
            if not self._sorted:
                self._records.sort(key=timestamp_of)
                self._sorted = True
            recs = list(self._records)
        return [dict(r) for r in recs if kind is None or r.get("kind") == kind]

    def get(self, record_id: str) -> dict[str, Any] | None:
        """The record with this id, or None."""
        with self._read_lock:
            self._refresh()
            rec = self._by_id.get(record_id)
        return dict(rec) if rec is not None else None

    def evaluations(self, *, in_runs: bool = False) -> list[EvaluationRecord]:
        """Every evaluation record, oldest first, typed; ``in_runs``: only those of a batch run (a ``batch_id``)."""
        records = self.records("evaluation")
        if in_runs:
            records = [r for r in records if r.get("batch_id")]
        return [EvaluationRecord.from_dict(r) for r in records]

    def evaluation(self, record_id: str) -> EvaluationRecord | None:
        """The evaluation record with this id, typed, or None (no record, or not an evaluation)."""
        rec = self.get(record_id)
        return EvaluationRecord.from_dict(rec) if rec is not None and rec.get("kind") == "evaluation" else None

    def feedback(self) -> list[FeedbackRecord]:
        """Every feedback record, oldest first, typed."""
        return [FeedbackRecord.from_dict(r) for r in self.records("feedback")]

    def __len__(self) -> int:
        with self._read_lock:
            self._refresh()
            return len(self._records)

    def aggregate(self) -> dict[str, Any]:
        """Dashboard figures over the whole log: counts, scores, verdicts, categories, days, cost, agreement, sentiment.

        Computed from running totals, so a refresh costs only the parsing of new lines.
        """
        with self._read_lock:
            self._refresh()
            if self._aggregate is None or self._aggregate[0] != self._generation:
                figures = self._stats.aggregate(records=len(self._records), damaged_lines=self._damaged())
                self._aggregate = (self._generation, figures)
            result = self._aggregate[1]
        return copy.deepcopy(result)

    def question_history(self, question_id: str, *, limit: int = 5) -> dict[str, Any]:
        """Evaluations of one dataset question: count, graded count, mean score, and the ``limit`` latest ones."""
        with self._read_lock:
            self._refresh()
            return self._stats.question_history(question_id, limit=limit)

    # -- lifecycle -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Log health for ``/healthz``: where records go, how many, damage, unwritten records, Hub sync."""
        with self._read_lock:
            self._refresh()
            records, files, damaged = len(self._records), len(self._files), self._damaged()
        return {
            "path": str(self.write_path),
            "files": files,
            "records": records,
            "damaged_lines": damaged,
            "unwritten": len(self._pending),
            "hub": self.hub.status() if self.hub is not None else None,
        }

    def close(self) -> None:
        """Write pending records, fsync and close the file, then make the last Hub push."""
        with self._write_lock:
            if self._pending:
                try:
                    self._write_batch(self._pending)
                    self._pending = []
                except OSError as exc:
                    logger.error(
                        "Evaluation log: %d record(s) could not be written at close: %s",
                        len(self._pending),
                        exc.strerror or exc,
                    )
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None
        if self.hub is not None:
            self.hub.close()

"""Batches started from the web app: one per client at a time, streamed, and stopped when the client goes away.

:func:`stream_batch` runs :func:`~evaluator.batch.run_batch` in a worker thread and yields its progress: first
the loading of a candidate model that needs it, then the items as they finish, with their rate. When the
consumer stops iterating (Gradio closes a generator whose client disconnected), the batch's stop event is set:
no new item starts, the calls in flight are recorded, and the thread ends. The client's slot in
:class:`BatchSlots` is released only then, so an abandoned batch never runs beside the client's next one.
The job id comes from the items' content, so the same file run again resumes instead of re-grading.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .batch import run_batch
from .batch_io import BatchItem, ResultRow
from .batch_summary import BatchSummary
from .candidate import load_candidate
from .errors import RateLimitedError

if TYPE_CHECKING:
    from .service import Evaluator

# While a batch runs, a progress update is yielded at least this often (seconds): that is when a
# consumer's disconnection can be noticed, so it bounds how long an abandoned batch keeps starting items.
HEARTBEAT_SECONDS = 1.0

LOADING, GRADING, DONE = "loading", "grading", "done"  # the stages of BatchProgress


def batch_job_id(items: Sequence[BatchItem], *, candidate: str | None, dataset: str) -> str:
    """A job id fixed by what is graded: the same rows (and candidate) run again resume the earlier run."""
    digest = hashlib.sha256()
    for part in (candidate or "", dataset):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x1e")
    for item in items:
        fields = (item.key, item.question_id or "", item.question, item.reference, item.answer or "")
        digest.update("\x1f".join(fields).encode("utf-8", "surrogatepass") + b"\x1e")
    return f"app-{digest.hexdigest()[:16]}"


class BatchSlots:
    """At most one running batch per client; a slot is held until the batch's thread has really ended."""

    def __init__(self) -> None:
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, client: str) -> None:
        """Take ``client``'s slot, or :class:`RateLimitedError` if its previous batch is still running."""
        with self._lock:
            if client in self._running:
                raise RateLimitedError(
                    "You already have a batch running: wait until it finishes (a batch whose page was closed "
                    "stops within seconds), then start the next one.",
                    retry_after=5.0,
                )
            self._running.add(client)

    def release(self, client: str) -> None:
        """Free ``client``'s slot."""
        with self._lock:
            self._running.discard(client)

    def busy(self, client: str) -> bool:
        """True while ``client`` has a batch running."""
        with self._lock:
            return client in self._running


@dataclass(frozen=True)
class BatchProgress:
    """One update of a running batch, as :func:`stream_batch` yields it.

    ``stage`` is ``"loading"`` while the candidate model loads (no item has started; ``message`` says what
    loads), ``"grading"`` while items arrive and ``"done"`` with the ``summary``. ``rate`` is the items per
    second of this run once one has finished (the load does not count).
    """

    done: int
    total: int
    rows: list[ResultRow]
    summary: BatchSummary | None = None
    stage: str = GRADING
    message: str = ""
    rate: float | None = None


def stream_batch(
    evaluator: Evaluator,
    items: Sequence[BatchItem],
    *,
    on_end: Callable[[int], None] | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
    **kwargs: Any,
) -> Iterator[BatchProgress]:
    """Run :func:`run_batch` in a worker thread and yield its :class:`BatchProgress`.

    A candidate model that must be loaded first is loaded in that thread before any item starts, under the
    ``"loading"`` stage. Closing the generator early stops the batch (see the module docstring).
    ``on_end(items finished in this run)`` is called from the worker thread once the batch has ended, however
    it ended.
    """
    events: queue.Queue[tuple[int, int, ResultRow] | str | None] = queue.Queue()
    outcome: dict[str, Any] = {}
    stop = threading.Event()
    finished = [0]
    total = len(items)

    def on_result(done: int, total: int, row: ResultRow) -> None:
        finished[0] += 1
        events.put((done, total, row))

    def work() -> None:
        try:
            answers = any(item.answer is None for item in items)
            load_candidate(kwargs.get("candidate"), answers=answers, announce=events.put)
            events.put(GRADING)
            outcome["summary"] = run_batch(evaluator, items, on_result=on_result, stop=stop, **kwargs)
        except Exception as exc:  # handed to the consumer below
            outcome["error"] = exc
        finally:
            try:
                if on_end is not None:
                    on_end(finished[0])
            finally:
                events.put(None)

    threading.Thread(target=work, name="batch", daemon=True).start()
    rows: list[ResultRow] = []
    done = 0
    stage, message = GRADING, ""
    started = time.monotonic()  # reset when grading starts, so the rate leaves the model's load out

    def update() -> BatchProgress:
        elapsed = time.monotonic() - started
        rate = finished[0] / elapsed if finished[0] and elapsed > 0 else None
        return BatchProgress(done, total, rows, stage=stage, message=message, rate=rate)

    try:
        while True:
            try:
                event = events.get(timeout=heartbeat)
            except queue.Empty:
                yield update()  # nothing new: a heartbeat
                continue
            while event is not None:  # drain what arrived meanwhile: one update per burst
                if isinstance(event, str):  # a stage: the loading message, then GRADING
                    stage, message = (GRADING, "") if event == GRADING else (LOADING, event)
                    started = time.monotonic()
                else:
                    done, _, row = event
                    rows.append(row)
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    break
            if event is None:
                break
            yield update()
    finally:
        stop.set()  # a no-op after the end; on an early close, no new item starts
    if "error" in outcome:
        raise outcome["error"]
    summary = outcome["summary"]
    yield BatchProgress(done, total, rows, summary, stage=DONE, rate=summary.rate or None)

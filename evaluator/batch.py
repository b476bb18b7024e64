"""The batch engine: grade a whole file of answers (or a candidate model's answers), fast and loss-free.

The flow is ``batch_io.parse_batch`` -> ``run_batch`` -> ``BatchSummary`` (and ``batch_io.write_results``
for downloads); input files, result rows and results files are :mod:`evaluator.batch_io`'s, the summary
:mod:`evaluator.batch_summary`'s.

* **Resume.** Each graded item is appended, as it completes, to the evaluation log (with
  ``batch_id = job id`` and a record id derived from job id and item key) and to the output file, one
  flushed line at a time. Re-running the same job skips every item already graded in the output
  or in the log, even after a kill half-way; no item is graded twice and none goes missing.
* **Concurrency** is bounded by ``concurrency`` workers on one event loop calling the judge's
  ``agrade`` (the OpenAI client retries 429/5xx honouring Retry-After). An item still failing after
  that is retried by the engine with exponential backoff and jitter, then recorded as an error with
  its reason — never dropped. Such a failure also halves the calls allowed in flight, which then grow
  back one at a time (AIMD), so a rate-limited server sees fewer doomed retries. The offline judge
  grades in chunks with ``grade_many``, which batches its encoder passes.

Example::

    parsed = parse_batch(Path("answers.jsonl"), evaluator=evaluator)
    summary = run_batch(evaluator, parsed.items, concurrency=16, output=Path("graded.csv"))
    print(summary.text())
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .batch_io import BatchItem, ResultRow, ResultsFile, read_results
from .batch_summary import BatchSummary, summarize
from .errors import CandidateError, EvaluatorError, InputError, StoppedError
from .models import EvaluationRecord, GradeRequest, JudgeResult, Usage, new_id
from .text import plural

if TYPE_CHECKING:
    from .candidate import Candidate, CandidateAnswer
    from .runs import RunInfo
    from .service import Evaluator

logger = logging.getLogger(__name__)

# Judges that batch locally (offline) get chunks of requests: 64 in the first grade_many call, then as many
# as the last call's rate grades in OFFLINE_CHUNK_SECONDS (bigger chunks pad less), so progress moves at least
# every second or two.
OFFLINE_CHUNK = 64
OFFLINE_CHUNK_SECONDS = 1.0
OFFLINE_CHUNK_RANGE = (16, 512)
# When this many items failed after every retry and none was graded yet in the run, the judge (or candidate) is
# taken to be down (wrong URL, key or model): the remaining items are recorded as errors without being sent.
BREAKER_FAILURES = 3

ResultCallback = Callable[[int, int, ResultRow], None]


def record_id(job_id: str, key: str) -> str:
    """The evaluation id of item ``key``'s successful grade in job ``job_id`` (how resume finds it)."""
    return hashlib.sha256(f"{job_id}\x1f{key}".encode()).hexdigest()[:32]


def default_job_id(output: str | os.PathLike[str] | None) -> str:
    """A job id tied to the output file (re-running into it resumes), else a fresh one."""
    if output is None:
        return f"batch-{new_id()[:12]}"
    digest = hashlib.sha1(str(Path(output).resolve()).encode("utf-8")).hexdigest()[:12]
    return f"batch-{digest}"


# -- the engine -----------------------------------------------------------------------------------
class _AdaptiveLimit:
    """Calls allowed in flight, AIMD-style: halved when a call still fails after the client's own retries
    (a 429 storm, an overloaded server), raised by one after as many successes as the current limit.

    Fewer contenders make each retry more likely to land, so an item rarely exhausts its retries. Like
    TCP, it halves at most once per generation: failures of calls that started before the last cut are
    the same congestion, already answered.
    """

    def __init__(self, limit: int) -> None:
        self.ceiling = self.limit = limit
        self.active = 0
        self._successes = 0
        self._generation = 0
        self._changed = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a free slot under the current limit; returns the generation to pass to :meth:`release`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.active < self.limit)
            self.active += 1
            return self._generation

    async def release(self, generation: int, *, ok: bool) -> None:
        """Free a slot and adapt the limit to how the call went."""
        async with self._changed:
            self.active -= 1
            if not ok and generation == self._generation:
                self.limit, self._successes, self._generation = max(1, self.limit // 2), 0, generation + 1
                logger.info("A call failed after the client's retries: concurrency down to %d", self.limit)
            elif ok and self.limit < self.ceiling:
                self._successes += 1
                if self._successes >= self.limit:
                    self.limit, self._successes = self.limit + 1, 0
            self._changed.notify_all()


class _Job:
    """One run of a batch job: resume bookkeeping, bounded workers, retries, appends."""

    def __init__(
        self,
        evaluator: Evaluator,
        items: Sequence[BatchItem],
        *,
        concurrency: int,
        candidate: Candidate | None,
        output: Path | None,
        on_result: ResultCallback | None,
        job_id: str,
        retries: int,
        backoff: float,
        run: RunInfo | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.run_info = run
        self.stop = stop or threading.Event()
        self.items = list(items)
        self.concurrency = concurrency
        self.candidate = candidate
        self.output = ResultsFile(output) if output else None
        self.on_result = on_result
        self.job_id = job_id
        self.retries = retries
        self.backoff = backoff
        self.rows: dict[str, ResultRow] = {}
        self.done = 0
        self.graded = self.failed = 0  # items finished in this run
        self.candidate_cost = 0.0  # spent by the candidate in this run (not in the evaluation records)
        self.broken: str | None = None  # why the rest of the run is not sent (see BREAKER_FAILURES)
        self.judge_slots = _AdaptiveLimit(concurrency)
        self.candidate_slots = _AdaptiveLimit(concurrency)

    def _resume(self) -> list[ResultRow]:
        """Rows of items finished earlier (from the output file, then the log); returns rows of other items."""
        keys = {item.key for item in self.items}
        previous = read_results(self.output.path) if self.output else []
        foreign = [r for r in previous if r.key not in keys]
        self.rows = {r.key: r for r in previous if r.key in keys and r.ok}
        wanted = {record_id(self.job_id, item.key): item for item in self.items if item.key not in self.rows}
        if wanted:
            for record in self.evaluator.log.evaluations():
                item = wanted.get(record.id)
                if item and record.batch_id == self.job_id and record.ok:
                    self.rows[item.key] = ResultRow.of(item, record)
        return foreign

    def _log_run(self, event: str) -> None:
        """Log the start or end of this session of the job (its run record, see :mod:`evaluator.runs`)."""
        from .runs import log_run, run_record

        answered = self.candidate is not None and any(item.answer is None for item in self.items)
        cost = self.candidate_cost if event == "end" else 0.0
        candidate = self.candidate.name if answered and self.candidate else None
        record = run_record(self.evaluator, self.job_id, event, self.items, self.run_info, candidate, cost)
        log_run(self.evaluator, record)

    def _ordered_rows(self, foreign: Sequence[ResultRow]) -> list[ResultRow]:
        return [self.rows[i.key] for i in self.items if i.key in self.rows] + list(foreign)

    async def _pause(self, attempt: int, what: str, reason: object) -> None:
        """Sleep before retry ``attempt`` (1-based): exponential backoff with jitter."""
        delay = self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
        logger.info("%s failed (%s); retry %d/%d in %.2f s", what, reason, attempt, self.retries, delay)
        await asyncio.sleep(delay)

    async def _ask_candidate(self, question: str) -> CandidateAnswer:
        """The candidate's answer, asked again with backoff when it fails; then the last failure is raised."""
        assert self.candidate is not None
        reason: Exception = CandidateError("no attempt made")
        for n in range(self.retries + 1):
            if self.broken:
                raise CandidateError(self.broken)
            if n:
                await self._pause(n, f"Candidate {self.candidate.name}", reason)
            generation = await self.candidate_slots.acquire()
            ok = False
            try:
                reply = await self.candidate.aanswer(question)
                ok = True
                return reply
            except EvaluatorError as exc:
                reason = exc
            except Exception as exc:  # a local model's runtime error must not lose the item either
                logger.warning("Candidate raised %s", type(exc).__name__, exc_info=True)
                reason = CandidateError(f"{type(exc).__name__}: {exc}")
            finally:
                await self.candidate_slots.release(generation, ok=ok)
        raise reason

    async def _grade(self, request: GradeRequest, first: JudgeResult | None = None) -> JudgeResult:
        """The judge's result, re-asked with backoff while it is an error (``first``: a result in hand)."""
        judge = self.evaluator.judge
        result = first
        for n in range(self.retries + 1):
            if result is not None and (result.ok or not result.retryable):
                return result
            if self.broken:
                return self._error_result(self.broken)
            if result is not None:
                await self._pause(n, "Judge", result.error)
            generation = await self.judge_slots.acquire()
            try:
                result = await judge.agrade(request)
            except Exception as exc:  # a judge must not raise, but one that does must not lose the item
                logger.warning("Judge raised %s", type(exc).__name__, exc_info=True)
                result = self._error_result(f"judge failed: {type(exc).__name__}: {exc}")
            finally:
                await self.judge_slots.release(generation, ok=result is not None and result.ok)
        assert result is not None
        return result

    def _error_result(self, message: str) -> JudgeResult:
        judge = self.evaluator.judge
        return JudgeResult(
            status="error", backend=judge.backend, model=judge.model, prompt_version=judge.prompt_version, error=message
        )

    async def _prepare(self, item: BatchItem) -> tuple[GradeRequest | None, JudgeResult | None, Usage]:
        """The grade request for ``item`` (asking the candidate first when it has no answer), or an error."""
        ev = self.evaluator
        question = ev.scrub(item.question)
        answer, usage = item.answer, Usage()
        if answer is None:
            try:
                reply = await self._ask_candidate(question)
                usage = reply.usage
                answer = ev.check_answer(reply.text)
            except EvaluatorError as exc:
                return None, self._error_result(f"candidate model: {exc}"), usage
        request = GradeRequest(question=question, reference=ev.scrub(item.reference), answer=ev.scrub(answer))
        return request, None, usage

    def _finish(self, item: BatchItem, request: GradeRequest | None, result: JudgeResult, usage: Usage) -> None:
        """Log the record, append its row to the output, report progress."""
        ev = self.evaluator
        record = EvaluationRecord.build(
            request or GradeRequest(question=ev.scrub(item.question), reference=ev.scrub(item.reference), answer=""),
            result,
            source="batch",
            question_id=item.question_id,
            category=item.category,
            difficulty=item.difficulty,
            candidate_model=self.candidate.name if item.answer is None and self.candidate else None,
            batch_id=self.job_id,
            # A deterministic id for a success is what lets a resumed run find it in the log.
            id=record_id(self.job_id, item.key) if result.ok else None,
        )
        ev.record(record)
        self._count(result)
        answered = item.answer is None
        row = ResultRow.of(item, record, usage if answered else None)
        if answered:
            self.candidate_cost += usage.cost_usd
        self.rows[item.key] = row
        if self.output:
            self.output.append(row)
        self.done += 1
        if self.on_result:
            self.on_result(self.done, len(self.items), row)

    def _count(self, result: JudgeResult) -> None:
        """Count a finished item; trip the breaker when the first items of the run all failed."""
        if result.ok:
            self.graded += 1
            return
        if not result.retryable:
            return  # this answer cannot be graded, but the judge works: no sign that it is down
        self.failed += 1
        if self.broken is None and not self.graded and self.failed >= BREAKER_FAILURES:
            self.broken = (
                f"not attempted: the first {self.failed} items failed after every retry ({result.error}). "
                "Fix that and run the same batch again: it grades only what is not done."
            )
            logger.warning("Batch %s: %s", self.job_id, self.broken)

    async def _worker(self, queue: asyncio.Queue[BatchItem]) -> None:
        """Take items until none are left: answer if needed, grade, record."""
        while not queue.empty() and not self.stop.is_set():
            item = queue.get_nowait()
            request, error, usage = await self._prepare(item)
            result = error if request is None else await self._grade(request)
            assert result is not None
            self._finish(item, request, result, usage)

    async def _chunked(self, todo: Sequence[BatchItem]) -> None:
        """Judges that batch locally (offline): candidate answers by workers, grades by ``grade_many`` chunks."""
        judge = self.evaluator.judge
        ready: asyncio.Queue[tuple[BatchItem, GradeRequest | None, JudgeResult | None, Usage] | None]
        ready = asyncio.Queue()
        pending: asyncio.Queue[BatchItem] = asyncio.Queue()
        for item in todo:
            pending.put_nowait(item)

        async def answer() -> None:
            while not pending.empty() and not self.stop.is_set():
                item = pending.get_nowait()
                ready.put_nowait((item, *await self._prepare(item)))

        async def answer_all() -> None:
            await asyncio.gather(*(answer() for _ in range(min(self.concurrency, len(todo)))))
            ready.put_nowait(None)

        producer = asyncio.create_task(answer_all())
        try:
            finished = False
            size = OFFLINE_CHUNK
            while not finished and not self.stop.is_set():
                chunk = [await ready.get()]
                while len(chunk) < size and not ready.empty():
                    chunk.append(ready.get_nowait())
                if chunk[-1] is None:
                    finished = True
                entries = [c for c in chunk if c is not None]
                gradable = [(item, req) for item, req, _, _ in entries if req is not None]
                started = time.perf_counter()
                results = iter(await asyncio.to_thread(judge.grade_many, [req for _, req in gradable]))
                if gradable:
                    rate = len(gradable) / max(time.perf_counter() - started, 1e-3)
                    size = max(OFFLINE_CHUNK_RANGE[0], min(OFFLINE_CHUNK_RANGE[1], int(rate * OFFLINE_CHUNK_SECONDS)))
                for item, request, error, usage in entries:
                    result = error if request is None else await self._grade(request, next(results))
                    assert result is not None
                    self._finish(item, request, result, usage)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def run(self) -> BatchSummary:
        """Resume, grade everything not yet done, and summarise."""
        started = time.perf_counter()
        foreign = self._resume()
        skipped = len(self.rows)
        todo = [item for item in self.items if item.key not in self.rows]
        if self.candidate is None and any(item.answer is None for item in todo):
            raise InputError("Some items have no answer: choose a candidate model to answer them")
        self.done = skipped
        self._log_run("start")
        if self.output:
            self.output.open(self._ordered_rows(foreign))
        logger.info(
            "Batch %s: %d items, %d already done, %d to grade", self.job_id, len(self.items), skipped, len(todo)
        )
        try:
            if todo and self.evaluator.judge.grades_in_chunks:
                await self._chunked(todo)
            elif todo:
                queue: asyncio.Queue[BatchItem] = asyncio.Queue()
                for item in todo:
                    queue.put_nowait(item)
                workers = [asyncio.create_task(self._worker(queue)) for _ in range(min(self.concurrency, len(todo)))]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
        finally:
            if self.output:
                self.output.close(self._ordered_rows(foreign))
        self._log_run("end")
        if self.stop.is_set() and len(self.rows) < len(self.items):
            raise StoppedError(
                f"Batch {self.job_id} stopped after {len(self.rows)} of {plural(len(self.items), 'item')}; "
                "run it again to grade the rest."
            )
        rows = [self.rows[item.key] for item in self.items]
        return summarize(
            self.job_id,
            rows,
            skipped=skipped,
            processed=len(todo),
            wall_seconds=time.perf_counter() - started,
        )


async def arun_batch(
    evaluator: Evaluator,
    items: Sequence[BatchItem],
    *,
    concurrency: int = 8,
    candidate: Candidate | None = None,
    output: str | os.PathLike[str] | None = None,
    on_result: ResultCallback | None = None,
    job_id: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    run: RunInfo | None = None,
    stop: threading.Event | None = None,
) -> BatchSummary:
    """Grade ``items`` with at most ``concurrency`` judge calls in flight; the async core of :func:`run_batch`."""
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}")
    keys = Counter(item.key for item in items)
    duplicates = [k for k, n in keys.items() if n > 1]
    if duplicates:
        raise InputError(f"Batch item keys must be unique; repeated: {', '.join(duplicates[:5])}")
    job = _Job(
        evaluator,
        items,
        concurrency=concurrency,
        candidate=candidate,
        output=Path(output) if output is not None else None,
        on_result=on_result,
        job_id=job_id or default_job_id(output),
        retries=retries,
        backoff=backoff,
        run=run,
        stop=stop,
    )
    return await job.run()


def run_batch(
    evaluator: Evaluator,
    items: Sequence[BatchItem],
    *,
    concurrency: int = 8,
    candidate: Candidate | None = None,
    output: str | os.PathLike[str] | None = None,
    on_result: ResultCallback | None = None,
    job_id: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    run: RunInfo | None = None,
    stop: threading.Event | None = None,
) -> BatchSummary:
    """Grade a batch and return its summary (blocking; runs its own event loop).

    Args:
        evaluator: supplies the judge, validation, PII scrubbing and the evaluation log.
        items: from :func:`parse_batch` (keys must be unique).
        concurrency: judge (and candidate) calls in flight at most.
        candidate: answers items that have no answer.
        output: a ``.jsonl``/``.csv`` results file, appended as items finish and resumed from.
        on_result: ``on_result(done, total, row)`` after each item, for progress bars.
        job_id: the ``batch_id`` in the log; default tied to ``output`` (so re-running resumes).
        retries: extra attempts for an item that still fails after the client's own retries.
        backoff: first retry delay in seconds (doubling, with jitter).
        run: the run's name, source and input file, for its run records (see :mod:`evaluator.runs`).
        stop: when set, no new item starts; the run ends with :class:`StoppedError` once the calls in flight
            are recorded (everything graded is in the log and ``output``, and the next run resumes it).
    """
    return asyncio.run(
        arun_batch(
            evaluator,
            items,
            concurrency=concurrency,
            candidate=candidate,
            output=output,
            on_result=on_result,
            job_id=job_id,
            retries=retries,
            backoff=backoff,
            run=run,
            stop=stop,
        )
    )

"""Batch evaluation: grade a whole file of answers (or a candidate model's answers), fast and loss-free.

The flow is ``parse_batch`` -> ``run_batch`` -> ``BatchSummary`` (and ``write_results`` for downloads):

* **Input** rows (JSONL or CSV) name a dataset question by ``question_id``, or carry ``question`` and
  ``reference``; ``answer`` is the answer under test. A row without an answer is answered first by a
  candidate model (:mod:`evaluator.candidate`). A malformed row is reported by its line number and
  the valid rows still run.
* **Item keys** make a job resumable: the row's ``id`` column, else a hash of its question, answer
  and line. Each graded item is appended, as it completes, to the evaluation log (with
  ``batch_id = job id`` and a record id derived from job id and key) and to the output file, one
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
import csv
import hashlib
import io
import json
import logging
import os
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import csvsafe
from .dataset import UNCATEGORISED, Dataset, _cell
from .errors import CandidateError, EvaluatorError, InputError, StoppedError
from .files import write_atomic
from .models import VERDICTS, EvaluationRecord, GradeRequest, JudgeResult, Usage, new_id
from .text import plural
from .textsafety import MAX_LABEL_CHARS, check_text

if TYPE_CHECKING:
    from .candidate import Candidate, CandidateAnswer
    from .runs import RunInfo
    from .service import Evaluator

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
# Columns of a results file (CSV order); ``criteria`` and ``missed_points`` are JSON inside a CSV cell.
RESULT_FIELDS = (
    "key",
    "line",
    "question_id",
    "category",
    "question",
    "reference",
    "answer",
    "candidate_model",
    "status",
    "error",
    "score",
    "verdict",
    "criteria",
    "feedback",
    "missed_points",
    "confidence",
    "caveat",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "cost_usd",
    "candidate_tokens",
    "latency_ms",
    "judge_backend",
    "judge_model",
    "prompt_version",
    "evaluation_id",
    "batch_id",
)
_INT_FIELDS = ("line", "prompt_tokens", "completion_tokens", "tokens", "candidate_tokens")
_FLOAT_FIELDS = ("score", "confidence", "cost_usd", "latency_ms")
_JSON_FIELDS = ("criteria", "missed_points")
# Reference columns accepted in batch files ("answer" is the answer under test here, not the reference).
_REFERENCE_KEYS = ("reference", "reference_answer", "expected_answer")
# Judges that batch locally (offline) get chunks of requests: 64 in the first grade_many call, then as many
# as the last call's rate grades in OFFLINE_CHUNK_SECONDS (bigger chunks pad less), so progress moves at least
# every second or two.
OFFLINE_CHUNK = 64
OFFLINE_CHUNK_SECONDS = 1.0
OFFLINE_CHUNK_RANGE = (16, 512)
# When this many items failed after every retry and none was graded yet in the run, the judge (or candidate) is
# taken to be down (wrong URL, key or model): the remaining items are recorded as errors without being sent.
BREAKER_FAILURES = 3

ResultCallback = Callable[[int, int, dict[str, Any]], None]


@dataclass(frozen=True)
class BatchItem:
    """One valid input row: what to grade, and the key that identifies it across runs of a job."""

    key: str
    line: int
    question: str
    reference: str
    answer: str | None  # None: the candidate model answers first
    question_id: str | None = None
    category: str | None = None
    difficulty: str | None = None


@dataclass(frozen=True)
class ParsedBatch:
    """The valid items of a batch file and one message per malformed row (``line N: reason``)."""

    items: list[BatchItem]
    errors: list[str]

    @property
    def needs_candidate(self) -> bool:
        """True when some item has no answer, so a candidate model must answer it."""
        return any(item.answer is None for item in self.items)


@dataclass(frozen=True)
class BatchSummary:
    """Aggregates of one batch job; ``rows`` holds every item's result row, in input order.

    ``ok``/``failed`` count all items of the job, ``skipped`` those graded by an earlier run of the
    same job (their rows are included). ``rate`` is items processed per second in this run.
    """

    job_id: str
    n: int
    ok: int
    failed: int
    skipped: int
    mean_score: float | None
    verdicts: dict[str, int]
    category_means: dict[str, float]
    prompt_tokens: int
    completion_tokens: int
    candidate_tokens: int
    cost_usd: float
    wall_seconds: float
    rate: float
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def tokens(self) -> int:
        """Judge tokens, prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready aggregates (without the rows)."""
        return {
            "job_id": self.job_id,
            "n": self.n,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "mean_score": self.mean_score,
            "verdicts": dict(self.verdicts),
            "category_means": dict(self.category_means),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "candidate_tokens": self.candidate_tokens,
            "cost_usd": self.cost_usd,
            "wall_seconds": round(self.wall_seconds, 3),
            "rate": round(self.rate, 2),
        }

    def text(self) -> str:
        """A human summary, a few lines of plain text."""
        mean = f"{self.mean_score:.2f}/10" if self.mean_score is not None else "n/a"
        lines = [
            f"Batch {self.job_id}: {plural(self.n, 'item')}, {self.ok} ok, {self.failed} failed"
            f" ({self.skipped} already done in an earlier run)",
            f"Mean score: {mean}",
            "Verdicts: " + ", ".join(f"{v} {self.verdicts.get(v, 0)}" for v in VERDICTS),
        ]
        if self.category_means:
            lines.append("Per category: " + ", ".join(f"{c} {m:.2f}" for c, m in self.category_means.items()))
        cand = f", candidate {self.candidate_tokens}" if self.candidate_tokens else ""
        lines.append(f"Tokens: judge {self.tokens}{cand}   Cost: ${self.cost_usd:.6f}")
        lines.append(f"Time: {self.wall_seconds:.2f} s   Rate: {self.rate:.3g} items/s")
        return "\n".join(lines)


# -- formats and files ----------------------------------------------------------------------------
def file_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``jsonl`` or ``csv``: ``fmt`` if given, else from the file extension."""
    name = (fmt or Path(path).suffix).lower().lstrip(".")
    name = "jsonl" if name in ("json", "ndjson") else name
    if name not in FORMATS:
        raise InputError(f"Unsupported batch file format {name or Path(path).name!r}: use .jsonl or .csv")
    return name


def _key_for(question_id: str | None, question: str, answer: str | None, line: int) -> str:
    """A stable key for a row without an ``id``: same file, same row -> same key."""
    raw = "\x1f".join((question_id or question, answer or "", str(line)))
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


def record_id(job_id: str, key: str) -> str:
    """The evaluation id of item ``key``'s successful grade in job ``job_id`` (how resume finds it)."""
    return hashlib.sha256(f"{job_id}\x1f{key}".encode()).hexdigest()[:32]


def default_job_id(output: str | os.PathLike[str] | None) -> str:
    """A job id tied to the output file (re-running into it resumes), else a fresh one."""
    if output is None:
        return f"batch-{new_id()[:12]}"
    digest = hashlib.sha1(str(Path(output).resolve()).encode("utf-8")).hexdigest()[:12]
    return f"batch-{digest}"


# -- parsing --------------------------------------------------------------------------------------
def _parse_row(raw: Any, line: int, *, evaluator: Evaluator, candidate: bool, seen: dict[str, int]) -> BatchItem | str:
    """A valid item, or the message saying why row ``line`` is malformed."""
    if not isinstance(raw, dict):
        return f"line {line}: expected an object with question_id (or question and reference) and answer"
    question_id = _cell(raw.get("question_id")) or None
    reference = next((_cell(raw.get(k)) for k in _REFERENCE_KEYS if _cell(raw.get(k))), "")
    try:
        explicit, category, difficulty = (
            check_text(_cell(raw.get(name)), name, limit=MAX_LABEL_CHARS) for name in ("id", "category", "difficulty")
        )
        item, question, reference = evaluator.resolve(
            question_id=question_id, question=_cell(raw.get("question")), reference=reference
        )
        answer: str | None = _cell(raw.get("answer"))
        if answer:
            answer = evaluator.check_answer(answer)
        elif candidate:
            answer = None
        else:
            raise InputError("the answer is empty and no candidate model is set to answer it")
    except InputError as exc:
        return f"line {line}: {exc}"
    if explicit in seen:
        return f"line {line}: id {explicit!r} repeats line {seen[explicit]}"
    if explicit:
        seen[explicit] = line
    return BatchItem(
        key=explicit or _key_for(question_id, question, answer, line),
        line=line,
        question=question,
        reference=reference,
        answer=answer,
        question_id=item.id if item else None,
        category=item.category if item else (category or None),
        difficulty=item.difficulty if item else (difficulty or None),
    )


class _RowError(str):
    """The message of a row that could not be read (told apart from a row that is a JSON string)."""


def _rows(text: str, fmt: str) -> Iterable[tuple[int, Any]]:
    """(line number, raw row) pairs; an unparseable row yields its :class:`_RowError` instead."""
    if fmt == "jsonl":
        for line, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                yield line, json.loads(raw)
            except json.JSONDecodeError as exc:
                yield line, _RowError(f"line {line}: invalid JSON ({exc.msg} at column {exc.colno})")
        return
    buffer = io.StringIO(text)
    reader = csv.DictReader(buffer)
    try:
        header = [h.strip() for h in reader.fieldnames or []]
    except csv.Error as exc:
        yield 1, _RowError(f"line 1: unreadable CSV header ({exc})")
        return
    if "question_id" not in header and "question" not in header:
        yield 1, _RowError(f"line 1: the CSV header needs a question_id or question column; got {header}")
        return
    while True:
        start, position = reader.line_num + 1, buffer.tell()  # where the next row begins
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): report that row, read on
            yield start, _RowError(f"line {start}: unreadable CSV row ({exc})")
            if buffer.tell() == position:  # nothing was consumed: reading on would not move
                return
            continue
        yield reader.line_num, {(k or "").strip(): v for k, v in row.items()}


def parse_batch(
    source: str | os.PathLike[str], fmt: str | None = None, *, evaluator: Evaluator, candidate: bool = False
) -> ParsedBatch:
    """Parse a batch file (a path) or its text (a ``str``, with ``fmt``) into items and row errors.

    Args:
        source: a ``Path`` to read, or the file's text.
        fmt: ``jsonl`` or ``csv``; default from the path's extension (required for text).
        evaluator: resolves question ids in its dataset and validates answers.
        candidate: a candidate model will answer rows without an answer (else they are malformed).

    Malformed rows (bad JSON, missing fields, unknown question id, empty answer without a
    candidate, duplicate id) become ``errors`` like ``"line 7: No question with id 'q99' ..."``;
    every valid row is in ``items``. A missing or unreadable file raises :class:`InputError`.
    """
    if isinstance(source, os.PathLike):
        path = Path(source)
        fmt = file_format(path, fmt)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"Batch file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read batch file {path.name}: {exc}") from None
    else:
        if fmt is None:
            raise InputError("Say whether the batch text is jsonl or csv")
        fmt, text = file_format("", fmt), source.lstrip("\ufeff")
    items: list[BatchItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, raw in _rows(text, fmt):
        parsed = (
            raw
            if isinstance(raw, _RowError)
            else _parse_row(raw, line, evaluator=evaluator, candidate=candidate, seen=seen)
        )
        (errors if isinstance(parsed, str) else items).append(parsed)
    if not items and not errors:
        errors.append("line 1: the batch file has no rows")
    return ParsedBatch(items=items, errors=errors)


def dataset_items(dataset: Dataset, limit: int | None = None) -> list[BatchItem]:
    """The first ``limit`` questions of ``dataset`` (all of them for None) as items a candidate model answers.

    Items have no answer and are keyed by question id, so a re-run of the same job skips those already graded.
    """
    chosen = dataset.items if limit is None else dataset.items[: max(0, limit)]
    return [
        BatchItem(
            key=item.id,
            line=n,
            question=item.question,
            reference=item.reference,
            answer=None,
            question_id=item.id,
            category=item.category,
            difficulty=item.difficulty,
        )
        for n, item in enumerate(chosen, 1)
    ]


# -- results rows and files -----------------------------------------------------------------------
def result_row(item: BatchItem, record: Mapping[str, Any], *, candidate_tokens: int | None = None) -> dict[str, Any]:
    """The results-file row of ``item`` from its evaluation-log record (``EvaluationRecord.to_dict()``)."""
    prompt = int(record.get("prompt_tokens") or 0)
    completion = int(record.get("completion_tokens") or 0)
    return {
        "key": item.key,
        "line": item.line,
        "question_id": record.get("question_id"),
        "category": record.get("category"),
        "question": record.get("question"),
        "reference": record.get("reference"),
        "answer": record.get("answer"),
        "candidate_model": record.get("candidate_model"),
        "status": record.get("status"),
        "error": record.get("error"),
        "score": record.get("score"),
        "verdict": record.get("verdict"),
        "criteria": record.get("criteria"),
        "feedback": record.get("feedback"),
        "missed_points": record.get("missed_points"),
        "confidence": record.get("confidence"),
        "caveat": record.get("caveat"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": prompt + completion,
        "cost_usd": record.get("cost_usd") or 0.0,
        "candidate_tokens": candidate_tokens,
        "latency_ms": record.get("latency_ms"),
        "judge_backend": record.get("judge_backend"),
        "judge_model": record.get("judge_model"),
        "prompt_version": record.get("prompt_version"),
        "evaluation_id": record.get("id"),
        "batch_id": record.get("batch_id"),
    }


def _typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row read back from a results file, with numbers and JSON cells restored (CSV stores text)."""
    out = {k: (None if v == "" else v) for k, v in row.items()}
    for name in _INT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = int(float(out[name]))
    for name in _FLOAT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = float(out[name])
    for name in _JSON_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    return out


def _csv_cells(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as CSV cells: JSON fields as JSON text, text a spreadsheet would run as a formula defused."""
    return {
        k: csvsafe.defuse(
            json.dumps(row.get(k), ensure_ascii=False) if k in _JSON_FIELDS and row.get(k) is not None else row.get(k)
        )
        for k in RESULT_FIELDS
    }


def _serialise(rows: Iterable[Mapping[str, Any]], fmt: str, *, header: bool) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps({k: r.get(k) for k in RESULT_FIELDS}, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(_csv_cells(r) for r in rows)
    return buf.getvalue()


def write_results(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    """Write result rows (``BatchSummary.rows``) to a CSV or JSONL file, atomically; returns the path."""
    return write_atomic(path, _serialise(rows, file_format(path, fmt), header=True))


def read_results(path: str | os.PathLike[str], fmt: str | None = None) -> list[dict[str, Any]]:
    """The rows of a results file (missing file: none); a half-written line is skipped."""
    path = Path(path)
    fmt = file_format(path, fmt)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = []
    raw_rows: Iterable[Any]
    if fmt == "jsonl":
        raw_rows = []
        for line in text.splitlines():
            try:
                raw_rows.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s: skipping a damaged results line", path.name)
    else:
        raw_rows = []
        for _line, raw in _rows(text, "csv"):
            if isinstance(raw, _RowError):  # e.g. a reference over csv.field_size_limit(): resume finds it in the log
                logger.warning("%s: skipping a results row: %s", path.name, raw)
            else:
                raw_rows.append({k: csvsafe.restore(v) for k, v in raw.items()})
    for raw in raw_rows:
        try:
            # A row cut short by a kill lacks its last columns (evaluation_id, batch_id): not a finished item.
            if isinstance(raw, dict) and raw.get("key") and raw.get("evaluation_id"):
                rows.append(_typed(raw))
        except (ValueError, TypeError):
            logger.warning("%s: skipping a damaged results row", path.name)
    return rows


class _ResultsFile:
    """The job's output file: rows appended one flushed line at a time, rewritten in order at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fmt = file_format(path)
        self._fh: io.TextIOWrapper | None = None

    def open(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite the file with ``rows`` (normalised) and open it for appending."""
        write_results(rows, self.path, self.fmt)
        self._fh = self.path.open("a", encoding="utf-8", newline="")

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it, so a killed run keeps every finished item."""
        assert self._fh is not None
        self._fh.write(_serialise([row], self.fmt, header=False))
        self._fh.flush()

    def close(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Close, then rewrite the file with the final ``rows``."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        write_results(rows, self.path, self.fmt)


# -- summary --------------------------------------------------------------------------------------
def summarize(
    job_id: str, rows: Sequence[Mapping[str, Any]], *, skipped: int = 0, processed: int = 0, wall_seconds: float = 0.0
) -> BatchSummary:
    """Aggregates over result rows: counts, mean score, verdicts, per-category means, tokens, cost."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("score") is not None]
    by_category: dict[str, list[float]] = defaultdict(list)
    for r in ok:
        by_category[r.get("category") or UNCATEGORISED].append(float(r["score"]))
    verdicts = Counter(r.get("verdict") for r in ok)
    return BatchSummary(
        job_id=job_id,
        n=len(rows),
        ok=len(ok),
        failed=len(rows) - len(ok),
        skipped=skipped,
        mean_score=round(statistics.fmean(float(r["score"]) for r in ok), 3) if ok else None,
        verdicts={v: verdicts[v] for v in VERDICTS},
        category_means={c: round(statistics.fmean(s), 3) for c, s in sorted(by_category.items())},
        prompt_tokens=sum(int(r.get("prompt_tokens") or 0) for r in rows),
        completion_tokens=sum(int(r.get("completion_tokens") or 0) for r in rows),
        candidate_tokens=sum(int(r.get("candidate_tokens") or 0) for r in rows),
        cost_usd=sum(float(r.get("cost_usd") or 0.0) for r in rows),
        wall_seconds=wall_seconds,
        rate=processed / wall_seconds if wall_seconds > 0 else 0.0,
        rows=list(rows),
    )


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
        self.output = _ResultsFile(output) if output else None
        self.on_result = on_result
        self.job_id = job_id
        self.retries = retries
        self.backoff = backoff
        self.rows: dict[str, dict[str, Any]] = {}
        self.done = 0
        self.graded = self.failed = 0  # items finished in this run
        self.candidate_cost = 0.0  # spent by the candidate in this run (not in the evaluation records)
        self.broken: str | None = None  # why the rest of the run is not sent (see BREAKER_FAILURES)
        self.judge_slots = _AdaptiveLimit(concurrency)
        self.candidate_slots = _AdaptiveLimit(concurrency)

    def _resume(self) -> list[dict[str, Any]]:
        """Rows of items finished earlier (from the output file, then the log); returns rows of other items."""
        keys = {item.key for item in self.items}
        previous = read_results(self.output.path) if self.output else []
        foreign = [r for r in previous if r["key"] not in keys]
        self.rows = {r["key"]: r for r in previous if r["key"] in keys and r.get("status") == "ok"}
        wanted = {record_id(self.job_id, item.key): item for item in self.items if item.key not in self.rows}
        if wanted:
            for rec in self.evaluator.log.records("evaluation"):
                item = wanted.get(rec.get("id"))
                if item and rec.get("batch_id") == self.job_id and rec.get("status") == "ok":
                    self.rows[item.key] = result_row(item, rec)
        return foreign

    def _log_run(self, event: str) -> None:
        """Log the start or end of this session of the job (its run record, see :mod:`evaluator.runs`)."""
        from .runs import log_run, run_record

        answered = self.candidate is not None and any(item.answer is None for item in self.items)
        cost = self.candidate_cost if event == "end" else 0.0
        candidate = self.candidate.name if answered and self.candidate else None
        record = run_record(self.evaluator, self.job_id, event, self.items, self.run_info, candidate, cost)
        log_run(self.evaluator, record)

    def _ordered_rows(self, foreign: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
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
        record = EvaluationRecord(
            question_id=item.question_id,
            question=request.question if request else self.evaluator.scrub(item.question),
            reference=request.reference if request else self.evaluator.scrub(item.reference),
            answer=request.answer if request else "",
            result=result,
            category=item.category,
            difficulty=item.difficulty,
            source="batch",
            candidate_model=self.candidate.name if item.answer is None and self.candidate else None,
            batch_id=self.job_id,
            # A deterministic id for a success is what lets a resumed run find it in the log.
            id=record_id(self.job_id, item.key) if result.ok else new_id(),
        )
        self.evaluator.record(record)
        self._count(result)
        row = result_row(item, record.to_dict(), candidate_tokens=usage.total_tokens if item.answer is None else None)
        if item.answer is None and usage.cost_usd:
            row["cost_usd"] += usage.cost_usd
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
            if todo and getattr(self.evaluator.judge, "backend", None) == "offline":
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

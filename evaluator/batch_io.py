"""Batch files: input files (JSONL or CSV) -> items, and result rows <-> results files.

* **Input** rows name a dataset question by ``question_id``, or carry ``question`` and ``reference``;
  ``answer`` is the answer under test. A row without an answer is answered first by a candidate model
  (:mod:`evaluator.candidate`). A malformed row is reported by its line number and the valid rows still run.
* **Item keys** make a job resumable: the row's ``id`` column, else a hash of its question, answer and line.
* **Results files** hold one row per graded item (:data:`RESULT_FIELDS`); :class:`ResultsFile` appends them
  one flushed line at a time while a job runs, so a killed run keeps every finished item.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import csvsafe
from .dataset import Dataset, cell
from .errors import InputError
from .files import write_atomic
from .models import EvaluationRecord, Usage
from .textsafety import MAX_LABEL_CHARS, check_text

if TYPE_CHECKING:
    from .service import Evaluator

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
# Reference columns accepted in batch files ("answer" is the answer under test here, not the reference).
_REFERENCE_KEYS = ("reference", "reference_answer", "expected_answer")


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
class ResultRow:
    """One graded item as a results file holds it (the columns, in CSV order, are :data:`RESULT_FIELDS`).

    ``tokens`` are the judge's (prompt plus completion); ``cost_usd`` includes the candidate's answer.
    ``criteria`` and ``missed_points`` are JSON inside a CSV cell.
    """

    key: str
    line: int
    question_id: str | None
    category: str | None
    question: str
    reference: str
    answer: str
    candidate_model: str | None
    status: str
    error: str | None
    score: float | None
    verdict: str | None
    criteria: dict[str, int] | None
    feedback: str | None
    missed_points: list[str] | None
    confidence: float | None
    caveat: str | None
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    cost_usd: float
    candidate_tokens: int | None
    latency_ms: float | None
    judge_backend: str | None
    judge_model: str | None
    prompt_version: str | None
    evaluation_id: str | None
    batch_id: str | None

    @property
    def ok(self) -> bool:
        """True when the item was graded."""
        return self.status == "ok"

    @classmethod
    def of(cls, item: BatchItem, record: EvaluationRecord, candidate: Usage | None = None) -> ResultRow:
        """The row of ``item`` from its evaluation record; ``candidate``: what answering it cost, if a model did."""
        data = record.to_dict()
        usage = record.result.usage
        fields = {name: data.get(name) for name in RESULT_FIELDS if name in data}
        fields.update(
            key=item.key,
            line=item.line,
            tokens=usage.total_tokens,
            cost_usd=usage.cost_usd + (candidate.cost_usd if candidate else 0.0),
            candidate_tokens=candidate.total_tokens if candidate else None,
            evaluation_id=record.id,
        )
        return cls(**fields)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ResultRow:
        """The row read back from a results file: numbers and JSON cells restored (CSV stores text).

        ``ValueError``/``TypeError`` for a damaged row.
        """
        out = {name: (None if raw.get(name) == "" else raw.get(name)) for name in RESULT_FIELDS}
        for name, kind in _CELL_TYPES.items():
            if isinstance(out[name], str):
                out[name] = kind(out[name])
        for name in ("prompt_tokens", "completion_tokens", "tokens"):
            out[name] = out[name] or 0
        out["cost_usd"] = out["cost_usd"] or 0.0
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready row, columns in :data:`RESULT_FIELDS` order."""
        return {name: getattr(self, name) for name in RESULT_FIELDS}


def _whole(text: str) -> int:
    return int(float(text))


RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ResultRow))
_JSON_FIELDS = ("criteria", "missed_points")
# How a CSV cell's text is read back, per typed column.
_CELL_TYPES: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(
        ("line", "prompt_tokens", "completion_tokens", "tokens", "candidate_tokens"), lambda v: int(float(v))
    ),
    **dict.fromkeys(("score", "confidence", "cost_usd", "latency_ms"), float),
    **dict.fromkeys(_JSON_FIELDS, json.loads),
}


# -- formats ------------------------------------------------------------------------------------
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


# -- parsing --------------------------------------------------------------------------------------
def parse_row(raw: Any, line: int, *, evaluator: Evaluator, candidate: bool, seen: dict[str, int]) -> BatchItem | str:
    """A valid item, or the message saying why row ``line`` is malformed."""
    if not isinstance(raw, dict):
        return f"line {line}: expected an object with question_id (or question and reference) and answer"
    question_id = cell(raw.get("question_id")) or None
    reference = next((cell(raw.get(k)) for k in _REFERENCE_KEYS if cell(raw.get(k))), "")
    try:
        explicit, category, difficulty = (
            check_text(cell(raw.get(name)), name, limit=MAX_LABEL_CHARS) for name in ("id", "category", "difficulty")
        )
        item, question, reference = evaluator.resolve(
            question_id=question_id, question=cell(raw.get("question")), reference=reference
        )
        answer: str | None = cell(raw.get("answer"))
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


def read_rows(text: str, fmt: str) -> Iterable[tuple[int, Any]]:
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


def read_input(path: Path, what: str = "file") -> str:
    """The text of an input file (a UTF-8 BOM dropped); :class:`InputError` naming ``what`` if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what.capitalize()} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {what} {path.name}: {exc}") from None


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
        text = read_input(path, "batch file")
    else:
        if fmt is None:
            raise InputError("Say whether the batch text is jsonl or csv")
        fmt, text = file_format("", fmt), source.lstrip("\ufeff")
    items: list[BatchItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, raw in read_rows(text, fmt):
        parsed = (
            raw
            if isinstance(raw, _RowError)
            else parse_row(raw, line, evaluator=evaluator, candidate=candidate, seen=seen)
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
def _csv_cells(row: ResultRow) -> dict[str, Any]:
    """A row as CSV cells: JSON fields as JSON text, text a spreadsheet would run as a formula defused."""
    data = row.to_dict()
    for name in _JSON_FIELDS:
        if data[name] is not None:
            data[name] = json.dumps(data[name], ensure_ascii=False)
    return {k: csvsafe.defuse(v) for k, v in data.items()}


def _serialise(rows: Iterable[ResultRow], fmt: str, *, header: bool) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(_csv_cells(r) for r in rows)
    return buf.getvalue()


def write_results(rows: Iterable[ResultRow], path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    """Write result rows (e.g. ``BatchSummary.rows``) to a CSV or JSONL file, atomically; returns the path."""
    return write_atomic(path, _serialise(rows, file_format(path, fmt), header=True))


def read_results(path: str | os.PathLike[str], fmt: str | None = None) -> list[ResultRow]:
    """The rows of a results file (missing file: none); a half-written line is skipped."""
    path = Path(path)
    fmt = file_format(path, fmt)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    rows: list[ResultRow] = []
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
        for _line, raw in read_rows(text, "csv"):
            if isinstance(raw, _RowError):  # e.g. a reference over csv.field_size_limit(): resume finds it in the log
                logger.warning("%s: skipping a results row: %s", path.name, raw)
            else:
                raw_rows.append({k: csvsafe.restore(v) for k, v in raw.items()})
    for raw in raw_rows:
        try:
            # A row cut short by a kill lacks its last columns (evaluation_id, batch_id): not a finished item.
            if isinstance(raw, dict) and raw.get("key") and raw.get("evaluation_id"):
                rows.append(ResultRow.from_dict(raw))
        except (ValueError, TypeError):
            logger.warning("%s: skipping a damaged results row", path.name)
    return rows


class ResultsFile:
    """The job's output file: rows appended one flushed line at a time, rewritten in order at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fmt = file_format(path)
        self._fh: io.TextIOWrapper | None = None

    def open(self, rows: Sequence[ResultRow]) -> None:
        """Rewrite the file with ``rows`` (normalised) and open it for appending."""
        write_results(rows, self.path, self.fmt)
        self._fh = self.path.open("a", encoding="utf-8", newline="")

    def append(self, row: ResultRow) -> None:
        """Append one row and flush it, so a killed run keeps every finished item."""
        assert self._fh is not None
        self._fh.write(_serialise([row], self.fmt, header=False))
        self._fh.flush()

    def close(self, rows: Sequence[ResultRow]) -> None:
        """Close, then rewrite the file with the final ``rows``."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        write_results(rows, self.path, self.fmt)

"""Runs: every batch job as a named, listable run, rebuilt from the evaluation log.

A run is the set of evaluation records that share a ``batch_id`` (the batch job id), plus the small
``kind = "run"`` records that :class:`RunRecord` writes when a job starts and ends (its name, where it came
from, the dataset it covered and its content hash, the candidate model, the judge). Everything else (counts,
mean score, cost, start and end) is derived from the evaluation records, so runs logged before run records
existed are listed too, and runs come back from the Hub with the log.

Items: the records of a run are grouped by question (its dataset id, else its text). A question's successful
grade wins over its failed attempts (a resumed job retries them); one question answered twice with different
answers in the same file counts as two items.

Example::

    index = RunIndex.from_log(evaluator.log)
    for run in index.runs():
        print(run.id, run.name, run.mean_score)
    items = index.items(index.get("baseline").id)
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, LogError, NotFoundError
from .models import SCHEMA_VERSION, EvaluationRecord, new_id, utc_now

if TYPE_CHECKING:
    from .batch_io import BatchItem
    from .log import EvalLog
    from .service import Evaluator

logger = logging.getLogger(__name__)

RUN_KIND = "run"
# Where a run was started (``source`` of its run records).
SOURCES = ("cli", "app", "openai-batch", "head-to-head")
_RESULTS_SUFFIXES = (".jsonl", ".csv", ".json", ".ndjson")


def question_key(record: EvaluationRecord) -> str:
    """The identity of a record's question across runs: its dataset id, else a hash of its text."""
    if record.question_id:
        return record.question_id
    text = " ".join(record.question.split()).lower()
    return "q:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def content_hash(pairs: Iterable[tuple[str, str]]) -> str:
    """A short hash of (question, reference) pairs, order-free: the version of the questions a run covered."""
    digest = hashlib.sha256()
    for question, reference in sorted(set(pairs)):
        digest.update(f"{question}\x1f{reference}\x1e".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class RunRecord:
    """The start or end of one session of a batch job (``kind = "run"``); a resumed job adds another pair."""

    run_id: str
    event: str  # "start" or "end"
    source: str = "cli"
    name: str | None = None
    dataset: str | None = None
    dataset_hash: str | None = None
    input: str | None = None
    candidate_model: str | None = None
    judge_backend: str | None = None
    judge_model: str | None = None
    prompt_version: str | None = None
    items: int | None = None
    extra_cost_usd: float = 0.0  # spent outside the evaluation records (candidate answers, pairwise judging)
    head_to_head: str | None = None  # the head-to-head this run belongs to
    id: str = field(default_factory=new_id)
    timestamp: str = field(default_factory=utc_now)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """The record of one log line (``to_dict()``'s output); missing or mistyped fields read as empty."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        items, extra = data.get("items"), data.get("extra_cost_usd")
        return cls(
            run_id=text("run_id") or "",
            event=text("event") or "",
            source=text("source") or "",
            name=text("name"),
            dataset=text("dataset"),
            dataset_hash=text("dataset_hash"),
            input=text("input"),
            candidate_model=text("candidate_model"),
            judge_backend=text("judge_backend"),
            judge_model=text("judge_model"),
            prompt_version=text("prompt_version"),
            items=items if isinstance(items, int) and not isinstance(items, bool) else None,
            extra_cost_usd=float(extra) if isinstance(extra, int | float) and not isinstance(extra, bool) else 0.0,
            head_to_head=text("head_to_head"),
            id=text("id") or "",
            timestamp=text("timestamp") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON-ready dict written as one log line."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": RUN_KIND,
            "id": self.id,
            "timestamp": self.timestamp,
            "run_id": self.run_id,
            "event": self.event,
            "source": self.source,
            "name": self.name,
            "dataset": self.dataset,
            "dataset_hash": self.dataset_hash,
            "input": self.input,
            "candidate_model": self.candidate_model,
            "judge_backend": self.judge_backend,
            "judge_model": self.judge_model,
            "prompt_version": self.prompt_version,
            "items": self.items,
            "extra_cost_usd": self.extra_cost_usd,
            "head_to_head": self.head_to_head,
        }


@dataclass(frozen=True)
class RunInfo:
    """What the caller of a batch knows about its run: a name, where it was started, the input file."""

    name: str | None = None
    source: str = "cli"
    input: str | None = None
    head_to_head: str | None = None


def run_record(
    evaluator: Evaluator,
    run_id: str,
    event: str,
    items: Sequence[BatchItem],
    info: RunInfo | None = None,
    candidate_model: str | None = None,
    extra_cost_usd: float = 0.0,
) -> RunRecord:
    """The start or end record of a session of batch job ``run_id`` over ``items``, graded by the evaluator's judge."""
    info = info or RunInfo()
    judge = evaluator.judge
    from_dataset = any(item.question_id for item in items)
    return RunRecord(
        run_id=run_id,
        event=event,
        source=info.source,
        name=info.name,
        dataset=evaluator.dataset.name if from_dataset else (info.input or "free-form questions"),
        dataset_hash=content_hash((item.question, item.reference) for item in items),
        input=info.input,
        candidate_model=candidate_model,
        judge_backend=judge.backend,
        judge_model=judge.model,
        prompt_version=judge.prompt_version,
        items=len(items),
        extra_cost_usd=extra_cost_usd,
        head_to_head=info.head_to_head,
    )


def log_run(evaluator: Evaluator, record: RunRecord) -> None:
    """Append a run record; a log that refuses it is a warning (the grades themselves are what must be kept)."""
    try:
        evaluator.record(record)
    except LogError as exc:
        logger.warning("Run %s: its %s record was not logged: %s", record.run_id, record.event, exc)


@dataclass(frozen=True)
class Judge:
    """Who graded: backend, model and prompt version."""

    backend: str | None
    model: str | None
    prompt_version: str | None

    def __str__(self) -> str:
        return f"{self.backend or '?'}:{self.model or '?'}@{self.prompt_version or '?'}"


@dataclass(frozen=True)
class Run:
    """One run as listed: what it graded, with which judge, when, and how it went."""

    id: str
    name: str | None
    source: str | None
    dataset: str | None
    dataset_hash: str | None
    input: str | None
    candidate_model: str | None
    judges: tuple[Judge, ...]
    started: str | None
    ended: str | None
    items: int
    ok: int
    failed: int
    mean_score: float | None
    cost_usd: float
    head_to_head: str | None = None

    @property
    def label(self) -> str:
        """The name when it has one, else the id."""
        return self.name or self.id

    @property
    def judge(self) -> Judge | None:
        """The judge, when one judge graded the whole run."""
        return self.judges[0] if len(self.judges) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``runs --json``, the app's ``/list_runs``)."""
        judge = self.judge
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "dataset": self.dataset,
            "dataset_hash": self.dataset_hash,
            "input": self.input,
            "candidate_model": self.candidate_model,
            "judge_backend": judge.backend if judge else None,
            "judge_model": judge.model if judge else None,
            "prompt_version": judge.prompt_version if judge else None,
            "judges": [str(j) for j in self.judges],
            "started": self.started,
            "ended": self.ended,
            "items": self.items,
            "ok": self.ok,
            "failed": self.failed,
            "mean_score": self.mean_score,
            "cost_usd": round(self.cost_usd, 6),
            "head_to_head": self.head_to_head,
        }


def _chosen(records: Sequence[EvaluationRecord]) -> tuple[list[EvaluationRecord], int]:
    """The records that stand for a run's items (see the module docstring), and how many items failed."""
    graded: dict[tuple[str, str], EvaluationRecord] = {}
    failed: dict[str, EvaluationRecord] = {}
    for rec in records:
        key = question_key(rec)
        if rec.ok:
            graded[(key, rec.answer)] = rec
        else:
            failed[key] = rec
    answered = {key for key, _ in graded}
    errors = [rec for key, rec in failed.items() if key not in answered]
    return list(graded.values()) + errors, len(errors)


def _summarise(
    run_id: str,
    evaluations: Sequence[EvaluationRecord],
    markers: Sequence[RunRecord],
    chosen: tuple[list[EvaluationRecord], int],
) -> Run:
    """A :class:`Run` from its evaluation records, its run records (both oldest first) and :func:`_chosen` of them."""
    items, failed = chosen
    scores = [r.score for r in items if r.score is not None]

    def latest(name: str) -> Any:
        return next((getattr(m, name) for m in reversed(markers) if getattr(m, name)), None)

    seen = dict.fromkeys(
        (r.result.backend or None, r.result.model or None, r.result.prompt_version or None) for r in evaluations
    )
    judges = [Judge(*key) for key in seen]
    if not judges and latest("judge_backend"):
        judges = [Judge(latest("judge_backend"), latest("judge_model"), latest("prompt_version"))]
    candidates = Counter(r.candidate_model for r in evaluations if r.candidate_model)
    stamps = [r.timestamp for r in (*markers, *evaluations) if r.timestamp]
    starts = [m.timestamp for m in markers if m.event == "start" and m.timestamp]
    cost = sum(r.result.usage.cost_usd for r in evaluations) + sum(m.extra_cost_usd for m in markers)
    return Run(
        id=run_id,
        name=latest("name"),
        source=latest("source") or ("batch" if evaluations else None),
        dataset=latest("dataset"),
        dataset_hash=latest("dataset_hash") or content_hash((r.question, r.reference) for r in items),
        input=latest("input"),
        candidate_model=latest("candidate_model") or (candidates.most_common(1)[0][0] if candidates else None),
        judges=tuple(judges),
        started=min(starts) if starts else (min(stamps) if stamps else None),
        ended=max(stamps) if stamps else None,
        items=len(items),
        ok=len(items) - failed,
        failed=failed,
        mean_score=round(sum(scores) / len(scores), 3) if scores else None,
        cost_usd=cost,
        head_to_head=latest("head_to_head"),
    )


class RunIndex:
    """Every run in a set of log records, with each run's item records; built in one pass.

    Args:
        evaluations: evaluation records oldest first; those with a ``batch_id`` belong to that run.
        markers: run records oldest first.
    """

    def __init__(self, evaluations: Iterable[EvaluationRecord], markers: Iterable[RunRecord] = ()) -> None:
        self._evaluations: dict[str, list[EvaluationRecord]] = {}
        self._markers: dict[str, list[RunRecord]] = {}
        for rec in evaluations:
            if rec.batch_id:
                self._evaluations.setdefault(rec.batch_id, []).append(rec)
        for marker in markers:
            if marker.run_id:
                self._markers.setdefault(marker.run_id, []).append(marker)
        self._runs: dict[str, Run] = {}
        self._chosen: dict[str, tuple[list[EvaluationRecord], int]] = {}

    @classmethod
    def from_log(cls, log: EvalLog) -> RunIndex:
        """The runs in the whole log (local files and the Hub copy)."""
        return cls(log.evaluations(in_runs=True), map(RunRecord.from_dict, log.records(RUN_KIND)))

    def run(self, run_id: str) -> Run:
        """The run with exactly this id (:class:`NotFoundError` if none)."""
        if run_id not in self._runs:
            if run_id not in self._evaluations and run_id not in self._markers:
                raise NotFoundError(f"There is no run {run_id!r} in the log.")
            evaluations = self._evaluations.get(run_id, [])
            self._chosen[run_id] = _chosen(evaluations)
            self._runs[run_id] = _summarise(run_id, evaluations, self._markers.get(run_id, []), self._chosen[run_id])
        return self._runs[run_id]

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        ids = list(dict.fromkeys([*self._evaluations, *self._markers]))
        return sorted((self.run(i) for i in ids), key=lambda r: r.started or "", reverse=True)

    def get(self, ref: str) -> Run:
        """The run that ``ref`` names: its id, its name (the latest run of that name) or a unique id prefix."""
        ref = (ref or "").strip()
        if not ref:
            raise InputError("Name a run: its id, its name or the start of its id (see `python -m evaluator runs`).")
        if ref in self._evaluations or ref in self._markers:
            return self.run(ref)
        runs = self.runs()
        named = [r for r in runs if r.name == ref]
        if named:
            return named[0]
        prefixed = [r for r in runs if r.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if prefixed:
            ids = ", ".join(r.id for r in prefixed[:5])
            raise InputError(f"{ref!r} is the start of several run ids ({ids}): give more of it.")
        raise NotFoundError(f"There is no run named {ref!r} in the log (see `python -m evaluator runs`).")

    def items(self, run_id: str) -> list[EvaluationRecord]:
        """The records that stand for the run's items, in the order they were first graded."""
        self.run(run_id)
        return self._chosen[run_id][0]


def is_results_file(ref: str) -> bool:
    """True when ``ref`` is an existing results file (``batch -o`` output) rather than a run id or name."""
    path = Path(ref)
    return path.suffix.lower() in _RESULTS_SUFFIXES and path.is_file()


def results_file_run(path: str | Path) -> tuple[Run, list[EvaluationRecord]]:
    """A run read from a results file of ``batch``/``openai-batch ingest``: its summary and item records."""
    from .batch_io import read_results

    path = Path(path)
    rows = read_results(path)
    if not rows:
        raise InputError(f"{path} has no graded rows: is it a results file written by `python -m evaluator batch`?")
    records = [
        EvaluationRecord.from_dict({**row.to_dict(), "id": row.evaluation_id, "batch_id": str(path)}) for row in rows
    ]
    index = RunIndex(records)
    run = index.run(str(path))
    return replace(run, name=path.name, source="results file", input=path.name), index.items(str(path))


def runs_text(runs: Sequence[Run]) -> str:
    """The runs as a plain-text table for a terminal (``python -m evaluator runs``)."""
    if not runs:
        return "No runs in the log yet: `python -m evaluator batch INPUT -o OUTPUT --name NAME` makes one."
    header = ("id", "name", "started (UTC)", "items", "ok", "mean", "candidate", "judge", "dataset", "cost $")
    rows = [
        (
            r.id,
            r.name or "",
            (r.started or "")[:19].replace("T", " "),
            str(r.items),
            str(r.ok),
            f"{r.mean_score:.2f}" if r.mean_score is not None else "n/a",
            r.candidate_model or "",
            str(r.judge) if r.judge else f"{len(r.judges)} judges",
            f"{r.dataset or '?'}@{r.dataset_hash}" if r.dataset_hash else (r.dataset or ""),
            f"{r.cost_usd:.4f}",
        )
        for r in runs
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (header, *rows)]
    return "\n".join(lines)

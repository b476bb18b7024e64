"""Head to head: several candidate models answer the same questions; a pairwise judgement says whose answer is better.

:func:`run_head_to_head` runs one batch per model (each a normal run, graded by the judge and comparable with
``compare``), then judges every pair of models on every question both answered (see :mod:`evaluator.pairwise`),
logging one ``kind = "pairwise"`` record per question and pair. The report (:class:`HeadToHead`) gives each
pair's wins, ties and losses with a bootstrap 95% interval of the win rate (a tie counts half), and for more than
two models a Bradley–Terry rating (Elo scale) with bootstrap intervals over the questions. Re-running the same
head-to-head (same output) resumes: answers and pairwise verdicts already logged are not asked again.

Example::

    report = run_head_to_head(evaluator, items, [candidate_a, candidate_b], output=Path("h2h.jsonl"))
    print(report.text())
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .batch import default_job_id, run_batch
from .batch_io import BatchItem
from .batch_summary import BatchSummary
from .errors import InputError
from .intervals import CONFIDENCE, SEED, bootstrap_mean, bradley_terry
from .models import SCHEMA_VERSION, utc_now
from .pairwise import OpenAIPairwise, PairOutcome, ScorePairwise
from .runs import RunInfo
from .views import _md

if TYPE_CHECKING:
    from .candidate import Candidate
    from .service import Evaluator

PAIRWISE_KIND = "pairwise"
RATING_RESAMPLES = 200
_OUTCOME_VALUE = {"a": 1.0, "tie": 0.0, "b": -1.0}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def model_output(output: Path, model: str) -> Path:
    """The results file of one model of a head-to-head written to ``output``: ``name.<model>.ext``."""
    return output.with_name(f"{output.stem}.{_slug(model)}{output.suffix}")


@dataclass(frozen=True)
class PairwiseRecord:
    """One question judged for one pair of models (``kind = "pairwise"``): outcome ``a``, ``b``, ``tie``, ``error``."""

    head_to_head: str
    key: str
    model_a: str
    model_b: str
    outcome: str
    judge_backend: str
    judge_model: str
    prompt_version: str
    question_id: str | None = None
    category: str | None = None
    question: str = ""
    votes: tuple[str, ...] = ()
    reason: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    name: str | None = None
    timestamp: str = field(default_factory=utc_now)

    @property
    def id(self) -> str:
        """Deterministic for a success (a resumed head-to-head finds it), per attempt for an error."""
        salt = "" if self.outcome != "error" else self.timestamp
        raw = "\x1f".join((self.head_to_head, self.model_a, self.model_b, self.key, salt))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON-ready dict written as one log line."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": PAIRWISE_KIND,
            "id": self.id,
            "timestamp": self.timestamp,
            "head_to_head": self.head_to_head,
            "name": self.name,
            "key": self.key,
            "question_id": self.question_id,
            "category": self.category,
            "question": self.question,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "outcome": self.outcome,
            "votes": list(self.votes),
            "reason": self.reason,
            "error": self.error,
            "judge_backend": self.judge_backend,
            "judge_model": self.judge_model,
            "prompt_version": self.prompt_version,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True)
class PairResult:
    """Model A against model B over the questions both answered."""

    model_a: str
    model_b: str
    wins: int
    ties: int
    losses: int
    errors: int
    win_rate: float | None  # A's wins plus half its ties, over the judged questions
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        ci = {"confidence": CONFIDENCE, "low": self.ci[0], "high": self.ci[1]} if self.ci else None
        return {**{k: v for k, v in self.__dict__.items() if k != "ci"}, "ci": ci}

    def line(self) -> str:
        """``A vs B: w wins, t ties, l losses; win rate r (95% CI lo-hi)``."""
        rate = "n/a" if self.win_rate is None else f"{self.win_rate:.2f}"
        ci = f" (95% CI {self.ci[0]:.2f}-{self.ci[1]:.2f})" if self.ci else ""
        errors = f", {self.errors} not judged" if self.errors else ""
        return (
            f"{self.model_a} vs {self.model_b}: {self.wins} wins, {self.ties} ties, {self.losses} losses{errors};"
            f" win rate {rate}{ci}"
        )


@dataclass(frozen=True)
class Rating:
    """A model's Bradley–Terry rating (Elo scale, mean 1000) with its bootstrap interval."""

    model: str
    rating: float
    low: float
    high: float


@dataclass(frozen=True)
class HeadToHead:
    """The report of one head-to-head: pair results, ratings (more than two models), the judge."""

    id: str
    name: str | None
    models: list[str]
    pairs: list[PairResult]
    ratings: list[Rating]
    judge: str
    questions: int
    cost_usd: float
    runs: dict[str, BatchSummary] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the app's ``/head_to_head`` and ``/list_head_to_heads``)."""
        return {
            "id": self.id,
            "name": self.name,
            "models": list(self.models),
            "judge": self.judge,
            "questions": self.questions,
            "cost_usd": round(self.cost_usd, 6),
            "pairs": [p.to_dict() for p in self.pairs],
            "ratings": [r.__dict__ for r in self.ratings],
            "runs": {m: s.job_id for m, s in self.runs.items()},
        }

    def text(self) -> str:
        """A plain-text report."""
        lines = [f"Head to head {self.name or self.id}: {', '.join(self.models)} ({self.questions} questions)"]
        lines.append(f"Pairwise judge: {self.judge}   Cost: ${self.cost_usd:.6f}")
        for model, summary in self.runs.items():
            mean = f"{summary.mean_score:.2f}" if summary.mean_score is not None else "n/a"
            lines.append(
                f"  {model}: run {summary.job_id}, mean score {mean}, {summary.ok} ok, {summary.failed} failed"
            )
        lines += [p.line() for p in self.pairs]
        if self.ratings:
            lines.append("Bradley-Terry rating (Elo scale, 95% CI):")
            lines += [f"  {r.model}: {r.rating:.0f} ({r.low:.0f}-{r.high:.0f})" for r in self.ratings]
        return "\n".join(lines)

    def markdown(self) -> str:
        """A Markdown report."""
        out = [f"### Head to head: {_md(self.name or self.id)}", "", f"Pairwise judge: `{_md(self.judge)}`", ""]
        out += ["| A | B | wins | ties | losses | win rate (95% CI) |", "|---|---|---:|---:|---:|---|"]
        for p in self.pairs:
            rate = "n/a" if p.win_rate is None else f"{p.win_rate:.2f}"
            ci = f" ({p.ci[0]:.2f}-{p.ci[1]:.2f})" if p.ci else ""
            out.append(f"| {_md(p.model_a)} | {_md(p.model_b)} | {p.wins} | {p.ties} | {p.losses} | {rate}{ci} |")
        if self.ratings:
            out += ["", "| model | rating | 95% CI |", "|---|---:|---|"]
            out += [f"| {_md(r.model)} | {r.rating:.0f} | {r.low:.0f}-{r.high:.0f} |" for r in self.ratings]
        return "\n".join(out) + "\n"


def report(records: Sequence[Mapping[str, Any]], *, runs: Mapping[str, BatchSummary] | None = None) -> HeadToHead:
    """The head-to-head report of a set of pairwise records (of one head-to-head; the latest per question and pair)."""
    if not records:
        raise InputError("This head-to-head has no pairwise verdicts yet.")
    latest: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for rec in records:
        slot = (rec["model_a"], rec["model_b"], rec["key"])
        if slot not in latest or latest[slot].get("outcome") == "error" or rec.get("outcome") != "error":
            latest[slot] = rec
    models = list(dict.fromkeys(m for a, b, _ in latest for m in (a, b)))
    by_pair: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for (a, b, _), rec in latest.items():
        by_pair.setdefault((a, b), []).append(rec)
    pairs = [_pair_result(a, b, recs) for (a, b), recs in by_pair.items()]
    ratings = _ratings(models, list(latest.values())) if len(models) > 2 else []
    first = records[0]
    return HeadToHead(
        id=str(first["head_to_head"]),
        name=next((r.get("name") for r in reversed(records) if r.get("name")), None),
        models=models,
        pairs=pairs,
        ratings=ratings,
        judge=f"{first.get('judge_backend')}:{first.get('judge_model')}@{first.get('prompt_version')}",
        questions=len({k for _, _, k in latest}),
        cost_usd=sum(float(r.get("cost_usd") or 0.0) for r in records),
        runs=dict(runs or {}),
    )


def _pair_result(a: str, b: str, records: Sequence[Mapping[str, Any]]) -> PairResult:
    outcomes = [r["outcome"] for r in records]
    values = [_OUTCOME_VALUE[o] for o in outcomes if o in _OUTCOME_VALUE]
    if values:
        low, high = bootstrap_mean(values)
        rate, ci = (float(np.mean(values)) + 1) / 2, (round((low + 1) / 2, 3), round((high + 1) / 2, 3))
    else:
        rate, ci = None, None
    return PairResult(
        model_a=a,
        model_b=b,
        wins=outcomes.count("a"),
        ties=outcomes.count("tie"),
        losses=outcomes.count("b"),
        errors=outcomes.count("error"),
        win_rate=round(rate, 3) if rate is not None else None,
        ci=ci,
    )


def _ratings(models: list[str], records: Sequence[Mapping[str, Any]]) -> list[Rating]:
    """Bradley–Terry ratings with percentile intervals from resampling the questions."""
    index = {m: i for i, m in enumerate(models)}
    keys = list(dict.fromkeys(r["key"] for r in records))
    row = {k: n for n, k in enumerate(keys)}
    m = len(models)
    # games[q, i, j]: how many times model i beat model j on question q (a tie is half a win each)
    games = np.zeros((len(keys), m, m))
    for rec in records:
        i, j, q = index[rec["model_a"]], index[rec["model_b"]], row[rec["key"]]
        outcome = rec["outcome"]
        if outcome == "a":
            games[q, i, j] += 1
        elif outcome == "b":
            games[q, j, i] += 1
        elif outcome == "tie":
            games[q, i, j] += 0.5
            games[q, j, i] += 0.5
    point = bradley_terry(games.sum(axis=0))
    rng = np.random.default_rng(SEED)
    weights = rng.multinomial(len(keys), np.full(len(keys), 1 / len(keys)), size=RATING_RESAMPLES)
    samples = np.array([bradley_terry(np.tensordot(w, games, axes=1)) for w in weights])
    low, high = np.quantile(samples, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2], axis=0)
    ratings = [Rating(name, round(float(point[i]), 1), round(float(low[i]), 1), round(float(high[i]), 1))
               for name, i in index.items()]  # fmt: skip
    return sorted(ratings, key=lambda r: -r.rating)


def pairwise_judge(evaluator: Evaluator) -> OpenAIPairwise | ScorePairwise:
    """The pairwise judge that goes with the evaluator's judge: the OpenAI model asked in both orders, else scores."""
    from .judge import OpenAIJudge

    judge = evaluator.judge
    if isinstance(judge, OpenAIJudge):
        return OpenAIPairwise(judge)
    return ScorePairwise(model=judge.model, prompt_version=judge.prompt_version)


def run_head_to_head(
    evaluator: Evaluator,
    items: Sequence[BatchItem],
    candidates: Sequence[Candidate],
    *,
    output: str | os.PathLike[str] | None = None,
    name: str | None = None,
    source: str = "cli",
    concurrency: int = 8,
    job_id: str | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> HeadToHead:
    """Let every candidate answer ``items`` (one graded run each), then judge every pair of them on each question.

    Args:
        evaluator: the judge (pointwise and, through :func:`pairwise_judge`, pairwise), PII scrubbing and the log.
        items: the questions (any given answers are ignored: the candidates answer).
        candidates: two or more candidate models with different names.
        output: a results file name; each model's results go to :func:`model_output` (the verdicts are in the
            log). Re-running with the same output resumes.
        name: the head-to-head's name; each model's run is named ``"<name> <model>"``.
        concurrency: calls in flight at most (candidates, judge, pairwise judge).
        job_id: base of the run ids (default derived from ``output``).
        on_progress: called with a line of text at each stage.
    """
    names = [c.name for c in candidates]
    if len(names) < 2:
        raise InputError("A head-to-head needs at least two candidate models.")
    if len(set(names)) != len(names):
        raise InputError(f"The candidate models must differ; got {', '.join(names)}.")
    if not items:
        raise InputError("A head-to-head needs at least one question.")
    base = job_id or default_job_id(output)
    h2h_id = "h2h-" + base.removeprefix("batch-")
    out = Path(output) if output is not None else None
    questions = [replace(item, answer=None) for item in items]
    summaries: dict[str, BatchSummary] = {}
    for candidate in candidates:
        if on_progress:
            on_progress(f"{candidate.name} answers {len(questions)} questions")
        summaries[candidate.name] = run_batch(
            evaluator,
            questions,
            concurrency=concurrency,
            candidate=candidate,
            output=model_output(out, candidate.name) if out else None,
            job_id=f"{base}-{_slug(candidate.name)}",
            run=RunInfo(name=f"{name} {candidate.name}" if name else None, source=source, head_to_head=h2h_id),
        )
    judge = pairwise_judge(evaluator)
    rows = {m: {r.key: r for r in s.rows if r.ok} for m, s in summaries.items()}
    todo: list[tuple[str, str, BatchItem]] = []
    done: list[dict[str, Any]] = []
    for a, b in itertools.combinations(names, 2):
        for item in questions:
            if item.key in rows[a] and item.key in rows[b]:
                probe = PairwiseRecord(h2h_id, item.key, a, b, "a", judge.backend, judge.model, judge.prompt_version)
                logged = evaluator.log.get(probe.id)
                if logged:
                    done.append(logged)
                else:
                    todo.append((a, b, item))
    if on_progress:
        on_progress(f"pairwise judgement of {len(todo)} answer pairs ({len(done)} already judged)")

    def judge_one(task: tuple[str, str, BatchItem]) -> dict[str, Any]:
        a, b, item = task
        ra, rb = rows[a][item.key], rows[b][item.key]
        outcome: PairOutcome = judge.judge_pair(
            ra.question, ra.reference, ra.answer, rb.answer,
            score_x=float(ra.score or 0.0), score_y=float(rb.score or 0.0),
        )  # fmt: skip
        record = PairwiseRecord(
            head_to_head=h2h_id,
            key=item.key,
            model_a=a,
            model_b=b,
            outcome={"x": "a", "y": "b"}.get(outcome.outcome, outcome.outcome),
            judge_backend=judge.backend,
            judge_model=judge.model,
            prompt_version=judge.prompt_version,
            question_id=item.question_id,
            category=item.category,
            question=str(ra.question),
            votes=tuple({"x": "a", "y": "b"}.get(v, v) for v in outcome.votes),
            reason=outcome.reason,
            error=outcome.error,
            prompt_tokens=outcome.usage.prompt_tokens,
            completion_tokens=outcome.usage.completion_tokens,
            cost_usd=outcome.usage.cost_usd,
            name=name,
        )
        evaluator.record(record)
        return record.to_dict()

    workers = 1 if isinstance(judge, ScorePairwise) else max(1, min(concurrency, len(todo)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        judged = list(pool.map(judge_one, todo))
    return report(done + judged, runs=summaries)


def head_to_heads(records: Iterable[Mapping[str, Any]]) -> list[HeadToHead]:
    """Every head-to-head in a set of log records, newest first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("kind") == PAIRWISE_KIND and isinstance(rec.get("head_to_head"), str):
            groups.setdefault(rec["head_to_head"], []).append(rec)
    latest = {h: max(str(r.get("timestamp") or "") for r in recs) for h, recs in groups.items()}
    return [report(groups[h]) for h in sorted(groups, key=lambda h: latest[h], reverse=True)]

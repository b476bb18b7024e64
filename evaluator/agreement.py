"""How far a judge agrees with human graders: grade a human-graded file, then correlation, kappa and accuracy.

The flow is ``parse_human_file`` -> :func:`~evaluator.batch.run_batch` (resumable, logged like any batch)
-> :func:`measure_agreement` -> :class:`AgreementReport`:

* **Input** rows are batch rows (``question_id``, or ``question`` and ``reference``; ``answer``) with a human
  grade: ``human_score`` (a number from 0 to ``scale``) or ``label``/``human_label`` (``correct``,
  ``partially correct``/``partial``, ``incorrect``, ``contradictory``). Both become a score 0-10 and a class
  at the judge's own verdict thresholds (>= 7 correct, >= 4 partially correct).
* **Figures**: Pearson and Spearman correlation of the judge's score with the human score, quadratic
  weighted kappa and accuracy of the three verdict classes, 2-way accuracy (correct vs not) and the
  confusion matrix. Each comes with a 95% percentile bootstrap interval that resamples whole questions
  (answers to one question are alike, so resampling answers would give intervals that are too narrow);
  with fewer than :data:`MIN_GROUPS` questions it resamples answers.

Example::

    grades = parse_human_file(Path("data/asag/scientsbank_heldout.jsonl"), evaluator=evaluator)
    summary = run_batch(evaluator, grades.items, output="graded.jsonl")
    print(measure_agreement(summary.rows, grades).text())
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .batch_io import BatchItem, ResultRow, file_format, parse_row, read_input, read_rows
from .dataset import cell
from .errors import InputError
from .models import verdict_for

if TYPE_CHECKING:
    from .service import Evaluator

# Human labels as a score 0-10 (SemEval's "contradictory" is a wrong answer, like "incorrect").
LABEL_SCORES = {
    "correct": 10.0,
    "partially correct": 5.0,
    "partially_correct": 5.0,
    "partial": 5.0,
    "incorrect": 0.0,
    "contradictory": 0.0,
    "wrong": 0.0,
}
CLASSES = ("incorrect", "partially correct", "correct")  # ordinal 0, 1, 2
RESAMPLES = 1000
MIN_GROUPS = 5  # fewer questions than this: the bootstrap resamples answers instead
SEED = 0
METRICS = ("pearson", "spearman", "qwk", "accuracy", "accuracy_2way")
METRIC_NAMES = {
    "pearson": "Pearson r",
    "spearman": "Spearman rho",
    "qwk": "Quadratic weighted kappa",
    "accuracy": "Accuracy (3 verdict classes)",
    "accuracy_2way": "Accuracy (correct vs not)",
}


@dataclass(frozen=True)
class HumanGrades:
    """The gradable rows of a human-graded file, each item's human score 0-10 and question, and row errors."""

    items: list[BatchItem]
    human: dict[str, float]  # item key -> human score on 0-10
    errors: list[str]


def _human_score(raw: Mapping[str, Any], scale: float) -> float:
    """The row's human grade on 0-10; :class:`InputError` saying what is wrong otherwise."""
    number = cell(raw.get("human_score"))
    if number:
        try:
            value = float(number)
        except ValueError:
            raise InputError(f"human_score {number!r} is not a number") from None
        if not math.isfinite(value) or not 0 <= value <= scale:
            raise InputError(f"human_score {number!r} is outside 0-{scale:g} (set the scale with --scale)")
        return 10 * value / scale
    label = (cell(raw.get("human_label")) or cell(raw.get("label"))).lower()
    if label:
        if label not in LABEL_SCORES:
            raise InputError(f"label {label!r} is not one of {', '.join(sorted(LABEL_SCORES))}")
        return LABEL_SCORES[label]
    raise InputError("no human grade: give human_score (0 to the scale) or label (correct, partial, incorrect)")


def parse_human_file(path: Path, *, evaluator: Evaluator, scale: float = 5.0) -> HumanGrades:
    """The items of a human-graded JSONL/CSV file and their human scores; a row without a valid grade is an error.

    Rows are read as :func:`~evaluator.batch_io.parse_batch` reads them (same keys, so a re-run resumes), except
    that a row giving its own ``question`` and ``reference`` is graded on those: its ``question_id`` then only
    groups answers (public sets have their own question ids, unknown to the dataset).
    """
    if scale <= 0:
        raise InputError(f"The human score scale must be above 0, got {scale:g}")
    fmt = file_format(path)
    text = read_input(path)
    items, human, errors = [], {}, []
    seen: dict[str, int] = {}
    for line, raw in read_rows(text, fmt):
        if isinstance(raw, dict) and cell(raw.get("question")) and cell(raw.get("reference")):
            raw = {k: v for k, v in raw.items() if k != "question_id"}
        item = raw if isinstance(raw, str) else parse_row(raw, line, evaluator=evaluator, candidate=False, seen=seen)
        if isinstance(item, str):
            errors.append(str(item))
            continue
        try:
            human[item.key] = _human_score(raw, scale)
        except InputError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        items.append(item)
    if not items and not errors:
        errors.append("line 1: the file has no rows")
    return HumanGrades(items=items, human=human, errors=errors)


def verdict_class(score: float) -> int:
    """0, 1 or 2: the index in :data:`CLASSES` of the verdict for a score 0-10."""
    return CLASSES.index(verdict_for(score))


def _correlation(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    from scipy import stats

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float((stats.pearsonr if kind == "pearson" else stats.spearmanr)(x, y)[0])


def _qwk(human: np.ndarray, judge: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(np.union1d(human, judge)) < 2:
        return math.nan
    return float(cohen_kappa_score(human, judge, weights="quadratic", labels=[0, 1, 2]))


def _metrics(judge: np.ndarray, human: np.ndarray, jc: np.ndarray, hc: np.ndarray) -> dict[str, float]:
    """Every figure of :data:`METRICS` for paired scores 0-10 and their verdict classes."""
    return {
        "pearson": _correlation("pearson", judge, human),
        "spearman": _correlation("spearman", judge, human),
        "qwk": _qwk(hc, jc),
        "accuracy": float(np.mean(jc == hc)),
        "accuracy_2way": float(np.mean((jc == 2) == (hc == 2))),
    }


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% bootstrap interval (None where undefined, e.g. a constant score)."""

    value: float | None
    low: float | None
    high: float | None

    def text(self) -> str:
        """``0.612 [0.551, 0.668]`` or ``n/a``."""
        if self.value is None:
            return "n/a"
        interval = f" [{self.low:.3f}, {self.high:.3f}]" if self.low is not None else ""
        return f"{self.value:.3f}{interval}"


@dataclass(frozen=True)
class AgreementReport:
    """A judge's agreement with human grades over one file."""

    judge_backend: str
    judge_model: str
    n: int
    questions: int
    failed: int
    resampled: str  # "questions" or "answers"
    resamples: int
    figures: dict[str, Estimate]
    confusion: list[list[int]]  # rows: human class, columns: judge verdict (order of CLASSES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "judge_backend": self.judge_backend,
            "judge_model": self.judge_model,
            "n": self.n,
            "questions": self.questions,
            "failed": self.failed,
            "interval": {"level": 0.95, "bootstrap_resamples": self.resamples, "resampled": self.resampled},
            **{name: {"value": e.value, "ci95": [e.low, e.high]} for name, e in self.figures.items()},
            "confusion": {"labels": list(CLASSES), "rows": "human", "columns": "judge", "matrix": self.confusion},
        }

    def text(self) -> str:
        """A plain-text report: the figures with their intervals, then the confusion matrix."""
        lines = [
            f"Agreement of the {self.judge_backend} judge ({self.judge_model}) with human grades: "
            f"{self.n} answers to {self.questions} questions"
            + (f" ({self.failed} not graded, left out)" if self.failed else ""),
            f"95% intervals: {self.resamples} bootstrap resamples of the {self.resampled}",
        ]
        width = max(map(len, METRIC_NAMES.values()))
        lines += [f"  {METRIC_NAMES[m]:<{width}}  {self.figures[m].text()}" for m in METRICS]
        lines.append("Confusion matrix at the verdict thresholds (>= 7 correct, >= 4 partially correct):")
        cell = max(len(c) for c in CLASSES) + 2
        lines.append(" " * (cell + 8) + "".join(f"{c:>{cell}}" for c in CLASSES) + "   <- judge")
        for name, row in zip(CLASSES, self.confusion, strict=True):
            lines.append(f"  human {name:<{cell}}" + "".join(f"{v:>{cell}}" for v in row))
        return "\n".join(lines)


def measure_agreement(
    rows: Sequence[ResultRow],
    grades: HumanGrades,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> AgreementReport:
    """Agreement of the graded ``rows`` (batch result rows) with ``grades``; rows of failed items are left out."""
    graded = [r for r in rows if r.key in grades.human]
    ok = sorted((r for r in graded if r.ok and r.score is not None), key=lambda r: r.key)  # order-free intervals
    if not ok:
        raise InputError("No answer was graded: there is nothing to compare with the human grades")
    judge = np.array([float(r.score) for r in ok if r.score is not None])
    human = np.array([grades.human[r.key] for r in ok])
    jc, hc = (np.array([verdict_class(s) for s in scores]) for scores in (judge, human))
    groups = [str(r.question_id or r.question) for r in ok]
    names = sorted(set(groups))
    group_index = {g: i for i, g in enumerate(names)}
    members = [np.flatnonzero(np.array([group_index[g] for g in groups]) == i) for i in range(len(names))]
    by_question = len(names) >= MIN_GROUPS
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(resamples):
        if by_question:
            index = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        else:
            index = rng.integers(0, len(ok), len(ok))
        for name, value in _metrics(judge[index], human[index], jc[index], hc[index]).items():
            samples[name].append(value)
    figures = {}
    for name, value in _metrics(judge, human, jc, hc).items():
        drawn = np.array([v for v in samples[name] if not math.isnan(v)])
        defined = not math.isnan(value)
        low, high = (float(np.percentile(drawn, 2.5)), float(np.percentile(drawn, 97.5))) if len(drawn) else (None,) * 2
        figures[name] = Estimate(value if defined else None, low if defined else None, high if defined else None)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (hc, jc), 1)
    first = ok[0]
    return AgreementReport(
        judge_backend=str(first.judge_backend),
        judge_model=str(first.judge_model),
        n=len(ok),
        questions=len(names),
        failed=len(graded) - len(ok),
        resampled="questions" if by_question else "answers",
        resamples=resamples,
        figures=figures,
        confusion=confusion.tolist(),
    )


def default_output(source: str | os.PathLike[str], backend: str) -> Path:
    """Where the graded rows go by default: ``agreement-<file stem>-<judge>.jsonl`` in the current folder."""
    return Path(f"agreement-{Path(source).stem}-{backend}.jsonl")


def check_results_judge(rows: Sequence[ResultRow], backend: str, path: Path) -> None:
    """Refuse to resume into a results file graded by another judge (its figures would mix two judges)."""
    others = {r.judge_backend for r in rows if r.judge_backend not in (None, backend)}
    if others:
        raise InputError(
            f"{path} holds grades by the {', '.join(sorted(others))} judge, not {backend}: give another -o/--output"
        )

"""Compare two runs item by item: did the change make answers better, and where did it make them worse?

Items are matched by question (dataset id, else question text; see :func:`runs.question_key`); only the
questions both runs graded count. The mean change (B − A) gets a paired bootstrap 95% interval; each item is
a win for B, a tie (a change under :data:`TIE_MARGIN` points) or a loss. Verdict changes, per-category means
and the most regressed items (both answers, both grades, the reference) come with it.

Two runs graded by different judges (backend, model or prompt version), or whose shared questions have
different references (another dataset version), are not compared unless forced; then the report says so.

Example::

    index = RunIndex.from_log(evaluator.log)
    a, b = index.get("baseline"), index.get("candidate")
    result = compare(a, index.items(a.id), b, index.items(b.id))
    print(result.text())
    if reason := result.gate(max_drop=0.5):
        raise SystemExit(reason)
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import csvsafe
from .dataset import UNCATEGORISED
from .errors import InputError
from .intervals import CONFIDENCE, bootstrap_mean
from .models import EvaluationRecord
from .runs import Run, question_key
from .views import _md, _short

TIE_MARGIN = 0.5  # score changes smaller than this (on 0-10) are ties
TOP = 10
CSV_FIELDS = (
    "question_id",
    "category",
    "question",
    "reference",
    "answer_a",
    "answer_b",
    "score_a",
    "score_b",
    "delta",
    "verdict_a",
    "verdict_b",
    "feedback_a",
    "feedback_b",
)


class MismatchError(InputError):
    """The two runs used different judges or dataset versions: their scores are not comparable."""


@dataclass(frozen=True)
class ItemDelta:
    """One question graded in both runs."""

    question_id: str | None
    category: str | None
    question: str
    reference: str
    answer_a: str
    answer_b: str
    score_a: float
    score_b: float
    verdict_a: str | None
    verdict_b: str | None
    feedback_a: str | None
    feedback_b: str | None

    @property
    def delta(self) -> float:
        """Score in B minus score in A."""
        return round(self.score_b - self.score_a, 3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with the delta."""
        return {**asdict(self), "delta": self.delta}


@dataclass(frozen=True)
class Comparison:
    """The item-by-item comparison of run A (before) with run B (after)."""

    run_a: Run
    run_b: Run
    shared: int  # questions graded in both runs
    only_a: int
    only_b: int
    unscored: int  # shared questions that failed in either run
    mean_a: float
    mean_b: float
    delta: float
    ci: tuple[float, float]
    wins: int
    ties: int
    losses: int
    verdict_changes: dict[str, int]
    categories: list[dict[str, Any]]
    regressions: list[ItemDelta]
    items: list[ItemDelta] = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    tie_margin: float = TIE_MARGIN

    def gate(self, max_drop: float) -> str | None:
        """Why the comparison fails a ``--max-drop`` gate, or None when it passes.

        It fails unless the data rule out a drop bigger than ``max_drop``: the interval's lower bound is used,
        not the point estimate, so a noisy small sample cannot pass by luck.
        """
        low = self.ci[0]
        if low < -max_drop:
            return (
                f"FAIL: {self.run_b.label} vs {self.run_a.label}: the mean score may have dropped by up to "
                f"{-low:.2f} points (95% CI {self.ci[0]:+.2f} to {self.ci[1]:+.2f}, change {self.delta:+.2f}, "
                f"{self.scored} items), more than --max-drop {max_drop:g}"
            )
        return None

    @property
    def scored(self) -> int:
        """Shared questions graded successfully in both runs."""
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``compare --json``, the app's ``/compare_runs``)."""
        return {
            "run_a": self.run_a.to_dict(),
            "run_b": self.run_b.to_dict(),
            "shared": self.shared,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "unscored": self.unscored,
            "scored": self.scored,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "delta": self.delta,
            "ci": {"confidence": CONFIDENCE, "low": self.ci[0], "high": self.ci[1]},
            "tie_margin": self.tie_margin,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "verdict_changes": dict(self.verdict_changes),
            "categories": [dict(c) for c in self.categories],
            "regressions": [r.to_dict() for r in self.regressions],
            "warnings": list(self.warnings),
        }

    def _headline(self) -> list[str]:
        a, b = self.run_a, self.run_b
        return [
            f"A: {a.label} ({a.id}), B: {b.label} ({b.id})",
            f"{self.scored} questions compared ({self.shared} shared, {self.unscored} failed in a run;"
            f" {self.only_a} only in A, {self.only_b} only in B)",
            f"Mean score: A {self.mean_a:.2f} -> B {self.mean_b:.2f}, change {self.delta:+.2f}"
            f" (95% CI {self.ci[0]:+.2f} to {self.ci[1]:+.2f}, paired bootstrap)",
            f"B vs A: {self.wins} better, {self.ties} ties (within {self.tie_margin:g}), {self.losses} worse",
        ]

    def text(self) -> str:
        """A plain-text report for a terminal."""
        lines = [f"warning: {w}" for w in self.warnings] + self._headline()
        if self.verdict_changes:
            lines.append("Verdict changes: " + ", ".join(f"{k} {n}" for k, n in self.verdict_changes.items()))
        if self.categories:
            lines.append("Per category (n, A -> B, change):")
            lines += [
                f"  {c['category']}: {c['n']}, {c['mean_a']:.2f} -> {c['mean_b']:.2f}, {c['delta']:+.2f}"
                for c in self.categories
            ]
        if self.regressions:
            lines.append(f"Most regressed ({len(self.regressions)}):")
            for r in self.regressions:
                head = f"  [{r.question_id or '-'}] {r.score_a:.1f} -> {r.score_b:.1f} ({r.delta:+.1f})"
                lines.append(f"{head}  {_short(r.question, 90)}")
                lines.append(f"      A: {_short(r.answer_a, 110)}")
                lines.append(f"      B: {_short(r.answer_b, 110)}")
                lines.append(f"      reference: {_short(r.reference, 110)}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """A Markdown report (for a pull-request comment or the app)."""
        out = [f"> **Warning:** {_md(w)}\n" for w in self.warnings]
        out.append(f"### {_md(self.run_b.label)} vs {_md(self.run_a.label)}\n")
        out += [f"- {_md(line)}" for line in self._headline()]
        if self.verdict_changes:
            out.append("- Verdict changes: " + ", ".join(f"{_md(k)} {n}" for k, n in self.verdict_changes.items()))
        if self.categories:
            out += ["", "| category | n | A | B | change |", "|---|---:|---:|---:|---:|"]
            out += [
                f"| {_md(c['category'])} | {c['n']} | {c['mean_a']:.2f} | {c['mean_b']:.2f} | {c['delta']:+.2f} |"
                for c in self.categories
            ]
        if self.regressions:
            out += ["", "#### Most regressed", "", "| question | reference | answer A | answer B | A | B |"]
            out.append("|---|---|---|---|---:|---:|")
            out += [
                f"| {_md(r.question)} | {_md(r.reference)} | {_md(r.answer_a)} | {_md(r.answer_b)} |"
                f" {r.score_a:.1f} {_md(r.verdict_a)} | {r.score_b:.1f} {_md(r.verdict_b)} |"
                for r in self.regressions
            ]
        return "\n".join(out) + "\n"

    def csv_text(self) -> str:
        """Every compared question as CSV, most regressed first (formula-like cells defused for spreadsheets)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        rows = (r.to_dict() for r in sorted(self.items, key=lambda r: r.delta))
        writer.writerows({k: csvsafe.defuse(v) for k, v in row.items()} for row in rows)
        return buf.getvalue()


def _pairs(
    items_a: Sequence[EvaluationRecord], items_b: Sequence[EvaluationRecord]
) -> tuple[list[tuple[EvaluationRecord, EvaluationRecord]], int, int]:
    """Records of the same question in A and B (the n-th of a repeated question with the n-th), and the rest."""
    by_key: dict[str, list[EvaluationRecord]] = {}
    for rec in items_b:
        by_key.setdefault(question_key(rec), []).append(rec)
    pairs = []
    only_a = 0
    for rec in items_a:
        others = by_key.get(question_key(rec))
        if others:
            pairs.append((rec, others.pop(0)))
        else:
            only_a += 1
    only_b = sum(len(v) for v in by_key.values())
    return pairs, only_a, only_b


def _check(run_a: Run, run_b: Run, pairs: Sequence[tuple[EvaluationRecord, EvaluationRecord]]) -> list[str]:
    """Reasons the two runs are not comparable (judges, dataset versions); empty when they are."""
    problems = []
    if set(run_a.judges) != set(run_b.judges) or len(run_a.judges) != 1:
        a = ", ".join(map(str, run_a.judges)) or "unknown"
        b = ", ".join(map(str, run_b.judges)) or "unknown"
        problems.append(f"the runs were graded by different judges (A: {a}; B: {b}): their scores are not comparable")
    changed = sum(
        1 for x, y in pairs if x.reference.strip() != y.reference.strip() or x.question.strip() != y.question.strip()
    )
    if changed:
        problems.append(
            f"{changed} of the {len(pairs)} shared questions have another question or reference text in B"
            f" (dataset versions differ: A {run_a.dataset_hash}, B {run_b.dataset_hash})"
        )
    return problems


def compare(
    run_a: Run,
    items_a: Sequence[EvaluationRecord],
    run_b: Run,
    items_b: Sequence[EvaluationRecord],
    *,
    force: bool = False,
    top: int = TOP,
    tie_margin: float = TIE_MARGIN,
) -> Comparison:
    """Compare run B with run A (item records from :meth:`RunIndex.items`).

    Raises :class:`MismatchError` when the judges or the shared questions' texts differ (unless ``force``:
    then the report starts with those warnings) and :class:`InputError` when no question was graded in both.
    """
    pairs, only_a, only_b = _pairs(items_a, items_b)
    if not pairs:
        raise InputError(f"Runs {run_a.label} and {run_b.label} have no question in common: nothing to compare.")
    problems = _check(run_a, run_b, pairs)
    if problems and not force:
        raise MismatchError("Not compared: " + "; ".join(problems) + ". Add --force to compare anyway.")
    warnings = list(problems)
    if run_a.dataset_hash != run_b.dataset_hash and not any("dataset versions" in p for p in problems):
        warnings.append(f"the runs cover different question sets: only the {len(pairs)} shared questions are compared")
    scored = [
        ItemDelta(
            question_id=x.question_id,
            category=x.category or y.category,
            question=x.question,
            reference=x.reference,
            answer_a=x.answer,
            answer_b=y.answer,
            score_a=x.result.grade.score,
            score_b=y.result.grade.score,
            verdict_a=x.result.grade.verdict,
            verdict_b=y.result.grade.verdict,
            feedback_a=x.result.grade.feedback,
            feedback_b=y.result.grade.feedback,
        )
        for x, y in pairs
        if x.result.grade is not None and y.result.grade is not None
    ]
    if not scored:
        raise InputError(f"No shared question was graded successfully in both {run_a.label} and {run_b.label}.")
    # One order whatever the source's (the log holds items as they finished): the same runs, the same report.
    scored.sort(key=lambda i: (i.question_id or "", i.question, i.answer_a, i.answer_b, i.score_a, i.score_b))
    a = np.fromiter((i.score_a for i in scored), float, len(scored))
    b = np.fromiter((i.score_b for i in scored), float, len(scored))
    diff = b - a
    low, high = bootstrap_mean(diff)
    changes = Counter(f"{i.verdict_a} -> {i.verdict_b}" for i in scored if i.verdict_a != i.verdict_b)
    categories: dict[str, list[int]] = {}
    for n, item in enumerate(scored):
        categories.setdefault(item.category or UNCATEGORISED, []).append(n)
    per_category = [
        {
            "category": name,
            "n": len(idx),
            "mean_a": round(float(a[idx].mean()), 3),
            "mean_b": round(float(b[idx].mean()), 3),
            "delta": round(float(diff[idx].mean()), 3),
        }
        for name, idx in sorted(categories.items())
    ]
    worst = [scored[n] for n in np.argsort(diff, kind="stable")[: max(0, top)] if diff[n] < 0]
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        shared=len(pairs),
        only_a=only_a,
        only_b=only_b,
        unscored=len(pairs) - len(scored),
        mean_a=round(float(a.mean()), 3),
        mean_b=round(float(b.mean()), 3),
        delta=round(float(diff.mean()), 3),
        ci=(round(low, 3), round(high, 3)),
        wins=int((diff >= tie_margin).sum()),
        ties=int((np.abs(diff) < tie_margin).sum()),
        losses=int((diff <= -tie_margin).sum()),
        verdict_changes=dict(changes.most_common()),
        categories=per_category,
        regressions=worst,
        items=scored,
        warnings=warnings,
        tie_margin=tie_margin,
    )

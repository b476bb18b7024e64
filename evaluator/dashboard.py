"""The dashboard over part of the log: filters, the evaluations behind a bar, and each chart's table as CSV.

Pure functions over the log's records (``EvalLog.records()``); the figures are those of
``views.dashboard_data(EvalLog.aggregate())``, computed by the same code over the records a filter keeps.

Example::

    flt = DashboardFilter.from_inputs("2025-03-01", "2025-03-31", "Statistics", views.ANY, views.ANY)
    data = filtered_data(log.records(), flt)
    rows = drill_down(log.records(), "score", "7–8", flt)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from . import csvsafe, views
from .dataset import UNCATEGORISED
from .errors import InputError
from .files import write_atomic
from .log_stats import aggregate_records

# The charts whose bars can be opened, and the value a bar stands for (the x value of its frame).
CHARTS = ("score", "category", "day", "verdict", "judge")
DRILL_HEADERS = [
    "time (UTC)",
    "evaluation id",
    "question_id",
    "category",
    "status",
    "score",
    "verdict",
    "judge",
    "run",
    "answer",
]
# Each chart's table, by the name its CSV file is given.
CHART_FRAMES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "scores": views.score_frame,
    "categories": views.category_frame,
    "days": lambda data: views.days_frame(data).drop(columns="date"),  # "day" holds the same date as text
    "verdicts": views.verdict_frame,
    "agreement": views.agreement_frame,
    "sentiment": views.sentiment_frame,
    "judges": views.backend_frame,
}


def _day(value: str | date | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InputError(f"{name} must be a date such as 2025-03-01, got {text[:40]!r}") from None


@dataclass(frozen=True)
class DashboardFilter:
    """Which evaluations the dashboard covers; ``None`` keeps all. Dates are UTC days, both ends included."""

    start: date | None = None
    end: date | None = None
    category: str | None = None  # UNCATEGORISED keeps the evaluations without a category
    backend: str | None = None  # judge backend: openai, offline
    run: str | None = None  # a batch run's id (batch_id)

    @classmethod
    def from_inputs(
        cls,
        start: str | date | None = None,
        end: str | date | None = None,
        category: str | None = None,
        backend: str | None = None,
        run: str | None = None,
    ) -> DashboardFilter:
        """The filter from the UI's inputs: dates as ``YYYY-MM-DD`` (or empty), dropdowns with ``views.ANY``."""
        first, last = _day(start, "The start date"), _day(end, "The end date")
        if first and last and first > last:
            raise InputError(f"The start date {first} is after the end date {last}")
        return cls(first, last, views.chosen(category), views.chosen(backend), views.chosen(run))

    @property
    def active(self) -> bool:
        """True when the filter leaves something out."""
        return any(v is not None for v in (self.start, self.end, self.category, self.backend, self.run))

    def keeps(self, evaluation: Mapping[str, Any]) -> bool:
        """True when ``evaluation`` (a log record) is one the dashboard covers."""
        day = _record_day(evaluation)
        if (self.start or self.end) and day is None:
            return False
        return (
            (self.start is None or day >= self.start.isoformat())
            and (self.end is None or day <= self.end.isoformat())
            and (self.category is None or category_of(evaluation) == self.category)
            and (self.backend is None or evaluation.get("judge_backend") == self.backend)
            and (self.run is None or evaluation.get("batch_id") == self.run)
        )


def _record_day(record: Mapping[str, Any]) -> str | None:
    ts = record.get("timestamp")
    return ts[:10] if isinstance(ts, str) and len(ts) >= 10 else None


def category_of(evaluation: Mapping[str, Any]) -> str:
    """An evaluation's category as the dashboard shows it (:data:`UNCATEGORISED` when it has none)."""
    return str(evaluation.get("category") or UNCATEGORISED)


def filter_records(records: Iterable[Mapping[str, Any]], flt: DashboardFilter) -> list[dict[str, Any]]:
    """The evaluations ``flt`` keeps and the feedback on them, oldest first (other records are left out)."""
    evaluations = [dict(r) for r in records if r.get("kind") in ("evaluation", "feedback")]
    kept = {r["id"] for r in evaluations if r.get("kind") == "evaluation" and flt.keeps(r)}
    return [r for r in evaluations if r["id"] in kept or r.get("evaluation_id") in kept]


def filtered_data(
    records: Iterable[Mapping[str, Any]], flt: DashboardFilter, *, damaged_lines: int = 0
) -> dict[str, Any]:
    """``views.dashboard_data`` over the part of the log ``flt`` keeps (the same keys, for the same charts)."""
    return views.dashboard_data(aggregate_records(filter_records(records, flt), damaged=damaged_lines))


def filter_choices(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the filter inputs offer: categories, judge backends and run ids in the log, and its first and last day."""
    evaluations = [r for r in records if r.get("kind") == "evaluation"]
    days = sorted(d for d in map(_record_day, evaluations) if d)
    return {
        "categories": views.choices(sorted({category_of(r) for r in evaluations})),
        "backends": views.choices(sorted({str(r["judge_backend"]) for r in evaluations if r.get("judge_backend")})),
        "runs": views.choices(sorted({str(r["batch_id"]) for r in evaluations if r.get("batch_id")})),
        "first_day": days[0] if days else None,
        "last_day": days[-1] if days else None,
    }


def score_bin(score: float) -> str:
    """The score chart's bar (:data:`views.SCORE_BINS`) holding ``score``, binned as ``EvalLog.aggregate`` does."""
    return views.SCORE_BINS[10 if score >= 10 else 0 if score < 0 else int(score)]


def _bar(record: Mapping[str, Any], chart: str) -> str | None:
    """The bar of ``chart`` that ``record`` counts towards (None: none; only graded ones count, but judges)."""
    if chart == "judge":
        return str(record.get("judge_backend") or "unknown")
    score = record.get("score")
    if record.get("status") != "ok" or not isinstance(score, int | float):
        return None
    if chart == "score":
        return score_bin(score)
    if chart == "category":
        return category_of(record)
    if chart == "day":
        return _record_day(record)
    return record.get("verdict")


def drill_down(
    records: Iterable[Mapping[str, Any]], chart: str, value: str | Iterable[str], flt: DashboardFilter | None = None
) -> list[list[Any]]:
    """The evaluations behind one bar (or several), newest first, as rows of :data:`DRILL_HEADERS` (at most
    MAX_TABLE_ROWS), in one pass over ``records``.

    ``chart`` is one of :data:`CHARTS` and ``value`` the bar's x value (or a list of them): a score bin (``7–8``),
    a category, a day (``YYYY-MM-DD``), a verdict or a judge backend. The bars count graded evaluations, the
    judge bars all.
    """
    if chart not in CHARTS:
        raise InputError(f"No chart {chart!r} to open: choose one of {', '.join(CHARTS)}")
    flt = flt or DashboardFilter()
    wanted = {value.strip()} if isinstance(value, str) else {str(v).strip() for v in value}
    behind = [r for r in records if r.get("kind") == "evaluation" and flt.keeps(r) and _bar(r, chart) in wanted]
    behind.sort(key=lambda r: str(r.get("timestamp") or ""), reverse=True)
    return [
        [
            str(r.get("timestamp") or "")[:19].replace("T", " "),
            r.get("id"),
            r.get("question_id") or "",
            category_of(r),
            r.get("status"),
            r.get("score"),
            r.get("verdict") or "",
            r.get("judge_backend") or "",
            r.get("batch_id") or "",
            views._short(r.get("answer"), 80),
        ]
        for r in behind[: views.MAX_TABLE_ROWS]
    ]


def chart_csv(frame: Any) -> str:
    """A chart's table as CSV text: a header, then its rows (text a spreadsheet would run is defused)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        writer.writerow([csvsafe.defuse(v) for v in row])
    return out.getvalue()


def export_charts(
    data: Mapping[str, Any], folder: str | Path, names: Sequence[str] = tuple(CHART_FRAMES)
) -> dict[str, Path]:
    """Write each chart's table (:data:`CHART_FRAMES`) to ``folder/dashboard-<name>.csv``; returns name -> path."""
    unknown = [n for n in names if n not in CHART_FRAMES]
    if unknown:
        raise InputError(f"No chart table {unknown[0]!r}: choose among {', '.join(CHART_FRAMES)}")
    folder = Path(folder)
    return {name: write_atomic(folder / f"dashboard-{name}.csv", chart_csv(CHART_FRAMES[name](data))) for name in names}

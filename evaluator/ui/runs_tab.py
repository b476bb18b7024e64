"""The Runs tab: list the runs in the log, compare two of them, download the comparison, see head-to-heads.

:class:`RunsAPI` holds the tab's actions as plain methods (JSON in, JSON out; testable without Gradio), and
they are the app's named API endpoints: ``/list_runs``, ``/compare_runs``, ``/export_comparison`` and
``/list_head_to_heads`` (:func:`register_api`). :func:`build` builds the tab's components and
wires them, inside the caller's ``gr.Blocks`` (and ``gr.Tabs``) context.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..compare import Comparison, compare
from ..errors import InputError
from ..headtohead import head_to_heads
from ..runs import Run, RunIndex
from ..service import Evaluator
from ..textsafety import api_text as _text
from ..views import _frame
from .common import PRIVATE, friendly

RUN_HEADERS = [
    "id",
    "name",
    "started (UTC)",
    "items",
    "ok",
    "failed",
    "mean",
    "candidate",
    "judge",
    "dataset",
    "cost $",
]
REGRESSION_HEADERS = ["question", "reference", "answer A", "answer B", "A", "B", "change"]
FORMATS = {"csv": ".csv", "markdown": ".md"}


class RunsAPI:
    """The Runs tab's actions over the evaluator's log.

    Args:
        evaluator: whose log holds the runs (the app's shared evaluator; runs are the deployment's, not a session's).
    """

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def _index(self) -> RunIndex:
        return RunIndex.from_log(self.evaluator.log)

    def runs(self) -> list[Run]:
        """Every run in the log, newest first."""
        return self._index().runs()

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run in the log, newest first: id, name, dataset and hash, candidate, judge, times, counts, cost."""
        return [r.to_dict() for r in self.runs()]

    def comparison(self, run_a: str, run_b: str, force: bool = False, top: int = 10) -> Comparison:
        """Run B compared with run A (each named by id, name or id prefix)."""
        run_a, run_b = _text(run_a, "run_a").strip(), _text(run_b, "run_b").strip()
        if not run_a or not run_b:
            raise InputError("Choose two runs to compare: run A (the baseline) and run B.")
        if not isinstance(force, bool) or isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 100:
            raise InputError("force must be true or false and top a whole number from 0 to 100.")
        index = self._index()
        a, b = index.get(run_a), index.get(run_b)
        return compare(a, index.items(a.id), b, index.items(b.id), force=force, top=top)

    def compare_runs(self, run_a: str, run_b: str, force: bool = False, top: int = 10) -> dict[str, Any]:
        """Compare run B with run A item by item: mean change with its 95% interval, wins/ties/losses,
        verdict changes, per-category means and the most regressed questions (what ``compare --json`` prints)."""
        return self.comparison(run_a, run_b, force=force, top=top).to_dict()

    def export_comparison(self, run_a: str, run_b: str, format: str = "csv", force: bool = False) -> str:
        """The comparison as ``csv`` (every compared question, most regressed first) or ``markdown`` text."""
        result = self.comparison(run_a, run_b, force=force)
        fmt = _text(format, "format").strip().lower()
        if fmt not in FORMATS:
            raise InputError(f"format must be csv or markdown, got {format!r}.")
        return result.csv_text() if fmt == "csv" else result.markdown()

    def list_head_to_heads(self) -> list[dict[str, Any]]:
        """Every head-to-head in the log, newest first: pairs with wins/ties/losses and intervals, ratings."""
        return [h.to_dict() for h in head_to_heads(self.evaluator.log.records("pairwise"))]


def _run_label(run: Run) -> str:
    mean = f"{run.mean_score:.2f}" if run.mean_score is not None else "n/a"
    started = (run.started or "")[:16].replace("T", " ")
    return f"{run.name or '(no name)'} · {run.id} · {started} · mean {mean}"


def run_rows(runs: Sequence[Run]) -> list[list[Any]]:
    """The runs table's rows."""
    return [
        [
            r.id,
            r.name or "",
            (r.started or "")[:19].replace("T", " "),
            r.items,
            r.ok,
            r.failed,
            r.mean_score,
            r.candidate_model or "",
            str(r.judge) if r.judge else f"{len(r.judges)} judges",
            f"{r.dataset or '?'} @{r.dataset_hash}",
            round(r.cost_usd, 6),
        ]
        for r in runs
    ]


def regression_rows(result: Comparison) -> list[list[Any]]:
    """The regressions table's rows: both answers and the reference side by side."""
    return [
        [r.question, r.reference, r.answer_a, r.answer_b, r.score_a, r.score_b, r.delta] for r in result.regressions
    ]


def category_frame(result: Comparison) -> Any:
    """Per-category change (B − A) for the bar chart."""
    return _frame(["category", "change", "questions"], [(c["category"], c["delta"], c["n"]) for c in result.categories])


def head_to_head_markdown(reports: Sequence[dict[str, Any]]) -> str:
    """The head-to-heads in the log as Markdown (newest first)."""
    if not reports:
        return (
            "No head-to-head yet. Run one with "
            "`python -m evaluator batch INPUT -o OUT --candidate-model A --candidate-model B`."
        )
    parts = []
    for h in reports:
        lines = [
            f"**{h['name'] or h['id']}** — {', '.join(h['models'])}; {h['questions']} questions; judge `{h['judge']}`"
        ]
        for p in h["pairs"]:
            rate = "n/a" if p["win_rate"] is None else f"{p['win_rate']:.2f}"
            ci = f" (95% CI {p['ci']['low']:.2f}–{p['ci']['high']:.2f})" if p["ci"] else ""
            lines.append(
                f"- {p['model_a']} vs {p['model_b']}: {p['wins']} wins, {p['ties']} ties, {p['losses']} losses;"
                f" win rate {rate}{ci}"
            )
        for r in h["ratings"]:
            lines.append(f"- rating {r['model']}: {r['rating']:.0f} ({r['low']:.0f}–{r['high']:.0f})")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _comparison_outputs() -> tuple[gr.Markdown, gr.BarPlot, gr.Dataframe, gr.DownloadButton, gr.DownloadButton]:
    """What a comparison fills: its summary, the per-category chart, the regressions, two downloads."""
    summary = gr.Markdown(elem_id="compare-summary")
    chart = gr.BarPlot(
        x="category",
        y="change",
        title="Mean score change per category (B − A)",
        sort="y",
        y_lim=[-10, 10],
        x_label_angle=-25,
        tooltip=["category", "change", "questions"],
        visible=False,
        height=280,
        elem_id="compare-chart",
    )
    regressions = gr.Dataframe(
        headers=REGRESSION_HEADERS,
        interactive=False,
        wrap=True,
        max_height=420,
        column_widths=["17%", "20%", "20%", "20%", "7%", "7%", "9%"],
        label="Most regressed questions",
        elem_id="compare-regressions",
        elem_classes=["wide-table"],
    )
    with gr.Row():
        csv_dl = gr.DownloadButton("Download comparison (CSV)", value=None, elem_id="compare-csv")
        md_dl = gr.DownloadButton("Download comparison (Markdown)", value=None, elem_id="compare-md")
    return summary, chart, regressions, csv_dl, md_dl


def build(api: RunsAPI) -> gr.Tab:
    """Build the Runs tab inside the caller's ``gr.Tabs`` and wire it (its API: :func:`register_api`)."""
    files = tempfile.TemporaryDirectory(prefix="llm-evaluator-compare-")  # removed when the app is collected

    with gr.Tab("Runs", id="runs") as tab:
        with gr.Row():
            gr.Markdown(
                "Every batch is a run. Pick a baseline (A) and a run to check (B): the comparison matches their "
                "questions and shows what got better and what regressed."
            )
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="runs-refresh")
        table = gr.Dataframe(
            headers=RUN_HEADERS,
            interactive=False,
            wrap=True,
            max_height=300,
            column_widths=["14%", "10%", "11%", "5%", "5%", "5%", "6%", "9%", "15%", "14%", "6%"],
            elem_id="runs-table",
            elem_classes=["wide-table"],
        )
        with gr.Row():
            pick_a = gr.Dropdown(label="Run A (baseline)", choices=[], elem_id="run-a")
            pick_b = gr.Dropdown(label="Run B (compared with A)", choices=[], elem_id="run-b")
            force = gr.Checkbox(label="Compare even if judges or dataset versions differ", value=False)
        go = gr.Button("Compare", variant="primary", elem_id="compare-runs")
        summary, chart, regressions, csv_dl, md_dl = _comparison_outputs()
        gr.Markdown("### Head to head")
        h2h = gr.Markdown(elem_id="head-to-heads")

    @friendly
    def on_refresh(a: str | None, b: str | None):
        runs = api.runs()
        choices = [(_run_label(r), r.id) for r in runs]
        ids = [r.id for r in runs]
        a = a if a in ids else (ids[1] if len(ids) > 1 else None)
        b = b if b in ids else (ids[0] if ids else None)
        reports = api.list_head_to_heads()
        return {
            table: run_rows(runs),
            pick_a: gr.update(choices=choices, value=a),
            pick_b: gr.update(choices=choices, value=b),
            h2h: head_to_head_markdown(reports),
        }

    @friendly
    def on_compare(a: str | None, b: str | None, forced: bool):
        result = api.comparison(a or "", b or "", force=bool(forced))
        stem = Path(files.name) / f"compare-{result.run_a.id}-vs-{result.run_b.id}"
        csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
        csv_path.write_text(result.csv_text(), encoding="utf-8")
        md_path.write_text(result.markdown(), encoding="utf-8")
        frame = category_frame(result)
        return {
            summary: result.markdown().split("\n#### Most regressed")[0],
            chart: gr.update(value=frame, visible=len(frame) > 0),
            regressions: regression_rows(result),
            csv_dl: str(csv_path),
            md_dl: str(md_path),
        }

    outputs = [table, pick_a, pick_b, h2h]
    for trigger in (tab.select, refresh.click):
        trigger(on_refresh, [pick_a, pick_b], outputs, **PRIVATE, show_progress_on=[table])
    go.click(
        on_compare, [pick_a, pick_b, force], [summary, chart, regressions, csv_dl, md_dl], **PRIVATE,
        show_progress_on=[summary],
    )  # fmt: skip
    return tab


def register_api(api: RunsAPI) -> None:
    """Register the tab's actions as named API endpoints (call it in the Blocks, outside any ``gr.Tabs``)."""
    for fn in (api.list_runs, api.compare_runs, api.export_comparison, api.list_head_to_heads):
        gr.api(friendly(fn), api_name=fn.__name__)

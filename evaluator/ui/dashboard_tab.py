"""The Dashboard tab: charts over the whole evaluation log (scores, days, categories, agreement, sentiment)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import views
from .common import PRIVATE, AppContext, friendly

HIDDEN: dict[str, Any] = {"visible": False, "height": 260}  # a chart shows once it has data
COUNTS: dict[str, Any] = {**HIDDEN, "y": "evaluations", "y_lim": [0, None]}


def _charts() -> dict[str, gr.BarPlot | gr.LinePlot]:
    """The charts, in rows of two, keyed by the frame each shows."""
    charts: dict[str, Any] = {}
    with gr.Row():
        charts["scores"] = gr.BarPlot(
            x="score", title="Score distribution", sort=views.SCORE_BINS, elem_id="dashboard-scores", **COUNTS
        )
        charts["categories"] = gr.BarPlot(
            x="category",
            y="mean score",
            title="Mean score per category",
            sort="-y",
            y_lim=[0, 10],
            x_label_angle=-25,
            tooltip=["category", "mean score", "evaluations"],
            **HIDDEN,
        )
    with gr.Row():
        charts["days"] = gr.LinePlot(
            x="date",
            y="mean score",
            title="Mean score per day (UTC)",
            y_lim=[0, 10],
            tooltip=["date", "mean score", "evaluations"],
            **HIDDEN,
        )
        charts["day counts"] = gr.BarPlot(x="day", title="Graded evaluations per day (UTC)", **COUNTS)
    with gr.Row():
        charts["agreement"] = gr.BarPlot(
            x="grade",
            y="agreement %",
            title="Judge/human agreement (share of rated feedback)",
            sort=views.VERDICT_ORDER,
            y_lim=[0, 100],
            tooltip=["grade", "agreement %", "rated"],
            **HIDDEN,
        )
        charts["sentiment"] = gr.BarPlot(
            x="sentiment",
            y="share %",
            color="sentiment",
            color_map=views.SENTIMENT_COLORS,
            colors_in_legend=[],
            sort=list(views.SENTIMENT_COLORS),
            title="Sentiment of feedback comments",
            y_lim=[0, 100],
            tooltip=["sentiment", "share %", "feedback"],
            **HIDDEN,
        )
    with gr.Row():
        charts["verdicts"] = gr.BarPlot(x="verdict", title="Verdicts", sort=list(views.VERDICT_ORDER[1:]), **COUNTS)
        charts["judges"] = gr.BarPlot(x="judge", title="Evaluations by judge backend", **COUNTS)
    return charts


def build(ctx: AppContext) -> None:
    """Build the tab inside the current ``gr.Tabs``; it is filled when selected and on Refresh.

    The log's running totals make that cheap, whatever its size.
    """
    with gr.Tab("Dashboard", id="dashboard") as tab:
        with gr.Row():
            headline = gr.Markdown("Reading the evaluation log…", elem_id="dashboard-headline", scale=5)
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        charts = _charts()

    @friendly
    def on_show() -> dict[Any, Any]:
        data = views.dashboard_data(ctx.evaluator.dashboard())
        days = views.days_frame(data)
        frames = {
            "scores": views.score_frame(data),
            "categories": views.category_frame(data),
            "days": days,
            "day counts": days,
            "agreement": views.agreement_frame(data),
            "sentiment": views.sentiment_frame(data),
            "verdicts": views.verdict_frame(data),
            "judges": views.backend_frame(data),
        }
        shown = {charts[key]: gr.update(value=frame, visible=len(frame) > 0) for key, frame in frames.items()}
        return {headline: views.dashboard_headline(data), **shown}

    gr.on(
        [tab.select, refresh.click], on_show, None, [headline, *charts.values()], **PRIVATE, show_progress_on=[headline]
    )

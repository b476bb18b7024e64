"""The Dashboard tab: charts over the evaluation log, filters, the evaluations behind a bar, the charts as CSV."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import views
from ..dashboard import DRILL_HEADERS, DashboardFilter, drill_down, export_charts
from .common import PRIVATE, AppContext, friendly

HIDDEN: dict[str, Any] = {"visible": False, "height": 260}  # a chart shows once it has data
COUNTS: dict[str, Any] = {**HIDDEN, "y": "evaluations", "y_lim": [0, None]}
DAYS: dict[str, Any] = {
    **HIDDEN,
    "x": "date",
    "y": "mean score",
    "title": "Mean score per day (UTC)",
    "y_lim": [0, 10],
    "tooltip": ["date", "mean score", "evaluations"],
}
# The bar charts that open: chart key -> the drill-down's chart (also the x column of its frame), and its title.
BARS = {"scores": "score", "categories": "category", "day counts": "day", "verdicts": "verdict", "judges": "judge"}
BAR_TITLES = {
    "score": "Score distribution",
    "category": "Mean score per category",
    "day": "Graded evaluations per day",
    "verdict": "Verdicts",
    "judge": "Evaluations by judge backend",
}


@dataclass
class _Filters:
    start: gr.Textbox
    end: gr.Textbox
    category: gr.Dropdown
    backend: gr.Dropdown
    run: gr.Dropdown

    def inputs(self) -> list[Any]:
        """The components whose values ``DashboardFilter.from_inputs`` takes, in its order."""
        return [self.start, self.end, self.category, self.backend, self.run]


@dataclass
class _Drill:
    chart: gr.Dropdown
    value: gr.Dropdown
    show: gr.Button
    caption: gr.Markdown
    table: gr.Dataframe
    bars: gr.State  # drill-down chart -> the x values of its bars with evaluations, as last drawn


def _filter_row() -> _Filters:
    with gr.Row(elem_id="dashboard-filters"):
        dates: dict[str, Any] = {"placeholder": "YYYY-MM-DD", "min_width": 140, "max_lines": 1}
        start = gr.Textbox(label="From (UTC day)", elem_id="dashboard-start", **dates)
        end = gr.Textbox(label="To (UTC day)", elem_id="dashboard-end", **dates)
        any_of: dict[str, Any] = {"choices": [views.ANY], "value": views.ANY, "min_width": 140}
        category = gr.Dropdown(label="Category", elem_id="dashboard-category", **any_of)
        backend = gr.Dropdown(label="Judge", elem_id="dashboard-judge", **any_of)
        run = gr.Dropdown(label="Run", elem_id="dashboard-run", **any_of)
    return _Filters(start, end, category, backend, run)


def _charts() -> dict[str, gr.BarPlot | gr.LinePlot | gr.ScatterPlot]:
    """The charts, in rows of two, keyed by the frame each shows (one day of scores shows as a point)."""
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
            elem_id="dashboard-categories",
            **HIDDEN,
        )
    with gr.Row():
        with gr.Column():
            charts["days"] = gr.LinePlot(elem_id="dashboard-days", **DAYS)
            charts["day points"] = gr.ScatterPlot(elem_id="dashboard-day-points", **DAYS)
        charts["day counts"] = gr.BarPlot(
            x="day",
            title="Graded evaluations per day (UTC)",
            x_label_angle=-30,
            elem_id="dashboard-day-counts",
            **COUNTS,
        )
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
        charts["verdicts"] = gr.BarPlot(
            x="verdict", title="Verdicts", sort=list(views.VERDICT_ORDER[1:]), elem_id="dashboard-verdicts", **COUNTS
        )
        charts["judges"] = gr.BarPlot(
            x="judge", title="Evaluations by judge backend", elem_id="dashboard-judges", **COUNTS
        )
    return charts


def _drill_section() -> _Drill:
    gr.Markdown(
        "### Evaluations behind a bar\nDrag across one or more bars of a chart, or choose a chart and a bar here."
    )
    with gr.Row():
        chart = gr.Dropdown(
            [(title, name) for name, title in BAR_TITLES.items()], value="score", label="Chart", elem_id="drill-chart"
        )
        value = gr.Dropdown([], value=None, label="Bar", elem_id="drill-value")
        show = gr.Button("Show evaluations", elem_id="drill-show", scale=0, min_width=160)
    caption = gr.Markdown(elem_id="drill-caption")
    table = gr.Dataframe(
        headers=DRILL_HEADERS, interactive=False, wrap=True, max_height=420, elem_id="drill-table", visible=False
    )
    return _Drill(chart, value, show, caption, table, gr.State({}))


def _frames(data: dict[str, Any]) -> dict[str, Any]:
    """Each chart's frame, by chart key."""
    days = views.days_frame(data)
    return {
        "scores": views.score_frame(data),
        "categories": views.category_frame(data),
        "days": days,
        "day points": days,
        "day counts": days,
        "agreement": views.agreement_frame(data),
        "sentiment": views.sentiment_frame(data),
        "verdicts": views.verdict_frame(data),
        "judges": views.backend_frame(data),
    }


def _shown(key: str, frame: Any) -> bool:
    """Whether chart ``key`` shows ``frame``: the day line needs two days, one day shows as a point."""
    if key == "days":
        return views.days_as_line(frame)
    if key == "day points":
        return len(frame) == 1
    return len(frame) > 0


def _bar_values(frames: dict[str, Any]) -> dict[str, list[str]]:
    """Each drill-down chart's bars that have evaluations (x values), in the frame's order."""
    values = {}
    for key, chart in BARS.items():
        frame = frames[key]
        values[chart] = [str(x) for x in frame.loc[frame["evaluations"] > 0, chart]]
    return values


def _filter_note(flt: DashboardFilter) -> str:
    """One Markdown line saying what a filter keeps ('' for none)."""
    parts = [
        f"{name} **{views._md(value)}**"
        for name, value in (("category", flt.category), ("judge", flt.backend), ("run", flt.run))
        if value
    ]
    if flt.start or flt.end:
        parts.append(f"days **{flt.start or '…'}** to **{flt.end or '…'}** (UTC)")
    return f"**Filtered:** {', '.join(parts)}.\n\n" if parts else ""


def build(ctx: AppContext) -> None:
    """Build the tab inside the current ``gr.Tabs``; it is filled when selected and on Refresh.

    Unfiltered, the log's running totals make that cheap, whatever its size; a filter reads the records.
    """
    exports = tempfile.TemporaryDirectory(prefix="llm-evaluator-dashboard-")  # removed when the app is collected
    with gr.Tab("Dashboard", id="dashboard") as tab:
        with gr.Row():
            headline = gr.Markdown("Reading the evaluation log…", elem_id="dashboard-headline", scale=5)
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        filters = _filter_row()
        charts = _charts()
        drill = _drill_section()
        with gr.Row():
            export = gr.Button("Export chart tables (CSV)", elem_id="dashboard-export", scale=0, min_width=220)
            files = gr.File(label="Chart tables", file_count="multiple", elem_id="dashboard-files", visible=False)

    def draw(flt: DashboardFilter, chart: str | None) -> dict[Any, Any]:
        data = views.dashboard_data(ctx.evaluator.dashboard(flt))
        frames = _frames(data)
        bars = _bar_values(frames)
        shown = {charts[key]: gr.update(value=frame, visible=_shown(key, frame)) for key, frame in frames.items()}
        return {
            headline: _filter_note(flt) + views.dashboard_headline(data),
            **shown,
            drill.bars: bars,
            drill.value: gr.update(choices=bars.get(chart or "", []), value=None),
            drill.caption: "",
            drill.table: gr.update(value=[], visible=False),  # its rows were those of the charts before
        }

    @friendly
    def on_show(start: str, end: str, category: str, backend: str, run: str, chart: str) -> dict[Any, Any]:
        flt = DashboardFilter.from_inputs(start, end, category, backend, run)
        choices = ctx.evaluator.dashboard_choices()
        first, last = choices["first_day"] or "YYYY-MM-DD", choices["last_day"] or "YYYY-MM-DD"
        return {
            **draw(flt, chart),
            filters.start: gr.update(placeholder=first),
            filters.end: gr.update(placeholder=last),
            filters.category: gr.update(choices=choices["categories"]),
            filters.backend: gr.update(choices=choices["backends"]),
            filters.run: gr.update(choices=choices["runs"]),
        }

    @friendly
    def on_filter(start: str, end: str, category: str, backend: str, run: str, chart: str) -> dict[Any, Any]:
        return draw(DashboardFilter.from_inputs(start, end, category, backend, run), chart)

    inputs = [*filters.inputs(), drill.chart]
    drawn = [headline, *charts.values(), drill.bars, drill.value, drill.caption, drill.table]
    options: dict[str, Any] = {**PRIVATE, "show_progress_on": [headline]}
    gr.on([tab.select, refresh.click], on_show, inputs, [*drawn, *filters.inputs()], **options)
    changed = [filters.start.submit, filters.start.blur, filters.end.submit, filters.end.blur]
    changed += [filters.category.input, filters.backend.input, filters.run.input]
    gr.on(changed, on_filter, inputs, drawn, **options)
    _wire_drill(ctx, filters, drill, charts)

    @friendly
    def on_export(start: str, end: str, category: str, backend: str, run: str) -> dict[Any, Any]:
        flt = DashboardFilter.from_inputs(start, end, category, backend, run)
        data = views.dashboard_data(ctx.evaluator.dashboard(flt))
        written = export_charts(data, tempfile.mkdtemp(dir=exports.name))
        return {files: gr.update(value=[str(p) for p in written.values()], visible=True)}

    export.click(on_export, filters.inputs(), [files], **PRIVATE)


def _wire_drill(ctx: AppContext, filters: _Filters, drill: _Drill, charts: dict[str, Any]) -> None:
    """The drill-down: a bar chosen in the dropdowns, or bars brushed in a chart, fill the table."""

    def opened(chart: str, values: list[str], flt: DashboardFilter) -> dict[Any, Any]:
        rows = drill_down(ctx.evaluator.dashboard_records(), chart, values, flt)
        bars = ", ".join(f"`{v}`" for v in values)
        more = f" (the newest {len(rows)} shown)" if len(rows) == views.MAX_TABLE_ROWS else ""
        return {
            drill.caption: f"**{views.plural(len(rows), 'evaluation')}** behind {BAR_TITLES[chart]}: {bars}{more}",
            drill.table: gr.update(value=rows, visible=True),
        }

    @friendly
    def on_show(chart: str, value: str | None, *filter_values: str) -> dict[Any, Any]:
        if not value:
            raise gr.Error("Choose a bar first (the charts show which have evaluations).", print_exception=False)
        return opened(chart, [value], DashboardFilter.from_inputs(*filter_values))

    def on_chart(chart: str, bars: dict[str, list[str]]) -> dict[Any, Any]:
        return {drill.value: gr.update(choices=bars.get(chart, []), value=None)}

    drill.show.click(on_show, [drill.chart, drill.value, *filters.inputs()], [drill.caption, drill.table], **PRIVATE)
    drill.chart.input(on_chart, [drill.chart, drill.bars], [drill.value], **PRIVATE, queue=False)

    def selector(chart: str) -> Callable[..., dict[Any, Any]]:
        @friendly
        def on_select(
            bars: dict[str, list[str]], start: str, end: str, category: str, backend: str, run: str, evt: gr.SelectData
        ) -> dict[Any, Any]:
            values = [str(v) for v in (evt.value if isinstance(evt.value, list) else [evt.value])]
            flt = DashboardFilter.from_inputs(start, end, category, backend, run)
            single = values[0] if len(values) == 1 else None
            chosen = {drill.chart: chart, drill.value: gr.update(choices=bars.get(chart, []), value=single)}
            return {**chosen, **opened(chart, values, flt)}

        return on_select

    outputs = [drill.chart, drill.value, drill.caption, drill.table]
    for key, chart in BARS.items():
        charts[key].select(selector(chart), [drill.bars, *filters.inputs()], outputs, **PRIVATE)

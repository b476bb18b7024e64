"""The Batch tab: grade a file of answers, or let a candidate model answer the dataset, with live progress."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from .. import views
from ..batch_io import ResultRow, dataset_items, parse_batch, write_results
from ..batch_summary import BatchSummary
from ..candidate import Candidate, build_candidate
from ..dataset import Dataset
from ..errors import InputError
from ..jobs import LOADING, batch_job_id
from ..runs import RunInfo
from ..service import Evaluator
from ..textsafety import api_text
from .common import PRIVATE, QUIET, AppContext, SessionState, client_key, friendly, uploaded, whole

MODE_FILE = "Grade the answers in a file"
MODE_CANDIDATE = "A candidate model answers the dataset"
MAX_CONCURRENCY = 32
CANDIDATE_LABELS = {
    MODE_FILE: "Candidate model (optional: answers the rows that have no answer)",
    MODE_CANDIDATE: "Candidate model (answers each dataset question)",
}


def batch_items(ev: Evaluator, demo: gr.Blocks, mode: str, path: str | None, candidate: str, limit: Any):
    """The items to grade and the malformed rows skipped: the uploaded file's, or the dataset's first ``limit``."""
    if mode == MODE_CANDIDATE:
        if not candidate:
            raise InputError("Name the candidate model that should answer the questions (or local:smollm2).")
        return dataset_items(ev.dataset, whole(limit or 1, "Dataset questions", 1, 10**6)), []
    source = uploaded(path, demo)
    if source is None:
        raise InputError("Upload a JSONL or CSV file of answers first.")
    parsed = parse_batch(source, evaluator=ev, candidate=bool(candidate))
    if not parsed.items:
        raise InputError("The file has no valid rows: " + "; ".join(parsed.errors[:5]))
    return parsed.items, parsed.errors


def claim(ctx: AppContext, client: str, calls: int, candidate_name: str) -> tuple[Candidate | None, Callable]:
    """Take ``client``'s batch slot and reserve ``calls`` model calls; return ``(candidate, on_end)``.

    ``on_end(items finished)`` settles the budget, closes the candidate and frees the slot; the batch's thread
    calls it once the batch has really stopped. If starting fails, everything is released here.
    """
    ctx.slots.claim(client)
    try:
        spent = ctx.limits.reserve(client, calls)
        candidate: Candidate | None = build_candidate(ctx.settings, candidate_name) if candidate_name else None
    except BaseException:
        ctx.slots.release(client)
        raise
    per_item = ctx.settings.consistency_runs + (1 if candidate_name else 0)

    def on_end(finished: int) -> None:
        try:
            spent.use(finished * per_item)
            spent.settle()  # refund the calls of items not graded in this run (stopped, resumed)
            if candidate is not None:
                candidate.close()
        finally:
            ctx.slots.release(client)

    return candidate, on_end


def build(demo: gr.Blocks, ctx: AppContext, state: SessionState) -> None:
    """Build the tab inside the current ``gr.Tabs`` and wire it (its API: ``/run_batch``)."""
    results = tempfile.TemporaryDirectory(prefix="llm-evaluator-batch-")  # removed when the app is collected
    with gr.Tab("Batch", id="batch"):
        mode = gr.Radio([MODE_FILE, MODE_CANDIDATE], value=MODE_FILE, label="What to grade", elem_id="batch-mode")
        upload = gr.File(
            label="Answers (JSONL or CSV: question_id or question + reference, and answer)",
            file_types=[".jsonl", ".csv"],
            type="filepath",
            elem_id="batch-file",
        )
        with gr.Row():
            candidate = gr.Textbox(
                label=CANDIDATE_LABELS[MODE_FILE],
                value=ctx.settings.candidate_model_name or "",
                placeholder="an OpenAI-compatible model name, or local:smollm2",
                elem_id="batch-candidate",
            )
            limit = gr.Number(
                label="Dataset questions", value=20, precision=0, minimum=1, visible=False, elem_id="batch-limit"
            )
            concurrency = gr.Slider(1, MAX_CONCURRENCY, value=8, step=1, label="Concurrency")
        run = gr.Button("Run batch", variant="primary", elem_id="run-batch")
        status = gr.Markdown(elem_id="batch-status")
        rows = gr.State([])  # the result rows shown, for the detail of a selected row
        table = gr.Dataframe(
            headers=views.BATCH_HEADERS,
            interactive=False,
            wrap=True,
            max_height=420,
            column_widths=["5%", "10%", "6%", "6%", "11%", "26%", "36%"],
            elem_id="batch-table",
            elem_classes=["wide-table"],
        )
        detail = gr.Markdown(elem_id="batch-row-detail")
        with gr.Row(visible=False, elem_id="batch-downloads") as downloads:  # shown once a run has finished
            csv_dl = gr.DownloadButton("Download CSV", value=None, elem_id="batch-csv")
            jsonl_dl = gr.DownloadButton("Download JSONL", value=None, elem_id="batch-jsonl")

    def on_mode(how: str) -> dict[Any, Any]:
        candidate_mode = how == MODE_CANDIDATE
        return {
            upload: gr.File(visible=not candidate_mode),
            limit: gr.Number(visible=candidate_mode),
            candidate: gr.Textbox(label=CANDIDATE_LABELS[how]),
        }

    @friendly
    def on_run(
        how: str,
        path: str | None,
        candidate_name: str,
        questions: float | None,
        workers: float,
        ds: Dataset | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio injects a progress bar)
    ):
        ev = ctx.session(ds)
        candidate_name = api_text(candidate_name, "candidate model").strip()
        workers = whole(workers, "Concurrency", 1, MAX_CONCURRENCY)
        items, errors = batch_items(ev, demo, how, path, candidate_name, questions)
        ctx.limits.check_rows(len(items))
        if candidate_name:
            ctx.limits.check_model(candidate_name)
        client = client_key(request)
        ctx.limiter.check(client)
        per_item = ctx.settings.consistency_runs + (1 if candidate_name else 0)
        model, on_end = claim(ctx, client, per_item * len(items), candidate_name)
        job_id = batch_job_id(items, candidate=candidate_name, dataset=ev.dataset.name)
        run_info = RunInfo(source="app", input=Path(path).name if path and how != MODE_CANDIDATE else None)
        stream = ev.stream_batch(
            items, on_end=on_end, candidate=model, concurrency=workers, job_id=job_id, run=run_info
        )
        for update in stream:
            if update.summary is not None:
                yield _finished(update.summary, errors, Path(results.name), status, table, rows, csv_dl, jsonl_dl)
                return
            loading = update.message if update.stage == LOADING else ""
            if loading:
                progress(None, desc=loading)
            else:
                progress(
                    (update.done, update.total),
                    desc=views.batch_stage(update.done, update.total, rate=update.rate),
                    unit="items",
                )
            line = views.batch_progress(update.done, update.total, update.rows, loading=loading, rate=update.rate)
            yield {status: line, table: views.batch_rows(update.rows), rows: list(update.rows)}

    def on_select(shown: list[ResultRow], evt: gr.SelectData) -> str:
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return views.batch_row_markdown(shown[index]) if isinstance(index, int) and 0 <= index < len(shown) else ""

    mode.change(on_mode, [mode], [upload, limit, candidate], **QUIET)
    # In order: the last run's row detail and downloads go, the run streams, then its downloads show.
    run.click(lambda: ("", gr.Row(visible=False)), None, [detail, downloads], **QUIET).then(
        on_run,
        [mode, upload, candidate, limit, concurrency, state.dataset],
        [status, table, rows, csv_dl, jsonl_dl],
        api_name="run_batch",
        concurrency_limit=1,
    ).success(lambda: gr.Row(visible=True), None, downloads, **PRIVATE)
    table.select(on_select, [rows], [detail], **QUIET)


def _finished(summary: BatchSummary, errors: list[str], folder: Path, *outputs: Any) -> dict[Any, Any]:
    """The outputs once a batch has ended: its summary, every row, and the results files to download."""
    status, table, rows, csv_dl, jsonl_dl = outputs
    return {
        status: views.batch_summary_markdown(summary.text(), errors),
        table: views.batch_rows(summary.rows),
        rows: list(summary.rows),
        csv_dl: str(write_results(summary.rows, folder / f"{summary.job_id}.csv")),
        jsonl_dl: str(write_results(summary.rows, folder / f"{summary.job_id}.jsonl")),
    }

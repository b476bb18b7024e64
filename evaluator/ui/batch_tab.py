"""The Batch tab: grade a file of answers, or let a candidate model answer the dataset, with live progress."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from .. import views
from ..batch_io import dataset_items, parse_batch, write_results
from ..candidate import Candidate, build_candidate
from ..dataset import Dataset
from ..errors import InputError
from ..jobs import batch_job_id
from ..runs import RunInfo
from ..service import Evaluator
from ..textsafety import api_text
from .common import AppContext, SessionState, client_key, friendly, uploaded, whole

MODE_FILE = "Grade the answers in a file"
MODE_CANDIDATE = "A candidate model answers the dataset"
MAX_CONCURRENCY = 32


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
        mode = gr.Radio([MODE_FILE, MODE_CANDIDATE], value=MODE_FILE, label="What to grade")
        upload = gr.File(
            label="Answers (JSONL or CSV: question_id or question + reference, and answer)",
            file_types=[".jsonl", ".csv"],
            type="filepath",
            elem_id="batch-file",
        )
        with gr.Row():
            candidate = gr.Textbox(
                label="Candidate model (answers rows without an answer)",
                value=ctx.settings.candidate_model_name or "",
                placeholder="an OpenAI-compatible model name, or local:smollm2",
            )
            limit = gr.Number(label="Dataset questions (candidate mode)", value=20, precision=0, minimum=1)
            concurrency = gr.Slider(1, MAX_CONCURRENCY, value=8, step=1, label="Concurrency")
        run = gr.Button("Run batch", variant="primary")
        status = gr.Markdown()
        table = gr.Dataframe(
            headers=views.BATCH_HEADERS,
            interactive=False,
            wrap=True,
            max_height=420,
            column_widths=["5%", "10%", "6%", "6%", "11%", "26%", "36%"],
        )
        with gr.Row():
            csv_dl = gr.DownloadButton("Download CSV", value=None)
            jsonl_dl = gr.DownloadButton("Download JSONL", value=None)

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
        progress((0, len(items)), desc="Starting…", unit="items")
        for done, total, rows, summary in stream:
            progress((done, total), desc="Grading", unit="items")
            if summary is None:
                yield {status: views.batch_progress(done, total, rows), table: views.batch_rows(rows)}
        folder = Path(results.name)
        yield {
            status: views.batch_summary_markdown(summary.text(), errors),
            table: views.batch_rows(summary.rows),
            csv_dl: str(write_results(summary.rows, folder / f"{summary.job_id}.csv")),
            jsonl_dl: str(write_results(summary.rows, folder / f"{summary.job_id}.jsonl")),
        }

    run.click(
        on_run,
        [mode, upload, candidate, limit, concurrency, state.dataset],
        [status, table, csv_dl, jsonl_dl],
        api_name="run_batch",
        concurrency_limit=1,
    )

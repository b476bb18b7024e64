"""The Gradio app: ``build_demo(evaluator)`` wires the UI and its API; ``python app.py`` serves it with ``/healthz``.

All logic lives in :mod:`evaluator` (grading, datasets, feedback, batches) and :mod:`evaluator.views`
(what to display); this file only connects components to it. Per-session data (the dataset a user
loaded, the question being asked, the last grade) lives in ``gr.State``, never in module globals.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from evaluator import views
from evaluator.batch import dataset_items, parse_batch, write_results
from evaluator.candidate import build_candidate
from evaluator.config import load_settings
from evaluator.dataset import Dataset, QAItem, load_dataset
from evaluator.errors import EvaluatorError, InputError, JudgeError, RateLimitedError
from evaluator.jobs import BatchSlots, batch_job_id, stream_batch
from evaluator.limits import CostLimits
from evaluator.models import EvaluationRecord
from evaluator.ratelimit import RateLimiter
from evaluator.runs import RunInfo
from evaluator.server import BodyLimit, ClientAddress, LoginThrottle, public_health
from evaluator.service import Evaluator
from evaluator.shutdown import close_within, signals_interrupt
from evaluator.textsafety import api_text as _text
from evaluator.ui.runs_tab import RunsAPI, build_runs_tab, register_runs_api

logger = logging.getLogger("app")

MODE_FILE = "Grade the answers in a file"
MODE_CANDIDATE = "A candidate model answers the dataset"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ERROR_CHARS = 600


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the evaluator's errors into ``gr.Error`` with their human sentence (a toast in the UI, an API error)."""

    def translate(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        message = str(exc)
        if len(message) > MAX_ERROR_CHARS:  # never echo a huge input back in full
            message = message[: MAX_ERROR_CHARS - 1] + "…"
        if isinstance(exc, RateLimitedError):
            return gr.Error(message, title="Slow down", print_exception=False)
        if isinstance(exc, EvaluatorError):
            return gr.Error(message, print_exception=False)
        logger.exception("Unexpected error in %s", fn.__name__)
        return gr.Error("Something went wrong on our side; it has been logged. Please try again.")

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc) from None

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None

    return call


def _client(request: gr.Request | None) -> str:
    """The rate-limit key of a request: the client's IP (uvicorn resolves proxy headers from trusted proxies)."""
    client = getattr(request, "client", None) if request is not None else None
    return getattr(client, "host", None) or "unknown"


def _graded(record: EvaluationRecord) -> EvaluationRecord:
    """``record`` if the judge graded it; the judge's failure (already logged) as an error otherwise."""
    if not record.result.ok:
        raise JudgeError(views.judge_failure(record))
    return record


def _whole(value: Any, name: str, low: int, high: int) -> int:
    """A whole-number parameter within ``[low, high]``; anything else (NaN, inf, text) is an :class:`InputError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {str(value)[:40]!r}.")
    return int(number)


def _uploaded(path: str | None, demo: gr.Blocks) -> Path | None:
    """The file a visitor uploaded through this app, or :class:`InputError` for any other path.

    Gradio checks paths only under ``launch()``, not under ``mount_gradio_app``: without this, an API call
    naming a server file (the log, a dataset) in a ``FileData`` would have it read. Upload folders are named
    by a keyed hash of the content, so a path is known only to whoever uploaded the file.
    """
    if not path:
        return None
    real = Path(path).resolve()
    if path not in demo.upload_file_set or not real.is_relative_to(Path(get_upload_folder()).resolve()):
        raise InputError("Upload the file through the app: a path on the server is not accepted.")
    return real


def build_demo(evaluator: Evaluator, limits: CostLimits | None = None) -> gr.Blocks:
    """The app's Blocks: chat, dataset, feedback, batch and dashboard tabs, and a named API endpoint per action.

    ``limits`` (default: from the settings) counts the model calls each client makes.
    """
    settings = evaluator.settings
    limiter = RateLimiter(settings.rate_limit_per_minute)
    limits = limits or CostLimits.from_settings(settings)
    slots = BatchSlots()
    runs = settings.consistency_runs  # judge calls per grade
    judge_warm = threading.Event()  # set after the first grading: the offline judge's model is loaded by then
    results_dir = tempfile.TemporaryDirectory(prefix="llm-evaluator-batch-")  # removed when the app is collected
    app_dataset = evaluator.dataset
    runs_api = RunsAPI(evaluator)

    def session(ds: Dataset | None) -> Evaluator:
        """The evaluator for a session: over the dataset it loaded, else the app's."""
        return evaluator.with_dataset(ds) if ds is not None else evaluator

    def grade(ev: Evaluator, request: gr.Request | None, answer: str, **question: Any) -> EvaluationRecord:
        """``ev.evaluate`` once the client is within its rate limit, its judge calls counted against its budget."""
        client = _client(request)
        limiter.check(client)
        with limits.reserve(client, runs) as spent:
            record = ev.evaluate(answer, **question)
            spent.use(0 if record.result.cache_hit else runs)
        return _graded(record)

    def next_item(ev: Evaluator, category: str | None, difficulty: str | None, avoid: str | None = None) -> QAItem:
        """A random question within the filters, preferably not the one just asked."""
        filters = {"category": views.chosen(category), "difficulty": views.chosen(difficulty)}
        item = ev.dataset.random(**filters)
        if item.id == avoid and len(ev.dataset.filter(**filters)) > 1:
            item = ev.dataset.random(**filters)
        return item

    with gr.Blocks(title="LLM Evaluator Chatbot", delete_cache=(3600, 3600)) as demo:
        session_ds = gr.State(None)  # the Dataset this session loaded, or None for the app's
        current_q = gr.State(None)  # id of the question the chat is waiting on
        last_eval = gr.State(None)  # the session's last EvaluationRecord (the Feedback tab refers to it)
        suggested = gr.State(None)  # id of the dataset question the free form proposes

        gr.Markdown("# LLM Evaluator Chatbot")
        gr.Markdown(views.judge_label(settings), elem_id="judge-label")

        with gr.Tabs() as tabs:
            # -- Chat evaluation ------------------------------------------------------------------
            with gr.Tab("Chat evaluation", id="chat"):
                with gr.Row():
                    chat_cat = gr.Dropdown(views.choices(app_dataset.categories), value=views.ANY, label="Category")
                    chat_diff = gr.Dropdown(
                        views.choices(app_dataset.difficulties), value=views.ANY, label="Difficulty"
                    )
                    chat_qid = gr.Textbox(label="Question id (optional)", placeholder="e.g. stat-001")
                    next_btn = gr.Button("Next question")
                # Progress and errors show here, so a failed action never hides the conversation.
                chat_status = gr.Markdown(views.CHAT_HINT, elem_id="chat-status")
                chatbot = gr.Chatbot(
                    label="Evaluator",
                    height=560,
                    feedback_options=None,
                    group_consecutive_messages=False,
                    elem_id="chatbot",
                )
                with gr.Row():
                    answer_box = gr.Textbox(
                        placeholder="Your answer… (Enter sends, Shift+Enter for a new line)",
                        lines=1,
                        max_lines=10,
                        show_label=False,
                        scale=5,
                        elem_id="answer-box",
                    )
                    send_btn = gr.Button("Submit answer", variant="primary", scale=1, elem_id="send-answer")
                with gr.Accordion("Free form: grade an answer to your own question", open=False):
                    free_q = gr.Textbox(label="Question")
                    free_ref = gr.Textbox(
                        label="Reference answer (optional: without one, the closest dataset question is proposed)"
                    )
                    free_ans = gr.Textbox(label="Answer", lines=3)
                    with gr.Row():
                        free_btn = gr.Button("Grade", variant="primary")
                        use_btn = gr.Button("Use this question", visible=False)
                    free_out = gr.Markdown(min_height=40)

            # -- Dataset ----------------------------------------------------------------------------
            with gr.Tab("Dataset", id="dataset"):
                ds_summary = gr.Markdown(views.dataset_summary(app_dataset, session=False))
                with gr.Row():
                    search_box = gr.Textbox(
                        label="Search", placeholder="words in the id, question or reference", scale=3
                    )
                    ds_cat = gr.Dropdown(views.choices(app_dataset.categories), value=views.ANY, label="Category")
                    ds_diff = gr.Dropdown(views.choices(app_dataset.difficulties), value=views.ANY, label="Difficulty")
                ds_count = gr.Markdown(views.match_count(len(app_dataset), len(app_dataset)), elem_id="dataset-count")
                ds_table = gr.Dataframe(
                    headers=views.DATASET_HEADERS,
                    value=views.dataset_rows(app_dataset.items),
                    interactive=False,
                    wrap=True,
                    max_height=420,
                    elem_id="dataset-table",
                )
                with gr.Row():
                    detail_qid = gr.Textbox(label="Question id", placeholder="select a row, or type an id", scale=3)
                    detail_btn = gr.Button("Show")
                    practice_btn = gr.Button("Practise it in the chat")
                detail_md = gr.Markdown(min_height=40)
                with gr.Accordion("Load another dataset (for this session)", open=False):
                    gr.Markdown(
                        "Upload JSON, JSONL or CSV with `id`, `question` and `reference` (optional `category`, "
                        "`difficulty`), or give a Hugging Face Hub dataset id. The chat and batch tabs of this "
                        "browser session then use it; other users keep theirs."
                    )
                    upload = gr.File(label="Dataset file", file_types=[".json", ".jsonl", ".csv"], type="filepath")
                    with gr.Row():
                        hub_id = gr.Textbox(label="Hub dataset id", placeholder="owner/name", scale=3)
                        hub_split = gr.Textbox(label="Split", value="train", scale=1)
                        hub_btn = gr.Button("Load from the Hub")
                    reset_btn = gr.Button("Back to the app's dataset")
                    load_msg = gr.Markdown(min_height=40)

            # -- Feedback ---------------------------------------------------------------------------
            with gr.Tab("Feedback", id="feedback"):
                fb_last = gr.Markdown(views.last_grade_markdown(None))
                fb_eval_id = gr.Textbox(label="Evaluation id", placeholder="filled in with your last grade")
                with gr.Row():
                    fb_agree = gr.Radio(views.AGREE_CHOICES, value="No opinion", label="Do you agree with the grade?")
                    fb_rating = gr.Radio([1, 2, 3, 4, 5], label="Rate the grade (optional)")
                fb_comment = gr.Textbox(label="Comment", lines=3, elem_id="feedback-comment")
                fb_btn = gr.Button("Send feedback", variant="primary", elem_id="send-feedback")
                fb_out = gr.Markdown(min_height=40, elem_id="feedback-result")
                with gr.Row():
                    gr.Markdown("### Recent feedback")
                    fb_refresh = gr.Button("Refresh", size="sm")
                fb_table = gr.Dataframe(
                    headers=views.FEEDBACK_HEADERS,
                    interactive=False,
                    wrap=True,
                    column_widths=["13%", "10%", "10%", "7%", "6%", "11%", "23%", "20%"],
                    max_height=360,
                    elem_id="feedback-table",
                )

            # -- Batch ------------------------------------------------------------------------------
            with gr.Tab("Batch", id="batch"):
                batch_mode = gr.Radio([MODE_FILE, MODE_CANDIDATE], value=MODE_FILE, label="What to grade")
                batch_file = gr.File(
                    label="Answers (JSONL or CSV: question_id or question + reference, and answer)",
                    file_types=[".jsonl", ".csv"],
                    type="filepath",
                    elem_id="batch-file",
                )
                with gr.Row():
                    cand_name = gr.Textbox(
                        label="Candidate model (answers rows without an answer)",
                        value=settings.candidate_model_name or "",
                        placeholder="an OpenAI-compatible model name, or local:smollm2",
                    )
                    batch_limit = gr.Number(
                        label="Dataset questions (candidate mode)", value=20, precision=0, minimum=1
                    )
                    batch_conc = gr.Slider(1, 32, value=8, step=1, label="Concurrency")
                batch_btn = gr.Button("Run batch", variant="primary")
                batch_status = gr.Markdown()
                batch_table = gr.Dataframe(
                    headers=views.BATCH_HEADERS,
                    interactive=False,
                    wrap=True,
                    max_height=420,
                    column_widths=["5%", "10%", "6%", "6%", "11%", "26%", "36%"],
                )
                with gr.Row():
                    csv_dl = gr.DownloadButton("Download CSV", value=None)
                    jsonl_dl = gr.DownloadButton("Download JSONL", value=None)

            # -- Dashboard --------------------------------------------------------------------------
            # Filled when the tab is selected and on Refresh: the log's running totals make that cheap.
            with gr.Tab("Dashboard", id="dashboard") as dash_tab:
                with gr.Row():
                    dash_head = gr.Markdown("Reading the evaluation log…", elem_id="dashboard-headline", scale=5)
                    dash_refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
                hidden: dict[str, Any] = {"visible": False, "height": 260}
                counts: dict[str, Any] = {**hidden, "y": "evaluations", "y_lim": [0, None]}
                with gr.Row():
                    dash_scores = gr.BarPlot(
                        x="score",
                        title="Score distribution",
                        sort=views.SCORE_BINS,
                        elem_id="dashboard-scores",
                        **counts,
                    )
                    dash_cats = gr.BarPlot(
                        x="category",
                        y="mean score",
                        title="Mean score per category",
                        sort="-y",
                        y_lim=[0, 10],
                        x_label_angle=-25,
                        tooltip=["category", "mean score", "evaluations"],
                        **hidden,
                    )
                with gr.Row():
                    dash_days = gr.LinePlot(
                        x="date",
                        y="mean score",
                        title="Mean score per day (UTC)",
                        y_lim=[0, 10],
                        tooltip=["date", "mean score", "evaluations"],
                        **hidden,
                    )
                    dash_counts = gr.BarPlot(x="day", title="Graded evaluations per day (UTC)", **counts)
                with gr.Row():
                    dash_agree = gr.BarPlot(
                        x="grade",
                        y="agreement %",
                        title="Judge/human agreement (share of rated feedback)",
                        sort=views.VERDICT_ORDER,
                        y_lim=[0, 100],
                        tooltip=["grade", "agreement %", "rated"],
                        **hidden,
                    )
                    dash_sentiment = gr.BarPlot(
                        x="sentiment",
                        y="share %",
                        color="sentiment",
                        color_map=views.SENTIMENT_COLORS,
                        colors_in_legend=[],
                        sort=list(views.SENTIMENT_COLORS),
                        title="Sentiment of feedback comments",
                        y_lim=[0, 100],
                        tooltip=["sentiment", "share %", "feedback"],
                        **hidden,
                    )
                with gr.Row():
                    dash_verdicts = gr.BarPlot(
                        x="verdict", title="Verdicts", sort=list(views.VERDICT_ORDER[1:]), **counts
                    )
                    dash_judges = gr.BarPlot(x="judge", title="Evaluations by judge backend", **counts)

            # -- Runs: list, compare two, head-to-heads (its own module, with its API endpoints) -----
            build_runs_tab(runs_api, friendly=_friendly)

        # ============================== handlers (UI) ==============================
        def ask(history: list, item: QAItem) -> tuple[list, str]:
            return [*history, {"role": "assistant", "content": views.question_message(item)}], item.id

        def greet(ds: Dataset | None) -> tuple[list, str]:
            dataset = session(ds).dataset
            hello = {"role": "assistant", "content": "Hello! " + views.dataset_summary(dataset, session=ds is not None)}
            return ask([hello], dataset.random())

        def detail(ds: Dataset | None, qid: str) -> str:
            ev = session(ds)
            item = ev.dataset.get(qid or "")
            return views.item_markdown(item, ev.log.question_history(item.id))

        start = _friendly(greet)

        @_friendly
        def on_next(category: str, difficulty: str, qid: str, history: list, current: str | None, ds: Dataset | None):
            ev = session(ds)
            item = ev.dataset.get(qid) if qid.strip() else next_item(ev, category, difficulty, current)
            history, current = ask(history, item)
            return history, current, ""

        @_friendly
        def on_answer(
            message: str,
            history: list,
            current: str | None,
            category: str,
            difficulty: str,
            ds: Dataset | None,
            request: gr.Request,
        ):
            ev = session(ds)
            ev.check_answer(message)
            if not current:
                raise InputError("There is no question to answer yet: press “Next question”.")
            record = grade(ev, request, message, question_id=current)
            judge_warm.set()
            history = [
                *history,
                {"role": "user", "content": message},
                {"role": "assistant", "content": views.grade_markdown(record)},
            ]
            history, current = ask(history, next_item(ev, category, difficulty, current))
            return history, "", current, record, record.id, views.last_grade_markdown(record), views.CHAT_HINT

        @_friendly
        def on_free(question: str, reference: str, answer: str, ds: Dataset | None, request: gr.Request):
            ev = session(ds)
            ev.check_answer(answer)
            if not question.strip():
                raise InputError("Write the question the answer is for.")
            if not reference.strip():
                match = ev.dataset.closest(question)
                item = match[0] if match else None
                return (
                    views.suggestion_markdown(item),
                    gr.Button(visible=item is not None),
                    item and item.id,
                    *[gr.skip()] * 3,
                )
            record = grade(ev, request, answer, question=question, reference=reference)
            judge_warm.set()
            md = views.grade_markdown(record)
            return md, gr.Button(visible=False), None, record, record.id, views.last_grade_markdown(record)

        @_friendly
        def on_use_suggestion(qid: str | None, ds: Dataset | None):
            item = session(ds).dataset.get(qid or "")
            return item.question, item.reference, gr.Button(visible=False), f"Using `{item.id}`: press **Grade**."

        @_friendly
        def on_search(query: str, category: str, difficulty: str, ds: Dataset | None):
            dataset = session(ds).dataset
            items = dataset.search(query, category=views.chosen(category), difficulty=views.chosen(difficulty))
            return views.dataset_rows(items), views.match_count(len(items), len(dataset))

        @_friendly
        def on_detail(qid: str, ds: Dataset | None):
            return detail(ds, qid)

        @_friendly
        def on_select(ds: Dataset | None, evt: gr.SelectData):
            qid = str(evt.row_value[0])
            return qid, detail(ds, qid)

        @_friendly
        def on_practice(qid: str, history: list, ds: Dataset | None):
            ev = session(ds)
            history, current = ask(history, ev.dataset.get(qid or ""))
            return history, current, gr.Tabs(selected="chat")

        def dataset_switched(ds: Dataset | None, message: str):
            d = session(ds).dataset
            history, current = greet(ds)
            cats, diffs = views.choices(d.categories), views.choices(d.difficulties)
            return (
                ds,
                views.dataset_summary(d, session=ds is not None),
                views.dataset_rows(d.items),
                views.match_count(len(d), len(d)),
                gr.Dropdown(choices=cats, value=views.ANY),
                gr.Dropdown(choices=diffs, value=views.ANY),
                gr.Dropdown(choices=cats, value=views.ANY),
                gr.Dropdown(choices=diffs, value=views.ANY),
                history,
                current,
                message,
            )

        @_friendly
        def on_upload(path: str | None, request: gr.Request):
            source = _uploaded(path, demo)
            if source is None:
                return (gr.skip(),) * 11
            limiter.check(_client(request))
            ds = load_dataset(source)
            return dataset_switched(ds, f"Loaded **{ds.name}**: {len(ds)} questions.")

        @_friendly
        def on_hub(repo_id: str, split: str, request: gr.Request):
            limiter.check(_client(request))
            ds = evaluator.load_hub_dataset(repo_id, split=split)
            return dataset_switched(ds, f"Loaded **{ds.name}** from the Hub: {len(ds)} questions.")

        @_friendly
        def on_reset():
            return dataset_switched(None, "Back to the app's dataset.")

        @_friendly
        def on_feedback(
            eval_id: str,
            agree: str | None,
            rating: int | None,
            comment: str,
            request: gr.Request,
        ):
            limiter.check(_client(request))
            record = evaluator.submit_feedback(
                eval_id, agree=views.agree_value(agree), rating=int(rating) if rating else None, comment=comment
            )
            return views.feedback_markdown(record), views.feedback_rows(evaluator.recent_feedback(20)), ""

        @_friendly
        def on_recent():
            return views.feedback_rows(evaluator.recent_feedback(20))

        @_friendly
        def on_dashboard():
            data = views.dashboard_data(evaluator.log.aggregate())
            days = views.days_frame(data)
            frames = [
                views.score_frame(data),
                views.category_frame(data),
                days,
                days,
                views.agreement_frame(data),
                views.sentiment_frame(data),
                views.verdict_frame(data),
                views.backend_frame(data),
            ]
            return views.dashboard_headline(data), *[gr.update(value=f, visible=len(f) > 0) for f in frames]

        @_friendly
        def on_batch(
            mode: str,
            path: str | None,
            candidate_name: str,
            limit: float | None,
            concurrency: float,
            ds: Dataset | None,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio injects a progress bar)
        ):
            ev = session(ds)
            candidate_name = _text(candidate_name, "candidate model").strip()
            workers = _whole(concurrency, "Concurrency", 1, 32)
            if mode == MODE_CANDIDATE:
                if not candidate_name:
                    raise InputError("Name the candidate model that should answer the questions (or local:smollm2).")
                items, errors = dataset_items(ev.dataset, _whole(limit or 1, "Dataset questions", 1, 10**6)), []
            else:
                source = _uploaded(path, demo)
                if source is None:
                    raise InputError("Upload a JSONL or CSV file of answers first.")
                parsed = parse_batch(source, evaluator=ev, candidate=bool(candidate_name))
                if not parsed.items:
                    raise InputError("The file has no valid rows: " + "; ".join(parsed.errors[:5]))
                items, errors = parsed.items, parsed.errors
            limits.check_rows(len(items))
            if candidate_name:
                limits.check_model(candidate_name)
            client = _client(request)
            limiter.check(client)
            per_item = runs + (1 if candidate_name else 0)  # model calls per item: the judge's, the candidate's
            slots.claim(client)
            try:
                spent = limits.reserve(client, per_item * len(items))
                candidate = build_candidate(settings, candidate_name) if candidate_name else None
            except BaseException:
                slots.release(client)
                raise

            def ended(finished: int) -> None:  # in the batch's thread, once it has really stopped
                try:
                    spent.use(finished * per_item)
                    spent.settle()  # refund the calls of items not graded in this run (stopped, resumed)
                    if candidate is not None:
                        candidate.close()
                finally:
                    slots.release(client)

            job_id = batch_job_id(items, candidate=candidate_name, dataset=ev.dataset.name)
            progress((0, len(items)), desc="Starting…", unit="items")
            run = RunInfo(source="app", input=Path(path).name if path and mode != MODE_CANDIDATE else None)
            stream = stream_batch(
                ev, items, on_end=ended, candidate=candidate, concurrency=workers, job_id=job_id, run=run
            )
            for done, total, rows, summary in stream:
                progress((done, total), desc="Grading", unit="items")
                if summary is None:
                    yield views.batch_progress(done, total, rows), views.batch_rows(rows), None, None
            csv_path = write_results(summary.rows, Path(results_dir.name) / f"{summary.job_id}.csv")
            jsonl_path = write_results(summary.rows, Path(results_dir.name) / f"{summary.job_id}.jsonl")
            yield (
                views.batch_summary_markdown(summary.text(), errors),
                views.batch_rows(summary.rows),
                str(csv_path),
                str(jsonl_path),
            )

        # ============================== wiring ==============================
        # Progress and errors are shown on one status component per area (show_progress_on): by default
        # Gradio covers every output with them, which would hide the conversation and the user's input.
        # Slow actions (the first grading or feedback loads a model; the Hub) first write what is happening into
        # their status line, instantly (quiet), then run; a failure is a toast, and clears the line.
        private: dict[str, Any] = {"api_visibility": "private"}
        quiet: dict[str, Any] = {**private, "queue": False, "show_progress": "hidden"}
        chat_ui = {**private, "show_progress_on": [chat_status]}

        def grading_notice() -> str:
            return views.grading_status(settings, first=not judge_warm.is_set())

        def feedback_notice() -> str:
            return views.sentiment_status(loaded=evaluator.sentiment.loaded_backend is not None)

        def hub_notice(repo_id: str) -> str:
            return f"Loading `{repo_id.strip()}` from the Hugging Face Hub…"

        demo.load(start, [session_ds], [chatbot, current_q], **chat_ui)
        demo.load(on_recent, None, [fb_table], **private)

        next_inputs = [chat_cat, chat_diff, chat_qid, chatbot, current_q, session_ds]
        for trigger in (next_btn.click, chat_qid.submit):
            trigger(on_next, next_inputs, [chatbot, current_q, chat_qid], **chat_ui)

        answer_outputs = [chatbot, answer_box, current_q, last_eval, fb_eval_id, fb_last, chat_status]
        answer_inputs = [answer_box, chatbot, current_q, chat_cat, chat_diff, session_ds]
        for trigger in (send_btn.click, answer_box.submit):
            trigger(grading_notice, None, chat_status, **quiet).then(
                on_answer, answer_inputs, answer_outputs, **chat_ui
            ).failure(lambda: views.CHAT_HINT, None, chat_status, **quiet)

        free_outputs = [free_out, use_btn, suggested, last_eval, fb_eval_id, fb_last]
        free_btn.click(grading_notice, None, free_out, **quiet).then(
            on_free, [free_q, free_ref, free_ans, session_ds], free_outputs, **private, show_progress_on=[free_out]
        ).failure(lambda: "", None, free_out, **quiet)
        use_btn.click(on_use_suggestion, [suggested, session_ds], [free_q, free_ref, use_btn, free_out], **quiet)

        search_inputs = [search_box, ds_cat, ds_diff, session_ds]
        for trigger in (search_box.submit, ds_cat.change, ds_diff.change):
            trigger(on_search, search_inputs, [ds_table, ds_count], **private, show_progress_on=[ds_count])
        detail_ui = {**private, "show_progress_on": [detail_md]}
        ds_table.select(on_select, [session_ds], [detail_qid, detail_md], **detail_ui)
        for trigger in (detail_btn.click, detail_qid.submit):
            trigger(on_detail, [detail_qid, session_ds], [detail_md], **detail_ui)
        practice_btn.click(on_practice, [detail_qid, chatbot, session_ds], [chatbot, current_q, tabs], **detail_ui)

        switched = [session_ds, ds_summary, ds_table, ds_count, ds_cat, ds_diff, chat_cat, chat_diff]
        switched += [chatbot, current_q, load_msg]
        # Public: a gradio_client session can load its own dataset for /run_batch (the JSON endpoints use the app's).
        load_ui = {"show_progress_on": [load_msg]}
        upload.upload(on_upload, [upload], switched, api_name="load_dataset", **load_ui)
        hub_btn.click(hub_notice, [hub_id], load_msg, **quiet).then(
            on_hub, [hub_id, hub_split], switched, api_name="load_hub_dataset", **load_ui
        ).failure(lambda: "", None, load_msg, **quiet)
        reset_btn.click(on_reset, None, switched, **private, **load_ui)

        fb_inputs = [fb_eval_id, fb_agree, fb_rating, fb_comment]
        fb_btn.click(feedback_notice, None, fb_out, **quiet).then(
            on_feedback, fb_inputs, [fb_out, fb_table, fb_comment], **private, show_progress_on=[fb_out]
        ).failure(lambda: "", None, fb_out, **quiet)
        fb_refresh.click(on_recent, None, [fb_table], **private)

        batch_btn.click(
            on_batch,
            [batch_mode, batch_file, cand_name, batch_limit, batch_conc, session_ds],
            [batch_status, batch_table, csv_dl, jsonl_dl],
            api_name="run_batch",
            concurrency_limit=1,
        )

        dash_outputs = [dash_head, dash_scores, dash_cats, dash_days, dash_counts, dash_agree, dash_sentiment]
        dash_outputs += [dash_verdicts, dash_judges]
        for trigger in (dash_tab.select, dash_refresh.click):
            trigger(on_dashboard, None, dash_outputs, **private, show_progress_on=[dash_head])

        # ============================== JSON API (gradio_client) ==============================
        @_friendly
        def next_question(category: str = "", difficulty: str = "", question_id: str = "") -> dict[str, str]:
            """A dataset question to answer: by id, else random within category and difficulty (empty means any).

            Its reference answer is not included: ``/evaluate`` returns it with the grade.
            """
            category, difficulty = _text(category, "category"), _text(difficulty, "difficulty")
            question_id = _text(question_id, "question_id")
            if question_id.strip():
                item = evaluator.dataset.get(question_id)
            else:
                item = next_item(evaluator, category, difficulty)
            return {key: value for key, value in item.to_dict().items() if key != "reference"}

        @_friendly
        def evaluate(question_id: str, answer: str, request: gr.Request | None = None) -> dict[str, Any]:
            """Grade an answer to a dataset question; returns the logged evaluation record."""
            question_id, answer = _text(question_id, "question_id"), _text(answer, "answer")
            evaluator.check_answer(answer)
            evaluator.dataset.get(question_id or "")
            return grade(evaluator, request, answer, question_id=question_id, source="api").to_dict()

        @_friendly
        def evaluate_free(
            question: str, answer: str, reference: str = "", request: gr.Request | None = None
        ) -> dict[str, Any]:
            """Grade an answer to a question against your reference (none: the closest dataset question is named)."""
            question, reference = _text(question, "question"), _text(reference, "reference")
            answer = _text(answer, "answer")
            evaluator.check_answer(answer)
            evaluator.resolve(question=question, reference=reference)
            return grade(evaluator, request, answer, question=question, reference=reference, source="api").to_dict()

        @_friendly
        def search_dataset(query: str = "", category: str = "", difficulty: str = "") -> list[dict[str, str]]:
            """Dataset questions matching every word of ``query``, within category and difficulty (empty means any)."""
            query = _text(query, "query")
            category, difficulty = _text(category, "category"), _text(difficulty, "difficulty")
            items = evaluator.dataset.search(
                query, category=views.chosen(category), difficulty=views.chosen(difficulty)
            )
            return [item.to_dict() for item in items]

        @_friendly
        def question_detail(question_id: str) -> dict[str, Any]:
            """One dataset question in full with its evaluation history (count, mean score, last grades)."""
            item = evaluator.dataset.get(_text(question_id, "question_id"))
            return {**item.to_dict(), "history": evaluator.log.question_history(item.id)}

        @_friendly
        def submit_feedback(
            evaluation_id: str,
            comment: str,
            agree: bool | None = None,
            rating: int | None = None,
            request: gr.Request | None = None,
        ) -> dict[str, Any]:
            """Agree/disagree with a logged grade, rate it 1-5 and comment; returns the record with its sentiment."""
            evaluation_id, comment = _text(evaluation_id, "evaluation_id"), _text(comment, "comment")
            evaluator.check_comment(comment)
            limiter.check(_client(request))
            return evaluator.submit_feedback(evaluation_id, agree=agree, rating=rating, comment=comment).to_dict()

        @_friendly
        def recent_feedback(limit: int = 20) -> list[dict[str, Any]]:
            """The latest feedback, newest first, with its sentiment and the grade it is about."""
            limit = _whole(20 if limit is None else limit, "limit", -(10**9), 10**9)
            return evaluator.recent_feedback(max(1, min(limit, 200)))

        @_friendly
        def dashboard() -> dict[str, Any]:
            """The log's aggregate (scores, days, categories, agreement, sentiment, tokens, cost) and its rates."""
            return views.dashboard_data(evaluator.log.aggregate())

        @_friendly
        def health() -> dict[str, Any]:
            """Judge, sentiment, log and dataset status and the owner's limits: what ``/healthz`` shows."""
            return public_health(evaluator.health(), limits.status())

        for fn in (
            next_question,
            evaluate,
            evaluate_free,
            search_dataset,
            question_detail,
            submit_feedback,
            recent_feedback,
            dashboard,
            health,
        ):
            gr.api(fn, api_name=fn.__name__)
        register_runs_api(runs_api, friendly=_friendly)
    demo.queue(default_concurrency_limit=4)
    return demo


def create_app(evaluator: Evaluator) -> Any:
    """A FastAPI app serving the UI at ``/`` (behind APP_USERNAME/APP_PASSWORD when set) and ``/healthz``.

    Every request passes the guards of :mod:`evaluator.server`: client address from trusted proxies only,
    a request body cap, and login throttling.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    settings = evaluator.settings
    limits = CostLimits.from_settings(settings)
    app = FastAPI(title="LLM Evaluator Chatbot", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness, status and the owner's limits for load balancers; open without login, never shows secrets."""
        try:
            return JSONResponse(public_health(evaluator.health(), limits.status()))
        except EvaluatorError:
            logger.exception("/healthz failed")
            return JSONResponse({"status": "error"}, status_code=503)

    # The last added is the outermost: the client's address is known before anything counts it.
    app.add_middleware(LoginThrottle, per_minute=settings.login_attempts_per_minute)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, upload_bytes=MAX_UPLOAD_BYTES + 65536)
    app.add_middleware(ClientAddress, hops=settings.trusted_proxy_hops)
    auth = (settings.app_username, settings.app_password) if settings.app_username and settings.app_password else None
    return gr.mount_gradio_app(
        app,
        build_demo(evaluator, limits),
        path="/",
        auth=auth,
        auth_message="Log in to the LLM Evaluator." if auth else None,
        max_file_size=MAX_UPLOAD_BYTES,
        footer_links=["api", "gradio"],
        ssr_mode=False,  # server-side rendering needs Node; the client-rendered UI needs nothing extra
    )


def server_config(app: Any, *, host: str, port: int, **options: Any) -> Any:
    """The ``uvicorn.Config`` the app is served with (``options`` override, e.g. ``log_level``)."""
    import uvicorn

    values: dict[str, Any] = {
        "proxy_headers": False,  # evaluator.server.ClientAddress trusts only the owner's proxy hops
        "timeout_graceful_shutdown": 5,  # open event streams would otherwise hold a restart forever
        "log_level": "info",
    }
    values.update(options)
    return uvicorn.Config(app, host=host, port=port, **values)


def main() -> int:
    """Load settings, build the evaluator and serve the app on 0.0.0.0:$PORT; exit code 2 on bad configuration.

    SIGTERM and SIGINT stop the server gracefully, then the log is flushed and pushed (``SHUTDOWN_TIMEOUT_SECONDS``).
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        evaluator = Evaluator(load_settings())
        evaluator.dataset  # a bad DATA_PATH is a startup error, not a broken page  # noqa: B018
        evaluator.log.ensure_writable()  # nor is a LOG_PATH that cannot be written
        app = create_app(evaluator)
    except EvaluatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    raw_port = os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or "7860"
    if not raw_port.strip().isdigit() or not 0 < int(raw_port) < 65536:
        print(f"error: PORT must be a port number (1-65535), got {raw_port!r}", file=sys.stderr)
        return 2
    host = os.environ.get("GRADIO_SERVER_NAME") or "0.0.0.0"
    try:
        with signals_interrupt():
            uvicorn.Server(server_config(app, host=host, port=int(raw_port))).run()
    except KeyboardInterrupt as stop:
        logger.info("Stopping (%s): writing and pushing the evaluation log", stop or "SIGINT")
    finally:
        close_within(evaluator.close, evaluator.settings.shutdown_timeout_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

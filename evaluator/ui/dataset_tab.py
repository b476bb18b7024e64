"""The Dataset tab: browse and search the questions, one in detail with its history, load another dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import views
from ..dataset import Dataset
from .chat_tab import SCROLL_END, ChatTab, ask, greeting
from .common import PRIVATE, QUIET, AppContext, SessionState, client_key, friendly, uploaded


@dataclass
class _Browser:
    """The components that show the session's dataset (a newly loaded one refreshes them all)."""

    summary: gr.Markdown
    category: gr.Dropdown
    difficulty: gr.Dropdown
    count: gr.Markdown
    table: gr.Dataframe


def build(demo: gr.Blocks, ctx: AppContext, state: SessionState, chat: ChatTab, tabs: gr.Tabs) -> None:
    """Build the tab inside ``tabs`` and wire its events; a loaded dataset also resets ``chat``."""
    dataset = ctx.evaluator.dataset
    with gr.Tab("Dataset", id="dataset"):
        summary = gr.Markdown(views.dataset_summary(dataset, session=False))
        with gr.Row():
            search = gr.Textbox(label="Search", placeholder="words in the id, question or reference", scale=3)
            category = gr.Dropdown(views.choices(dataset.categories), value=views.ANY, label="Category")
            difficulty = gr.Dropdown(views.choices(dataset.difficulties), value=views.ANY, label="Difficulty")
        count = gr.Markdown(views.match_count(len(dataset), len(dataset)), elem_id="dataset-count")
        table = gr.Dataframe(
            headers=views.DATASET_HEADERS,
            value=views.dataset_rows(dataset.items),
            interactive=False,
            wrap=True,
            max_height=420,
            elem_id="dataset-table",
            elem_classes=["wide-table"],
        )
        with gr.Row():
            qid = gr.Textbox(label="Question id", placeholder="select a row, or type an id", scale=3)
            show = gr.Button("Show")
            practice = gr.Button("Practise it in the chat")
        detail = gr.Markdown(min_height=40)
        browser = _Browser(summary, category, difficulty, count, table)
        _build_loader(demo, ctx, state, chat, browser)

    def describe(ds: Dataset | None, wanted: str) -> str:
        ev = ctx.session(ds)
        item = ev.dataset.get(wanted or "")
        return views.item_markdown(item, ev.question_history(item.id))

    @friendly
    def on_search(query: str, cat: str, diff: str, ds: Dataset | None) -> dict[Any, Any]:
        d = ctx.session(ds).dataset
        items = d.search(query, category=views.chosen(cat), difficulty=views.chosen(diff))
        return {table: views.dataset_rows(items), count: views.match_count(len(items), len(d))}

    @friendly
    def on_select(ds: Dataset | None, evt: gr.SelectData) -> dict[Any, Any]:
        wanted = str(evt.row_value[0])
        return {qid: wanted, detail: describe(ds, wanted)}

    @friendly
    def on_practice(wanted: str, history: list, ds: Dataset | None) -> dict[Any, Any]:
        history, current = ask(history, ctx.session(ds).dataset.get(wanted or ""))
        return {chat.chatbot: history, state.question: current, tabs: gr.Tabs(selected="chat")}

    gr.on(
        [search.submit, category.change, difficulty.change],
        on_search,
        [search, category, difficulty, state.dataset],
        [table, count],
        **PRIVATE,
        show_progress_on=[count],
    )
    detail_ui = {**PRIVATE, "show_progress_on": [detail]}
    table.select(on_select, [state.dataset], [qid, detail], **detail_ui)
    gr.on([show.click, qid.submit], friendly(describe), [state.dataset, qid], [detail], **detail_ui)
    practice.click(
        on_practice, [qid, chat.chatbot, state.dataset], [chat.chatbot, state.question, tabs], **detail_ui
    ).then(None, js=SCROLL_END, **QUIET)


def _build_loader(demo: gr.Blocks, ctx: AppContext, state: SessionState, chat: ChatTab, browser: _Browser) -> None:
    """Load another dataset for this session (a file or a Hub id), or go back to the app's."""
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
        reset = gr.Button("Back to the app's dataset")
        message = gr.Markdown(min_height=40)

    def switched(ds: Dataset | None, text: str) -> dict[Any, Any]:
        """Every component that shows the session's dataset, over ``ds`` (None: the app's)."""
        d = ctx.session(ds).dataset
        history, current = greeting(ctx, ds)
        cats, diffs = views.choices(d.categories), views.choices(d.difficulties)
        return {
            state.dataset: ds,
            browser.summary: views.dataset_summary(d, session=ds is not None),
            browser.table: views.dataset_rows(d.items),
            browser.count: views.match_count(len(d), len(d)),
            browser.category: gr.Dropdown(choices=cats, value=views.ANY),
            browser.difficulty: gr.Dropdown(choices=diffs, value=views.ANY),
            chat.category: gr.Dropdown(choices=cats, value=views.ANY),
            chat.difficulty: gr.Dropdown(choices=diffs, value=views.ANY),
            chat.chatbot: history,
            state.question: current,
            message: text,
        }

    @friendly
    def on_upload(path: str | None, request: gr.Request) -> dict[Any, Any]:
        source = uploaded(path, demo)
        if source is None:
            return {}
        ctx.limiter.check(client_key(request))
        ds = ctx.evaluator.load_dataset(source)
        return switched(ds, f"Loaded **{ds.name}**: {len(ds)} questions.")

    @friendly
    def on_hub(repo_id: str, split: str, request: gr.Request) -> dict[Any, Any]:
        ctx.limiter.check(client_key(request))
        ds = ctx.evaluator.load_hub_dataset(repo_id, split=split, visitor=True)
        return switched(ds, f"Loaded **{ds.name}** from the Hub: {len(ds)} questions.")

    outputs = [state.dataset, browser.summary, browser.table, browser.count, browser.category, browser.difficulty]
    outputs += [chat.category, chat.difficulty, chat.chatbot, state.question, message]
    # Public: a gradio_client session can load its own dataset for /run_batch (the JSON endpoints use the app's).
    load_ui = {"show_progress_on": [message]}
    upload.upload(on_upload, [upload], outputs, api_name="load_dataset", **load_ui)
    hub_btn.click(lambda r: f"Loading `{r.strip()}` from the Hugging Face Hub…", [hub_id], message, **QUIET).then(
        on_hub, [hub_id, hub_split], outputs, api_name="load_hub_dataset", **load_ui
    ).failure(lambda: "", None, message, **QUIET)
    reset.click(friendly(lambda: switched(None, "Back to the app's dataset.")), None, outputs, **PRIVATE, **load_ui)

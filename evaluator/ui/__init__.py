"""The Gradio front end: :func:`build_demo` lays out the page, one module per tab; ``serve`` serves it."""

from __future__ import annotations

import gradio as gr

from .. import views
from ..limits import CostLimits
from ..service import Evaluator
from . import api, batch_tab, chat_tab, dashboard_tab, dataset_tab, feedback_tab, runs_tab
from .common import AppContext, SessionState

QUEUE_CONCURRENCY = 4  # events of one kind served at once (Gradio's queue)


def build_demo(evaluator: Evaluator, limits: CostLimits | None = None) -> gr.Blocks:
    """The app's Blocks: chat, dataset, feedback, batch, dashboard and runs tabs, and a named API endpoint per action.

    ``limits`` (default: from the settings) counts the model calls each client makes.
    """
    ctx = AppContext(evaluator, limits or CostLimits.from_settings(evaluator.settings))
    with gr.Blocks(title="LLM Evaluator Chatbot", delete_cache=(3600, 3600)) as demo:
        state = SessionState.create()
        gr.Markdown("# LLM Evaluator Chatbot")
        gr.Markdown(views.judge_label(evaluator.settings), elem_id="judge-label")
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # every tab visible on a phone, no "…" menu
            chat = chat_tab.build(demo, ctx, state)
            dataset_tab.build(demo, ctx, state, chat, tabs)
            feedback_tab.build(demo, ctx, state)
            batch_tab.build(demo, ctx, state)
            dashboard_tab.build(ctx)
            runs = runs_tab.RunsAPI(evaluator)
            runs_tab.build(runs)
        api.register(api.AppAPI(ctx))
        runs_tab.register_api(runs)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    return demo

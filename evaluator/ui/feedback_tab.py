"""The Feedback tab: agree or disagree with the last grade, rate it, comment; the recent feedback of everyone."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import views
from .common import PRIVATE, QUIET, AppContext, SessionState, client_key, friendly

RECENT = 20  # rows of the recent-feedback table


def build(demo: gr.Blocks, ctx: AppContext, state: SessionState) -> None:
    """Build the tab inside the current ``gr.Tabs`` and wire its events (it follows the session's last grade)."""
    ev = ctx.evaluator
    with gr.Tab("Feedback", id="feedback"):
        last = gr.Markdown(views.last_grade_markdown(None))
        eval_id = gr.Textbox(label="Evaluation id", placeholder="filled in with your last grade")
        with gr.Row():
            agree = gr.Radio(views.AGREE_CHOICES, value="No opinion", label="Do you agree with the grade?")
            rating = gr.Radio([1, 2, 3, 4, 5], label="Rate the grade (optional)", elem_id="feedback-rating")
            clear = gr.Button("Clear rating", size="sm", scale=0, min_width=110, elem_id="clear-rating")
        comment = gr.Textbox(label="Comment", lines=3, elem_id="feedback-comment")
        send = gr.Button("Send feedback", variant="primary", elem_id="send-feedback")
        out = gr.Markdown(min_height=40, elem_id="feedback-result")
        with gr.Row():
            gr.Markdown("### Recent feedback")
            refresh = gr.Button("Refresh", size="sm")
        table = gr.Dataframe(
            headers=views.FEEDBACK_HEADERS,
            interactive=False,
            wrap=True,
            column_widths=["13%", "10%", "10%", "7%", "6%", "11%", "23%", "20%"],
            max_height=360,
            elem_id="feedback-table",
            elem_classes=["wide-table"],
        )

    def on_graded(graded: tuple[str, str] | None) -> dict[Any, Any]:
        if graded is None:
            return {}
        return {eval_id: graded[0], last: graded[1]}

    @friendly
    def on_send(wanted: str, opinion: str | None, stars: int | None, text: str, request: gr.Request):
        ctx.limiter.check(client_key(request))
        record = ev.submit_feedback(
            wanted, agree=views.agree_value(opinion), rating=int(stars) if stars else None, comment=text
        )
        # A sent rating and opinion are not carried over to the next feedback.
        return {
            out: views.feedback_markdown(record),
            table: views.feedback_rows(ev.recent_feedback_records(RECENT)),
            comment: "",
            rating: None,
            agree: "No opinion",
        }

    recent = friendly(lambda: views.feedback_rows(ev.recent_feedback_records(RECENT)))
    state.last_grade.change(on_graded, [state.last_grade], [eval_id, last], **QUIET)
    demo.load(recent, None, [table], **PRIVATE)
    notice = lambda: views.sentiment_status(loaded=ev.sentiment.loaded_backend is not None)  # noqa: E731
    send.click(notice, None, out, **QUIET).then(
        on_send,
        [eval_id, agree, rating, comment],
        [out, table, comment, rating, agree],
        **PRIVATE,
        show_progress_on=[out],
    ).failure(lambda: "", None, out, **QUIET)
    clear.click(lambda: None, None, rating, **QUIET)
    refresh.click(recent, None, [table], **PRIVATE)

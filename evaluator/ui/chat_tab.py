"""The Chat evaluation tab: a question, the learner's answer, its grade, the next question; and the free form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import views
from ..dataset import Dataset, QAItem
from ..errors import InputError
from .common import PRIVATE, QUIET, AppContext, SessionState, client_key, friendly, last_grade, next_item

# The chat scrolls itself (Gradio's autoscroll would keep following the bottom, past a long grade's headline):
# to the end for a new question or a pending answer, and after a grade to that grade's headline ("x/10 — verdict").
# The headline lands 36 px below the top, clear of the chat's label.
_SCROLL = """() => setTimeout(() => {
  const box = document.querySelector('#chatbot .bubble-wrap');
  const bots = document.querySelectorAll('#chatbot .bot-row');
  const target = %s;
  if (!box) return;
  box.scrollTop = target ? box.scrollTop + target.getBoundingClientRect().top - box.getBoundingClientRect().top - 36
                         : box.scrollHeight;
}, 150)"""
SCROLL_END = _SCROLL % "null"
SHOW_GRADE = _SCROLL % "bots.length > 1 ? bots[bots.length - 2] : null"


@dataclass
class ChatTab:
    """The chat components other tabs update (a new dataset resets them; "Practise it" asks a question)."""

    chatbot: gr.Chatbot
    category: gr.Dropdown
    difficulty: gr.Dropdown


def ask(history: list, item: QAItem) -> tuple[list, str]:
    """``history`` with ``item`` asked, and the id of the question now waiting for an answer."""
    return [*history, {"role": "assistant", "content": views.question_message(item)}], item.id


def pending(message: str, notice: str) -> list[dict[str, Any]]:
    """The learner's answer and a bubble with a spinner saying it is being graded (replaced by the grade)."""
    return [
        {"role": "user", "content": message},
        {"role": "assistant", "content": "", "metadata": {"title": notice, "status": "pending"}},
    ]


def without_pending(history: list) -> list:
    """``history`` without a trailing answer still waiting for its grade (see :func:`pending`)."""
    last = history[-1] if history else {}
    if isinstance(last, dict) and (last.get("metadata") or {}).get("status") == "pending":
        return history[:-2]
    return history


def greeting(ctx: AppContext, ds: Dataset | None) -> tuple[list, str]:
    """A new conversation over the session's dataset: a hello naming it, then a first question."""
    dataset = ctx.session(ds).dataset
    hello = {"role": "assistant", "content": "Hello! " + views.dataset_summary(dataset, session=ds is not None)}
    return ask([hello], dataset.random())


def build(demo: gr.Blocks, ctx: AppContext, state: SessionState) -> ChatTab:
    """Build the tab inside the current ``gr.Tabs`` and wire its events."""
    dataset = ctx.evaluator.dataset
    with gr.Tab("Chat evaluation", id="chat"):
        with gr.Row():
            category = gr.Dropdown(views.choices(dataset.categories), value=views.ANY, label="Category")
            difficulty = gr.Dropdown(views.choices(dataset.difficulties), value=views.ANY, label="Difficulty")
            qid = gr.Textbox(label="Question id (optional)", placeholder="e.g. stat-001")
            next_btn = gr.Button("Next question")
        # Progress and errors show here, so a failed action never hides the conversation.
        status = gr.Markdown(views.CHAT_HINT, elem_id="chat-status")
        chatbot = gr.Chatbot(
            label="Evaluator",
            height=560,
            autoscroll=False,  # see SHOW_GRADE
            feedback_options=None,
            group_consecutive_messages=False,
            elem_id="chatbot",
        )
        answer, send = _answer_row(ctx.settings.max_answer_chars)
        _build_free_form(ctx, state)

    @friendly
    def on_start(ds: Dataset | None) -> dict[Any, Any]:
        history, current = greeting(ctx, ds)
        return {chatbot: history, state.question: current}

    @friendly
    def on_next(cat: str, diff: str, wanted: str, history: list, current: str | None, ds: Dataset | None):
        ev = ctx.session(ds)
        item = ev.dataset.get(wanted) if wanted.strip() else next_item(ev, cat, diff, current)
        history, current = ask(history, item)
        return {chatbot: history, state.question: current, qid: ""}

    def on_pending(message: str, history: list, current: str | None) -> dict[Any, Any]:
        """The answer in the chat at once, with a "grading" bubble, while the judge works."""
        if not message.strip() or not current:
            return {status: ctx.grading_notice()}
        return {chatbot: [*history, *pending(message, ctx.grading_notice())], status: ctx.grading_notice()}

    @friendly
    def on_answer(message: str, history: list, current: str | None, cat: str, diff: str, ds, request: gr.Request):
        ev = ctx.session(ds)
        ev.check_answer(message)
        if not current:
            raise InputError("There is no question to answer yet: press “Next question”.")
        record = ctx.grade(ev, client_key(request), message, question_id=current)
        history = [
            *without_pending(history),
            {"role": "user", "content": message},
            {"role": "assistant", "content": views.grade_markdown(record)},
        ]
        history, current = ask(history, next_item(ev, cat, diff, current))
        return {
            chatbot: history,
            answer: "",
            state.question: current,
            state.last_grade: last_grade(record),
            status: views.CHAT_HINT,
        }

    ui = {**PRIVATE, "show_progress_on": [status]}
    demo.load(on_start, [state.dataset], [chatbot, state.question], **ui)
    gr.on(
        [next_btn.click, qid.submit],
        on_next,
        [category, difficulty, qid, chatbot, state.question, state.dataset],
        [chatbot, state.question, qid],
        **ui,
    )

    def failed(history: list) -> dict[Any, Any]:  # the answer stays in its box; the toast says why
        return {chatbot: without_pending(history), status: views.CHAT_HINT}

    gr.on([send.click, answer.submit], on_pending, [answer, chatbot, state.question], [chatbot, status], **QUIET).then(
        on_answer,
        [answer, chatbot, state.question, category, difficulty, state.dataset],
        [chatbot, answer, state.question, state.last_grade, status],
        **ui,
    ).success(None, js=SHOW_GRADE, **QUIET).failure(failed, [chatbot], [chatbot, status], **QUIET)
    return ChatTab(chatbot=chatbot, category=category, difficulty=difficulty)


def _answer_row(limit: int) -> tuple[gr.Textbox, gr.Button]:
    """The answer box (with a live character count against ``limit``) and its send button."""
    with gr.Row(equal_height=True):
        answer = gr.Textbox(
            placeholder="Your answer… (Enter sends, Shift+Enter for a new line)",
            lines=1,
            max_lines=10,
            max_length=limit,
            show_label=False,
            scale=5,
            elem_id="answer-box",
        )
        send = gr.Button("Submit answer", variant="primary", scale=1, elem_id="send-answer")
    count = gr.Markdown(f"0 / {limit:,} characters", elem_id="answer-count")
    # Counted in the browser as the learner types: no server round trip per key.
    answer.change(
        None, [answer], [count], js=f"(text) => `${{(text || '').length.toLocaleString('en')}} / {limit:,} characters`"
    )
    return answer, send


def _build_free_form(ctx: AppContext, state: SessionState) -> None:
    """The free form: grade an answer to the user's own question, or propose the closest dataset question."""
    suggested = gr.State(None)  # id of the dataset question the free form proposes
    with gr.Accordion("Free form: grade an answer to your own question", open=False):
        question = gr.Textbox(label="Question")
        reference = gr.Textbox(
            label="Reference answer (optional: without one, the closest dataset question is proposed)"
        )
        answer = gr.Textbox(label="Answer", lines=3)
        with gr.Row():
            grade_btn = gr.Button("Grade", variant="primary")
            use_btn = gr.Button("Use this question", visible=False)
        out = gr.Markdown(min_height=40)

    @friendly
    def on_free(q: str, ref: str, text: str, ds: Dataset | None, request: gr.Request) -> dict[Any, Any]:
        ev = ctx.session(ds)
        ev.check_answer(text)
        if not q.strip():
            raise InputError("Write the question the answer is for.")
        if not ref.strip():
            match = ev.dataset.closest(q)
            item = match[0] if match else None
            return {
                out: views.suggestion_markdown(item),
                use_btn: gr.Button(visible=item is not None),
                suggested: item and item.id,
            }
        record = ctx.grade(ev, client_key(request), text, question=q, reference=ref)
        return {
            out: views.grade_markdown(record),
            use_btn: gr.Button(visible=False),
            suggested: None,
            state.last_grade: last_grade(record),
        }

    @friendly
    def on_use(qid: str | None, ds: Dataset | None) -> dict[Any, Any]:
        item = ctx.session(ds).dataset.get(qid or "")
        return {
            question: item.question,
            reference: item.reference,
            use_btn: gr.Button(visible=False),
            out: f"Using `{item.id}`: press **Grade**.",
        }

    grade_btn.click(ctx.grading_notice, None, out, **QUIET).then(
        on_free,
        [question, reference, answer, state.dataset],
        [out, use_btn, suggested, state.last_grade],
        **PRIVATE,
        show_progress_on=[out],
    ).failure(lambda: "", None, out, **QUIET)
    use_btn.click(on_use, [suggested, state.dataset], [question, reference, use_btn, out], **QUIET)

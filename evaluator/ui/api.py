"""The app's JSON endpoints for ``gradio_client``, as the plain methods of :class:`AppAPI`.

Each method is an endpoint named after it (``/evaluate``, ``/next_question``…): JSON in, JSON out, errors as
:class:`evaluator.errors.EvaluatorError` with a sentence for the caller. They can be called and tested without
Gradio; :func:`register` publishes them in the app's Blocks. A ``request`` (Gradio injects it) names the
client whose rate limit and budget a call counts against.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import views
from ..server import public_health
from ..textsafety import api_text as _text
from .common import AppContext, client_key, friendly, next_item, whole

MAX_RECENT = 200


class AppAPI:
    """The endpoints over the app's evaluator (its dataset, not a session's), within the app's limits."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.evaluator = ctx.evaluator

    def next_question(self, category: str = "", difficulty: str = "", question_id: str = "") -> dict[str, str]:
        """A dataset question to answer: by id, else random within category and difficulty (empty means any).

        Its reference answer is not included: ``/evaluate`` returns it with the grade.
        """
        category, difficulty = _text(category, "category"), _text(difficulty, "difficulty")
        question_id = _text(question_id, "question_id")
        if question_id.strip():
            item = self.evaluator.dataset.get(question_id)
        else:
            item = next_item(self.evaluator, category, difficulty)
        return {key: value for key, value in item.to_dict().items() if key != "reference"}

    def evaluate(self, question_id: str, answer: str, request: gr.Request | None = None) -> dict[str, Any]:
        """Grade an answer to a dataset question; returns the logged evaluation record."""
        question_id, answer = _text(question_id, "question_id"), _text(answer, "answer")
        self.evaluator.check_answer(answer)
        self.evaluator.dataset.get(question_id or "")
        record = self.ctx.grade(self.evaluator, client_key(request), answer, question_id=question_id, source="api")
        return record.to_dict()

    def evaluate_free(
        self, question: str, answer: str, reference: str = "", request: gr.Request | None = None
    ) -> dict[str, Any]:
        """Grade an answer to a question against your reference (none: the closest dataset question is named)."""
        question, reference = _text(question, "question"), _text(reference, "reference")
        answer = _text(answer, "answer")
        self.evaluator.check_answer(answer)
        self.evaluator.resolve(question=question, reference=reference)
        record = self.ctx.grade(
            self.evaluator, client_key(request), answer, question=question, reference=reference, source="api"
        )
        return record.to_dict()

    def search_dataset(self, query: str = "", category: str = "", difficulty: str = "") -> list[dict[str, str]]:
        """Dataset questions matching every word of ``query``, within category and difficulty (empty means any)."""
        query = _text(query, "query")
        category, difficulty = _text(category, "category"), _text(difficulty, "difficulty")
        items = self.evaluator.dataset.search(
            query, category=views.chosen(category), difficulty=views.chosen(difficulty)
        )
        return [item.to_dict() for item in items]

    def question_detail(self, question_id: str) -> dict[str, Any]:
        """One dataset question in full with its evaluation history (count, mean score, last grades)."""
        item = self.evaluator.dataset.get(_text(question_id, "question_id"))
        return {**item.to_dict(), "history": self.evaluator.question_history(item.id)}

    def submit_feedback(
        self,
        evaluation_id: str,
        comment: str,
        agree: bool | None = None,
        rating: int | None = None,
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Agree/disagree with a logged grade, rate it 1-5 and comment; returns the record with its sentiment."""
        evaluation_id, comment = _text(evaluation_id, "evaluation_id"), _text(comment, "comment")
        self.evaluator.check_comment(comment)
        self.ctx.limiter.check(client_key(request))
        return self.evaluator.submit_feedback(evaluation_id, agree=agree, rating=rating, comment=comment).to_dict()

    def recent_feedback(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest feedback, newest first, with its sentiment and the grade it is about."""
        limit = whole(20 if limit is None else limit, "limit", -(10**9), 10**9)
        return self.evaluator.recent_feedback(max(1, min(limit, MAX_RECENT)))

    def dashboard(self) -> dict[str, Any]:
        """The log's aggregate (scores, days, categories, agreement, sentiment, tokens, cost) and its rates."""
        return views.dashboard_data(self.evaluator.dashboard())

    def health(self) -> dict[str, Any]:
        """Judge, sentiment, log and dataset status and the owner's limits: what ``/healthz`` shows."""
        return public_health(self.evaluator.health(), self.ctx.limits.status())

    ENDPOINTS = (
        "next_question",
        "evaluate",
        "evaluate_free",
        "search_dataset",
        "question_detail",
        "submit_feedback",
        "recent_feedback",
        "dashboard",
        "health",
    )


def register(api: AppAPI) -> None:
    """Publish every endpoint of ``api`` under its method's name (call it inside the app's ``gr.Blocks``)."""
    for name in AppAPI.ENDPOINTS:
        gr.api(friendly(getattr(api, name)), api_name=name)

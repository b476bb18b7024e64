"""The JSON endpoints as plain methods (``evaluator.ui.api.AppAPI``): called directly, no Gradio server."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from evaluator.config import Settings
from evaluator.errors import InputError, NotFoundError, RateLimitedError
from evaluator.limits import CostLimits
from evaluator.service import Evaluator
from evaluator.ui.api import AppAPI
from evaluator.ui.common import AppContext


def _request(host: str) -> SimpleNamespace:
    """What the endpoints read of a ``gr.Request``: the client's address."""
    return SimpleNamespace(client=SimpleNamespace(host=host))


@pytest.fixture
def api(settings: Settings) -> AppAPI:
    limited = replace(settings, judge_calls_per_client_hour=2, rate_limit_per_minute=0)
    evaluator = Evaluator(limited)
    return AppAPI(AppContext(evaluator, CostLimits.from_settings(limited)))


def test_a_question_then_its_grade_with_the_reference(api: AppAPI) -> None:
    item = api.next_question(question_id="stat-001")
    assert item["id"] == "stat-001" and item["question"] and "reference" not in item
    record = api.evaluate("stat-001", "The mean is the average; the median is the middle value.", _request("a"))
    assert record["status"] == "ok" and 0 <= record["score"] <= 10 and record["reference"]
    assert api.question_detail("stat-001")["history"]["count"] == 1
    assert api.dashboard()["evaluations"] == 1


def test_each_client_has_its_own_budget_of_judge_calls(api: AppAPI) -> None:
    for answer in ("The average.", "The middle value."):
        api.evaluate("stat-001", answer, _request("a"))
    with pytest.raises(RateLimitedError):
        api.evaluate("stat-001", "Something else entirely.", _request("a"))
    assert api.evaluate("stat-001", "Something else entirely.", _request("b"))["status"] == "ok"


def test_bad_calls_are_clear_errors(api: AppAPI) -> None:
    with pytest.raises(NotFoundError):
        api.evaluate("no-such-id", "an answer", _request("a"))
    with pytest.raises(InputError, match="limit must be a whole number"):
        api.recent_feedback(float("nan"))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        api.submit_feedback("", "a comment", request=_request("a"))

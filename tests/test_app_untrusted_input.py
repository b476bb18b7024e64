"""Hostile input against the served app (uvicorn + Gradio, driven by gradio_client), judge on the local server.

What a visitor types and what the judge server replies are both untrusted: each case here was a fault
found by probing the running app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from gradio_client import Client

from tests.openai_server import FakeOpenAIServer, completion_body, grade_from_overlap
from tests.served_app import ServedApp
from tests.test_app_api import ITEMS, _settings


@pytest.fixture(scope="module")
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, judge_server: FakeOpenAIServer) -> Iterator[ServedApp]:
    with ServedApp(_settings(tmp_path_factory.mktemp("app"), judge_server)) as app:
        yield app


@pytest.fixture(scope="module")
def client(served: ServedApp) -> Iterator[Client]:
    c = Client(served.url, verbose=False)
    try:
        yield c
    finally:
        c.close()


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 120, "completion_tokens": "abc"},
        {"prompt_tokens": 120, "completion_tokens": 1e300},
        {"prompt_tokens": -50, "completion_tokens": 30},
        {"prompt_tokens": 10**30, "completion_tokens": 30},
        {"prompt_tokens": True, "completion_tokens": [1]},
    ],
)
def test_a_judge_reply_with_nonsense_usage_keeps_its_grade(
    usage: dict[str, object], served: ServedApp, client: Client, judge_server: FakeOpenAIServer
) -> None:
    # The grade is paid for: bad token counts are the server's fault, recorded as 0, never a lost grade.
    grade = grade_from_overlap(ITEMS[0]["question"], ITEMS[0]["reference"], ITEMS[0]["reference"])
    body = completion_body(json.dumps(grade))
    body["usage"] = usage
    judge_server.enqueue(body=body)
    record = client.predict("stat-1", f"The middle value {usage!r}.", api_name="/evaluate")
    assert record["status"] == "ok" and record["score"] == grade["score"]
    for name in ("prompt_tokens", "completion_tokens"):
        given = usage[name]
        expected = given if type(given) is int and 0 <= given <= 10_000_000 else 0
        assert record[name] == expected
    logged = served.evaluator.log.get(record["id"])
    assert logged is not None and logged["score"] == grade["score"]
    assert 0 <= logged["cost_usd"] < 1

"""Hostile input against the served app (uvicorn + Gradio, driven by gradio_client), judge on the local server.

What a visitor types and what the judge server replies are both untrusted: each case here was a fault
found by probing the running app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from evaluator.testing.openai_server import FakeOpenAIServer, completion_body, grade_from_overlap
from tests.served_app import ServedApp
from tests.test_app_api import ITEMS, _settings


@pytest.fixture(scope="module")
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, judge_server: FakeOpenAIServer) -> Iterator[ServedApp]:
    settings = _settings(tmp_path_factory.mktemp("app"), judge_server, max_question_chars=300, max_reference_chars=600)
    with ServedApp(settings) as app:
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


LONE = "x \ud800 y"  # what JSON "x \\ud800 y" decodes to: not Unicode text, it cannot be written as UTF-8


def call_raw(url: str, api_name: str, data: list[object]) -> tuple[str, object]:
    """Call a named endpoint over Gradio's HTTP API with a JSON body written with ASCII escapes, as any client may.

    (gradio_client itself cannot send a lone surrogate: it encodes the body as UTF-8 first.) Returns the final
    server-sent event's name (``complete`` or ``error``) and its data.
    """
    body = json.dumps({"data": data}).encode("ascii")
    with httpx.Client(base_url=url, timeout=30) as http:
        posted = http.post(f"gradio_api/call{api_name}", content=body, headers={"Content-Type": "application/json"})
        posted.raise_for_status()
        events = http.get(f"gradio_api/call{api_name}/{posted.json()['event_id']}").text
    name, payload = "", None
    for line in events.splitlines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            payload = json.loads(line.split(":", 1)[1])
    return name, payload


@pytest.mark.parametrize(
    ("args", "api_name", "field"),
    [
        (["stat-1", LONE], "/evaluate", "answer"),
        ([LONE, "An answer."], "/evaluate", "question_id"),
        ([LONE, "An answer.", "A reference."], "/evaluate_free", "question"),
        (["Why?", "An answer.", LONE], "/evaluate_free", "reference"),
        (["Why?", LONE, "A reference."], "/evaluate_free", "answer"),
        (["some-id", LONE, None, None], "/submit_feedback", "comment"),
        ([LONE, "A comment.", None, None], "/submit_feedback", "evaluation_id"),
    ],
)
def test_a_lone_surrogate_is_a_clear_input_error(
    args: list[object], api_name: str, field: str, served: ServedApp, client: Client
) -> None:
    before = len(served.evaluator.log)
    event, data = call_raw(served.url, api_name, args)
    assert event == "error"
    assert f"The {field} holds an invalid character at position 3 (a lone surrogate, U+D800)" in json.dumps(data)
    assert len(served.evaluator.log) == before
    # The app still works for the next request.
    assert client.predict("stat-1", "The middle value of sorted data.", api_name="/evaluate")["status"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Q" * 301, "An answer.", "A reference."), "question is 301 characters long; the limit is 300"),
        (("Why?", "An answer.", "R" * 1_000_000), "reference is 1,000,000 characters long; the limit is 600"),
    ],
)
def test_free_form_question_and_reference_have_limits(
    args: tuple[str, ...], message: str, served: ServedApp, client: Client, judge_server: FakeOpenAIServer
) -> None:
    before, calls = len(served.evaluator.log), len(judge_server.requests)
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/evaluate_free")
    assert len(served.evaluator.log) == before and len(judge_server.requests) == calls


PERSONAL = {
    "josé.garcía@universidad.es": "[EMAIL]",
    "maria (at) gmail (dot) com": "[EMAIL]",
    "2025550173": "[PHONE]",
    "0049 30 12345678": "[PHONE]",
    "4111.1111.1111.1111": "[CARD]",
    "de89 3704 0044 0532 0130 00": "[IBAN]",
    "123 45 6789": "[SSN]",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc": "[SECRET]",
    "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe": "[SECRET]",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKl": "[SECRET]",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "[SECRET]",
    "hunter2": "[SECRET]",
    "C01X00T47": "[PASSPORT]",
}


def test_personal_data_reaches_neither_the_judge_nor_the_log(
    served: ServedApp, client: Client, judge_server: FakeOpenAIServer
) -> None:
    values = list(PERSONAL)
    answer = (
        f"The median is the middle value. Mail {values[0]} or {values[1]}, call {values[2]} or {values[3]}; "
        f"card {values[4]}, iban {values[5]}, SSN {values[6]}; keys {values[7]} {values[8]} {values[9]} "
        f"{values[10]}; my password is {values[11]}; passport number {values[12]}."
    )
    record = client.predict("stat-1", answer, api_name="/evaluate")
    sent = json.dumps(judge_server.requests[-1], ensure_ascii=False)
    logged = json.dumps(served.evaluator.log.get(record["id"]), ensure_ascii=False)
    for value, placeholder in PERSONAL.items():
        assert value not in sent and value not in logged and value not in record["answer"], value
        assert placeholder in record["answer"]
    assert "The median is the middle value." in sent

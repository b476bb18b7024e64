"""Attacks on the served app, over HTTP as an attacker would make them: a public Space keeps data and budget safe.

Each test reproduces one attack or fault against the app served by uvicorn (``tests/served_app.py``), with the
real OpenAI judge talking to the local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from evaluator.server import STATELESS_SESSIONS
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.served_app import ServedApp
from tests.test_app_api import ITEMS, _settings

SECRET_ANSWER = "my private answer 4417 about the median"


def call(url: str, api_name: str, data: list[Any], *, timeout: float = 60) -> tuple[str, Any]:
    """Call a named endpoint through Gradio's REST API (``/gradio_api/call``): the last event and its data."""
    base = url + "gradio_api/call/" + api_name.strip("/")
    body = json.dumps({"data": data})  # NaN and Infinity as JavaScript's JSON.stringify never sends, Python's does
    headers = {"content-type": "application/json"}
    event_id = httpx.post(base, content=body, headers=headers, timeout=timeout).json()["event_id"]
    event, payload = "", None
    with httpx.stream("GET", f"{base}/{event_id}", timeout=timeout) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = json.loads(line.split(":", 1)[1])
            if event in ("complete", "error") and payload is not None:
                break
    return event, payload


def file_data(path: Path) -> dict[str, Any]:
    """A ``gradio.FileData`` naming a server path, as an attacker would send it."""
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


@pytest.fixture
def judge() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def served(tmp_path: Path, judge: FakeOpenAIServer) -> Iterator[ServedApp]:
    with ServedApp(_settings(tmp_path, judge)) as app:
        yield app


# -- item 1: server files read through FileData paths ---------------------------------------------------
def test_a_batch_cannot_read_a_server_file(served: ServedApp, judge: FakeOpenAIServer) -> None:
    graded = call(served.url, "evaluate", ["stat-1", SECRET_ANSWER])
    assert graded[0] == "complete"
    log_path = served.evaluator.settings.log_path
    assert SECRET_ANSWER in log_path.read_text(encoding="utf-8")
    calls = len(judge.requests)

    event, payload = call(served.url, "run_batch", ["Grade the answers in a file", file_data(log_path), "", 20, 4])

    assert event == "error"
    text = json.dumps(payload)
    assert "Upload the file through the app" in text
    assert SECRET_ANSWER not in text and str(log_path) not in text
    assert len(judge.requests) == calls  # nothing was graded, so nothing was re-logged either


def test_load_dataset_cannot_read_a_server_file_nor_leak_it(tmp_path: Path, served: ServedApp) -> None:
    secret = tmp_path / "secrets.csv"
    secret.write_text("api_key,owner\nsk-live-123,alice\n", encoding="utf-8")
    event, payload = call(served.url, "load_dataset", [file_data(secret)])
    assert event == "error"
    text = json.dumps(payload)
    assert "Upload the file through the app" in text
    assert "api_key" not in text and "sk-live-123" not in text and str(tmp_path) not in text


def test_an_uploaded_file_still_loads(tmp_path: Path, served: ServedApp) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"id": "own-1", "question": "Name a prime.", "reference": "Seven."}), encoding="utf-8")
    client = Client(served.url, verbose=False)
    try:
        assert "own-1" in json.dumps(client.predict(handle_file(str(path)), api_name="/load_dataset"))
    finally:
        client.close()


# -- item 2 and the cost controls -------------------------------------------------------------------------
def _batch_file(folder: Path, rows: int) -> Path:
    path = folder / f"answers-{rows}.jsonl"
    lines = [
        json.dumps({"id": f"r{n}", "question_id": "stat-1", "answer": f"The middle value {n}."}) for n in range(rows)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_batch_over_the_row_limit_makes_no_call(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    with ServedApp(_settings(tmp_path, judge, max_batch_rows=5)) as app:
        client = Client(app.url, verbose=False)
        try:
            with pytest.raises(AppError, match="This batch has 6 rows; this app grades at most 5 per batch"):
                client.predict(
                    "Grade the answers in a file",
                    handle_file(str(_batch_file(tmp_path, 6))),
                    "",
                    20,
                    4,
                    api_name="/run_batch",
                )
            assert judge.requests == []
            status, *_ = client.predict(
                "Grade the answers in a file",
                handle_file(str(_batch_file(tmp_path, 5))),
                "",
                20,
                4,
                api_name="/run_batch",
            )
            assert "5 items, 5 ok" in status
        finally:
            client.close()


def test_only_allowed_candidate_models_are_called(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    with ServedApp(_settings(tmp_path, judge, allowed_candidate_models=("gpt-4o-mini",))) as app:
        client = Client(app.url, verbose=False)
        try:
            with pytest.raises(AppError, match=r"'gpt-4-32k' is not available here; choose one of: gpt-4o-mini"):
                client.predict("A candidate model answers the dataset", None, "gpt-4-32k", 2, 2, api_name="/run_batch")
            assert judge.requests == []
        finally:
            client.close()


def test_model_calls_per_client_hour_count_every_row(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    with ServedApp(_settings(tmp_path, judge, judge_calls_per_client_hour=6)) as app:
        client = Client(app.url, verbose=False)
        try:
            # The candidate answers and the judge grades: 2 calls per question, so 3 questions use the hour's 6.
            status, *_ = client.predict(
                "A candidate model answers the dataset", None, "gpt-4o-mini", 3, 2, api_name="/run_batch"
            )
            assert "3 items, 3 ok" in status
            assert len(judge.requests) == 6
            with pytest.raises(AppError, match=r"needs 1 model call\(s\) and 0 of your 6 per hour are left"):
                client.predict("stat-1", "The middle value.", api_name="/evaluate")
            assert len(judge.requests) == 6
            health = httpx.get(app.url + "healthz", timeout=10).json()
            assert health["limits"]["model_calls_per_client_hour"] == 6
            assert health["limits"]["model_calls_today"] == 6
        finally:
            client.close()


def test_the_daily_budget_is_shared_by_every_client(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    with ServedApp(_settings(tmp_path, judge, judge_calls_per_day=2)) as app:
        for n in range(2):
            assert call(app.url, "evaluate", ["stat-1", f"The middle value, take {n}."])[0] == "complete"
        event, payload = call(app.url, "evaluate", ["stat-1", "The middle value."])
        assert event == "error" and "daily budget of 2 model calls is used up" in json.dumps(payload)
        assert len(judge.requests) == 2


# -- item 14: /healthz ---------------------------------------------------------------------------------------
def test_healthz_shows_no_path_repo_file_or_hub_error(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    from tests.test_hub import REPO, TOKEN, FakeHfApi

    hub = FakeHfApi()
    hub.reachable = False
    settings = _settings(tmp_path, judge, hf_log_repo=REPO, hf_token=TOKEN)
    with ServedApp(settings, hf_api=hub) as app:
        assert app.evaluator.log.hub is not None and not app.evaluator.log.hub.wait_first_attempt(10)
        response = httpx.get(app.url + "healthz", timeout=10)
        api = Client(app.url, verbose=False)
        try:
            via_api = json.dumps(api.predict(api_name="/health"))
        finally:
            api.close()
    for text in (response.text, via_api):
        assert str(tmp_path) not in text
        assert REPO not in text and "evaluations-" not in text
        assert "resolve" not in text and "ConnectionError" not in text
        assert TOKEN not in text
    body = response.json()
    assert body["log"]["hub"] == {"connected": False, "every_minutes": 5.0, "last_push": None, "failing": True}
    assert body["limits"]["max_batch_rows"] == 200


# -- item 17: bad numbers, huge inputs echoed ---------------------------------------------------------------
def test_bad_numbers_get_clear_errors(served: ServedApp) -> None:
    for api_name, data, message in [
        ("recent_feedback", [float("inf")], "limit must be a whole number"),
        ("run_batch", ["A candidate model answers the dataset", None, "gpt-4o-mini", 2, float("nan")], "Concurrency"),
    ]:
        event, payload = call(served.url, api_name, data)
        assert event == "error", api_name
        assert message in json.dumps(payload) and "went wrong" not in json.dumps(payload)


def test_errors_do_not_echo_a_huge_input(served: ServedApp) -> None:
    huge = "q" * 500_000
    started = time.monotonic()
    for api_name, data in [
        ("evaluate", [huge, "An answer."]),
        ("question_detail", [huge]),
        ("next_question", ["", "", huge]),
    ]:
        event, payload = call(served.url, api_name, data)
        assert event == "error"
        assert len(json.dumps(payload)) < 2_000, api_name
    assert time.monotonic() - started < 60


def test_next_question_does_not_reveal_the_reference(served: ServedApp) -> None:
    event, item = call(served.url, "next_question", ["", "", "stat-1"])
    assert event == "complete"
    assert item[0]["question"] == ITEMS[0]["question"]
    assert "reference" not in item[0] and ITEMS[0]["reference"] not in json.dumps(item)


# -- item 3: a batch whose client went away -----------------------------------------------------------------
def upload(url: str, path: Path) -> dict[str, Any]:
    """Upload ``path`` as the browser does; the FileData that names it in a call."""
    with path.open("rb") as fh:
        response = httpx.post(url + "gradio_api/upload", files={"files": (path.name, fh)}, timeout=30)
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def test_a_batch_stops_when_its_client_goes_away_and_resumes(tmp_path: Path) -> None:
    rows = 40
    with FakeOpenAIServer(latency=0.2) as judge, ServedApp(_settings(tmp_path, judge)) as app:
        answers = _batch_file(tmp_path, rows)
        base = app.url + "gradio_api/call/run_batch"
        data = ["Grade the answers in a file", upload(app.url, answers), "", 20, 2]
        event_id = httpx.post(base, json={"data": data}, timeout=30).json()["event_id"]
        with httpx.stream("GET", f"{base}/{event_id}", timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("event: generating") and len(judge.requests) >= 4:
                    break  # the client goes away mid-batch
        at_disconnect = len(judge.requests)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            before = len(judge.requests)
            time.sleep(1.5)
            if len(judge.requests) == before:
                break
        stopped_at = len(judge.requests)
        assert stopped_at < rows, "the abandoned batch ran to the end"
        assert stopped_at <= at_disconnect + 12  # stopped within seconds (2 in flight, 0.2 s each)
        graded = [r for r in app.evaluator.log.records("evaluation") if r.get("batch_id")]
        assert len(graded) == stopped_at and all(r["status"] == "ok" for r in graded)

        client = Client(app.url, verbose=False)
        try:
            status, *_ = client.predict(
                "Grade the answers in a file", handle_file(str(answers)), "", 20, 4, api_name="/run_batch"
            )
        finally:
            client.close()
        assert f"{rows} items, {rows} ok, 0 failed ({stopped_at} already done in an earlier run)" in status
        assert len(judge.requests) == rows  # each row graded once across both runs


# -- item 8 (body cap) and item 12 (login throttling) -------------------------------------------------------
def test_a_huge_body_is_refused_before_it_is_read(served: ServedApp) -> None:
    url = served.url + "gradio_api/call/evaluate_free"
    huge = json.dumps({"data": ["Q?", "x" * 4_500_000, "R."]}).encode()
    declared = httpx.post(url, content=huge, headers={"content-type": "application/json"}, timeout=30)
    assert declared.status_code == 413 and "too large" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while the body streams
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    streamed = httpx.post(url, content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert streamed.status_code == 413
    # An ordinary call still works, and so does an upload up to the upload limit.
    assert call(served.url, "evaluate", ["stat-1", "The middle value."])[0] == "complete"
    big_upload = served.evaluator.settings.log_path.parent / "big.jsonl"
    big_upload.write_text("\n".join([json.dumps({"question_id": "stat-1", "answer": "x" * 100})] * 30_000))
    assert upload(served.url, big_upload)["path"]


def test_login_attempts_are_throttled_per_client(tmp_path: Path, judge: FakeOpenAIServer) -> None:
    settings = _settings(tmp_path, judge, app_username="owner", app_password="right", login_attempts_per_minute=5)
    with ServedApp(settings) as app:
        codes = [
            httpx.post(app.url + "login", data={"username": "owner", "password": f"guess{n}"}, timeout=10).status_code
            for n in range(8)
        ]
        assert codes[:5] == [400] * 5
        assert codes[5:] == [429] * 3
        refused = httpx.post(app.url + "login", data={"username": "owner", "password": "right"}, timeout=10)
        assert refused.status_code == 429
        assert "Too many login attempts: try again in" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1


# -- item 16: memory grew with every API call -----------------------------------------------------------------
def sessions_held(app: ServedApp) -> int:
    """How many Gradio sessions the served app keeps in memory."""
    gradio_app = next(r.app for r in app.server.config.app.routes if hasattr(getattr(r, "app", None), "state_holder"))
    return len(gradio_app.state_holder.session_data)


def test_api_calls_do_not_pile_up_sessions_nor_push_out_a_visitors(tmp_path: Path, served: ServedApp) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"id": "own-1", "question": "Name a prime.", "reference": "Seven."}), encoding="utf-8")
    visitor = Client(served.url, verbose=False)
    try:
        visitor.predict(handle_file(str(path)), api_name="/load_dataset")  # this session now holds its dataset
        for _ in range(STATELESS_SESSIONS + 30):  # each call through the HTTP API is a new session
            assert call(served.url, "next_question", ["", "", ""])[0] == "complete"

        assert sessions_held(served) <= STATELESS_SESSIONS + 1  # and the visitor's
        _, table, _, _ = visitor.predict(
            "A candidate model answers the dataset", None, "gpt-4o-mini", 5, 1, api_name="/run_batch"
        )
        assert [row[1] for row in table["data"]] == ["own-1"]  # the visitor's session kept its dataset
    finally:
        visitor.close()

"""The Runs tab and its API through the served app: gradio_client for the endpoints, Playwright for the tab."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from evaluator.batch import run_batch
from evaluator.batch_io import dataset_items, parse_batch
from evaluator.candidate import OpenAICandidate
from evaluator.config import Settings
from evaluator.headtohead import run_head_to_head
from evaluator.runs import RunInfo
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.conftest import DATA_PATH
from tests.served_app import ServedApp
from tests.test_browser import browser  # noqa: F401 (the Playwright browser fixture)
from tests.test_headtohead import answers_by_model

KEY = "sk-test-runs-app-0123456789abcdef"
BAD = "I am not sure at all."


@pytest.fixture(scope="module")
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer_for=answers_by_model) as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, judge_server: FakeOpenAIServer) -> Iterator[ServedApp]:
    """The app with two named runs (the second regressed on two questions) and a head-to-head in its log."""
    folder = tmp_path_factory.mktemp("runs-app")
    settings = Settings(
        openai_api_key=KEY,
        openai_base_url=judge_server.base_url,
        candidate_base_url=judge_server.base_url,
        judge_backend="openai",
        data_path=DATA_PATH,
        log_path=folder / "logs" / "evaluations_log.jsonl",
        cache_path=folder / "judge_cache.sqlite",
        sentiment_model_name="",
        rate_limit_per_minute=0,
    )
    with ServedApp(settings) as app:
        ev = app.evaluator
        questions = ev.dataset.items[:4]
        for name, bad in (("baseline", set()), ("candidate", {questions[1].id, questions[3].id})):
            rows = [{"question_id": q.id, "answer": BAD if q.id in bad else q.reference} for q in questions]
            source = folder / f"{name}.jsonl"
            source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            items = parse_batch(source, evaluator=ev).items
            run_batch(ev, items, job_id=f"batch-{name}", run=RunInfo(name=name, source="cli"))
        duel = [OpenAICandidate(model=m, base_url=judge_server.base_url, api_key=KEY) for m in ("good", "bad")]
        run_head_to_head(ev, dataset_items(ev.dataset, 3), duel, name="duel")
        yield app


@pytest.fixture(scope="module")
def client(served: ServedApp) -> Iterator[Client]:
    c = Client(served.url, verbose=False)
    try:
        yield c
    finally:
        c.close()


def test_list_runs_endpoint(client: Client) -> None:
    runs = {r["name"]: r for r in client.predict(api_name="/list_runs")}
    assert {"baseline", "candidate", "duel good", "duel bad"} <= set(runs)
    assert runs["candidate"]["items"] == 4 and runs["candidate"]["judge_model"] == "gpt-4o-mini"
    assert runs["duel good"]["head_to_head"] == runs["duel bad"]["head_to_head"]


def test_compare_runs_and_export_endpoints(client: Client) -> None:
    result = client.predict("baseline", "candidate", False, 10, api_name="/compare_runs")
    assert (result["losses"], result["scored"]) == (2, 4) and result["delta"] < 0
    assert {r["answer_b"] for r in result["regressions"]} == {BAD}
    assert result["ci"]["low"] <= result["delta"] <= result["ci"]["high"]
    text = client.predict("baseline", "candidate", "csv", False, api_name="/export_comparison")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 and rows[0]["answer_b"] == BAD and float(rows[0]["delta"]) < 0
    md = client.predict("baseline", "candidate", "markdown", False, api_name="/export_comparison")
    assert md.startswith("### candidate vs baseline") and "#### Most regressed" in md


def test_bad_requests_get_clear_errors(client: Client) -> None:
    with pytest.raises(AppError, match="no run named 'nope'"):
        client.predict("baseline", "nope", False, 10, api_name="/compare_runs")
    with pytest.raises(AppError, match="format must be csv or markdown"):
        client.predict("baseline", "candidate", "xlsx", False, api_name="/export_comparison")
    with pytest.raises(AppError, match="Choose two runs"):
        client.predict("", "candidate", False, 10, api_name="/compare_runs")


def test_head_to_heads_endpoint(client: Client) -> None:
    (duel,) = client.predict(api_name="/list_head_to_heads")
    assert duel["name"] == "duel" and duel["models"] == ["good", "bad"]
    (pair,) = duel["pairs"]
    assert (pair["wins"], pair["ties"], pair["losses"]) == (3, 0, 0)


def test_a_batch_from_the_app_is_a_run(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"question_id": "stat-001", "answer": "The median is the middle value."}) + "\n")
    client.predict("Grade the answers in a file", handle_file(str(path)), "", 20, 2, api_name="/run_batch")
    runs = client.predict(api_name="/list_runs")
    assert runs[0]["source"] == "app" and runs[0]["items"] == 1 and runs[0]["input"] == "answers.jsonl"


def test_runs_tab_in_the_browser(served: ServedApp, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    # ``served`` first: it runs batches on their own event loops, which Playwright's sync loop would forbid.
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(served.url)
        page.get_by_role("tab", name="Runs").click()
        page.locator("#runs-table").get_by_text("candidate", exact=True).first.wait_for()
        for box, name in (("#run-a", "baseline"), ("#run-b", "candidate")):
            page.locator(f"{box} input").click()
            page.locator(box).get_by_role("option", name=f"{name} · batch-{name}", exact=False).click()
        page.locator("#compare-runs").click()
        page.locator("#compare-summary").get_by_text("2 worse").wait_for()
        table = page.locator("#compare-regressions")
        shown = table.get_by_text(BAD).filter(visible=True)
        shown.first.wait_for()
        assert shown.count() == 2  # both regressed questions, their answer B beside answer A and the reference
        page.locator("#compare-chart").wait_for(state="visible")
        with page.expect_download() as download:
            page.locator("#compare-csv").click()
        saved = tmp_path / "comparison.csv"
        download.value.save_as(saved)
        assert next(csv.DictReader(saved.open(encoding="utf-8")))["answer_b"] == BAD
        assert "good vs bad: 3 wins, 0 ties, 0 losses" in page.locator("#head-to-heads").inner_text()
        page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    finally:
        page.close()

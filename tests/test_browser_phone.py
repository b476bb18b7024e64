"""The app as people use it, in a real browser at desktop (1280 px) and phone (390 px) widths.

While an answer is graded it shows in the chat at once; the chat then shows the grade's headline; every tab is
reachable on a phone; wide tables scroll sideways; the Batch tab shows one mode at a time and opens a row;
feedback ratings can be cleared. The judge is the local OpenAI-compatible server with a latency, so the
"grading" state can be seen. With UPDATE_SCREENSHOTS=1 the phone screenshots replace docs/*-phone.png.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from evaluator.config import Settings
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.conftest import DATA_PATH, ROOT
from tests.served_app import ServedApp
from tests.test_browser import GRADE_IN_VIEW, GRADE_TIMEOUT_MS, browser  # noqa: F401 (the browser fixture)

WIDTHS = {"desktop": 1280, "phone": 390}
LIMIT = 500  # MAX_ANSWER_CHARS of the served app
TABS = ["Chat evaluation", "Dataset", "Feedback", "Batch", "Dashboard", "Runs"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    folder = tmp_path_factory.mktemp("phone")
    with FakeOpenAIServer(latency=1.5) as judge:
        settings = Settings(
            openai_api_key="sk-test-browser",
            openai_base_url=judge.base_url,
            judge_backend="openai",
            judge_max_retries=0,
            data_path=DATA_PATH,
            log_path=folder / "logs" / "evaluations_log.jsonl",
            cache_path=folder / "judge_cache.sqlite",
            sentiment_model_name="",  # VADER: no model download
            rate_limit_per_minute=0,
            max_answer_chars=LIMIT,
        )
        with ServedApp(settings) as app:
            yield app


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def page(request: pytest.FixtureRequest, browser: Any, served: ServedApp) -> Iterator[Any]:  # noqa: F811
    page = browser.new_page(viewport={"width": WIDTHS[request.param], "height": 844})
    page.width_name = request.param
    page.goto(served.url)
    page.locator("#chatbot").get_by_text("Type your answer below").first.wait_for()
    try:
        yield page
    finally:
        page.close()


def _shots() -> Path | None:
    return ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else None


def _grade(page: Any, answer: str) -> None:
    page.locator("#answer-box textarea").fill(answer)
    page.locator("#send-answer").click()
    page.locator("#chatbot").get_by_text("/10 —").last.wait_for(timeout=GRADE_TIMEOUT_MS)


def test_the_answer_shows_at_once_and_the_chat_stops_at_the_grade(page: Any) -> None:
    chatbot = page.locator("#chatbot")
    answer = "The mean is the average of the values; the median is the middle value once they are sorted."
    page.locator("#answer-box textarea").fill(answer)
    expect(page.locator("#answer-count")).to_have_text(f"{len(answer)} / {LIMIT} characters")
    page.locator("#send-answer").click()
    # Before the judge answers (1.5 s): the answer is in the chat, with a bubble saying it is being graded.
    chatbot.get_by_text(answer).first.wait_for()
    chatbot.get_by_text("Grading your answer").first.wait_for()
    assert chatbot.get_by_text("/10 —").count() == 0
    chatbot.get_by_text("/10 —").first.wait_for(timeout=GRADE_TIMEOUT_MS)
    expect(chatbot.get_by_text("Grading your answer")).to_have_count(0)
    # The grade's headline is what the chat shows, not the next question below it.
    page.wait_for_function(GRADE_IN_VIEW)
    expect(page.locator("#answer-box textarea")).to_have_value("")
    expect(page.locator("#answer-count")).to_have_text(f"0 / {LIMIT} characters")
    shots = _shots()
    if shots and page.width_name == "phone":
        page.screenshot(path=str(shots / "chat-phone.png"))


def test_a_failed_grade_leaves_the_answer_in_its_box(page: Any) -> None:
    page.locator("#answer-box textarea").fill("   ")
    page.locator("#send-answer").click()
    toast = page.locator(".toast-body").first
    toast.wait_for()
    assert "empty" in toast.inner_text().lower()
    # The toast sits at the bottom of the window, clear of the buttons under the tabs.
    box = toast.bounding_box()
    assert box["y"] > page.viewport_size["height"] / 2
    expect(page.locator("#chatbot").get_by_text("Grading your answer")).to_have_count(0)


def test_every_tab_is_reachable_without_a_menu(page: Any) -> None:
    for name in TABS:
        expect(page.get_by_role("tab", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="More tabs")).to_have_count(0)


def test_wide_tables_scroll_sideways_with_readable_columns(page: Any) -> None:
    page.get_by_role("tab", name="Dataset").click()
    table = page.locator("#dataset-table")
    table.get_by_text("stat-001").first.wait_for()
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts() if h.strip()]
    assert headers[:2] == ["id", "question"]  # the key columns first
    page.get_by_role("tab", name="Feedback").click()
    widths = page.locator("#feedback-table thead th").evaluate_all("ths => ths.map(t => t.clientWidth)")
    assert min(w for w in widths if w) >= 50  # about 25 px (one letter per line) before, at 390 px
    scrolls = page.locator("#feedback-table .virtual-table-viewport").first.evaluate(
        "v => v.scrollWidth > v.clientWidth + 1"
    )
    assert scrolls == (page.width_name == "phone")
    shots = _shots()
    if shots and page.width_name == "phone":
        page.screenshot(path=str(shots / "feedback-phone.png"), full_page=True)


def test_the_batch_tab_shows_one_mode_then_results_downloads_and_a_row(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Batch").click()
    expect(page.locator("#batch-file")).to_be_visible()
    expect(page.locator("#batch-limit")).to_be_hidden()
    expect(page.locator("#batch-csv")).to_be_hidden()  # nothing to download before a run
    page.get_by_text("A candidate model answers the dataset").click()
    expect(page.locator("#batch-file")).to_be_hidden()
    expect(page.locator("#batch-limit")).to_be_visible()
    page.get_by_text("Grade the answers in a file").click()
    expect(page.locator("#batch-file")).to_be_visible()

    answers = tmp_path / "answers.jsonl"
    rows = [
        {"question_id": "stat-002", "answer": "How spread out values are around the mean."},
        {"question_id": "stat-001", "answer": "I do not know."},
    ]
    answers.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    page.locator("#batch-file input[type=file]").set_input_files(str(answers))
    page.get_by_role("button", name="Run batch").click()
    page.get_by_text("2 items, 2 ok, 0 failed").wait_for(timeout=GRADE_TIMEOUT_MS)
    expect(page.locator("#batch-csv")).to_be_visible()
    page.locator("#batch-table").get_by_text("stat-001").first.click()
    detail = page.locator("#batch-row-detail")
    expect(detail).to_contain_text("Line 2")
    expect(detail).to_contain_text("I do not know.")
    expect(detail).to_contain_text("Reference answer:")
    shots = _shots()
    if shots and page.width_name == "phone":
        page.screenshot(path=str(shots / "batch-phone.png"), full_page=True)


def test_a_rating_can_be_cleared_and_does_not_carry_over(page: Any) -> None:
    _grade(page, "Variance measures how far values spread around their mean.")
    page.get_by_role("tab", name="Feedback").click()
    rating = page.locator("#feedback-rating")
    rating.get_by_text("4", exact=True).click()
    expect(rating.locator("input:checked")).to_have_count(1)
    page.locator("#clear-rating").click()
    expect(rating.locator("input:checked")).to_have_count(0)
    rating.get_by_text("2", exact=True).click()
    page.locator("#feedback-comment textarea").fill("Too harsh, I think.")
    page.locator("#send-feedback").click()
    page.locator("#feedback-result").get_by_text("Thank you!").wait_for()
    expect(rating.locator("input:checked")).to_have_count(0)
    expect(page.get_by_label("No opinion")).to_be_checked()

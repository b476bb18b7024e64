"""Through a real browser (Debian chromium driven by Playwright): answer in the chat, see the grade, give feedback.

Skipped when /usr/bin/chromium is missing, unless REQUIRE_BROWSER=1 (CI), where that is a failure.
Screenshots of each tab go to a temp dir; with UPDATE_SCREENSHOTS=1 they replace docs/*.png.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from evaluator.config import Settings
from evaluator.models import EvaluationRecord, GradeRequest
from tests.conftest import DATA_PATH, ROOT
from tests.served_app import ServedApp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GRADE_TIMEOUT_MS = 60_000  # the offline judge loads its model on the first grading
# True once the newest grade's headline is at the top of the chat's scrolled area, not scrolled past.
GRADE_IN_VIEW = """() => {
  const box = document.querySelector('#chatbot .bubble-wrap');
  const bots = [...document.querySelectorAll('#chatbot .bot-row')].filter(r => r.innerText.includes('/10 —'));
  const grade = bots[bots.length - 1];
  if (!box || !grade) return false;
  const top = grade.getBoundingClientRect().top - box.getBoundingClientRect().top;
  return top >= 20 && top < box.clientHeight / 2;  // below the chat's label, near the top
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _offline_settings(folder: Path) -> Settings:
    return Settings(
        data_path=DATA_PATH,
        log_path=folder / "logs" / "evaluations_log.jsonl",
        cache_path=folder / "judge_cache.sqlite",
        judge_backend="offline",
        sentiment_model_name="",  # VADER: no model download
        rate_limit_per_minute=0,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with ServedApp(_offline_settings(tmp_path_factory.mktemp("browser"))) as app:
        yield app


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/ with UPDATE_SCREENSHOTS=1, else a temp dir."""
    return ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def test_chat_grade_then_feedback_with_sentiment(browser: Any, served: ServedApp, shots: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(served.url)
        page.get_by_text("Judge: offline", exact=False).wait_for()
        chatbot = page.locator("#chatbot")
        chatbot.get_by_text("Type your answer below").first.wait_for()

        # Ask a chosen question, answer it, and read the grade.
        page.get_by_role("textbox", name="Question id (optional)").fill("stat-001")
        page.get_by_role("button", name="Next question").click()
        chatbot.get_by_text("stat-001").first.wait_for()
        page.locator("#answer-box textarea").fill(
            "The mean is the average of all values; the median is the middle value of the sorted data. "
            "The median is preferred when the data are skewed or have outliers."
        )
        page.locator("#send-answer").click()
        chatbot.get_by_text("/10 —").first.wait_for(timeout=GRADE_TIMEOUT_MS)
        grade = chatbot.get_by_text("/10 —").first.inner_text()
        assert "correct" in grade
        chatbot.get_by_text("Reference answer:").first.wait_for()
        page.wait_for_function(GRADE_IN_VIEW)  # the chat shows the grade from its headline
        page.screenshot(path=str(shots / "chat.png"), full_page=True)

        # The grade is in the log with the answer given in the browser.
        graded = [r for r in served.evaluator.log.records("evaluation") if r["question_id"] == "stat-001"]
        assert len(graded) == 1 and graded[0]["status"] == "ok"
        assert graded[0]["answer"].startswith("The mean is the average")

        # Feedback on that grade: the evaluation id is filled in, the sentiment shows at once.
        page.get_by_role("tab", name="Feedback").click()
        assert page.get_by_role("textbox", name="Evaluation id").input_value() == graded[0]["id"]
        page.get_by_text("Agree", exact=True).click()
        page.locator("#feedback-comment textarea").fill("Great explanation, fair and really helpful. Thanks!")
        page.locator("#send-feedback").click()
        result = page.locator("#feedback-result")
        result.get_by_text("Thank you!").wait_for()
        assert "positive" in result.inner_text()
        page.locator("#feedback-table").get_by_text("Great explanation, fair and really helpful").filter(
            visible=True
        ).first.wait_for()
        page.screenshot(path=str(shots / "feedback.png"), full_page=True)

        # The dataset tab: search, select a row, see it with its history.
        page.get_by_role("tab", name="Dataset").click()
        page.get_by_role("textbox", name="Search").fill("median")
        page.get_by_role("textbox", name="Search").press("Enter")
        total = len(served.evaluator.dataset)
        expect(page.locator("#dataset-count")).not_to_contain_text(f"{total} of {total}")
        assert "stat-001" in page.locator("#dataset-table").inner_text()
        page.locator("#dataset-table").get_by_text("stat-001").filter(visible=True).first.click()
        page.get_by_text("History: 1 evaluation,").wait_for()
        page.screenshot(path=str(shots / "dataset.png"), full_page=True)

        # The batch tab: upload answers, watch the results arrive, downloads offered.
        answers = tmp_path / "answers.jsonl"
        rows = [
            {"question_id": "stat-002", "answer": "How spread out values are around the mean."},
            {"question_id": "stat-001", "answer": "I do not know."},
            {"question": "What is 2 + 2?", "reference": "Four.", "answer": "Four."},
        ]
        answers.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-file input[type=file]").set_input_files(str(answers))
        page.get_by_role("button", name="Run batch").click()
        page.get_by_text("3 items, 3 ok, 0 failed").wait_for(timeout=GRADE_TIMEOUT_MS)
        page.screenshot(path=str(shots / "batch.png"), full_page=True)
    finally:
        page.close()


def _a_week_of_use(app: ServedApp) -> list[EvaluationRecord]:
    """Real offline gradings of good, partial and wrong answers to 35 dataset questions, spread over the last week."""
    ev = app.evaluator
    items = ev.dataset.items[::4][:35]
    answers = [
        item.reference if n % 3 == 0 else " ".join(item.reference.split()[:8]) if n % 3 == 1 else "No idea, sorry."
        for n, item in enumerate(items)
    ]
    results = ev.judge.grade_many(
        [
            GradeRequest(question=i.question, reference=i.reference, answer=a)
            for i, a in zip(items, answers, strict=True)
        ]
    )
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    records = []
    for n, (item, answer, result) in enumerate(zip(items, answers, results, strict=True)):
        when = today - timedelta(days=6 - n % 7 if n % 5 else 0, minutes=n)  # busier today
        record = EvaluationRecord(
            question_id=item.id,
            question=item.question,
            reference=item.reference,
            answer=answer,
            result=result,
            category=item.category,
            difficulty=item.difficulty,
            source="batch",
            timestamp=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        ev.record(record)
        records.append(record)
    return records


def test_dashboard_shows_the_log(browser: Any, tmp_path: Path) -> None:
    with ServedApp(_offline_settings(tmp_path)) as app:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(app.url)
            page.get_by_role("tab", name="Dashboard").click()
            headline = page.locator("#dashboard-headline")
            expect(headline).to_contain_text("No evaluations yet", timeout=GRADE_TIMEOUT_MS)
            expect(page.locator("#dashboard-scores")).to_be_hidden()

            records = _a_week_of_use(app)
            comments = [
                (True, 5, "Fair grade, the feedback was clear and helpful."),
                (False, 2, "Too harsh: my answer covered the main point, this grade is wrong."),
                (True, 4, "Good explanation of what I missed, thanks!"),
                (None, None, "I answered from memory."),
            ]
            for n, record in enumerate(records[:16]):
                agree, rating, comment = comments[n % len(comments)]
                app.evaluator.submit_feedback(record.id, agree=agree, rating=rating, comment=comment)

            # Selecting the tab again reads the log again.
            page.get_by_role("tab", name="Batch").click()
            page.get_by_role("tab", name="Dashboard").click()
            expect(headline).to_contain_text(f"{len(records)} evaluations · mean score", timeout=GRADE_TIMEOUT_MS)
            expect(headline).to_contain_text("16 feedback")
            expect(page.locator("#dashboard-scores canvas, #dashboard-scores svg").first).to_be_visible()
            expect(page.get_by_text("Judge/human agreement (share of rated feedback)")).to_be_visible()

            # Refresh picks up what arrived meanwhile.
            app.evaluator.submit_feedback(records[-1].id, agree=True, comment="Spot on.")
            page.get_by_role("button", name="Refresh").click()
            expect(headline).to_contain_text("17 feedback")  # tests/test_browser_dashboard.py takes its screenshot
        finally:
            page.close()

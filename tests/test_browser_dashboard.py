"""The Dashboard tab in a real browser, at desktop and phone widths: one day of scores shows as a point, a
filter changes the figures, a bar opens the evaluations behind it, and the charts' tables download as CSV.

Skipped like tests/test_browser.py when /usr/bin/chromium is missing. With UPDATE_SCREENSHOTS=1 the filtered
dashboard replaces docs/dashboard.png (desktop) and docs/dashboard-phone.png (390 px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from evaluator import views
from evaluator.dashboard import CHART_FRAMES, DashboardFilter, chart_csv, filtered_data, score_bin
from evaluator.models import EvaluationRecord
from tests.served_app import ServedApp
from tests.test_browser import GRADE_TIMEOUT_MS, _a_week_of_use, _offline_settings, browser, shots

__all__ = ["browser", "shots"]  # the fixtures, shared with tests/test_browser.py

WIDTHS = {"desktop": 1280, "phone": 390}
SCREENSHOTS = {"desktop": "dashboard.png", "phone": "dashboard-phone.png"}


@pytest.fixture(params=list(WIDTHS))
def device(request: pytest.FixtureRequest) -> str:
    """The screen the page is seen on: ``desktop`` (1280 px wide) or ``phone`` (390 px)."""
    return request.param


def _open_dashboard(browser: Any, app: ServedApp, device: str, evaluations: int) -> Page:
    page = browser.new_page(viewport={"width": WIDTHS[device], "height": 900})
    page.goto(app.url)
    page.get_by_role("tab", name="Chat evaluation").wait_for()
    if page.get_by_role("tab", name="Dashboard").count():
        page.get_by_role("tab", name="Dashboard").click()
    else:  # a phone folds the last tabs into a menu
        page.get_by_role("button", name="More tabs").click()
        page.locator(".overflow-dropdown").get_by_role("button", name="Dashboard").click()
    headline = f"{views.plural(evaluations, 'evaluation')} · mean score"
    expect(page.locator("#dashboard-headline")).to_contain_text(headline, timeout=GRADE_TIMEOUT_MS)
    return page


def _choose(page: Page, elem_id: str, option: str) -> None:
    """Pick ``option`` in the dropdown ``#elem_id`` as a visitor does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator(f"#{elem_id} input")).to_have_value(option)


def _graded(records: list[EvaluationRecord], category: str, chart: str, value: str) -> list[EvaluationRecord]:
    """The graded evaluations of ``category`` behind bar ``value`` of ``chart`` ('verdict' or 'score')."""
    return [
        r
        for r in records
        if r.category == category and r.ok and (r.verdict if chart == "verdict" else score_bin(r.score or 0)) == value
    ]


def _shows_exactly(page: Page, records: list[EvaluationRecord]) -> None:
    """The drill-down table lists exactly ``records`` (by evaluation id)."""
    grid = page.locator("#drill-table [role=grid]")
    expect(grid).to_have_attribute("aria-rowcount", str(len(records) + 1))  # and the header row
    for record in records:
        expect(grid.get_by_role("row").filter(has_text=record.id)).to_have_count(1)


def _brush(page: Page, elem_id: str) -> None:
    """Drag across the first drawn bar of chart ``#elem_id`` (a click alone does not select a bar)."""
    chart = page.locator(f"#{elem_id}")
    bar = chart.locator("g.mark-rect path").filter(visible=True).first  # bars of no evaluations are not drawn
    bar.wait_for()
    chart.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=4)
    page.mouse.move(box["x"] + box["width"] - 2, y, steps=4)
    page.mouse.up()


def test_one_day_of_scores_shows_as_a_point(browser: Any, tmp_path: Path, device: str) -> None:
    with ServedApp(_offline_settings(tmp_path)) as app:
        for item in app.evaluator.dataset.items[:3]:
            app.evaluator.evaluate(item.reference, question_id=item.id)
        page = _open_dashboard(browser, app, device, 3)
        try:
            points = page.locator("#dashboard-day-points g.mark-symbol path")
            expect(points).to_have_count(1)
            expect(points).to_be_visible()
            expect(page.locator("#dashboard-days")).to_be_hidden()  # a line of one day draws nothing
        finally:
            page.close()


def test_filter_drill_down_and_export(browser: Any, tmp_path: Path, device: str, shots: Path) -> None:
    with ServedApp(_offline_settings(tmp_path)) as app:
        records = _a_week_of_use(app)
        for record in records[:12]:
            app.evaluator.submit_feedback(record.id, agree=record.verdict != "incorrect", comment="Fair, thanks!")
        page = _open_dashboard(browser, app, device, len(records))
        try:
            # A category filter: the headline counts that category's evaluations only, and says so.
            category = records[0].category
            _choose(page, "dashboard-category", category)
            kept = [r for r in records if r.category == category]
            headline = page.locator("#dashboard-headline")
            expect(headline).to_contain_text(f"{views.plural(len(kept), 'evaluation')} · mean score")
            expect(headline).to_contain_text(f"Filtered: category {category}")
            expect(page.locator("#dashboard-day-counts g.mark-rect path").first).to_be_attached()

            # A bar chosen in the dropdowns opens the evaluations behind it, within the filter.
            verdict = kept[0].verdict or ""
            _choose(page, "drill-chart", "Verdicts")
            _choose(page, "drill-value", verdict)
            page.get_by_role("button", name="Show evaluations").click()
            behind = _graded(records, category, "verdict", verdict)
            caption = page.locator("#drill-caption")
            expect(caption).to_contain_text(f"{views.plural(len(behind), 'evaluation')} behind Verdicts: {verdict}")
            _shows_exactly(page, behind)

            # Dragging across a bar of the score chart opens the evaluations of that bar.
            _brush(page, "dashboard-scores")
            expect(page.locator("#drill-chart input")).to_have_value("Score distribution")
            expect(page.locator("#drill-value input")).not_to_have_value("")
            opened = page.locator("#drill-value input").input_value()
            in_bin = _graded(records, category, "score", opened)
            expect(caption).to_contain_text(f"{views.plural(len(in_bin), 'evaluation')} behind Score distribution")
            _shows_exactly(page, in_bin)

            # The export offers each chart's table as a CSV file holding the filtered figures.
            page.get_by_role("button", name="Export chart tables (CSV)").click()
            links = page.locator("#dashboard-files a[download]")
            expect(links).to_have_count(len(CHART_FRAMES))
            data = filtered_data(app.evaluator.dashboard_records(), DashboardFilter(category=category))
            for n, name in enumerate(CHART_FRAMES):
                link = links.nth(n)
                expect(link).to_have_attribute("download", f"dashboard-{name}.csv")
                body = page.request.get(link.get_attribute("href") or "").text()
                assert body == chart_csv(CHART_FRAMES[name](data)), name
            page.screenshot(path=str(shots / SCREENSHOTS[device]), full_page=True)
        finally:
            page.close()


def test_a_bad_date_is_explained(browser: Any, tmp_path: Path) -> None:
    with ServedApp(_offline_settings(tmp_path)) as app:
        app.evaluator.evaluate("A guess.", question_id=app.evaluator.dataset.items[0].id)
        page = _open_dashboard(browser, app, "desktop", 1)
        try:
            start = page.get_by_role("textbox", name="From (UTC day)")
            start.fill("03/01/2025")
            start.press("Enter")
            expect(page.get_by_text("The start date must be a date such as 2025-03-01")).to_be_visible()
        finally:
            page.close()

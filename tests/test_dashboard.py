"""The dashboard's figures: a log filled with real records, read back as plots, a headline and `stats` output.

Every expected number below was computed by hand from the records in ``filled_log``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluator import cli, dashboard, views
from evaluator.dataset import UNCATEGORISED
from evaluator.errors import InputError
from evaluator.log import EvalLog
from evaluator.models import EvaluationRecord, FeedbackRecord, Grade, JudgeResult, Sentiment, Usage, verdict_for

CRITERIA = {"correctness": 3, "completeness": 3, "relevance": 3, "clarity": 3}


def _evaluation(
    timestamp: str,
    *,
    score: float | None,
    category: str | None,
    backend: str = "openai",
    usage: Usage = Usage(),  # noqa: B008 (frozen)
    cache_hit: bool = False,
) -> EvaluationRecord:
    if score is None:
        result = JudgeResult("error", backend, "gpt-4o-mini", "v1", error="timed out", usage=usage)
    else:
        grade = Grade(score=score, verdict=verdict_for(score), criteria=CRITERIA, feedback="ok")
        model = "gpt-4o-mini" if backend == "openai" else "all-MiniLM-L6-v2"
        result = JudgeResult("ok", backend, model, "v1", grade=grade, usage=usage, cache_hit=cache_hit)
    return EvaluationRecord(
        question_id=None if category is None else f"{category[:4]}-1",
        question="Q?",
        reference="R.",
        answer="A.",
        result=result,
        category=category,
        timestamp=timestamp,
    )


def _feedback(evaluation: EvaluationRecord, agree: bool | None, rating: int | None, label: str) -> FeedbackRecord:
    return FeedbackRecord(
        evaluation_id=evaluation.id,
        comment=f"a {label} comment",
        sentiment=Sentiment(label=label, score=0.9, backend="vader"),
        agree=agree,
        rating=rating,
        timestamp="2025-03-03T12:00:00.000Z",
    )


@pytest.fixture
def filled_log(tmp_path: Path) -> EvalLog:
    """5 evaluations over 2 days (4 graded, 1 error), 5 pieces of feedback."""
    e1 = _evaluation("2025-03-01T09:00:00.000Z", score=9.0, category="Statistics", usage=Usage(200, 50, 0.00006))
    e2 = _evaluation("2025-03-01T10:00:00.000Z", score=5.5, category="Statistics", usage=Usage(180, 40, 0.00005))
    e3 = _evaluation("2025-03-02T08:00:00.000Z", score=2.0, category="Machine Learning", cache_hit=True)
    e4 = _evaluation("2025-03-02T09:00:00.000Z", score=None, category="Statistics", usage=Usage(150, 0, 0.00002))
    e5 = _evaluation("2025-03-02T10:00:00.000Z", score=7.0, category=None, backend="offline")
    log = EvalLog(tmp_path / "log.jsonl")
    for record in (
        e1,
        e2,
        e3,
        e4,
        e5,
        _feedback(e1, True, 5, "positive"),
        _feedback(e2, True, 4, "positive"),
        _feedback(e3, False, 1, "negative"),
        _feedback(e5, None, None, "neutral"),
        _feedback(e1, False, 2, "negative"),
    ):
        log.append(record)
    return log


def _rows(frame: Any) -> list[list]:
    """A DataFrame's rows as lists."""
    return frame.to_numpy().tolist()


def test_dashboard_figures_are_the_logs(filled_log: EvalLog) -> None:
    data = views.dashboard_data(filled_log.aggregate())
    assert (data["evaluations"], data["ok"], data["errors"], data["feedback"]) == (5, 4, 1, 5)
    assert data["mean_score"] == pytest.approx((9 + 5.5 + 2 + 7) / 4)
    assert data["tokens"] == {"prompt": 530, "completion": 90, "total": 620}
    assert data["cost_usd"] == pytest.approx(0.00013)
    assert data["rates"] == {
        "error_rate": 0.2,
        "cache_hit_rate": 0.2,
        "tokens_per_evaluation": 124.0,
        "cost_per_evaluation_usd": pytest.approx(0.000026),
    }
    assert data["agreement"]["rated"] == 4 and data["agreement"]["rate"] == 0.5
    assert data["ratings"] == {"count": 4, "mean": 3.0}
    json.dumps(data)  # what /dashboard and `stats --json` send


def test_plots_show_distribution_days_categories_agreement_sentiment_and_judges(filled_log: EvalLog) -> None:
    data = views.dashboard_data(filled_log.aggregate())

    scores = views.score_frame(data)
    assert list(scores["score"]) == views.SCORE_BINS
    assert dict(zip(scores["score"], scores["evaluations"], strict=True)) == {
        label: (1 if label in ("2–3", "5–6", "7–8", "9–10") else 0) for label in views.SCORE_BINS
    }

    days = views.days_frame(data)
    assert [d.strftime("%Y-%m-%d") for d in days["date"]] == ["2025-03-01", "2025-03-02"]
    assert list(days["day"]) == ["2025-03-01", "2025-03-02"]
    assert list(days["mean score"]) == [7.25, 4.5]  # (9 + 5.5) / 2; (2 + 7) / 2 — the error is not a score
    assert list(days["evaluations"]) == [2, 2]

    assert _rows(views.category_frame(data)) == [
        ["Machine Learning", 2.0, 1],
        ["Statistics", 7.25, 2],
        ["Uncategorised", 7.0, 1],
    ]
    # 4 rated: e1 agreed once and disagreed once, e2 agreed, e3 disagreed; e5's feedback has no opinion.
    assert _rows(views.agreement_frame(data)) == [
        ["all grades", 50.0, 4],
        ["correct", 50.0, 2],
        ["partially correct", 100.0, 1],
        ["incorrect", 0.0, 1],
    ]
    assert _rows(views.sentiment_frame(data)) == [["positive", 40.0, 2], ["neutral", 20.0, 1], ["negative", 40.0, 2]]
    assert _rows(views.verdict_frame(data)) == [["correct", 2], ["partially correct", 1], ["incorrect", 1]]
    assert _rows(views.backend_frame(data)) == [["offline", 1], ["openai", 4]]


def test_headline_names_evaluations_mean_score_cost_and_agreement(filled_log: EvalLog) -> None:
    headline = views.dashboard_headline(views.dashboard_data(filled_log.aggregate()))
    first = headline.splitlines()[0]
    assert "5 evaluations" in first and "mean score 5.9/10" in first
    assert "cost $0.000130" in first and "agreement 50%" in first
    assert "2 of 4 rated feedback agree" in headline and "mean rating 3.0/5" in headline
    assert "1 failed (error rate 20%)" in headline and "cache hits 1 (20%)" in headline
    assert "620 tokens (124 per evaluation)" in headline and "$0.000026 per evaluation" in headline
    assert "openai gpt-4o-mini: 4 evaluations, 620 tokens, $0.000130" in headline
    assert "offline all-MiniLM-L6-v2: 1 evaluation, 0 tokens, $0" in headline and "0 damaged log lines" in headline


def test_an_empty_log_says_so_instead_of_empty_plots(tmp_path: Path) -> None:
    data = views.dashboard_data(EvalLog(tmp_path / "log.jsonl").aggregate())
    assert views.dashboard_headline(data) == views.NO_EVALUATIONS
    frames = (views.score_frame, views.days_frame, views.category_frame, views.agreement_frame)
    frames += (views.sentiment_frame, views.verdict_frame, views.backend_frame)
    assert all(len(frame(data)) == 0 for frame in frames)
    assert data["rates"]["error_rate"] is None and data["agreement"]["rate"] is None
    assert "No evaluations yet" in views.stats_text(data)


def test_feedback_without_ratings_or_grades_without_feedback(tmp_path: Path) -> None:
    log = EvalLog(tmp_path / "log.jsonl")
    only_error = _evaluation("2025-03-01T09:00:00.000Z", score=None, category="Statistics")
    log.append(only_error)
    data = views.dashboard_data(log.aggregate())
    assert len(views.score_frame(data)) == 0 and len(views.days_frame(data)) == 0  # nothing graded to plot
    assert _rows(views.backend_frame(data)) == [["openai", 1]]
    headline = views.dashboard_headline(data)
    assert "### 1 evaluation ·" in headline and "mean score n/a/10" in headline and "no ratings yet" in headline
    assert "agreement n/a" in headline and "1 failed (error rate 100%)" in headline


def test_damaged_log_lines_are_counted_and_shown(filled_log: EvalLog) -> None:
    with filled_log.path.open("ab") as f:
        f.write(b'{"kind": "evaluation", "id": "cut-sho\n')
    data = views.dashboard_data(filled_log.aggregate())
    assert data["damaged_lines"] == 1 and data["evaluations"] == 5
    headline = views.dashboard_headline(data)
    assert headline.endswith("· 1 damaged log line")
    assert "Damaged log lines: 1" in views.stats_text(data)


def test_cli_stats_prints_the_dashboard(
    filled_log: EvalLog, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_PATH", str(filled_log.path))
    assert cli.main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == views.dashboard_data(filled_log.aggregate())

    assert cli.main(["stats"]) == 0
    text = capsys.readouterr().out
    assert "Evaluations: 5 (4 graded, 1 failed: error rate 20%)" in text
    assert "Mean score: 5.88/10" in text
    assert "Judge/human agreement: 50% (2 of 4 rated); correct 50% of 2, partially correct 100% of 1" in text
    assert "Sentiment: negative 40% (2), neutral 20% (1), positive 40% (2)" in text
    assert "Per category: Machine Learning 2.00 (n=1), Statistics 7.25 (n=2), Uncategorised 7.00 (n=1)" in text
    assert "Per day: 2025-03-01 7.25 (n=2), 2025-03-02 4.50 (n=2)" in text
    assert "Cost: $0.000130, $0.000026 per evaluation" in text


# -- filters, drill-down, export --------------------------------------------------------------------
def test_no_filter_gives_the_whole_logs_figures(filled_log: EvalLog) -> None:
    flt = dashboard.DashboardFilter.from_inputs("", "", views.ANY, views.ANY, views.ANY)
    assert not flt.active
    assert dashboard.filtered_data(filled_log.records(), flt) == views.dashboard_data(filled_log.aggregate())


def test_filters_narrow_every_figure(filled_log: EvalLog) -> None:
    records = filled_log.records()
    one_day = dashboard.filtered_data(records, dashboard.DashboardFilter.from_inputs("2025-03-01", "2025-03-01"))
    assert (one_day["evaluations"], one_day["ok"], one_day["mean_score"]) == (2, 2, 7.25)
    # e1 (agree, then disagree) and e2 (agree) are that day's: their feedback only
    assert (one_day["feedback"], one_day["agreement"]["rated"], one_day["agreement"]["agree"]) == (3, 3, 2)
    assert _rows(views.days_frame(one_day))[0][1:] == ["2025-03-01", 7.25, 2]
    stats = dashboard.filtered_data(records, dashboard.DashboardFilter.from_inputs(category="Statistics"))
    assert (stats["evaluations"], stats["ok"], stats["errors"]) == (3, 2, 1)
    none = dashboard.filtered_data(records, dashboard.DashboardFilter(category=UNCATEGORISED))
    assert none["evaluations"] == 1 and none["mean_score"] == 7.0
    offline = dashboard.filtered_data(records, dashboard.DashboardFilter.from_inputs(backend="offline"))
    assert offline["backends"] == {"offline": 1} and offline["feedback"] == 1
    nothing = dashboard.filtered_data(records, dashboard.DashboardFilter(run="batch-x"))
    assert nothing["evaluations"] == 0 and views.dashboard_headline(nothing) == views.NO_EVALUATIONS
    with pytest.raises(InputError, match="start date 2025-03-02 is after the end date 2025-03-01"):
        dashboard.DashboardFilter.from_inputs("2025-03-02", "2025-03-01")
    with pytest.raises(InputError, match="must be a date"):
        dashboard.DashboardFilter.from_inputs("yesterday")


def test_filter_by_run_and_the_choices_offered(tmp_path: Path) -> None:
    log = EvalLog(tmp_path / "log.jsonl")
    for n, run in enumerate(("run-a", "run-a", "run-b", None)):
        record = _evaluation(f"2025-03-0{n + 1}T09:00:00.000Z", score=2.0 * (n + 1), category="Statistics")
        log.append({**record.to_dict(), "batch_id": run})
    data = dashboard.filtered_data(log.records(), dashboard.DashboardFilter.from_inputs(run="run-a"))
    assert (data["evaluations"], data["mean_score"]) == (2, 3.0)
    choices = dashboard.filter_choices(log.records())
    assert choices == {
        "categories": [views.ANY, "Statistics"],
        "backends": [views.ANY, "openai"],
        "runs": [views.ANY, "run-a", "run-b"],
        "first_day": "2025-03-01",
        "last_day": "2025-03-04",
    }


def test_a_bar_opens_to_the_evaluations_behind_it(filled_log: EvalLog) -> None:
    records = filled_log.records()
    data = views.dashboard_data(filled_log.aggregate())
    score_bars = dict(_rows(views.score_frame(data)))
    for label, count in score_bars.items():  # each bar opens to as many evaluations as it counts
        assert len(dashboard.drill_down(records, "score", label)) == count
    rows = dashboard.drill_down(records, "score", "9–10")
    assert [(r[3], r[5], r[6]) for r in rows] == [("Statistics", 9.0, "correct")]
    assert dashboard.DRILL_HEADERS[5] == "score"
    day = dashboard.drill_down(records, "day", "2025-03-02")  # graded ones only, newest first
    assert [r[0] for r in day] == ["2025-03-02 10:00:00", "2025-03-02 08:00:00"]
    assert [r[3] for r in dashboard.drill_down(records, "category", UNCATEGORISED)] == [UNCATEGORISED]
    assert len(dashboard.drill_down(records, "verdict", "correct")) == data["verdicts"]["correct"]
    both = dashboard.drill_down(records, "verdict", ["correct", "incorrect"])  # two bars at once, newest first
    assert len(both) == data["verdicts"]["correct"] + data["verdicts"]["incorrect"]
    assert [r[0] for r in both] == sorted((r[0] for r in both), reverse=True)
    assert len(dashboard.drill_down(records, "judge", "openai")) == 4  # the failed one too, as the bar counts
    only_day_one = dashboard.DashboardFilter.from_inputs("2025-03-01", "2025-03-01")
    assert len(dashboard.drill_down(records, "judge", "openai", only_day_one)) == 2
    with pytest.raises(InputError, match="No chart 'pie'"):
        dashboard.drill_down(records, "pie", "x")


def test_each_charts_table_exports_as_csv(filled_log: EvalLog, tmp_path: Path) -> None:
    data = views.dashboard_data(filled_log.aggregate())
    paths = dashboard.export_charts(data, tmp_path / "export")
    assert set(paths) == set(dashboard.CHART_FRAMES)
    days = paths["days"].read_text(encoding="utf-8").splitlines()
    assert days == ["day,mean score,evaluations", "2025-03-01,7.25,2", "2025-03-02,4.5,2"]
    categories = paths["categories"].read_text(encoding="utf-8").splitlines()
    assert categories[0] == "category,mean score,evaluations" and categories[-1] == "Uncategorised,7.0,1"
    frame = views.category_frame({"categories": {"=HYPERLINK(1)": {"mean_score": 5.0, "count": 1}}})
    assert dashboard.chart_csv(frame).splitlines()[1] == "'=HYPERLINK(1),5.0,1"  # a spreadsheet shows it as text


def test_one_day_is_drawn_as_points_not_an_empty_line(tmp_path: Path) -> None:
    log = EvalLog(tmp_path / "log.jsonl")
    log.append(_evaluation("2025-03-01T09:00:00.000Z", score=6.0, category="Statistics"))
    days = views.days_frame(views.dashboard_data(log.aggregate()))
    assert len(days) == 1 and not views.days_as_line(days)
    log.append(_evaluation("2025-03-02T09:00:00.000Z", score=8.0, category="Statistics"))
    assert views.days_as_line(views.days_frame(views.dashboard_data(log.aggregate())))


def test_an_empty_log_with_one_damaged_line_says_so_in_the_singular(tmp_path: Path) -> None:
    (tmp_path / "log.jsonl").write_bytes(b'{"kind": "evaluation", "id": "cut-sho\n')
    headline = views.dashboard_headline(views.dashboard_data(EvalLog(tmp_path / "log.jsonl").aggregate()))
    assert headline == views.NO_EVALUATIONS + "\n\n⚠️ 1 damaged log line was skipped."

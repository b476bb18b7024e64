"""The agreement command: a judge's scores measured against human grades, with bootstrap intervals, resumable."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from evaluator import cli
from evaluator.agreement import HumanGrades, measure_agreement, parse_human_file
from evaluator.batch_io import BatchItem, ResultRow
from evaluator.config import Settings
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer

KEY = "test-agreement-key-0123456789"


def graded(scores: dict[str, float], questions: int = 6) -> list[ResultRow]:
    """Result rows (as run_batch returns them) for keys ``k0..``, spread over ``questions`` questions."""
    return [
        ResultRow.from_dict(
            {"key": key, "status": "ok", "score": s, "question": f"q{i % questions}", "judge_backend": "offline"}
        )
        for i, (key, s) in enumerate(scores.items())
    ]


def human(values: list[float]) -> HumanGrades:
    items = [BatchItem(key=f"k{i}", line=i + 1, question="q", reference="r", answer="a") for i in range(len(values))]
    return HumanGrades(items=items, human={f"k{i}": v for i, v in enumerate(values)}, errors=[])


def test_a_judge_that_matches_the_humans_agrees_perfectly_and_a_reversed_one_does_not() -> None:
    humans = [0.0, 2.0, 5.0, 6.0, 8.0, 10.0] * 5
    same = measure_agreement(graded({f"k{i}": h for i, h in enumerate(humans)}), human(humans), resamples=200)
    for name in ("pearson", "spearman", "qwk", "accuracy", "accuracy_2way"):
        assert same.figures[name].value == pytest.approx(1.0), name
        assert same.figures[name].low == pytest.approx(1.0), name
    assert same.confusion == [[10, 0, 0], [0, 10, 0], [0, 0, 10]]
    assert same.resampled == "questions" and same.questions == 6

    reversed_ = measure_agreement(graded({f"k{i}": 10 - h for i, h in enumerate(humans)}), human(humans))
    assert reversed_.figures["pearson"].value == pytest.approx(-1.0)
    assert reversed_.figures["qwk"].value < 0
    assert reversed_.confusion[0] == [0, 0, 10]  # every human "incorrect" the judge called correct


def test_intervals_contain_the_estimate_and_narrow_with_more_questions() -> None:
    humans = [0.0, 10.0, 5.0, 10.0, 0.0, 10.0, 5.0, 0.0] * 6
    noisy = [h + (3 if i % 3 == 0 else -2) for i, h in enumerate(humans)]
    few = measure_agreement(graded({f"k{i}": s for i, s in enumerate(noisy)}, questions=6), human(humans))
    many = measure_agreement(graded({f"k{i}": s for i, s in enumerate(noisy)}, questions=48), human(humans))
    for report in (few, many):
        for estimate in report.figures.values():
            assert estimate.low <= estimate.value <= estimate.high
    few_width, many_width = (r.figures["pearson"].high - r.figures["pearson"].low for r in (few, many))
    assert many_width < few_width


@pytest.mark.parametrize("questions", [6, 2])  # by question, and by answer when there are too few questions
def test_the_same_grades_in_another_order_give_the_same_intervals(questions: int) -> None:
    humans = [0.0, 10.0, 5.0, 10.0, 0.0, 10.0, 5.0, 0.0] * 3
    rows = graded({f"k{i}": h + (3 if i % 3 == 0 else -2) for i, h in enumerate(humans)}, questions=questions)
    forward = measure_agreement(rows, human(humans), resamples=200).to_dict()
    assert measure_agreement(rows[::-1], human(humans), resamples=200).to_dict() == forward


def test_failed_items_are_left_out_and_counted() -> None:
    rows = graded({"k0": 9.0, "k1": 1.0, "k2": 8.0})
    rows[2] = replace(rows[2], status="error", score=None)
    report = measure_agreement(rows, human([10.0, 0.0, 10.0]))
    assert report.n == 2 and report.failed == 1 and report.resampled == "answers"
    assert "1 not graded" in report.text()


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_human_grades_come_from_a_score_on_its_scale_or_a_label(settings: Settings, tmp_path: Path) -> None:
    rows = [
        {"question_id": "X_1", "question": "Why?", "reference": "Because.", "answer": "Because.", "human_score": "5"},
        {"question_id": "X_1", "question": "Why?", "reference": "Because.", "answer": "Hm.", "human_score": "2.5"},
        {"question_id": "X_2", "question": "How?", "reference": "So.", "answer": "Like so.", "label": "contradictory"},
        {"question_id": "stat-001", "question": "", "reference": "", "answer": "Mean.", "label": "partially correct"},
        {"question_id": "X_2", "question": "How?", "reference": "So.", "answer": "x", "human_score": "7"},
        {"question_id": "X_2", "question": "How?", "reference": "So.", "answer": "y", "label": "great"},
        {"question_id": "X_2", "question": "How?", "reference": "So.", "answer": "z"},
    ]
    grades = parse_human_file(write_csv(tmp_path / "h.csv", rows), evaluator=Evaluator(settings))
    assert [grades.human[i.key] for i in grades.items] == [10.0, 5.0, 0.0, 5.0]
    # A row with its own question and reference is graded on them, even with an id the dataset lacks.
    assert grades.items[0].question == "Why?" and grades.items[3].question_id == "stat-001"
    assert [e.split(":")[0] for e in grades.errors] == ["line 6", "line 7", "line 8"]
    assert "outside 0-5" in grades.errors[0] and "'great'" in grades.errors[1] and "no human grade" in grades.errors[2]


def test_cli_agreement_grades_resumes_and_reports(
    settings: Settings,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOG_PATH", str(settings.log_path))
    monkeypatch.setenv("CACHE_PATH", str(tmp_path / "cache.sqlite"))
    rows = [
        {
            "id": f"r{i}",
            "question_id": f"Q{i % 6}",
            "question": f"What does the {i % 6}th law state?",
            "reference": "Energy is conserved in a closed system and cannot be created or destroyed.",
            "answer": f"{answer} (student {i})",
            "human_score": str(score),
        }
        for i, (answer, score) in enumerate(
            [
                ("Energy is conserved in a closed system; it cannot be created or destroyed.", 5),
                ("Energy is created by motion.", 0),
                ("Energy is conserved.", 3),
            ]
            * 6
        )
    ]
    source = write_csv(tmp_path / "human.csv", rows)
    out = tmp_path / "graded.jsonl"

    # The offline default is not used: --judge openai needs a key.
    assert cli.main(["agreement", str(source), "--judge", "openai", "-o", str(out)]) == 2
    assert "needs OPENAI_API_KEY" in capsys.readouterr().err

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    args = ["agreement", str(source), "--judge", "openai", "-o", str(out), "-q", "--resamples", "200"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "openai judge" in text and "18 answers to 6 questions" in text
    assert "Pearson r" in text and "Quadratic weighted kappa" in text and "human correct" in text
    assert len(openai_server.requests) == 18
    assert {json.loads(line)["key"] for line in out.read_text().splitlines()} == {f"r{i}" for i in range(18)}

    # Run again: nothing is graded twice, the same figures come back as JSON.
    assert cli.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(openai_server.requests) == 18
    assert report["n"] == 18 and report["judge_backend"] == "openai"
    assert report["pearson"]["ci95"][0] <= report["pearson"]["value"] <= report["pearson"]["ci95"][1]
    assert sum(map(sum, report["confusion"]["matrix"])) == 18

    # Those graded rows are the OpenAI judge's: another judge may not resume into them.
    assert cli.main(["agreement", str(source), "--judge", "offline", "-o", str(out), "-q"]) == 2
    assert "holds grades by the openai judge" in capsys.readouterr().err

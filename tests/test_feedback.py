"""Feedback on graded answers: validation, sentiment, the log, recent feedback, health and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evaluator.cli import main
from evaluator.config import Settings
from evaluator.errors import InputError, NotFoundError
from evaluator.log import EvalLog
from evaluator.models import EvaluationRecord, Grade, JudgeResult
from evaluator.sentiment import SentimentAnalyzer
from evaluator.service import Evaluator

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "Q&A_db_practice.json"


def graded(score: float = 3.0) -> EvaluationRecord:
    """An evaluation record as the offline judge would log it."""
    grade = Grade(
        score=score,
        verdict="incorrect" if score < 4 else "correct",
        criteria={"correctness": 2, "completeness": 2, "relevance": 3, "clarity": 3},
        feedback="The answer misses the bias-variance trade-off.",
    )
    result = JudgeResult(status="ok", backend="offline", model="all-MiniLM-L6-v2", prompt_version="v1", grade=grade)
    return EvaluationRecord(
        question_id="q1",
        question="What is overfitting?",
        reference="Fitting noise.",
        answer="Too many epochs.",
        result=result,
    )


@pytest.fixture
def evaluator(settings: Settings, tmp_path: Path) -> Evaluator:
    """An evaluator whose sentiment model cannot load here, so VADER reads the comments."""
    return Evaluator(settings, sentiment=SentimentAnalyzer(str(tmp_path / "no-sentiment-model")))


@pytest.fixture
def evaluation_id(evaluator: Evaluator) -> str:
    """The id of an evaluation already in the log."""
    record = graded()
    evaluator.record(record)
    return record.id


def test_feedback_is_logged_with_sentiment_and_refers_to_the_evaluation(
    evaluator: Evaluator, evaluation_id: str
) -> None:
    comment = "This grade is wrong and the feedback is useless. Write to me at jane.doe@example.com"
    feedback = evaluator.submit_feedback(evaluation_id, agree=False, rating=2, comment=comment)

    assert feedback.evaluation_id == evaluation_id
    assert (feedback.sentiment.label, feedback.sentiment.backend) == ("negative", "vader")
    assert "jane.doe@example.com" not in feedback.comment  # scrubbed before it reaches the log
    logged = evaluator.log.records(kind="feedback")
    assert len(logged) == 1
    assert logged[0] == {**feedback.to_dict(), "kind": "feedback"}
    assert (logged[0]["evaluation_id"], logged[0]["agree"], logged[0]["rating"]) == (evaluation_id, False, 2)
    assert logged[0]["sentiment_label"] == "negative"


def test_comment_alone_is_enough_and_is_stripped(evaluator: Evaluator, evaluation_id: str) -> None:
    feedback = evaluator.submit_feedback(evaluation_id, comment="  Thanks, fair grade and really helpful!  ")
    assert feedback.comment == "Thanks, fair grade and really helpful!"
    assert (feedback.agree, feedback.rating, feedback.sentiment.label) == (None, None, "positive")


@pytest.mark.parametrize(
    ("evaluation", "kwargs", "error", "message"),
    [
        ("unknown", {"comment": "wrong grade"}, NotFoundError, "no evaluation with id 'no-such-id'"),
        ("known", {"comment": ""}, InputError, "comment is empty"),
        ("known", {"comment": "   \n "}, InputError, "comment is empty"),
        ("known", {"comment": "x" * 51}, InputError, "51 characters long; the limit is 50"),
        ("known", {"comment": "ok", "rating": 0}, InputError, "from 1 to 5, got 0"),
        ("known", {"comment": "ok", "rating": 6}, InputError, "from 1 to 5, got 6"),
        ("known", {"comment": "ok", "agree": "yes"}, InputError, "agree must be"),
        ("empty", {"comment": "ok"}, InputError, "id of the evaluation"),
    ],
)
def test_bad_feedback_is_rejected_and_nothing_is_logged(
    settings: Settings, tmp_path: Path, evaluation: str, kwargs: dict, error: type[Exception], message: str
) -> None:
    settings = dataclasses.replace(settings, max_comment_chars=50)
    evaluator = Evaluator(settings, sentiment=SentimentAnalyzer(str(tmp_path / "no-sentiment-model")))
    record = graded()
    evaluator.record(record)
    target = {"known": record.id, "unknown": "no-such-id", "empty": " "}[evaluation]

    with pytest.raises(error, match=message):
        evaluator.submit_feedback(target, **kwargs)
    assert evaluator.log.records(kind="feedback") == []


def test_feedback_cannot_refer_to_another_feedback(evaluator: Evaluator, evaluation_id: str) -> None:
    feedback = evaluator.submit_feedback(evaluation_id, comment="fine")
    with pytest.raises(NotFoundError):
        evaluator.submit_feedback(feedback.id, comment="replying to feedback")
    assert len(evaluator.log.records(kind="feedback")) == 1


def test_recent_feedback_is_newest_first_with_sentiment_and_the_grade(evaluator: Evaluator) -> None:
    first, second = graded(score=3.0), graded(score=9.0)
    evaluator.record(first)
    evaluator.record(second)
    comments = ["wrong grade, unfair", "great feedback, thanks!", "I answered from memory.", "useless explanation"]
    for i, comment in enumerate(comments):
        evaluator.submit_feedback((first if i % 2 == 0 else second).id, comment=comment)

    recent = evaluator.recent_feedback(limit=3)

    assert [r["comment"] for r in recent] == comments[::-1][:3]
    assert [r["sentiment_label"] for r in recent] == ["negative", "neutral", "positive"]
    assert [r["score"] for r in recent] == [9.0, 3.0, 9.0]
    assert all(r["question"] == "What is overfitting?" and r["sentiment_backend"] == "vader" for r in recent)
    assert len(evaluator.recent_feedback()) == 4
    assert evaluator.recent_feedback(limit=0) == []


def test_feedback_reads_back_from_the_log_as_it_was_written(evaluator: Evaluator, evaluation_id: str) -> None:
    written = evaluator.submit_feedback(evaluation_id, agree=False, rating=2, comment="unfair grade")

    assert evaluator.log.feedback() == [written]


def test_recent_feedback_on_an_evaluation_missing_from_the_log_shows_no_grade(evaluator: Evaluator) -> None:
    # A replica's feedback can arrive before (or without) the evaluation it is about.
    evaluator.log.append({"kind": "feedback", "id": "f1", "evaluation_id": "gone", "comment": "ok", "rating": 4})

    [recent] = evaluator.recent_feedback()

    assert recent["id"] == "f1" and recent["rating"] == 4 and recent["comment"] == "ok"
    assert recent["question"] is None and recent["score"] is None and recent["verdict"] is None


def test_health_reports_the_sentiment_backend_without_loading_it(evaluator: Evaluator, evaluation_id: str) -> None:
    name = evaluator.sentiment.model_name
    assert evaluator.health()["sentiment_backend"] == f"not loaded yet ({name})"
    assert evaluator.sentiment.loaded_backend is None  # health did not load the model
    evaluator.submit_feedback(evaluation_id, comment="thanks")
    assert evaluator.health()["sentiment_backend"] == "vader"


def test_cli_feedback_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "cli-log.jsonl"
    monkeypatch.setenv("LOG_PATH", str(log_path))
    monkeypatch.setenv("DATA_PATH", str(DATA_PATH))
    monkeypatch.setenv("JUDGE_BACKEND", "offline")
    monkeypatch.setenv("SENTIMENT_MODEL_NAME", str(tmp_path / "no-sentiment-model"))
    answer = "The median is the middle value; it is preferred when there are outliers."
    assert main(["evaluate", "--question-id", "stat-001", "--answer", answer, "--json"]) == 0
    evaluation_id = json.loads(capsys.readouterr().out)["id"]

    argv = ["feedback", "--evaluation-id", evaluation_id, "--disagree", "--rating", "1"]
    assert main([*argv, "--comment", "Terrible grade, the judge ignored my answer.", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["evaluation_id"], printed["agree"], printed["rating"]) == (evaluation_id, False, 1)
    assert (printed["sentiment_label"], printed["sentiment_backend"]) == ("negative", "vader")
    assert EvalLog(log_path).records(kind="feedback") == [printed]

    assert main(["feedback", "--evaluation-id", evaluation_id, "--agree", "--comment", "Fair, thanks!"]) == 0
    assert "Sentiment: positive" in capsys.readouterr().out
    assert EvalLog(log_path).records(kind="feedback")[-1]["agree"] is True

    assert main([*argv[:3], "--rating", "9", "--comment", "hmm"]) == 2
    assert "from 1 to 5" in capsys.readouterr().err
    assert main(["feedback", "--evaluation-id", "nope", "--comment", "hmm"]) == 2
    assert "no evaluation with id 'nope'" in capsys.readouterr().err
    assert len(EvalLog(log_path).records(kind="feedback")) == 2
    with pytest.raises(SystemExit):
        main([*argv[:3], "--agree", "--disagree", "--comment", "both"])

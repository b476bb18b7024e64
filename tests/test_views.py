"""What the app displays: records turned into Markdown and table rows."""

from __future__ import annotations

from evaluator import views
from evaluator.config import Settings
from evaluator.dataset import QAItem
from evaluator.models import EvaluationRecord, Grade, JudgeResult, Usage

ITEM = QAItem(id="q1", question="What is a median?", reference="The middle value.", category="Stats")


def _record(result: JudgeResult) -> EvaluationRecord:
    return EvaluationRecord(
        question_id="q1", question=ITEM.question, reference=ITEM.reference, answer="The middle.", result=result
    )


def test_grade_shows_score_criteria_feedback_missed_points_reference_and_id() -> None:
    grade = Grade(
        score=6.5,
        verdict="partially correct",
        criteria={"correctness": 4, "completeness": 3, "relevance": 5, "clarity": 4},
        feedback="Mostly right.",
        missed_points=["sorted | order"],
    )
    result = JudgeResult("ok", "openai", "gpt-4o-mini", "v1", grade=grade, usage=Usage(100, 20, 0.00003))
    record = _record(result)
    text = views.grade_markdown(record)
    assert "6.5/10 — partially correct" in text
    assert "completeness **3**/5" in text and "clarity **4**/5" in text
    assert "Mostly right." in text
    assert "sorted \\| order" in text  # a pipe cannot break the Markdown
    assert "The middle value." in text
    assert record.id in text and "120 tokens" in text and "$0.000030" in text


def test_a_failed_grading_says_so_instead_of_a_score() -> None:
    record = _record(JudgeResult("error", "openai", "gpt-4o-mini", "v1", error="timed out after 30 s."))
    text = views.grade_markdown(record)
    assert "could not grade" in text and "timed out after 30 s" in text
    assert "/10" not in text


def test_judge_label_names_the_model_and_host_never_the_key_or_url_credentials() -> None:
    settings = Settings(
        openai_api_key="sk-secret-value",
        openai_base_url="https://user:pw@llm.example.com/v1",
        master_model_name="gpt-4o",
    )
    label = views.judge_label(settings)
    assert "gpt-4o" in label and "llm.example.com" in label
    assert "sk-secret-value" not in label and "pw" not in label
    assert "offline" in views.judge_label(Settings(judge_backend="offline"))


def test_for_client_renames_path_keys_so_gradio_client_does_not_download_them() -> None:
    health = {"log": {"path": "/data/log.jsonl", "hub": None}, "items": [{"path": "x"}], "n": 3}
    assert views.for_client(health) == {
        "log": {"file": "/data/log.jsonl", "hub": None},
        "items": [{"file": "x"}],
        "n": 3,
    }


def test_dataset_table_is_capped_and_says_so() -> None:
    items = [QAItem(id=f"q{n}", question="Q?", reference="R.") for n in range(views.MAX_TABLE_ROWS + 5)]
    assert len(views.dataset_rows(items)) == views.MAX_TABLE_ROWS
    assert "showing the first" in views.match_count(len(items), len(items))
    assert "showing" not in views.match_count(3, 10)


def test_history_lists_the_last_grades() -> None:
    history = {
        "count": 2,
        "graded": 1,
        "mean_score": 7.0,
        "last": [
            {"timestamp": "2026-01-02T10:00:00.000Z", "status": "ok", "score": 7.0, "verdict": "correct",
             "judge_backend": "offline", "answer": "The middle."},
            {"timestamp": "2026-01-01T10:00:00.000Z", "status": "error", "score": None, "verdict": None,
             "judge_backend": "openai", "answer": "Dunno"},
        ],
    }  # fmt: skip
    text = views.item_markdown(ITEM, history)
    assert "2 evaluation(s), 1 graded, mean score **7.0**/10" in text
    assert "| 2026-01-02 10:00:00 | 7.0 | correct | offline | The middle. |" in text
    assert "| error |" in text
    assert "not evaluated yet" in views.item_markdown(ITEM, {"count": 0})


def test_feedback_rows_show_grade_stance_rating_and_sentiment() -> None:
    rows = views.feedback_rows(
        [
            {
                "timestamp": "2026-01-02T10:00:00.000Z",
                "evaluation_id": "abcdef1234567890",
                "score": 8.0,
                "verdict": "correct",
                "agree": False,
                "rating": 2,
                "sentiment_label": "negative",
                "sentiment_score": 0.91,
                "comment": "Too generous.",
                "question": "What is a median?",
            }
        ]
    )
    assert rows == [
        [
            "2026-01-02 10:00:00",
            "abcdef123456",
            "8.0 correct",
            "disagree",
            2,
            "negative (0.91)",
            "Too generous.",
            "What is a median?",
        ]
    ]

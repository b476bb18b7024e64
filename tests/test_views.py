"""What the app displays: records turned into Markdown and table rows."""

from __future__ import annotations

from evaluator import views
from evaluator.batch_io import ResultRow
from evaluator.config import Settings
from evaluator.dataset import Dataset, QAItem
from evaluator.models import EvaluationRecord, FeedbackRecord, Grade, JudgeResult, Sentiment, Usage
from evaluator.offline_checks import Finding
from evaluator.offline_judge import OfflineJudge, Signals
from evaluator.text import plural

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
    assert "2 evaluations, 1 graded, mean score **7.0**/10" in text
    assert "| 2026-01-02 10:00:00 | 7.0 | correct | offline | The middle. |" in text
    assert "| error |" in text
    assert "not evaluated yet" in views.item_markdown(ITEM, {"count": 0})


def test_feedback_rows_show_grade_stance_rating_and_sentiment() -> None:
    feedback = FeedbackRecord(
        evaluation_id="abcdef1234567890",
        comment="Too generous.",
        sentiment=Sentiment("negative", 0.91, "vader"),
        agree=False,
        rating=2,
        timestamp="2026-01-02T10:00:00.000Z",
    )
    grade = Grade(score=8.0, verdict="correct", criteria={}, feedback="")
    graded = _record(JudgeResult("ok", "openai", "gpt-4o-mini", "v1", grade=grade))
    rows = views.feedback_rows([(feedback, graded), (feedback, None)])
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
        ],
        ["2026-01-02 10:00:00", "abcdef123456", "", "disagree", 2, "negative (0.91)", "Too generous.", ""],
    ]


# -- batch results ------------------------------------------------------------------------------------
def _offline_feedback(missed: list[str], findings: list[Finding]) -> str:
    """The feedback the offline judge writes (its own code), for answers with these missed points and findings."""
    signals = Signals(
        semantic_cosine=0.8,
        question_cosine=0.4,
        semantic=0.7,
        overlap=0.5,
        coverage_recall=0.6,
        coverage_precision=0.6,
        coverage=0.6,
        novel_terms=5,
        clause_coverage=(),
        directives_removed=False,
    )
    return OfflineJudge._feedback(signals, missed, findings, nothing=False)


def _row(**kw: object) -> ResultRow:
    base = {"line": 3, "question_id": "q1", "status": "ok", "score": 5.0, "verdict": "partially correct"}
    return ResultRow.from_dict({**base, "answer": "The middle.", "judge_backend": "offline", **kw})


def test_the_reason_column_shows_what_differs_per_item_not_the_judges_boilerplate() -> None:
    missed = ["It is robust to outliers."]
    row = _row(feedback=_offline_feedback(missed, []), missed_points=missed)
    assert views.feedback_gist(row) == "Missed: It is robust to outliers."
    capped = Finding("contradiction", "The answer contradicts the reference on 'middle'")
    row = _row(feedback=_offline_feedback([], [capped]), missed_points=[])
    assert views.feedback_gist(row) == "The answer contradicts the reference on 'middle' (score capped at 3)."
    row = _row(feedback=_offline_feedback([], []), missed_points=[])
    assert views.feedback_gist(row) == "Every point of the reference finds a match in the answer."
    legacy = (  # what the offline judge wrote before the current wording: logs and results files still hold it
        "Offline similarity estimate (all-MiniLM-L6-v2, no LLM read this answer). "
        "Meaning agreement with the reference is high (cosine 0.81)."
    )
    assert views.feedback_gist(_row(feedback=legacy, missed_points=["a", "b"])) == "Missed: a; b"
    llm = _row(judge_backend="openai", feedback="Right idea, but no mention of ties. Add that.", missed_points=["ties"])
    assert views.feedback_gist(llm) == "Right idea, but no mention of ties. Missed: ties"
    failed = _row(status="error", score=None, error="candidate model: 503 from the server")
    assert views.feedback_gist(failed) == "candidate model: 503 from the server"
    table = views.batch_rows([row, failed])
    assert [r[-1] for r in table] == ["Every point of the reference finds a match in the answer.", failed.error]
    assert len(views.BATCH_HEADERS) == len(table[0])


def test_a_result_row_opens_in_full() -> None:
    row = _row(
        category="Stats",
        question="What is a median?",
        reference="The middle value.",
        candidate_model="local:smollm2",
        criteria={"correctness": 3, "completeness": 2, "relevance": 5, "clarity": 4},
        feedback="Half of it | more.",
        missed_points=["sorted order"],
        confidence=0.42,
        caveat="No LLM read this answer.",
        tokens=0,
        cost_usd=0.0,
        latency_ms=12.4,
        judge_model="all-MiniLM-L6-v2",
        evaluation_id="e123",
        batch_id="app-1",
    )
    text = views.batch_row_markdown(row)
    for part in (
        "### Line 3 · q1 · Stats",
        "**5.0/10 — partially correct** · confidence 42%",
        "completeness **2**/5",
        "**Question:** What is a median?",
        "**Reference answer:** The middle value.",
        "**Answer (by `local:smollm2`):** The middle.",
        "**Feedback:** Half of it | more.",
        "- sorted order",
        "No LLM read this answer.",
        "12 ms",
        "evaluation id `e123` · run `app-1`",
    ):
        assert part in text, part
    failed = views.batch_row_markdown(_row(status="error", score=None, error="timed out"))
    assert "**Not graded:** timed out" in failed and "/10" not in failed


def test_counts_and_nouns_agree() -> None:
    assert [plural(n, "category") for n in (0, 1, 2)] == ["0 categories", "1 category", "2 categories"]
    assert (plural(1, "item"), plural(3, "item"), plural(2, "day")) == ("1 item", "3 items", "2 days")
    assert views.match_count(1, 1) == "1 of 1 question matches."
    assert views.match_count(2, 5) == "2 of 5 questions match."
    one = Dataset([ITEM], name="mine")
    assert views.dataset_summary(one, session=True).endswith(": 1 question in 1 category.")
    assert "**1 malformed row skipped:**" in views.batch_summary_markdown("text", ["line 2: bad"])

"""The offline judge on hand-written probes for the shipped questions: wrong answers in the reference's own words
(negated, roles swapped, misconceptions, keyword lists), off-topic answers, correct paraphrases, partial answers.

Two files: the probes written together with the checks, and six sets written blind to them (each by someone
who had not seen the checks; the sixth for questions of the first two, the others for questions no other set
uses). A blind probe the judge gets wrong is recorded in the file with why (``known_miss``); every other one must
be graded right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator import views
from evaluator.batch import run_batch
from evaluator.batch_io import RESULT_FIELDS, parse_batch
from evaluator.config import Settings
from evaluator.dataset import load_dataset
from evaluator.models import GradeRequest, JudgeResult
from evaluator.offline_checks import not_english
from evaluator.offline_judge import CAVEAT, NOT_ENGLISH, OfflineJudge
from evaluator.service import Evaluator

from .conftest import DATA_PATH

PROBES = Path(__file__).resolve().parent / "data" / "offline_probes.jsonl"
BLIND = Path(__file__).resolve().parent / "data" / "offline_probes_blind.jsonl"
WRONG = ("negation", "swap", "misconception", "keyword_list", "off_topic")


def load_probes(path: Path = PROBES) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def grade_probes(probes: list[dict]) -> list[tuple[dict, JudgeResult]]:
    items = {q.id: q for q in load_dataset(DATA_PATH).items}
    requests = [
        GradeRequest(items[p["question_id"]].question, items[p["question_id"]].reference, p["answer"]) for p in probes
    ]
    return list(zip(probes, OfflineJudge().grade_many(requests), strict=True))


@pytest.fixture(scope="module")
def graded() -> list[tuple[dict, JudgeResult]]:
    return grade_probes(load_probes())


def test_the_probe_set_covers_every_kind_for_the_shipped_questions() -> None:
    probes = load_probes()
    kinds = {p["kind"] for p in probes}
    assert len(probes) >= 100 and kinds == {*WRONG, "paraphrase", "partial"}
    assert {p["question_id"] for p in probes} <= {q.id for q in load_dataset(DATA_PATH).items}


def test_blind_probes_are_graded_right_but_for_the_recorded_misses() -> None:
    probes = load_probes(BLIND)
    assert len(probes) >= 500 and {p["kind"] for p in probes} == {*WRONG, "paraphrase", "partial"}
    assert not {p["question_id"] for p in probes} & {p["question_id"] for p in load_probes()}
    wrong = []
    for probe, result in grade_probes([p for p in probes if "known_miss" not in p]):
        grade = result.grade
        if (probe["kind"] in WRONG and grade.verdict == "correct") or (
            probe["kind"] == "paraphrase" and grade.score < 5
        ):
            wrong.append((probe["id"], probe["kind"], grade.score))
    assert wrong == []


@pytest.mark.parametrize("kind", WRONG)
def test_no_wrong_answer_is_graded_correct(graded: list[tuple[dict, JudgeResult]], kind: str) -> None:
    wrong = [(p["id"], r.grade.score) for p, r in graded if p["kind"] == kind and r.grade.verdict == "correct"]
    assert wrong == []


def test_correct_paraphrases_get_at_least_partial_credit(graded: list[tuple[dict, JudgeResult]]) -> None:
    low = [(p["id"], r.grade.score) for p, r in graded if p["kind"] == "paraphrase" and r.grade.score < 5]
    assert low == []


def test_partial_answers_are_not_graded_correct(graded: list[tuple[dict, JudgeResult]]) -> None:
    full = [(p["id"], r.grade.score) for p, r in graded if p["kind"] == "partial" and r.grade.verdict == "correct"]
    assert full == []


def test_findings_are_named_in_the_feedback_and_the_caveat_is_a_field(graded: list[tuple[dict, JudgeResult]]) -> None:
    for probe, result in graded:
        grade = result.grade
        assert grade.caveat == CAVEAT and "no LLM read" not in grade.feedback
        assert 0 <= grade.confidence <= 1
        if probe["kind"] in ("negation", "swap") and grade.score <= 3:
            assert "capped" in grade.feedback or grade.confidence < 0.25, probe["id"]
    by_id = {p["id"]: r.grade for p, r in graded}
    negated_stat_001 = next(p["id"] for p, _ in graded if p["question_id"] == "stat-001" and p["kind"] == "negation")
    assert "says the opposite of the reference" in by_id[negated_stat_001].feedback


def test_paraphrases_are_reported_missing_fewer_points_than_partial_answers(
    graded: list[tuple[dict, JudgeResult]],
) -> None:
    def missed_per_answer(kind: str) -> float:
        grades = [r.grade for p, r in graded if p["kind"] == kind]
        return sum(len(g.missed_points) for g in grades) / len(grades)

    # A point made in other words is mostly not reported missing; a partial answer's gaps are.
    assert missed_per_answer("paraphrase") <= 1.0
    assert missed_per_answer("partial") >= 2 * missed_per_answer("paraphrase")


def test_an_answer_in_another_language_gets_a_clear_message_not_a_grade() -> None:
    item = load_dataset(DATA_PATH).get("stat-001")
    french = (
        "La moyenne est la somme des valeurs divisée par leur nombre, et la médiane est la valeur du milieu "
        "des données triées. On préfère la médiane quand il y a des valeurs extrêmes."
    )
    [result] = OfflineJudge().grade_many([GradeRequest(item.question, item.reference, french)])
    assert result.status == "error" and result.grade is None and not result.retryable
    assert result.error == NOT_ENGLISH and "OpenAI judge" in result.error


def test_english_answers_with_foreign_looking_words_are_graded() -> None:
    for answer in (
        "The mean is the average; the median, a la carte, is the middle value of the sorted data.",
        "Use pandas .loc for labels and .iloc for integer positions, e.g. df.loc['a'] or df.iloc[0].",
        "k-NN predicts by majority vote of the k nearest neighbours (Euclidean distance).",
    ):
        assert not not_english(answer), answer
    for answer in (
        "La moyenne est la valeur centrale des données et la médiane aussi.",
        "平均値はすべての値の合計をその個数で割ったものです。",
    ):
        assert not_english(answer), answer


def test_a_batch_records_an_answer_it_cannot_read_once_without_retrying(settings: Settings, tmp_path: Path) -> None:
    class CountingJudge(OfflineJudge):
        regrades = 0

        async def agrade(self, request: GradeRequest) -> JudgeResult:
            CountingJudge.regrades += 1
            return await super().agrade(request)

    evaluator = Evaluator(settings, judge=CountingJudge())
    french = "La moyenne est la somme des valeurs divisée par leur nombre, la médiane est la valeur du milieu."
    rows = [{"id": f"fr{i}", "question_id": "stat-001", "answer": french + " " * i} for i in range(4)]
    rows.append({"id": "en", "question_id": "stat-001", "answer": "The median is the middle value of sorted data."})
    source = tmp_path / "answers.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_batch(evaluator, parse_batch(source, evaluator=evaluator).items, output=tmp_path / "out.jsonl")
    assert CountingJudge.regrades == 0  # no retry of an answer that no retry can grade
    assert summary.failed == 4 and summary.ok == 1  # and no "judge is down" breaker for the English one
    assert {r.error for r in summary.rows if r.status == "error"} == {NOT_ENGLISH}


def test_confidence_and_caveat_are_shown_beside_the_score_in_every_output(settings: Settings) -> None:
    record = Evaluator(settings).evaluate("The median is the middle value of sorted data.", question_id="stat-001")
    grade = record.result.grade
    data = record.to_dict()
    assert data["confidence"] == grade.confidence and data["caveat"] == CAVEAT
    heading, caveat_line = views.grade_markdown(record).splitlines()[:2]
    assert heading.endswith(f"· confidence {grade.confidence:.0%}") and CAVEAT in caveat_line
    assert set(RESULT_FIELDS) >= {"confidence", "caveat"}

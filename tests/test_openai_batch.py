"""OpenAI Batch API path: submit -> status -> ingest through the real openai client against the local server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evaluator import cli
from evaluator.batch import record_id
from evaluator.batch_io import parse_batch, read_results
from evaluator.config import Settings
from evaluator.errors import InputError, JudgeError
from evaluator.models import GradeRequest
from evaluator.openai_batch import BatchJob, ingest, openai_judge, requests_path, state_path, submit, wait
from evaluator.pricing import cost_usd
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer, error_body, grade_from_overlap

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-openai-batch-0123456789abcdef"


def batch_evaluator(settings: Settings, server: FakeOpenAIServer) -> Evaluator:
    """An evaluator whose OpenAI judge (and so the Batch API client) talks to ``server``."""
    url = server.base_url
    return Evaluator(dataclasses.replace(settings, judge_backend="auto", openai_api_key=KEY, openai_base_url=url))


def write_answers(path: Path, evaluator: Evaluator, n: int, *, extra: list[dict] | None = None) -> Path:
    """A JSONL file of ``n`` answers to dataset questions (with ids), plus ``extra`` rows."""
    rows = [
        {"id": f"a{i}", "question_id": item.id, "answer": f"{item.reference[:80]} (answer {i})"}
        for i, item in enumerate(evaluator.dataset.items[:n])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + (extra or [])), encoding="utf-8")
    return path


def batch_records(evaluator: Evaluator, job_id: str) -> list[dict]:
    """Every line of the log files with this batch id, as written (the reader would hide repeated ids)."""
    lines = [line for path in evaluator.log.files() if path.is_file() for line in path.read_text().splitlines()]
    return [r for r in map(json.loads, lines) if r.get("batch_id") == job_id]


def test_round_trip_logs_every_item_once_at_half_price(settings: Settings, tmp_path: Path) -> None:
    with FakeOpenAIServer(batch_polls=2) as server:
        evaluator = batch_evaluator(settings, server)
        free_form = {"id": "f1", "question": "Who wrote to us?", "reference": "Ann", "answer": "Ann, ann@example.com"}
        source = write_answers(tmp_path / "answers.jsonl", evaluator, 3, extra=[free_form])
        out = tmp_path / "graded.csv"
        items = parse_batch(source, evaluator=evaluator).items

        job = submit(evaluator, items, out)

        assert job is not None and job.submitted == ["a0", "a1", "a2", "f1"]
        # The request file: one Batch API line per item, the judge's own request body, PII scrubbed.
        lines = [json.loads(x) for x in requests_path(out).read_text(encoding="utf-8").splitlines()]
        judge = openai_judge(evaluator)
        for line, item in zip(lines, job.items, strict=True):
            request = GradeRequest(question=item.question, reference=item.reference, answer=item.answer or "")
            assert line == {"custom_id": item.key, "method": "POST", "url": "/v1/chat/completions",
                            "body": judge.request_body(request)}  # fmt: skip
        assert "ann@example.com" not in requests_path(out).read_text(encoding="utf-8")
        assert server.files[job.input_file_id]["content"] == requests_path(out).read_bytes()
        assert server.files[job.input_file_id]["purpose"] == "batch"
        assert server.requests == []  # nothing went through interactive chat completions

        with pytest.raises(InputError, match="in_progress"):
            ingest(evaluator, out)
        assert wait(evaluator, job, interval=0.01).status == "completed"
        summary = ingest(evaluator, out)

        assert (summary.n, summary.ok, summary.failed) == (4, 4, 0)
        records = batch_records(evaluator, job.job_id)
        assert sorted(r["id"] for r in records) == sorted(record_id(job.job_id, k) for k in job.submitted)
        for rec in records:
            assert rec["score"] == grade_from_overlap(rec["question"], rec["reference"], rec["answer"])["score"]
            assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
            full = cost_usd("gpt-4o-mini", rec["prompt_tokens"], rec["completion_tokens"])
            assert rec["cost_usd"] == pytest.approx(full / 2)
            assert rec["judge_backend"] == "openai" and rec["source"] == "batch"
        rows = read_results(out)
        assert [r.key for r in rows] == ["a0", "a1", "a2", "f1"]
        assert {r.evaluation_id for r in rows} == {r["id"] for r in records}
        assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in records))

        first_results = out.read_text(encoding="utf-8")
        again = ingest(evaluator, out)
        assert again.ok == 4 and len(batch_records(evaluator, job.job_id)) == 4
        assert out.read_text(encoding="utf-8") == first_results


def test_resubmit_skips_graded_items_and_waits_for_the_pending_batch(settings: Settings, tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        evaluator = batch_evaluator(settings, server)
        out = tmp_path / "graded.jsonl"
        first = submit(evaluator, parse_batch(write_answers(tmp_path / "a.jsonl", evaluator, 2), evaluator=evaluator)
                       .items, out)  # fmt: skip
        assert first is not None
        with pytest.raises(InputError, match="not been ingested"):
            submit(evaluator, first.items, out)
        ingest(evaluator, out)

        items = parse_batch(write_answers(tmp_path / "b.jsonl", evaluator, 3), evaluator=evaluator).items
        second = submit(evaluator, items, out)

        assert second is not None and second.submitted == ["a2"]
        assert [json.loads(x)["custom_id"] for x in requests_path(out).read_text().splitlines()] == ["a2"]
        summary = ingest(evaluator, out)
        assert (summary.n, summary.ok, summary.skipped) == (3, 3, 2)
        assert [r.key for r in read_results(out)] == ["a0", "a1", "a2"]
        assert len(batch_records(evaluator, second.job_id)) == 3
        assert submit(evaluator, items, out) is None


def test_bad_replies_and_failed_requests_become_error_records(settings: Settings, tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        evaluator = batch_evaluator(settings, server)
        out = tmp_path / "graded.jsonl"
        items = parse_batch(write_answers(tmp_path / "a.jsonl", evaluator, 3), evaluator=evaluator).items
        server.enqueue(content="Score: 9/10, well done!")  # the first line's reply is not a grade
        server.enqueue(status=400, body=error_body("Invalid 'messages': too long.", type_="invalid_request_error"))

        job = submit(evaluator, items, out)
        summary = ingest(evaluator, out)

        assert job is not None and (summary.ok, summary.failed) == (1, 2)
        bad_reply, bad_request, good = read_results(out)
        assert bad_reply.status == "error" and bad_reply.score is None and bad_reply.verdict is None
        assert "not a valid grade" in bad_reply.error and "not JSON" in bad_reply.error
        assert bad_reply.prompt_tokens > 0 and bad_reply.cost_usd > 0  # the reply was paid for
        assert bad_request.status == "error" and bad_request.score is None
        assert "400" in bad_request.error and "too long" in bad_request.error
        assert good.status == "ok" and good.score is not None
        assert len(batch_records(evaluator, job.job_id)) == 3

        # Ingesting again adds nothing; submitting again retries only the two failed items.
        ingest(evaluator, out)
        assert len(batch_records(evaluator, job.job_id)) == 3
        retry = submit(evaluator, items, out)
        assert retry is not None and retry.submitted == ["a0", "a1"]
        assert ingest(evaluator, out).ok == 3
        statuses = sorted(r["status"] for r in batch_records(evaluator, job.job_id))
        assert statuses == ["error", "error", "ok", "ok", "ok"]  # the earlier errors stay on record


def test_expired_and_failed_batches(settings: Settings, tmp_path: Path) -> None:
    with FakeOpenAIServer(batch_polls=5) as server:
        evaluator = batch_evaluator(settings, server)
        out = tmp_path / "graded.jsonl"
        items = parse_batch(write_answers(tmp_path / "a.jsonl", evaluator, 2), evaluator=evaluator).items

        job = submit(evaluator, items, out)
        assert job is not None
        server.expire(job.batch_id)
        summary = ingest(evaluator, out)
        assert (summary.ok, summary.failed) == (0, 2)
        assert all("expired" in r.error for r in read_results(out))

        server.batch_fail_reason = "Enqueued token limit reached for gpt-4o-mini."
        failed = submit(evaluator, items, out)
        assert failed is not None
        with pytest.raises(JudgeError, match="failed: Enqueued token limit reached"):
            ingest(evaluator, out)
        assert BatchJob.load(out).closed  # a failed batch does not block the next submit
        server.batch_fail_reason = None
        server.batch_polls = 0
        assert submit(evaluator, items, out) is not None
        assert ingest(evaluator, out).ok == 2


def test_cli_submit_status_ingest_wait(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(batch_polls=3) as server:
        source = write_answers(tmp_path / "answers.jsonl", Evaluator(settings), 2)
        out = tmp_path / "graded.csv"
        monkeypatch.setenv("DATA_PATH", str(settings.data_path))
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)

        # No key: the Batch API needs the OpenAI judge.
        assert cli.main(["openai-batch", "submit", str(source), "-o", str(out)]) == 2
        assert "needs the OpenAI judge: set OPENAI_API_KEY" in capsys.readouterr().err
        assert not state_path(out).exists()

        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert cli.main(["openai-batch", "submit", str(source), "-o", str(out)]) == 0
        assert "Submitted batch batch_" in capsys.readouterr().out
        assert cli.main(["openai-batch", "status", str(out)]) == 0
        assert "in_progress, 0 of 2 requests done" in capsys.readouterr().out
        assert cli.main(["openai-batch", "ingest", str(out), "--wait", "--poll-interval", "0.01"]) == 0
        captured = capsys.readouterr()
        assert "2 items, 2 ok, 0 failed" in captured.out and "completed, 2 of 2" in captured.err
        assert [r.status for r in read_results(out)] == ["ok", "ok"]

        assert cli.main(["openai-batch", "status", str(tmp_path / "other.jsonl")]) == 2
        assert "No OpenAI batch job for" in capsys.readouterr().err
        unanswered = tmp_path / "questions.jsonl"
        first_id = Evaluator(settings).dataset.items[0].id
        unanswered.write_text(json.dumps({"question_id": first_id}) + "\n", encoding="utf-8")
        assert cli.main(["openai-batch", "submit", str(unanswered), "-o", str(tmp_path / "q.jsonl")]) == 2
        assert "no answer" in capsys.readouterr().err

    # The key is in no file this job wrote: state, request file, results, log.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert state_path(out) in written and requests_path(out) in written
    assert all(KEY.encode() not in p.read_bytes() for p in written)

"""Batch progress as people see it: a candidate model's load is a stage of its own, then items with a rate and ETA."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from evaluator import cli, views
from evaluator.batch_io import BatchItem, ResultRow
from evaluator.candidate import CandidateAnswer
from evaluator.config import Settings
from evaluator.jobs import DONE, GRADING, LOADING, stream_batch
from evaluator.models import Grade, GradeRequest, JudgeResult, Usage
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.test_batch import cli_env

CRITERIA = dict.fromkeys(("correctness", "completeness", "relevance", "clarity"), 4)


class EchoJudge:
    """Grades every answer 7.0 at once (no model to load, no network)."""

    backend = "test"
    grades_in_chunks = False
    model = "echo"
    prompt_version = "v1"

    def _result(self) -> JudgeResult:
        grade = Grade(score=7.0, verdict="correct", criteria=CRITERIA, feedback="Fine.")
        return JudgeResult(status="ok", backend=self.backend, model=self.model, prompt_version="v1", grade=grade)

    def grade(self, request: GradeRequest) -> JudgeResult:
        return self._result()

    async def agrade(self, request: GradeRequest) -> JudgeResult:
        return self._result()

    def grade_many(self, requests: list[GradeRequest]) -> list[JudgeResult]:
        return [self._result() for _ in requests]


class SlowLoadingCandidate:
    """A local-model stand-in whose load waits until the test releases it; answering unloaded is a test failure.

    Answers wait for ``answers`` (open unless the test holds it), so a test can see the grading stage begin.
    """

    name = "local:fake"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.answers = threading.Event()
        self.answers.set()
        self.loads = 0
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self.loads += 1
        assert self.release.wait(10), "the test never released the load"
        self._loaded = True

    async def aanswer(self, question: str) -> CandidateAnswer:
        assert self._loaded, "an item started before the model was loaded"
        assert await asyncio.to_thread(self.answers.wait, 10), "the test never let the answers through"
        return CandidateAnswer(text=f"An answer to {question}", usage=Usage())

    def close(self) -> None:
        pass


def _items(n: int, *, answered: bool = False) -> list[BatchItem]:
    return [
        BatchItem(key=f"k{i}", line=i, question=f"Q{i}?", reference="R.", answer="A." if answered else None)
        for i in range(1, n + 1)
    ]


def test_the_stream_reports_the_load_before_any_item(settings: Settings) -> None:
    ev = Evaluator(settings, judge=EchoJudge())  # type: ignore[arg-type]
    candidate = SlowLoadingCandidate()
    candidate.answers.clear()  # hold the items, so that the grading stage shows before any result
    stream = stream_batch(ev, _items(3), candidate=candidate, job_id="load", heartbeat=0.05)
    first = next(stream)  # the load is still blocked: this is the loading stage, not "0 of 3"
    assert (first.stage, first.message, first.done, first.rows) == (
        LOADING,
        "Loading candidate model local:fake…",
        0,
        [],
    )
    assert views.batch_stage(first.done, first.total, loading=first.message) == "Loading candidate model local:fake…"
    assert views.batch_progress(first.done, first.total, first.rows, loading=first.message).startswith(
        "Loading candidate model local:fake… The 3 items start"
    )
    candidate.release.set()
    updates = [first, next(stream)]
    while updates[-1].stage == LOADING:  # heartbeats until the load ends
        updates.append(next(stream))
    assert (updates[-1].stage, updates[-1].message, updates[-1].done) == (GRADING, "", 0)
    candidate.answers.set()
    updates += list(stream)
    last = updates[-1]
    assert last.stage == DONE and last.summary is not None and last.summary.ok == 3
    loading = [u for u in updates if u.stage == LOADING]
    assert all(u.done == 0 for u in loading)  # no item finishes while the model loads
    assert all(u.stage == GRADING for u in updates[len(loading) : -1])
    assert all(u.message == "" for u in updates[1:])
    assert candidate.loads == 1
    assert (last.done, last.total, len(last.rows)) == (3, 3, 3)
    ev.close()


def test_no_loading_stage_when_the_model_is_loaded_or_not_needed(settings: Settings) -> None:
    ev = Evaluator(settings, judge=EchoJudge())  # type: ignore[arg-type]
    candidate = SlowLoadingCandidate()
    updates = list(stream_batch(ev, _items(2, answered=True), candidate=candidate, job_id="answered"))
    assert candidate.loads == 0 and LOADING not in {u.stage for u in updates}  # every row has its answer
    candidate.release.set()
    candidate.load()
    updates = list(stream_batch(ev, _items(2), candidate=candidate, job_id="loaded"))
    assert candidate.loads == 1 and LOADING not in {u.stage for u in updates}
    assert updates[-1].summary is not None and updates[-1].summary.ok == 2
    ev.close()


def test_progress_line_has_rate_and_time_left() -> None:
    rows = [
        ResultRow.from_dict({"line": n, "status": status, "score": score})
        for n, (status, score) in enumerate([("ok", 8.0), ("ok", 6.0), ("error", None)], 1)
    ]
    assert views.batch_progress(3, 10, rows) == "Graded 3 of 10, mean score so far 7.00…"
    line = views.batch_progress(3, 10, rows, rate=0.5)
    assert line == "Graded 3 of 10, mean score so far 7.00 · 0.50 items/s, about 14 s left…"
    assert views.batch_stage(3, 10, rate=0.5) == "Grading · 0.50 items/s, about 14 s left"
    assert views.batch_stage(0, 10) == "Grading"  # no item finished yet: no rate to tell
    assert views.batch_eta(100, 1000, 0.25) == "0.25 items/s, about 1 h 00 min left"
    assert views.batch_eta(10, 1000, 12.0) == "12 items/s, about 82 s left"
    assert views.batch_eta(10, 2000, 12.0) == "12 items/s, about 3 min left"
    assert views.batch_progress(1, 1, [], loading="Loading candidate model x…").endswith(
        "The item starts once it is loaded (the first batch only)."
    )


def test_cli_says_the_model_loads_before_the_bar(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    openai_server: FakeOpenAIServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env(monkeypatch, settings, openai_server, tmp_path)
    candidate = SlowLoadingCandidate()
    candidate.release.set()
    monkeypatch.setattr("evaluator.candidate.build_candidate", lambda settings, name=None: candidate)
    source = tmp_path / "questions.jsonl"
    source.write_text("".join(json.dumps({"question": f"Q{n}?", "reference": "R."}) + "\n" for n in range(3)))
    assert cli.main(["batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--candidate-model", "x"]) == 0
    err = capsys.readouterr().err
    assert candidate.loads == 1
    assert err.index("Loading candidate model local:fake…") < err.index("3/3")  # the message, then the bar

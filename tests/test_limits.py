"""Cost controls (evaluator.limits), batch slots and streaming (evaluator.jobs), proxy header parsing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from evaluator.batch_io import BatchItem
from evaluator.config import Settings, load_settings
from evaluator.errors import InputError, RateLimitedError
from evaluator.jobs import BatchSlots, batch_job_id, stream_batch
from evaluator.limits import CostLimits
from evaluator.models import GradeRequest, JudgeResult
from evaluator.server import forwarded_client
from evaluator.service import Evaluator


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_hour_budget_slides_and_refunds_unused_calls() -> None:
    clock = Clock()
    limits = CostLimits(per_client_hour=10, clock=clock)
    with limits.reserve("a", 8) as spent:
        spent.use(5)  # 3 reserved calls were not made: given back
    limits.reserve("a", 5)
    with pytest.raises(RateLimitedError, match=r"needs 1 model call\(s\) and 0 of your 10 per hour are left"):
        limits.reserve("a", 1)
    limits.reserve("b", 10)  # another client has its own hour
    clock.now += 3601
    limits.reserve("a", 10)
    with pytest.raises(InputError, match="each visitor may make 10 per hour"):
        limits.reserve("a", 11)


def test_the_day_budget_is_shared_and_resets_at_midnight_utc() -> None:
    clock = Clock(1_700_006_400.0 - 60)  # one minute before 00:00 UTC
    limits = CostLimits(per_day=3, clock=clock)
    limits.reserve("a", 2)
    with pytest.raises(RateLimitedError, match=r"daily budget of 3 model calls is used up \(1 left; this needs 2\)"):
        limits.reserve("b", 2)
    assert limits.status()["model_calls_today"] == 2
    clock.now += 61
    limits.reserve("b", 3)
    assert limits.status()["model_calls_today"] == 3


def test_rows_and_models_are_checked_and_settings_read_them() -> None:
    settings = load_settings(
        {"MAX_BATCH_ROWS": "3", "ALLOWED_CANDIDATE_MODELS": "gpt-4o-mini, local:smollm2,"}, dotenv_path=None
    )
    limits = CostLimits.from_settings(settings)
    limits.check_rows(3)
    with pytest.raises(InputError, match="This batch has 4 rows; this app grades at most 3 per batch"):
        limits.check_rows(4)
    limits.check_model("local:smollm2")
    with pytest.raises(InputError, match="choose one of: gpt-4o-mini, local:smollm2"):
        limits.check_model("gpt-4-32k")
    defaults = Settings(candidate_model_name="my-model")
    assert defaults.candidate_models == ("my-model", "gpt-4o-mini", "local:smollm2")


def test_a_space_trusts_one_proxy_hop_by_default() -> None:
    assert load_settings({"SPACE_ID": "me/app"}, dotenv_path=None).trusted_proxy_hops == 1
    assert load_settings({}, dotenv_path=None).trusted_proxy_hops == 0
    assert load_settings({"SPACE_ID": "me/app", "TRUSTED_PROXY_HOPS": "2"}, dotenv_path=None).trusted_proxy_hops == 2
    assert forwarded_client(["1.1.1.1, 2.2.2.2", "3.3.3.3"], 1) == "3.3.3.3"
    assert forwarded_client(["1.1.1.1, 2.2.2.2"], 2) == "1.1.1.1"
    assert forwarded_client(["2.2.2.2"], 2) is None
    assert forwarded_client(["9.9.9.9"], 0) is None


def test_one_batch_per_client() -> None:
    slots = BatchSlots()
    slots.claim("a")
    slots.claim("b")
    with pytest.raises(RateLimitedError, match="already have a batch running"):
        slots.claim("a")
    slots.release("a")
    slots.claim("a")


def test_job_id_follows_the_content() -> None:
    item = BatchItem(key="r1", line=1, question="Q?", reference="R.", answer="A.")
    same = batch_job_id([item], candidate=None, dataset="d")
    assert batch_job_id([item], candidate=None, dataset="d") == same
    changed = BatchItem(key="r1", line=1, question="Q?", reference="R.", answer="B.")
    assert batch_job_id([changed], candidate=None, dataset="d") != same
    assert batch_job_id([item], candidate="m", dataset="d") != same


class SlowJudge:
    """A judge that takes ``delay`` seconds per grade (the offline one would batch and finish at once)."""

    backend = "test"
    grades_in_chunks = False
    model = "slow"
    prompt_version = "v1"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def grade(self, request: GradeRequest) -> JudgeResult:
        raise NotImplementedError

    async def agrade(self, request: GradeRequest) -> JudgeResult:
        import asyncio

        from tests.test_hub import evaluation

        self.calls += 1
        await asyncio.sleep(self.delay)
        return evaluation().result

    def grade_many(self, requests: list[GradeRequest]) -> list[JudgeResult]:
        raise NotImplementedError


def test_closing_the_stream_stops_the_batch(settings: Settings, tmp_path: Path) -> None:
    judge = SlowJudge(0.05)
    ev = Evaluator(settings, judge=judge)  # type: ignore[arg-type]
    items = [BatchItem(key=f"k{n}", line=n, question="Q?", reference="R.", answer=f"A{n}.") for n in range(200)]
    ended = threading.Event()
    finished: list[int] = []

    def on_end(n: int) -> None:
        finished.append(n)
        ended.set()

    stream = stream_batch(ev, items, on_end=on_end, concurrency=2, job_id="job")
    next(stream)
    stream.close()  # what Gradio does when the client has gone
    assert ended.wait(10)
    calls = judge.calls
    time.sleep(0.3)
    assert judge.calls == calls < len(items)
    logged = [r for r in ev.log.records("evaluation") if r.get("batch_id") == "job"]
    assert len(logged) == finished[0] == calls
    ev.close()

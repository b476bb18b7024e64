"""Evaluation log speed (target: 100k records appended and aggregated for the dashboard in ≤ 2 s).

Appends N records one by one (as N requests would: each is a to_dict, an encode and one write; each record
is built just before its append, outside the timed section, as the service builds it), then
aggregates them for the dashboard, then measures what a restart costs (a fresh log parsing the file), a
refresh with nothing new, and a refresh after another process appended a few records. Records are built
from the shipped dataset with realistic answer and feedback lengths (~1.2 KB a line); 4 in 5 are
evaluations (some failed), 1 in 5 feedback.

Usage: .venv/bin/python -m bench.log_aggregate [N]
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evaluator.dataset import load_dataset
from evaluator.log import EvalLog
from evaluator.models import (
    CRITERIA,
    EvaluationRecord,
    FeedbackRecord,
    Grade,
    JudgeResult,
    Sentiment,
    Usage,
    verdict_for,
)

ROOT = Path(__file__).resolve().parent.parent

FEEDBACK = "The grade looks fair to me, although the explanation of the missed points could be more specific. "


def record_stream(n: int, seed: int = 0) -> Iterator[EvaluationRecord | FeedbackRecord]:
    """``n`` realistic records spread over 90 days, built one at a time as requests would build them."""
    rng = random.Random(seed)
    items = list(load_dataset(ROOT / "data" / "Q&A_db_practice.json"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    last_eval = None
    for i in range(n):
        ts = (start + timedelta(seconds=i * 90 * 86400 / n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % 5 == 4 and last_eval is not None:
            sentiment = Sentiment(rng.choice(("positive", "negative", "neutral")), rng.random(), "vader")
            agree = rng.random() < 0.8
            yield FeedbackRecord(
                evaluation_id=last_eval, comment=FEEDBACK, sentiment=sentiment, agree=agree, timestamp=ts
            )
            continue
        item = rng.choice(items)
        if rng.random() < 0.03:
            result = JudgeResult(
                status="error", backend="openai", model="gpt-4o-mini", prompt_version="v1", error="timeout"
            )
        else:
            score = round(rng.uniform(0, 10), 1)
            grade = Grade(
                score=score,
                verdict=verdict_for(score),
                criteria={c: rng.randint(1, 5) for c in CRITERIA},
                feedback="Covers the main idea but omits how the method is evaluated and one of its assumptions.",
                missed_points=["evaluation method", "assumption of independence"],
            )
            result = JudgeResult(
                status="ok",
                backend="openai",
                model="gpt-4o-mini",
                prompt_version="v1",
                grade=grade,
                usage=Usage(620, 140, 0.000177),
                latency_ms=812.4,
            )
        answer = (item.reference[:200] + " In practice this depends on the data. ") * 2
        rec = EvaluationRecord(
            question_id=item.id,
            question=item.question,
            reference=item.reference,
            answer=answer,
            result=result,
            category=item.category,
            difficulty=item.difficulty,
            timestamp=ts,
        )
        last_eval = rec.id
        yield rec


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluations_log.jsonl"
        log = EvalLog(path)
        log.aggregate()  # the dashboard was open before the first record

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        append_wall = append_cpu = 0.0
        first_question = None
        for rec in record_stream(n):  # built outside the timed section, just before its append, like a request
            first_question = first_question or getattr(rec, "question_id", None)
            c, t = time.process_time(), time.perf_counter()
            log.append(rec)
            append_wall += time.perf_counter() - t
            append_cpu += time.process_time() - c
        c1, t1 = time.process_time(), time.perf_counter()
        agg = log.aggregate()
        agg_cpu, agg_wall = time.process_time() - c1, time.perf_counter() - t1
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert agg["records"] == n, agg["records"]
        size = path.stat().st_size
        print(f"records: {n}, file: {size / 1e6:.1f} MB ({size / n:.0f} bytes a line)")
        print(f"append {n} one by one:        {append_wall:6.3f} s  ({n / append_wall:,.0f} records/s)")
        print(f"aggregate after the appends:  {agg_wall:6.3f} s")
        total, cpu = append_wall + agg_wall, append_cpu + agg_cpu
        print(f"append + aggregate:           {total:6.3f} s  (target <= 2 s; CPU time {cpu:.3f} s)")

        t3 = time.perf_counter()
        log.aggregate()
        t4 = time.perf_counter()
        print(f"refresh, nothing new:         {(t4 - t3) * 1000:6.2f} ms")

        fresh = EvalLog(path)
        c5, t5 = time.process_time(), time.perf_counter()
        cold = fresh.aggregate()
        c6, t6 = time.process_time(), time.perf_counter()
        assert cold == agg, "a fresh read must agree with the cache fed by the appends"
        rate = n / (t6 - t5)
        print(f"restart: parse + aggregate:   {t6 - t5:6.3f} s  ({rate:,.0f} records/s; CPU time {c6 - c5:.3f} s)")

        other = EvalLog(path)  # another process appending to the same file
        for rec in list(record_stream(101, seed=1))[1:]:
            other.append(rec)
        t7 = time.perf_counter()
        again = log.aggregate()
        t8 = time.perf_counter()
        assert again["records"] == n + 100
        print(f"refresh after 100 foreign:    {(t8 - t7) * 1000:6.2f} ms")
        t9 = time.perf_counter()
        history = log.question_history(first_question)
        t10 = time.perf_counter()
        print(f"question_history:             {(t10 - t9) * 1000:6.2f} ms ({history['count']} evaluations)")
        print(f"memory (max RSS growth while appending): {(rss1 - rss0) / 1024:.0f} MB")
        for closing in (log, fresh, other):
            closing.close()


if __name__ == "__main__":
    main()

"""Evaluation log speed (SPEC §9: 100k records appended and aggregated for the dashboard in ≤ 2 s).

Appends N records one by one (as N requests would: each is a to_dict, an encode and one write), then
aggregates them for the dashboard, then measures what a restart costs (a fresh log parsing the file), a
refresh with nothing new, and a refresh after another process appended a few records. Records are built
from the shipped dataset with realistic answer and feedback lengths (~1.2 KB a line); 4 in 5 are
evaluations (some failed), 1 in 5 feedback.

Usage: .venv/bin/python bench/log_aggregate.py [N]
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.dataset import load_dataset  # noqa: E402
from evaluator.log import EvalLog  # noqa: E402
from evaluator.models import (  # noqa: E402
    CRITERIA,
    EvaluationRecord,
    FeedbackRecord,
    Grade,
    JudgeResult,
    Sentiment,
    Usage,
    verdict_for,
)

FEEDBACK = "The grade looks fair to me, although the explanation of the missed points could be more specific. "


def build_records(n: int, seed: int = 0) -> list[EvaluationRecord | FeedbackRecord]:
    """``n`` realistic records spread over 90 days (built before timing starts)."""
    rng = random.Random(seed)
    items = list(load_dataset(ROOT / "data" / "Q&A_db_practice.json"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out: list[EvaluationRecord | FeedbackRecord] = []
    last_eval = None
    for i in range(n):
        ts = (start + timedelta(seconds=i * 90 * 86400 / n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % 5 == 4 and last_eval is not None:
            sentiment = Sentiment(rng.choice(("positive", "negative", "neutral")), rng.random(), "vader")
            out.append(
                FeedbackRecord(
                    evaluation_id=last_eval, comment=FEEDBACK, sentiment=sentiment, agree=rng.random() < 0.8, timestamp=ts
                )
            )
            continue
        item = rng.choice(items)
        if rng.random() < 0.03:
            result = JudgeResult(status="error", backend="openai", model="gpt-4o-mini", prompt_version="v1", error="timeout")
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
        out.append(rec)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    records = build_records(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluations_log.jsonl"
        log = EvalLog(path)
        log.aggregate()  # the dashboard was open before the first record

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c0, t0 = time.process_time(), time.perf_counter()
        for rec in records:
            log.append(rec)
        t1 = time.perf_counter()
        agg = log.aggregate()
        c2, t2 = time.process_time(), time.perf_counter()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert agg["records"] == n, agg["records"]
        size_mb = path.stat().st_size / 1e6
        print(f"records: {n}, file: {size_mb:.1f} MB ({path.stat().st_size / n:.0f} bytes a line)")
        print(f"append {n} one by one:        {t1 - t0:6.3f} s  ({n / (t1 - t0):,.0f} records/s)")
        print(f"aggregate after the appends:  {t2 - t1:6.3f} s")
        print(f"append + aggregate:           {t2 - t0:6.3f} s  (target <= 2 s; CPU time {c2 - c0:.3f} s)")

        t3 = time.perf_counter()
        log.aggregate()
        t4 = time.perf_counter()
        print(f"refresh, nothing new:         {(t4 - t3) * 1000:6.2f} ms")

        fresh = EvalLog(path)
        c5, t5 = time.process_time(), time.perf_counter()
        cold = fresh.aggregate()
        c6, t6 = time.process_time(), time.perf_counter()
        assert cold == agg, "a fresh read must agree with the cache fed by the appends"
        print(f"restart: parse + aggregate:   {t6 - t5:6.3f} s  ({n / (t6 - t5):,.0f} records/s; CPU time {c6 - c5:.3f} s)")

        other = EvalLog(path)  # another process appending to the same file
        for rec in build_records(101, seed=1)[1:]:
            other.append(rec)
        t7 = time.perf_counter()
        again = log.aggregate()
        t8 = time.perf_counter()
        assert again["records"] == n + 100
        print(f"refresh after 100 foreign:    {(t8 - t7) * 1000:6.2f} ms")
        t9 = time.perf_counter()
        history = log.question_history(records[0].question_id)
        t10 = time.perf_counter()
        print(f"question_history:             {(t10 - t9) * 1000:6.2f} ms ({history['count']} evaluations)")
        print(f"memory (max RSS growth while appending): {(rss1 - rss0) / 1024:.0f} MB")
        for closing in (log, fresh, other):
            closing.close()


if __name__ == "__main__":
    main()

"""Comparing two 10k-item runs (target: ≤ 2 s, reading the log included).

Writes a log of two batch runs of N items each (N distinct questions built from the shipped dataset, realistic
answer lengths, ~1% failed items, a run record at each run's start and end) plus unrelated app evaluations, then
times, each in a fresh process state: a restart's read of the log and its run index, listing the runs, fetching
both runs' items, and the comparison itself (paired bootstrap of 2,000 resamples).

Usage: .venv/bin/python -m bench.compare_runs [N]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from evaluator.compare import compare
from evaluator.dataset import load_dataset
from evaluator.log import EvalLog
from evaluator.models import CRITERIA, EvaluationRecord, Grade, JudgeResult, Usage, verdict_for
from evaluator.runs import RunIndex, RunRecord

ROOT = Path(__file__).resolve().parent.parent


def write_log(path: Path, n: int, seed: int = 0) -> None:
    """Two runs of ``n`` items over the same questions, the second slightly worse, and some app records."""
    rng = random.Random(seed)
    items = list(load_dataset(ROOT / "data" / "Q&A_db_practice.json"))
    log = EvalLog(path)
    for run, shift in (("batch-base", 0.0), ("batch-cand", -0.3)):
        log.append(RunRecord(run_id=run, event="start", name=run.removeprefix("batch-"), items=n))
        for i in range(n):
            item = items[i % len(items)]
            failed = rng.random() < 0.01
            score = min(10.0, max(0.0, round(rng.gauss(6.5 + shift, 2.0), 1)))
            grade = Grade(score, verdict_for(score), dict.fromkeys(CRITERIA, 3), "Covers the main point.", ["x"])
            result = JudgeResult(
                "error" if failed else "ok",
                "openai",
                "gpt-4o-mini",
                "judge-v1",
                grade=None if failed else grade,
                error="timeout" if failed else None,
                usage=Usage(420, 80, 0.0001),
            )
            log.append(
                EvaluationRecord(
                    question_id=f"{item.id}-{i}",
                    question=item.question,
                    reference=item.reference,
                    answer=item.reference[: rng.randint(80, 300)],
                    result=result,
                    category=item.category,
                    source="batch",
                    batch_id=run,
                )
            )
        log.append(RunRecord(run_id=run, event="end", items=n))
    log.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluations_log.jsonl"
        write_log(path, n)
        size = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        index = RunIndex.from_log(EvalLog(path))
        t1 = time.perf_counter()
        runs = index.runs()
        t2 = time.perf_counter()
        a, b = index.get("base"), index.get("cand")
        items_a, items_b = index.items(a.id), index.items(b.id)
        t3 = time.perf_counter()
        result = compare(a, items_a, b, items_b)
        t4 = time.perf_counter()
    print(f"log: {2 * n + 4} records, {size:.1f} MB; runs: {len(runs)}; compared {result.scored} items")
    print(f"read log + index  {t1 - t0:6.3f} s")
    print(f"list runs        {t2 - t1:6.3f} s")
    print(f"items of 2 runs  {t3 - t2:6.3f} s")
    low, high = result.ci
    print(f"compare          {t4 - t3:6.3f} s  (change {result.delta:+.3f}, 95% CI {low:+.3f}..{high:+.3f})")
    print(f"total            {t4 - t0:6.3f} s  (target <= 2 s)")


if __name__ == "__main__":
    main()

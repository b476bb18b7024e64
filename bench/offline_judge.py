"""Offline judge speed: batch throughput (target >= 100 gradings/s on 2 cores) and single-grade latency.

Grades N requests built from the shipped dataset (every question, answered with its labelled
answers, the first sentence of its reference, or another question's reference) with one
``grade_many`` call, then grades answers one at a time and reports latency percentiles.

Usage: .venv/bin/python bench/offline_judge.py [--requests 500] [--singles 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evaluator.dataset import load_dataset  # noqa: E402
from evaluator.embeddings import get_encoder  # noqa: E402
from evaluator.models import GradeRequest  # noqa: E402
from evaluator.offline_judge import OfflineJudge  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "offline_judge_labelled.jsonl"


def build_requests(n: int) -> list[GradeRequest]:
    """``n`` realistic requests over the whole dataset, every answer text different where possible."""
    dataset = load_dataset(ROOT / "data" / "Q&A_db_practice.json")
    items = list(dataset)
    pool = [
        GradeRequest(dataset.get(r["question_id"]).question, dataset.get(r["question_id"]).reference, r["answer"])
        for r in map(json.loads, LABELLED.read_text(encoding="utf-8").splitlines())
    ]
    for k, item in enumerate(items):
        first = re.split(r"(?<=[.!?])\s+", item.reference, maxsplit=1)[0]
        other = items[(k + len(items) // 2) % len(items)].reference
        pool += [GradeRequest(item.question, item.reference, a) for a in (first, other, item.reference)]
    return [pool[i % len(pool)] for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    """Print throughput and latency figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests in the batch")
    parser.add_argument("--singles", type=int, default=200, help="one-at-a-time gradings for latency")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    requests = build_requests(args.requests)
    judge = OfflineJudge()
    started = time.perf_counter()
    get_encoder().encode(["load the model"])
    print(
        f"model load: {time.perf_counter() - started:.2f} s  (usable cores {cores}, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f})"
    )
    judge.grade_many(requests[:64])  # warm-up

    started = time.perf_counter()
    results = judge.grade_many(requests)
    elapsed = time.perf_counter() - started
    assert len(results) == len(requests) and all(r.ok for r in results)
    texts = len({t for r in requests for t in (r.question, r.reference, r.answer)})
    print(
        f"batch: {len(requests)} gradings ({texts} distinct texts) in {elapsed:.2f} s = "
        f"{len(requests) / elapsed:.0f} gradings/s  (target >= 100/s)"
    )

    singles = requests[: args.singles]
    latencies = []
    for req in singles:
        t0 = time.perf_counter()
        judge.grade(req)
        latencies.append((time.perf_counter() - t0) * 1000)
    print(
        f"single grade: p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
        f"mean {statistics.mean(latencies):.1f} ms over {len(singles)}  "
        f"(one at a time = {1000 / statistics.mean(latencies):.0f} gradings/s)"
    )


if __name__ == "__main__":
    main()

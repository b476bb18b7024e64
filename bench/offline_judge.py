"""Offline judge speed: batch throughput (target >= 100 gradings/s on 2 cores), single-grade latency, batch engine.

The batch is realistic: every question of the shipped dataset answered three ways — the first sentence
of its reference, its last sentence, and the question plus a vague phrase — so every answer text is
different, in the order of a file that holds one run after another (all first sentences, then all last
sentences...), so that a chunk of requests spans many questions. It reports:

* judge throughput in chunks of ``--chunk`` requests: without the encoding cache, then cold (a new
  judge, empty cache) and warm (the same judge again: questions and references cached, only answers
  encoded), with the number of texts the encoder had to encode;
* single-grade latency p50/p95, for a question seen before and for a new one (no cache);
* end to end through the batch engine (``run_batch`` with the offline judge, log and results in a temp
  dir): a new evaluator (cold cache), then a second job on the same one (warm), with the longest wait
  between two progress updates.

The model loads once, before the timings; ``python -m evaluator batch`` in a new process adds that load.

Usage: .venv/bin/python -m bench.offline_judge [--chunk 256] [--singles 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from evaluator.batch import run_batch
from evaluator.batch_io import parse_batch
from evaluator.config import Settings
from evaluator.dataset import load_dataset
from evaluator.embeddings import Encoder, EncodingCache, TokenVectors, get_encoder
from evaluator.models import GradeRequest
from evaluator.offline_judge import OfflineJudge
from evaluator.service import Evaluator

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT / "data" / "Q&A_db_practice.json"
TARGET = 100  # gradings/s, SPEC section 9
VAGUE = "It depends on the situation, more or less."


class CountingEncoder:
    """Delegates to the real encoder and counts the texts it encodes."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.texts = 0

    def encode_with_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """The real encoder's output; counts ``texts``."""
        self.texts += len(texts)
        return self.inner.encode_with_tokens(texts, batch_size=batch_size)


def build_rows() -> list[dict[str, str]]:
    """Batch rows (id, question_id, answer): three different answers to every question, one run after another."""
    runs: list[list[dict[str, str]]] = [[], [], []]
    for item in load_dataset(DATA):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", item.reference) if s.strip()]
        words = item.reference.split()
        last = sentences[-1] if len(sentences) > 1 else " ".join(words[len(words) // 2 :])
        for k, answer in enumerate((sentences[0], last, f"{item.question} {VAGUE}")):
            runs[k].append({"id": f"{item.id}-{k}", "question_id": item.id, "answer": answer})
    rows = [row for run in runs for row in run]
    assert len({r["answer"] for r in rows}) == len(rows), "answers must all differ"
    return rows


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def chunked(judge: OfflineJudge, requests: list[GradeRequest], size: int) -> float:
    """Grade ``requests`` in ``grade_many`` calls of ``size``; the rate in gradings/s."""
    started = time.perf_counter()
    for start in range(0, len(requests), size):
        results = judge.grade_many(requests[start : start + size])
        assert all(r.ok for r in results)
    return len(requests) / (time.perf_counter() - started)


def latencies(judge: OfflineJudge, requests: list[GradeRequest]) -> str:
    """p50/p95 of grading ``requests`` one at a time."""
    times = []
    for req in requests:
        t0 = time.perf_counter()
        judge.grade(req)
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95, mean = percentile(times, 50), percentile(times, 95), statistics.mean(times)
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, mean {mean:.1f} ms"


def engine(evaluator: Evaluator, path: Path, output: Path) -> str:
    """One batch job through ``run_batch``: its rate and the longest wait between progress updates."""
    items = parse_batch(path, evaluator=evaluator).items
    stamps: list[float] = []
    started = time.perf_counter()
    summary = run_batch(evaluator, items, output=output, on_result=lambda *_: stamps.append(time.perf_counter()))
    assert summary.ok == len(items), summary.text()
    gaps = np.diff([started, *stamps])
    return (
        f"{summary.n} items in {summary.wall_seconds:.2f} s = {summary.rate:.0f} items/s; "
        f"progress every {gaps.max():.2f} s at most"
    )


def main() -> None:
    """Print throughput and latency figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=256, help="requests per grade_many call (default 256)")
    parser.add_argument("--singles", type=int, default=200, help="one-at-a-time gradings for latency")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    dataset = load_dataset(DATA)
    rows = build_rows()
    requests = [
        GradeRequest(dataset.get(r["question_id"]).question, dataset.get(r["question_id"]).reference, r["answer"])
        for r in rows
    ]
    texts = len({t for r in requests for t in (r.question, r.reference, r.answer)})
    encoder = get_encoder()
    started = time.perf_counter()
    encoder.encode(["load the model"])
    print(
        f"model load: {time.perf_counter() - started:.2f} s  ({encoder.precision}, usable cores {cores}, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f})"
    )
    OfflineJudge(encoder=encoder).grade_many(requests[:: len(requests) // 64])  # warm-up, not counted
    print(f"batch: {len(requests)} gradings, {texts} distinct texts, chunks of {args.chunk}  (target >= {TARGET}/s)")

    counting = CountingEncoder(encoder)
    uncached = OfflineJudge(encoder=counting, cache=EncodingCache(max_bytes=0))  # type: ignore[arg-type]
    rate = chunked(uncached, requests, args.chunk)
    print(f"  no cache:   {rate:4.0f} gradings/s  ({counting.texts} texts encoded)")
    counting.texts = 0
    judge = OfflineJudge(encoder=counting)  # type: ignore[arg-type]
    rate = chunked(judge, requests, args.chunk)
    print(f"  cold cache: {rate:4.0f} gradings/s  ({counting.texts} texts encoded)")
    counting.texts = 0
    rate = chunked(judge, requests, args.chunk)
    print(
        f"  warm cache: {rate:4.0f} gradings/s  ({counting.texts} texts encoded; cache {len(judge.cache)} texts, "
        f"{judge.cache.nbytes / 2**20:.1f} MiB)"
    )

    # Single grades: answers not graded before, every 2nd request so that questions vary.
    singles = [GradeRequest(r.question, r.reference, f"{r.answer} Indeed.") for r in requests[::2][: args.singles]]
    print(f"single grade, question seen before: {latencies(judge, singles)}  over {len(singles)}")
    no_cache = OfflineJudge(encoder=encoder, cache=EncodingCache(max_bytes=0))
    print(f"single grade, new question:         {latencies(no_cache, singles)}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "answers.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        settings = Settings(
            data_path=DATA,
            log_path=folder / "evaluations_log.jsonl",
            cache_path=folder / "judge_cache.sqlite",
            judge_backend="offline",
        )
        evaluator = Evaluator(settings)
        try:
            print(f"batch engine, cold cache: {engine(evaluator, path, folder / 'cold.csv')}")
            print(f"batch engine, warm cache: {engine(evaluator, path, folder / 'warm.csv')}")
        finally:
            evaluator.close()


if __name__ == "__main__":
    main()

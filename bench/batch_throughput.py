"""Batch throughput against a local OpenAI-compatible server with a fixed latency.

Starts ``FakeOpenAIServer`` (evaluator/testing/openai_server.py) in its own process, like a remote API with its
own CPU, and runs the batch engine with the real OpenAI judge pointed at it (``OPENAI_BASE_URL``,
a dummy key, log, cache and output in a fresh temp dir per run, so nothing is cached across runs):

1. latency 0.2 s, N = 200 items, concurrency C = 8, 16, 32: wall time against the ideal
   ``ceil(N / C) * latency`` (target >= 90 %), and the CPU each side spent per item (the client's is the
   engine, judge and ``openai`` client on one event loop; both processes share the machine's cores);
2. the same with a server rate limit (20 req/s, 429 + Retry-After): items lost (target 0), items
   graded twice (target 0), and throughput as a share of the limit (target >= 90 %).

Usage: ``.venv/bin/python -m bench.batch_throughput`` (env: ``BENCH_N``, ``BENCH_REPEATS``,
``BENCH_LATENCY``, ``BENCH_RATE_LIMIT``).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from evaluator.batch import run_batch
from evaluator.batch_io import parse_batch, read_results
from evaluator.config import load_settings
from evaluator.dataset import load_dataset
from evaluator.service import Evaluator

ROOT = Path(__file__).resolve().parent.parent

N = int(os.environ.get("BENCH_N", "200"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
LATENCY = float(os.environ.get("BENCH_LATENCY", "0.2"))
RATE_LIMIT = float(os.environ.get("BENCH_RATE_LIMIT", "20"))
DATASET = load_dataset(ROOT / "data" / "Q&A_db_practice.json")


def _serve(conn, latency: float, rate_limit: float | None) -> None:
    """Child process: run the server, answer ``stats`` requests, stop on ``stop``."""
    from evaluator.testing.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(latency=latency, rate_limit_per_s=rate_limit) as server:
        conn.send(server.base_url)
        while (command := conn.recv()) != "stop":
            if command == "reset":
                server.reset()
            conn.send(
                {
                    "requests": len(server.requests),
                    "max_in_flight": server.max_in_flight,
                    "429s": server.count_429,
                    "cpu": time.process_time(),
                }
            )


class Server:
    """The fake API in a child process (its own GIL), controlled over a pipe."""

    def __init__(self, *, latency: float, rate_limit: float | None = None) -> None:
        self._conn, child = mp.Pipe()
        self._proc = mp.Process(target=_serve, args=(child, latency, rate_limit), daemon=True)
        self._proc.start()
        self.base_url = self._conn.recv()

    def stats(self, *, reset: bool = False) -> dict:
        self._conn.send("reset" if reset else "stats")
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


def batch_text(n: int, salt: str) -> str:
    """``n`` JSONL rows over the shipped dataset, answers unique per run (no cache hits anywhere)."""
    rows = []
    for i in range(n):
        item = DATASET.items[i % len(DATASET)]
        answer = f"{item.reference.split('.')[0]}. (bench answer {salt}-{i})"
        rows.append(json.dumps({"id": f"item-{i}", "question_id": item.id, "answer": answer}))
    return "\n".join(rows)


def run_once(server: Server, concurrency: int, salt: str) -> dict:
    """One fresh batch job (new temp dir: log, cache, output) and its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "OPENAI_API_KEY": "bench-dummy-key",
            "OPENAI_BASE_URL": server.base_url,
            "JUDGE_BACKEND": "openai",
            "DATA_PATH": str(ROOT / "data" / "Q&A_db_practice.json"),
            "LOG_PATH": f"{tmp}/log.jsonl",
            "CACHE_PATH": f"{tmp}/cache.sqlite",
        }
        evaluator = Evaluator(load_settings(env, dotenv_path=None), dataset=DATASET)
        evaluator.judge  # noqa: B018 - build the judge (clients, prompt) before the clock starts
        parsed = parse_batch(batch_text(N, salt), "jsonl", evaluator=evaluator)
        output = Path(tmp) / "results.jsonl"
        server_cpu = server.stats(reset=True)["cpu"]
        cpu, started = time.process_time(), time.perf_counter()
        summary = run_batch(evaluator, parsed.items, concurrency=concurrency, output=output)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = server.stats()
        rows = read_results(output)
        logged = Counter(r["question"] + r["answer"] for r in evaluator.log.records() if r.get("status") == "ok")
        evaluator.close()
    return {
        "wall": wall,
        "client_ms": 1000 * cpu / N,
        "server_ms": 1000 * (stats.pop("cpu") - server_cpu) / N,
        "ok": summary.ok,
        "failed": summary.failed,
        "lost": N - len({r["key"] for r in rows if r["status"] == "ok"}),
        "twice": sum(n - 1 for n in logged.values() if n > 1),
        **stats,
    }


def main() -> None:
    """Run both scenarios and print the figures."""
    logging.basicConfig(level=logging.ERROR)  # a 429 storm makes the judge warn per exhausted item
    print(f"N={N} items, server latency {LATENCY:.2f} s, {REPEATS} runs each, load average {os.getloadavg()[0]:.2f}")
    server = Server(latency=LATENCY)
    try:
        cold = run_once(server, 8, "cold")["wall"]
        ideal8 = math.ceil(N / 8) * LATENCY
        print(f"cold start (first batch in the process, lazy imports): C=8 {cold:.2f} s = {100 * ideal8 / cold:.1f} %")
        print(
            "  C  ideal s  wall s (each run)       % of ideal (median, worst, best)  max in flight  lost"
            "  CPU ms/item (client, server)  load"
        )
        for concurrency in (8, 16, 32):
            load = os.getloadavg()[0]
            runs = [run_once(server, concurrency, f"c{concurrency}-{r}") for r in range(REPEATS)]
            ideal = math.ceil(N / concurrency) * LATENCY
            walls = [r["wall"] for r in runs]
            shown = " ".join(f"{w:.2f}" for w in walls)
            median, worst, best = (100 * ideal / w for w in (statistics.median(walls), max(walls), min(walls)))
            in_flight = max(r["max_in_flight"] for r in runs)
            lost = sum(r["lost"] + r["failed"] for r in runs)
            client = statistics.median(r["client_ms"] for r in runs)
            served = statistics.median(r["server_ms"] for r in runs)
            print(
                f"{concurrency:>3} {ideal:>8.2f}  {shown:<24} {median:>6.1f} {worst:>6.1f} {best:>6.1f}{in_flight:>21}"
                f" {lost:>5}  {client:>16.2f} {served:>8.2f}  {load:>8.2f}"
            )
    finally:
        server.stop()

    print(f"\nRate limit {RATE_LIMIT:g} req/s (429 + Retry-After), latency {LATENCY:.2f} s, N={N}")
    server = Server(latency=LATENCY, rate_limit=RATE_LIMIT)
    try:
        print("  C  wall s  items/s  % of limit  lost  graded twice  failed  429s served")
        for concurrency in (8, 32):
            r = run_once(server, concurrency, f"rl{concurrency}")
            rate = N / r["wall"]
            print(
                f"{concurrency:>3} {r['wall']:>7.2f} {rate:>8.2f} {100 * rate / RATE_LIMIT:>11.1f} "
                f"{r['lost']:>5} {r['twice']:>13} {r['failed']:>7} {r['429s']:>12}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()

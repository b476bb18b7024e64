"""The app under many concurrent API users, and its memory over many calls.

``python app.py`` runs in a subprocess (temp log and cache, rate limits and budgets off), and:

1. Load: ``BENCH_USERS`` concurrent ``gradio_client`` users (default 50) each call ``/evaluate`` with a unique
   answer, then ``/submit_feedback`` on that grade, again and again for ``BENCH_SECONDS`` (default 60). Two
   judges: the offline one, and the OpenAI judge pointed at a local OpenAI-compatible server that answers after
   0.2 s. Printed: requests/s, p50/p95/p99 latency per endpoint, errors, the app process's RSS before and after,
   and a check of the log after a SIGTERM stop: every successful ``/evaluate`` has exactly one record.
2. Memory: ``BENCH_CALLS`` (default 10,000) light ``/next_question`` calls through Gradio's HTTP API, each a new
   Gradio session as with curl (4 at a time); the RSS growth, target <= 100 MB.

Usage: ``.venv/bin/python -m bench.load_bench`` (env: ``BENCH_USERS``, ``BENCH_SECONDS``, ``BENCH_CALLS``,
``BENCH_SCENARIOS``: a comma-separated subset of ``offline,openai,memory``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.app_bench import ROOT, _call, _env, wait_healthy
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.served_app import free_port

if TYPE_CHECKING:
    from gradio_client import Client

USERS = int(os.environ.get("BENCH_USERS", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CALLS = int(os.environ.get("BENCH_CALLS", "10000"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "offline,openai,memory").split(",")
JUDGE_LATENCY = 0.2
# The bench is one client making every call: the per-client limits and budgets would stop it at once.
NO_LIMITS = {"RATE_LIMIT_PER_MINUTE": "0", "JUDGE_CALLS_PER_CLIENT_HOUR": "0", "JUDGE_CALLS_PER_DAY": "0"}


@dataclass
class App:
    """A served ``python app.py``: its URL, process and log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def rss_mb(self) -> float:
        """The app process's resident memory (``VmRSS``) in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the app process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, as a Space stops it: the app flushes its log before exiting."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


@contextmanager
def serve(**env: str) -> Iterator[App]:
    """``python app.py`` in a temp folder with ``env`` over the bench's, until its ``/healthz`` answers."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=tmp,
            env={**_env(folder, port), **NO_LIMITS, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        app = App(f"http://127.0.0.1:{port}/", proc, folder / "log.jsonl")
        try:
            wait_healthy(proc, app.url)
            yield app
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Tally:
    """What the users saw, shared by their threads (under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ms: dict[str, list[float]] = field(default_factory=lambda: {"evaluate": [], "submit_feedback": []})
    errors: Counter[str] = field(default_factory=Counter)
    graded: list[str] = field(default_factory=list)  # evaluation ids the users were given
    feedback: int = 0

    def timed(self, endpoint: str, started: float) -> None:
        with self.lock:
            self.ms[endpoint].append((time.perf_counter() - started) * 1000)

    def error(self, endpoint: str, exc: Exception) -> None:
        with self.lock:
            self.errors[f"{endpoint}: {type(exc).__name__}: {str(exc)[:120]}"] += 1


def user(client: Client, n: int, deadline: float, tally: Tally) -> None:
    """One visitor's loop: grade a unique answer, then give feedback on that grade, until ``deadline``."""
    take = 0
    while time.monotonic() < deadline:
        take += 1
        started = time.perf_counter()
        try:
            answer = f"The median is the middle value (user {n}, take {take})."
            record = client.predict("stat-001", answer, api_name="/evaluate")
        except Exception as exc:
            tally.error("evaluate", exc)
            continue
        tally.timed("evaluate", started)
        with tally.lock:
            tally.graded.append(record["id"])
        started = time.perf_counter()
        try:
            client.predict(record["id"], "Fair grade, thanks.", True, 4, api_name="/submit_feedback")
        except Exception as exc:
            tally.error("submit_feedback", exc)
            continue
        tally.timed("submit_feedback", started)
        with tally.lock:
            tally.feedback += 1


def log_check(path: Path, graded: list[str], feedback: int) -> str:
    """How many of the graded ids have no record in the log, or more than one; and the feedback records."""
    kinds: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        kinds[record.get("kind", "")] += 1
        if record.get("kind") == "evaluation":
            ids[record["id"]] += 1
    lost = sum(1 for i in graded if ids[i] == 0)
    duplicated = sum(1 for i in graded if ids[i] > 1)
    return (
        f"log: {len(graded)} graded, {lost} lost, {duplicated} duplicated; "
        f"{kinds['feedback']} feedback records for {feedback} answered /submit_feedback calls"
    )


def _own_cpu() -> float:
    """CPU time (user + system) this process has used."""
    times = os.times()
    return times.user + times.system


def load(name: str, **env: str) -> None:
    """Scenario 1: ``USERS`` gradio_client users for ``SECONDS`` against the app served with ``env``."""
    from gradio_client import Client

    with serve(**env) as app:
        warm = Client(app.url, verbose=False)
        warm.predict("stat-001", "warm-up answer", api_name="/evaluate")  # loads the offline judge's model
        warm.close()
        with ThreadPoolExecutor(USERS) as pool:
            clients = list(pool.map(lambda _: Client(app.url, verbose=False), range(USERS)))
            rss_before = app.rss_mb()
            tally = Tally()
            cpu_app, cpu_bench = app.cpu_seconds(), _own_cpu()
            started = time.monotonic()
            deadline = started + SECONDS
            list(pool.map(lambda n: user(clients[n], n, deadline, tally), range(USERS)))
            elapsed = time.monotonic() - started
            cpu_app, cpu_bench = app.cpu_seconds() - cpu_app, _own_cpu() - cpu_bench
            rss_after = app.rss_mb()
            for client in clients:
                client.close()
        app.stop()
        calls = sum(len(v) for v in tally.ms.values())
        print(f"\n{name}: {USERS} users for {elapsed:.0f} s")
        print(f"  {calls / elapsed:.1f} answered requests/s ({len(tally.graded) / elapsed:.1f} gradings/s)")
        for endpoint, ms in tally.ms.items():
            if ms:
                print(
                    f"  /{endpoint}: {len(ms)} calls, p50 {pct(ms, 0.5):.0f} ms, p95 {pct(ms, 0.95):.0f} ms, "
                    f"p99 {pct(ms, 0.99):.0f} ms"
                )
        print(f"  errors: {sum(tally.errors.values())}" + "".join(f"\n    {n} x {e}" for e, n in tally.errors.items()))
        print(f"  app RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after")
        print(
            f"  CPU: app {cpu_app / elapsed:.0%} of a core, bench (clients + judge server) {cpu_bench / elapsed:.0%}; "
            f"per request: app {cpu_app * 1000 / max(1, calls):.0f} ms, bench {cpu_bench * 1000 / max(1, calls):.0f} ms"
        )
        print("  " + log_check(app.log_path, tally.graded, tally.feedback))


def memory() -> None:
    """Scenario 2: ``CALLS`` ``/next_question`` calls through the HTTP API, each a new session; RSS growth."""
    with serve() as app:
        with httpx.Client(timeout=60) as http:
            for _ in range(50):  # warm-up: first-call allocations are not growth
                _call(http, app.url, "next_question", "", "", "")
        rss, cpu = [app.rss_mb()], app.cpu_seconds()
        done = 0
        lock = threading.Lock()
        started = time.monotonic()

        def worker(calls: int) -> None:
            nonlocal done
            with httpx.Client(timeout=60) as http:
                for _ in range(calls):
                    _call(http, app.url, "next_question", "", "", "")
                    with lock:
                        done += 1
                        if done % max(1, CALLS // 5) == 0:
                            rss.append(app.rss_mb())

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, [CALLS // 4 + (i < CALLS % 4) for i in range(4)]))
        elapsed = time.monotonic() - started
        rss.append(app.rss_mb())
        cpu = app.cpu_seconds() - cpu
        app.stop()
    growth = rss[-1] - rss[0]
    print(f"\nmemory: {CALLS} /next_question calls (a new session each) in {elapsed:.0f} s ({CALLS / elapsed:.0f}/s)")
    print(f"  app CPU: {cpu * 1000 / CALLS:.0f} ms per call, {cpu / elapsed:.0%} of a core")
    print("  app RSS (MB) every fifth of the calls: " + ", ".join(f"{r:.0f}" for r in rss))
    print(f"  growth: {growth:.0f} MB, {growth * 1024 / CALLS:.1f} KB per call (target <= 100 MB over 10,000 calls)")


def main() -> None:
    """Run the chosen scenarios and print their figures."""
    load_avg = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average at start: {load_avg:.2f}")
    if "offline" in SCENARIOS:
        load("offline judge")
    if "openai" in SCENARIOS:
        with FakeOpenAIServer(latency=JUDGE_LATENCY) as server:
            judge = {"JUDGE_BACKEND": "openai", "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": server.base_url}
            load(f"OpenAI judge on a local server ({JUDGE_LATENCY} s latency)", **judge)
    if "memory" in SCENARIOS:
        memory()


if __name__ == "__main__":
    main()

"""The app's startup time and interactive overhead.

1. Startup: ``python app.py`` in a fresh process (offline judge, temp log) until ``GET /healthz``
   answers 200 — target <= 10 s on 2 cores. Repeated ``BENCH_STARTS`` times.
2. First offline grading through the API: loads the all-MiniLM-L6-v2 judge model (lazy, not at start).
3. Interactive overhead: ``/evaluate`` round trips against the app served with the real OpenAI judge
   pointed at a local OpenAI-compatible server (no latency); the judge's own latency (``latency_ms``
   of each record) is subtracted, leaving app + evaluator + Gradio queue + HTTP — target p50 <= 30 ms,
   p95 <= 100 ms. Measured through Gradio's HTTP API on one keep-alive connection, and through
   ``gradio_client`` (which adds its own client-side cost per call). Every answer is unique, so the
   judge cache never answers.

Usage: ``.venv/bin/python -m bench.app_bench`` (env: ``BENCH_STARTS``, ``BENCH_CALLS``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from evaluator.config import Settings
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.served_app import ServedApp, free_port

ROOT = Path(__file__).resolve().parent.parent

STARTS = int(os.environ.get("BENCH_STARTS", "3"))
CALLS = int(os.environ.get("BENCH_CALLS", "200"))
DATA = ROOT / "data" / "Q&A_db_practice.json"


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    """Return once ``url``'s ``/healthz`` answers 200; RuntimeError if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"app.py did not answer /healthz within {timeout:.0f} s")
        try:
            if httpx.get(f"{url}healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)


def _env(folder: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HF_TOKEN", "HF_LOG_REPO")}
    env.update(
        PORT=str(port),
        DATA_PATH=str(DATA),
        LOG_PATH=str(folder / "log.jsonl"),
        CACHE_PATH=str(folder / "cache.sqlite"),
        JUDGE_BACKEND="offline",
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    return env


def startup() -> tuple[float, float]:
    """Seconds from spawning ``python app.py`` to /healthz answering, and to the first offline grading."""
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=tmp,
            env=_env(Path(tmp), port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(proc, f"http://127.0.0.1:{port}/")
            ready = time.perf_counter() - started
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            try:
                t = time.perf_counter()
                client.predict("stat-001", "The median is the middle value of sorted data.", api_name="/evaluate")
                first_grade = time.perf_counter() - t
            finally:
                client.close()
            return ready, first_grade
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _call(http: httpx.Client, base: str, endpoint: str, *data: object) -> dict:
    """One call through Gradio's HTTP API (``POST /gradio_api/call/<name>``, then its event stream)."""
    event_id = http.post(f"{base}gradio_api/call/{endpoint}", json={"data": list(data)}).json()["event_id"]
    stream = http.get(f"{base}gradio_api/call/{endpoint}/{event_id}").text
    event, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "complete":
            payload = json.loads(line.split(":", 1)[1])
    if payload is None:
        raise RuntimeError(f"{endpoint} failed: {stream[-300:]}")
    return payload[0]


def overhead() -> tuple[list[float], list[float]]:
    """App overhead per /evaluate call in ms (round trip minus the judge's own latency): HTTP API, gradio_client."""
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        folder = Path(tmp)
        settings = Settings(
            openai_api_key="bench-key",
            openai_base_url=server.base_url,
            judge_backend="openai",
            data_path=DATA,
            log_path=folder / "log.jsonl",
            cache_path=folder / "cache.sqlite",
            sentiment_model_name="",
            rate_limit_per_minute=0,
        )
        with ServedApp(settings) as app, httpx.Client(timeout=30) as http:
            _call(http, app.url, "evaluate", "stat-001", "warm-up answer")
            raw = []
            for n in range(CALLS):
                t = time.perf_counter()
                record = _call(http, app.url, "evaluate", "stat-001", f"The middle value, take {n}.")
                raw.append((time.perf_counter() - t) * 1000 - record["latency_ms"])
            client = Client(app.url, verbose=False)
            try:
                via_client = []
                for n in range(CALLS // 4):
                    t = time.perf_counter()
                    record = client.predict("stat-001", f"The middle value, client {n}.", api_name="/evaluate")
                    via_client.append((time.perf_counter() - t) * 1000 - record["latency_ms"])
            finally:
                client.close()
            return raw, via_client


def _pcts(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * len(ms)) - 1)]
    return f"{len(ms)} calls: p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms"


def main() -> None:
    """Print the figures."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores: {os.cpu_count()}, load average at start: {load:.2f}")
    runs = [startup() for _ in range(STARTS)]
    ready = [r for r, _ in runs]
    print(
        f"startup (python app.py -> /healthz 200), {STARTS} runs: "
        + ", ".join(f"{r:.2f}" for r in ready)
        + f" s; median {statistics.median(ready):.2f} s (target <= 10 s)"
    )
    print(
        "first offline grading after start (loads all-MiniLM-L6-v2): " + ", ".join(f"{g:.2f}" for _, g in runs) + " s"
    )
    raw, via_client = overhead()
    print(f"/evaluate overhead, judge latency excluded, HTTP API (keep-alive): {_pcts(raw)} (targets 30 / 100 ms)")
    print(f"/evaluate overhead, judge latency excluded, gradio_client.predict: {_pcts(via_client)}")


if __name__ == "__main__":
    main()

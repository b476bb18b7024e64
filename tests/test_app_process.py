"""The app as a real process (``python app.py`` through ``tests/launch_app.py``): signals and proxy headers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from evaluator.testing.openai_server import FakeOpenAIServer
from tests.conftest import ROOT
from tests.served_app import free_port
from tests.test_app_api import ITEMS
from tests.test_app_security import call
from tests.test_hub import REPO, TOKEN


@contextmanager
def app_process(tmp_path: Path, judge: FakeOpenAIServer, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start the app in a subprocess on a free port; yield it and its URL once /healthz answers."""
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(ITEMS), encoding="utf-8")
    port = free_port()
    values = {
        **{k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "HF_TOKEN", "OPENAI_API_KEY")},
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "DATA_PATH": str(data),
        "LOG_PATH": str(tmp_path / "logs" / "evaluations_log.jsonl"),
        "CACHE_PATH": str(tmp_path / "judge_cache.sqlite"),
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": judge.base_url,
        "JUDGE_MAX_RETRIES": "0",
        "SENTIMENT_MODEL_NAME": "",
        "RATE_LIMIT_PER_MINUTE": "0",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.launch_app"], cwd=tmp_path, env=values, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
            try:
                if httpx.get(url + "healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_writes_and_pushes_every_record(tmp_path: Path, sig: signal.Signals) -> None:
    hub_dir = tmp_path / "hub"
    env = {"FAKE_HUB_DIR": str(hub_dir), "HF_LOG_REPO": REPO, "HF_TOKEN": TOKEN, "HF_PUSH_EVERY_MINUTES": "60"}
    with FakeOpenAIServer() as judge, app_process(tmp_path, judge, **env) as (proc, url):
        deadline = time.monotonic() + 30
        while not httpx.get(url + "healthz", timeout=5).json()["log"]["hub"]["connected"]:
            assert time.monotonic() < deadline, "the fake Hub was never reached"
            time.sleep(0.2)
        ids = []
        for n in range(2):
            event, payload = call(url, "evaluate", ["stat-1", f"The middle value, take {n}."])
            assert event == "complete", payload
            ids.append(payload[0]["id"])
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    pushed = [json.loads(line) for path in hub_dir.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in pushed if r.get("kind") == "evaluation") == sorted(ids)


def test_forged_forwarded_for_does_not_escape_the_rate_limit_on_a_space(tmp_path: Path) -> None:
    with (
        FakeOpenAIServer() as judge,
        app_process(tmp_path, judge, SPACE_ID="me/app", RATE_LIMIT_PER_MINUTE="5") as (
            _,
            url,
        ),
    ):
        passed = 0
        for n in range(12):
            # What the Space's proxy forwards: the client's own header, then the address it saw appended.
            headers = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.9"}
            body = {"data": ["stat-1", f"The middle value {n}."]}
            base = url + "gradio_api/call/evaluate"
            event_id = httpx.post(base, json=body, headers=headers, timeout=30).json()["event_id"]
            with httpx.stream("GET", f"{base}/{event_id}", headers=headers, timeout=30) as response:
                passed += any(line.startswith("event: complete") for line in response.iter_lines())
        assert passed == 5
        # Another client behind the same proxy still has its own allowance.
        headers = {"X-Forwarded-For": "203.0.113.10"}
        event_id = httpx.post(
            url + "gradio_api/call/evaluate", json={"data": ["stat-1", "The middle."]}, headers=headers, timeout=30
        ).json()["event_id"]
        with httpx.stream("GET", f"{url}gradio_api/call/evaluate/{event_id}", headers=headers, timeout=30) as r:
            assert any(line.startswith("event: complete") for line in r.iter_lines())

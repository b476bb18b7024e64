"""Shared fixtures: no real keys or network, all state in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from evaluator.config import Settings, env_name
from evaluator.testing.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = ROOT / "data" / "Q&A_db_practice.json"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` marker: tests that load a real model on CPU (deselect with ``-m "not slow"``)."""
    config.addinivalue_line("markers", "slow: loads a real model on CPU (tens of seconds); -m 'not slow' skips it")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Clear every setting and secret from the environment; run in a temp dir; never touch the Hub."""
    for f in fields(Settings):
        monkeypatch.delenv(env_name(f.name), raising=False)
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Offline settings with the shipped dataset and every file under ``tmp_path``."""
    return Settings(
        data_path=DATA_PATH,
        log_path=tmp_path / "logs" / "evaluations_log.jsonl",
        cache_path=tmp_path / "judge_cache.sqlite",
        judge_backend="offline",
    )


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started local OpenAI-compatible server (see evaluator/testing/openai_server.py); stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server

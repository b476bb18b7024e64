"""A key goes only to the host it was configured for: judge and candidate against two local servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluator.candidate import build_candidate
from evaluator.config import Settings, load_settings
from evaluator.judge import OpenAIJudge
from evaluator.models import GradeRequest
from evaluator.testing.openai_server import FakeOpenAIServer

GATEWAY_KEY = "gw-key-only-for-the-gateway-0123"
CANDIDATE_KEY = "cand-key-only-for-the-candidate-4567"


@pytest.fixture
def gateway() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[FakeOpenAIServer]:
    """Another host: what the process environment names (standing in for api.openai.com), or the candidate's."""
    with FakeOpenAIServer() as server:
        yield server


def keys_seen(server: FakeOpenAIServer) -> list[str]:
    return [h.get("authorization", h.get("Authorization", "")) for h in server.request_headers]


def write_env(folder: Path, **values: str) -> Path:
    path = folder / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def ask(settings: Settings, name: str = "cand-model") -> None:
    candidate = build_candidate(settings, name)
    assert candidate is not None
    asyncio.run(candidate.aanswer("What is a median?"))


def test_candidate_never_sends_the_gateway_key_from_env_file_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: FakeOpenAIServer, elsewhere: FakeOpenAIServer
) -> None:
    # The gateway and its key are in .env (never in os.environ); the process environment names another host,
    # which the openai client would read when built with base_url=None.
    env = write_env(tmp_path, OPENAI_API_KEY=GATEWAY_KEY, OPENAI_BASE_URL=gateway.base_url)
    settings = load_settings({}, dotenv_path=env)
    monkeypatch.setenv("OPENAI_BASE_URL", elsewhere.base_url)
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-env")

    ask(settings)  # no CANDIDATE_BASE_URL: the candidate uses the judge's endpoint and key
    judge = OpenAIJudge.from_settings(settings)
    assert judge.grade(GradeRequest(question="Q?", reference="A median.", answer="A median.")).ok

    assert len(gateway.requests) == 2 and keys_seen(gateway) == [f"Bearer {GATEWAY_KEY}"] * 2
    assert elsewhere.requests == []
    assert not any("openai-project" in {k.lower() for k in h} for h in gateway.request_headers)


def test_a_candidate_on_another_host_gets_its_own_key_or_none(
    tmp_path: Path, gateway: FakeOpenAIServer, elsewhere: FakeOpenAIServer
) -> None:
    env = write_env(
        tmp_path, OPENAI_API_KEY=GATEWAY_KEY, OPENAI_BASE_URL=gateway.base_url, CANDIDATE_BASE_URL=elsewhere.base_url
    )
    ask(load_settings({}, dotenv_path=env))
    ask(load_settings({"CANDIDATE_API_KEY": CANDIDATE_KEY}, dotenv_path=env))

    assert gateway.requests == []
    seen = keys_seen(elsewhere)
    assert len(seen) == 2 and seen[1] == f"Bearer {CANDIDATE_KEY}"
    assert all(GATEWAY_KEY not in k for k in seen)

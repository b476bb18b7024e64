"""Secrets never reach a message: one redaction helper, one description of API failures, atomic writes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from evaluator.candidate import OpenAICandidate
from evaluator.errors import CandidateError, JudgeError
from evaluator.files import write_atomic
from evaluator.openai_batch import _call
from evaluator.redact import redact
from evaluator.testing.openai_server import FakeOpenAIServer, error_body

KEY = "sk-test-candidate-key-123456"


def test_redact_masks_given_secrets_key_shapes_and_url_credentials() -> None:
    text = "token hf_AbCdEf123456 and key sk-proj-abcdef123 at https://me:pw@host/v1, secret s3cr3t-value"
    shown = redact(text, "s3cr3t-value", None, "")
    for secret in ("hf_AbCdEf123456", "sk-proj-abcdef123", "me:pw", "s3cr3t-value"):
        assert secret not in shown
    assert shown.startswith("token hf_*** and key sk-*** at https://***@host/v1")


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "The judge API returned 500: upstream overloaded (task-1234, see https://status.example.com/)"
    assert redact(text) == text


def test_candidate_error_names_the_failure_but_never_the_key(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(status=401, body=error_body(f"Incorrect API key provided: {KEY}.", type_="auth"))
    candidate = OpenAICandidate(model="cand", base_url=openai_server.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(CandidateError) as caught:
        asyncio.run(candidate.aanswer("What is 2+2?"))
    message = str(caught.value)
    assert KEY not in message
    assert "rejected the API key (401): check CANDIDATE_API_KEY" in message


def test_candidate_server_error_message_is_shown_with_keys_masked(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(status=400, body=error_body(f"model 'cand' does not exist (key {KEY[:-4]}abcd)"))
    candidate = OpenAICandidate(model="cand", base_url=openai_server.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(CandidateError) as caught:
        asyncio.run(candidate.aanswer("What is 2+2?"))
    message = str(caught.value)
    assert "returned 400" in message and "does not exist" in message
    assert "sk-test" not in message and "sk-***" in message


def test_batch_api_failure_names_the_action_not_the_key(openai_server: FakeOpenAIServer) -> None:
    from evaluator.judge import OpenAIJudge

    judge = OpenAIJudge(base_url=openai_server.base_url, api_key=KEY, max_retries=0)
    openai_server.enqueue(status=500, body=error_body(f"boom for {KEY}"))
    try:
        with pytest.raises(JudgeError) as caught:
            _call(judge, "create the batch", lambda: judge.client.post("/chat/completions", cast_to=bytes, body={}))
    finally:
        judge.close()
    assert str(caught.value).startswith("Could not create the batch: The OpenAI API returned 500")
    assert KEY not in str(caught.value)


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    write_atomic(path, "old\n")
    write_atomic(path, "new é\n")
    assert path.read_text(encoding="utf-8") == "new é\n"
    assert os.listdir(path.parent) == ["state.json"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.csv"
    write_atomic(path, "kept\n")

    def refuse(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "lost\n")
    assert path.read_text(encoding="utf-8") == "kept\n"
    assert os.listdir(tmp_path) == ["results.csv"]

"""The evaluator facade and ``python -m evaluator evaluate``: input checks, PII, logging of every grade."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from evaluator.config import Settings
from evaluator.errors import InputError, NotFoundError
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer

from .conftest import ROOT

GOOD = (
    "Supervised learning learns from labelled input-output examples to predict a target, as in classification "
    "or regression; unsupervised learning has no labels and finds structure such as clusters."
)


def test_bad_input_is_refused_with_a_clear_message_and_not_logged(settings: Settings) -> None:
    ev = Evaluator(replace(settings, max_answer_chars=50))
    with pytest.raises(InputError, match="empty"):
        ev.evaluate("   ", question_id="ml-001")
    with pytest.raises(InputError, match="limit is 50"):
        ev.evaluate("x" * 51, question_id="ml-001")
    with pytest.raises(NotFoundError, match="no-such-id"):
        ev.evaluate("an answer", question_id="no-such-id")
    with pytest.raises(InputError, match="closest dataset question is ml-001"):
        ev.evaluate("an answer", question="What is the difference between supervised and unsupervised learning?")
    assert ev.log.records() == []


def test_pii_never_reaches_the_judge_or_the_log(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    s = replace(settings, judge_backend="openai", openai_api_key="test-key", openai_base_url=openai_server.base_url)
    ev = Evaluator(s)
    record = ev.evaluate(GOOD + " Mail me at jane.doe@example.com or call +44 20 7946 0958.", question_id="ml-001")
    assert record.result.ok
    sent = json.dumps(openai_server.requests)
    logged = s.log_path.read_text()
    for leak in ("jane.doe@example.com", "7946 0958"):
        assert leak not in sent and leak not in logged
    assert "[EMAIL]" in record.answer and "[PHONE]" in record.answer


def test_pii_scrubbing_can_be_turned_off(settings: Settings) -> None:
    ev = Evaluator(replace(settings, pii_scrubbing=False))
    assert ev.scrub("jane.doe@example.com") == "jane.doe@example.com"


def test_a_failed_grade_is_logged_with_its_reason(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    s = replace(
        settings,
        judge_backend="openai",
        openai_api_key="sk-test-SECRET",
        openai_base_url=openai_server.base_url,
        judge_max_retries=0,
    )
    openai_server.enqueue(status=500, body={"error": {"message": "boom"}})
    record = Evaluator(s).evaluate(GOOD, question_id="ml-001")
    assert record.result.status == "error" and record.result.grade is None
    (logged,) = Evaluator(s).log.records(kind="evaluation")
    assert logged["id"] == record.id and logged["status"] == "error" and logged["score"] is None
    assert logged["error"] and "sk-test-SECRET" not in json.dumps(logged)


def test_free_form_question_with_reference(settings: Settings) -> None:
    ev = Evaluator(settings)
    rec = ev.evaluate("Paris", question="What is the capital of France?", reference="Paris is the capital of France.")
    assert rec.question_id is None and rec.result.backend == "offline" and rec.result.ok
    assert ev.log.get(rec.id)["question"] == "What is the capital of France?"


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evaluator", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_grades_a_shipped_question_offline_with_no_configuration(tmp_path: Path) -> None:
    """A new user's first command: no key, no network, no .env — a grade, and a log line."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HF_TOKEN")}
    env.update(PYTHONPATH=str(ROOT), DATA_PATH=str(ROOT / "data" / "Q&A_db_practice.json"))
    good = _cli("evaluate", "--question-id", "ml-001", "--answer", GOOD, "--json", cwd=tmp_path, env=env)
    assert good.returncode == 0, good.stderr
    record = json.loads(good.stdout)
    assert record["judge_backend"] == "offline" and record["question_id"] == "ml-001"
    bad = _cli("evaluate", "--question-id", "ml-001", "--answer", "Bananas are yellow.", cwd=tmp_path, env=env)
    assert bad.returncode == 0 and "Score:" in bad.stdout and "offline" in bad.stdout
    bad_score = float(bad.stdout.split("Score: ")[1].split("/")[0])
    assert record["score"] > bad_score
    lines = (tmp_path / "data" / "evaluations_log.jsonl").read_text().splitlines()
    assert [json.loads(x)["source"] for x in lines] == ["cli", "cli"]
    missing = _cli("evaluate", "--question-id", "zz-999", "--answer", "x", cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "zz-999" in missing.stderr and "Traceback" not in missing.stderr
    badcfg = _cli(
        "evaluate", "--question-id", "ml-001", "--answer", "x", cwd=tmp_path, env={**env, "MASTER_TEMPERATURE": "hot"}
    )
    assert badcfg.returncode == 2 and "MASTER_TEMPERATURE" in badcfg.stderr


def test_cli_refuses_to_grade_when_the_log_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It used to print the grade and exit 0, then lose the record at exit (an id that feedback cannot find).
    from evaluator import cli

    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("DATA_PATH", str(ROOT / "data" / "Q&A_db_practice.json"))
    monkeypatch.setenv("LOG_PATH", str(blocker / "evaluations_log.jsonl"))
    assert cli.main(["evaluate", "--question-id", "ml-001", "--answer", GOOD]) == 2
    out, err = capsys.readouterr()
    assert "LOG_PATH" in err and "blocker" in err and "Score:" not in out
    monkeypatch.setenv("HF_LOG_REPO", "me/eval-log")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert cli.main(["stats"]) == 2
    assert "LOG_PATH" in capsys.readouterr().err


def test_a_visitor_loads_hub_datasets_without_the_owners_token(settings: Settings) -> None:
    # The owner's HF_TOKEN can read private and gated repos: a dataset id typed in the app must not use it.
    seen: list[object] = []

    def loader(repo_id: str, *, split: str, token: object) -> list[dict[str, str]]:
        seen.append(token)
        return [{"question": "What is a mean?", "reference": "The average."}]

    ev = Evaluator(replace(settings, hf_token="hf_OWNER_SECRET"))
    assert len(ev.load_hub_dataset("owner/qa", visitor=True, loader=loader)) == 1
    assert len(ev.load_hub_dataset("owner/qa", loader=loader)) == 1  # the owner's own CLI call
    assert seen == [None, "hf_OWNER_SECRET"]

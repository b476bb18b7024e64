"""The command line's help reads as plain text: no reST markup from the docstrings it is built from."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evaluator import cli
from tests.conftest import ROOT

COMMANDS = [[], *([c] for c in ("evaluate", "feedback", "batch", "agreement", "stats", "runs", "compare"))]
COMMANDS += [["openai-batch"]]
COMMANDS += [["openai-batch", action] for action in ("submit", "status", "ingest")]


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main([*args, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "top")
def test_help_is_plain_text(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(args, capsys)
    assert "`" not in text and ":func:" not in text and ":class:" not in text


def test_each_command_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Command line: python -m evaluator <command>; --help lists the commands." in _help([], capsys)
    batch = " ".join(_help(["batch"], capsys).split())
    assert "Grade a JSONL/CSV file of answers into a results file, concurrently and resumably." in batch


def test_plain_help_drops_rst_markup() -> None:
    assert cli.plain_help("Run ``batch``; see :func:`~evaluator.batch.run_batch` and `runs`.") == (
        "Run batch; see evaluator.batch.run_batch and runs."
    )


def test_python_dash_m_help_runs() -> None:
    cmd = [sys.executable, "-m", "evaluator", "--help"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "usage: python -m evaluator" in proc.stdout and "`" not in proc.stdout

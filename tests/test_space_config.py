"""The Space's declared interpreter agrees with requires-python and with the oldest Python the code needs.

The slow check that really builds the Space and serves it is ``scripts/space_check.py`` (run by ``.ci/run``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.space_check import SPACES_DEFAULT_PYTHON, declaration_problems, front_matter, space_python
from tests.conftest import ROOT

SPACE_CODE = ["app.py", "evaluator"]  # what `python app.py` imports on a Space


def vermin(target: str) -> subprocess.CompletedProcess[str]:
    """vermin's verdict on whether the Space's code runs on Python ``target`` and newer."""
    command = "import sys, vermin; sys.exit(vermin.main())"
    args = ["--no-tips", "--no-parse-comments", "--eval-annotations", "--violations", f"-t={target}-", *SPACE_CODE]
    return subprocess.run([sys.executable, "-c", command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_front_matter_names_an_interpreter_requires_python_allows() -> None:
    meta = front_matter(ROOT / "README.md")
    assert "python_version" in meta, f"without python_version a Space runs Python {SPACES_DEFAULT_PYTHON}"
    assert declaration_problems(ROOT) == []


def test_the_code_runs_on_the_declared_interpreter() -> None:
    declared = space_python(front_matter(ROOT / "README.md"))
    result = vermin(declared)
    assert result.returncode == 0, f"code needs a newer Python than {declared}:\n{result.stdout}{result.stderr}"
    assert re.search(r"Minimum required versions: 3\.\d+", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: re.sub(r"(?m)^python_version:.*\n", "", t), "a Space would run Python 3.10"),
        (lambda t: re.sub(r"(?m)^python_version:.*$", 'python_version: "3.9"', t), "a Space would run Python 3.9"),
        (lambda t: re.sub(r"(?m)^sdk_version:.*$", "sdk_version: 5.0.0", t), "sdk_version '5.0.0' differs"),
    ],
)
def test_an_inconsistent_space_configuration_is_named(tmp_path: Path, edit: Callable[[str], str], problem: str) -> None:
    for name in ("README.md", "pyproject.toml", "requirements.txt", "app.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    readme = tmp_path / "README.md"
    readme.write_text(edit(readme.read_text(encoding="utf-8")), encoding="utf-8")
    problems = declaration_problems(tmp_path)
    assert len(problems) == 1 and problem in problems[0]


def test_the_space_check_fails_at_once_without_python_version(tmp_path: Path) -> None:
    # What CI would see if python_version were dropped: a failure naming the cause, before any venv is built.
    for name in ("README.md", "pyproject.toml", "requirements.txt", "app.py", "scripts/space_check.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    readme = tmp_path / "README.md"
    readme.write_text(re.sub(r"(?m)^python_version:.*\n", "", readme.read_text(encoding="utf-8")), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "scripts/space_check.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert done.returncode == 1
    assert "space check failed" in done.stderr and "a Space would run Python 3.10" in done.stderr
    assert not (tmp_path / "cache").exists()  # refused before building anything

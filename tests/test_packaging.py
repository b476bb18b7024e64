"""The package is installable and everything imports it as a package: no sys.path edits anywhere."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch

from tests.conftest import ROOT


def test_pyproject_packages_the_evaluator_with_its_prompts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["evaluator*"]
    patterns = config["tool"]["setuptools"]["package-data"]["evaluator"]
    prompts = sorted(p.name for p in (ROOT / "evaluator" / "prompts").iterdir())
    assert prompts and all(any(fnmatch(f"prompts/{p}", pat) for pat in patterns) for p in prompts)


def test_make_install_installs_the_package_editable() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install -q --no-deps -e ." in makefile


def test_no_source_edits_sys_path() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("bench", "tests", "scripts", "evaluator")
        for path in (ROOT / folder).rglob("*.py")
        if "sys.path." + "insert" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_every_bench_imports_as_a_module_of_the_bench_package() -> None:
    names = sorted(p.stem for p in (ROOT / "bench").glob("[a-z]*.py"))
    assert names
    code = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module('bench.' + name)"
    done = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

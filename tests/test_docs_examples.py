"""Every bash and Python example in README.md and docs/*.md runs verbatim on a fresh copy of the repository.

Each fenced ```bash or ```python block is one test, named by its file and line. The blocks of a page run in
order in one new copy of the tracked files (with this repository's ``.venv``), as a reader would run them, with
no key and no Hub. A block that talks to ``localhost:7860`` gets a served app (offline judge) at that address's
place. A block that cannot run here says why on the line before its fence:
``<!-- not run here: needs an OpenAI key -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from evaluator.config import Settings, env_name
from scripts.space_check import tracked_copy
from tests.conftest import DATA_PATH, ROOT
from tests.served_app import ServedApp

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = ("bash", "python")
SHOWN = ("text", "json", "jsonl", "csv", "sql", "yaml", "dotenv")  # output, data and formats: not run
SKIP = re.compile(r"<!--\s*not run here:\s*(.*?)\s*-->")
APP = "localhost:7860"
BARE_PYTHON = re.compile(r"(^|[\s;&|(])(python3?|pip3?) ", re.MULTILINE)  # must be .venv/bin/python
# make (re)installs into .venv, which the copies share with this test run: never run it from here.
MAKE = re.compile(r"(^|[\s;&|(])make\b", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """One fenced block of a page."""

    page: Path
    line: int  # of the opening fence
    lang: str
    code: str
    skip: str | None  # the reason it is not run here

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    """The fenced blocks of ``page``, in order."""
    found: list[Example] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    start, lang, skip = -1, "", None
    for number, line in enumerate(lines, 1):
        if start < 0 and line.startswith("```"):
            start, lang = number, line[3:].strip()
            before = lines[number - 2] if number > 1 else ""
            match = SKIP.search(before)
            skip = match.group(1) if match else None
        elif start >= 0 and line.rstrip() == "```":
            found.append(Example(page, start, lang, "\n".join(lines[start : number - 1]) + "\n", skip))
            start = -1
    assert start < 0, f"{page.relative_to(ROOT)}:{start}: a code fence is never closed"
    return found


ALL = [e for page in PAGES for e in examples(page)]
RUNNABLE = [e for e in ALL if e.lang in RUN]


def test_every_block_says_what_it_is() -> None:
    unknown = [f"{e.where}: ```{e.lang}" for e in ALL if e.lang not in RUN + SHOWN]
    assert not unknown, "label each fence with one of " + ", ".join(RUN + SHOWN) + ":\n" + "\n".join(unknown)
    misplaced = [e.where for e in ALL if e.skip is not None and e.lang not in RUN]
    assert not misplaced, f"'not run here' marks only bash/python blocks: {misplaced}"
    bare = [e.where for e in RUNNABLE if e.lang == "bash" and BARE_PYTHON.search(e.code)]
    assert not bare, f"use .venv/bin/python (a bare python has none of the packages): {bare}"
    make = [e.where for e in RUNNABLE if e.lang == "bash" and not e.skip and MAKE.search(e.code)]
    assert not make, f"mark blocks that call make '<!-- not run here: why -->' (make reinstalls .venv): {make}"


def test_relative_links_point_at_files_of_the_repository() -> None:
    broken = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target) or target.startswith("#"):
                    continue
                if not (page.parent / target.split("#")[0]).exists():
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_readme_configuration_table_lists_every_setting_once() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :].split("\n## ")[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    listed = [name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)]
    settings = [env_name(f.name) for f in fields(Settings)]
    missing = [name for name in settings if name not in listed]
    assert not missing, f"README.md: add these settings to the configuration table: {missing}"
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not twice, f"README.md: settings listed more than once in the configuration table: {twice}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """The app (offline judge, shipped dataset) for the examples that talk to localhost:7860."""
    folder = tmp_path_factory.mktemp("docs-app")
    settings = Settings(
        data_path=DATA_PATH,
        log_path=folder / "evaluations_log.jsonl",
        cache_path=folder / "judge_cache.sqlite",
        judge_backend="offline",
        rate_limit_per_minute=0,
    )
    with ServedApp(settings) as app:
        yield app


@dataclass
class Clone:
    """A page's copy of the repository and the blocks already run in it."""

    folder: Path
    done: set[int]


@pytest.fixture(scope="module")
def clones() -> dict[Path, Clone]:
    """Each page's clone, made on its first block."""
    return {}


def clone_for(page: Path, clones: dict[Path, Clone], tmp_path_factory: pytest.TempPathFactory) -> Clone:
    """The fresh copy of the repository that ``page``'s blocks run in."""
    if page not in clones:
        folder = tmp_path_factory.mktemp(page.stem)
        tracked_copy(ROOT, folder)
        (folder / ".venv").symlink_to((ROOT / ".venv").resolve())
        clones[page] = Clone(folder, set())
    return clones[page]


def run_block(example: Example, folder: Path, request: pytest.FixtureRequest) -> None:
    """Run one block in ``folder``; fail naming its file and line."""
    code = example.code
    if example.lang == "bash" and MAKE.search(code):
        pytest.fail(f"{example.where}: calls make, which would reinstall the shared .venv: mark it not run here")
    if APP in code:
        served: ServedApp = request.getfixturevalue("served")
        code = code.replace(APP, f"127.0.0.1:{served.port}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = ["bash", "-euo", "pipefail", "-c", code] if example.lang == "bash" else [".venv/bin/python", "-c", code]
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{example.where}: the example did not finish within 600 s")
    assert done.returncode == 0, (
        f"{example.where}: the {example.lang} example exited with {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.where for e in RUNNABLE])
def test_example_runs(
    example: Example,
    clones: dict[Path, Clone],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    if example.skip:
        pytest.skip(f"{example.where}: not run here: {example.skip}")
    clone = clone_for(example.page, clones, tmp_path_factory)
    # A page is a walk-through: later blocks use what earlier ones made.
    earlier = [e for e in RUNNABLE if e.page == example.page and e.line < example.line and not e.skip]
    for block in earlier:
        if block.line not in clone.done:
            run_block(block, clone.folder, request)
            clone.done.add(block.line)
    run_block(example, clone.folder, request)
    clone.done.add(example.line)

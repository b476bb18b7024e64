"""What keeps the evaluation log across a Space's restarts and rebuilds, from the settings a Space owner makes.

A Space's disk is new at every restart; its Secrets and Variables arrive as environment variables, and
``SPACE_ID`` is set by the Space itself. Persistent storage, when enabled, is mounted at ``/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluator.config import load_settings
from evaluator.errors import ConfigError
from evaluator.log import EvalLog
from tests.test_hub import REPO, TOKEN, FakeHfApi, evaluation, no_token_anywhere

SPACE = {"SPACE_ID": "someone/llm-evaluator", "SYSTEM": "spaces"}
pytestmark = pytest.mark.usefixtures("no_token_anywhere")
__all__ = ["no_token_anywhere"]  # the fixture, imported for pytestmark


@pytest.fixture
def hub() -> FakeHfApi:
    return FakeHfApi()


def container(tmp_path: Path, name: str) -> Path:
    """A new container's working directory (its disk, lost at the next restart); made the current one."""
    disk = tmp_path / name
    disk.mkdir()
    os.chdir(disk)
    return disk


def open_log(environ: dict[str, str], storage: Path, hub: FakeHfApi | None = None) -> EvalLog:
    """The log ``python app.py`` opens with this environment."""
    settings = load_settings(environ, dotenv_path=None, space_storage=storage)
    log = EvalLog.from_settings(settings, hf_api=hub)  # type: ignore[arg-type]
    if log.hub is not None:
        assert log.hub.wait_ready(10)
    return log


def test_without_storage_or_hub_a_restart_starts_an_empty_log(tmp_path: Path) -> None:
    storage = tmp_path / "no-persistent-storage"  # not enabled: /data does not exist
    first = open_log(SPACE, storage)
    first.append(evaluation())
    first.close()
    container(tmp_path, "after-restart")
    assert open_log(SPACE, storage).records() == []


def test_persistent_storage_keeps_the_log_and_cache_across_restarts(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    storage.mkdir()
    container(tmp_path, "first")
    settings = load_settings(SPACE, dotenv_path=None, space_storage=storage)
    assert settings.log_path == storage / "evaluations_log.jsonl"
    assert settings.cache_path == storage / "judge_cache.sqlite"
    log = EvalLog.from_settings(settings)
    records = [evaluation(float(i)) for i in range(3)]
    for rec in records:
        log.append(rec)
    log.close()

    container(tmp_path, "after-rebuild")  # a new disk; /data is the same
    assert [r["id"] for r in open_log(SPACE, storage).records()] == [r.id for r in records]


def test_an_owners_log_path_wins_and_outside_a_space_data_is_not_used(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    storage.mkdir()
    mine = load_settings({**SPACE, "LOG_PATH": "/tmp/mine.jsonl"}, dotenv_path=None, space_storage=storage)
    assert mine.log_path == Path("/tmp/mine.jsonl") and mine.cache_path == storage / "judge_cache.sqlite"
    local = load_settings({}, dotenv_path=None, space_storage=storage)
    assert local.log_path == Path("data/evaluations_log.jsonl")


def test_hf_log_repo_needs_the_hf_token_secret() -> None:
    with pytest.raises(ConfigError, match="HF_LOG_REPO needs HF_TOKEN"):
        load_settings({**SPACE, "HF_LOG_REPO": REPO}, dotenv_path=None)


def test_the_hub_keeps_every_record_across_rebuilds_without_storage(tmp_path: Path, hub: FakeHfApi) -> None:
    environ = {**SPACE, "HF_TOKEN": TOKEN, "HF_LOG_REPO": REPO}  # a Secret and a Variable of the Space
    storage = tmp_path / "no-persistent-storage"
    container(tmp_path, "first")
    first = open_log(environ, storage, hub)
    records = [evaluation(float(i)) for i in range(4)]
    for rec in records:
        first.append(rec)
    first.close()  # a restart sends SIGTERM: the app closes the log, which pushes

    container(tmp_path, "after-rebuild")
    second = open_log(environ, storage, hub)
    assert [r["id"] for r in second.records()] == [r.id for r in records]
    later = evaluation(9.0)
    second.append(later)
    second.close()

    container(tmp_path, "after-another-rebuild")
    assert len(open_log(environ, storage, hub).records()) == 5


def test_storage_keeps_what_a_down_hub_did_not_get_and_pushes_it_at_the_next_start(
    tmp_path: Path, hub: FakeHfApi
) -> None:
    environ = {**SPACE, "HF_TOKEN": TOKEN, "HF_LOG_REPO": REPO}
    storage = tmp_path / "data"
    storage.mkdir()
    container(tmp_path, "first")
    first = open_log(environ, storage, hub)
    assert first.write_path.parent == storage / "logs"
    hub.commits_fail = True  # the Hub refuses every push until the restart
    records = [evaluation(float(i)) for i in range(3)]
    for rec in records:
        first.append(rec)
    first.close()
    assert hub.repos[REPO] == {}

    hub.commits_fail = False
    container(tmp_path, "after-restart")
    second = open_log(environ, storage, hub)
    assert second.hub is not None and second.hub.adopted == [first.write_path]
    assert second.hub.push()
    assert [r["id"] for r in hub.lines(f"logs/{first.write_path.name}")] == [r.id for r in records]
    assert len(second.records()) == 3  # the local file and its Hub copy are one set of records
    second.close()

"""Hub persistence of the evaluation log, against an in-process fake of HfApi that really stores commits."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from huggingface_hub.hf_api import RepoFile

from evaluator.config import Settings
from evaluator.log import EvalLog
from evaluator.models import (
    CRITERIA,
    EvaluationRecord,
    FeedbackRecord,
    Grade,
    JudgeResult,
    Sentiment,
)

TOKEN = "hf_" + "T0pS3cretT0ken" * 3
REPO = "someone/eval-log"


class FakeHfApi:
    """What CommitScheduler and HubSync call on HfApi, backed by dicts of committed bytes."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.private: dict[str, bool | None] = {}
        self.commits: list[list[str]] = []
        self.downloads: list[str] = []
        self.reachable = True
        self.commits_fail = False
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1)  # HfApi runs background jobs one at a time too

    def _network(self) -> None:
        if not self.reachable:
            raise ConnectionError(
                "Failed to resolve 'huggingface.co' ([Errno -3] Temporary failure in name resolution)"
            )

    def create_repo(self, repo_id: str, *, repo_type: str | None = None, private: bool | None = None, **_: Any) -> Any:
        self._network()
        with self._lock:
            if repo_id not in self.repos:
                self.repos[repo_id], self.private[repo_id] = {}, private
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id: str, operations: list[Any], *, commit_message: str, **_: Any) -> Any:
        self._network()
        if self.commits_fail:
            raise ConnectionError("502 Bad Gateway")
        files = {}
        for op in operations:
            with op.as_file() as fh:
                files[op.path_in_repo] = fh.read()
        with self._lock:
            self.repos[repo_id].update(files)
            self.commits.append(sorted(files))
        return SimpleNamespace(oid=f"commit-{len(self.commits)}", commit_message=commit_message)

    def list_repo_tree(self, repo_id: str, path_in_repo: str | None = None, **_: Any) -> list[RepoFile]:
        self._network()
        with self._lock:
            files = sorted(self.repos[repo_id].items())
        return [RepoFile(path=p, size=len(b), oid=hashlib.sha1(b).hexdigest()) for p, b in files]

    def hf_hub_download(self, repo_id: str, filename: str, *, local_dir: str | Path, **_: Any) -> str:
        self._network()
        with self._lock:
            data = self.repos[repo_id][filename]
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".incomplete")
        tmp.write_bytes(data)
        tmp.replace(target)
        self.downloads.append(filename)
        return str(target)

    def run_as_future(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def lines(self, path_in_repo: str) -> list[dict[str, Any]]:
        """The records of one committed file."""
        return [json.loads(line) for line in self.repos[REPO][path_in_repo].decode().splitlines() if line]


@pytest.fixture
def hub() -> FakeHfApi:
    return FakeHfApi()


def hub_settings(settings: Settings, disk: Path, every: float = 5.0) -> Settings:
    """Settings of one replica whose (ephemeral) disk is ``disk``."""
    return replace(
        settings,
        log_path=disk / "data" / "evaluations_log.jsonl",
        hf_log_repo=REPO,
        hf_token=TOKEN,
        hf_push_every_minutes=every,
    )


def start(settings: Settings, hub: FakeHfApi) -> EvalLog:
    log = EvalLog.from_settings(settings, hf_api=hub)  # type: ignore[arg-type]
    assert log.hub is not None and log.hub.wait_ready(10)
    return log


def evaluation(score: float = 7.0, **kw: Any) -> EvaluationRecord:
    grade = Grade(score=score, verdict="correct", criteria=dict.fromkeys(CRITERIA, 4), feedback="fine")
    result = JudgeResult(status="ok", backend="openai", model="m", prompt_version="v1", grade=grade)
    return EvaluationRecord(question_id="q1", question="Q?", reference="R.", answer="A.", result=result, **kw)


@pytest.fixture
def no_token_anywhere(
    tmp_path: Path, hub: FakeHfApi, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """After the test: the token is in no local file, no committed file, no log message, no output."""
    caplog.set_level(logging.DEBUG)
    yield
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for files in hub.repos.values():
        assert all(TOKEN.encode() not in data for data in files.values())
    assert TOKEN not in caplog.text
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err


pytestmark = pytest.mark.usefixtures("no_token_anywhere")


def test_two_replicas_push_into_one_repo_and_a_restart_reads_everything(
    settings: Settings, hub: FakeHfApi, tmp_path: Path
) -> None:
    one = start(hub_settings(settings, tmp_path / "replica1"), hub)
    two = start(hub_settings(settings, tmp_path / "replica2"), hub)
    assert hub.private[REPO] is True  # logs hold user answers: a new repo is private
    first = [evaluation(float(i)) for i in range(5)]
    second = [evaluation(float(i)) for i in range(3)]
    for rec in first:
        one.append(rec)
    for rec in second:
        two.append(rec)
    fb = FeedbackRecord(
        evaluation_id=first[0].id, comment="ok", sentiment=Sentiment("positive", 0.9, "vader"), agree=False
    )
    two.append(fb)  # feedback on replica 2 about an evaluation made on replica 1
    assert one.hub.push() and two.hub.push()

    names = {one.write_path.name, two.write_path.name}
    assert len(names) == 2 and all(n.startswith("evaluations-") and n.endswith(".jsonl") for n in names)
    assert set(hub.repos[REPO]) == {f"logs/{n}" for n in names}
    for log in (one, two):
        assert hub.repos[REPO][f"logs/{log.write_path.name}"] == log.write_path.read_bytes()
    one.close()
    two.close()

    everything = {r.id for r in [*first, *second, fb]}
    restarted = start(hub_settings(settings, tmp_path / "replica1-restarted"), hub)  # a fresh, empty disk
    assert {r["id"] for r in restarted.records()} == everything
    assert len(restarted.records()) == len(everything)
    assert restarted.aggregate()["agreement"]["by_verdict"]["correct"] == {"rated": 1, "agree": 0, "rate": 0.0}
    restarted.append(evaluation(1.0))
    restarted.close()
    assert len(hub.repos[REPO]) == 3  # the restart wrote a third file, overwrote none

    persistent = start(hub_settings(settings, tmp_path / "replica1"), hub)  # same disk: local files + Hub copy
    assert len(persistent.records()) == len(everything) + 1  # deduplicated by id
    persistent.close()


def test_a_failed_push_loses_nothing_and_the_next_push_sends_it(
    settings: Settings, hub: FakeHfApi, tmp_path: Path
) -> None:
    log = start(hub_settings(settings, tmp_path), hub)
    hub.commits_fail = True
    for _ in range(3):
        log.append(evaluation())
    assert not log.hub.push()
    status = log.hub.status()
    assert status["connected"] and "502" in status["last_error"]
    assert f"logs/{log.write_path.name}" not in hub.repos[REPO]
    assert len(log.records()) == 3  # still served locally

    for _ in range(2):
        log.append(evaluation())
    hub.commits_fail = False
    assert log.hub.push()
    assert len(hub.lines(f"logs/{log.write_path.name}")) == 5
    assert log.hub.status()["last_error"] is None and log.hub.status()["last_push"]
    log.close()


def test_close_makes_a_last_push(settings: Settings, hub: FakeHfApi, tmp_path: Path) -> None:
    log = start(hub_settings(settings, tmp_path), hub)
    recs = [evaluation() for _ in range(4)]
    for rec in recs:
        log.append(rec)
    log.close()
    assert [r["id"] for r in hub.lines(f"logs/{log.write_path.name}")] == [r.id for r in recs]


def test_unreachable_hub_at_start_keeps_the_log_local_warns_and_retries(
    settings: Settings, hub: FakeHfApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub.reachable = False
    log = EvalLog.from_settings(hub_settings(settings, tmp_path, every=0.002), hf_api=hub)  # type: ignore[arg-type]
    rec = evaluation()
    log.append(rec)  # the app keeps working
    assert log.get(rec.id) is not None
    assert log.hub is not None and not log.hub.wait_ready(0.3)
    assert not log.hub.push()
    status = log.status()["hub"]
    assert status["connected"] is False and "ConnectionError" in status["last_error"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "evaluator.hub" and r.levelno == logging.WARNING]
    assert warnings and "unreachable" in warnings[0] and str(log.write_path) in warnings[0]

    hub.reachable = True  # the network comes back: the next retry connects and pushes
    assert log.hub.wait_ready(10)
    assert log.hub.push()
    assert [r["id"] for r in hub.lines(f"logs/{log.write_path.name}")] == [rec.id]
    log.close()


def test_a_file_left_by_a_dead_process_is_adopted_a_live_ones_is_not(
    settings: Settings, hub: FakeHfApi, tmp_path: Path
) -> None:
    s = hub_settings(settings, tmp_path)
    dead = s.log_path.parent / "logs" / "evaluations-deadbeef.jsonl"  # its writer was killed before pushing
    dead.parent.mkdir(parents=True)
    orphans = [evaluation(2.0), evaluation(3.0)]
    dead.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in orphans), encoding="utf-8")

    live = start(s, hub)
    assert live.hub.adopted == [dead]
    live.append(evaluation())
    assert live.hub.push()
    assert [r["id"] for r in hub.lines("logs/evaluations-deadbeef.jsonl")] == [r.id for r in orphans]

    neighbour = start(s, hub)  # another process on the same disk while `live` still appends
    assert neighbour.hub.adopted == []
    assert len(neighbour.records()) == 3
    neighbour.close()
    live.close()


def test_hub_repo_without_token_stays_local(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    log = EvalLog.from_settings(replace(settings, hf_log_repo=REPO, hf_token=None))
    assert log.hub is None and log.write_path == settings.log_path
    assert "HF_TOKEN" in caplog.text


def test_status_and_repr_carry_no_secret(settings: Settings, hub: FakeHfApi, tmp_path: Path) -> None:
    log = start(hub_settings(settings, tmp_path), hub)
    log.append(evaluation())
    assert TOKEN not in json.dumps(log.status()) and TOKEN not in repr(log.hub)
    assert log.status()["hub"]["repo"] == REPO
    log.close()


def test_a_failed_first_connection_is_known_without_waiting_for_the_timeout(
    settings: Settings, hub: FakeHfApi, tmp_path: Path
) -> None:
    # `python -m evaluator stats` waits for this before reading: with the Hub down it used to wait the
    # whole timeout (30 s) although the first attempt had failed at once.
    hub.reachable = False
    log = EvalLog.from_settings(hub_settings(settings, tmp_path), hf_api=hub)  # type: ignore[arg-type]
    assert log.hub is not None
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(log.hub.wait_first_attempt(timeout=None)), daemon=True)
    waiter.start()
    waiter.join(10)  # no timeout was given: only the end of the first attempt can end the wait
    assert outcome == [False]
    hub.reachable = True
    log.close()

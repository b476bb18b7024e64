"""Runs, comparisons and CI gates: `runs`, `compare`, `batch --fail-under`, `compare --max-drop`, through the CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest

from evaluator import cli
from evaluator.batch import run_batch
from evaluator.batch_io import parse_batch
from evaluator.compare import MismatchError, compare
from evaluator.config import Settings
from evaluator.intervals import bootstrap_mean
from evaluator.log import EvalLog
from evaluator.models import EvaluationRecord, verdict_for
from evaluator.openai_batch import ingest, submit, wait
from evaluator.runs import Judge, Run, RunIndex, RunInfo
from evaluator.service import Evaluator
from evaluator.testing.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-runs-0123456789abcdef"
GOOD = {  # answers that cover their reference: the local server grades by word overlap with it
    "stat-001": "The mean is the arithmetic average of all values; the median is the middle value of sorted data, "
    "preferred for skewed distributions or outliers that pull the mean.",
    "stat-002": "Standard deviation measures how spread out values are around the mean: the square root of the "
    "variance, in the same units as the data.",
    "ml-001": "Supervised learning trains on labelled examples to predict a target; unsupervised learning finds "
    "structure such as clusters in unlabelled data.",
    "ml-002": "Classification predicts discrete categories or labels; regression predicts continuous numeric values.",
}
BAD = "I am not sure."


@pytest.fixture
def cli_env(settings: Settings, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment: the OpenAI judge on the local server, the test dataset and log."""
    for name, value in {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": openai_server.base_url,
        "DATA_PATH": str(settings.data_path),
        "LOG_PATH": str(settings.log_path),
        "CACHE_PATH": str(settings.cache_path),
    }.items():
        monkeypatch.setenv(name, value)
    return settings


def answers(path: Path, overrides: dict[str, str] | None = None) -> Path:
    """A JSONL answers file over the questions of :data:`GOOD`, with some answers replaced."""
    rows = [{"question_id": qid, "answer": (overrides or {}).get(qid, text)} for qid, text in GOOD.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline of good answers and a candidate where two of them regressed."""
    assert run_cli(capsys, "batch", str(answers(tmp_path / "a.jsonl")), "-o", str(tmp_path / "a.out.jsonl"),
                   "--name", "baseline", "-q")[0] == 0  # fmt: skip
    worse = answers(tmp_path / "b.jsonl", {"stat-002": BAD, "ml-002": BAD})
    assert run_cli(capsys, "batch", str(worse), "-o", str(tmp_path / "b.out.csv"), "--name", "candidate", "-q")[0] == 0


# -- runs --------------------------------------------------------------------------------------------
def test_runs_lists_each_batch_with_its_name_dataset_judge_counts_and_cost(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_runs(tmp_path, capsys)

    code, out, _ = run_cli(capsys, "runs", "--json")

    assert code == 0
    runs = json.loads(out)
    assert [r["name"] for r in runs] == ["candidate", "baseline"]  # newest first
    candidate, baseline = runs
    for run in runs:
        assert (run["items"], run["ok"], run["failed"]) == (4, 4, 0)
        assert (run["judge_backend"], run["judge_model"], run["prompt_version"]) == (
            "openai",
            "gpt-4o-mini",
            "judge-v1",
        )
        assert run["dataset"] == cli_env.data_path.name and run["source"] == "cli"
        assert run["cost_usd"] > 0 and run["started"] <= run["ended"]
    assert candidate["input"] == "b.jsonl" and baseline["input"] == "a.jsonl"
    assert candidate["dataset_hash"] == baseline["dataset_hash"]  # same questions and references
    assert candidate["mean_score"] < baseline["mean_score"]
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0 and "baseline" in out and "candidate" in out and baseline["id"] in out


def test_runs_logged_before_run_records_existed_and_runs_pulled_from_the_hub_are_listed(
    settings: Settings, tmp_path: Path
) -> None:
    old = {"kind": "evaluation", "batch_id": "batch-old", "source": "batch", "judge_backend": "offline",
           "judge_model": "m", "prompt_version": "offline-v1", "cost_usd": 0.0}  # fmt: skip
    lines = [
        {**old, "id": "1", "timestamp": "2025-01-01T00:00:00Z", "question_id": "q1", "status": "ok", "score": 8.0},
        {**old, "id": "2", "timestamp": "2025-01-01T00:00:01Z", "question_id": "q2", "status": "error", "score": None},
        # a resumed job graded q2 later: the success wins over the failed attempt
        {**old, "id": "3", "timestamp": "2025-01-02T00:00:00Z", "question_id": "q2", "status": "ok", "score": 4.0},
        {**old, "id": "4", "timestamp": "2025-01-02T00:00:01Z", "question_id": "q3", "status": "error", "score": None},
        {"kind": "feedback", "id": "5", "evaluation_id": "1", "comment": "fine"},
        {"kind": "evaluation", "id": "6", "question_id": "q1", "status": "ok", "score": 5.0},  # not in a batch
    ]
    mirror = settings.log_path.parent / "hub" / "logs"  # where the Hub copy of the log is pulled
    mirror.mkdir(parents=True)
    (mirror / "evaluations-other-replica.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    runs = RunIndex.from_log(EvalLog(settings.log_path)).runs()

    assert len(runs) == 1
    run = runs[0]
    assert (run.id, run.items, run.ok, run.failed, run.mean_score) == ("batch-old", 3, 2, 1, 6.0)
    assert (run.started, run.ended, run.name) == ("2025-01-01T00:00:00Z", "2025-01-02T00:00:01Z", None)
    assert run.judge == Judge("offline", "m", "offline-v1")


def test_a_run_is_found_by_id_name_or_id_prefix(cli_env: Settings, tmp_path: Path, capsys) -> None:
    two_runs(tmp_path, capsys)
    index = RunIndex.from_log(EvalLog(cli_env.log_path))
    baseline = index.get("baseline")
    assert index.get(baseline.id) == baseline == index.get(baseline.id[:10])
    with pytest.raises(Exception, match="no run named 'nope'"):
        index.get("nope")
    with pytest.raises(Exception, match="several run ids"):
        index.get("batch-")


def test_app_and_openai_batch_runs_are_runs_too(settings: Settings, openai_server: FakeOpenAIServer, tmp_path: Path):
    evaluator = Evaluator(dataclasses.replace(settings, judge_backend="auto", openai_api_key=KEY,
                                              openai_base_url=openai_server.base_url))  # fmt: skip
    items = parse_batch(answers(tmp_path / "a.jsonl"), evaluator=evaluator).items
    run_batch(evaluator, items, job_id="batch-from-app", run=RunInfo(name="from the app", source="app"))
    out = tmp_path / "graded.jsonl"
    job = submit(evaluator, items, out, name="half price", input_name="a.jsonl")
    assert job is not None
    wait(evaluator, job, interval=0.01)
    ingest(evaluator, out)

    runs = {r.name: r for r in RunIndex.from_log(evaluator.log).runs()}

    assert runs["from the app"].source == "app" and runs["from the app"].ok == 4
    assert runs["half price"].source == "openai-batch" and runs["half price"].ok == 4
    assert runs["half price"].input == "a.jsonl" and runs["half price"].ended is not None


# -- compare -----------------------------------------------------------------------------------------
def test_compare_finds_the_regressed_items_with_both_answers_and_the_reference(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_runs(tmp_path, capsys)

    code, out, _ = run_cli(capsys, "compare", "baseline", "candidate", "--json")

    assert code == 0
    result = json.loads(out)
    assert (result["shared"], result["scored"], result["only_a"], result["only_b"]) == (4, 4, 0, 0)
    assert (result["wins"], result["ties"], result["losses"]) == (0, 2, 2)
    assert result["delta"] == pytest.approx(result["mean_b"] - result["mean_a"], abs=1e-3) and result["delta"] < 0
    assert result["ci"]["low"] <= result["delta"] <= result["ci"]["high"]
    assert [r["question_id"] for r in result["regressions"]] in (["stat-002", "ml-002"], ["ml-002", "stat-002"])
    worst = result["regressions"][0]
    assert worst["answer_b"] == BAD and worst["answer_a"] == GOOD[worst["question_id"]]
    assert worst["reference"] and worst["score_a"] > worst["score_b"] and worst["feedback_a"] and worst["feedback_b"]
    assert sum(result["verdict_changes"].values()) >= 1
    assert all("->" in change for change in result["verdict_changes"])
    categories = {c["category"]: c for c in result["categories"]}
    assert categories["Machine Learning"]["n"] == 2 and categories["Machine Learning"]["delta"] < 0
    # The same runs always give the same interval (seeded bootstrap): a CI gate never flips on a re-run.
    assert json.loads(run_cli(capsys, "compare", "baseline", "candidate", "--json")[1])["ci"] == result["ci"]
    code, md, _ = run_cli(capsys, "compare", "baseline", "candidate", "--markdown")
    assert code == 0 and "| category |" in md and BAD in md
    code, text, _ = run_cli(capsys, "compare", "baseline", "candidate")
    assert code == 0 and "Most regressed (2)" in text and "reference:" in text


def test_results_files_compare_like_runs(cli_env: Settings, tmp_path: Path, capsys) -> None:
    two_runs(tmp_path, capsys)
    from_log = json.loads(run_cli(capsys, "compare", "baseline", "candidate", "--json")[1])
    code, out, _ = run_cli(capsys, "compare", str(tmp_path / "a.out.jsonl"), str(tmp_path / "b.out.csv"), "--json")
    assert code == 0
    from_files = json.loads(out)
    for key in ("delta", "ci", "wins", "ties", "losses", "verdict_changes"):
        assert from_files[key] == from_log[key]


def test_compare_refuses_runs_of_different_judges_unless_forced(
    cli_env: Settings, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_runs(tmp_path, capsys)
    monkeypatch.setenv("MASTER_MODEL_NAME", "gpt-4o")
    assert run_cli(capsys, "batch", str(answers(tmp_path / "c.jsonl")), "-o", str(tmp_path / "c.jsonl.out.jsonl"),
                   "--name", "other judge", "-q")[0] == 0  # fmt: skip

    code, out, err = run_cli(capsys, "compare", "baseline", "other judge")

    assert code == 2 and out == ""
    assert "different judges" in err and "gpt-4o-mini" in err and "openai:gpt-4o@judge-v1" in err and "--force" in err
    code, out, _ = run_cli(capsys, "compare", "baseline", "other judge", "--force")
    assert code == 0 and out.startswith("warning: the runs were graded by different judges")


def test_compare_refuses_another_version_of_the_dataset(
    cli_env: Settings, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_runs(tmp_path, capsys)
    data = json.loads(cli_env.data_path.read_text(encoding="utf-8"))
    for item in data:
        if item["id"] == "ml-001":
            item["reference"] = "Supervised learning has labels. Unsupervised learning has none."
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("DATA_PATH", str(edited))
    assert run_cli(capsys, "batch", str(answers(tmp_path / "c.jsonl")), "-o", str(tmp_path / "c.out.jsonl"),
                   "--name", "v2", "-q")[0] == 0  # fmt: skip

    code, _, err = run_cli(capsys, "compare", "baseline", "v2")

    assert code == 2 and "1 of the 4 shared questions have another question or reference text" in err
    runs = {r["name"]: r for r in json.loads(run_cli(capsys, "runs", "--json")[1])}
    assert runs["v2"]["dataset_hash"] != runs["baseline"]["dataset_hash"]


def test_compare_only_counts_shared_questions_and_says_so(cli_env: Settings, tmp_path: Path, capsys) -> None:
    two_runs(tmp_path, capsys)
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(answers(tmp_path / "x.jsonl").read_text().splitlines(True)[:2]))
    assert run_cli(capsys, "batch", str(subset), "-o", str(tmp_path / "s.out.jsonl"), "--name", "subset", "-q")[0] == 0
    result = json.loads(run_cli(capsys, "compare", "baseline", "subset", "--json")[1])
    assert (result["shared"], result["only_a"], result["only_b"]) == (2, 2, 0)
    assert any("different question sets" in w for w in result["warnings"])


def test_unknown_runs_are_a_clear_error(cli_env: Settings, tmp_path: Path, capsys) -> None:
    two_runs(tmp_path, capsys)
    code, _, err = run_cli(capsys, "compare", "baseline", "nope")
    assert code == 2 and "no run named 'nope'" in err


# -- gates -------------------------------------------------------------------------------------------
def test_fail_under_fails_a_batch_whose_mean_is_below_the_score(cli_env: Settings, tmp_path: Path, capsys) -> None:
    worse = answers(tmp_path / "b.jsonl", {"stat-002": BAD, "ml-002": BAD})
    code, _, err = run_cli(capsys, "batch", str(worse), "-o", str(tmp_path / "b.out.jsonl"), "--fail-under", "9", "-q")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("FAIL: the mean score") and "below --fail-under 9" in err
    code, _, err = run_cli(capsys, "batch", str(worse), "-o", str(tmp_path / "b.out.jsonl"), "--fail-under", "1", "-q")
    assert code == 0 and "FAIL" not in err
    code, _, err = run_cli(capsys, "batch", str(worse), "-o", str(tmp_path / "b.out.jsonl"), "--fail-under", "11")
    assert code == 2 and "0 to 10" in err


def test_max_drop_fails_on_the_interval_bound(cli_env: Settings, tmp_path: Path, capsys) -> None:
    two_runs(tmp_path, capsys)
    result = json.loads(run_cli(capsys, "compare", "baseline", "candidate", "--json")[1])
    low = -result["ci"]["low"]

    code, _, err = run_cli(capsys, "compare", "baseline", "candidate", "--max-drop", f"{low - 0.01:.3f}")
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("FAIL: candidate vs baseline")
    assert run_cli(capsys, "compare", "baseline", "candidate", "--max-drop", f"{low + 0.01:.3f}")[0] == 0
    assert run_cli(capsys, "compare", "baseline", "baseline", "--max-drop", "0")[0] == 0  # no change at all


def _run(run_id: str) -> Run:
    return Run(run_id, run_id, "cli", "d", "h", None, None, (Judge("openai", "m", "v1"),), None, None, 0, 0, 0, None, 0)


def _item(n: int, score: float, answer: str = "a", question_id: str | None = None) -> EvaluationRecord:
    qid = question_id or f"q{n}"
    return EvaluationRecord.from_dict(
        {"question_id": qid, "question": f"q{n}?", "reference": "r", "answer": answer, "status": "ok", "score": score,
         "verdict": verdict_for(score)}
    )  # fmt: skip


def _items(scores: list[float]) -> list[EvaluationRecord]:
    return [_item(n, s) for n, s in enumerate(scores)]


def test_the_gate_uses_the_interval_not_the_point_estimate() -> None:
    # A small, noisy change: the mean drops by 0.2 only, but the data cannot rule out a drop of more than 0.5.
    a = [5.0] * 10
    b = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 3.0]
    result = compare(_run("a"), _items(a), _run("b"), _items(b))
    assert result.delta == pytest.approx(-0.2)
    assert result.ci[0] < -0.5 < result.delta
    assert result.gate(0.5) is not None and "more than --max-drop 0.5" in result.gate(0.5)
    # The same small drop measured consistently on every item passes.
    steady = compare(_run("a"), _items(a), _run("b"), _items([4.8] * 10))
    assert steady.ci == (pytest.approx(-0.2), pytest.approx(-0.2)) and steady.gate(0.5) is None


def test_the_same_runs_give_the_same_report_whatever_order_their_items_come_in() -> None:
    # The log holds a batch's items in the order they finished, its results file in line order.
    a = _items([5.0, 6.0, 2.0, 8.0, 7.0, 3.0, 9.0, 4.0])
    b = _items([6.0, 4.0, 7.0, 8.0, 2.0, 9.0, 3.0, 4.0])
    forward = compare(_run("a"), a, _run("b"), b).to_dict()
    backward = compare(_run("a"), a[::-1], _run("b"), b[3:] + b[:3]).to_dict()
    assert forward == backward


def test_compare_needs_a_shared_question_and_refuses_mismatched_judges_in_code() -> None:
    other = dataclasses.replace(_run("b"), judges=(Judge("offline", "m", "offline-v1"),))
    with pytest.raises(MismatchError, match="different judges"):
        compare(_run("a"), _items([5.0]), other, _items([5.0]))
    with pytest.raises(Exception, match="no question in common"):
        compare(_run("a"), _items([5.0]), _run("b"), [_item(0, 5.0, question_id="other")])


def test_paired_bootstrap_interval() -> None:
    # Items differ a lot from each other, but B beats A by exactly 1 on each: the paired interval is exactly 1.
    assert bootstrap_mean([1.0] * 50) == (1.0, 1.0)
    low, high = bootstrap_mean([0.0, 1.0] * 100)
    assert 0.4 < low < 0.5 < high < 0.6
    assert bootstrap_mean([0.0, 1.0] * 100) == (low, high)  # seeded
    assert bootstrap_mean([0.0] * 100 + [1.0] * 100) == (low, high)  # the same values in another order
    with pytest.raises(ValueError):
        bootstrap_mean([])


def test_shipped_examples_make_two_comparable_runs() -> None:
    for name in ("runs-baseline.jsonl", "runs-candidate.jsonl"):
        rows = [json.loads(line) for line in (ROOT / "examples" / name).read_text().splitlines()]
        assert len(rows) == 12 and all(r["question_id"] and r["answer"] for r in rows)


def test_comparison_csv_lists_every_question_most_regressed_first_and_defuses_formulas() -> None:
    a = _items([5.0, 5.0, 5.0])
    b = [_item(0, 9.0, "fine"), _item(1, 1.0, '=HYPERLINK("x")'), _item(2, 5.0, "ok")]
    rows = list(csv.DictReader(io.StringIO(compare(_run("a"), a, _run("b"), b).csv_text())))
    assert [r["question_id"] for r in rows] == ["q1", "q2", "q0"]
    assert rows[0]["answer_b"] == '\'=HYPERLINK("x")' and rows[0]["delta"] == "-4.0"

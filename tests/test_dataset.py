"""The Q&A dataset loader: the shipped file is valid, bad files are reported precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator.dataset import UNCATEGORISED, Dataset, QAItem, load_dataset, parse_dataset
from evaluator.errors import DatasetError, NotFoundError

from .conftest import DATA_PATH

GOOD = [
    {"id": "a1", "question": "What is overfitting?", "reference": "Fitting noise.", "category": "ML"},
    {"id": "a2", "question": "What is a p-value?", "answer": "A probability.", "difficulty": "Hard"},
]


def test_shipped_dataset_is_large_and_complete() -> None:
    ds = load_dataset(DATA_PATH)
    assert len(ds) >= 150
    assert len({i.id for i in ds}) == len(ds)
    assert all(i.question and i.reference and i.category and i.difficulty in ("easy", "medium", "hard") for i in ds)
    assert len(ds.categories) >= 5


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_each_format_loads_the_same_items(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"qa.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(GOOD))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(x) for x in GOOD) + "\n\n")
    else:
        path.write_text(
            "id,question,reference,category,difficulty\na1,What is overfitting?,Fitting noise.,ML,\n"
            "a2,What is a p-value?,A probability.,,Hard\n"
        )
    ds = load_dataset(path)
    assert [i.id for i in ds] == ["a1", "a2"]
    assert ds.get("a2") == QAItem("a2", "What is a p-value?", "A probability.", UNCATEGORISED, "hard")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '[\n  {"id": "a1",\n   "question": "q" "reference": "r"}\n]', "line 3, column"),
        ("bad.json", '{"questions": []}', "JSON array"),
        ("bad.json", "[]", "no items"),
        ("bad.json", json.dumps([GOOD[0], {"id": "a2", "question": "q"}]), "item 2 is missing field 'reference'"),
        ("bad.json", json.dumps([GOOD[0], "text"]), "item 2 is not an object"),
        ("bad.json", json.dumps([GOOD[0], GOOD[1], {**GOOD[0]}]), "item 3 repeats id 'a1', first used at item 1"),
        ("bad.jsonl", json.dumps(GOOD[0]) + "\n{oops\n", "line 2"),
        (
            "bad.jsonl",
            json.dumps(GOOD[0]) + "\n" + json.dumps({"id": "x", "reference": "r"}),
            "line 2 is missing field 'question'",
        ),
        ("bad.csv", "id,question\n1,q\n", "CSV header must include"),
        ("bad.csv", "id,question,reference\n1,q,r\n2,,r\n", "row 2"),
        ("bad.txt", "whatever", "unsupported format"),
        (
            "bad.json",
            json.dumps([GOOD[0], {**GOOD[1], "reference": "r \ud800"}]),
            r"item 2: The reference holds an invalid character at position 3 \(a lone surrogate",
        ),
        ("bad.jsonl", json.dumps({**GOOD[0], "id": "a" * 201}), "line 1: The id is 201 characters long"),
    ],
)
def test_bad_files_say_exactly_what_is_wrong(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(tmp_path / "bin.json")


def test_lookup_filter_search_and_closest() -> None:
    ds = load_dataset(DATA_PATH)
    item = ds.items[0]
    assert ds.get(item.id) is item
    with pytest.raises(NotFoundError, match="nope-999"):
        ds.get("nope-999")
    cat = ds.categories[0]
    assert ds.filter(category=cat) and all(i.category == cat for i in ds.filter(category=cat))
    word = max(item.question.split(), key=len).strip("?,.").lower()
    assert item in ds.search(word)
    assert ds.search("zzzzqqqq") == []
    found, overlap = ds.closest(item.question)
    assert found is item and overlap == 1.0
    assert ds.random(category=cat).category == cat
    with pytest.raises(NotFoundError):
        ds.random(category="No such category")


def test_empty_dataset_is_rejected() -> None:
    with pytest.raises(DatasetError):
        Dataset([])
    with pytest.raises(DatasetError, match=r"upload\.json"):
        parse_dataset("[]", "json", name="upload.json")


def test_closest_proposes_a_real_match_or_nothing() -> None:
    ds = load_dataset(DATA_PATH)
    found, _ = ds.closest("How does supervised learning differ from unsupervised learning?")
    assert found.id == "ml-001"
    assert ds.closest("What is 2+2?") is None
    assert ds.closest("the of and") is None


def test_search_matches_whole_non_ascii_words_not_their_ascii_fragments() -> None:
    # Accented and non-Latin words used to be cut to their ASCII letters ("日本語" to nothing: every item matched).
    ds = Dataset(
        [
            QAItem("fr-1", "Qu'est-ce qu'un café crème ?", "Un café avec de la crème."),
            QAItem("fr-2", "Qu'est-ce que la caféine ?", "Un stimulant."),
            QAItem("ja-1", "日本語 とは？", "日本の言語。"),
            QAItem("en-1", "What is a cafeteria?", "A canteen."),
        ]
    )
    assert [i.id for i in ds.search("crème")] == ["fr-1"]
    assert [i.id for i in ds.search("café")] == ["fr-1", "fr-2"]
    assert [i.id for i in ds.search("日本語")] == ["ja-1"]
    assert ds.search("中文") == []
    assert len(load_dataset(DATA_PATH).search("日本語")) == 0


def test_an_unreadable_csv_dataset_is_a_dataset_error_saying_where(tmp_path: Path) -> None:
    # It used to escape as a raw _csv.Error (a traceback in the CLI, "something went wrong" in the app).
    path = tmp_path / "big.csv"
    path.write_text(f'id,question,reference\nq1,Why?,"{"x" * 200_000}"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"big\.csv: unreadable CSV at line 2"):
        load_dataset(path)

"""The Q&A dataset: load and validate JSON, JSONL or CSV files; look items up, filter and search."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import DatasetError, InputError, NotFoundError
from .text import content_words
from .textsafety import MAX_LABEL_CHARS, check_text

REQUIRED = ("id", "question", "reference")
# Accepted spellings of the reference answer column in files people bring.
REFERENCE_ALIASES = ("reference", "reference_answer", "answer", "expected_answer")
DIFFICULTIES = ("easy", "medium", "hard")
_WORD = re.compile(r"[^\W_]+")  # words in any script: letters and digits


UNCATEGORISED = "Uncategorised"  # the category shown for a question that has none (datasets, batches, charts)


@dataclass(frozen=True)
class QAItem:
    """One question with its reference answer."""

    id: str
    question: str
    reference: str
    category: str = UNCATEGORISED
    difficulty: str = "medium"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return asdict(self)


class Dataset:
    """An ordered, validated collection of :class:`QAItem` with lookup, filter and search."""

    def __init__(self, items: Sequence[QAItem], *, name: str = "dataset") -> None:
        if not items:
            raise DatasetError(f"{name}: the dataset has no items")
        self.name = name
        self.items: tuple[QAItem, ...] = tuple(items)
        self._by_id = {item.id: item for item in self.items}
        self._words = [set(_WORD.findall(f"{i.question} {i.reference}".lower())) for i in self.items]
        self._question_terms = [content_words(i.question) for i in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def get(self, question_id: str) -> QAItem:
        """The item with this id; :class:`NotFoundError` naming the id if there is none."""
        try:
            return self._by_id[question_id.strip()]
        except KeyError:
            shown = question_id if len(question_id) <= 80 else question_id[:80] + "…"
            raise NotFoundError(f"No question with id {shown!r} in {self.name}") from None

    @property
    def categories(self) -> list[str]:
        """Distinct categories in first-seen order."""
        return list(dict.fromkeys(i.category for i in self.items))

    @property
    def difficulties(self) -> list[str]:
        """Distinct difficulties, easy to hard first."""
        present = {i.difficulty for i in self.items}
        return [d for d in DIFFICULTIES if d in present] + sorted(present - set(DIFFICULTIES))

    def filter(self, *, category: str | None = None, difficulty: str | None = None) -> list[QAItem]:
        """Items matching the category and difficulty (``None`` or ``""`` matches all)."""
        return [
            i
            for i in self.items
            if (not category or i.category == category) and (not difficulty or i.difficulty == difficulty)
        ]

    def search(self, query: str = "", *, category: str | None = None, difficulty: str | None = None) -> list[QAItem]:
        """Full-text search over id, question and reference; every query word must match."""
        words = _WORD.findall(query.lower())
        out = []
        for item, bag in zip(self.items, self._words, strict=True):
            if (category and item.category != category) or (difficulty and item.difficulty != difficulty):
                continue
            if all(w in bag or any(b.startswith(w) for b in bag) or w in item.id.lower() for w in words):
                out.append(item)
        return out

    def closest(self, question: str, *, min_overlap: float = 0.2) -> tuple[QAItem, float] | None:
        """The item whose question shares the most content words with ``question``, and that overlap in [0, 1].

        ``None`` when no question shares at least ``min_overlap`` (Jaccard) of their content words.
        """
        words = content_words(question)
        if not words:
            return None
        best, best_score = None, 0.0
        for item, theirs in zip(self.items, self._question_terms, strict=True):
            score = len(words & theirs) / len(words | theirs)
            if score > best_score:
                best, best_score = item, score
        return (best, best_score) if best and best_score >= min_overlap else None

    def random(
        self, *, category: str | None = None, difficulty: str | None = None, rng: random.Random | None = None
    ) -> QAItem:
        """A random item, optionally within a category and difficulty."""
        pool = self.filter(category=category, difficulty=difficulty)
        if not pool:
            raise NotFoundError(
                f"No question matches category={category or 'any'} and difficulty={difficulty or 'any'}"
            )
        return (rng or random).choice(pool)


def cell(value: Any) -> str:
    """A raw table cell as stripped text (None: empty)."""
    return "" if value is None else str(value).strip()


def _validate(raw_items: Iterable[tuple[str, Any]], name: str) -> list[QAItem]:
    """Turn (location, raw object) pairs into items, raising on the first problem found."""
    items: list[QAItem] = []
    seen: dict[str, str] = {}
    for where, raw in raw_items:
        if not isinstance(raw, dict):
            raise DatasetError(f"{name}: {where} is not an object with fields {', '.join(REQUIRED)}")
        ref_key = next((k for k in REFERENCE_ALIASES if cell(raw.get(k))), None)
        values = {"id": cell(raw.get("id")), "question": cell(raw.get("question"))}
        values["reference"] = cell(raw.get(ref_key)) if ref_key else ""
        missing = [k for k in REQUIRED if not values[k]]
        if missing:
            raise DatasetError(f"{name}: {where} is missing field {', '.join(repr(m) for m in missing)}")
        category, difficulty = cell(raw.get("category")), cell(raw.get("difficulty")).lower()
        try:
            for field, text in (*values.items(), ("category", category), ("difficulty", difficulty)):
                check_text(text, field, limit=None if field in ("question", "reference") else MAX_LABEL_CHARS)
        except InputError as exc:
            raise DatasetError(f"{name}: {where}: {exc}") from None
        qid = values["id"]
        if qid in seen:
            raise DatasetError(f"{name}: {where} repeats id {qid!r}, first used at {seen[qid]}")
        seen[qid] = where
        items.append(
            QAItem(
                id=qid,
                question=values["question"],
                reference=values["reference"],
                category=category or UNCATEGORISED,
                difficulty=difficulty or "medium",
            )
        )
    if not items:
        raise DatasetError(f"{name}: the dataset has no items")
    return items


def parse_dataset(text: str, fmt: str, *, name: str = "dataset") -> Dataset:
    """Parse dataset ``text`` in ``fmt`` (``json``, ``jsonl`` or ``csv``) and validate it."""
    fmt = fmt.lower().lstrip(".")
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list):
            raise DatasetError(f"{name}: expected a JSON array of items (or an object with an 'items' array)")
        pairs = ((f"item {n}", obj) for n, obj in enumerate(data, 1))
    elif fmt == "jsonl":
        parsed = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                parsed.append((f"line {lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{name}: invalid JSON on line {lineno}, column {exc.colno}: {exc.msg}") from None
        pairs = iter(parsed)
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in reader.fieldnames or []]
        if "id" not in header or "question" not in header or not set(REFERENCE_ALIASES) & set(header):
            raise DatasetError(f"{name}: CSV header must include id, question and reference; got {header}")
        try:
            pairs = [
                (f"row {n} (line {reader.line_num})", {k.strip(): v for k, v in row.items() if k})
                for n, row in enumerate(reader, 1)
            ]
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
            raise DatasetError(f"{name}: unreadable CSV at line {reader.line_num + 1}: {exc}") from None
    else:
        raise DatasetError(f"{name}: unsupported format {fmt!r}; use .json, .jsonl or .csv")
    return Dataset(_validate(pairs, name), name=name)


def load_dataset(path: str | Path) -> Dataset:
    """Load and validate a dataset file; the format comes from its extension."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Dataset file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    return parse_dataset(text, path.suffix or "json", name=path.name)

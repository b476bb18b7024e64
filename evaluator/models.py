"""Result and record types, and their serialisation to plain dicts, in one place."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SCHEMA_VERSION = 1
CRITERIA = ("correctness", "completeness", "relevance", "clarity")
VERDICTS = ("correct", "partially correct", "incorrect")
Status = Literal["ok", "error"]


def new_id() -> str:
    """A unique record id (UUID4 hex)."""
    return uuid.uuid4().hex


def utc_now() -> str:
    """The current UTC time as ISO 8601 with a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def verdict_for(score: float) -> str:
    """The verdict label for an overall score 0-10 (>= 7 correct, >= 4 partially correct)."""
    if score >= 7:
        return "correct"
    if score >= 4:
        return "partially correct"
    return "incorrect"


@dataclass
class ScoreTally:
    """Graded scores counted as they come: how many and their sum, hence their mean.

    The one score aggregation of the log's dashboard, a batch summary and a batch's running progress.
    """

    n: int = 0
    total: float = 0.0

    @classmethod
    def of(cls, scores: Iterable[float]) -> ScoreTally:
        """The tally of ``scores``."""
        tally = cls()
        for score in scores:
            tally.add(score)
        return tally

    def add(self, score: float) -> None:
        """Count one graded score."""
        self.n += 1
        self.total += score

    def mean(self, digits: int = 4) -> float | None:
        """The mean score rounded to ``digits`` (None before the first score)."""
        return round(self.total / self.n, digits) if self.n else None


@dataclass(frozen=True)
class GradeRequest:
    """What the judge grades: one answer to one question against its reference."""

    question: str
    reference: str
    answer: str


@dataclass(frozen=True)
class Grade:
    """A rubric grade: overall 0-10, four criteria 1-5, verdict, feedback, missed points."""

    score: float
    verdict: str
    criteria: dict[str, int]
    feedback: str
    missed_points: list[str] = field(default_factory=list)
    # The offline judge's calibrated P(a human grader calls the answer correct), and what kind of grade it is
    # ("similarity estimate, no LLM read this answer"); None for the LLM judge.
    confidence: float | None = None
    caveat: str | None = None


@dataclass(frozen=True)
class Usage:
    """Tokens spent on one judge call and their price in USD."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Consistency:
    """Spread of k repeated gradings of the same answer."""

    runs: int
    mean: float
    stdev: float
    scores: list[float]


@dataclass(frozen=True)
class JudgeResult:
    """What a judge backend returns: a grade, or an error with its reason (never an invented score)."""

    status: Status
    backend: str  # "openai" or "offline"
    model: str
    prompt_version: str
    grade: Grade | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    cache_hit: bool = False
    consistency: Consistency | None = None
    # False for an error that asking again cannot change (e.g. an answer the offline judge cannot read).
    retryable: bool = True

    @property
    def ok(self) -> bool:
        """True when a grade was produced."""
        return self.status == "ok"


@dataclass(frozen=True)
class EvaluationRecord:
    """One graded answer as stored in the evaluation log (``kind = "evaluation"``)."""

    question_id: str | None
    question: str
    reference: str
    answer: str
    result: JudgeResult
    category: str | None = None
    difficulty: str | None = None
    source: str = "app"  # app, cli, api, batch
    candidate_model: str | None = None
    batch_id: str | None = None
    id: str = field(default_factory=new_id)
    timestamp: str = field(default_factory=utc_now)

    @classmethod
    def build(
        cls,
        request: GradeRequest,
        result: JudgeResult,
        *,
        source: str,
        question_id: str | None = None,
        category: str | None = None,
        difficulty: str | None = None,
        candidate_model: str | None = None,
        batch_id: str | None = None,
        id: str | None = None,
    ) -> EvaluationRecord:
        """The record of one grading: the graded ``request`` (texts as sent), the judge's ``result`` and where
        it came from; the one builder of the interactive, batch and OpenAI Batch paths. ``id``: default a new one."""
        return cls(
            question_id=question_id,
            question=request.question,
            reference=request.reference,
            answer=request.answer,
            result=result,
            category=category,
            difficulty=difficulty,
            source=source,
            candidate_model=candidate_model,
            batch_id=batch_id,
            id=id or new_id(),
        )

    @property
    def ok(self) -> bool:
        """True when the judge produced a grade."""
        return self.result.ok

    @property
    def score(self) -> float | None:
        """The overall score 0-10, None for a failed grading."""
        return self.result.grade.score if self.result.grade else None

    @property
    def verdict(self) -> str | None:
        """The verdict, None for a failed grading."""
        return self.result.grade.verdict if self.result.grade else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRecord:
        """The record of one log line (``to_dict()``'s output); missing or mistyped fields read as empty."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if type(value) is str else None

        def number(name: str) -> float | None:
            value = data.get(name)
            return float(value) if type(value) in (float, int) else None  # bool is not a number here

        score = number("score")
        grade = None
        if data.get("status") == "ok" and score is not None:
            verdict = text("verdict") or verdict_for(score)  # a line without one: the verdict its score means
            criteria, missed = data.get("criteria"), data.get("missed_points")
            grade = Grade(
                score=score,
                verdict=verdict,
                criteria=dict(criteria) if isinstance(criteria, dict) else {},
                feedback=text("feedback") or "",
                missed_points=list(missed) if isinstance(missed, list) else [],
                confidence=number("confidence"),
                caveat=text("caveat"),
            )
        consistency = data.get("consistency")
        result = JudgeResult(
            status="ok" if grade is not None else "error",
            backend=text("judge_backend") or "",
            model=text("judge_model") or "",
            prompt_version=text("prompt_version") or "",
            grade=grade,
            error=text("error"),
            usage=Usage(
                prompt_tokens=int(number("prompt_tokens") or 0),
                completion_tokens=int(number("completion_tokens") or 0),
                cost_usd=number("cost_usd") or 0.0,
            ),
            latency_ms=number("latency_ms") or 0.0,
            cache_hit=data.get("cache_hit") is True,
            consistency=Consistency(**consistency) if isinstance(consistency, dict) else None,
        )
        return cls(
            question_id=text("question_id"),
            question=text("question") or "",
            reference=text("reference") or "",
            answer=text("answer") or "",
            result=result,
            category=text("category"),
            difficulty=text("difficulty"),
            source=text("source") or "",
            candidate_model=text("candidate_model"),
            batch_id=text("batch_id"),
            id=text("id") or "",
            timestamp=text("timestamp") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON-ready dict written as one log line."""
        r = self.result
        g = r.grade
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "evaluation",
            "id": self.id,
            "timestamp": self.timestamp,
            "source": self.source,
            "question_id": self.question_id,
            "category": self.category,
            "difficulty": self.difficulty,
            "question": self.question,
            "reference": self.reference,
            "answer": self.answer,
            "candidate_model": self.candidate_model,
            "batch_id": self.batch_id,
            "judge_backend": r.backend,
            "judge_model": r.model,
            "prompt_version": r.prompt_version,
            "status": r.status,
            "error": r.error,
            "score": g.score if g else None,
            "verdict": g.verdict if g else None,
            "criteria": dict(g.criteria) if g else None,
            "feedback": g.feedback if g else None,
            "missed_points": list(g.missed_points) if g else None,
            "confidence": g.confidence if g else None,
            "caveat": g.caveat if g else None,
            "latency_ms": round(r.latency_ms, 2),
            "prompt_tokens": r.usage.prompt_tokens,
            "completion_tokens": r.usage.completion_tokens,
            "cost_usd": r.usage.cost_usd,
            "cache_hit": r.cache_hit,
            "consistency": asdict(r.consistency) if r.consistency else None,
        }


@dataclass(frozen=True)
class Sentiment:
    """A sentiment reading: label negative/neutral/positive, confidence in [0, 1], backend."""

    label: str
    score: float
    backend: str


@dataclass(frozen=True)
class FeedbackRecord:
    """A person's feedback on one evaluation (``kind = "feedback"``)."""

    evaluation_id: str
    comment: str
    sentiment: Sentiment
    agree: bool | None = None
    rating: int | None = None
    id: str = field(default_factory=new_id)
    timestamp: str = field(default_factory=utc_now)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackRecord:
        """The record of one log line (``to_dict()``'s output); missing or mistyped fields read as empty."""

        def text(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        agree, rating, score = data.get("agree"), data.get("rating"), data.get("sentiment_score")
        return cls(
            evaluation_id=text("evaluation_id"),
            comment=text("comment"),
            sentiment=Sentiment(
                label=text("sentiment_label"),
                score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0,
                backend=text("sentiment_backend"),
            ),
            agree=agree if isinstance(agree, bool) else None,
            rating=rating if isinstance(rating, int) and not isinstance(rating, bool) else None,
            id=text("id"),
            timestamp=text("timestamp"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON-ready dict written as one log line."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "feedback",
            "id": self.id,
            "timestamp": self.timestamp,
            "evaluation_id": self.evaluation_id,
            "agree": self.agree,
            "rating": self.rating,
            "comment": self.comment,
            "sentiment_label": self.sentiment.label,
            "sentiment_score": round(self.sentiment.score, 4),
            "sentiment_backend": self.sentiment.backend,
        }

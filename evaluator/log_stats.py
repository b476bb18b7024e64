"""Running statistics over the evaluation log: the dashboard's aggregate and a question's history.

:class:`LogStats` counts each record once, as :class:`~evaluator.log.EvalLog` reads or appends it, so a
dashboard refresh costs only the parsing of new lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .models import VERDICTS, ScoreTally


@dataclass
class LogStats:
    """Running totals over the log's records, updated once per new record (see :meth:`add`)."""

    by_id: dict[str, dict[str, Any]]  # the log's records by id (shared), to join feedback to its evaluation
    evaluations: int = 0
    feedback: int = 0
    errors: int = 0
    scores: ScoreTally = field(default_factory=ScoreTally)
    histogram: list[int] = field(default_factory=lambda: [0] * 11)
    verdicts: dict[Any, int] = field(default_factory=dict)
    categories: dict[Any, ScoreTally] = field(default_factory=dict)  # by category
    days: dict[Any, ScoreTally] = field(default_factory=dict)  # by YYYY-MM-DD
    backends: dict[Any, int] = field(default_factory=dict)
    judges: dict[tuple[Any, Any], list[float]] = field(default_factory=dict)  # (backend, model) -> [n, tokens, cost]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    rated: int = 0
    agreed: int = 0
    agreement: dict[str, list[int]] = field(default_factory=lambda: {v: [0, 0] for v in VERDICTS})  # [rated, agree]
    unmatched: dict[str, list[bool]] = field(default_factory=dict)  # feedback read before its evaluation
    rating_n: int = 0
    rating_sum: float = 0.0
    sentiment: dict[str, int] = field(default_factory=dict)
    by_question: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, rec: dict[str, Any]) -> None:
        """Count one record."""
        kind = rec.get("kind")
        if kind == "evaluation":
            self._add_evaluation(rec)
        elif kind == "feedback":
            self._add_feedback(rec)

    def _add_evaluation(self, rec: dict[str, Any]) -> None:
        # The hot path of every read and append: plain dict reads (no typed record: 100k lines must stay fast).
        get = rec.get
        self.evaluations += 1
        key = get("judge_backend")
        self.backends[key] = self.backends.get(key, 0) + 1
        judge = self.judges.get((key, get("judge_model")))
        if judge is None:
            judge = self.judges[(key, get("judge_model"))] = [0, 0, 0.0]
        judge[0] += 1
        value = get("prompt_tokens")
        if value.__class__ is int:
            self.prompt_tokens += value
            judge[1] += value
        value = get("completion_tokens")
        if value.__class__ is int:
            self.completion_tokens += value
            judge[1] += value
        value = get("cost_usd")
        if value.__class__ is float or value.__class__ is int:
            self.cost_usd += value
            judge[2] += value
        if get("cache_hit") is True:
            self.cache_hits += 1
        key = get("question_id")
        if key.__class__ is str:
            history = self.by_question.get(key)
            if history is None:
                self.by_question[key] = [rec]
            else:
                history.append(rec)
        score = get("score")
        if get("status") != "ok":
            self.errors += 1
        elif score.__class__ is float or score.__class__ is int:
            self.scores.add(score)
            self.histogram[10 if score >= 10 else 0 if score < 0 else int(score)] += 1
            key = get("verdict")
            self.verdicts[key] = self.verdicts.get(key, 0) + 1
            ts = get("timestamp")
            for table, key in (
                (self.categories, get("category")),
                (self.days, ts[:10] if ts.__class__ is str else None),
            ):
                tally = table.get(key)
                if tally is None:
                    tally = table[key] = ScoreTally()
                tally.add(score)
        if self.unmatched:
            for agree in self.unmatched.pop(rec["id"], ()):
                self._agree(rec, agree)

    def _add_feedback(self, rec: dict[str, Any]) -> None:
        get = rec.get
        self.feedback += 1
        agree, evaluation_id = get("agree"), get("evaluation_id")
        if agree.__class__ is bool and evaluation_id.__class__ is str:
            self.rated += 1
            self.agreed += agree
            evaluation = self.by_id.get(evaluation_id)
            if evaluation is None:
                self.unmatched.setdefault(evaluation_id, []).append(agree)
            else:
                self._agree(evaluation, agree)
        rating = get("rating")
        if rating.__class__ in (int, float):
            self.rating_n += 1
            self.rating_sum += rating
        label = get("sentiment_label")
        if label.__class__ is str:
            self.sentiment[label] = self.sentiment.get(label, 0) + 1

    def _agree(self, evaluation: dict[str, Any], agree: bool) -> None:
        cell = self.agreement.get(evaluation.get("verdict"))  # type: ignore[arg-type]
        if cell is not None:
            cell[0] += 1
            cell[1] += agree

    def aggregate(self, *, records: int, damaged_lines: int) -> dict[str, Any]:
        """Dashboard figures: counts, scores, verdicts, categories, days, cost, agreement, sentiment."""
        n_sentiment = sum(self.sentiment.values())
        return {
            "records": records,
            "evaluations": self.evaluations,
            "feedback": self.feedback,
            "ok": self.scores.n,
            "errors": self.errors,
            "damaged_lines": damaged_lines,
            "mean_score": self.scores.mean(),
            "score_histogram": list(self.histogram),  # index i counts scores in [i, i+1); index 10 counts 10
            "verdicts": {v: self.verdicts.get(v, 0) for v in VERDICTS},
            "categories": {k: {"count": t.n, "mean_score": t.mean()} for k, t in _by_name(self.categories, "none")},
            "scores_by_day": [
                {"date": d, "count": t.n, "mean_score": t.mean()} for d, t in _by_name(self.days, "unknown")
            ],
            "backends": dict(_by_name(self.backends, "unknown")),
            "judges": [
                {"backend": b, "model": m, "evaluations": int(n), "tokens": int(t), "cost_usd": round(c, 6)}
                for (b, m), (n, t, c) in sorted(self.judges.items(), key=lambda kv: -kv[1][0])
            ],
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens,
            },
            "cost_usd": round(self.cost_usd, 6),
            "cache_hits": self.cache_hits,
            "agreement": {
                "rated": self.rated,
                "agree": self.agreed,
                "rate": _mean(self.agreed, self.rated),
                "by_verdict": {
                    v: {"rated": n, "agree": a, "rate": _mean(a, n)} for v, (n, a) in self.agreement.items()
                },
            },
            "ratings": {"count": self.rating_n, "mean": _mean(self.rating_sum, self.rating_n)},
            "sentiment": {
                "counts": dict(self.sentiment),
                "share": {k: _mean(n, n_sentiment) for k, n in self.sentiment.items()},
            },
        }

    def question_history(self, question_id: str, *, limit: int = 5) -> dict[str, Any]:
        """Evaluations of one dataset question: count, graded count, mean score, and the ``limit`` latest ones."""
        recs = sorted(self.by_question.get(question_id, []), key=timestamp_of)
        scores = ScoreTally()
        for r in recs:
            if r.get("status") == "ok" and isinstance(r.get("score"), int | float):
                scores.add(r["score"])
        keys = ("id", "timestamp", "status", "score", "verdict", "answer", "feedback", "judge_backend", "source")
        return {
            "question_id": question_id,
            "count": len(recs),
            "graded": scores.n,
            "mean_score": scores.mean(),
            "last": [{k: r.get(k) for k in keys} for r in reversed(recs[-limit:])] if limit > 0 else [],
        }


def _by_name(table: dict[Any, Any], missing: str) -> list[tuple[str, Any]]:
    """``table``'s items with string keys (``missing`` for None), sorted."""
    return sorted(((missing if k is None else str(k), v) for k, v in table.items()), key=lambda kv: kv[0])


def _mean(total: float, n: int) -> float | None:
    return round(total / n, 4) if n else None


def timestamp_of(rec: dict[str, Any]) -> str:
    """A record's timestamp, or "" (the log's sort key)."""
    ts = rec.get("timestamp")
    return ts if isinstance(ts, str) else ""


def aggregate_records(records: Iterable[dict[str, Any]], *, damaged: int = 0) -> dict[str, Any]:
    """:meth:`LogStats.aggregate`'s figures over ``records`` only (e.g. the part of the log a filter keeps).

    Feedback counts towards agreement when the evaluation it rates is among ``records``.
    """
    recs = list(records)
    stats = LogStats({r["id"]: r for r in recs if isinstance(r.get("id"), str)})
    for rec in recs:
        stats.add(rec)
    return stats.aggregate(records=len(recs), damaged_lines=damaged)

"""A batch job's aggregates over its result rows: counts, mean score, verdicts, categories, tokens, cost."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dataset import UNCATEGORISED
from .models import VERDICTS, ScoreTally
from .text import plural

if TYPE_CHECKING:
    from .batch_io import ResultRow


@dataclass(frozen=True)
class BatchSummary:
    """Aggregates of one batch job; ``rows`` holds every item's result row, in input order.

    ``ok``/``failed`` count all items of the job, ``skipped`` those graded by an earlier run of the
    same job (their rows are included). ``rate`` is items processed per second in this run.
    """

    job_id: str
    n: int
    ok: int
    failed: int
    skipped: int
    mean_score: float | None
    verdicts: dict[str, int]
    category_means: dict[str, float]
    prompt_tokens: int
    completion_tokens: int
    candidate_tokens: int
    cost_usd: float
    wall_seconds: float
    rate: float
    rows: list[ResultRow] = field(default_factory=list, repr=False)

    @property
    def tokens(self) -> int:
        """Judge tokens, prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready aggregates (without the rows)."""
        return {
            "job_id": self.job_id,
            "n": self.n,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "mean_score": self.mean_score,
            "verdicts": dict(self.verdicts),
            "category_means": dict(self.category_means),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "candidate_tokens": self.candidate_tokens,
            "cost_usd": self.cost_usd,
            "wall_seconds": round(self.wall_seconds, 3),
            "rate": round(self.rate, 2),
        }

    def text(self) -> str:
        """A human summary, a few lines of plain text."""
        mean = f"{self.mean_score:.2f}/10" if self.mean_score is not None else "n/a"
        lines = [
            f"Batch {self.job_id}: {plural(self.n, 'item')}, {self.ok} ok, {self.failed} failed"
            f" ({self.skipped} already done in an earlier run)",
            f"Mean score: {mean}",
            "Verdicts: " + ", ".join(f"{v} {self.verdicts.get(v, 0)}" for v in VERDICTS),
        ]
        if self.category_means:
            lines.append("Per category: " + ", ".join(f"{c} {m:.2f}" for c, m in self.category_means.items()))
        cand = f", candidate {self.candidate_tokens}" if self.candidate_tokens else ""
        lines.append(f"Tokens: judge {self.tokens}{cand}   Cost: ${self.cost_usd:.6f}")
        lines.append(f"Time: {self.wall_seconds:.2f} s   Rate: {self.rate:.3g} items/s")
        return "\n".join(lines)


def summarize(
    job_id: str, rows: Sequence[ResultRow], *, skipped: int = 0, processed: int = 0, wall_seconds: float = 0.0
) -> BatchSummary:
    """Aggregates over result rows: counts, mean score, verdicts, per-category means, tokens, cost."""
    scores = ScoreTally()
    by_category: dict[str, ScoreTally] = defaultdict(ScoreTally)
    verdicts: Counter[str | None] = Counter()
    for r in rows:
        if r.ok and r.score is not None:
            scores.add(r.score)
            by_category[r.category or UNCATEGORISED].add(r.score)
            verdicts[r.verdict] += 1
    return BatchSummary(
        job_id=job_id,
        n=len(rows),
        ok=scores.n,
        failed=len(rows) - scores.n,
        skipped=skipped,
        mean_score=scores.mean(3),
        verdicts={v: verdicts[v] for v in VERDICTS},
        category_means={c: t.mean(3) or 0.0 for c, t in sorted(by_category.items())},
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        candidate_tokens=sum(r.candidate_tokens or 0 for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        wall_seconds=wall_seconds,
        rate=processed / wall_seconds if wall_seconds > 0 else 0.0,
        rows=list(rows),
    )

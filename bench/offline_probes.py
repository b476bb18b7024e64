"""The offline judge's score distribution on the hand-written probes, per kind of probe.

Runs tests/data/offline_probes.jsonl (answers to shipped questions: negations, swapped roles, misconceptions,
keyword lists, off-topic answers in the wrong kinds; correct paraphrases; partial answers) and prints, per kind:
count, mean / min / median / max score, the verdict counts and the mean confidence. The goals: no wrong probe
graded "correct", every paraphrase >= 5.

Usage: .venv/bin/python -m bench.offline_probes
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from evaluator.dataset import load_dataset
from evaluator.models import VERDICTS, GradeRequest
from evaluator.offline_judge import OfflineJudge

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "tests" / "data" / "offline_probes.jsonl"


def main() -> None:
    items = {q.id: q for q in load_dataset(ROOT / "data" / "Q&A_db_practice.json").items}
    probes = [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = [
        GradeRequest(items[p["question_id"]].question, items[p["question_id"]].reference, p["answer"]) for p in probes
    ]
    results = OfflineJudge().grade_many(requests)
    by_kind: dict[str, list] = defaultdict(list)
    for probe, result in zip(probes, results, strict=True):
        by_kind[probe["kind"]].append(result.grade)
    print(f"{len(probes)} probes, offline judge {results[0].prompt_version}")
    print(
        f"{'kind':<14}{'n':>4}{'mean':>7}{'min':>6}{'median':>8}{'max':>6}   " + "  ".join(VERDICTS) + "   confidence"
    )
    for kind, grades in sorted(by_kind.items()):
        scores = [g.score for g in grades]
        counts = "  ".join(f"{sum(g.verdict == v for g in grades):>{len(v)}}" for v in VERDICTS)
        confidence = statistics.fmean(g.confidence for g in grades)
        print(
            f"{kind:<14}{len(scores):>4}{statistics.fmean(scores):>7.2f}{min(scores):>6.1f}"
            f"{statistics.median(scores):>8.1f}{max(scores):>6.1f}   {counts}   {confidence:.2f}"
        )


if __name__ == "__main__":
    main()

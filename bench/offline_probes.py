"""The offline judge's score distribution on the hand-written probes, per kind of probe.

Runs tests/data/offline_probes.jsonl (written together with the checks) and tests/data/offline_probes_blind.jsonl
(six sets written blind to them, for other shipped questions): negations, swapped roles, misconceptions,
keyword lists, off-topic answers in the wrong kinds; correct paraphrases; partial answers. Prints, per file and
kind: count, mean / min / median / max score, the verdict counts and the mean confidence; then the misses, that
is wrong answers graded "correct" and paraphrases below 5 (the goals: none).

Usage: .venv/bin/python -m bench.offline_probes
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from evaluator.dataset import load_dataset
from evaluator.models import VERDICTS, Grade, GradeRequest
from evaluator.offline_judge import OfflineJudge

ROOT = Path(__file__).resolve().parent.parent
PROBE_FILES = {
    "written with the checks": ROOT / "tests" / "data" / "offline_probes.jsonl",
    "written blind to the checks": ROOT / "tests" / "data" / "offline_probes_blind.jsonl",
}
WRONG = ("negation", "swap", "misconception", "keyword_list", "off_topic")


def missed(kind: str, grade: Grade) -> bool:
    """A wrong answer graded correct, or a correct paraphrase below 5."""
    return (kind in WRONG and grade.verdict == "correct") or (kind == "paraphrase" and grade.score < 5)


def report(title: str, path: Path, judge: OfflineJudge) -> None:
    items = {q.id: q for q in load_dataset(ROOT / "data" / "Q&A_db_practice.json").items}
    probes = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = [
        GradeRequest(items[p["question_id"]].question, items[p["question_id"]].reference, p["answer"]) for p in probes
    ]
    results = judge.grade_many(requests)
    by_kind: dict[str, list[Grade]] = defaultdict(list)
    misses = []
    for probe, result in zip(probes, results, strict=True):
        by_kind[probe["kind"]].append(result.grade)
        if missed(probe["kind"], result.grade):
            misses.append((probe["id"], probe["kind"], result.grade.score, probe.get("known_miss", "")))
    print(f"\n{len(probes)} probes {title} ({path.name}), offline judge {results[0].prompt_version}")
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
    print(f"misses: {len(misses)}")
    for probe_id, kind, score, why in misses:
        print(f"  {probe_id} {kind} {score}" + (f" ({why})" if why else ""))


def main() -> None:
    judge = OfflineJudge()
    for title, path in PROBE_FILES.items():
        report(title, path, judge)


if __name__ == "__main__":
    main()

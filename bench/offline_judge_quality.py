"""How well the offline judge separates correct, partial and incorrect answers, against simple baselines.

Runs on tests/data/offline_judge_labelled.jsonl (150 answers to 50 questions of the shipped dataset,
one correct, one partial and one incorrect per question) and prints, for the judge and for each
ingredient alone: mean value per label, pairwise ranking accuracy within each question, Spearman
correlation with the label, and 3-way verdict accuracy with the score thresholds fitted by
leave-one-question-out cross-validation. Also prints the mean similarities of unrelated pairs (its
rescaling floors).

Usage: .venv/bin/python -m bench.offline_judge_quality
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from evaluator import offline_judge
from evaluator.dataset import load_dataset
from evaluator.models import GradeRequest

ROOT = Path(__file__).resolve().parent.parent

LABELLED = ROOT / "tests" / "data" / "offline_judge_labelled.jsonl"
LABELS = ("correct", "partial", "incorrect")
ORDINAL = {"correct": 2, "partial": 1, "incorrect": 0}
VERDICT_LABEL = {"correct": "correct", "partially correct": "partial", "incorrect": "incorrect"}


def plain_overlap(answer: str, reference: str) -> float:
    """Content-word F1 of answer vs reference without question demoting (the token-overlap baseline)."""
    a = {t for t in offline_judge.content_terms(re.findall(r"[a-z0-9]+", answer.lower())) if t}
    r = {t for t in offline_judge.content_terms(re.findall(r"[a-z0-9]+", reference.lower())) if t}
    shared = len(a & r)
    return 2 * shared / (len(a) + len(r)) if a and r else 0.0


def pairwise_accuracy(values: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Share of within-question pairs of different labels ranked in label order (ties count half)."""
    right = total = 0.0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        for i in idx:
            for j in idx:
                if labels[i] > labels[j]:
                    total += 1
                    right += 1.0 if values[i] > values[j] else 0.5 if values[i] == values[j] else 0.0
    return right / total


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for value in np.unique(x):  # average ranks of ties
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks)."""
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def fit_thresholds(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Thresholds t_partial <= t_correct maximising 3-way accuracy (ties: centre of the best ones)."""
    v = np.unique(values)
    cuts = np.concatenate([[v[0] - 1e-6], (v[:-1] + v[1:]) / 2, [v[-1] + 1e-6]])
    # below[k, c]: items of label k under cut c; hits(i, j) = below0[i] + (below1[j] - below1[i]) + above2[j].
    below = np.array([(values[labels == k][None, :] < cuts[:, None]).sum(1) for k in (0, 1, 2)])
    hits = (below[0] - below[1])[:, None] + (below[1] + (labels == 2).sum() - below[2])[None, :]
    hits = np.where(np.triu(np.ones_like(hits, dtype=bool)), hits, -1)
    i, j = np.nonzero(hits == hits.max())
    return float(cuts[i].mean()), float(cuts[j].mean())


def cv_accuracy(values: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """3-way accuracy with thresholds fitted on the other questions (leave-one-question-out)."""
    hits = 0
    for g in np.unique(groups):
        test = groups == g
        lo, hi = fit_thresholds(values[~test], labels[~test])
        pred = np.where(values[test] >= hi, 2, np.where(values[test] >= lo, 1, 0))
        hits += int((pred == labels[test]).sum())
    return hits / len(values)


def main() -> None:
    """Print the quality table."""
    dataset = load_dataset(ROOT / "data" / "Q&A_db_practice.json")
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [dataset.get(r["question_id"]) for r in rows]
    requests = [GradeRequest(i.question, i.reference, r["answer"]) for i, r in zip(items, rows, strict=True)]
    labels = np.array([ORDINAL[r["label"]] for r in rows])
    groups = np.array([r["question_id"] for r in rows])

    judge = offline_judge.OfflineJudge()
    judge.grade(requests[0])  # load the model
    started = time.perf_counter()
    results = judge.grade_many(requests)
    signals = judge.signals(requests)
    elapsed = time.perf_counter() - started
    scores = np.array([r.grade.score for r in results])
    print(f"{len(rows)} labelled answers to {len(set(groups))} questions ({elapsed:.1f} s)\n")

    scorers = {
        "plain embedding cosine": np.array([s.semantic_cosine for s in signals]),
        "plain token overlap (F1)": np.array([plain_overlap(r.answer, r.reference) for r in requests]),
        "semantic, question-demoted": np.array([s.semantic for s in signals]),
        "token overlap, question-demoted": np.array([s.overlap for s in signals]),
        "coverage (BERTScore-style F1)": np.array([s.coverage for s in signals]),
        "offline judge score (0-10)": scores,
    }
    head = f"{'scorer':34} {'mean correct/partial/incorrect':>30} {'c>p':>6} {'p>i':>6} {'c>i':>6} {'all':>6}"
    print(head + f" {'Spearman':>9} {'3-way CV':>9}")
    for name, values in scorers.items():
        means = "/".join(f"{values[labels == ORDINAL[lab]].mean():.2f}" for lab in LABELS)
        pairs = []
        for hi, lo in ((2, 1), (1, 0), (2, 0)):
            keep = np.isin(labels, (hi, lo))
            pairs.append(pairwise_accuracy(values[keep], labels[keep], groups[keep]))
        pairs.append(pairwise_accuracy(values, labels, groups))
        print(
            f"{name:34} {means:>30} "
            + " ".join(f"{p:6.1%}" for p in pairs)
            + f" {spearman(values, labels):9.3f} {cv_accuracy(values, labels, groups):9.1%}"
        )

    verdicts = [VERDICT_LABEL[r.grade.verdict] for r in results]
    shipped = np.mean([v == r["label"] for v, r in zip(verdicts, rows, strict=True)])
    print(f"\n3-way accuracy of the shipped verdicts (calibrated on public data, not on these items): {shipped:.1%}")
    print("confusion (rows: label, columns: verdict correct/partial/incorrect):")
    for lab in LABELS:
        counts = [sum(1 for v, r in zip(verdicts, rows, strict=True) if r["label"] == lab and v == c) for c in LABELS]
        print(f"  {lab:10} {counts}")

    # Each answer against the reference of a question half the dataset away (another category as a rule):
    # what "unrelated" looks like, which the rescaling floors should map to about 0.
    order = sorted(set(groups))
    shift = {g: order[(k + len(order) // 2) % len(order)] for k, g in enumerate(order)}
    unrelated = [
        GradeRequest(dataset.get(shift[g]).question, dataset.get(shift[g]).reference, r.answer)
        for g, r in zip(groups, requests, strict=True)
    ]
    u = judge.signals(unrelated)
    word = np.mean([s.coverage for s in u])
    print(
        f"unrelated pairs: mean sentence cosine {np.mean([s.semantic_cosine for s in u]):.3f} "
        f"(SEMANTIC_FLOOR {offline_judge.SEMANTIC_FLOOR}), mean rescaled coverage {word:.3f}, "
        f"mean judge score {np.mean([r.grade.score for r in judge.grade_many(unrelated)]):.2f}"
    )


if __name__ == "__main__":
    main()

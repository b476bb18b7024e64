"""Sentiment accuracy on feedback about grades: tests/data/sentiment_labelled.jsonl (negative/neutral/positive).

Backends measured: the one ``SENTIMENT_MODEL_NAME`` loads on this machine (the transformers model when it is
available, else VADER), VADER itself, and, for comparison, a nearest-centroid classifier on the packaged
all-MiniLM-L6-v2 sentence embeddings scored leave-one-out (each comment is classified by the class centroids
of all the other comments). A two-label model such as the default SST-2 one never says neutral, so its
neutral recall is 0 by construction.

Run: ``.venv/bin/python -m bench.sentiment_accuracy [--no-minilm]``
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from evaluator.config import load_settings
from evaluator.sentiment import LABELS, SentimentAnalyzer

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT / "tests" / "data" / "sentiment_labelled.jsonl"


def report(name: str, gold: list[str], predicted: list[str]) -> None:
    """Print accuracy and per-class recall."""
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    totals = Counter(gold)
    hits = Counter(g for g, p in zip(gold, predicted, strict=True) if g == p)
    recall = "  ".join(f"{label} {hits[label] / totals[label]:.2f}" for label in LABELS if totals[label])
    print(f"{name:<52} accuracy {correct / len(gold):.3f}   recall: {recall}")


def minilm_nearest_centroid(texts: list[str], gold: list[str]) -> list[str]:
    """Leave-one-out nearest-centroid labels on all-MiniLM-L6-v2 embeddings (cosine similarity)."""
    import numpy as np

    from evaluator.embeddings import get_encoder

    vectors = get_encoder().encode(texts)
    labels = np.array(gold)
    sums = {label: vectors[labels == label].sum(axis=0) for label in LABELS}
    counts = {label: int((labels == label).sum()) for label in LABELS}
    predicted = []
    for vector, own in zip(vectors, gold, strict=True):
        best, best_sim = "", -2.0
        for label in LABELS:
            # The comment itself is left out of its own class's centroid.
            total, count = (sums[label] - vector, counts[label] - 1) if label == own else (sums[label], counts[label])
            centroid = total / max(count, 1)
            sim = float(vector @ centroid / (np.linalg.norm(centroid) or 1.0))
            if sim > best_sim:
                best, best_sim = label, sim
        predicted.append(best)
    return predicted


def main() -> None:
    """Score every available backend and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM nearest-centroid comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    print(
        f"{len(rows)} comments from {DATA.relative_to(ROOT)}: "
        + ", ".join(f"{k} {v}" for k, v in Counter(gold).items())
    )

    configured = SentimentAnalyzer(load_settings().sentiment_model_name)
    predicted = [s.label for s in configured.analyze_many(texts)]
    report(f"SENTIMENT_MODEL_NAME -> {configured.backend}", gold, predicted)
    if configured.backend != "vader":
        vader = SentimentAnalyzer(str(ROOT / "no-such-model"))  # a model that cannot load means VADER
        report("vader", gold, [s.label for s in vader.analyze_many(texts)])
    if not args.no_minilm:
        report("all-MiniLM-L6-v2 nearest centroid (leave-one-out)", gold, minilm_nearest_centroid(texts, gold))


if __name__ == "__main__":
    main()

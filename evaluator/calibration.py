"""The offline judge's calibration: P(a human grader calls the answer correct) from its similarity signals.

A logistic regression over the signals of :class:`~evaluator.offline_judge.Signals` (:data:`FEATURES`),
fitted on the public human-graded answers in ``data/asag/`` (SemEval-2013 SciEntsBank, less its held-out
questions, and Beetle; labels correct vs not). The fitted weights are ``evaluator/offline_calibration.json``;
``make offline-judge-weights`` rebuilds them deterministically (``python -m evaluator.calibration``) and prints
figures cross-validated by question.

The score 0-10 is a monotone map of that probability (:data:`KNOTS`) that puts P = 0.5 at 7, the "correct"
threshold, so the verdict "correct" means "more likely than not a human calls it correct".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .offline_judge import Signals

WEIGHTS_PATH = Path(__file__).with_name("offline_calibration.json")
ROOT = Path(__file__).resolve().parent.parent
TRAINING_FILES = ("data/asag/scientsbank_fit.jsonl", "data/asag/beetle_train.jsonl")
# Only question-demoted signals: the raw cosines would pay for restating the question.
FEATURES = (
    "semantic",
    "overlap",
    "coverage_recall",
    "coverage_precision",
    "coverage",
    "log_novel_terms",
    "log_length_ratio",
)
# The length ratio compares with at most this many reference words: the public data's references are one
# sentence, the shipped ones several, and a correct answer in few words should not pay for that.
REFERENCE_WORDS_CAP = 30
CORRECT_AT = 7.0  # the score of P = 0.5


def feature_vector(s: Signals, answer_words: int, reference_words: int) -> list[float]:
    """The values of :data:`FEATURES` for one answer."""
    return [
        s.semantic,
        s.overlap,
        s.coverage_recall,
        s.coverage_precision,
        s.coverage,
        math.log1p(s.novel_terms),
        math.log((answer_words + 1) / (min(reference_words, REFERENCE_WORDS_CAP) + 1)),
    ]


# The score 0-10 as a piecewise-linear map of P: (P, score) knots. P = 0.5 is 7, the "correct" threshold; P = 0.18
# is 5, so "partially correct" (4-7) covers P from 0.14 to 0.5 and "incorrect" only answers a human would
# rarely accept (the public data's references are one short sentence; the shipped ones are several, which
# lowers P for correct answers in few words).
KNOTS = ((0.0, 0.0), (0.18, 5.0), (0.5, CORRECT_AT), (1.0, 10.0))


def score_for(probability: float) -> float:
    """The score 0-10 of a probability (through :data:`KNOTS`), to one decimal."""
    p, s = zip(*KNOTS, strict=True)
    return round(float(np.interp(min(1.0, max(0.0, probability)), p, s)), 1)


def probability_for(score: float) -> float:
    """The inverse of :func:`score_for`: the probability that a score stands for."""
    p, s = zip(*KNOTS, strict=True)
    return float(np.interp(min(10.0, max(0.0, score)), s, p))


@dataclass(frozen=True)
class Calibration:
    """Logistic weights over :data:`FEATURES`."""

    coef: tuple[float, ...]
    intercept: float

    def probability(self, features: Sequence[float]) -> float:
        """P(correct) for one feature vector."""
        z = self.intercept + float(np.dot(self.coef, features))
        return 1 / (1 + math.exp(-z))


@lru_cache(maxsize=1)
def load_calibration(path: Path = WEIGHTS_PATH) -> Calibration:
    """The committed calibration (read once per process)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path.name} was fitted on other features: run make offline-judge-weights")
    return Calibration(coef=tuple(data["coef"]), intercept=float(data["intercept"]))


def _training_rows() -> list[dict[str, Any]]:
    rows = []
    for name in TRAINING_FILES:
        with (ROOT / name).open(encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def fit(path: Path = WEIGHTS_PATH) -> dict[str, Any]:
    """Fit the calibration on :data:`TRAINING_FILES`, write it to ``path`` and return it with its CV figures."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from .embeddings import Encoder
    from .models import GradeRequest
    from .offline_judge import OfflineJudge, word_count

    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    judge = OfflineJudge(encoder=Encoder(precision="float32"))  # bfloat16 varies with the CPU: not reproducible
    rows = _training_rows()
    signals = []
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        signals += judge.signals([GradeRequest(r["question"], r["reference"], r["answer"]) for r in chunk])
    x = np.array(
        [
            feature_vector(s, word_count(s.answer), word_count(r["reference"]))
            for s, r in zip(signals, rows, strict=True)
        ]
    )
    y = np.array([r["label"] == "correct" for r in rows], dtype=int)
    groups = np.array([r["question_id"] for r in rows])
    out_of_fold = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x[train], y[train])
        out_of_fold[test] = model.predict_proba(x[test])[:, 1]
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    result = {
        "features": list(FEATURES),
        "coef": [round(float(c), 6) for c in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
        "trained_on": list(TRAINING_FILES),
        "answers": len(y),
        "questions": len(set(groups)),
        "cv_by_question": {
            "folds": 5,
            "accuracy_2way": round(float(np.mean((out_of_fold >= 0.5) == y)), 4),
            "brier": round(float(np.mean((out_of_fold - y) ** 2)), 4),
        },
    }
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    load_calibration.cache_clear()
    return result


if __name__ == "__main__":
    print(json.dumps(fit(), indent=2))

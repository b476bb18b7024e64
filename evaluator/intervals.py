"""Uncertainty for comparisons: paired bootstrap intervals and Bradley–Terry ratings (numpy, seeded).

Every function takes a ``seed`` and uses its own ``numpy.random.Generator``: the same data always give the
same interval, so a CI gate never flips on a re-run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20240601
_CELLS = 2_000_000  # resampled values held in memory at once (16 MB of float64)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (e.g. paired score differences).

    Resampling the per-item differences keeps each item's pair together: that is the paired bootstrap.
    The interval depends on the values, not on their order. One value gives a zero-width interval; none raises
    ``ValueError``.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("no values to resample")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, _CELLS // n)
    for start in range(0, resamples, step):
        k = min(step, resamples - start)
        means[start : start + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def bradley_terry(wins: np.ndarray, *, iterations: int = 1000, tolerance: float = 1e-9) -> np.ndarray:
    """Bradley–Terry strengths from a matrix ``wins[i, j]`` (times i beat j; a tie counts half to each).

    Fitted with Hunter's MM algorithm; returned on the Elo scale (400·log10 of the strength), centred on 1000.
    A model that never lost (or never won) has no finite maximum-likelihood strength: a pseudo-count of
    0.5 game against every other model keeps the fit finite, as rating systems commonly do.
    """
    m = len(wins)
    w = np.asarray(wins, dtype=float) + 0.5 * (1 - np.eye(m))
    games = w + w.T
    total_wins = w.sum(axis=1)
    p = np.ones(m)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = total_wins / denom
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tolerance:
            p = new
            break
        p = new
    elo = 400 * np.log10(p)
    return elo - elo.mean() + 1000

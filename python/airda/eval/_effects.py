"""Effect sizes, multiple-comparison corrections and the aggregates of rliable.

Plain vectorised functions of arrays. The aggregates follow Agarwal et al. (NeurIPS 2021,
"Deep RL at the Edge of the Statistical Precipice") and its library rliable: scores are
(runs x tasks) matrices; the interquartile mean is the 25% trimmed mean of all of them; the
probability of improvement is Mann-Whitney's P(X > Y) + P(X = Y)/2 per task, averaged over tasks;
a performance profile is the fraction of runs scoring above each threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda.eval._checks import as_scores, paired_scores, two_samples

__all__ = [
    "benjamini_hochberg",
    "bonferroni",
    "cliffs_delta",
    "cohens_d",
    "hedges_g",
    "holm",
    "iqm",
    "performance_profile",
    "probability_of_improvement",
    "spearman",
]


# ---- effect sizes -----------------------------------------------------------------------


def cohens_d(a: Any, b: Any, *, paired: bool = False, nan_policy: str = "raise") -> float:
    """Standardised mean difference ``(mean(a) - mean(b)) / s``.

    Independent samples: ``s`` is the pooled standard deviation (ddof 1). Paired
    (``paired=True``): Cohen's d_z, the mean difference over the standard deviation of the
    differences.

    Example:
        >>> from airda.eval import cohens_d
        >>> round(cohens_d([2.0, 4.0, 6.0], [1.0, 3.0, 5.0]), 4)
        0.5
    """
    if paired:
        x, y, _ = paired_scores(a, b, nan_policy=nan_policy, min_size=2)
        d = x - y
        sd = float(np.std(d, ddof=1))
        return _ratio(float(np.mean(d)), sd)
    x, y, _ = two_samples(a, b, nan_policy=nan_policy, min_size=2)
    pooled = ((x.size - 1) * np.var(x, ddof=1) + (y.size - 1) * np.var(y, ddof=1)) / (
        x.size + y.size - 2
    )
    return _ratio(float(np.mean(x) - np.mean(y)), math.sqrt(pooled))


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        if num == 0.0:
            return 0.0
        return math.copysign(math.inf, num)
    return num / den


def hedges_g(a: Any, b: Any, *, nan_policy: str = "raise") -> float:
    """Cohen's d of independent samples with Hedges' small-sample bias correction (exact J).

    Example:
        >>> from airda.eval import hedges_g
        >>> round(hedges_g([2.0, 4.0, 6.0], [1.0, 3.0, 5.0]), 4)
        0.3989
    """
    x, y, _ = two_samples(a, b, nan_policy=nan_policy, min_size=2)
    df = x.size + y.size - 2
    j = math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)
    return cohens_d(x, y) * j


def _greater_less(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Counts of pairs (x_i, y_j) with x_i > y_j and with x_i < y_j, in O((n+m) log m)."""
    ys = np.sort(y)
    below = np.searchsorted(ys, x, side="left")  # y_j < x_i
    above = ys.size - np.searchsorted(ys, x, side="right")  # y_j > x_i
    return float(below.sum()), float(above.sum())


def cliffs_delta(a: Any, b: Any, *, nan_policy: str = "raise") -> float:
    """Cliff's delta, P(a > b) - P(a < b) over all pairs, in [-1, 1].

    Example:
        >>> from airda.eval import cliffs_delta
        >>> cliffs_delta([3, 4, 5], [1, 2, 3])
        0.8888888888888888
    """
    x, y, _ = two_samples(a, b, nan_policy=nan_policy)
    greater, less = _greater_less(x, y)
    return (greater - less) / (x.size * y.size)


# ---- multiple comparisons ---------------------------------------------------------------


def _pvalues(p: Any) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"p-values must be 1-D, got shape {arr.shape}")
    if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise ValueError("p-values must be finite and in [0, 1]")
    return arr


def bonferroni(p: Any) -> np.ndarray:
    """Bonferroni-adjusted p-values: ``min(1, m p)``."""
    arr = _pvalues(p)
    return np.minimum(1.0, arr * arr.size)


def holm(p: Any) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (family-wise error), in the input order.

    Example:
        >>> from airda.eval import holm
        >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.06, 0.06]
    """
    arr = _pvalues(p)
    m = arr.size
    order = np.argsort(arr, kind="stable")
    stepped = np.maximum.accumulate(arr[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


def benjamini_hochberg(p: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    Example:
        >>> from airda.eval import benjamini_hochberg
        >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.04, 0.04]
    """
    arr = _pvalues(p)
    m = arr.size
    order = np.argsort(arr, kind="stable")
    scaled = arr[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


# ---- rliable's aggregates ---------------------------------------------------------------


def _matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty (runs x tasks) matrix or a 1-D array")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite scores")
    return arr


def iqm(scores: Any, *, nan_policy: str = "raise") -> float:
    """Interquartile mean: the mean of the middle 50% of all scores (25% cut at each end).

    ``int(0.25 n)`` values are cut from each end, as ``scipy.stats.trim_mean`` does.

    Example:
        >>> from airda.eval import iqm
        >>> iqm([1, 2, 3, 4, 5, 6, 7, 100])
        4.5
    """
    flat, _ = as_scores(
        np.ravel(np.asarray(scores, dtype=np.float64)), "scores", nan_policy=nan_policy
    )
    cut = int(0.25 * flat.size)
    kept = np.partition(flat, (cut, flat.size - cut - 1))[cut : flat.size - cut]
    return float(kept.mean())


def probability_of_improvement(x: Any, y: Any) -> float:
    """P(X > Y) + P(X = Y)/2 per task, averaged over tasks (rliable's definition).

    Args:
        x, y: (runs x tasks) score matrices of two methods (runs may differ), or 1-D arrays
            of one task's runs.

    Example:
        >>> from airda.eval import probability_of_improvement
        >>> probability_of_improvement([3, 4, 5], [1, 2, 3])
        0.9444444444444444
    """
    xs, ys = _matrix(x, "x"), _matrix(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x has {xs.shape[1]} tasks, y has {ys.shape[1]}")
    per_task = []
    for t in range(xs.shape[1]):
        greater, less = _greater_less(xs[:, t], ys[:, t])
        pairs = xs.shape[0] * ys.shape[0]
        per_task.append((greater + 0.5 * (pairs - greater - less)) / pairs)
    return float(np.mean(per_task))


def performance_profile(scores: Any, thresholds: Any) -> np.ndarray:
    """Fraction of all runs (and tasks) whose score exceeds each threshold (a score distribution).

    Example:
        >>> from airda.eval import performance_profile
        >>> performance_profile([0.1, 0.5, 0.9, 0.7], [0.0, 0.6, 1.0]).tolist()
        [1.0, 0.5, 0.0]
    """
    arr = _matrix(scores, "scores")
    taus = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if taus.ndim != 1:
        raise ValueError("thresholds must be 1-D")
    ordered = np.sort(arr, axis=None)
    above = ordered.size - np.searchsorted(ordered, taus, side="right")
    return above / ordered.size


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation (ties get average ranks), as ``scipy.stats.spearmanr``.

    Example:
        >>> from airda.eval import spearman
        >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 25]), 6)
        0.8
    """
    from airda.eval._tests import _average_ranks

    a, b, _ = paired_scores(x, y, ("x", "y"), min_size=2)
    rx, _ = _average_ranks(a)
    ry, _ = _average_ranks(b)
    if rx.std() == 0.0 or ry.std() == 0.0:
        raise ValueError("spearman needs at least two distinct values in each of x and y")
    return float(np.corrcoef(rx, ry)[0, 1])

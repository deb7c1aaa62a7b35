"""Significance tests on paired or independent scores: permutation, Wilcoxon signed-rank, sign.

Each returns a :class:`TestResult`. The definitions follow ``scipy.stats`` (``permutation_test``,
``wilcoxon`` with its defaults, ``binomtest`` for the sign test) so that the same input gives
the same p-value (the randomized permutation test matches in distribution; its exact
enumeration, used whenever all arrangements fit in ``n_resamples``, matches exactly).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from airda.eval._checks import as_scores, paired_scores, two_samples

__all__ = ["TestResult", "permutation_test", "sign_test", "wilcoxon"]

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclasses.dataclass(frozen=True)
class TestResult:
    """The outcome of a significance test.

    Attributes:
        statistic: the test statistic on the observed data.
        p_value: the p-value for ``alternative``.
        test: which test, in words ("paired permutation test (exact, 1024 arrangements)").
        alternative: "two-sided", "greater" (the first sample is larger) or "less".
        n: the number of pairs or observations the test used.
        n_excluded: how many were dropped (NaN/inf under ``nan_policy="omit"``, zero
            differences that a rank or sign test ignores).
    """

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float
    test: str
    alternative: str
    n: int
    n_excluded: int = 0

    def __str__(self) -> str:
        return (
            f"{self.test}: statistic {self.statistic:.6g}, p = {self.p_value:.4g} "
            f"({self.alternative}, n = {self.n}"
            + (f", {self.n_excluded} excluded" if self.n_excluded else "")
            + ")"
        )


def _alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _p_from_null(null: np.ndarray, observed: float, alternative: str, exact: bool) -> float:
    """p-value of `observed` under the null distribution, as scipy.stats.permutation_test."""
    # Resampled statistics that equal the observed one up to rounding count as "as extreme".
    gamma = abs(observed) * np.finfo(np.float64).eps * 100
    adjust = 0 if exact else 1
    count = null.size
    less = (np.count_nonzero(null <= observed + gamma) + adjust) / (count + adjust)
    greater = (np.count_nonzero(null >= observed - gamma) + adjust) / (count + adjust)
    if alternative == "less":
        return float(less)
    if alternative == "greater":
        return float(greater)
    return float(min(1.0, 2.0 * min(less, greater)))


def _chunks(total: int, n: int) -> list[int]:
    per = max(1, 4_000_000 // max(n, 1))
    return [min(per, total - s) for s in range(0, total, per)]


def _sign_matrix(bits: np.ndarray) -> np.ndarray:
    return 1.0 - 2.0 * bits.astype(np.float64)


def permutation_test(
    a: Any,
    b: Any,
    *,
    paired: bool = True,
    alternative: str = "two-sided",
    n_resamples: int = 9_999,
    seed: int | None = 0,
    statistic: Callable[..., Any] | None = None,
    nan_policy: str = "raise",
) -> TestResult:
    """Permutation test of a difference between two samples of scores.

    Paired (the default): the null hypothesis is that each pair's two scores are exchangeable,
    so the sign of every difference ``a[i] - b[i]`` is flipped at random; the statistic is the
    mean difference. Independent (``paired=False``): the pooled scores are relabelled at random;
    the statistic is ``mean(a) - mean(b)``. When every arrangement fits in ``n_resamples`` the
    null distribution is enumerated exactly.

    Args:
        a, b: the scores (``a`` is the candidate: "greater" means ``a`` tends to be larger).
        paired: pairs share an index (the same seed, fold or task) when true.
        alternative: "two-sided", "greater" or "less".
        n_resamples: random arrangements when exact enumeration is too large.
        seed: seed of the random arrangements.
        statistic: optional vectorised statistic; paired: ``f(d, axis=-1)`` of the (signed)
            differences, independent: ``f(x, y, axis=-1)``. Default: the mean (difference).
        nan_policy: "raise" (default) or "omit" (drop NaN/inf pairs or values; counted).

    Example:
        >>> from airda.eval import permutation_test
        >>> r = permutation_test([0.81, 0.83, 0.80, 0.84, 0.82], [0.79, 0.80, 0.80, 0.81, 0.79])
        >>> round(r.p_value, 4), r.test
        (0.125, 'paired permutation test (exact, 32 arrangements)')
    """
    _alternative(alternative)
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    if paired:
        x, y, excluded = paired_scores(a, b, nan_policy=nan_policy, min_size=1)
        d = x - y
        n = d.size
        stat = statistic or (lambda v, axis=-1: np.mean(v, axis=axis))
        observed = float(stat(d, axis=-1))
        if 2**n <= n_resamples:
            codes = np.arange(2**n, dtype=np.uint64)[:, None] >> np.arange(n, dtype=np.uint64)
            null = np.asarray(stat(_sign_matrix(codes & np.uint64(1)) * d, axis=-1))
            name = f"paired permutation test (exact, {2**n} arrangements)"
            exact = True
        else:
            parts = []
            for size in _chunks(int(n_resamples), n):
                bits = rng.integers(0, 2, size=(size, n), dtype=np.uint8)
                flipped = _sign_matrix(bits)
                if statistic is None:
                    parts.append(flipped @ d / n)
                else:
                    parts.append(np.asarray(statistic(flipped * d, axis=-1)))
            null = np.concatenate(parts)
            name = f"paired permutation test ({int(n_resamples)} random sign flips)"
            exact = False
        return TestResult(
            observed,
            _p_from_null(null, observed, alternative, exact),
            name,
            alternative,
            n,
            excluded,
        )
    x, y, excluded = two_samples(a, b, nan_policy=nan_policy, min_size=1)
    stat2 = statistic or (lambda u, v, axis=-1: np.mean(u, axis=axis) - np.mean(v, axis=axis))
    observed = float(stat2(x, y, axis=-1))
    pooled = np.concatenate([x, y])
    na, total = x.size, pooled.size
    if math.comb(total, na) <= n_resamples:
        rows = np.array(list(itertools.combinations(range(total), na)), dtype=np.int64)
        mask = np.zeros((rows.shape[0], total), dtype=bool)
        np.put_along_axis(mask, rows, True, axis=1)
        null = _split_statistic(stat2, pooled, mask, na)
        name = f"permutation test, independent samples (exact, {rows.shape[0]} splits)"
        exact = True
    else:
        parts = []
        for size in _chunks(int(n_resamples), total):
            order = rng.permuted(np.tile(np.arange(total), (size, 1)), axis=1)
            mask = order < na
            parts.append(_split_statistic(stat2, pooled, mask, na))
        null = np.concatenate(parts)
        name = f"permutation test, independent samples ({int(n_resamples)} random splits)"
        exact = False
    return TestResult(
        observed,
        _p_from_null(null, observed, alternative, exact),
        name,
        alternative,
        total,
        excluded,
    )


def _split_statistic(stat: Callable[..., Any], pooled: np.ndarray, mask: np.ndarray, na: int):
    """The statistic of every relabelling; `mask` rows mark the na values labelled `a`."""
    rows = mask.shape[0]
    order = np.argsort(~mask, axis=1, kind="stable")  # the `a` labels first
    arranged = pooled[order]
    return np.asarray(stat(arranged[:, :na], arranged[:, na:], axis=-1)).reshape(rows)


def _average_ranks(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties averaged, and the size of every tie group."""
    order = np.argsort(v, kind="mergesort")
    s = v[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sizes = np.diff(np.r_[starts, s.size])
    mean_rank = starts + (sizes + 1) / 2.0
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(mean_rank, sizes)
    return ranks, sizes


def _signed_rank_counts(n: int) -> np.ndarray:
    """Number of sign patterns of 1..n giving each positive-rank sum 0..n(n+1)/2."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return counts


def wilcoxon(
    a: Any,
    b: Any | None = None,
    *,
    alternative: str = "two-sided",
    correction: bool = False,
    method: str = "auto",
    nan_policy: str = "raise",
) -> TestResult:
    """Wilcoxon signed-rank test of paired differences ``a - b`` (or of ``a`` alone).

    Zero differences are dropped (Wilcoxon's convention, scipy's default ``zero_method``).
    ``method="auto"`` follows scipy: the exact null distribution when there are at most 50
    differences and no ties or zeros; with ties or zeros, an exact enumeration of sign flips
    when the sample has at most 13 values, and the normal approximation (tie-corrected,
    ``correction`` adds the continuity correction) otherwise. The statistic is
    ``min(R+, R-)`` for a two-sided test and ``R+`` for a one-sided one, as in scipy.

    Example:
        >>> from airda.eval import wilcoxon
        >>> r = wilcoxon([0.81, 0.83, 0.80, 0.84, 0.82, 0.86], [0.79, 0.80, 0.81, 0.81, 0.79, 0.8])
        >>> r.statistic, round(r.p_value, 4)
        (1.0, 0.0625)
    """
    _alternative(alternative)
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'asymptotic', got {method!r}")
    if b is None:
        d, excluded = as_scores(a, "a", nan_policy=nan_policy)
    else:
        x, y, excluded = paired_scores(a, b, nan_policy=nan_policy)
        d = x - y
    total = d.size
    zeros = int(np.count_nonzero(d == 0))
    d = d[d != 0]
    n = d.size
    if n == 0:
        raise ValueError("every difference is zero: the signed-rank test has nothing to rank")
    ranks, ties = _average_ranks(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    has_ties = bool(np.any(ties > 1))
    chosen = method
    if method == "auto":
        if total > 50:
            chosen = "asymptotic"
        elif not (has_ties or zeros):
            chosen = "exact"
        elif total <= 13:
            chosen = "enumerate"
        else:
            chosen = "asymptotic"
    if chosen == "exact":
        counts = _signed_rank_counts(n)
        total_patterns = counts.sum()
        # scipy's convention: round a tied (fractional) statistic away from the tail.
        p_less = float(counts[: int(np.ceil(r_plus)) + 1].sum() / total_patterns)
        p_greater = float(counts[int(np.floor(r_plus)) :].sum() / total_patterns)
        name = f"Wilcoxon signed-rank test (exact, n = {n})"
    elif chosen == "enumerate":
        codes = np.arange(2**n, dtype=np.uint64)[:, None] >> np.arange(n, dtype=np.uint64)
        positive = (codes & np.uint64(1)) == 0
        null = positive.astype(np.float64) @ ranks
        gamma = abs(r_plus) * np.finfo(np.float64).eps * 100
        p_less = float(np.count_nonzero(null <= r_plus + gamma) / null.size)
        p_greater = float(np.count_nonzero(null >= r_plus - gamma) / null.size)
        name = f"Wilcoxon signed-rank test (exact over {2**n} sign flips, ties)"
    else:
        mean = n * (n + 1) / 4.0
        var = (n * (n + 1) * (2 * n + 1) - float(np.sum(ties**3 - ties)) / 2.0) / 24.0
        se = math.sqrt(var)
        z = (r_plus - mean) / se
        if correction:
            sign = {"greater": 1.0, "less": -1.0}.get(alternative, float(np.sign(z)))
            z -= sign * 0.5 / se
        p_greater = _normal_sf(z)
        p_less = _normal_sf(-z)
        name = f"Wilcoxon signed-rank test (normal approximation, n = {n})"
    if alternative == "less":
        p = p_less
    elif alternative == "greater":
        p = p_greater
    else:
        p = min(1.0, 2.0 * min(p_less, p_greater))
    statistic = min(r_plus, r_minus) if alternative == "two-sided" else r_plus
    return TestResult(statistic, p, name, alternative, n, excluded + zeros)


def _log_binom_cdf(k: int, n: int) -> float:
    """log P(X <= k) for X ~ Binomial(n, 1/2)."""
    if k < 0:
        return -math.inf
    if k >= n:
        return 0.0
    j = np.arange(k + 1, dtype=np.float64)
    log_pmf = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(v + 1) for v in j])
        - np.array([math.lgamma(n - v + 1) for v in j])
        - n * math.log(2.0)
    )
    return float(np.logaddexp.reduce(log_pmf))


def sign_test(
    a: Any,
    b: Any | None = None,
    *,
    alternative: str = "two-sided",
    nan_policy: str = "raise",
) -> TestResult:
    """Sign test: is ``a - b`` positive more (or less) often than chance? Zeros are dropped.

    The p-value is the exact binomial one (as ``scipy.stats.binomtest(k, n, 0.5)``); the
    statistic is the number of positive differences.

    Example:
        >>> from airda.eval import sign_test
        >>> r = sign_test([3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 1, 1])
        >>> r.statistic, round(r.p_value, 5)
        (6.0, 0.03125)
    """
    _alternative(alternative)
    if b is None:
        d, excluded = as_scores(a, "a", nan_policy=nan_policy)
    else:
        x, y, excluded = paired_scores(a, b, nan_policy=nan_policy)
        d = x - y
    zeros = int(np.count_nonzero(d == 0))
    n = d.size - zeros
    if n == 0:
        raise ValueError("every difference is zero: the sign test has nothing to count")
    k = int(np.count_nonzero(d > 0))
    p_less = math.exp(_log_binom_cdf(k, n))
    p_greater = math.exp(_log_binom_cdf(n - k, n))
    if alternative == "less":
        p = p_less
    elif alternative == "greater":
        p = p_greater
    else:
        p = min(1.0, 2.0 * math.exp(_log_binom_cdf(min(k, n - k), n)))
    return TestResult(
        float(k), p, f"sign test (exact binomial, n = {n})", alternative, n, excluded + zeros
    )

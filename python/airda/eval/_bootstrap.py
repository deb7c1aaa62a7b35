"""Bootstrap confidence intervals (percentile, basic, BCa; paired; stratified) on a compiled core.

The resampling runs in :func:`airda.ops.bootstrap_means` (C++/OpenMP) for means, and on the
identical index stream of :func:`airda.ops.bootstrap_indices` for any other statistic, so every
interval is reproducible from its seed. The interval formulas follow Efron & Tibshirani
(1993, ch. 13-14) exactly as ``scipy.stats.bootstrap`` implements them: linear-interpolated
quantiles of the bootstrap distribution; BCa's bias correction from the fraction of resampled
statistics below the estimate (ties count half) and its acceleration from the jackknife.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from airda.eval._checks import as_scores, paired_rows

__all__ = ["BootstrapResult", "bootstrap_ci"]

METHODS = ("percentile", "basic", "bca")
_BUILTIN = ("mean", "median", "iqm", "mean_difference")
_NORMAL = NormalDist()
_CHUNK_VALUES = 1 << 22


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the observed data.
        low, high: the interval's ends (``-inf``/``inf`` on the open side of a one-sided one).
        standard_error: standard deviation (ddof 1) of the bootstrap distribution.
        confidence: the confidence level, e.g. 0.95.
        method: how the interval was formed ("bca", "percentile", "basic"; a note is added
            when BCa was undefined and the percentile interval was used instead).
        n: observations (or pairs) used; n_resamples: bootstrap resamples.
        n_excluded: observations dropped as NaN/inf under ``nan_policy="omit"``.
        distribution: the bootstrap distribution of the statistic (not shown in repr).
    """

    estimate: float
    low: float
    high: float
    standard_error: float
    confidence: float
    method: str
    n: int
    n_resamples: int
    n_excluded: int = 0
    distribution: np.ndarray = dataclasses.field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __str__(self) -> str:
        return (
            f"{self.estimate:.6g} ({self.confidence:.0%} CI {self.low:.6g} to {self.high:.6g}, "
            f"{self.method}, n = {self.n}, {self.n_resamples} resamples)"
        )


# ---- statistics: vectorised forms and their leave-one-out (jackknife) values --------------


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    cut = int(0.25 * n)
    return np.sort(x, axis=-1)[..., cut : n - cut].mean(axis=-1)


def _loo_window_sums(s: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """For every p, the sum of (s without s[p])[lo:hi], s sorted, in O(n)."""
    c = np.r_[0.0, np.cumsum(s)]
    p = np.arange(s.size)
    before = c[hi + 1] - c[lo + 1]  # p < lo: the window shifts right by one
    inside = c[hi + 1] - c[lo] - s  # lo <= p <= hi: s[p] drops out of s[lo:hi+1]
    after = c[hi] - c[lo]  # p >= hi: untouched
    return np.where(p < lo, before, np.where(p <= hi, inside, after))


def _loo_median(x: np.ndarray) -> np.ndarray:
    """Median of x without x[i], for every i, in O(n log n)."""
    n = x.size
    order = np.argsort(x, kind="stable")
    s = x[order]
    p = np.arange(n)

    def rest(k: int) -> np.ndarray:  # (s without s[p])[k], for every p
        return np.where(k < p, s[k], s[min(k + 1, n - 1)])

    m = n - 1
    mid = rest(m // 2) if m % 2 else 0.5 * (rest(m // 2 - 1) + rest(m // 2))
    out = np.empty(n)
    out[order] = mid
    return out


def _loo_iqm(x: np.ndarray) -> np.ndarray:
    n = x.size
    order = np.argsort(x, kind="stable")
    m = n - 1
    cut = int(0.25 * m)
    sums = _loo_window_sums(x[order], cut, m - cut)
    out = np.empty(n)
    out[order] = sums / (m - 2 * cut)
    return out


def _vectorised(statistic: Callable[..., Any]) -> Callable[..., Any]:
    """The statistic as f(*samples, axis=-1) over stacked resamples."""
    try:
        takes_axis = "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):
        takes_axis = False
    if takes_axis:
        return statistic

    def rowwise(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = [np.moveaxis(s, axis, -1) for s in samples]
        lead = rows[0].shape[:-1]
        flat = [r.reshape(-1, r.shape[-1]) for r in rows]
        out = [float(statistic(*(f[i] for f in flat))) for i in range(flat[0].shape[0])]
        return np.asarray(out).reshape(lead)

    return rowwise


# ---- interval construction --------------------------------------------------------------


def _ndtri(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return _NORMAL.inv_cdf(p)


def _ndtr(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _acceleration(jackknife: list[np.ndarray]) -> float:
    """BCa's acceleration from the leave-one-out statistics of each sample (scipy's 15.36)."""
    num = den = 0.0
    for values in jackknife:
        n = values.size
        u = (n - 1) * (values.mean() - values)
        num += float(np.sum(u**3)) / n**3
        den += float(np.sum(u**2)) / n**2
    if den == 0.0:
        return 0.0
    return num / (6.0 * den**1.5)


def _interval(
    theta_b: np.ndarray,
    estimate: float,
    confidence: float,
    method: str,
    alternative: str,
    jackknife: Callable[[], list[np.ndarray]],
) -> tuple[float, float, str]:
    alpha = (1.0 - confidence) / 2.0 if alternative == "two-sided" else 1.0 - confidence
    used = method
    if np.all(theta_b == theta_b[0]):
        lo_q = hi_q = float(theta_b[0])
        used = f"{method} (degenerate: every resample gives {theta_b[0]:.6g})"
        low, high = lo_q, hi_q
    else:
        levels = (alpha, 1.0 - alpha)
        if method == "bca":
            frac = (
                np.count_nonzero(theta_b < estimate) + np.count_nonzero(theta_b <= estimate)
            ) / (2.0 * theta_b.size)
            z0 = _ndtri(frac)
            if math.isinf(z0):
                used = "percentile (BCa undefined: the estimate lies outside every resample)"
            else:
                a = _acceleration(jackknife())
                z = _ndtri(alpha)
                levels = tuple(_ndtr(z0 + (z0 + zz) / (1.0 - a * (z0 + zz))) for zz in (z, -z))  # type: ignore[assignment]
        low, high = (float(v) for v in np.quantile(theta_b, levels))
        if method == "basic":
            low, high = 2.0 * estimate - high, 2.0 * estimate - low
    if alternative == "less":
        low = -math.inf
    elif alternative == "greater":
        high = math.inf
    return low, high, used


def _samples(data: Any, nan_policy: str) -> tuple[list[np.ndarray], int]:
    if isinstance(data, tuple):
        if not data:
            raise ValueError("data is an empty tuple: give one or more paired samples")
        return paired_rows(data, nan_policy=nan_policy)
    if getattr(data, "ndim", np.ndim(data)) > 1:
        raise ValueError(
            f"data must be 1-D (got shape {np.shape(data)}); pass paired samples as a tuple "
            "(a, b) and flatten a (runs x tasks) matrix with strata= labels for a stratified "
            "bootstrap"
        )
    x, excluded = as_scores(data, "data", nan_policy=nan_policy)
    return [x], excluded


def bootstrap_ci(
    data: Any,
    statistic: str | Callable[..., Any] = "mean",
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: str = "bca",
    alternative: str = "two-sided",
    strata: Any = None,
    seed: int = 0,
    nan_policy: str = "raise",
    backend: str | None = None,
) -> BootstrapResult:
    """Bootstrap confidence interval of a statistic of one sample or of paired samples.

    Args:
        data: a 1-D array of scores, or a tuple ``(a, b, ...)`` of equally long paired samples
            (resampled at the same indices).
        statistic: ``"mean"``, ``"median"``, ``"iqm"`` (interquartile mean), for two paired
            samples ``"mean_difference"`` (mean of ``a - b``), or a function
            ``f(*samples, axis=-1)`` (vectorised; one without ``axis`` is called per resample).
        n_resamples: bootstrap resamples (10,000 by default).
        confidence: confidence level in (0, 1).
        method: ``"bca"`` (bias-corrected and accelerated, the default), ``"percentile"`` or
            ``"basic"``.
        alternative: ``"two-sided"``, or ``"less"``/``"greater"`` for a one-sided bound.
        strata: optional labels, one per observation; each resample then draws within every
            stratum as many observations as it holds (rliable's stratified bootstrap over
            tasks: flatten a (runs x tasks) matrix and label each score with its task).
        seed: the resampling stream's seed; equal seeds give equal intervals.
        nan_policy: ``"raise"`` (default) or ``"omit"`` (drop NaN/inf, reported in
            ``n_excluded``).
        backend: force the resampling backend of the compiled op (``"cpu"``, ``"reference"``).

    Returns:
        A :class:`BootstrapResult`.

    Example:
        >>> import numpy as np
        >>> from airda.eval import bootstrap_ci
        >>> scores = np.random.default_rng(0).normal(0.8, 0.02, size=200)
        >>> ci = bootstrap_ci(scores, n_resamples=2000)
        >>> bool(ci.low < scores.mean() < ci.high), ci.method
        (True, 'bca')
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}"
        )
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise TypeError(f"n_resamples must be an integer, got {type(n_resamples).__name__}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    samples, excluded = _samples(data, nan_policy)
    n = samples[0].size
    if strata is not None:
        labels = np.asarray(strata)
        if labels.shape != (n + excluded,) and labels.shape != (n,):
            raise ValueError(
                f"strata needs one label per observation ({n}), got shape {labels.shape}"
            )
        if labels.shape[0] != n:
            raise ValueError("strata cannot be combined with nan_policy='omit' exclusions")
        strata = labels

    from airda import ops

    if isinstance(statistic, str):
        if statistic not in _BUILTIN:
            raise ValueError(
                f"statistic must be one of {_BUILTIN} or a function, got {statistic!r}"
            )
        if statistic == "mean_difference":
            if len(samples) != 2:
                raise ValueError(
                    "statistic 'mean_difference' needs exactly two paired samples (a, b)"
                )
            samples = [samples[0] - samples[1]]
            statistic = "mean"
        elif len(samples) != 1:
            raise ValueError(
                f"statistic {statistic!r} takes one sample; for paired samples use "
                "'mean_difference' or a function f(a, b, axis=-1)"
            )
    x = samples[0]
    if statistic == "mean":
        estimate = float(x.mean())
        theta_b = np.asarray(
            ops.bootstrap_means(x, n_resamples, seed=seed, strata=strata, backend=backend)
        )

        def jackknife() -> list[np.ndarray]:
            return [(x.sum() - x) / (n - 1)] if n > 1 else [np.zeros(1)]
    else:
        if statistic == "median":
            func, loo = _median, _loo_median
        elif statistic == "iqm":
            func, loo = _iqm, _loo_iqm
        else:
            func, loo = _vectorised(statistic), None
        estimate = float(np.asarray(func(*samples, axis=-1)))
        parts = []
        step = max(1, _CHUNK_VALUES // max(n * len(samples), 1))
        for start in range(0, n_resamples, step):
            count = min(step, n_resamples - start)
            idx = ops.bootstrap_indices(n, count, seed=seed, start=start, strata=strata)
            parts.append(np.asarray(func(*(s[idx] for s in samples), axis=-1), dtype=np.float64))
        theta_b = np.concatenate(parts)

        def jackknife() -> list[np.ndarray]:
            if n == 1:
                return [np.zeros(1)]
            if loo is not None:
                return [loo(x)]
            return [_loo_general(func, samples)]

    if not np.all(np.isfinite(theta_b)):
        raise ValueError("the statistic gave NaN or inf on some bootstrap resamples")
    low, high, used = _interval(theta_b, estimate, confidence, method, alternative, jackknife)
    se = float(np.std(theta_b, ddof=1)) if theta_b.size > 1 else 0.0
    return BootstrapResult(
        estimate, low, high, se, float(confidence), used, n, int(n_resamples), excluded, theta_b
    )


def _loo_general(func: Callable[..., Any], samples: Sequence[np.ndarray]) -> np.ndarray:
    """Leave-one-out values of an arbitrary statistic: O(n^2) work, chunked in memory."""
    n = samples[0].size
    keep = ~np.eye(n, dtype=bool)
    out = []
    step = max(1, _CHUNK_VALUES // max(n * len(samples), 1))
    for start in range(0, n, step):
        rows = keep[start : start + step]
        picked = [
            np.broadcast_to(s, rows.shape)[rows].reshape(rows.shape[0], n - 1) for s in samples
        ]
        out.append(np.asarray(func(*picked, axis=-1), dtype=np.float64))
    return np.concatenate(out)

"""A Gaussian copula synthesizer: per-column marginals chosen by fit, a shrunk correlation of
normal scores, exact conditional sampling.

Fitting, per model column of the encoder:

- continuous columns get a marginal chosen by a Kolmogorov-Smirnov statistic: a parametric
  family (normal, truncated normal, uniform, beta, gamma; fitted by moments, so fitting is a few
  vectorised passes) when its KS statistic is within ``ks_threshold / sqrt(n)``; otherwise a
  Gaussian KDE (continuous columns of at most ``kde_max_rows`` rows) or the empirical quantile
  function with linear interpolation between knots;
- categorical columns are intervals of the normal scale, one per category (most frequent first),
  as wide as the category's frequency;
- every column's normal scores are van der Waerden scores of its ranks (ties broken at random,
  so that discrete columns get exactly normal scores); their correlation is taken pairwise over
  rows where both columns are observed, corrected for ties (random scores inside a tie block
  attenuate a correlation: the latent one is recovered by inverting the attenuation, tabulated
  by quadrature), shrunk towards the identity (Ledoit-Wolf's intensity by default) and kept
  positive definite.

With a categorical target the model is a mixture: one copula per class (one per quantile bin of a
numerical target on large tables), weighted by frequency, which holds class-conditional structure
that a single copula's interval coding of the label cannot.

Sampling draws correlated normals and maps each through its marginal's quantile function (a
category by the interval it falls in). Conditions fix numeric columns' normal scores and
categorical columns' intervals: the free columns are drawn from their exact Gaussian conditional,
conditioned categoricals from a truncated normal (one) or a Gibbs sampler over the truncated
multivariate normal (several); in a mixture the component of each row is drawn from its
posterior given the conditions. Nothing is rejected.

Example:
    >>> import pandas as pd
    >>> from airda.synth import GaussianCopula
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 2.5, 4.0, 5.5, 6.0], "c": list("aabbab")})
    >>> s = GaussianCopula(seed=0).fit(df).sample(5, conditions={"c": "b"})
    >>> s["c"].tolist()
    ['b', 'b', 'b', 'b', 'b']
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from airda.synth._base import Synthesizer
from airda.synth._metadata import SynthDataError
from airda.synth._table import Encoded

__all__ = ["GaussianCopula"]

_FAMILIES = ("normal", "truncnorm", "uniform", "beta", "gamma")
_MARGINALS = ("auto", "empirical", "kde", "parametric", *_FAMILIES)
_U_EPS = 1e-12


def _ndtr(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _ndtri(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(np.clip(u, _U_EPS, 1 - _U_EPS))


# ---------------------------------------------------------------------- marginals
class _Marginal:
    """A continuous marginal: ``cdf`` and ``ppf`` (vectorised), and its name."""

    name = ""

    def cdf(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def ppf(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _Knots(_Marginal):
    """A quantile function given by knots (u_k, x_k), linear between them: the empirical
    marginal and the KDE's tabulated one."""

    def __init__(self, name: str, u: np.ndarray, x: np.ndarray):
        self.name, self.u, self.x = name, u, x

    def cdf(self, x: np.ndarray) -> np.ndarray:
        # the inverse of ppf; a value several knots share (ties) maps to the middle of theirs
        x = np.asarray(x, dtype=np.float64)
        kx, ku = self.x, self.u
        i = np.searchsorted(kx, x, side="left")
        j = np.searchsorted(kx, x, side="right")
        last = len(kx) - 1
        tie = j > i
        mid = 0.5 * (ku[np.minimum(i, last)] + ku[np.clip(j - 1, 0, last)])
        a, b = np.clip(i - 1, 0, last), np.clip(i, 0, last)
        dx = kx[b] - kx[a]
        t = np.where(dx > 0, (x - kx[a]) / np.where(dx > 0, dx, 1.0), 0.5)
        between = ku[a] + t * (ku[b] - ku[a])
        out = np.where(tie, mid, between)
        return np.where(x < kx[0], 0.0, np.where(x > kx[-1], 1.0, out))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.u, self.x)


class _Parametric(_Marginal):
    """A parametric family by its CDF and quantile function in scipy.special terms (frozen
    scipy.stats distributions cost milliseconds each to build)."""

    def __init__(self, name: str, **params: float):
        self.name, self.p = name, params

    def cdf(self, x: np.ndarray) -> np.ndarray:
        from scipy import special

        p, x = self.p, np.asarray(x, dtype=np.float64)
        if self.name == "normal":
            return special.ndtr((x - p["loc"]) / p["scale"])
        if self.name == "truncnorm":
            fa, fb = special.ndtr(p["a"]), special.ndtr(p["b"])
            t = np.clip((x - p["loc"]) / p["scale"], p["a"], p["b"])
            return (special.ndtr(t) - fa) / (fb - fa)
        t = np.clip((x - p["loc"]) / p["scale"], 0.0, None)
        if self.name == "uniform":
            return np.clip(t, 0.0, 1.0)
        if self.name == "beta":
            return special.betainc(p["a"], p["b"], np.clip(t, 0.0, 1.0))
        return special.gammainc(p["a"], t)  # gamma

    def ppf(self, u: np.ndarray) -> np.ndarray:
        from scipy import special

        p, u = self.p, np.clip(np.asarray(u, dtype=np.float64), _U_EPS, 1 - _U_EPS)
        if self.name == "normal":
            t = special.ndtri(u)
        elif self.name == "truncnorm":
            fa, fb = special.ndtr(p["a"]), special.ndtr(p["b"])
            t = np.clip(special.ndtri(fa + u * (fb - fa)), p["a"], p["b"])
        elif self.name == "uniform":
            t = u
        elif self.name == "beta":
            t = special.betaincinv(p["a"], p["b"], u)
        else:
            t = special.gammaincinv(p["a"], u)
        return p["loc"] + p["scale"] * t


def _empirical(xs: np.ndarray, knots: int) -> _Knots:
    n = len(xs)
    k = min(n, knots)
    u = (np.arange(n) + 0.5) / n if k == n else np.linspace(0.5 / n, 1 - 0.5 / n, k)
    x = xs if k == n else np.quantile(xs, u, method="linear")
    # widen to the data's extremes at u = 0 and 1 so that the range is reachable
    return _Knots("empirical", np.r_[0.0, u, 1.0], np.r_[xs[0], x, xs[-1]])


def _kde(xs: np.ndarray, knots: int) -> _Knots | None:
    """A Gaussian KDE (Silverman's bandwidth) truncated to the data's range, tabulated."""
    from scipy.special import ndtr

    n = len(xs)
    sd = xs.std()
    iqr = np.subtract(*np.quantile(xs, [0.75, 0.25]))
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    if spread <= 0:
        return None
    h = 0.9 * spread * n ** (-0.2)
    grid = np.linspace(xs[0], xs[-1], min(knots, 256))
    # the data binned finely (bins far narrower than h), then the CDF of the binned KDE
    counts, edges = np.histogram(xs, bins=min(n, 1024))
    centres = 0.5 * (edges[1:] + edges[:-1])
    keep_bins = counts > 0
    w = counts[keep_bins] / n
    cdf = ndtr((grid[:, None] - centres[None, keep_bins]) / h) @ w
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1e-300)
    keep = np.r_[True, np.diff(cdf) > 1e-12]  # strictly increasing for interpolation
    return _Knots("kde", cdf[keep], grid[keep])


def _moment_fits(xs: np.ndarray) -> list[_Parametric]:
    """The parametric families, fitted by moments (fast, no optimiser)."""
    lo, hi = float(xs[0]), float(xs[-1])
    m, sd = float(xs.mean()), float(xs.std())
    if not sd > 0:
        return []
    span = hi - lo
    out = [
        _Parametric("normal", loc=m, scale=sd),
        _Parametric("truncnorm", a=(lo - m) / sd, b=(hi - m) / sd, loc=m, scale=sd),
        _Parametric("uniform", loc=lo, scale=span),
    ]
    eps = span * 1e-3
    a0, width = lo - eps, span + 2 * eps
    mu, var = (m - a0) / width, (sd / width) ** 2
    k = mu * (1 - mu) / var - 1
    if k > 0:
        out.append(_Parametric("beta", a=mu * k, b=(1 - mu) * k, loc=a0, scale=width))
    mean = m - a0
    if mean > 0:
        out.append(_Parametric("gamma", a=mean**2 / sd**2, loc=a0, scale=sd**2 / mean))
    return out


def _ks(xs: np.ndarray, dist: _Marginal, max_points: int = 2000) -> float:
    """The Kolmogorov-Smirnov statistic of sorted data against a continuous CDF (at most
    `max_points` evenly spaced order statistics are checked: the sup over them)."""
    n = len(xs)
    idx = np.arange(n) if n <= max_points else np.linspace(0, n - 1, max_points).astype(np.int64)
    f = dist.cdf(xs[idx])
    return float(max(np.max((idx + 1) / n - f), np.max(f - idx / n)))


def _choose_marginal(xs: np.ndarray, how: str, knots: int, ks_threshold: float, kde_max: int):
    """The marginal of sorted values `xs` (see GaussianCopula's ``marginals``)."""
    n = len(xs)
    if how == "empirical" or xs[0] == xs[-1]:
        return _empirical(xs, knots)
    if how == "kde":
        return _kde(xs, knots) or _empirical(xs, knots)
    fits = _moment_fits(xs)
    if how in _FAMILIES:
        chosen = [f for f in fits if f.name == how]
        if not chosen:
            raise SynthDataError(f"cannot fit a {how} marginal to these values")
        return chosen[0]
    best, best_ks = None, np.inf
    for f in fits:
        d = _ks(xs, f)
        if d < best_ks:
            best, best_ks = f, d
    if how == "parametric":
        return best or _empirical(xs, knots)
    if best is not None and best_ks <= ks_threshold / np.sqrt(n):
        return best
    distinct = np.count_nonzero(np.diff(xs)) + 1
    if n <= kde_max and distinct >= 0.9 * n:
        return _kde(xs, knots) or _empirical(xs, knots)
    return _empirical(xs, knots)


# ---------------------------------------------------------------------- one copula
class _Component:
    """One Gaussian copula over every model column: marginals, category intervals, the shrunk
    correlation of normal scores."""

    def __init__(self, num: np.ndarray, cat: np.ndarray, sizes: list[int], hp: dict[str, Any],
                 rng: np.random.Generator, observed: np.ndarray):  # fmt: skip
        n, d_num = num.shape
        d_cat = cat.shape[1]
        self.n, self.d_num = n, d_num
        # categories, most frequent first: cumulative bounds on the uniform scale
        self.cat_order: list[np.ndarray] = []  # position -> code
        self.cat_rank: list[np.ndarray] = []  # code -> position
        self.cat_cum: list[np.ndarray] = []  # (size + 1,) cumulative probabilities
        for j in range(d_cat):
            counts = np.bincount(cat[:, j], minlength=sizes[j]).astype(np.float64)
            order = np.argsort(-counts, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            self.cat_order.append(order)
            self.cat_rank.append(rank)
            self.cat_cum.append(np.r_[0.0, np.cumsum(counts[order]) / n])
        # normal scores: van der Waerden scores of ranks with ties broken at random
        # (a numeric column's scores come from its observed rows only, and its correlations
        # from the rows where both columns are observed)
        d = d_num + d_cat
        z = np.zeros((n, d))
        mask = np.ones((n, d), dtype=bool)
        mask[:, :d_num] = observed
        blocks: list[tuple[np.ndarray, np.ndarray] | None] = []
        self.marginals = []
        for j in range(d):
            key = num[:, j] if j < d_num else self.cat_rank[j - d_num][cat[:, j - d_num]]
            rows = np.flatnonzero(mask[:, j])
            m = len(rows)
            k = key[rows]
            order = np.argsort(k, kind="stable")
            ks = k[order]
            if m > 1 and np.any(ks[1:] == ks[:-1]):  # ties: break them at random
                order = np.lexsort((rng.random(m), k))
            r = np.empty(m, dtype=np.int64)
            r[order] = np.arange(m)
            z[rows, j] = _ndtri((r + 0.5) / max(m, 1))
            blocks.append(_tie_blocks(ks))
            if j < d_num:  # the marginal, fitted on the observed values (sorted already)
                xs = ks if m else np.sort(num[:, j])
                self.marginals.append(_choose_marginal(xs, hp["marginals"], hp["knots"],
                                                       hp["ks_threshold"], hp["kde_max_rows"]))  # fmt: skip
        if d:
            self.corr = _shrunk_correlation(z, mask, hp["shrinkage"], blocks)
        else:
            self.corr = np.zeros((0, 0))
        self.chol = np.linalg.cholesky(self.corr) if d else np.zeros((0, 0))

    # -- sampling
    def draw(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normal scores (n, d) -> (num, cat codes)."""
        n, d_num = z.shape[0], self.d_num
        num = np.empty((n, d_num))
        for j, m in enumerate(self.marginals):
            num[:, j] = m.ppf(_ndtr(z[:, j]))
        cat = np.empty((n, len(self.cat_cum)), dtype=np.int64)
        for j, cum in enumerate(self.cat_cum):
            pos = np.searchsorted(cum, _ndtr(z[:, d_num + j]), side="right") - 1
            pos = np.clip(pos, 0, len(cum) - 2)  # zero-width intervals are never hit
            cat[:, j] = self.cat_order[j][pos]
        return num, cat

    def boxes(self, cond_cat: dict[int, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The normal-scale interval of each conditioned category (may be empty: lo == hi)."""
        out = {}
        for j, codes in cond_cat.items():
            cum = self.cat_cum[j]
            pos = self.cat_rank[j][codes]
            out[self.d_num + j] = (_ndtri(cum[pos]), _ndtri(cum[pos + 1]))
        return out

    def fixed_scores(self, cond_num: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        return {j: _ndtri(self.marginals[j].cdf(np.asarray(v, np.float64)))
                for j, v in cond_num.items()}  # fmt: skip

    def sample(self, n: int, cond_cat: dict[int, np.ndarray], cond_num: dict[int, np.ndarray],
               rng: np.random.Generator, sweeps: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        d = self.corr.shape[0]
        if not cond_cat and not cond_num:
            return self.draw(rng.standard_normal((n, d)) @ self.chol.T)
        z = np.zeros((n, d))
        fixed = sorted(cond_num)
        for j, v in self.fixed_scores(cond_num).items():
            z[:, j] = v
        boxes = self.boxes(cond_cat)
        trunc = sorted(boxes)
        free = [j for j in range(d) if j not in set(fixed) | set(trunc)]
        S = self.corr
        if trunc:
            z[:, trunc] = _truncated(S, z, fixed, trunc, boxes, rng, sweeps)
        known = fixed + trunc
        if free:
            if known:
                sfk = S[np.ix_(free, known)]
                a = np.linalg.solve(S[np.ix_(known, known)], sfk.T).T  # S_fk S_kk^-1
                mu = z[:, known] @ a.T
                cov = S[np.ix_(free, free)] - a @ sfk.T
            else:
                mu, cov = np.zeros((n, len(free))), S[np.ix_(free, free)]
            z[:, free] = mu + rng.standard_normal((n, len(free))) @ _safe_cholesky(cov).T
        return self.draw(z)

    # -- likelihood of conditions (mixture weights)
    def log_likelihood(self, cond_cat: dict[int, np.ndarray], cond_num: dict[int, np.ndarray],
                       halfwidth: dict[int, float]) -> np.ndarray:  # fmt: skip
        """log P(conditions) per row: for numbers, the marginal probability of a small window
        around each value times the copula density; for categories, the probability of their
        intervals given the numbers (exact for one, Genz's integration for several)."""
        from scipy.stats import multivariate_normal

        n = len(next(iter({**cond_cat, **cond_num}.values())))
        ll = np.zeros(n)
        fixed = sorted(cond_num)
        S = self.corr
        if fixed:
            zf = np.empty((n, len(fixed)))
            for i, j in enumerate(fixed):
                x = np.asarray(cond_num[j], np.float64)
                m = self.marginals[j]
                h = halfwidth[j]
                p = m.cdf(x + h) - m.cdf(x - h)
                ll += np.log(np.maximum(p, 1e-300))
                zf[:, i] = _ndtri(m.cdf(x))
            sff = S[np.ix_(fixed, fixed)]
            inv = np.linalg.inv(sff)
            _, logdet = np.linalg.slogdet(sff)
            q = np.einsum("ij,jk,ik->i", zf, inv - np.eye(len(fixed)), zf)
            ll += -0.5 * q - 0.5 * logdet
        if cond_cat:
            boxes = self.boxes(cond_cat)
            trunc = sorted(boxes)
            if fixed:
                a = np.linalg.solve(S[np.ix_(fixed, fixed)], S[np.ix_(trunc, fixed)].T).T
                mu = zf @ a.T
                cov = S[np.ix_(trunc, trunc)] - a @ S[np.ix_(fixed, trunc)]
            else:
                mu, cov = np.zeros((n, len(trunc))), S[np.ix_(trunc, trunc)]
            lo = np.stack([boxes[j][0] for j in trunc], axis=1)
            hi = np.stack([boxes[j][1] for j in trunc], axis=1)
            if len(trunc) == 1:
                sd = np.sqrt(max(cov[0, 0], 1e-12))
                p = _ndtr((hi[:, 0] - mu[:, 0]) / sd) - _ndtr((lo[:, 0] - mu[:, 0]) / sd)
            else:
                key = np.concatenate([lo, hi, np.round(mu, 6)], axis=1)
                uniq, inv_idx = np.unique(key, axis=0, return_inverse=True)
                k = len(trunc)
                vals = np.empty(len(uniq))
                for r, row in enumerate(uniq):
                    lo_r, hi_r, mu_r = row[:k], row[k : 2 * k], row[2 * k :]
                    if np.any(hi_r <= lo_r):
                        vals[r] = 0.0
                        continue
                    big = 40.0  # +-inf bounds as wide finite ones for the integrator
                    vals[r] = multivariate_normal.cdf(
                        np.clip(hi_r, -big, big), mean=mu_r, cov=cov + 1e-9 * np.eye(k),
                        lower_limit=np.clip(lo_r, -big, big), rng=0,
                    )  # fmt: skip
                p = vals[inv_idx.ravel()]
            ll += np.log(np.maximum(p, 0.0) + 1e-300) + np.where(p > 0, 0.0, -1e4)
        return ll


def _truncated(
    S: np.ndarray,
    z: np.ndarray,
    fixed: list[int],
    trunc: list[int],
    boxes: dict[int, tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    sweeps: int,
) -> np.ndarray:
    """Normal scores of the conditioned categorical columns: a draw from the multivariate normal
    given the fixed numeric scores, truncated to each row's intervals (exact for one column, a
    Gibbs sampler for several)."""
    n = z.shape[0]
    if fixed:
        a = np.linalg.solve(S[np.ix_(fixed, fixed)], S[np.ix_(trunc, fixed)].T).T
        mu = z[:, fixed] @ a.T
        cov = S[np.ix_(trunc, trunc)] - a @ S[np.ix_(fixed, trunc)]
    else:
        mu, cov = np.zeros((n, len(trunc))), S[np.ix_(trunc, trunc)]
    lo = np.stack([boxes[j][0] for j in trunc], axis=1)
    hi = np.stack([boxes[j][1] for j in trunc], axis=1)
    k = len(trunc)
    if k == 1:
        return _trunc_normal(mu, np.sqrt(max(cov[0, 0], 1e-12)), lo, hi, rng)
    prec = np.linalg.inv(cov + 1e-9 * np.eye(k))
    t = np.empty((n, k))
    for i in range(k):  # start inside the boxes: each column's own truncated marginal
        t[:, i] = _trunc_normal(mu[:, i], np.sqrt(max(cov[i, i], 1e-12)), lo[:, i], hi[:, i], rng)
    for _ in range(sweeps):
        for i in range(k):
            others = [m for m in range(k) if m != i]
            sd = 1.0 / np.sqrt(prec[i, i])
            cm = mu[:, i] - (t[:, others] - mu[:, others]) @ prec[i, others] / prec[i, i]
            t[:, i] = _trunc_normal(cm, sd, lo[:, i], hi[:, i], rng)
    return t


# ---------------------------------------------------------------------- the synthesizer
class GaussianCopula(Synthesizer):
    """Gaussian copula with marginals chosen by fit (see the module docstring).

    With a categorical target (``Metadata.target``, or ``by``), one copula is fitted per class
    (classes of fewer than ``min_class_rows`` rows share one, where the class is a categorical
    column like the others) and mixed by class frequency: class-conditional structure that one
    copula's interval coding of a label cannot hold. Conditions weight the classes by their
    likelihood, so conditional samples stay exact draws from the mixture.

    Args:
        seed: seed of fitting (tie-breaking of ranks) and sampling.
        marginals: ``"auto"`` (chosen per column by KS statistic), ``"empirical"``, ``"kde"``,
            ``"parametric"`` (the best family by KS), or one family: ``"normal"``,
            ``"truncnorm"``, ``"uniform"``, ``"beta"``, ``"gamma"``.
        shrinkage: the weight of the identity in the correlation matrix: ``"auto"``
            (Ledoit-Wolf) or a number in [0, 1].
        by: ``"auto"`` (the metadata's target when it is categorical), None (one copula), or a
            categorical column to fit one copula per value of.
        min_class_rows: classes with fewer rows share one copula.
        target_bins: with a numerical target, at most this many quantile bins of it, one
            copula each (each bin at least ``50 * min_class_rows`` rows; 1: one copula).
        knots: at most this many knots tabulate an empirical or KDE quantile function.
        ks_threshold: a parametric family is chosen when its KS statistic is at most
            ``ks_threshold / sqrt(n)`` (1.36 would be the 5% critical value).
        kde_max_rows: a KDE is considered only for continuous columns of at most this many rows.
        gibbs_sweeps: Gibbs sweeps when two or more categorical columns are conditioned on.

    Example:
        >>> import pandas as pd
        >>> from airda.synth import GaussianCopula
        >>> df = pd.DataFrame({"a": [1, 2, 3, 4, 5, 6], "b": [2.0, 4.1, 5.9, 8.2, 9.9, 12.1]})
        >>> GaussianCopula(seed=0).fit(df).sample(3).dtypes.tolist()
        [dtype('int64'), dtype('float64')]
    """

    defaults: ClassVar[dict[str, Any]] = {
        "marginals": "auto",
        "shrinkage": "auto",
        "by": "auto",
        "min_class_rows": 20,
        "target_bins": 8,
        "knots": 1024,
        "ks_threshold": 1.0,
        "kde_max_rows": 5000,
        "gibbs_sweeps": 20,
    }

    def _check_hyperparameters(self, hp: dict[str, Any]) -> None:
        if hp["marginals"] not in _MARGINALS:
            raise ValueError(f"marginals must be one of {_MARGINALS}, got {hp['marginals']!r}")
        s = hp["shrinkage"]
        if s != "auto" and not (isinstance(s, int | float) and 0 <= s <= 1):
            raise ValueError(f"shrinkage must be 'auto' or in [0, 1], got {s!r}")
        for k in ("knots", "kde_max_rows", "gibbs_sweeps", "min_class_rows", "target_bins"):
            if isinstance(hp[k], bool) or not isinstance(hp[k], int) or hp[k] < 1:
                raise ValueError(f"{k} must be a positive int, got {hp[k]!r}")
        if not (isinstance(hp["ks_threshold"], int | float) and hp["ks_threshold"] >= 0):
            raise ValueError(f"ks_threshold must be >= 0, got {hp['ks_threshold']!r}")
        if hp["by"] is not None and not isinstance(hp["by"], str):
            raise ValueError(f"by must be 'auto', None or a column name, got {hp['by']!r}")

    # ------------------------------------------------------------------ fit
    def _by_index(self, enc: Encoded) -> int | None:
        by = self._hp["by"]
        md = self.metadata
        if by == "auto":
            by = md.target if md is not None else None
            if by is None or by not in enc.cat_names:
                return None
        elif by is None:
            return None
        if by not in enc.cat_names:
            raise SynthDataError(f"by={by!r}: not a categorical model column (one of "
                                 f"{enc.cat_names})", by)  # fmt: skip
        return enc.cat_names.index(by)

    def _fit(self, enc: Encoded) -> None:
        with _one_blas_thread():
            self._fit_components(enc)

    def _fit_components(self, enc: Encoded) -> None:
        hp = self._hp
        rng = np.random.default_rng([self.seed, 0xC0])
        n = len(enc)
        self._d_num, self._cat_sizes = enc.num.shape[1], list(enc.cat_sizes)
        by = self._by_index(enc)
        groups: list[np.ndarray] = []  # codes of the by-column per component
        if by is not None:
            counts = np.bincount(enc.cat[:, by], minlength=enc.cat_sizes[by])
            big = [np.array([c]) for c in np.flatnonzero(counts >= hp["min_class_rows"])]
            rare = np.flatnonzero((counts > 0) & (counts < hp["min_class_rows"]))
            if (len(big) < 2 and len(rare) == 0) or not big:
                by = None
            else:
                groups = big
                if len(rare):
                    if counts[rare].sum() >= 5:
                        groups.append(rare)
                    else:  # too few to stand alone: with the largest class
                        k = int(np.argmax([counts[g].sum() for g in groups]))
                        groups[k] = np.r_[groups[k], rare]
        self._by = by
        observed = np.ones(enc.num.shape, dtype=bool)
        for j, name in enumerate(enc.num_names):
            if name + "#missing" in enc.cat_names:
                observed[:, j] = enc.cat[:, enc.cat_names.index(name + "#missing")] == 0
        self._group_of = None
        labels = None  # the component of each row
        if by is not None:
            self._group_of = np.full(enc.cat_sizes[by], -1, dtype=np.int64)
            for g, codes in enumerate(groups):
                self._group_of[codes] = g
            labels = self._group_of[enc.cat[:, by]]
        else:
            labels = self._target_bins(enc)
        if labels is None:
            self._components = [_Component(enc.num, enc.cat, enc.cat_sizes, hp, rng, observed)]
            self._weights = np.ones(1)
        else:
            self._components, w = [], []
            for g in range(int(labels.max()) + 1):
                rows = labels == g
                self._components.append(
                    _Component(enc.num[rows], enc.cat[rows], enc.cat_sizes, hp, rng, observed[rows])
                )
                w.append(rows.sum() / n)
            self._weights = np.asarray(w)
        # windows for the likelihood of numeric conditions: a hundredth of a robust spread
        self._halfwidth = {}
        for j in range(self._d_num):
            x = enc.num[:, j]
            q = np.quantile(x, [0.1, 0.9]) if n else np.zeros(2)
            spread = q[1] - q[0] or (x.max() - x.min() if n else 0.0) or 1.0
            self._halfwidth[j] = 0.005 * spread

    def _target_bins(self, enc: Encoded) -> np.ndarray | None:
        """With a numerical target (``by="auto"``): its quantile bins, one copula each, when
        every bin gets at least ``50 * min_class_rows`` rows; None otherwise."""
        md = self.metadata
        hp = self._hp
        target = md.target if md is not None and hp["by"] == "auto" else None
        if target is None or target not in enc.num_names:
            return None
        x = enc.num[:, enc.num_names.index(target)]
        bins = min(hp["target_bins"], len(x) // (50 * hp["min_class_rows"]))
        if bins < 2:
            return None
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        labels = np.searchsorted(edges, x, side="right")
        present = np.unique(labels)
        if len(present) < 2:
            return None
        return np.searchsorted(present, labels)  # consecutive component numbers

    # ------------------------------------------------------------------ sample
    def _sample(
        self,
        n: int,
        cond_cat: dict[int, np.ndarray],
        cond_num: dict[int, np.ndarray],
        rng: np.random.Generator,
    ) -> Encoded:
        with _one_blas_thread():
            return self._sample_components(n, cond_cat, cond_num, rng)

    def _sample_components(
        self,
        n: int,
        cond_cat: dict[int, np.ndarray],
        cond_num: dict[int, np.ndarray],
        rng: np.random.Generator,
    ) -> Encoded:
        enc = self.encoder
        comps = self._components
        for j, codes in cond_cat.items():  # a category that never occurs cannot be drawn
            drawable = np.zeros(len(codes), dtype=bool)
            for c in comps:
                cum, pos = c.cat_cum[j], c.cat_rank[j][codes]
                drawable |= cum[pos + 1] > cum[pos]
            if not drawable.all():
                name = enc.cat_names[j].split("#")[0]
                raise SynthDataError(
                    f"condition on {name!r}: a value that never occurs in the data", name
                )
        # which component draws each row
        if len(comps) == 1:
            which = np.zeros(n, dtype=np.int64)
        else:
            logw = np.tile(np.log(self._weights), (n, 1))
            if self._by in cond_cat:
                g = self._group_of[cond_cat[self._by]]
                logw = np.where(np.arange(len(comps))[None, :] == g[:, None], 0.0, -np.inf)
            rest = {j: v for j, v in cond_cat.items() if j != self._by}
            if rest or cond_num:
                for k, c in enumerate(comps):
                    # the by-column is fixed in a component of one class: drop it from the box
                    logw[:, k] += c.log_likelihood(rest, cond_num, self._halfwidth)
            logw -= logw.max(axis=1, keepdims=True)
            p = np.exp(logw)
            p /= p.sum(axis=1, keepdims=True)
            which = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
            which = np.minimum(which, len(comps) - 1)
        num = np.empty((n, self._d_num))
        cat = np.empty((n, len(self._cat_sizes)), dtype=np.int64)
        for k, c in enumerate(comps):
            rows = np.flatnonzero(which == k)
            if not len(rows):
                continue
            cc = {j: v[rows] for j, v in cond_cat.items()}
            if self._by is not None and self._by in cc and len(self._group_codes(k)) == 1:
                del cc[self._by]  # constant in this component
            cn = {j: v[rows] for j, v in cond_num.items()}
            num[rows], cat[rows] = c.sample(len(rows), cc, cn, rng, self._hp["gibbs_sweeps"])
        for j, v in cond_num.items():
            num[:, j] = v
        for j, v in cond_cat.items():
            cat[:, j] = v
        return Encoded(num, cat, list(enc.num_names), list(enc.cat_names), list(enc.cat_sizes),
                       list(enc.num_integer))  # fmt: skip

    def _group_codes(self, k: int) -> np.ndarray:
        return np.flatnonzero(self._group_of == k)


_BLAS: list[Any] = []  # the threadpoolctl controller, built once (it scans the loaded libraries)


def _one_blas_thread() -> Any:
    """One BLAS thread for the copula's small matrix products: threads gain nothing at these
    sizes, and on a loaded machine OpenBLAS's spinning threads made them 15x slower."""
    import contextlib

    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _BLAS.append(None)
    if _BLAS[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _BLAS[0].limit(limits=1, user_api="blas")


def _trunc_normal(
    mu: np.ndarray, sd: float, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draws from N(mu, sd^2) truncated to [lo, hi], by the inverse CDF (vectorised); in the
    far tails, where the CDF rounds to 0 or 1, the inverse is taken on the mirrored side."""
    a = (np.asarray(lo) - mu) / sd
    b = (np.asarray(hi) - mu) / sd
    flip = a > 0  # both bounds in the upper tail: use the symmetric lower tail for precision
    a2 = np.where(flip, -b, a)
    b2 = np.where(flip, -a, b)
    fa, fb = _ndtr(a2), _ndtr(b2)
    u = fa + rng.random(np.shape(mu)) * (fb - fa)
    x = _ndtri(u)
    x = np.clip(x, a2, b2)
    x = np.where(flip, -x, x)
    return mu + sd * x


def _safe_cholesky(cov: np.ndarray) -> np.ndarray:
    cov = 0.5 * (cov + cov.T)
    try:
        return np.linalg.cholesky(cov + 1e-10 * np.eye(len(cov)))
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0, None))


def _tie_blocks(ks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A column with ties (a category, a discrete number), given its sorted values: the inner
    cut points of its blocks on the normal scale and the mean normal score of each block; None
    for a column whose ties are too few to matter (mean square of the block means above 0.98)."""
    m = len(ks)
    if m < 2:
        return None
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    if len(starts) == m:
        return None
    counts = np.diff(np.r_[starts, m])
    p = counts / m
    cut = _ndtri(np.cumsum(p)[:-1])
    edges = np.r_[-np.inf, cut, np.inf]
    from scipy.special import ndtr

    phi = np.exp(-0.5 * np.where(np.isfinite(edges), edges, 0.0) ** 2) / np.sqrt(2 * np.pi)
    phi[~np.isfinite(edges)] = 0.0
    mass = np.maximum(ndtr(edges[1:]) - ndtr(edges[:-1]), 1e-300)
    means = (phi[:-1] - phi[1:]) / mass
    if float(np.sum(p * means**2)) > 0.98:
        return None
    return cut, means


_RHO = np.linspace(-0.995, 0.995, 33)
_X = np.linspace(-6.0, 6.0, 161)
_WX = np.exp(-0.5 * _X**2)
_WX /= _WX.sum()
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(48)
_GH_W = _GH_W / _GH_W.sum()


def _latent_correlation(c: np.ndarray, blocks: list[tuple[np.ndarray, np.ndarray] | None]):
    """Undo the attenuation that ties cause: scores drawn at random inside a tie block carry
    only the block's mean, so their correlation g(rho) is smaller than the latent rho the
    copula samples from. g is tabulated on a grid of rho (by quadrature: the outer variable on a
    fine grid, the inner one conditional on it with Gauss-Hermite nodes) and inverted."""
    disc = [j for j, b in enumerate(blocks) if b is not None]
    if not disc:
        return c
    d = len(blocks)
    # m_i(x) on the grid: the block mean for a discrete column, x itself for a continuous one
    mx = np.tile(_X, (d, 1))
    for j in disc:
        cut, means = blocks[j]
        mx[j] = means[np.searchsorted(cut, _X)]
    out = c.copy()
    sd = np.sqrt(1 - _RHO**2)
    for j in disc:
        cut, means = blocks[j]
        # H[r, x] = E[m_j(rho x + sd W)]: in closed form over few blocks,
        # m_K + sum_l (m_l - m_l+1) Phi((c_l - rho x) / sd); by Gauss-Hermite over many
        mu = _RHO[:, None] * _X[None, :]
        if len(cut) <= 32:
            t = (cut[None, None, :] - mu[:, :, None]) / sd[:, None, None]
            h = means[-1] + _ndtr(t) @ (means[:-1] - means[1:])
        else:
            pts = mu[:, :, None] + sd[:, None, None] * _GH_X[None, None, :]
            h = means[np.searchsorted(cut, pts)] @ _GH_W
        g = (h * _WX) @ mx.T  # g[r, i] = E[m_i(X) m_j(rho X + sd W)]
        for i in range(d):
            if i == j or (blocks[i] is not None and i > j):
                continue  # each discrete pair once (the later column tabulates it)
            gi = np.maximum.accumulate(g[:, i])
            rho = 0.0 if gi[-1] - gi[0] < 1e-09 else float(np.interp(c[i, j], gi, _RHO))
            out[i, j] = out[j, i] = rho
    return out


def _shrunk_correlation(
    z: np.ndarray,
    mask: np.ndarray,
    shrinkage: float | str,
    blocks: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> np.ndarray:
    """The correlation of the normal scores (pairwise over rows where both are observed; `z`
    is 0 where not), corrected for ties (:func:`_latent_correlation`), shrunk towards the
    identity and made positive definite (eigenvalues at least 1e-6, then rescaled to a unit
    diagonal)."""
    n, d = z.shape
    m = mask.astype(np.float64)
    cross = z.T @ z
    ss = (z**2).T @ m  # ss[i, j]: sum of z_i^2 over rows where j is observed too
    denom = np.sqrt(ss * ss.T)
    c = np.where(denom > 0, cross / np.where(denom > 0, denom, 1.0), 0.0)
    np.fill_diagonal(c, 1.0)
    zs = z
    if blocks is not None:
        c = _latent_correlation(c, blocks)
    if shrinkage == "auto":  # Ledoit-Wolf's intensity for the target I (standardised data)
        if n < 2 or d < 2:
            lam = 0.0
        else:
            x2 = zs**2
            pi = (x2.T @ x2 / n - c**2).sum()
            gamma = ((c - np.eye(d)) ** 2).sum()
            lam = float(np.clip(pi / n / gamma, 0.0, 1.0)) if gamma > 0 else 1.0
    else:
        lam = float(shrinkage)
    c = (1 - lam) * c + lam * np.eye(d)
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    if w.min() < 1e-6:
        c = (v * np.clip(w, 1e-6, None)) @ v.T
        s = np.sqrt(np.diag(c))
        c = c / np.outer(s, s)
    return c

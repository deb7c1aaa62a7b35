"""parzen: log-densities of Parzen estimators, mixtures of truncated normals, as TPE scores them.

A mixture has ``n_comp`` components over ``d`` continuous dimensions (and optionally ``n_cat``
categorical ones). Component k has weight ``exp(log_weights[k])`` (not necessarily normalised),
a mean ``mu[k]`` and bandwidths ``sigma[k]``; in dimension j it is the normal N(mu[k, j],
sigma[k, j]) truncated to [low[j], high[j]] and renormalised there, and in categorical dimension c
it gives choice v the probability ``exp(cat_logp[k, c, v])``. :func:`parzen_logpdf` returns, for
each candidate row x::

    log p(x) = log sum_k w_k  prod_j N_trunc(x_j; mu_kj, sigma_kj)  prod_c P_kc(x_c)

with a stable log-sum-exp. An optional ``log_extra`` (one value per candidate) is one more term
of the sum, for a component the caller evaluates itself (TPE's wide prior, in closed form):
``log(exp(log_extra) + sum_k ...)``. :func:`parzen_log_norm` gives each component's constant (its
log-normaliser ``sum_j -log(sigma_kj) - log(2 pi) / 2 - log mass_kj``), which a caller that scores
the same mixture many times can compute once and pass back as ``log_norm``.

Conventions: a candidate outside [low, high] in some dimension has log p = -inf; a component of
weight 0 (log-weight -inf) or probability 0 for a candidate's category contributes nothing; when
nothing contributes, log p = -inf. Components farther than 60 (in log units) below the largest
term of a candidate (``log_extra`` included) are dropped by the ``cpu`` backend; their share of
the sum is below ``n_comp * e**-60``, well under float64 rounding for any realistic n_comp. The
``cpu`` backend skips such components in chunks before summing all their dimensions; it is
fastest with the components in ascending order of their first coordinate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import REAL_DTYPES, ArrayInfo, as_array, describe, host_array, like_input
from airda.ops._registry import register_op

__all__ = [
    "parzen_log_norm",
    "parzen_log_norm_reference",
    "parzen_logpdf",
    "parzen_logpdf_reference",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)


# ---- reference: plain NumPy ---------------------------------------------------------------


def _log_ndtr(z: np.ndarray) -> np.ndarray:
    """log Phi(z): erfc while it does not underflow, then the asymptotic series of Mills' ratio
    (six terms; relative error below 1e-14 past z = -35)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    near = z > -35.0
    with np.errstate(divide="ignore"):
        out[near] = np.log(0.5 * _erfc(-z[near] * _SQRT_HALF).astype(np.float64))
    far = z[~near]
    r = 1.0 / (far * far)
    series = 1.0 - r * (1 - 3 * r * (1 - 5 * r * (1 - 7 * r * (1 - 9 * r * (1 - 11 * r)))))
    out[~near] = -0.5 * far * far - np.log(-far) - _HALF_LOG_2PI + np.log(series)
    return out


def _normal_log_mass(mu: np.ndarray, sigma: np.ndarray, low: Any, high: Any) -> np.ndarray:
    """log of the mass of N(mu, sigma) on [low, high], elementwise and stable in both tails."""
    a = (low - mu) / sigma
    b = (high - mu) / sigma
    upper = a > 0  # both bounds in the upper tail: mirror them into the lower one
    a, b = np.where(upper, -b, a), np.where(upper, -a, b)
    out = np.empty(np.broadcast(a, b).shape)
    lower = b < 0
    la, lb = _log_ndtr(a[lower]), _log_ndtr(b[lower])
    gap = la - lb
    with np.errstate(divide="ignore"):
        tail = np.where(gap > -math.log(2.0), np.log(-np.expm1(gap)), np.log1p(-np.exp(gap)))
        out[lower] = lb + tail
        # a <= 0 <= b: erf is accurate near zero and the two terms add.
        mid = ~lower
        both = (_erf(b[mid] * _SQRT_HALF) - _erf(a[mid] * _SQRT_HALF)).astype(np.float64)
        out[mid] = np.log(0.5 * both)
    return out


def parzen_log_norm_reference(mu: Any, sigma: Any, low: Any, high: Any) -> np.ndarray:
    """Reference of :func:`parzen_log_norm` (same arguments, NumPy result)."""
    mu, sigma, _, low, high, _, _ = _check(_NO_X, mu, sigma, None, low, high, None, None, None)
    return _log_norm_reference(mu, sigma, low, high)


def _log_norm_reference(mu, sigma, low, high) -> np.ndarray:
    if mu.shape[1] == 0:
        return np.zeros(mu.shape[0])
    sigma = np.broadcast_to(sigma, mu.shape)
    mass = _normal_log_mass(mu, sigma, low[None, :], high[None, :])
    return -(np.log(sigma) + _HALF_LOG_2PI + mass).sum(axis=1)


def _logpdf_reference(
    x, mu, sigma, log_weights, log_norm, low, high, cat_x, cat_logp, log_extra=None
):
    n_cand = x.shape[0]
    if n_cand == 0:
        return np.empty(0)
    if log_norm is None:
        log_norm = _log_norm_reference(mu, sigma, low, high)
    sigma = np.broadcast_to(sigma, mu.shape)
    # terms[i, k] = log w_k + log_norm_k - |z_ik|^2 / 2 + categorical log-probabilities
    z = (x[:, None, :] - mu[None, :, :]) / sigma[None, :, :]
    terms = (log_weights + log_norm)[None, :] - 0.5 * (z * z).sum(axis=2)
    if cat_x is not None:
        for c in range(cat_x.shape[1]):
            terms = terms + cat_logp[:, c, :][:, cat_x[:, c]].T
    top = terms.max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = safe + np.log(np.exp(terms - safe[:, None]).sum(axis=1))
    out[top == -np.inf] = -np.inf
    if log_extra is not None:
        out = np.logaddexp(out, log_extra)
    inside = np.all((x >= low) & (x <= high), axis=1)
    out[~inside] = -np.inf
    return out


def parzen_logpdf_reference(
    x: Any,
    mu: Any,
    sigma: Any,
    log_weights: Any,
    low: Any,
    high: Any,
    *,
    log_norm: Any = None,
    cat_x: Any = None,
    cat_logp: Any = None,
    log_extra: Any = None,
) -> np.ndarray:
    """Reference of :func:`parzen_logpdf`: the full (candidate, component, dimension) tensor,
    then a log-sum-exp over components (same arguments, NumPy result)."""
    args = _check(x, mu, sigma, log_weights, low, high, log_norm, cat_x, cat_logp, log_extra)
    return _logpdf_reference(*args[:-1])


# ---- backends ---------------------------------------------------------------------------


def _logpdf_cpu(x, mu, sigma, log_weights, log_norm, low, high, cat_x, cat_logp, log_extra=None):
    out = np.empty(x.shape[0], dtype=np.float64)
    native().parzen_logpdf(
        x, mu, sigma, log_weights, log_norm, low, high, cat_x, cat_logp, log_extra, 0, out
    )
    return out


def _log_norm_cpu(mu, sigma, low, high):
    out = np.empty(mu.shape[0], dtype=np.float64)
    native().parzen_log_norm(mu, sigma, low, high, out)
    return out


_LOGPDF_OP = register_op("parzen_logpdf", {"reference": _logpdf_reference, "cpu": _logpdf_cpu})
_LOG_NORM_OP = register_op(
    "parzen_log_norm", {"reference": _log_norm_reference, "cpu": _log_norm_cpu}
)


# ---- input checks -----------------------------------------------------------------------


def _real(a: Any, name: str, ndim: int | tuple[int, ...]) -> tuple[np.ndarray, ArrayInfo]:
    a, info = as_array(a, name)
    if info.dtype not in REAL_DTYPES:
        raise TypeError(f"{name} has dtype {info.dtype}; expected real numbers")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if len(info.shape) not in dims:
        want = " or ".join(f"{n}-D" for n in dims)
        raise ValueError(f"{name} must be {want}, got shape {info.shape}")
    return host_array(a, name, np.float64)[0], info


def _first_bad(mask: np.ndarray) -> str:
    return str(tuple(int(i) for i in np.argwhere(mask)[0]))


# Stands for x in the checks of parzen_log_norm, which has no candidates (x=None is an error).
_NO_X = object()


def _check(x, mu, sigma, log_weights, low, high, log_norm, cat_x, cat_logp, log_extra=None):
    """Every argument checked, as float64 (int64 codes) C-contiguous host arrays."""
    mu_a, _ = _real(mu, "mu", 2)
    n_comp, d = mu_a.shape
    if n_comp == 0:
        raise ValueError("mu is empty (shape (0, d)); a mixture needs at least one component")
    sigma_a, _ = _real(sigma, "sigma", (1, 2))
    if sigma_a.shape not in ((d,), (n_comp, d)):
        raise ValueError(
            f"sigma must have shape ({n_comp}, {d}) or ({d},) (shared), got {sigma_a.shape}"
        )
    low_a, _ = _real(low, "low", 1)
    high_a, _ = _real(high, "high", 1)
    for name, a in (("low", low_a), ("high", high_a)):
        if a.shape != (d,):
            raise ValueError(f"{name} must have shape ({d},), one bound per dimension")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must be finite, got {a[~np.isfinite(a)][0]}")
    if not (low_a < high_a).all():
        j = int(np.argmin(low_a < high_a))
        raise ValueError(
            f"low < high is needed in every dimension; dimension {j} has [{low_a[j]}, {high_a[j]}]"
        )
    if not np.isfinite(mu_a).all():
        raise ValueError(
            f"mu must be finite; the first bad value is at {_first_bad(~np.isfinite(mu_a))}"
        )
    outside = (mu_a < low_a) | (mu_a > high_a)
    if outside.any():
        raise ValueError(
            f"mu must lie in [low, high]; the first mean outside is at {_first_bad(outside)}"
        )
    if not (np.isfinite(sigma_a) & (sigma_a > 0)).all():
        bad = ~(np.isfinite(sigma_a) & (sigma_a > 0))
        raise ValueError(
            f"sigma must be finite and > 0; the first bad value is at {_first_bad(bad)}"
        )
    if x is _NO_X:
        return mu_a, sigma_a, None, low_a, high_a, None, None
    x_a, info = _real(x, "x", 2)
    if x_a.shape[1] != d:
        raise ValueError(f"x has {x_a.shape[1]} columns; mu has {d} dimensions")
    if np.isnan(x_a).any():
        raise ValueError(f"x contains NaN (first at {_first_bad(np.isnan(x_a))})")
    lw, _ = _real(log_weights, "log_weights", 1)
    if lw.shape != (n_comp,):
        raise ValueError(f"log_weights must have shape ({n_comp},), one per component")
    if np.isnan(lw).any() or (lw == np.inf).any():
        raise ValueError("log_weights must be numbers below +inf (-inf drops a component)")
    norm = None
    if log_norm is not None:
        norm, _ = _real(log_norm, "log_norm", 1)
        if norm.shape != (n_comp,) or not np.isfinite(norm).all():
            raise ValueError(f"log_norm must hold {n_comp} finite values (see parzen_log_norm)")
    if (cat_x is None) != (cat_logp is None):
        raise ValueError("cat_x and cat_logp go together: give both or neither")
    cx = cl = None
    if cat_x is not None:
        cat_x, cx_info = as_array(cat_x, "cat_x")
        if not cx_info.dtype.startswith(("int", "uint")) or len(cx_info.shape) != 2:
            raise TypeError(
                f"cat_x must be a 2-D integer array, got {cx_info.dtype} {cx_info.shape}"
            )
        cx = host_array(cat_x, "cat_x", np.int64)[0]
        cl, _ = _real(cat_logp, "cat_logp", 3)
        if cx.shape[0] != x_a.shape[0] or cl.shape[:2] != (n_comp, cx.shape[1]):
            raise ValueError(
                f"cat_x must be (n_cand, n_cat) and cat_logp (n_comp, n_cat, n_choices); got "
                f"{cx.shape} and {cl.shape} with n_cand={x_a.shape[0]}, n_comp={n_comp}"
            )
        if cx.size and ((cx < 0) | (cx >= cl.shape[2])).any():
            raise ValueError(
                f"cat_x codes must be in [0, {cl.shape[2]}); the first bad one is at "
                f"{_first_bad((cx < 0) | (cx >= cl.shape[2]))}"
            )
        if np.isnan(cl).any() or (cl == np.inf).any():
            raise ValueError("cat_logp must hold log-probabilities (no NaN or +inf)")
    extra = None
    if log_extra is not None:
        extra, _ = _real(log_extra, "log_extra", 1)
        if extra.shape != (x_a.shape[0],):
            raise ValueError(
                f"log_extra must have shape ({x_a.shape[0]},), one value per candidate"
            )
        if np.isnan(extra).any() or (extra == np.inf).any():
            raise ValueError("log_extra must be numbers below +inf (-inf adds nothing)")
    return x_a, mu_a, sigma_a, lw, norm, low_a, high_a, cx, cl, extra, info


# ---- public functions ---------------------------------------------------------------------


def parzen_logpdf(
    x: Any,
    mu: Any,
    sigma: Any,
    log_weights: Any,
    low: Any,
    high: Any,
    *,
    log_norm: Any = None,
    cat_x: Any = None,
    cat_logp: Any = None,
    log_extra: Any = None,
    backend: str | None = None,
) -> Any:
    """log p(x) of a Parzen estimator (a mixture of truncated normals) for each candidate.

    Args:
        x: candidates, (n_cand, d) real (taken as float64), no NaN; n_cand may be 0.
        mu: component means, (n_comp, d), n_comp >= 1, each inside [low, high].
        sigma: bandwidths, (n_comp, d), or (d,) shared by every component; finite and > 0.
        log_weights: (n_comp,) log-weights, not necessarily normalised; -inf drops a component.
        low, high: (d,) finite truncation bounds, low < high.
        log_norm: optional (n_comp,) constants from :func:`parzen_log_norm` for these mu,
            sigma and bounds, to skip recomputing them.
        cat_x: optional (n_cand, n_cat) integer category codes of the candidates.
        cat_logp: (n_comp, n_cat, n_choices) log-probabilities of every code, with cat_x.
        log_extra: optional (n_cand,) log of one more term of each candidate's sum (a component
            evaluated by the caller); -inf adds nothing. Candidates outside the bounds stay
            -inf.
        backend: ``"cpu"`` (C++/OpenMP) or ``"reference"`` (NumPy); host data takes ``cpu``.

    Returns:
        (n_cand,) float64 log-densities (NumPy, or torch for a torch ``x``); -inf outside the
        bounds.

    Raises:
        TypeError: an argument is not a real array (codes: integer).
        ValueError: shapes disagree, or a value breaks the rules above (the message says which
            argument and where).

    Example:
        >>> import numpy as np
        >>> mu = np.array([[0.2], [0.8]])
        >>> lp = parzen_logpdf(np.array([[0.2], [0.5], [1.5]]), mu, np.array([0.1]),
        ...                    np.log([0.5, 0.5]), np.array([0.0]), np.array([1.0]))
        >>> bool(lp[0] > lp[1]), float(lp[2])
        (True, -inf)
        >>> ref = parzen_logpdf_reference(np.array([[0.2]]), mu, np.array([0.1]),
        ...                               np.log([0.5, 0.5]), np.array([0.0]), np.array([1.0]))
        >>> bool(np.isclose(lp[0], ref[0], rtol=1e-12))
        True
    """
    args = _check(x, mu, sigma, log_weights, low, high, log_norm, cat_x, cat_logp, log_extra)
    info = args[-1]
    impl = _LOGPDF_OP.select(info, backend)
    return like_input(impl(*args[:-1]), info, getattr(x, "device", None))


def parzen_log_norm(
    mu: Any, sigma: Any, low: Any, high: Any, *, backend: str | None = None
) -> np.ndarray:
    """Each component's log-normaliser ``sum_j -log(sigma_kj) - log(2 pi)/2 - log mass_kj``,
    where mass_kj is the probability N(mu_kj, sigma_kj) puts on [low_j, high_j].

    Same argument rules as :func:`parzen_logpdf`; returns (n_comp,) float64 NumPy.

    Example:
        >>> import numpy as np
        >>> c = parzen_log_norm(np.array([[0.0]]), np.array([1.0]), np.array([0.0]),
        ...                     np.array([50.0]))
        >>> bool(abs(c[0] - np.log(2.0) + 0.5 * np.log(2 * np.pi)) < 1e-12)
        True
    """
    mu_a, sigma_a, _, low_a, high_a, _, _ = _check(
        _NO_X, mu, sigma, None, low, high, None, None, None
    )
    impl = _LOG_NORM_OP.select(describe(mu_a, "mu"), backend)
    return impl(mu_a, sigma_a, low_a, high_a)


def _parzen_logpdf_trusted(
    x, mu, sigma, log_weights, log_norm, low, high, cat_x, cat_logp, log_extra=None
):
    """For TPE: arguments already float64/int64 C-contiguous and valid; cpu when built."""
    impl = _LOGPDF_OP.select(_HOST_INFO, None)
    return impl(x, mu, sigma, log_weights, log_norm, low, high, cat_x, cat_logp, log_extra)


def _parzen_log_norm_trusted(mu, sigma, low, high):
    impl = _LOG_NORM_OP.select(_HOST_INFO, None)
    return impl(mu, sigma, low, high)


_HOST_INFO = ArrayInfo("numpy", "cpu", "float64", (0, 0), True)

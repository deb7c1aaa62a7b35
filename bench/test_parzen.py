"""Parzen op: parzen_logpdf (24 to 256 candidates against 1e3 to 2e4 components of a mixture of
truncated normals) and parzen_log_norm, airda's cpu backend against the NumPy reference (the
baseline of each group). TPE's use of the op, against Optuna's sampler, is timed in
``bench/test_tpe.py``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from airda import ops

BACKENDS = ("reference", "cpu")


def require(backend: str) -> None:
    status = ops.backend_status(backend)
    if not status.usable:
        pytest.skip(f"{backend}: {status.reason}")


@functools.cache
def mixture(n_cand: int, n_comp: int, d: int):
    """Candidates x, and components with Scott-rule widths and equal weights, in the unit cube."""
    rng = np.random.default_rng([n_cand, n_comp, d])
    x, mu = rng.random((n_cand, d)), rng.random((n_comp, d))
    sigma = np.full(d, 0.2 * n_comp ** (-1.0 / (d + 4)))
    return x, mu, sigma, np.full(n_comp, -np.log(n_comp)), np.zeros(d), np.ones(d)


@pytest.mark.parametrize(
    ("n_cand", "n_comp", "d"), [(24, 5000, 10), (24, 1000, 1), (256, 20000, 10)]
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_parzen_logpdf(timed, n_cand, n_comp, d, backend):
    require(backend)
    args = mixture(n_cand, n_comp, d)
    got = timed(
        f"parzen_logpdf {n_cand} x {n_comp} x {d}",
        backend,
        functools.partial(ops.parzen_logpdf, *args, backend=backend),
        rounds=3 if backend == "reference" else 20,
        baseline=backend == "reference",
    )
    if backend != "reference":
        want = ops.parzen_logpdf(*args, backend="reference")
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("n_comp", "d"), [(5000, 10), (20000, 3)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_parzen_log_norm(timed, n_comp, d, backend):
    require(backend)
    _, mu, _, _, low, high = mixture(1, n_comp, d)
    # one width per component and dimension, some of them wide: the truncation matters
    sigma = np.random.default_rng([n_comp, d]).uniform(0.01, 2.0, (n_comp, d))
    got = timed(
        f"parzen_log_norm {n_comp} x {d}",
        backend,
        functools.partial(ops.parzen_log_norm, mu, sigma, low, high, backend=backend),
        rounds=3 if backend == "reference" else 20,
        baseline=backend == "reference",
    )
    if backend != "reference":
        want = ops.parzen_log_norm(mu, sigma, low, high, backend="reference")
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

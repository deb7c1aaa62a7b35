"""airda.eval end to end against scipy.stats, in one run.

- BCa interval of a paired mean difference (``airda.eval.bootstrap_ci((a, b),
  "mean_difference")``: compiled resampling + closed-form jackknife) against
  ``scipy.stats.bootstrap(paired=True, method="BCa")`` at n = 1e4 and 1e5 (scipy's jackknife
  builds n leave-one-out samples of n - 1 values: at n = 1e5 it is timed once).
- ``airda.eval.compare`` (BCa interval + paired permutation test + effect sizes) against scipy's
  ``bootstrap`` + ``permutation_test`` on the same paired scores, n = 1e4.

With ``--benchmark-disable`` (the CI smoke run) every body runs once on 50 resamples and n=1e3.
scipy entries skip with the reason when scipy is not installed.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from airda import eval as ae

REASON = "scipy is not installed (pip install airda[bench])"
BATCH = 50


@functools.cache
def scores(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    a = rng.normal(0.8, 0.05, n)
    return a + 0.002 + rng.normal(0.0, 0.02, n), a


@pytest.fixture
def size(request):
    smoke = request.config.getoption("benchmark_disable")

    def pick(n: int, resamples: int) -> tuple[int, int]:
        return (1000, 50) if smoke else (n, resamples)

    return pick


def _diff(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def scipy_bca(a: np.ndarray, b: np.ndarray, r: int) -> tuple[float, float]:
    from scipy import stats

    res = stats.bootstrap(
        (a, b), _diff, paired=True, vectorized=True, n_resamples=r, batch=BATCH, method="BCa", rng=0
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def airda_bca(a: np.ndarray, b: np.ndarray, r: int) -> tuple[float, float]:
    ci = ae.bootstrap_ci((a, b), "mean_difference", n_resamples=r, method="bca", seed=0)
    return ci.low, ci.high


BCA = [(10_000, 10_000), (100_000, 10_000)]


@pytest.mark.parametrize(("n", "r"), BCA, ids=["n1e4", "n1e5"])
def test_bca_airda(timed, size, n, r):
    n, r = size(n, r)
    a, b = scores(n)
    low, high = timed(
        f"BCa paired mean difference n={n} R={r}",
        "airda.eval.bootstrap_ci",
        airda_bca,
        a,
        b,
        r,
        rounds=3,
    )
    assert low < float(np.mean(a - b)) < high


@pytest.mark.parametrize(("n", "r"), BCA, ids=["n1e4", "n1e5"])
def test_bca_scipy(timed, size, n, r):
    pytest.importorskip("scipy.stats", reason=REASON)
    n, r = size(n, r)
    a, b = scores(n)
    rounds = 1 if n >= 100_000 else 3
    low, high = timed(
        f"BCa paired mean difference n={n} R={r}",
        "scipy.stats.bootstrap",
        scipy_bca,
        a,
        b,
        r,
        rounds=rounds,
        warmup=0,
        baseline=True,
    )
    ours = airda_bca(a, b, r)
    width = ours[1] - ours[0]
    tolerance = 0.5 if r < 1000 else 0.1  # two streams: the ends differ by ~1/sqrt(R)
    np.testing.assert_allclose([low, high], ours, atol=tolerance * width, rtol=0)


def scipy_compare(a: np.ndarray, b: np.ndarray, r: int) -> tuple[float, float]:
    from scipy import stats

    ci = scipy_bca(a, b, r)
    p = stats.permutation_test(
        (a, b),
        _diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=r,
        batch=BATCH,
        rng=0,
    ).pvalue
    return ci[0], float(p)


def airda_compare(a: np.ndarray, b: np.ndarray, r: int) -> tuple[float, float]:
    c = ae.compare(a, b, n_resamples=r, seed=0)
    return c.low, c.p_value


@pytest.mark.parametrize(("n", "r"), [(10_000, 10_000)], ids=["n1e4"])
def test_compare_airda(timed, size, n, r):
    n, r = size(n, r)
    a, b = scores(n)
    _low, p = timed(
        f"compare: BCa CI + paired permutation test n={n} R={r}",
        "airda.eval.compare",
        airda_compare,
        a,
        b,
        r,
        rounds=3,
    )
    assert 0 <= p <= 1


@pytest.mark.parametrize(("n", "r"), [(10_000, 10_000)], ids=["n1e4"])
def test_compare_scipy(timed, size, n, r):
    pytest.importorskip("scipy.stats", reason=REASON)
    n, r = size(n, r)
    a, b = scores(n)
    timed(
        f"compare: BCa CI + paired permutation test n={n} R={r}",
        "scipy bootstrap + permutation_test",
        scipy_compare,
        a,
        b,
        r,
        rounds=1,
        warmup=0,
        baseline=True,
    )

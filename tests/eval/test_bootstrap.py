"""Bootstrap intervals: the compiled core against the reference, the formulas against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airda import eval as ae
from airda import ops
from airda.eval import _bootstrap

stats = pytest.importorskip("scipy.stats", reason="scipy is not installed (pip install scipy)")


def _scores(n, seed=0):
    return np.random.default_rng(seed).gamma(2.0, 1.0, n)


@pytest.mark.parametrize("method", ["percentile", "basic", "bca"])
@pytest.mark.parametrize("statistic", ["mean", "iqm"])
def test_interval_agrees_with_scipy_within_monte_carlo_error(method, statistic):
    # (the median's bootstrap distribution is lumpy: its quantiles jump between order
    # statistics, so it is checked exactly below instead)
    x = _scores(60, 1)
    ours = ae.bootstrap_ci(x, statistic, n_resamples=20_000, method=method, seed=3)
    if statistic == "mean":
        func = np.mean
    else:

        def func(v, axis=-1):
            return stats.trim_mean(v, 0.25, axis=axis)

    ref = stats.bootstrap((x,), func, n_resamples=20_000, method=method, rng=4)
    se = float(ref.standard_error)
    assert ours.estimate == pytest.approx(float(func(x, axis=-1)))
    assert ours.standard_error == pytest.approx(se, rel=0.05)
    assert abs(ours.low - ref.confidence_interval.low) < 0.15 * se
    assert abs(ours.high - ref.confidence_interval.high) < 0.15 * se


def test_bca_levels_equal_scipys_on_the_same_bootstrap_distribution():
    resampling = pytest.importorskip("scipy.stats._resampling", reason="scipy internals moved")
    x = _scores(40, 2)
    for statistic, func in (("mean", np.mean), ("median", np.median), ("iqm", None)):
        ours = ae.bootstrap_ci(x, statistic, n_resamples=5000, method="bca", seed=5)
        f = func or (lambda v, axis=-1: _bootstrap._iqm(v, axis=axis))
        try:
            a1, a2, _ = resampling._bca_interval(
                (x,), f, axis=-1, alpha=0.025, theta_hat_b=ours.distribution, batch=None, xp=np
            )
        except TypeError:
            pytest.skip("scipy's private _bca_interval has another signature")
        expected = np.quantile(ours.distribution, [float(a1), float(a2)])
        assert [ours.low, ours.high] == pytest.approx(expected.tolist(), rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 33])
def test_leave_one_out_closed_forms(n):
    x = np.round(_scores(n, n), 1)  # with ties
    brute_median = [np.median(np.delete(x, i)) for i in range(n)]
    brute_iqm = [float(stats.trim_mean(np.delete(x, i), 0.25)) for i in range(n)]
    assert _bootstrap._loo_median(x) == pytest.approx(brute_median)
    assert _bootstrap._loo_iqm(x) == pytest.approx(brute_iqm)
    general = _bootstrap._loo_general(lambda v, axis=-1: np.median(v, axis=axis), [x])
    assert general == pytest.approx(brute_median)


def test_compiled_and_reference_backends_give_the_same_interval():
    x = _scores(1001, 7)
    a = ae.bootstrap_ci(x, n_resamples=3000, seed=9)
    b = ae.bootstrap_ci(x, n_resamples=3000, seed=9, backend="reference")
    assert (a.low, a.high) == pytest.approx((b.low, b.high), rel=1e-12)
    c = ae.bootstrap_ci(x, n_resamples=3000, seed=10)
    assert (a.low, a.high) != (c.low, c.high)


def test_paired_samples_resample_together():
    rng = np.random.default_rng(0)
    a = rng.normal(1, 1, 50)
    b = a - rng.normal(0.2, 0.1, 50)
    paired = ae.bootstrap_ci((a, b), "mean_difference", n_resamples=4000, seed=1)
    diff = ae.bootstrap_ci(a - b, n_resamples=4000, seed=1)
    assert (paired.low, paired.high) == pytest.approx((diff.low, diff.high))
    fn = ae.bootstrap_ci(
        (a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), n_resamples=4000, seed=1
    )
    assert fn.low == pytest.approx(paired.low, rel=1e-9)
    # pairing matters: the paired interval is far narrower than the independent spread
    assert paired.high - paired.low < 0.2


def test_statistic_without_axis_is_called_per_resample():
    x = _scores(30, 4)
    slow = ae.bootstrap_ci(x, lambda v: float(np.mean(v)), n_resamples=500, method="percentile")
    fast = ae.bootstrap_ci(x, "mean", n_resamples=500, method="percentile")
    assert (slow.low, slow.high) == pytest.approx((fast.low, fast.high), rel=1e-12)


def test_stratified_bootstrap_keeps_each_stratum_size():
    # two tasks with very different scores: stratification removes the between-task variance
    scores = np.r_[np.full(20, 0.0), np.full(20, 10.0)] + _scores(40, 1) * 0.01
    labels = np.repeat([0, 1], 20)
    strat = ae.bootstrap_ci(scores, n_resamples=2000, strata=labels, method="percentile")
    plain = ae.bootstrap_ci(scores, n_resamples=2000, method="percentile")
    assert strat.high - strat.low < 0.01 * (plain.high - plain.low)


def test_one_sided_and_degenerate_and_tiny():
    x = _scores(25, 3)
    lo = ae.bootstrap_ci(x, alternative="greater", n_resamples=2000)
    assert math.isinf(lo.high)
    assert lo.low < x.mean()
    flat = ae.bootstrap_ci([2.0, 2.0, 2.0], n_resamples=100)
    assert flat.low == flat.high == 2.0
    assert "degenerate" in flat.method
    one = ae.bootstrap_ci([5.0], n_resamples=10)
    assert one.low == one.high == 5.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="1-D"):
        ae.bootstrap_ci(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\) \(at index 2\)"):
        ae.bootstrap_ci([1.0, 2.0, math.nan])
    r = ae.bootstrap_ci([1.0, 2.0, math.nan, 4.0], nan_policy="omit", n_resamples=200)
    assert r.n == 3
    assert r.n_excluded == 1
    with pytest.raises(ValueError, match="equal lengths"):
        ae.bootstrap_ci(([1, 2, 3], [1, 2]), "mean_difference")
    with pytest.raises(ValueError, match="method"):
        ae.bootstrap_ci([1, 2, 3], method="studentized")
    with pytest.raises(ValueError, match="confidence"):
        ae.bootstrap_ci([1, 2, 3], confidence=95)
    with pytest.raises(ValueError, match="one label per observation"):
        ae.bootstrap_ci([1, 2, 3], strata=[0, 1])
    with pytest.raises(ValueError, match="mean_difference"):
        ae.bootstrap_ci(([1, 2, 3], [1, 2, 3]), "mean")
    with pytest.raises(TypeError, match="n_resamples"):
        ae.bootstrap_ci([1, 2, 3], n_resamples=10.5)


def test_ten_thousand_resamples_of_a_hundred_thousand_scores_is_fast():
    # the target is < 2 s on a 2-core machine; the test allows slack for shared CI
    import time

    x = _scores(100_000, 0)
    y = x - 0.01 * _scores(100_000, 1)
    start = time.perf_counter()
    means = ops.bootstrap_means(np.stack([x, y]), 10_000, seed=0)
    took = time.perf_counter() - start
    assert means.shape == (10_000, 2)
    assert took < 6.0

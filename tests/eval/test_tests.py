"""Significance tests, effect sizes, corrections and aggregates against scipy.stats and rliable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airda import eval as ae

stats = pytest.importorskip("scipy.stats", reason="scipy is not installed (pip install scipy)")


def _pair(n, shift, seed, decimals=None):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n)
    b = a + rng.normal(shift, 0.7, n)
    if decimals is not None:
        a, b = np.round(a, decimals), np.round(b, decimals)
    return a, b


# ---- Wilcoxon: every branch of scipy's method="auto" ----------------------------------------

WILCOXON_CASES = [
    (12, 0.3, None),  # exact, no ties
    (12, 0.3, 0),  # ties and zeros, n <= 13: exact sign-flip enumeration
    (30, 0.2, 1),  # ties, n > 13: normal approximation
    (80, 0.1, None),  # n > 50: normal approximation
    (5, 1.0, None),  # tiny exact
    (50, 0.0, None),  # the exact boundary
]


@pytest.mark.parametrize(("n", "shift", "decimals"), WILCOXON_CASES)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_matches_scipy(n, shift, decimals, alternative):
    a, b = _pair(n, shift, n, decimals)
    if np.all(a == b):
        pytest.skip("degenerate draw")
    ours = ae.wilcoxon(a, b, alternative=alternative)
    ref = stats.wilcoxon(a, b, alternative=alternative)
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=1e-9)
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("correction", [False, True])
def test_wilcoxon_asymptotic_options_match_scipy(correction):
    a, b = _pair(40, 0.25, 3, 1)
    for method in ("asymptotic", "exact"):
        if method == "exact" and np.any(np.round(np.abs(a - b), 12) == 0):
            continue
        ours = ae.wilcoxon(a, b, method=method, correction=correction)
        ref = stats.wilcoxon(a, b, method=method, correction=correction)
        assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)


def test_wilcoxon_one_sample_and_bad_input():
    d = np.array([0.5, -0.2, 1.3, 0.8, 2.1, -0.1, 0.9])
    assert ae.wilcoxon(d).p_value == pytest.approx(float(stats.wilcoxon(d).pvalue), rel=1e-12)
    with pytest.raises(ValueError, match="equal lengths: a has 3, b has 4"):
        ae.wilcoxon([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="every difference is zero"):
        ae.wilcoxon([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\) \(at index 1\)"):
        ae.wilcoxon([1, math.nan, 3], [0, 0, 0])
    r = ae.wilcoxon([1, math.nan, 3, 4], [0, 0, 0, 0], nan_policy="omit")
    assert r.n == 3
    assert r.n_excluded == 1
    with pytest.raises(TypeError, match="numbers"):
        ae.wilcoxon(["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="alternative"):
        ae.wilcoxon([1, 2], [0, 0], alternative="bigger")


# ---- sign and permutation tests -----------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n", [1, 7, 20, 301])
def test_sign_test_matches_binomtest(n, alternative):
    a, b = _pair(n, 0.2, n, 1)
    d = a - b
    k, m = int((d > 0).sum()), int((d != 0).sum())
    if m == 0:
        pytest.skip("all ties")
    ours = ae.sign_test(a, b, alternative=alternative)
    ref = stats.binomtest(k, m, 0.5, alternative=alternative).pvalue
    assert ours.statistic == k
    assert ours.p_value == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_paired_permutation_exact_matches_scipy(n, alternative):
    a, b = _pair(n, 0.4, 10 + n)
    ours = ae.permutation_test(a, b, alternative=alternative)
    ref = stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        alternative=alternative,
    )
    assert "exact" in ours.test
    assert ours.statistic == pytest.approx(float(ref.statistic))
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-12)


@pytest.mark.parametrize(("na", "nb"), [(2, 2), (3, 4), (6, 6)])
def test_independent_permutation_exact_matches_scipy(na, nb):
    rng = np.random.default_rng(na * 10 + nb)
    a, b = rng.normal(0.5, 1, na), rng.normal(0, 1, nb)
    ours = ae.permutation_test(a, b, paired=False)
    ref = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis)
    )
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-12)


@pytest.mark.parametrize("paired", [True, False])
def test_randomized_permutation_agrees_with_scipy_in_distribution(paired):
    a, b = _pair(40, 0.25, 7)
    ours = ae.permutation_test(a, b, paired=paired, n_resamples=20_000, seed=1)
    if paired:
        ref = stats.permutation_test(
            (a, b),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            permutation_type="samples",
            n_resamples=20_000,
            rng=2,
        )
    else:
        ref = stats.permutation_test(
            (a, b),
            lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
            n_resamples=20_000,
            rng=2,
        )
    assert "random" in ours.test
    p = float(ref.pvalue)
    se = math.sqrt(max(p * (1 - p), 1e-4) / 20_000)
    assert abs(ours.p_value - p) < 6 * se + 2e-4
    # the same seed gives the same answer
    again = ae.permutation_test(a, b, paired=paired, n_resamples=20_000, seed=1)
    assert again.p_value == ours.p_value


def test_permutation_custom_statistic_and_errors():
    a, b = _pair(9, 0.5, 4)
    med = ae.permutation_test(a, b, statistic=lambda d, axis=-1: np.median(d, axis=axis))
    ref = stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.median(x - y, axis=axis),
        permutation_type="samples",
    )
    assert med.p_value == pytest.approx(float(ref.pvalue))
    with pytest.raises(ValueError, match="n_resamples"):
        ae.permutation_test(a, b, n_resamples=0)
    with pytest.raises(ValueError, match="paired=False"):
        ae.permutation_test([1, 2], [1, 2, 3])


# ---- effect sizes, corrections ------------------------------------------------------------


def test_effect_sizes_against_their_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 2, 15), rng.normal(0, 1, 11)
    pooled = math.sqrt(((14 * a.var(ddof=1)) + 10 * b.var(ddof=1)) / 24)
    assert ae.cohens_d(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)
    d = a[:11] - b
    assert ae.cohens_d(a[:11], b, paired=True) == pytest.approx(d.mean() / d.std(ddof=1))
    j = math.gamma(12) / (math.sqrt(12) * math.gamma(11.5))
    assert ae.hedges_g(a, b) == pytest.approx(ae.cohens_d(a, b) * j)
    pairs = a[:, None] - b[None, :]
    assert ae.cliffs_delta(a, b) == pytest.approx((pairs > 0).mean() - (pairs < 0).mean())
    ties = [1, 2, 2, 3]
    assert ae.cliffs_delta(ties, ties) == 0.0
    assert ae.probability_of_improvement(ties, ties) == 0.5
    assert ae.cohens_d([1, 1, 1], [1, 1, 1]) == 0.0
    assert ae.cohens_d([2, 2, 2], [1, 1, 1]) == math.inf


def test_corrections_match_their_definitions_and_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])
    m = p.size
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, p[order] * (m - np.arange(m))))
    holm = np.empty(m)
    holm[order] = expected
    assert ae.holm(p) == pytest.approx(holm)
    assert ae.bonferroni(p) == pytest.approx(np.minimum(1, p * m))
    assert ae.benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p))
    assert ae.holm([0.5]) == pytest.approx([0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ae.holm([0.1, 1.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ae.benjamini_hochberg([math.nan])


def test_iqm_and_profiles_match_scipy():
    rng = np.random.default_rng(3)
    for n in (1, 3, 4, 7, 101):
        x = rng.normal(size=n)
        assert ae.iqm(x) == pytest.approx(float(stats.trim_mean(x, 0.25)))
    scores = rng.uniform(size=(10, 4))
    taus = np.linspace(0, 1, 11)
    assert ae.performance_profile(scores, taus) == pytest.approx(
        [float(np.mean(scores > t)) for t in taus]
    )


def test_rliable_metrics_agree():
    metrics = pytest.importorskip("rliable.metrics", reason="rliable is not installed")
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(1.0, 0.5, size=(10, 5)), 1)
    y = np.round(rng.normal(0.8, 0.5, size=(7, 5)), 1)
    assert ae.iqm(x) == pytest.approx(float(metrics.aggregate_iqm(x)))
    assert ae.probability_of_improvement(x, y) == pytest.approx(
        float(metrics.probability_of_improvement(x, y))
    )


def test_spearman_matches_scipy():
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=50), 1)
    y = x + np.round(rng.normal(size=50), 1)
    assert ae.spearman(x, y) == pytest.approx(float(stats.spearmanr(x, y).statistic))
    with pytest.raises(ValueError, match="distinct"):
        ae.spearman([1, 1, 1], [1, 2, 3])

"""GP Bayesian optimisation: the stable logEI, the likelihood gradient, convergence, exact
replay from storage, mixed and conditional spaces, parallel asks and bad options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.hpo.functions import get_function
from airda.space import Categorical, Float, Int, Space
from airda.strategies import get_strategy
from airda.strategies.gp import (
    _GP,
    GaussianProcessSearch,
    _Kernel,
    _matern,
    _neg_log_posterior,
    log_h,
)
from airda.trial import TrialState


def test_log_h_matches_the_direct_formula_and_stays_finite() -> None:
    from scipy.stats import norm

    z = np.linspace(-8.0, 5.0, 201)
    direct = np.log(norm.pdf(z) + z * norm.cdf(z))
    assert np.allclose(log_h(z), direct, rtol=1e-9, atol=1e-12)
    far = log_h(np.array([-40.0, -1e3, -1e8, -1e150]))
    assert np.all(np.isfinite(far))
    # the asymptote -z^2/2 - log(sqrt(2 pi)) - 2 log|z| for very negative z
    zz = np.array([-1e3, -1e5])
    assert np.allclose(far[1:2], -0.5 * zz[:1] ** 2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(1e3))
    # monotone increasing, including across the branch points -1 and -1/sqrt(eps)
    grid = -np.logspace(-3, 9, 4001)[::-1]
    assert np.all(np.diff(log_h(grid)) > 0)
    assert log_h(np.array([], dtype=float)).shape == (0,)


def test_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((25, 3))
    x[:, 2] = rng.integers(0, 3, 25)
    y = rng.normal(size=25)
    kernel = _Kernel(np.array([True, True, False]), np.array([False, False, True]))
    terms = kernel.pair_terms(x)
    theta = rng.normal(size=5) * 0.5
    _, grad = _neg_log_posterior(theta, terms, y)
    eps = 1e-6
    num = [
        (_neg_log_posterior(theta + e, terms, y)[0] - _neg_log_posterior(theta - e, terms, y)[0])
        / (2 * eps)
        for e in np.eye(5) * eps
    ]
    assert np.allclose(grad, num, rtol=1e-5, atol=1e-6)


def test_log_ei_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((30, 3))
    x[:, 2] = rng.integers(0, 2, 30)
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 0.3 * x[:, 2]
    y = (y - y.mean()) / y.std()
    kernel = _Kernel(np.array([True, True, False]), np.array([False, False, True]))
    gp = _GP(kernel, x, y, np.array([1.0, 0.5, 0.0, 0.0, -6.0]))
    pts = rng.random((4, 3))
    pts[:, 2] = 1.0
    for best in (float(y.min()), float(y.min()) - 3.0):  # z near 0 and very negative
        value, grad = gp.log_ei_grad(pts, best)
        assert np.allclose(value, gp.log_ei(pts, best))
        for j in (0, 1):
            e = np.zeros(3)
            e[j] = 1e-6
            num = (gp.log_ei(pts + e, best) - gp.log_ei(pts - e, best)) / 2e-6
            assert np.allclose(grad[:, j], num, rtol=1e-4, atol=1e-6)
        assert np.all(grad[:, 2] == 0)


@pytest.mark.parametrize(("name", "n_trials", "threshold"), [("branin", 35, 0.05)])
def test_converges_on_branin(name: str, n_trials: int, threshold: float) -> None:
    f = get_function(name)
    regrets = []
    for seed in range(2):
        study = airda.create_study(space=f.space(), strategy=GaussianProcessSearch(seed=seed))
        study.optimize(f.objective, n_trials=n_trials)
        regrets.append(f.regret(study.best_value))
    # measured: regret ~1e-4 to 1e-2 after 35 trials; random search is ~1
    assert max(regrets) < threshold, regrets


def test_seeded_and_replayable_after_restart(tmp_path) -> None:
    f = get_function("hartmann6")
    kw = {"space": f.space(), "load_if_exists": True}
    whole = airda.create_study("g", storage=tmp_path / "w.db", strategy="gp", seed=2, **kw)
    whole.optimize(f.objective, n_trials=26)
    part = airda.create_study("g", storage=tmp_path / "p.db", strategy="gp", seed=2, **kw)
    part.optimize(f.objective, n_trials=17)
    del part
    resumed = airda.load_study("g", storage=tmp_path / "p.db")
    resumed.optimize(f.objective, n_trials=9)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


def test_mixed_space_int_log_categorical_conditional() -> None:
    space = Space(
        {
            "lr": Float(1e-5, 1.0, log=True),
            "layers": Int(1, 8),
            "act": Categorical(["relu", "tanh", "gelu"]),
            "opt": Categorical(["sgd", "adam"]),
            "momentum": Float(0.0, 1.0, when={"opt": "sgd"}),
        }
    )

    def objective(t) -> float:
        p = t.params
        v = (math.log10(p["lr"]) + 2) ** 2 + (p["layers"] - 3) ** 2 / 4
        v += {"relu": 0.5, "tanh": 1.0, "gelu": 0.0}[p["act"]]
        v += (p["momentum"] - 0.8) ** 2 if p["opt"] == "sgd" else 0.3
        return v

    study = airda.create_study(space=space, strategy=GaussianProcessSearch(seed=0))
    study.optimize(objective, n_trials=40)
    for t in study.trials:
        assert space.validate(t.params) == t.params
        assert ("momentum" in t.params) == (t.params["opt"] == "sgd")
    best = study.best_params
    assert best["act"] == "gelu"
    assert best["layers"] == 3
    assert study.best_value < 0.35
    # no candidate was proposed twice (duplicates are skipped)
    keys = [str(sorted(t.params.items())) for t in study.trials]
    assert len(set(keys)) == len(keys)


def test_parallel_batch_spreads_out() -> None:
    f = get_function("branin")
    for parallel in ("believer", "liar"):
        s = GaussianProcessSearch(seed=0, n_initial=5, parallel=parallel)
        study = airda.create_study(space=f.space(), strategy=s)
        study.optimize(f.objective, n_trials=12)
        batch = s.ask(4)  # nothing told in between: pending ones enter the GP
        points = np.array([[c["x0"], c["x1"]] for c in batch])
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]]
        assert min(gaps) > 1e-3, (parallel, points)


def test_nan_objective_fails_the_trial_and_the_study_goes_on() -> None:
    f = get_function("branin")

    def flaky(t) -> float:
        return float("nan") if t.number % 3 == 0 else f.objective(t)

    study = airda.create_study(space=f.space(), strategy=GaussianProcessSearch(seed=0))
    study.optimize(flaky, n_trials=30)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 10
    assert len(states) == 30
    assert study.strategy._anchors  # the GP was fitted on the 20 complete trials
    assert len(study.strategy._y) == 20
    assert f.regret(study.best_value) < 5.0


def test_maximize_and_constant_objective() -> None:
    study = airda.create_study(
        space={"x": Float(0.0, 1.0)}, strategy=GaussianProcessSearch(seed=0), direction="maximize"
    )
    study.optimize(lambda t: -((t["x"] - 0.3) ** 2), n_trials=20)
    assert abs(study.best_params["x"] - 0.3) < 0.02
    flat = airda.create_study(space={"x": Float(0.0, 1.0)}, strategy=GaussianProcessSearch(seed=0))
    flat.optimize(lambda t: 1.0, n_trials=15)
    assert len(flat.trials) == 15


def test_small_finite_space_is_not_repeated_until_exhausted() -> None:
    space = {"a": Int(0, 3), "b": Categorical(["x", "y"])}
    study = airda.create_study(space=space, strategy=GaussianProcessSearch(seed=0, n_initial=3))
    study.optimize(lambda t: t["a"] + (t["b"] == "x"), n_trials=12)
    assert study.best_value == 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_initial": 1}, "n_initial"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"refit_every": 0}, "refit_every"),
        ({"refine_iters": -1}, "refine_iters"),
        ({"parallel": "magic"}, "parallel"),
        ({"kernel": "rbf"}, "kernel"),
    ],
)
def test_bad_options(options, match) -> None:
    with pytest.raises(ValueError, match=match):
        get_strategy("gp", seed=0, **options)


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, airda.hpo; print('scipy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_vectorised_canonical_rows_match_decode_then_encode() -> None:
    from airda.testing.pytest_strategies import conformance_space

    spaces = [
        conformance_space(),
        Space(
            {
                "a": Int(1, 100, log=True),
                "b": Float(0, 1, step=0.1),
                "c": Int(0, 10, step=2),
                "d": Categorical([1, 2]),
                "e": Float(0, 1, when={"d": 2}),
            }
        ),
    ]
    for space in spaces:
        g = GaussianProcessSearch(seed=0)
        g.setup(space, ("minimize",))
        rng = np.random.default_rng(0)
        rows = rng.random((300, len(g._cols)))
        rows[:, g._cat] = np.floor(rows[:, g._cat] * g._n_choices[g._cat])
        slow = np.stack([g.encode(g._decode(r)) for r in rows])
        assert np.allclose(g._canonical(rows), slow, rtol=0, atol=1e-12)


def test_log_h_against_high_precision() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    zs = [2.0, 0.0, -0.5, -1.0, -1.0001, -5.0, -30.0, -999.9, -1000.1, -1e5, -1e8, -1e150]
    values = log_h(np.array(zs))
    for z, v in zip(zs, values, strict=True):
        zz = mpmath.mpf(z)
        ref = mpmath.log(mpmath.npdf(zz) + zz * mpmath.ncdf(zz))
        assert abs(v - float(ref)) <= 1e-14 * abs(float(ref)) + 1e-15, z


def test_one_posterior_for_both_gp_strategies() -> None:
    # GaussianProcessSearch and PredictorGuided condition their GPs with the same code.
    from airda.strategies import predictor
    from airda.strategies._gp_surrogate import Posterior

    rng = np.random.default_rng(4)
    x, xs = rng.random((12, 3)), rng.random((5, 3))
    y = rng.standard_normal(12)
    kernel = _Kernel(np.array([True, True, True]), np.array([False, False, False]))
    gp = _GP(kernel, x, y, np.array([0.5, 0.0, -0.5, 0.2, -5.0]))
    assert isinstance(gp.posterior, Posterior)
    assert isinstance(predictor._GP(x, y, None).posterior, Posterior)
    # against the textbook formulas with a dense solve
    k = _matern(kernel.r2(x, x, gp.rho), gp.scale)[0] + gp.noise * np.eye(12)
    ks = _matern(kernel.r2(xs, x, gp.rho), gp.scale)[0]
    mean, var = gp.predict(xs)
    np.testing.assert_allclose(mean, ks @ np.linalg.solve(k, y), rtol=1e-9, atol=1e-12)
    direct = gp.scale - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))
    np.testing.assert_allclose(var, direct, rtol=1e-7, atol=1e-12)


def test_yeo_johnson_matches_scipy() -> None:
    """The power transform of output="power": exponent and values as scipy.stats.yeojohnson."""
    from scipy.stats import yeojohnson

    from airda.strategies.gp import yeo_johnson, yeo_johnson_lambda

    rng = np.random.default_rng(0)
    samples = [
        rng.standard_normal(50),
        np.exp(rng.standard_normal(200)),  # right-skewed
        -np.exp(rng.standard_normal(80)),  # left-skewed, all negative
        (rng.random(300) ** 4) * 30 - 2,
    ]
    for y in samples:
        expected, lam = yeojohnson(y)
        ours = yeo_johnson_lambda(y)
        assert abs(ours - lam) < 1e-5
        assert np.allclose(yeo_johnson(y, ours), expected, rtol=1e-6, atol=1e-8)
    assert np.allclose(yeo_johnson(np.array([-2.0, 0.0, 2.0]), 0.0)[1:], [0.0, np.log(3.0)])
    assert np.isclose(yeo_johnson(np.array([-2.0]), 2.0)[0], -np.log(3.0))


def test_power_output_helps_a_heavy_tailed_loss() -> None:
    """On Rosenbrock's heavy tail the warped GP ends lower than the plain one (same seeds)."""
    f = get_function("rosenbrock", 3)
    plain, power = [], []
    for seed in range(2):
        for output, sink in (("standard", plain), ("power", power)):
            study = airda.create_study(
                space=f.space(), strategy=GaussianProcessSearch(output=output, seed=seed)
            )
            study.optimize(f.objective, n_trials=40)
            sink.append(study.best_value)
    assert np.mean(np.log(power)) < np.mean(np.log(plain))

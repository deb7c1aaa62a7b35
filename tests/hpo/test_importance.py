"""Hyperparameter importance: fANOVA and PED-ANOVA rank parameters of known importance in
order, are deterministic by seed, handle every parameter kind, conditional parameters, failed
trials and several objectives, refuse bad input clearly; fANOVA's vectorised marginals match a
brute-force grid of the forest's own predictions, and both evaluators give Optuna's numbers on
the same trials (when Optuna is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.hpo._importance_fanova import _Forest, _forest
from airda.hpo.importance import importance
from airda.space import Categorical, Float, Int
from airda.trial import FrozenTrial, TrialState

pytest.importorskip("sklearn")

EVALUATORS = ["fanova", "ped-anova"]


def _trials(n: int, f, seed: int = 0, d: int = 4) -> list[FrozenTrial]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return [
        FrozenTrial(
            i,
            TrialState.COMPLETE,
            {f"x{k}": float(X[i, k]) for k in range(d)},
            values=(float(f(X[i])),),
        )
        for i in range(n)
    ]


def _known(x: np.ndarray) -> float:
    return 10 * x[0] ** 2 + x[1] + 0.1 * x[2] + 0 * x[3]


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_known_truth_ordering(evaluator):
    scores = importance(_trials(300, _known), evaluator=evaluator)
    # PED-ANOVA sees only the best 10% (30 trials): 0.1 * x2 is within its noise there.
    n_known = 3 if evaluator == "fanova" else 2
    assert list(scores)[:n_known] == ["x0", "x1", "x2"][:n_known]
    assert scores["x0"] > 0.5
    assert math.isclose(sum(scores.values()), 1.0, rel_tol=1e-9)
    assert list(scores.values()) == sorted(scores.values(), reverse=True)


def test_fanova_is_deterministic_by_seed():
    trials = _trials(80, _known)
    a = importance(trials, seed=3)
    assert importance(trials, seed=3) == a
    b = importance(trials, seed=4)
    assert b != a
    assert next(iter(b)) == "x0"


def test_forest_size_changes_the_result():
    trials = _trials(80, _known)
    small = importance(trials, n_trees=4, max_depth=3)
    assert next(iter(small)) == "x0"
    assert small != importance(trials)


def _mixed(n: int, seed: int = 0) -> tuple[list[FrozenTrial], dict]:
    rng = np.random.default_rng(seed)
    space = {
        "lr": Float(1e-4, 1.0, log=True),
        "layers": Int(1, 8),
        "act": Categorical(["relu", "tanh", "gelu"]),
        "noise": Float(0, 1),
    }
    trials = []
    for i in range(n):
        p = {
            "lr": float(np.exp(rng.uniform(math.log(1e-4), 0))),
            "layers": int(rng.integers(1, 9)),
            "act": ["relu", "tanh", "gelu"][int(rng.integers(3))],
            "noise": float(rng.random()),
        }
        v = 3.0 * {"relu": 0.0, "tanh": 1.0, "gelu": 0.3}[p["act"]] + 0.3 * p["layers"]
        v += 0.05 * abs(math.log10(p["lr"]) + 2)
        trials.append(FrozenTrial(i, TrialState.COMPLETE, p, values=(v,)))
    return trials, space


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_categorical_int_and_log_params(evaluator):
    trials, space = _mixed(200)
    scores = importance(trials, evaluator=evaluator, space=space)
    assert set(scores) == set(space)
    # fANOVA: act explains most variance; PED-ANOVA: the best 10% all have few layers.
    assert set(list(scores)[:2]) == {"act", "layers"}
    assert scores["noise"] < 0.05
    # Without the space the kinds and ranges are inferred from the values (lr is then not
    # known to be log-scaled: PED-ANOVA's linear grid crowds its values into a few cells).
    inferred = importance(trials, evaluator=evaluator)
    assert set(inferred) == set(space)
    assert next(iter(inferred)) in {"act", "layers"}


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_on_a_study(evaluator):
    study = airda.create_study(
        space={"a": Float(0, 1), "b": Float(0, 1)}, strategy="random", seed=0
    )
    study.optimize(lambda t: 10 * t["a"] + 0.1 * t["b"], n_trials=40)
    assert list(importance(study, evaluator=evaluator)) == ["a", "b"]


def test_maximise_reads_the_direction_for_ped_anova():
    # Only the best trials matter to PED-ANOVA: x0 decides the minimum, x1 the maximum.
    def f(x):
        return -5 * x[0] if x[0] < 0.2 else 5 * x[1]

    trials = _trials(300, f, d=2)
    assert next(iter(importance(trials, evaluator="ped-anova", direction="minimize"))) == "x0"
    assert next(iter(importance(trials, evaluator="ped-anova", direction="maximize"))) == "x1"


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_failed_pruned_and_non_finite_trials_are_left_out(evaluator):
    trials = _trials(100, _known)
    extra = [
        FrozenTrial(100, TrialState.FAIL, {"x0": 0.1, "x1": 0.1, "x2": 0.1, "x3": 0.1}),
        FrozenTrial(
            101, TrialState.PRUNED, {"x0": 0.5, "x1": 0.9, "x2": 0.1, "x3": 0.1}, values=(1e9,)
        ),
        FrozenTrial(102, TrialState.RUNNING, {"x0": 0.5, "x1": 0.9, "x2": 0.1, "x3": 0.1}),
    ]
    assert importance(trials + extra, evaluator=evaluator) == importance(
        trials, evaluator=evaluator
    )
    inf = [FrozenTrial(103, TrialState.COMPLETE, dict(trials[0].params), values=(math.inf,))]
    scores = importance(trials + inf, evaluator=evaluator, target=lambda t: t.values[0])
    assert next(iter(scores)) == "x0"


def test_conditional_params():
    rng = np.random.default_rng(1)
    trials = []
    for i in range(150):
        p = {"model": ["svm", "tree"][i % 2], "x": float(rng.random())}
        if p["model"] == "svm":
            p["c"] = float(rng.random())
        v = 5 * p["x"] + (2 * p["c"] if "c" in p else 1.0)
        trials.append(FrozenTrial(i, TrialState.COMPLETE, p, values=(v,)))
    # fANOVA: by default the parameters every trial has (Optuna's intersection space) ...
    assert set(importance(trials)) == {"model", "x"}
    # ... or the trials that have all the parameters asked for.
    assert list(importance(trials, params=["x", "c"])) == ["x", "c"]
    # PED-ANOVA weighs each parameter over the trials where it is active.
    ped = importance(trials, evaluator="ped-anova")
    assert set(ped) == {"model", "x", "c"}
    assert next(iter(ped)) == "x"


def test_multi_objective_needs_target():
    rng = np.random.default_rng(0)
    X = rng.random((120, 2))
    trials = [
        FrozenTrial(
            i,
            TrialState.COMPLETE,
            {"a": float(X[i, 0]), "b": float(X[i, 1])},
            values=(float(X[i, 0]), float(3 * X[i, 1])),
        )
        for i in range(120)
    ]
    with pytest.raises(ValueError, match="2 objectives: give target"):
        importance(trials)
    for evaluator in EVALUATORS:
        assert (
            next(iter(importance(trials, evaluator=evaluator, target=lambda t: t.values[0]))) == "a"
        )
        assert (
            next(iter(importance(trials, evaluator=evaluator, target=lambda t: t.values[1]))) == "b"
        )


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_a_param_that_never_varies_has_importance_zero(evaluator):
    space = {"x": Float(0, 1), "k": Float(2, 2), "c": Categorical(["only"])}
    rng = np.random.default_rng(0)
    trials = []
    for i in range(60):
        x = float(rng.random())
        trials.append(
            FrozenTrial(i, TrialState.COMPLETE, {"x": x, "k": 2.0, "c": "only"}, values=(x,))
        )
    scores = importance(trials, evaluator=evaluator, space=space)
    assert scores == {"x": 1.0, "c": 0.0, "k": 0.0}
    # Observed constant without a space: no split on it, importance 0 as well.
    assert importance(trials, evaluator=evaluator)["k"] == 0.0


def test_bad_input_is_refused_clearly():
    trials = _trials(10, _known)
    with pytest.raises(ValueError, match="at least 2 complete trials"):
        importance(trials[:1])
    with pytest.raises(ValueError, match="at least 2 complete trials"):
        importance([FrozenTrial(0, TrialState.FAIL, {"x": 1.0})] * 3)
    with pytest.raises(ValueError, match="evaluator must be one of"):
        importance(trials, evaluator="shap")
    with pytest.raises(ValueError, match=r"no complete trial has the parameter\(s\) \['y'\]"):
        importance(trials, params=["x0", "y"])
    with pytest.raises(TypeError, match="list of parameter names"):
        importance(trials, params="x0")
    with pytest.raises(ValueError, match="n_trees must be an int >= 1"):
        importance(trials, n_trees=0)
    with pytest.raises(TypeError, match="Study or a sequence of FrozenTrial"):
        importance(42)
    with pytest.raises(ValueError, match="target returned"):
        importance(trials, target=lambda t: "bad")
    constant = [
        FrozenTrial(i, TrialState.COMPLETE, {"x": i / 10}, values=(1.0,)) for i in range(10)
    ]
    with pytest.raises(ValueError, match="do not vary"):
        importance(constant)
    # PED-ANOVA has nothing to say either: equal shares, as Optuna.
    assert importance(constant, evaluator="ped-anova") == {"x": 1.0}


def test_vectorised_marginals_match_a_brute_force_grid():
    """Each tree's share for x0 equals Var_x0(E_x1[tree]) / Var(tree) computed on a dense
    grid of the tree's own predictions (an independent path: sklearn's predict)."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 2))
    y = np.sin(6 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.3 * X[:, 0] * X[:, 1]
    bounds = np.array([[0.0, 1.0], [0.0, 1.0]])
    trees = _forest(X, y, 3, 64, 0)
    forest = _Forest(trees, bounds)
    fast = [forest.marginal_variance(np.array([c])) / forest.variance for c in (0, 1)]
    from sklearn.ensemble import RandomForestRegressor

    rf = RandomForestRegressor(n_estimators=3, max_depth=64, random_state=0).fit(X, y)
    g = (np.arange(600) + 0.5) / 600
    gx, gy = np.meshgrid(g, g, indexing="ij")
    grid = np.column_stack((gx.ravel(), gy.ravel()))
    for t, est in enumerate(rf.estimators_):
        pred = est.predict(grid).reshape(600, 600)
        total = pred.var()
        assert forest.variance[t] == pytest.approx(total, rel=0.02)
        assert fast[0][t] == pytest.approx(pred.mean(axis=1).var() / total, rel=0.03, abs=1e-3)
        assert fast[1][t] == pytest.approx(pred.mean(axis=0).var() / total, rel=0.03, abs=1e-3)


# ---- Optuna agreement (CI does not install Optuna) --------------------------------------------


def _optuna_study(trials, space):
    optuna = pytest.importorskip("optuna", reason="Optuna is not installed")
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists = {}
    for name, p in space.items():
        if p.kind == "categorical":
            dists[name] = CategoricalDistribution(list(p.choices))
        elif p.kind == "int":
            dists[name] = IntDistribution(p.low, p.high, log=p.log)
        else:
            dists[name] = FloatDistribution(p.low, p.high, log=p.log)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(params=t.params, distributions=dists, value=t.values[0])
            for t in trials
        ]
    )
    return optuna, study


OBJECTIVES = {
    "known": _known,
    "interaction": lambda x: x[0] * x[1] + 0.2 * x[2],
    "sine": lambda x: np.sin(6 * x[1]) + 0.3 * x[3] + 0.05 * x[0],
    "step": lambda x: float(x[2] > 0.5) + 0.5 * x[0] ** 3,
}


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_agrees_with_optuna(objective):
    from scipy.stats import spearmanr

    trials = _trials(120, OBJECTIVES[objective], seed=2)
    space = {f"x{k}": Float(0, 1) for k in range(4)}
    _optuna, study = _optuna_study(trials, space)
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    for ours, theirs in (
        (importance(trials, space=space, seed=0), FanovaImportanceEvaluator(seed=0)),
        (importance(trials, space=space, evaluator="ped-anova"), PedAnovaImportanceEvaluator()),
    ):
        ref = get_param_importances(study, evaluator=theirs)
        names = sorted(ref)
        rho = spearmanr([ours[n] for n in names], [ref[n] for n in names]).statistic
        assert rho >= 0.9
        # Same forest, same encoding, same estimator: the same numbers.
        for n in names:
            assert ours[n] == pytest.approx(ref[n], rel=1e-6, abs=1e-12)


def test_agrees_with_optuna_on_mixed_kinds():
    trials, space = _mixed(150, seed=3)
    _optuna, study = _optuna_study(trials, space)
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    ours = importance(trials, space=space, seed=1)
    ref = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=1))
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-12)
    ours = importance(trials, space=space, evaluator="ped-anova")
    ref = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-12)

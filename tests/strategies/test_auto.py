"""The default strategy: its phases by space and budget, resumption, and the default itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.space import Categorical, Float, Int
from airda.strategies import AutoSearch, get_strategy


def sphere(t) -> float:
    return (t["x0"] - 0.3) ** 2 + (t["x1"] - 0.3) ** 2 + (t["x2"] - 1) ** 2


NUMERIC = {"x0": Float(-1.0, 1.0), "x1": Float(-1.0, 1.0), "x2": Int(-3, 3)}


def assert_resumes_exactly(tmp_path, space, objective, gp_trials, seed, total, stop) -> None:
    """A study stopped after `stop` trials and loaded from storage asks what one run of `total`
    trials asked."""
    kw = {"space": space, "load_if_exists": True}
    whole = airda.create_study(
        "s", storage=tmp_path / "w.db", strategy=AutoSearch(gp_trials=gp_trials, seed=seed), **kw
    )
    whole.optimize(objective, n_trials=total)
    part = airda.create_study(
        "s", storage=tmp_path / "p.db", strategy=AutoSearch(gp_trials=gp_trials, seed=seed), **kw
    )
    part.optimize(objective, n_trials=stop)
    del part
    resumed = airda.load_study("s", storage=tmp_path / "p.db")
    assert isinstance(resumed.strategy, AutoSearch)
    resumed.optimize(objective, n_trials=total - stop)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


def test_auto_is_the_default_strategy() -> None:
    assert isinstance(get_strategy(None, seed=0), AutoSearch)
    study = airda.create_study(space=NUMERIC, seed=0)
    assert isinstance(study.strategy, AutoSearch)
    assert get_strategy("AUTO", seed=1, gp_trials=20).gp_trials == 20


@pytest.mark.parametrize("bad", [1, 0, -5, 2.5, True, "10"])
def test_gp_trials_is_checked(bad) -> None:
    with pytest.raises(ValueError, match="gp_trials"):
        AutoSearch(gp_trials=bad)


def test_numeric_space_gp_then_cmaes_from_the_best() -> None:
    study = airda.create_study(space=NUMERIC, strategy=AutoSearch(gp_trials=14, seed=0))
    assert study.strategy.phase == "gp"
    study.optimize(sphere, n_trials=14)
    assert study.strategy.phase == "cmaes"
    best = study.best_trial.params
    study.optimize(sphere, n_trials=1)
    cma = study.strategy._children["cmaes"]
    # CMA-ES starts at the best trial of the GP's part, in the unit cube
    assert np.allclose(cma._run.mean, cma.unit(best)) or cma.generation > 0
    study.optimize(sphere, n_trials=60)
    assert cma.generation >= 5  # its generations count from the switch
    assert study.best_value < 0.05


def test_categorical_space_gp_then_tpe() -> None:
    space = {**NUMERIC, "c": Categorical(["a", "b", "c"])}

    def objective(t) -> float:
        return sphere(t) + {"a": 1.0, "b": 0.0, "c": 2.0}[t["c"]]

    study = airda.create_study(space=space, strategy=AutoSearch(gp_trials=12, seed=1))
    study.optimize(objective, n_trials=12)
    assert study.strategy.phase == "tpe"
    study.optimize(objective, n_trials=20)
    assert study.best_trial.params["c"] == "b"


def test_conditional_space_uses_grouped_tpe_and_several_objectives_motpe() -> None:
    space = {
        "kind": Categorical(["p", "q"]),
        "p": Float(0.0, 1.0, when={"kind": ["p"]}),
        "q": Float(0.0, 1.0, when={"kind": ["q"]}),
    }
    study = airda.create_study(space=space, seed=2)
    assert study.strategy.phase == "tpe"
    assert study.strategy._children["tpe"].group
    study.optimize(lambda t: t["p"] if t["kind"] == "p" else 0.5 + t["q"], n_trials=30)
    assert study.best_value < 0.3
    mo = airda.create_study(space=NUMERIC, directions=["minimize", "minimize"], seed=2)
    assert mo.strategy.phase == "motpe"
    mo.optimize(lambda t: (t["x0"] ** 2, (t["x0"] - 1) ** 2), n_trials=20)
    assert len(mo.pareto_front()) >= 2


def test_categorical_late_phase_local_moves_and_no_repeats() -> None:
    """After the switch a space with categoricals alternates TPE, TPE, a local move (one
    parameter of the best trial changed); in a small finite space no candidate is asked
    twice while unseen ones remain."""
    space = {f"c{i}": Categorical(["a", "b", "c"]) for i in range(4)}
    target = {"c0": "b", "c1": "c", "c2": "a", "c3": "b"}

    def objective(t) -> float:
        return float(sum(t[k] != v for k, v in target.items()))

    study = airda.create_study(space=space, strategy=AutoSearch(gp_trials=10, seed=7))
    strategy = study.strategy
    assert [strategy._phase_of(i) for i in range(9, 16)] == [
        "gp", "tpe", "tpe", "local", "tpe", "tpe", "local"
    ]  # fmt: skip
    study.optimize(objective, n_trials=10)
    assert study.strategy.phase == "tpe"
    study.optimize(objective, n_trials=2)
    best = dict(study.best_trial.params)
    study.optimize(objective, n_trials=1)  # the local move
    moved = study.trials[-1].params
    assert sum(moved[k] != best[k] for k in best) == 1
    study.optimize(objective, n_trials=81 - 13)  # 3^4 = 81 candidates in all
    keys = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(keys)) == 81
    assert study.best_value == 0.0


def test_categorical_resumes_exactly(tmp_path) -> None:
    space = {**NUMERIC, "c": Categorical(["a", "b", "c"])}

    def objective(t) -> float:
        return sphere(t) + {"a": 1.0, "b": 0.0, "c": 2.0}[t["c"]]

    assert_resumes_exactly(tmp_path, space, objective, gp_trials=8, seed=8, total=30, stop=16)


COND = {
    "kind": Categorical(["p", "q"]),
    "p0": Float(-2.0, 2.0, when={"kind": ["p"]}),
    "p1": Float(-2.0, 2.0, when={"kind": ["p"]}),
    "act": Categorical(["relu", "tanh"], when={"kind": ["p"]}),
    "q": Int(0, 9, when={"kind": ["q"]}),
}


def cond(t) -> float:
    if t["kind"] == "q":
        return 1.0 + abs(t["q"] - 4)
    return (t["p0"] - 0.7) ** 2 + (t["p1"] + 0.2) ** 2 + (t["act"] == "relu")


def test_conditional_space_late_cmaes_in_the_best_branch() -> None:
    """After gp_trials asks, two of three asks are CMA-ES over the best branch's numeric
    parameters (the others held at the best trial's values), the third TPE's."""
    study = airda.create_study(space=COND, strategy=AutoSearch(gp_trials=20, seed=5))
    study.optimize(cond, n_trials=20)
    strategy = study.strategy
    assert [strategy._phase_of(i) for i in range(19, 26)] == [
        "tpe", "cmaes", "cmaes", "tpe", "cmaes", "cmaes", "tpe"
    ]  # fmt: skip
    best = study.best_trial.params
    study.optimize(cond, n_trials=60)
    late = study.trials[20:]
    held = {k: v for k, v in best.items() if k in ("kind", "act")}
    assert strategy._branch == held
    cma_trials = [t for t in late if strategy._phase_of(t.number) == "cmaes"]
    assert all({k: t.params[k] for k in held} == held for t in cma_trials)
    assert all(set(t.params) == set(best) for t in cma_trials)  # the branch's parameters only
    assert strategy._children["cmaes"].generation >= 3
    assert study.best_value < min(t.value for t in study.trials[:20])


def test_conditional_space_without_numeric_parameters_stays_tpe() -> None:
    space = {"a": Categorical(["x", "y"]), "b": Categorical(["u", "v"], when={"a": ["x"]})}
    study = airda.create_study(space=space, strategy=AutoSearch(gp_trials=5, seed=0))
    study.optimize(lambda t: float(t["a"] == "y"), n_trials=15)
    assert "cmaes" not in study.strategy._children
    assert study.strategy.phase == "tpe"


@pytest.mark.parametrize("stop", [7, 30])  # before the switch, and mid-generation after it
def test_conditional_resumes_exactly(tmp_path, stop) -> None:
    assert_resumes_exactly(tmp_path, COND, cond, gp_trials=15, seed=6, total=45, stop=stop)


@pytest.mark.parametrize("stop", [9, 23])  # in the GP's part, and in CMA-ES's (mid-generation)
def test_resumes_exactly(tmp_path, stop) -> None:
    assert_resumes_exactly(tmp_path, NUMERIC, sphere, gp_trials=12, seed=3, total=40, stop=stop)


def test_failures_and_nan_before_the_switch() -> None:
    calls = {"n": 0}

    def flaky(t) -> float:
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise RuntimeError("boom")
        if calls["n"] % 7 == 0:
            return math.nan
        return sphere(t)

    study = airda.create_study(space=NUMERIC, strategy=AutoSearch(gp_trials=10, seed=4))
    study.optimize(flaky, n_trials=40, catch=(RuntimeError,))
    assert study.strategy.phase == "cmaes"
    assert math.isfinite(study.best_value)

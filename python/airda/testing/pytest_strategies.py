"""Conformance tests every strategy in :data:`airda.strategies.STRATEGIES` must pass:
seeded reproducibility, bounds and conditions, failures, budgets, batches, and the same
continuation after a restart from storage."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.space import Categorical, Fixed, Float, Int, Space
from airda.strategies import STRATEGIES, get_strategy
from airda.trial import TrialState

__all__ = [
    "test_batch_ask_gives_valid_distinct_stream",
    "test_bounds_and_conditions_respected",
    "test_budget_respected",
    "test_failed_trials_do_not_stop_the_search",
    "test_multi_objective",
    "test_resume_gives_the_same_continuation",
    "test_seed_reproducibility",
]

STRATEGY_NAMES = sorted(STRATEGIES)


def conformance_space() -> Space:
    return Space(
        {
            "lr": Float(1e-5, 1.0, log=True),
            "width": Int(8, 64, step=8),
            "depth": Int(1, 100, log=True),
            "act": Categorical(["relu", "gelu", "tanh"]),
            "opt": Categorical(["sgd", "adam"]),
            "momentum": Float(0.0, 0.99, when={"opt": "sgd"}),
            "adam": Space(
                {"beta1": Float(0.8, 0.999), "amsgrad": Categorical([True, False])},
                when={"opt": "adam"},
            ),
            "version": Fixed(3),
        }
    )


def objective(trial: airda.Trial) -> float:
    p = trial.params
    value = (math.log10(p["lr"]) + 3) ** 2 + abs(p["width"] - 32) / 8 + p["depth"] / 50
    value += {"relu": 0.0, "gelu": 0.1, "tanh": 0.5}[p["act"]]
    if p["opt"] == "sgd":
        value += (p["momentum"] - 0.9) ** 2
    else:
        value += (p["adam.beta1"] - 0.9) ** 2 + (0.1 if p["adam.amsgrad"] else 0.0)
    return value


def _study(name: str, seed: int, storage=None, n_trials: int = 0, **kw) -> airda.Study:
    study = airda.create_study(
        f"conformance-{name}",
        storage=storage,
        space=conformance_space(),
        strategy=get_strategy(name, seed=seed),
        load_if_exists=True,
        **kw,
    )
    if n_trials:
        study.optimize(objective, n_trials=n_trials)
    return study


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_seed_reproducibility(name: str) -> None:
    a = _study(name, seed=7, n_trials=40)
    b = _study(name, seed=7, n_trials=40)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    c = _study(name, seed=8, n_trials=40)
    if name != "grid":  # a grid in order does not depend on the seed
        assert [t.params for t in a.trials] != [t.params for t in c.trials]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_bounds_and_conditions_respected(name: str) -> None:
    space = conformance_space()
    study = _study(name, seed=1, n_trials=60)
    for t in study.trials:
        assert space.validate(t.params) == t.params
        assert ("momentum" in t.params) == (t.params["opt"] == "sgd")
        assert ("adam.beta1" in t.params) == (t.params["opt"] == "adam")


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_failed_trials_do_not_stop_the_search(name: str) -> None:
    def flaky(trial: airda.Trial) -> float:
        if trial.number % 3 == 1:
            raise RuntimeError("boom")
        if trial.number % 3 == 2:
            return float("nan")
        return objective(trial)

    study = airda.create_study(space=conformance_space(), strategy=get_strategy(name, seed=2))
    study.optimize(flaky, n_trials=30)
    states = [t.state for t in study.trials]
    assert len(states) == 30
    assert states.count(TrialState.FAIL) == 20
    assert all(
        "boom" in t.error or "nan" in t.error for t in study.trials if t.state is TrialState.FAIL
    )
    assert study.best_trial.state is TrialState.COMPLETE


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_budget_respected(name: str) -> None:
    study = _study(name, seed=3, n_trials=25)
    assert len(study.trials) == 25
    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 30


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_batch_ask_gives_valid_distinct_stream(name: str) -> None:
    strategy = get_strategy(name, seed=4)
    space = conformance_space()
    strategy.setup(space, ("minimize",))
    batch = strategy.ask(8)
    assert len(batch) == 8
    for c in batch:
        assert space.validate(c) == c
    assert strategy.n_asked == 8


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_resume_gives_the_same_continuation(name: str, tmp_path) -> None:
    whole = _study(name, seed=5, storage=tmp_path / "whole.db", n_trials=40)
    part = _study(name, seed=5, storage=tmp_path / "part.db", n_trials=25)
    del part  # the process "stops"; a new one loads the study and continues
    resumed = airda.load_study(f"conformance-{name}", storage=tmp_path / "part.db")
    resumed.optimize(objective, n_trials=15)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    assert [t.values for t in resumed.trials] == [t.values for t in whole.trials]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_multi_objective(name: str) -> None:
    cls = STRATEGIES[name]
    study_kw = {"directions": ["minimize", "maximize"]}
    if not cls.supports_multi_objective:
        with pytest.raises(ValueError, match="one objective"):
            airda.create_study(
                space=conformance_space(), strategy=get_strategy(name, seed=6), **study_kw
            )
        return
    study = airda.create_study(
        space=conformance_space(), strategy=get_strategy(name, seed=6), **study_kw
    )
    study.optimize(lambda t: (objective(t), t.params["width"]), n_trials=30)
    front = study.pareto_front()
    assert front
    values = np.array([t.values for t in front])
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if i != j:
                assert not (a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1]))

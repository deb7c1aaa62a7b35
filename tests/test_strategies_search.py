"""REINFORCE, the predictor-guided strategy and zero-cost warm starting, beyond conformance."""

from __future__ import annotations

import numpy as np
import pytest

import airda
from airda.space import Categorical, Float
from airda.strategies import PredictorGuided, Reinforce, WarmStart, get_strategy

SPACE = {f"x{i}": Categorical([0, 1, 2, 3, 4]) for i in range(6)}


def bowl(trial):
    return float(sum((v - 2) ** 2 for v in trial.params.values()))


def test_reinforce_policy_concentrates_on_the_best_choices():
    strategy = Reinforce(learning_rate=0.05, seed=0)
    study = airda.create_study(space=SPACE, strategy=strategy)
    study.optimize(bowl, n_trials=300)
    probs = strategy.probabilities()
    assert all(int(np.argmax(p)) == 2 for p in probs.values())
    assert study.best_value == 0.0


def test_reinforce_bins_continuous_ranges_and_respects_conditions():
    space = {
        "opt": Categorical(["sgd", "adam"]),
        "momentum": Float(0.0, 0.9, when={"opt": "sgd"}),
        "lr": Float(1e-4, 1e-1, log=True),
    }
    strategy = Reinforce(bins=8, seed=1)
    study = airda.create_study(space=space, strategy=strategy)
    study.optimize(lambda t: abs(np.log10(t["lr"]) + 2), n_trials=40)
    lrs = {t.params["lr"] for t in study.trials}
    assert len(lrs) <= 8
    assert all(("momentum" in t.params) == (t.params["opt"] == "sgd") for t in study.trials)
    with pytest.raises(ValueError, match="bins"):
        Reinforce(bins=1)
    with pytest.raises(ValueError, match="one objective"):
        airda.create_study(space=SPACE, strategy="reinforce", directions=["minimize"] * 2)


def test_predictor_finds_the_optimum_faster_than_random():
    found = {"predictor": [], "random": []}
    for seed in range(3):
        for name in found:
            study = airda.create_study(space=SPACE, strategy=get_strategy(name, seed=seed))
            study.optimize(bowl, n_trials=40)
            found[name].append(study.best_value)
    assert np.mean(found["predictor"]) < np.mean(found["random"])
    assert min(found["predictor"]) == 0.0


def test_predictor_never_repeats_and_takes_an_encoder():
    calls = []

    def encoder(params):
        calls.append(1)
        return [float(v) for v in params.values()]

    strategy = PredictorGuided(n_initial=5, pool=50, encoder=encoder, seed=0)
    study = airda.create_study(space=SPACE, strategy=strategy)
    study.optimize(bowl, n_trials=30)
    keys = [tuple(t.params.values()) for t in study.trials]
    assert len(set(keys)) == len(keys)
    assert calls
    with pytest.raises(ValueError, match="pool"):
        PredictorGuided(pool=0)


def test_warm_start_evaluates_the_best_scored_first_then_delegates(tmp_path):
    scored = []

    def proxy(pool):
        scored.append(len(pool))
        return [-sum(p.values()) for p in pool]

    def make():
        return WarmStart("rea", proxy, pool=300, n_warm=6, seed=3)

    study = airda.create_study("ws", storage=str(tmp_path / "a.db"), space=SPACE, strategy=make())
    study.optimize(bowl, n_trials=6)
    warm = [sum(t.params.values()) for t in study.trials]
    assert warm == sorted(warm)  # best proxy score first
    assert scored == [300]
    study.optimize(bowl, n_trials=10)
    assert len(study.trials) == 16
    # a fresh process continues identically (the pool is a function of the seed)
    whole = airda.create_study(space=SPACE, strategy=make())
    whole.optimize(bowl, n_trials=16)
    assert [t.params for t in whole.trials] == [t.params for t in study.trials]
    with pytest.raises(ValueError, match="n_warm"):
        WarmStart("random", proxy, pool=5, n_warm=10)
    with pytest.raises(TypeError, match="callable"):
        WarmStart("random", "not a function")

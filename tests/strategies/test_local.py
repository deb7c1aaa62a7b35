"""Local search's options: exchange moves, an additive prior over choices (move order and
starts), their checks, and the worker round trip of the options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.space import Categorical, Float
from airda.strategies import LocalSearch, get_strategy

OPS = ["none", "skip", "conv1", "conv3"]


def space(n=4):
    return {f"e{i}": Categorical(OPS) for i in range(n)}


def test_swaps_exchange_values_of_parameters_with_the_same_choices():
    s = LocalSearch(swaps=True, seed=0)
    study = airda.create_study(space={**space(3), "lr": Float(0.1, 1.0)}, strategy=s)
    s = study.strategy
    cands = s._swapped({"e0": "conv3", "e1": "skip", "e2": "conv3", "lr": 0.5})
    pairs = sorted((c["e0"], c["e1"], c["e2"]) for c in cands)
    assert pairs == [("conv3", "conv3", "skip"), ("skip", "conv3", "conv3")]
    assert all(c["lr"] == 0.5 for c in cands)  # a float is never exchanged


def test_conditional_parameters_are_not_exchanged():
    sp = {"a": Categorical(OPS), "b": Categorical(OPS), "c": Categorical(OPS, when={"a": "skip"})}
    study = airda.create_study(space=sp, strategy=LocalSearch(swaps=True, seed=0))
    assert study.strategy._swap_groups() == []  # a is a parent, c is conditional, b is alone


def test_the_prior_orders_the_neighbours_and_picks_the_start():
    s = LocalSearch(prior={"conv3": 9, "conv1": 1}, pool=50, seed=1)
    study = airda.create_study(space=space(), strategy=s, direction="maximize")
    first = study.ask()
    assert sum(v == "conv3" for v in first.params.values()) >= 3  # the best of 50 random
    study.tell(first, 1.0)
    nxt = study.ask().params
    scores = [s._score(c) for c in study.strategy._neighbours]
    assert scores == sorted(scores, reverse=True)
    assert s._score(nxt) == scores[0]


def test_exchanges_escape_where_one_parameter_moves_cannot():
    """The best cell is a permutation of a local optimum of one-parameter moves: with
    exchanges, the climb walks there; every run of the same seed is identical."""
    target = ["conv3", "conv3", "conv3", "skip"]

    def f(t):
        p = [t.params[f"e{i}"] for i in range(4)]
        if p == target:
            return 10.0
        return float(sum(a == b for a, b in zip(p, target, strict=True))) - 3 * (p[3] == "conv3")

    runs = []
    for _ in range(2):
        study = airda.create_study(space=space(), direction="maximize",
                                   strategy=LocalSearch(swaps=True, prior={"conv3": 9}, seed=0))  # fmt: skip
        study.optimize(f, n_trials=25)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert max(f(type("T", (), {"params": p})) for p in runs[0]) == 10.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior": [1, 2]}, "prior must be a mapping"),
        ({"prior": {"a": math.nan}}, "finite numbers"),
        ({"prior": {"a": "x"}}, "finite numbers"),
        ({"pool": 0}, "pool must be an int"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        LocalSearch(**kwargs)


def test_options_round_trip_through_the_registry():
    s = LocalSearch(swaps=True, prior={"conv3": 9.0}, pool=7, seed=2)
    again = get_strategy({"name": "local", "options": s.options()}, seed=2)
    assert again.options() == s.options()
    assert LocalSearch(seed=0).options() == {"step": 0.1}  # unchanged for old studies
    assert np.isfinite(LocalSearch(prior={"x": 1}, seed=0).prior["x"])

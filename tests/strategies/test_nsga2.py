"""NSGA2: better fronts than random, replay, conditional spaces, bad options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.ops import hypervolume
from airda.strategies import get_strategy
from airda.strategies.nsga2 import NSGA2
from tests.strategies.test_tpe import conditional_objective, conditional_space

SPACE = {f"x{i}": airda.space.Float(0.0, 1.0) for i in range(4)}


def zdt1(t):
    x = [t[f"x{i}"] for i in range(4)]
    g = 1 + 9 * sum(x[1:]) / 3
    return x[0], g * (1 - math.sqrt(x[0] / g))


def volume(strategy, n_trials=150):
    study = airda.create_study(space=SPACE, directions=["minimize"] * 2, strategy=strategy)
    study.optimize(zdt1, n_trials=n_trials)
    points = np.array([t.values for t in study.trials if t.values is not None])
    return hypervolume(points, np.array([1.1, 11.0]))


def test_beats_random_hypervolume_over_seeds():
    wins = sum(
        volume(NSGA2(population_size=20, seed=s)) > volume(get_strategy("random", seed=s))
        for s in range(8)
    )
    assert wins >= 7  # 7 or more of 8 by chance: probability 0.035


def test_single_objective_and_conditional_space():
    space = conditional_space()
    study = airda.create_study(space=space, strategy=NSGA2(population_size=10, seed=1))
    study.optimize(conditional_objective, n_trials=80)
    for t in study.trials:
        assert space.validate(t.params) == t.params
    assert study.best_value < 1.0


def test_replay_from_sqlite(tmp_path):
    def run(path, n):
        s = airda.create_study(
            "s",
            storage=path,
            space=SPACE,
            directions=["minimize"] * 2,
            strategy=NSGA2(population_size=8, seed=3),
            load_if_exists=True,
        )
        s.optimize(zdt1, n_trials=n)
        return s

    whole = run(tmp_path / "whole.db", 40)
    run(tmp_path / "part.db", 23)
    resumed = airda.load_study("s", storage=tmp_path / "part.db")
    resumed.optimize(zdt1, n_trials=17)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"population_size": 1}, "population_size"),
        ({"crossover_prob": 1.5}, "crossover_prob"),
        ({"mutation_prob": -0.1}, "mutation_prob"),
        ({"mutation_prob": "x"}, "mutation_prob"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        NSGA2(**options)


def test_one_crowding_distance_for_nsga2_and_motpe():
    import airda.strategies.nsga2 as nsga2_module
    import airda.strategies.tpe as tpe_module
    from airda.strategies._pareto import crowding_distance

    assert nsga2_module.crowding_distance is tpe_module.crowding_distance is crowding_distance
    values = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    # (2 - 0) / 4 + (4 - 1) / 4 and (4 - 1) / 4 + (2 - 0) / 4; the ends are inf
    assert crowding_distance(values).tolist() == [math.inf, 1.25, 1.25, math.inf]
    assert crowding_distance(values[:2]).tolist() == [math.inf, math.inf]
    assert crowding_distance(np.ones((3, 2))).tolist() == [math.inf, 0.0, math.inf]
    # MOTPE's stand-in for hypervolume contributions: the same order, the ends finite
    finite = tpe_module._crowding(values)
    assert np.isfinite(finite).all()
    assert finite.tolist() == [3.5, 1.25, 1.25, 3.5]

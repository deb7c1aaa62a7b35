"""The test functions reach their known optima at their known minimisers, are vectorised, and
come with a matching airda space."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.hpo.functions import FIXED_DIM, FUNCTIONS, get_function

CASES = [(name, FIXED_DIM.get(name, d)) for name in FUNCTIONS for d in (2, 5, 10, 20)]
CASES = sorted(set(CASES))


@pytest.mark.parametrize(("name", "dim"), CASES)
def test_optimum_at_argmin(name: str, dim: int) -> None:
    f = get_function(name, dim)
    assert f.dim == dim
    value = float(f(f.argmin))
    # Hartmann-6's minimiser is published to 6 digits.
    tol = 1e-5 if name == "hartmann6" else 1e-12
    assert value == pytest.approx(f.optimum, abs=tol)
    assert np.all(f.low <= f.argmin)
    assert np.all(f.argmin <= f.high)


@pytest.mark.parametrize(("name", "dim"), CASES)
def test_optimum_is_a_lower_bound_and_vectorised(name: str, dim: int) -> None:
    f = get_function(name, dim)
    rng = np.random.default_rng(0)
    x = f.low + rng.random((4096, dim)) * (f.high - f.low)
    values = f(x)
    assert values.shape == (4096,)
    assert np.all(values >= f.optimum - 1e-9)
    # vectorised == one point at a time, and batch shapes broadcast
    assert np.allclose(values[:5], [float(f(row)) for row in x[:5]])
    assert f(x.reshape(64, 64, dim)).shape == (64, 64)


def test_branin_has_three_minimisers() -> None:
    f = get_function("branin")
    for x in ([-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]):
        assert float(f(x)) == pytest.approx(f.optimum, abs=1e-5)


def test_space_and_objective_match() -> None:
    f = get_function("levy", 5)
    space = f.space()
    assert space.names == [f"x{i}" for i in range(5)]
    params = {f"x{i}": 1.0 for i in range(5)}
    assert space.validate(params) == params
    assert f.objective(params) == pytest.approx(0.0, abs=1e-15)
    study = airda.create_study(space=space, seed=0)
    study.optimize(f.objective, n_trials=5)
    assert all(t.value >= 0.0 for t in study.trials)
    assert f.regret(-1.0) == 0.0
    assert f.regret(2.5) == 2.5


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown test function 'nope'"):
        get_function("nope")
    with pytest.raises(ValueError, match="branin is 2-dimensional"):
        get_function("branin", 3)
    with pytest.raises(ValueError, match="dim must be an int >= 2"):
        get_function("rosenbrock", 1)
    with pytest.raises(ValueError, match="points of dimension 3"):
        get_function("ackley", 3)(np.zeros(4))

"""The multi-objective test problems: points of the Pareto set meet the known objective
relations, no random point dominates the sampled fronts, ideal hypervolumes match the closed
forms, and every problem agrees with pymoo's implementation where pymoo is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.hpo.mo_functions import PROBLEMS, get_problem, non_dominated

NAMES = [
    *(f"zdt{i}" for i in (1, 2, 3, 4, 6)),
    *(f"dtlz{i}_m{m}" for i in range(1, 8) for m in (2, 3)),
    *(f"wfg{i}_m{m}" for i in range(1, 10) for m in (2, 3)),
]


def test_registry_lists_every_family() -> None:
    assert set(PROBLEMS) == {f"zdt{i}" for i in (1, 2, 3, 4, 6)} | {
        f"dtlz{i}" for i in range(1, 8)
    } | {f"wfg{i}" for i in range(1, 10)}
    with pytest.raises(ValueError, match="unknown problem"):
        get_problem("zdt5")
    with pytest.raises(ValueError, match="unknown problem"):
        get_problem("dtlz2")  # the number of objectives is part of the name
    with pytest.raises(ValueError, match="n_objectives"):
        get_problem("dtlz2_m1")


@pytest.mark.parametrize("name", NAMES)
def test_vectorised_shapes_and_bounds(name: str) -> None:
    p = get_problem(name)
    rng = np.random.default_rng(0)
    x = p.low + rng.random((64, p.dim)) * (p.high - p.low)
    f = p(x)
    assert f.shape == (64, p.n_objectives)
    assert np.all(np.isfinite(f))
    assert np.allclose(p(x.reshape(8, 8, p.dim)), f.reshape(8, 8, -1))
    assert p.objective({f"x{i}": v for i, v in enumerate(x[0])}) == pytest.approx(tuple(f[0]))
    with pytest.raises(ValueError, match="dimension"):
        p(np.zeros(p.dim + 1))
    assert len(p.space().names) == p.dim


def _relation(name: str, f: np.ndarray) -> np.ndarray | None:
    """The residual of the front's closed form at points of the Pareto set (None: none)."""
    base = name.partition("_m")[0]
    if base in ("zdt1", "zdt4"):
        return f[:, 1] - (1 - np.sqrt(f[:, 0]))
    if base in ("zdt2", "zdt6"):
        return f[:, 1] - (1 - f[:, 0] ** 2)
    if base == "zdt3":
        return f[:, 1] - (1 - np.sqrt(f[:, 0]) - f[:, 0] * np.sin(10 * math.pi * f[:, 0]))
    if base == "dtlz1":
        return f.sum(axis=1) - 0.5
    if base in ("dtlz2", "dtlz3", "dtlz4", "dtlz5", "dtlz6"):
        return (f**2).sum(axis=1) - 1.0
    if base == "dtlz7":
        m = f.shape[1]
        h = m - (f[:, :-1] / 2 * (1 + np.sin(3 * math.pi * f[:, :-1]))).sum(axis=1)
        return f[:, -1] - 2 * h
    s = 2.0 * np.arange(1, f.shape[1] + 1)
    if base == "wfg3":
        return (f / s).sum(axis=1) - 1.0
    if base in {f"wfg{i}" for i in range(4, 10)}:
        return ((f / s) ** 2).sum(axis=1) - 1.0
    return None  # WFG1 and WFG2 (convex, mixed / disconnected): checked against the front


@pytest.mark.parametrize("name", NAMES)
def test_pareto_set_lies_on_the_front(name: str) -> None:
    p = get_problem(name)
    x = p.pareto_set(200, seed=1)
    assert np.all(x >= p.low)
    assert np.all(x <= p.high)
    f = p(x)
    residual = _relation(name, f)
    if residual is not None:
        assert np.abs(residual).max() < 1e-9
    else:
        # f = S h(x) with the distance part zero: each point is within the front sample's
        # spacing of a point of the (unfiltered) optimal surface
        surface = p.front_fn(np.random.default_rng(2).random((200_000, p.n_objectives - 1)))
        assert np.all(f.min(axis=0) >= p.ideal_point - 1e-9)
        nearest = np.sqrt(((f[:, None, :] - surface[None, :, :]) ** 2).sum(-1)).min(axis=1)
        # WFG1: z_i = 0.7 i has no float with z_i / 2i == 0.35 for some i (12, 24, 48), and
        # b_poly(., 0.02) turns the 1e-17 left by s_linear into ~0.46 (pymoo's WFG1 too)
        # (with three objectives, 200,000 random points of the 2-D surface are ~0.03 apart)
        tol = 0.15 if name.startswith("wfg1") else 1e-3 if p.n_objectives == 2 else 0.05
        assert nearest.max() < tol


@pytest.mark.parametrize("name", NAMES)
def test_no_random_point_dominates_the_front(name: str) -> None:
    p = get_problem(name)
    rng = np.random.default_rng(3)
    x = p.low + rng.random((4096, p.dim)) * (p.high - p.low)
    f = p(x)
    front = p.front(2000 if p.n_objectives == 2 else 45**2)
    # a random point dominates a front point: <= everywhere and < somewhere (with slack)
    le = np.all(f[:, None, :] <= front[None, :, :] - 1e-9, axis=2)
    assert not le.any()
    assert np.all(p.reference_point > p.nadir_point)
    assert p.hypervolume_ratio(f) < 1.0
    # a coarser sample than the one behind ideal_hypervolume (45 x 45 against 101 x 101)
    assert p.hypervolume_ratio(front) == pytest.approx(
        1.0, abs=2e-3 if len(front[0]) == 2 else 1e-2
    )


def test_ideal_hypervolumes_match_closed_forms() -> None:
    # area under the front subtracted from the reference box
    assert get_problem("zdt1").ideal_hypervolume == pytest.approx(121 - 1 / 3, abs=1e-4)
    assert get_problem("zdt2").ideal_hypervolume == pytest.approx(121 - 2 / 3, abs=1e-4)
    assert get_problem("zdt4").ideal_hypervolume == pytest.approx(121 - 1 / 3, abs=1e-4)
    assert get_problem("dtlz1_m2").ideal_hypervolume == pytest.approx(5.5**2 - 1 / 8, abs=1e-4)
    assert get_problem("dtlz2_m2").ideal_hypervolume == pytest.approx(121 - math.pi / 4, abs=1e-4)
    # three objectives: a 101 x 101 grid, a lower bound within 1e-5 relative
    hv = get_problem("dtlz2_m3").ideal_hypervolume
    assert 1331 - math.pi / 6 - 0.02 < hv <= 1331 - math.pi / 6
    hv = get_problem("dtlz1_m3").ideal_hypervolume
    assert 5.5**3 - 0.125 / 6 - 0.002 < hv <= 5.5**3 - 0.125 / 6
    # WFG4-9 (two objectives): the quarter ellipse with semi-axes 2 and 4 below (3, 5)
    assert get_problem("wfg4_m2").ideal_hypervolume == pytest.approx(15 - 2 * math.pi, abs=1e-4)
    assert get_problem("wfg3_m2").ideal_hypervolume == pytest.approx(15 - 4, abs=1e-4)


def test_non_dominated_and_hypervolume_helpers() -> None:
    pts = np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0], [0.5, 3.0]])
    assert non_dominated(pts).tolist() == [[0.5, 3.0], [1.0, 2.0], [2.0, 1.0]]
    p3 = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [0.0, 3.0, 1.0]])
    assert non_dominated(p3).tolist() == [[0.0, 3.0, 1.0], [1.0, 1.0, 1.0]]
    p = get_problem("zdt1")
    # outside the box, NaN and infinite rows add nothing
    assert p.hypervolume([[12.0, 0.0], [np.nan, 0.0], [0.0, np.inf]]) == 0.0
    assert p.hypervolume([[1.0, 1.0]]) == pytest.approx(100.0)


def test_a_study_improves_the_hypervolume() -> None:
    p = get_problem("zdt1")
    study = airda.create_study(
        space=p.space(), directions=["minimize", "minimize"], strategy="nsga2", seed=0
    )
    study.optimize(p.objective, n_trials=150)
    values = np.array([t.values for t in study.trials])
    assert p.hypervolume_ratio(values[:150]) > p.hypervolume_ratio(values[:50])


@pytest.mark.parametrize("name", NAMES)
def test_matches_pymoo(name: str) -> None:
    problems = pytest.importorskip("pymoo.problems", reason="pymoo is not installed")
    p = get_problem(name)
    base = name.partition("_m")[0]
    if base.startswith("zdt"):
        q = problems.get_problem(base, n_var=p.dim)
    elif base.startswith("dtlz"):
        q = problems.get_problem(base, n_var=p.dim, n_obj=p.n_objectives)
    else:
        k = 4 if p.n_objectives == 2 else 2 * (p.n_objectives - 1)
        q = problems.get_problem(base, n_var=p.dim, n_obj=p.n_objectives, k=k)
    rng = np.random.default_rng(4)
    x = p.low + rng.random((256, p.dim)) * (p.high - p.low)
    x = np.vstack((x, p.pareto_set(64, seed=5)))
    assert np.allclose(p(x), q.evaluate(x.copy()), rtol=1e-9, atol=1e-9)

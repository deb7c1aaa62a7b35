"""non_dominated_rank: airda's cpu backend against the NumPy reference, optuna
(``_fast_non_domination_rank``) and pymoo (``NonDominatedSorting``, which runs moocore's C code).
Peers that are not installed are skipped with the reason (``pip install airda[bench]``).

Each group's baseline is the reference. Where the reference would take minutes (it is
O(n^2 m)), the group at n = 1e5 takes pymoo as baseline and says so, and a smaller group times
the reference. Target on a 2-core machine: ranks of 1e5 points in 3 objectives well under 1 s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest

from airda import ops

PEER_REASON = "{} is not installed (pip install airda[bench])"


def require_cpu() -> None:
    status = ops.backend_status("cpu")
    if not status.usable:
        pytest.skip(f"cpu backend unavailable: {status.reason}")


@functools.cache
def uniform(n: int, m: int) -> np.ndarray:
    return np.random.default_rng([n, m]).random((n, m))


@functools.cache
def sphere_octant(n: int, m: int) -> np.ndarray:
    """Points on the unit sphere in the positive orthant: every one is non-dominated."""
    x = np.abs(np.random.default_rng([n, m, 1]).standard_normal((n, m)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


POINTS = {"uniform": uniform, "sphere": sphere_octant}


def optuna_rank() -> Callable[[np.ndarray], np.ndarray]:
    multi = pytest.importorskip(
        "optuna.study._multi_objective", reason=PEER_REASON.format("optuna")
    )
    return multi._fast_non_domination_rank


def pymoo_rank() -> Callable[[np.ndarray], np.ndarray]:
    nds = pytest.importorskip(
        "pymoo.util.nds.non_dominated_sorting", reason=PEER_REASON.format("pymoo")
    )
    sorter = nds.NonDominatedSorting()
    return lambda values: sorter.do(values, return_rank=True)[1]


# ---- non-dominated rank -----------------------------------------------------------------------
# (points, n, m): group name, whether the reference is timed there, whether optuna is
RANK_CASES = {
    ("uniform", 100_000, 3): (
        "rank uniform n=1e5 m=3 (baseline pymoo: reference ~25 min, timed at n=1e4)",
        False,
        True,
    ),
    ("sphere", 100_000, 3): (
        "rank sphere octant n=1e5 m=3, one front (baseline pymoo)",
        False,
        False,
    ),
    ("uniform", 10_000, 3): ("rank uniform n=1e4 m=3", True, True),
    ("uniform", 10_000, 2): ("rank uniform n=1e4 m=2", True, True),
}
RANK_IDS = [f"{p}-{n:.0e}-m{m}" for p, n, m in RANK_CASES]


@functools.cache
def expected_ranks(points: str, n: int, m: int) -> np.ndarray:
    return ops.non_dominated_rank(POINTS[points](n, m), backend="cpu")


@pytest.mark.parametrize("case", list(RANK_CASES), ids=RANK_IDS)
def test_rank_cpu(timed, case):
    require_cpu()
    group = RANK_CASES[case][0]
    values = POINTS[case[0]](case[1], case[2])
    ranks = timed(group, "airda cpu", ops.non_dominated_rank, values, rounds=10)
    np.testing.assert_array_equal(ranks, expected_ranks(*case))


@pytest.mark.parametrize("case", list(RANK_CASES), ids=RANK_IDS)
def test_rank_reference(timed, case):
    group, reference_timed, _ = RANK_CASES[case]
    if not reference_timed:
        pytest.skip("the O(n^2 m) reference would take minutes at this n: see the n=1e4 groups")
    values = POINTS[case[0]](case[1], case[2])
    ranks = timed(
        group,
        "reference (numpy)",
        ops.non_dominated_rank_reference,
        values,
        rounds=1,
        warmup=0,
        baseline=True,
    )
    np.testing.assert_array_equal(ranks, expected_ranks(*case))


@pytest.mark.parametrize("case", list(RANK_CASES), ids=RANK_IDS)
def test_rank_optuna(timed, case):
    group, _, optuna_timed = RANK_CASES[case]
    rank = optuna_rank()
    if not optuna_timed:
        pytest.skip("optuna is O(n^2) on one front: ~5 min a call at n=1e5 (11 s at 2e4)")
    values = POINTS[case[0]](case[1], case[2])
    slow = case[1] >= 100_000  # about a minute per call
    ranks = timed(
        group,
        "optuna _fast_non_domination_rank",
        rank,
        values,
        rounds=1 if slow else 3,
        warmup=0 if slow else 1,
    )
    np.testing.assert_array_equal(ranks, expected_ranks(*case))


@pytest.mark.parametrize("case", list(RANK_CASES), ids=RANK_IDS)
def test_rank_pymoo(timed, case):
    group, reference_timed, _ = RANK_CASES[case]
    rank = pymoo_rank()
    values = POINTS[case[0]](case[1], case[2])
    ranks = timed(
        group,
        "pymoo NonDominatedSorting",
        rank,
        values,
        rounds=5,
        baseline=not reference_timed,
    )
    np.testing.assert_array_equal(ranks, expected_ranks(*case))

"""hypervolume (2-D and 3-D): airda's cpu backend against the NumPy reference, optuna
(``compute_hypervolume``) and pymoo (``Hypervolume``, which runs moocore's C code). Peers that
are not installed are skipped with the reason (``pip install airda[bench]``).

Each group's baseline is the reference. Where the reference would take hours (the 3-D reference
is O(n^2 log n)), the group at n = 1e5 takes pymoo as baseline and says so, and a smaller group
times the reference.
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


def optuna_hypervolume() -> Callable[[np.ndarray, np.ndarray], float]:
    hv = pytest.importorskip("optuna._hypervolume", reason=PEER_REASON.format("optuna"))
    return hv.compute_hypervolume


def pymoo_hypervolume() -> Callable[[np.ndarray, np.ndarray], float]:
    indicator = pytest.importorskip("pymoo.indicators.hv", reason=PEER_REASON.format("pymoo"))
    return lambda values, ref: indicator.Hypervolume(ref_point=ref)(values)


# ---- hypervolume ------------------------------------------------------------------------------
# (points, n, m): group name, whether the reference is timed there, whether optuna is
HV_CASES = {
    ("sphere", 100_000, 3): (
        "hypervolume sphere octant n=1e5 m=3 (baseline pymoo: reference hours, optuna needs an "
        "n x n matrix, 75 GiB; both timed at n=5e3)",
        False,
        False,
    ),
    ("uniform", 100_000, 3): (
        "hypervolume uniform n=1e5 m=3 (baseline pymoo: reference hours)",
        False,
        True,
    ),
    ("sphere", 5_000, 3): ("hypervolume sphere octant n=5e3 m=3", True, True),
    ("sphere", 100_000, 2): ("hypervolume circle quadrant n=1e5 m=2", True, True),
}
HV_IDS = [f"{p}-{n:.0e}-m{m}" for p, n, m in HV_CASES]


@functools.cache
def expected_volume(points: str, n: int, m: int) -> float:
    return ops.hypervolume(POINTS[points](n, m), np.full(m, 1.1), backend="cpu")


@pytest.mark.parametrize("case", list(HV_CASES), ids=HV_IDS)
def test_hypervolume_cpu(timed, case):
    require_cpu()
    group = HV_CASES[case][0]
    values, ref = POINTS[case[0]](case[1], case[2]), np.full(case[2], 1.1)
    volume = timed(group, "airda cpu", ops.hypervolume, values, ref, rounds=10)
    assert volume == expected_volume(*case)


@pytest.mark.parametrize("case", list(HV_CASES), ids=HV_IDS)
def test_hypervolume_reference(timed, case):
    group, reference_timed, _ = HV_CASES[case]
    if not reference_timed:
        pytest.skip("the O(n^2 log n) 3-D reference would take hours at this n: see n=5e3")
    values, ref = POINTS[case[0]](case[1], case[2]), np.full(case[2], 1.1)
    volume = timed(
        group,
        "reference (numpy)",
        ops.hypervolume_reference,
        values,
        ref,
        rounds=1 if case[2] == 3 else 5,
        warmup=0 if case[2] == 3 else 1,
        baseline=True,
    )
    np.testing.assert_allclose(volume, expected_volume(*case), rtol=1e-12)


@pytest.mark.parametrize("case", list(HV_CASES), ids=HV_IDS)
def test_hypervolume_optuna(timed, case):
    group, _, optuna_timed = HV_CASES[case]
    compute = optuna_hypervolume()
    if not optuna_timed:
        pytest.skip("optuna's 3-D volume allocates an n x n float64 matrix: 75 GiB at n=1e5")
    values, ref = POINTS[case[0]](case[1], case[2]), np.full(case[2], 1.1)
    slow = case == ("sphere", 5_000, 3)
    volume = timed(
        group,
        "optuna compute_hypervolume",
        compute,
        values,
        ref,
        rounds=1 if slow else 5,
        warmup=0 if slow else 1,
    )
    np.testing.assert_allclose(volume, expected_volume(*case), rtol=1e-12)


@pytest.mark.parametrize("case", list(HV_CASES), ids=HV_IDS)
def test_hypervolume_pymoo(timed, case):
    group, reference_timed, _ = HV_CASES[case]
    compute = pymoo_hypervolume()
    values, ref = POINTS[case[0]](case[1], case[2]), np.full(case[2], 1.1)
    volume = timed(
        group,
        "pymoo Hypervolume",
        compute,
        values,
        ref,
        rounds=5,
        baseline=not reference_timed,
    )
    np.testing.assert_allclose(volume, expected_volume(*case), rtol=1e-12)

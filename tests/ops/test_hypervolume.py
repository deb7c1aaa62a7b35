"""hypervolume: the reference against hand-computed values, the cpu backend against the reference
on awkward inputs, optuna and pymoo where installed, and every bad input a clear error (also
straight into airda._C). The points are those of the non_dominated_rank tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import hypervolume, hypervolume_reference
from tests.helpers import require_backend
from tests.ops.test_non_dominated_rank import (
    BACKENDS,
    BAD_VALUES,
    EXACT_KINDS,
    FINITE_KINDS,
    KINDS,
    N_VALUES,
    objectives,
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypervolume_hand_computed(backend):
    require_backend(backend)

    def hv(points, ref):
        return hypervolume(np.array(points, dtype=np.float64), ref, backend=backend)

    assert hv([[1.0, 2.0]], [4.0, 6.0]) == 12.0
    assert hv([[1.0, 2.0, 3.0]], [2.0, 4.0, 7.0]) == 8.0
    # two boxes of 2 overlapping in 1
    assert hv([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == 3.0
    # 2 x 2 x 1 and 1 x 1 x 2 boxes overlapping in a unit cube
    assert hv([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], [2.0, 2.0, 2.0]) == 5.0
    # a dominated point and a duplicate add nothing
    assert hv([[1.0, 1.0], [2.0, 2.0], [1.0, 1.0]], [3.0, 3.0]) == 4.0
    # the three unit boxes of a corner of a 2 x 2 x 2 cube, and their union with its origin
    corner = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert hv(corner, [2.0, 2.0, 2.0]) == 7.0
    assert hv([*corner, [0.0, 0.0, 0.0]], [2.0, 2.0, 2.0]) == 8.0
    # staircase with equal coordinates: (0,3), (1,1), (1,2), (3,0) below (4, 4)
    assert hv([[0.0, 3.0], [1.0, 2.0], [1.0, 1.0], [3.0, 0.0]], [4.0, 4.0]) == 4 + 6 + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_not_below_the_reference_add_nothing(backend):
    require_backend(backend)
    ref = [3.0, 3.0, 3.0]
    inside = np.array([[1.0, 1.0, 1.0]])
    outside = np.array(
        [
            [0.0, 0.0, 3.0],  # on the reference in one objective
            [3.0, 3.0, 3.0],  # the reference itself
            [0.0, 4.0, 0.0],  # beyond it
            [np.inf, -np.inf, -np.inf],
            [5.0, 5.0, 5.0],
        ]
    )
    assert hypervolume(inside, ref, backend=backend) == 8.0
    assert hypervolume(np.vstack([outside, inside]), ref, backend=backend) == 8.0
    assert hypervolume(outside, ref, backend=backend) == 0.0
    outside_2d = np.array([[0.0, 3.0], [3.0, 3.0], [4.0, 0.0], [np.inf, -np.inf]])
    assert hypervolume(outside_2d, ref[:2], backend=backend) == 0.0
    assert hypervolume(np.vstack([outside_2d, [[1.0, 1.0]]]), ref[:2], backend=backend) == 4.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypervolume_with_infinities(backend):
    require_backend(backend)
    assert hypervolume(np.array([[-np.inf, 1.0]]), [2.0, 2.0], backend=backend) == np.inf
    assert hypervolume(np.array([[0.0, 1.0, 0.0]]), [1.0, 2.0, np.inf], backend=backend) == np.inf
    assert hypervolume(np.array([[0.0, 0.0]]), [1.0, -np.inf], backend=backend) == 0.0
    # infinities that bound nothing: the same values at -inf twice, and +inf points
    values = np.array([[-np.inf, 1.0, 1.0], [-np.inf, 1.0, 1.0], [np.inf, 0.0, 0.0]])
    assert hypervolume(values, [2.0, 2.0, 2.0], backend=backend) == np.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypervolume_of_no_points_is_zero(backend):
    require_backend(backend)
    assert hypervolume(np.empty((0, 2)), [1.0, 1.0], backend=backend) == 0.0
    assert hypervolume(torch.empty(0, 3), torch.ones(3), backend=backend) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypervolume_takes_torch_and_int_and_float32(backend):
    require_backend(backend)
    values = objectives("grid", 257, 3)
    expected = hypervolume_reference(values, np.full(3, 3.5))
    assert isinstance(hypervolume(values, [3.5] * 3, backend=backend), float)
    assert hypervolume(torch.from_numpy(values.astype(np.float32)), torch.full((3,), 3.5)) == (
        expected
    )
    assert hypervolume(values.astype(np.int64), (3.5, 3.5, 3.5), backend=backend) == expected
    assert hypervolume(values, np.array([4, 4, 4]), backend=backend) == hypervolume_reference(
        values, np.full(3, 4.0)
    )


def reference_point_for(values: np.ndarray) -> np.ndarray:
    """A reference point that leaves some points beyond it and some on its boundary."""
    ref = np.full(values.shape[1], 2.0)
    for k in range(values.shape[1]):
        finite = values[np.isfinite(values[:, k]), k]
        if finite.size:
            ref[k] = np.quantile(finite, 0.8, method="nearest")
    return ref


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("n", N_VALUES)
def test_cpu_hypervolume_matches_reference(kind, m, n):
    require_backend("cpu")
    values = objectives(kind, n, m)
    ref = reference_point_for(values)
    expected = hypervolume_reference(values, ref)
    got = hypervolume(values, ref, backend="cpu")
    assert isinstance(got, float)
    if kind in EXACT_KINDS or not np.isfinite(expected):
        assert got == expected
    else:
        # summed in different orders: a few ulps per term
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("m", [2, 3])
def test_cpu_hypervolume_is_invariant_under_row_order_and_dominated_points(m):
    require_backend("cpu")
    values = objectives("uniform", 1000, m)
    ref = np.ones(m)
    base = hypervolume(values, ref, backend="cpu")
    perm = np.random.default_rng(2).permutation(1000)
    np.testing.assert_allclose(hypervolume(values[perm], ref, backend="cpu"), base, rtol=1e-12)
    worse = values + np.random.default_rng(3).random(values.shape) * 0.1  # all dominated
    more = np.ascontiguousarray(np.vstack([values, worse]))
    np.testing.assert_allclose(hypervolume(more, ref, backend="cpu"), base, rtol=1e-12)


def test_cpu_hypervolume_of_a_sphere_octant():
    require_backend("cpu")
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((20_000, 3)))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # the unit cube minus the octant of the unit ball, approached from below as points grow dense
    got = hypervolume(x, np.ones(3), backend="cpu")
    assert 1 - np.pi / 6 - 0.01 < got < 1 - np.pi / 6


def below_reference(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values[np.all(values < ref, axis=1)])


@pytest.mark.parametrize("kind", FINITE_KINDS)
@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_optuna(kind, m):
    hv = pytest.importorskip(
        "optuna._hypervolume", reason="optuna is not installed (pip install optuna)"
    )
    values = objectives(kind, 1000, m)
    ref = reference_point_for(values)
    # optuna takes only points at or below the reference point
    expected = hv.compute_hypervolume(below_reference(values, ref), ref)
    np.testing.assert_allclose(hypervolume(values, ref), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", FINITE_KINDS)
@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_pymoo(kind, m):
    indicator = pytest.importorskip(
        "pymoo.indicators.hv", reason="pymoo is not installed (pip install pymoo)"
    )
    values = objectives(kind, 1000, m)
    ref = reference_point_for(values)
    expected = indicator.Hypervolume(ref_point=ref)(below_reference(values, ref))
    np.testing.assert_allclose(hypervolume(values, ref), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("values", "error", "message"), BAD_VALUES)
@pytest.mark.parametrize("backend", [None, "reference", "cpu"])
def test_bad_values_raise_clear_errors(values, error, message, backend):
    with pytest.raises(error, match=message):
        hypervolume(values, [1.0, 1.0], backend=backend)


GOOD = np.array([[1.0, 2.0], [2.0, 1.0]])


@pytest.mark.parametrize(
    ("values", "ref", "error", "message"),
    [
        (GOOD, [3.0], ValueError, r"reference_point must have shape \(2,\).*got shape \(1,\)"),
        (GOOD, [3.0, 3.0, 3.0], ValueError, r"must have shape \(2,\)"),
        (GOOD, [[3.0, 3.0]], ValueError, r"must have shape \(2,\)"),
        (GOOD, 3.0, ValueError, r"must have shape \(2,\)"),
        (GOOD, [3.0, np.nan], ValueError, "reference_point contains NaN"),
        (GOOD, ["3", "3"], TypeError, "reference_point has dtype <U1"),
        (GOOD, None, TypeError, "reference_point has dtype object"),
        (np.ones((2, 4)), np.ones(4), ValueError, "only 2 and 3 objectives for now, got m = 4"),
        (np.ones((2, 1)), np.ones(1), ValueError, "only 2 and 3 objectives for now, got m = 1"),
        (np.ones((0, 5)), np.ones(5), ValueError, "only 2 and 3 objectives"),
    ],
)
@pytest.mark.parametrize("backend", [None, "reference", "cpu"])
def test_bad_reference_point_or_objective_count(values, ref, error, message, backend):
    with pytest.raises(error, match=message):
        hypervolume(values, ref, backend=backend)


def test_device_data_is_refused_by_the_cpu_backend():
    with pytest.raises(ValueError, match="cannot take a torch array on meta"):
        hypervolume(torch.ones(2, 2, device="meta"), [1.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypervolume_refuses_integers_float64_would_round(backend):
    require_backend(backend)
    values = np.array([[2**53 + 1, 0], [2**53 + 2, -1]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"values holds integers beyond 2\*\*53"):
        hypervolume(values, [2**53, 1], backend=backend)
    with pytest.raises(ValueError, match=r"reference_point holds integers beyond 2\*\*53"):
        hypervolume(np.array([[1, 0]]), np.array([2**53 + 3, 1]), backend=backend)
    assert hypervolume(np.array([[2**53 - 2, 0]]), [2**53, 1], backend=backend) == 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_native_byte_order_and_awkward_tensors(backend):
    require_backend(backend)
    values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
    assert hypervolume(values.astype(">i4"), np.array([5, 5], ">i8"), backend=backend) == 11.0
    with pytest.raises(ValueError, match="reference_point: cannot take a torch array on meta"):
        hypervolume(values, torch.ones(2, device="meta"), backend=backend)
    with pytest.raises(TypeError, match="reference_point is a torch tensor of layout"):
        hypervolume(values, torch.ones(2).to_sparse(), backend=backend)


def test_registered_with_reference_and_cpu():
    row = ops.available()["hypervolume"]
    assert row["reference"].usable
    assert row["cpu"].usable
    assert not row["cuda"].usable
    assert "has no cuda implementation" in row["cuda"].reason


def test_compiled_hypervolume_validates_its_arguments():
    require_backend("cpu")
    from airda import _C

    values = np.array([[1.0, 2.0], [2.0, 1.0]])
    ref = np.array([3.0, 3.0])
    assert _C.hypervolume(values, ref) == 3.0
    assert _C.hypervolume(np.empty((0, 3)), np.ones(3)) == 0.0
    with pytest.raises(ValueError, match="only 2 and 3 objectives for now, got m = 4"):
        _C.hypervolume(np.ones((2, 4)), np.ones(4))
    with pytest.raises(ValueError, match="only 2 and 3 objectives"):
        _C.hypervolume(np.ones((2, 1)), np.ones(1))
    with pytest.raises(ValueError, match=r"ref must have shape \(2,\)"):
        _C.hypervolume(values, np.ones(3))
    with pytest.raises(ValueError, match=r"ref must have shape \(2,\)"):
        _C.hypervolume(values, np.ones((1, 2)))
    with pytest.raises(TypeError, match="ref has dtype"):
        _C.hypervolume(values, ref.astype(np.float32))
    with pytest.raises(ValueError, match="ref must be C-contiguous"):
        _C.hypervolume(values, np.ones(4)[::2])
    with pytest.raises(ValueError, match="ref contains NaN"):
        _C.hypervolume(values, np.array([3.0, np.nan]))
    with pytest.raises(ValueError, match="contains NaN"):
        _C.hypervolume(np.array([[np.nan, 1.0]]), ref)
    with pytest.raises(TypeError, match="values has dtype"):
        _C.hypervolume(values.astype(np.float32), ref)
    with pytest.raises(ValueError, match="must be 2-D"):
        _C.hypervolume(ref, ref)


def test_many_threads_at_once_give_the_same_answers():
    """The kernel releases the GIL and keeps no shared state: concurrent calls agree."""
    require_backend("cpu")
    from concurrent.futures import ThreadPoolExecutor

    values = objectives("grid", 1000, 3)
    expected_volume = hypervolume(values, np.full(3, 3.0))
    with ThreadPoolExecutor(4) as pool:
        volumes = list(pool.map(lambda _: hypervolume(values, np.full(3, 3.0)), range(8)))
    assert volumes == [expected_volume] * 8


def test_plus_infinite_points_keep_the_volume_finite():
    """The generated inputs stress what they say they do."""
    plus = objectives("plus_infinite", 1000, 3)
    assert 0 < hypervolume_reference(plus, reference_point_for(plus)) < np.inf

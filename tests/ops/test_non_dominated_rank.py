"""non_dominated_rank: the reference against the definition, the cpu backend against the
reference on awkward inputs, optuna and pymoo where installed, and every bad input a clear error
(also straight into airda._C)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import non_dominated_rank, non_dominated_rank_reference
from tests.helpers import require_backend

N_VALUES = (0, 1, 2, 3, 65, 257, 1000)


M_VALUES = (1, 2, 3, 4, 5)


KINDS = ("uniform", "grid", "one_front", "chain", "duplicates", "infinite", "plus_infinite")


# Integers (or +inf, beyond any reference point): every partial volume is exact in float64.
EXACT_KINDS = ("grid", "one_front", "chain", "duplicates", "plus_infinite")


FINITE_KINDS = ("uniform", "grid", "one_front", "chain", "duplicates")


BACKENDS = ("reference", "cpu")


@functools.cache
def objectives(kind: str, n: int, m: int) -> np.ndarray:
    """n points in m minimised objectives, shaped to stress one thing each."""
    rng = np.random.default_rng([n, m, KINDS.index(kind)])
    if kind == "uniform":
        x = rng.random((n, m))
    elif kind == "grid":  # few levels: ties in every objective, many duplicates
        x = rng.integers(0, 4, (n, m)).astype(np.float64)
    elif kind == "one_front":  # integer points of equal sum never dominate one another
        x = rng.multinomial(1000, [1.0 / m] * m, size=n).astype(np.float64)
    elif kind == "chain":  # a shuffled diagonal with jitter: hundreds of fronts, with ties
        t = rng.permutation(n).astype(np.float64)
        x = t[:, None] + rng.integers(0, 2, (n, m))
    elif kind == "duplicates":  # five distinct rows, repeated
        x = rng.integers(0, 3, (5, m)).astype(np.float64)[rng.integers(0, 5, n)]
    elif kind in ("infinite", "plus_infinite"):
        x = rng.integers(0, 5, (n, m)).astype(np.float64)
        x[rng.random((n, m)) < 0.1] = np.inf
        # -inf makes most hypervolumes infinite; plus_infinite keeps them finite
        x[rng.random((n, m)) < 0.05] = -np.inf if kind == "infinite" else np.inf
    else:
        raise ValueError(kind)
    x = np.ascontiguousarray(x)
    x.flags.writeable = False
    return x


def dominates_matrix(values: np.ndarray) -> np.ndarray:
    """D[i, j]: point i dominates point j, straight from the definition."""
    le = (values[:, None, :] <= values[None, :, :]).all(axis=2)
    lt = (values[:, None, :] < values[None, :, :]).any(axis=2)
    return le & lt


def assert_ranks_satisfy_definition(values: np.ndarray, ranks: np.ndarray) -> None:
    """Rank 0: dominated by none; rank r > 0: dominated by some point of rank r - 1 and by no
    point of rank >= r."""
    d = dominates_matrix(values)
    for j in range(len(values)):
        dominators = ranks[d[:, j]]
        if ranks[j] == 0:
            assert dominators.size == 0, j
        else:
            assert (dominators == ranks[j] - 1).any(), j
        assert (dominators < ranks[j]).all(), j


def peel_fronts(values: np.ndarray) -> np.ndarray:
    """Ranks by the definition itself: repeatedly remove the points no remaining point
    dominates. Pure Python, for small inputs."""
    points = [tuple(row) for row in values]
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    rank = 0
    while remaining:
        front = [
            j
            for j in remaining
            if not any(
                all(a <= b for a, b in zip(points[i], points[j], strict=True))
                and points[i] != points[j]
                for i in remaining
            )
        ]
        for j in front:
            ranks[j] = rank
        remaining -= set(front)
        rank += 1
    return np.array(ranks, dtype=np.int64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", M_VALUES)
def test_rank_reference_matches_peeling_by_definition(kind, m):
    values = objectives(kind, 40, m)
    np.testing.assert_array_equal(non_dominated_rank_reference(values), peel_fronts(values))


def test_rank_of_a_small_hand_example():
    values = np.array(
        [[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0], [3.0, 3.0], [2.0, 2.0], [5.0, 5.0]]
    )
    expected = [0, 0, 1, 0, 1, 0, 2]
    for backend in BACKENDS:
        assert non_dominated_rank(values, backend=backend).tolist() == expected


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", M_VALUES)
@pytest.mark.parametrize("n", N_VALUES)
def test_cpu_rank_matches_reference(kind, m, n):
    require_backend("cpu")
    values = objectives(kind, n, m)
    got = non_dominated_rank(values, backend="cpu")
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.int64
    assert got.shape == (n,)
    np.testing.assert_array_equal(got, non_dominated_rank_reference(values))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [2, 3, 4])
def test_cpu_rank_satisfies_the_definition(kind, m):
    require_backend("cpu")
    values = objectives(kind, 1000, m)
    assert_ranks_satisfy_definition(values, non_dominated_rank(values, backend="cpu"))


def test_cpu_rank_front_shapes():
    require_backend("cpu")
    for m in (2, 3, 4, 5):
        ranks = non_dominated_rank(objectives("one_front", 1000, m), backend="cpu")
        assert (ranks == 0).all()
    # a strict diagonal: every point is its own front
    diagonal = np.repeat(np.arange(300, dtype=np.float64)[::-1, None], 3, axis=1)
    np.testing.assert_array_equal(non_dominated_rank(diagonal, backend="cpu"), np.arange(300)[::-1])
    # all points equal: one front
    assert (non_dominated_rank(np.full((50, 3), 7.0), backend="cpu") == 0).all()


def test_cpu_rank_is_invariant_under_row_order():
    require_backend("cpu")
    values = objectives("grid", 1000, 3)
    perm = np.random.default_rng(5).permutation(1000)
    ranks = non_dominated_rank(values, backend="cpu")
    np.testing.assert_array_equal(non_dominated_rank(values[perm], backend="cpu"), ranks[perm])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rank_takes_torch_and_returns_torch(backend):
    require_backend(backend)
    values = objectives("uniform", 65, 3)
    t = torch.from_numpy(values.astype(np.float32))
    got = non_dominated_rank(t, backend=backend)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(
        got.numpy(), non_dominated_rank_reference(values.astype(np.float32).astype(np.float64))
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "dtype", [np.float32, np.float16, np.int32, np.int64, np.uint8], ids=lambda d: d.__name__
)
def test_rank_converts_other_real_dtypes_exactly(backend, dtype):
    require_backend(backend)
    values = objectives("grid", 257, 3)
    got = non_dominated_rank(values.astype(dtype), backend=backend)
    np.testing.assert_array_equal(got, non_dominated_rank_reference(values))


def test_rank_takes_bfloat16_tensors():
    values = objectives("grid", 65, 2)
    t = torch.tensor(values).to(torch.bfloat16)
    np.testing.assert_array_equal(
        non_dominated_rank(t).numpy(), non_dominated_rank_reference(values)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_rank_of_no_points_is_empty(backend):
    require_backend(backend)
    for m in (1, 3, 6):
        got = non_dominated_rank(np.empty((0, m)), backend=backend)
        assert got.shape == (0,)
        assert got.dtype == np.int64
    got = non_dominated_rank(torch.empty(0, 2), backend=backend)
    assert isinstance(got, torch.Tensor)
    assert got.shape == (0,)


def test_rank_with_infinities_compares_them_as_numbers():
    values = np.array([[-np.inf, np.inf], [0.0, 0.0], [np.inf, -np.inf], [np.inf, np.inf]])
    for backend in BACKENDS:
        assert non_dominated_rank(values, backend=backend).tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [2, 3, 5])
def test_rank_matches_optuna(kind, m):
    multi = pytest.importorskip(
        "optuna.study._multi_objective", reason="optuna is not installed (pip install optuna)"
    )
    values = objectives(kind, 1000, m)
    expected = multi._fast_non_domination_rank(np.array(values))
    np.testing.assert_array_equal(non_dominated_rank(values), expected)


# pymoo 0.6.2 ranks with moocore 0.3.2, whose pareto_rank crashes the process (segmentation
# fault) on +-inf in three or more objectives: no infinities here.
@pytest.mark.parametrize("kind", FINITE_KINDS)
@pytest.mark.parametrize("m", [2, 3, 5])
def test_rank_matches_pymoo(kind, m):
    nds = pytest.importorskip(
        "pymoo.util.nds.non_dominated_sorting", reason="pymoo is not installed (pip install pymoo)"
    )
    values = objectives(kind, 1000, m)
    _, expected = nds.NonDominatedSorting().do(np.array(values), return_rank=True)
    np.testing.assert_array_equal(non_dominated_rank(values), expected)


NAN_VALUES = np.array([[1.0, 2.0], [np.nan, 1.0]])
BAD_VALUES = [
    ([[1.0, 2.0]], TypeError, "numpy.ndarray or a torch.Tensor, got list"),
    (np.array([["a", "b"]]), TypeError, "dtype str"),
    (np.array([[1.0, None]], dtype=object), TypeError, "dtype object"),
    (np.ones((2, 2), bool), TypeError, "dtype bool"),
    (np.ones((2, 2), complex), TypeError, "dtype complex128"),
    (torch.ones(2, 2, dtype=torch.bool), TypeError, "dtype bool"),
    (np.ones(3), ValueError, "must be 2-D"),
    (np.ones((2, 3, 2)), ValueError, "must be 2-D"),
    (np.ones((3, 0)), ValueError, r"no objectives.*m >= 1"),
    (np.ones((4, 6))[:, ::2], ValueError, "C-contiguous"),
    (torch.ones(3, 2).T, ValueError, "C-contiguous"),
    (NAN_VALUES, ValueError, r"NaN \(first at row 1, column 0\)"),
    (torch.from_numpy(NAN_VALUES).float(), ValueError, r"NaN \(first at row 1, column 0\)"),
]


@pytest.mark.parametrize(("values", "error", "message"), BAD_VALUES)
@pytest.mark.parametrize("backend", [None, "reference", "cpu"])
def test_bad_values_raise_clear_errors(values, error, message, backend):
    with pytest.raises(error, match=message):
        non_dominated_rank(values, backend=backend)


def test_device_data_is_refused_by_the_cpu_backend():
    with pytest.raises(ValueError, match="cannot take a torch array on meta"):
        non_dominated_rank(torch.ones(2, 2, device="meta"))


def ranks_by_definition(rows: list[list[int]]) -> list[int]:
    """Fronts peeled by the definition, in Python integers (exact at any size)."""

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    ranks, left, rank = [-1] * len(rows), set(range(len(rows))), 0
    while left:
        front = {i for i in left if not any(dominates(rows[j], rows[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


BIG_INTEGERS = {
    "int64": [[2**53 + 1, 0], [2**53, 1], [2**62 + 1, 5], [2**62, 5], [-(2**63), 7], [3, 3]],
    "uint64": [[2**64 - 1, 0], [2**64 - 2, 1], [2**63 + 1, 2], [2**63, 2], [0, 2**64 - 1]],
}


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", list(BIG_INTEGERS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_rank_of_integers_beyond_2_53_is_exact(backend, dtype, lib):
    require_backend(backend)
    rows = BIG_INTEGERS[dtype]
    values = np.array(rows, dtype=dtype)
    assert len({tuple(r) for r in values.astype(np.float64).tolist()}) < len(rows)  # ties
    if lib == "torch":
        values = torch.from_numpy(values)
    got = non_dominated_rank(values, backend=backend)
    assert np.asarray(got).tolist() == ranks_by_definition(rows)


def test_reference_ranks_integers_as_integers():
    rows = BIG_INTEGERS["int64"]
    got = non_dominated_rank_reference(np.array(rows, dtype=np.int64))
    assert got.tolist() == ranks_by_definition(rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_native_byte_order(backend):
    require_backend(backend)
    values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
    want = non_dominated_rank(values, backend=backend)
    np.testing.assert_array_equal(non_dominated_rank(values.astype(">f8"), backend=backend), want)


def test_registered_with_reference_and_cpu():
    row = ops.available()["non_dominated_rank"]
    assert row["reference"].usable
    assert row["cpu"].usable
    assert not row["cuda"].usable
    assert "has no cuda implementation" in row["cuda"].reason


def test_compiled_non_dominated_rank_validates_its_arguments():
    require_backend("cpu")
    from airda import _C

    values = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    out = np.empty(3, np.int64)
    _C.non_dominated_rank(values, out)
    assert out.tolist() == [0, 0, 1]
    with pytest.raises(TypeError, match="values has dtype"):
        _C.non_dominated_rank(values.astype(np.float32), out)
    with pytest.raises(TypeError, match="values has dtype"):
        _C.non_dominated_rank(values.astype(np.int64), out)
    with pytest.raises(ValueError, match="must be 2-D"):
        _C.non_dominated_rank(values[0], out)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.non_dominated_rank(np.ones((3, 4))[:, ::2], out)
    with pytest.raises(ValueError, match=r"contains NaN \(first at row 2, column 1\)"):
        _C.non_dominated_rank(np.array([[1.0, 2.0], [2.0, 1.0], [3.0, np.nan]]), out)
    with pytest.raises(ValueError, match="no objectives"):
        _C.non_dominated_rank(np.ones((3, 0)), out)
    with pytest.raises(ValueError, match=r"out must have shape \(3,\)"):
        _C.non_dominated_rank(values, np.empty(4, np.int64))
    with pytest.raises(ValueError, match=r"out must have shape \(3,\)"):
        _C.non_dominated_rank(values, np.empty((3, 1), np.int64))
    with pytest.raises(TypeError, match="out has dtype"):
        _C.non_dominated_rank(values, np.empty(3, np.int32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _C.non_dominated_rank(values, np.empty(6, np.int64)[::2])
    read_only = np.empty(3, np.int64)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _C.non_dominated_rank(values, read_only)
    with pytest.raises(TypeError):
        _C.non_dominated_rank("values", out)
    empty = np.empty(0, np.int64)
    _C.non_dominated_rank(np.empty((0, 3)), empty)


def test_many_threads_at_once_give_the_same_answers():
    """The kernel releases the GIL and keeps no shared state: concurrent calls agree."""
    require_backend("cpu")
    from concurrent.futures import ThreadPoolExecutor

    values = objectives("grid", 1000, 3)
    expected_ranks = non_dominated_rank(values)
    with ThreadPoolExecutor(4) as pool:
        ranks = list(pool.map(lambda _: non_dominated_rank(values), range(8)))
    for r in ranks:
        np.testing.assert_array_equal(r, expected_ranks)


def test_kinds_cover_ties_and_many_fronts():
    """The generated inputs stress what they say they do."""
    grid = objectives("grid", 1000, 3)
    assert len(np.unique(grid, axis=0)) < 100
    assert non_dominated_rank_reference(objectives("chain", 1000, 3)).max() > 100
    assert (non_dominated_rank_reference(objectives("one_front", 257, 5)) == 0).all()
    assert np.isinf(objectives("infinite", 257, 2)).any()
    assert np.isposinf(objectives("plus_infinite", 1000, 3)).any()

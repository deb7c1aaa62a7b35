"""knn_distances: every backend against the reference, and the reference against a brute-force
n x m distance matrix, on awkward shapes (one row, k = m, ties and duplicates, strided and
float32 inputs, widths that are not a multiple of a vector, exclude_self)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from airda.ops import knn_distances, knn_distances_reference
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend


def brute_force(q: np.ndarray, x: np.ndarray, k: int, exclude_self: bool = False):
    """The full distance matrix, squared distances summed column by column, sorted by
    (distance, index)."""
    q = np.asarray(q, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    acc = np.zeros((q.shape[0], x.shape[0]))
    for c in range(q.shape[1]):
        diff = q[:, c, None] - x[None, :, c]
        acc += diff * diff
    if exclude_self:
        np.fill_diagonal(acc, np.inf)
    idx = np.broadcast_to(np.arange(x.shape[0]), acc.shape)
    order = np.lexsort((idx, acc))[:, :k]
    return np.sqrt(np.take_along_axis(acc, order, axis=1)), order


def data(n: int, d: int, seed: int = 0, levels: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if levels is not None:  # few distinct values: many exact ties and duplicate rows
        return rng.integers(0, levels, (n, d)).astype(np.float64)
    return rng.standard_normal((n, d))


# (n queries, m data rows, d columns, k)
SHAPES = [
    (1, 1, 1, 1),
    (1, 5, 3, 5),
    (3, 17, 1, 4),
    (9, 40, 7, 40),
    (33, 70, 20, 3),
    (20, 300, 9, 7),
]


@pytest.mark.parametrize(("n", "m", "d", "k"), SHAPES)
@pytest.mark.parametrize("levels", [None, 2])
def test_reference_matches_brute_force(n, m, d, k, levels):
    q, x = data(n, d, 1, levels), data(m, d, 2, levels)
    got_d, got_i = knn_distances_reference(q, x, k)
    want_d, want_i = brute_force(q, x, k)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)


def test_reference_streams_chunks(monkeypatch):
    module = importlib.import_module("airda.ops.knn_distances")

    monkeypatch.setattr(module, "_REFERENCE_PAIRS", 64)
    monkeypatch.setattr(module, "_REFERENCE_QUERY_CHUNK", 4)
    q, x = data(11, 3, 1, 3), data(50, 3, 2, 3)
    for exclude in (False, True):
        qq = x if exclude else q
        got = module.knn_distances_reference(qq, x, 6, exclude_self=exclude)
        want = brute_force(qq, x, 6, exclude)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("levels", [None, 2])
def test_exclude_self_leaves_the_row_out_by_index(levels):
    x = data(30, 4, 3, levels)
    got_d, got_i = knn_distances(x, x, 5, exclude_self=True, backend="reference")
    want_d, want_i = brute_force(x, x, 5, exclude_self=True)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)
    assert not (got_i == np.arange(30)[:, None]).any()


def test_duplicates_are_at_distance_zero_lower_index_first():
    x = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [1.0, 2.0]])
    d, i = knn_distances(x, x, 2, exclude_self=True, backend="reference")
    assert i.tolist() == [[2, 3], [0, 2], [0, 3], [0, 2]]
    assert d.tolist() == [[0.0, 0.0], [np.sqrt(5.0)] * 2, [0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be in"),
        ({"k": 6}, ValueError, r"k must be in \[1, 5\]"),
        ({"k": 1.0}, TypeError, "k must be an int"),
        ({"k": True}, TypeError, "k must be an int"),
        ({"k": 5, "exclude_self": True}, ValueError, r"\[1, 4\].*exclude_self"),
        ({"exclude_self": 1}, TypeError, "exclude_self must be a bool"),
    ],
)
def test_bad_k_and_flags_are_refused(kwargs, error, match):
    x = data(5, 2)
    with pytest.raises(error, match=match):
        knn_distances(x, x, **kwargs)


def test_bad_arrays_are_refused_naming_them():
    x = data(5, 2)
    with pytest.raises(ValueError, match="queries has 3 columns but data has 2"):
        knn_distances(data(2, 3), x)
    with pytest.raises(ValueError, match="data must be 2-D"):
        knn_distances(x, x[0])
    with pytest.raises(ValueError, match="queries is empty"):
        knn_distances(x[:0], x)
    with pytest.raises(TypeError, match="queries has dtype complex128"):
        knn_distances(x.astype(complex), x)
    with pytest.raises(ValueError, match="exclude_self=True needs queries to be data"):
        knn_distances(x[:3], x, exclude_self=True)
    with pytest.raises(ValueError, match="same place"):
        knn_distances(torch.from_numpy(x), x)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"data has NaN or infinite values .first in row 3"):
        knn_distances(x, bad)
    with pytest.raises(ValueError, match=r"queries has NaN or infinite values .first in row 3"):
        knn_distances(torch.from_numpy(bad), torch.from_numpy(x))


# ---- the compiled backends against the reference --------------------------------------------

# (n queries, m data rows, d columns, k): one row, k = m, columns that are not a multiple of the
# vector width, more queries than a chunk and data rows not a multiple of a 32-row tile.
BACKEND_SHAPES = [
    (1, 1, 1, 1),
    (1, 40, 3, 40),
    (5, 33, 1, 2),
    (13, 70, 7, 5),
    (40, 129, 17, 3),
    (200, 97, 20, 1),
]


def host_or_device(a: np.ndarray, backend: str) -> torch.Tensor:
    return torch.from_numpy(a).to(device_for(backend))


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize(("n", "m", "d", "k"), BACKEND_SHAPES)
@pytest.mark.parametrize("levels", [None, 2])
def test_backend_matches_reference(backend, n, m, d, k, levels):
    require_backend(backend)
    q, x = data(n, d, 1, levels), data(m, d, 2, levels)
    want_d, want_i = knn_distances_reference(q, x, k)
    got_d, got_i = knn_distances(
        host_or_device(q, backend), host_or_device(x, backend), k, backend=backend
    )
    assert got_d.dtype == torch.float64
    assert got_i.dtype == torch.int64
    np.testing.assert_array_equal(got_i.cpu().numpy(), want_i)
    np.testing.assert_array_equal(got_d.cpu().numpy(), want_d)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("levels", [None, 2])
def test_backend_exclude_self(backend, levels):
    require_backend(backend)
    x = data(45, 6, 5, levels)
    want = knn_distances_reference(x, x, 4, exclude_self=True)
    t = host_or_device(x, backend)
    got_d, got_i = knn_distances(t, t, 4, exclude_self=True, backend=backend)
    np.testing.assert_array_equal(got_i.cpu().numpy(), want[1])
    np.testing.assert_array_equal(got_d.cpu().numpy(), want[0])


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_backend_float32_and_strided_inputs(backend):
    require_backend(backend)
    q = data(30, 9, 1).astype(np.float32)
    x = data(80, 9, 2).astype(np.float32)
    want = knn_distances_reference(q, x, 3)
    strided_q = np.asfortranarray(q)  # column-major
    wide = np.zeros((80, 18), dtype=np.float32)
    wide[:, ::2] = x  # every other column of a wider array
    if backend == "cpu":
        args = (strided_q, wide[:, ::2])
    else:
        args = (host_or_device(q, backend).T.contiguous().T, host_or_device(wide, backend)[:, ::2])
    got_d, got_i = knn_distances(*args, 3, backend=backend)
    np.testing.assert_array_equal(
        np.asarray(got_i.cpu() if hasattr(got_i, "cpu") else got_i), want[1]
    )
    np.testing.assert_array_equal(
        np.asarray(got_d.cpu() if hasattr(got_d, "cpu") else got_d), want[0]
    )


def test_cpu_takes_numpy_and_returns_numpy():
    require_backend("cpu")
    q, x = data(8, 5, 1), data(20, 5, 2)
    d, i = knn_distances(q, x, 2, backend="cpu")
    assert isinstance(d, np.ndarray)
    assert isinstance(i, np.ndarray)
    assert d.dtype == np.float64
    assert i.dtype == np.int64
    assert d.shape == i.shape == (8, 2)


def tile_cases() -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(7)
    return [
        (rng.standard_normal((200, 11)), rng.standard_normal((1100, 11)), 3),
        (rng.integers(0, 2, (7, 5)).astype(float), rng.integers(0, 2, (3000, 5)).astype(float), 9),
        (1e6 + 1e-4 * rng.standard_normal((50, 4)), 1e6 + 1e-4 * rng.standard_normal((900, 4)), 2),
        (1e-200 * rng.standard_normal((20, 3)), 1e-200 * rng.standard_normal((100, 3)), 4),
        (1e120 * rng.standard_normal((20, 3)), 1e120 * rng.standard_normal((100, 3)), 4),
    ]


@pytest.mark.parametrize("tile", ["portable", "avx2", "avx512", "default"])
def test_cpu_tiles_match_the_reference(tile, monkeypatch):
    """Each register tile (AIRDA_KNN_KERNEL, read at every call, caps the widest the CPU runs)
    on problems large enough for several query chunks, data segments and tiles, with centred
    offsets, tiny and huge scales (the direct path) and exact ties."""
    require_backend("cpu")
    if tile != "default":
        monkeypatch.setenv("AIRDA_KNN_KERNEL", tile)
    for q, x, k in tile_cases():
        got = knn_distances(q, x, k, backend="cpu")
        want = knn_distances_reference(q, x, k)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
        if len(x) > 1500:
            continue  # the reference's leave-one-out would take long; the others cover it
        got = knn_distances(x, x, k, exclude_self=True, backend="cpu")
        want = knn_distances_reference(x, x, k, exclude_self=True)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def test_triton_refuses_a_large_k():
    require_backend("triton")
    x = data(70, 2)
    with pytest.raises(ValueError, match=r"k must be in .1, 64. for the triton backend"):
        knn_distances(torch.from_numpy(x), torch.from_numpy(x), 65, backend="triton")

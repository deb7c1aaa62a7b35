"""bootstrap_means and bootstrap_indices: the stream against a pure-Python transcription of its
definition, the cpu backend (both draw kernels) bit for bit against the reference on awkward
shapes, strata and seeds, the same results at every thread count, the statistics of the
resamples, and every bad input a clear error (also straight into airda._C)."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import bootstrap_indices, bootstrap_means, bootstrap_means_reference
from tests.helpers import require_backend

# The op's module (airda.ops.bootstrap_means, the attribute, is the function).
MODULE = importlib.import_module("airda.ops.bootstrap_means")

N_VALUES = (1, 2, 3, 17, 1000)
K_VALUES = (1, 2, 5)
R_VALUES = (1, 7, 1000)
SEEDS = (0, 1, 12345, 2**63, 2**64 - 1)
MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15


@functools.cache
def scores(k: int, n: int, kind: str = "normal") -> np.ndarray:
    rng = np.random.default_rng([k, n])
    if kind == "normal":
        x = rng.standard_normal((k, n))
    elif kind == "scaled":  # wide magnitudes: summation order shows in the last bits
        x = rng.standard_normal((k, n)) * 10.0 ** rng.integers(-8, 9, (k, n))
    else:
        raise ValueError(kind)
    x.flags.writeable = False
    return x


@pytest.fixture(params=["avx2", "scalar"])
def draw_kernel(request):
    """Run the cpu backend with each way of hashing the draws; they must agree."""
    require_backend("cpu")
    from airda._native import native

    c = native()
    before = c.resample_use_avx2()
    if request.param == "avx2" and not c.resample_use_avx2(1):
        c.resample_use_avx2(int(before))
        pytest.skip("this CPU has no AVX2")
    if request.param == "scalar":
        c.resample_use_avx2(0)
    yield request.param
    c.resample_use_avx2(int(before))


# ---- the stream, from its definition ---------------------------------------------------------


def mix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def indices_by_definition(n, n_resamples, seed, start=0, strata=None):
    """The module docstring's stream in Python integers, one draw at a time."""
    members = {}
    if strata is not None:
        for position, label in enumerate(strata):
            members.setdefault(label, []).append(position)
    seed_mix = mix(seed)
    rows = []
    for r in range(start, start + n_resamples):
        key = mix((seed_mix + r) & MASK)
        row = []
        for j in range(n):
            z = mix((key + (j + 1) * GOLDEN) & MASK)
            if strata is None:
                row.append((z * n) >> 64)
            else:
                pool = members[strata[j]]
                row.append(pool[(z * len(pool)) >> 64])
        rows.append(row)
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 97])
def test_indices_follow_the_definition(seed, n):
    got = bootstrap_indices(n, 5, seed=seed, start=3)
    assert got.dtype == np.int64
    assert got.shape == (5, n)
    np.testing.assert_array_equal(got, indices_by_definition(n, 5, seed, start=3))


def test_stratified_indices_follow_the_definition():
    labels = [5, -1, 5, 2, 2, 5, 7, -1, 2, 5, 5]  # unsorted, negative, a stratum of one
    got = bootstrap_indices(len(labels), 20, seed=9, strata=np.array(labels))
    np.testing.assert_array_equal(got, indices_by_definition(len(labels), 20, 9, strata=labels))


def test_high_word_of_the_product_from_32_bit_halves():
    # the NumPy reference builds floor(z * m / 2^64) from halves: check it at the extremes
    _scale = MODULE._scale

    z = [0, 1, 2**32 - 1, 2**32, 2**63, MASK - 1, MASK, *(mix(t) for t in range(200))]
    for m in (1, 2, 3, 1000, 2**31 + 1, 2**32 - 1):
        got = _scale(np.array(z, dtype=np.uint64), m)
        assert got.tolist() == [(v * m) >> 64 for v in z]


def test_pinned_indices():
    # A change of the stream changes every interval computed with it: it must be deliberate.
    assert bootstrap_indices(6, 2, seed=0).tolist() == [[5, 2, 0, 5, 0, 1], [4, 2, 2, 5, 1, 3]]
    assert bootstrap_indices(6, 2, seed=MASK).tolist() == [[0, 2, 0, 2, 3, 0], [3, 5, 2, 2, 1, 1]]


def test_indices_come_in_chunks_and_prefixes():
    whole = bootstrap_indices(50, 30, seed=4)
    parts = [bootstrap_indices(50, 10, seed=4, start=s) for s in (0, 10, 20)]
    np.testing.assert_array_equal(np.vstack(parts), whole)
    np.testing.assert_array_equal(bootstrap_indices(50, 3, seed=4), whole[:3])


def test_seeds_give_different_streams_and_numpy_integers_work():
    a = bootstrap_indices(100, 4, seed=1)
    assert not np.array_equal(a, bootstrap_indices(100, 4, seed=2))
    np.testing.assert_array_equal(a, bootstrap_indices(100, 4, seed=np.uint64(1)))
    np.testing.assert_array_equal(a, bootstrap_indices(100, 4, seed=np.int32(1)))
    np.testing.assert_array_equal(
        bootstrap_indices(10, 2, seed=np.uint64(2**64 - 1)), indices_by_definition(10, 2, MASK)
    )


# ---- cpu against the reference, bit for bit ---------------------------------------------------


@pytest.mark.parametrize("n_resamples", R_VALUES)
@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize("n", N_VALUES)
def test_cpu_matches_reference_bit_for_bit(draw_kernel, n, k, n_resamples):
    data = scores(k, n, "scaled")
    got = bootstrap_means(data, n_resamples, seed=7, backend="cpu")
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float64
    assert got.shape == (n_resamples, k)
    expected = bootstrap_means_reference(data, n_resamples, seed=7)
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("n", N_VALUES)
def test_one_row_gives_one_dimensional_means(n):
    data = scores(1, n)[0]
    for backend in ("reference", "cpu"):
        require_backend(backend)
        got = bootstrap_means(data, 7, seed=3, backend=backend)
        assert got.shape == (7,)
        np.testing.assert_array_equal(got, bootstrap_means(data[None], 7, seed=3)[:, 0])


@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize("n", [3, 17, 1000])
def test_means_are_the_means_of_the_indexed_scores(n, k):
    """Python code bootstrapping with bootstrap_indices sees the same resamples."""
    data = scores(k, n)
    idx = bootstrap_indices(n, 50, seed=11)
    expected = data[:, idx].mean(axis=-1).T  # NumPy's pairwise order: a few ulps apart
    for backend in ("reference", "cpu"):
        require_backend(backend)
        got = bootstrap_means(data, 50, seed=11, backend=backend)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_cpu_matches_reference_for_every_seed(draw_kernel, seed):
    data = scores(2, 333)
    got = bootstrap_means(data, 64, seed=seed, backend="cpu")
    assert got.tobytes() == bootstrap_means_reference(data, 64, seed=seed).tobytes()


def test_resamples_do_not_depend_on_how_many_are_asked_for():
    require_backend("cpu")
    data = scores(2, 500)
    many = bootstrap_means(data, 1000, seed=5, backend="cpu")
    np.testing.assert_array_equal(bootstrap_means(data, 10, seed=5, backend="cpu"), many[:10])


def test_reference_chunks_do_not_change_its_result(monkeypatch):
    data = scores(2, 100)
    whole = bootstrap_means_reference(data, 50, seed=2)
    monkeypatch.setattr(MODULE, "_CHUNK_VALUES", 7 * 200)  # 7 resamples a chunk
    assert bootstrap_means_reference(data, 50, seed=2).tobytes() == whole.tobytes()


# ---- strata ---------------------------------------------------------------------------------


def labels_for(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng([n, len(kind)])
    if kind == "few":
        return rng.integers(0, 3, n)
    if kind == "singletons":  # every stratum of size 1: each resample is the data itself
        return rng.permutation(n) * 7 - 50
    if kind == "mixed":  # unsorted labels, sizes 1, 2 and large, negative values
        labels = rng.integers(-4, 4, n)
        labels[: min(n, 3)] = [100, 101, 101][: min(n, 3)]
        return rng.permutation(labels)
    if kind == "one":
        return np.full(n, 9)
    raise ValueError(kind)


STRATA_KINDS = ("few", "singletons", "mixed", "one")


@pytest.mark.parametrize("kind", STRATA_KINDS)
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000])
def test_stratified_cpu_matches_reference(draw_kernel, kind, k, n):
    data = scores(k, n, "scaled")
    labels = labels_for(kind, n)
    got = bootstrap_means(data, 100, seed=8, strata=labels, backend="cpu")
    expected = bootstrap_means_reference(data, 100, seed=8, strata=labels)
    assert got.tobytes() == expected.tobytes()
    idx = bootstrap_indices(n, 100, seed=8, strata=labels)
    np.testing.assert_allclose(got, data[:, idx].mean(-1).T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", STRATA_KINDS)
def test_strata_keep_every_draw_in_its_stratum(kind):
    labels = labels_for(kind, 300)
    idx = bootstrap_indices(300, 200, seed=1, strata=labels)
    assert (labels[idx] == labels[None, :]).all()
    if kind == "singletons":
        assert (idx == np.arange(300)).all()
    # a label's positions draw only its members, as many draws as members
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        assert np.isin(idx[:, members], members).all()


def test_singleton_strata_give_the_sample_mean_every_time():
    data = scores(2, 17)
    got = bootstrap_means(data, 5, strata=np.arange(17))
    np.testing.assert_allclose(got, np.broadcast_to(data.mean(1), (5, 2)), rtol=1e-12, atol=1e-15)
    assert (got == got[0]).all()


def test_strata_accept_any_integer_labels_and_containers():
    labels = np.array([3, 1, 3, 1, 2, 2, 2])
    expected = bootstrap_indices(7, 9, strata=labels)
    for form in (labels.astype(np.uint8), labels.tolist(), torch.from_numpy(labels), labels + 10):
        np.testing.assert_array_equal(bootstrap_indices(7, 9, strata=form), expected)


# ---- threads --------------------------------------------------------------------------------


def test_cpu_result_is_the_same_at_every_thread_count(draw_kernel):
    from airda._native import native

    data = np.ascontiguousarray(scores(3, 1000))
    runs = []
    for threads in (1, 2, 3, 7):
        out = np.empty((500, 3))
        native().bootstrap_means(data, 500, 21, None, threads, out)
        runs.append(out.tobytes())
    assert len(set(runs)) == 1
    assert runs[0] == bootstrap_means_reference(data, 500, seed=21).tobytes()


def test_cpu_result_is_the_same_under_omp_num_threads():
    require_backend("cpu")
    code = (
        "import hashlib, numpy as np\n"
        "from airda.ops import bootstrap_means\n"
        "x = np.random.default_rng(1).standard_normal((2, 1000))\n"
        "labels = np.arange(1000) % 7\n"
        "a = bootstrap_means(x, 700, seed=3, backend='cpu').tobytes()\n"
        "b = bootstrap_means(x, 700, seed=3, strata=labels, backend='cpu').tobytes()\n"
        "print(hashlib.sha256(a + b).hexdigest())\n"
    )
    digests = set()
    for threads in ("1", "2", "5"):
        env = {**os.environ, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


# ---- statistics of the resamples --------------------------------------------------------------


def test_bootstrap_means_have_the_sample_mean_and_variance():
    require_backend("cpu")
    rng = np.random.default_rng(0)
    x = rng.exponential(2.0, 1000)
    y = 0.8 * x + rng.standard_normal(1000)
    r = 20_000
    means = bootstrap_means(np.stack([x, y]), r, seed=123)
    for row, values in enumerate((x, y)):
        # centred on the sample mean, within 5 standard errors of an average of r means
        se = values.std() / np.sqrt(values.size * r)
        assert abs(means[:, row].mean() - values.mean()) < 5 * se
        # the plug-in variance of a mean, var / n (ddof=0); its estimate from r draws is
        # within ~1% (sd sqrt(2 / r)), so 5% is a wide margin
        np.testing.assert_allclose(means[:, row].var(), values.var() / values.size, rtol=0.05)
    # paired: the difference keeps the pairs' correlation, so its variance is var(x - y) / n,
    # far below (var x + var y) / n
    diff = means[:, 0] - means[:, 1]
    np.testing.assert_allclose(diff.var(), (x - y).var() / x.size, rtol=0.05)


def test_stratified_variance_is_the_within_strata_variance():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 250)
    x = labels * 10.0 + rng.standard_normal(1000)  # strata far apart
    means = bootstrap_means(x, 20_000, seed=5, strata=labels)
    within = sum(x[labels == s].var() * 250 for s in range(4)) / 1000**2
    np.testing.assert_allclose(means.var(), within, rtol=0.05)
    # unstratified, the spread between strata dominates
    assert bootstrap_means(x, 2000, seed=5).var() > 50 * within


def chi_square_p(counts: np.ndarray) -> float:
    stats = pytest.importorskip("scipy.stats", reason="scipy is not installed (pip install scipy)")
    return float(stats.chisquare(counts.ravel()).pvalue)


@pytest.mark.parametrize("n", [2, 3, 7, 10])
def test_every_index_is_equally_frequent(n):
    idx = bootstrap_indices(n, 20_000, seed=n)
    assert chi_square_p(np.bincount(idx.ravel(), minlength=n)) > 1e-3
    # at every position, and jointly at neighbouring positions and resamples
    for j in range(n):
        assert chi_square_p(np.bincount(idx[:, j], minlength=n)) > 1e-4
    if n > 1:
        pairs = idx[:, 0] * n + idx[:, 1]
        assert chi_square_p(np.bincount(pairs, minlength=n * n)) > 1e-4
    pairs = idx[:-1, 0] * n + idx[1:, 0]
    assert chi_square_p(np.bincount(pairs, minlength=n * n)) > 1e-4


def test_draws_within_a_stratum_are_equally_frequent():
    labels = np.array([0, 1, 1, 2, 2, 2, 2, 2])
    idx = bootstrap_indices(8, 20_000, seed=3, strata=labels)
    for j, members in ((1, [1, 2]), (7, [3, 4, 5, 6, 7])):
        counts = np.bincount(idx[:, j], minlength=8)[members]
        assert counts.sum() == 20_000
        assert chi_square_p(counts) > 1e-4


# ---- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize(
    "dtype", [np.float32, np.float16, np.int8, np.int64, np.uint16], ids=lambda d: d.__name__
)
def test_other_real_dtypes_are_taken_as_float64(backend, dtype):
    require_backend(backend)
    data = np.abs(scores(2, 50) * 20).astype(dtype)
    got = bootstrap_means(data, 30, seed=1, backend=backend)
    expected = bootstrap_means_reference(data.astype(np.float64), 30, seed=1)
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_torch_in_torch_out(backend):
    require_backend(backend)
    data = scores(2, 40)
    got = bootstrap_means(torch.from_numpy(data.astype(np.float32)), 10, backend=backend)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.float64
    expected = bootstrap_means_reference(data.astype(np.float32).astype(np.float64), 10)
    np.testing.assert_array_equal(got.numpy(), expected)
    got = bootstrap_means(torch.tensor(data[0].copy()).to(torch.bfloat16), 10, backend=backend)
    assert got.shape == (10,)


def test_non_contiguous_data_is_copied():
    data = np.asfortranarray(scores(3, 40))
    assert not data.flags.c_contiguous
    expected = bootstrap_means(np.ascontiguousarray(data), 10, seed=2)
    np.testing.assert_array_equal(bootstrap_means(data, 10, seed=2), expected)
    np.testing.assert_array_equal(
        bootstrap_means(scores(3, 80)[:, ::2], 10, seed=2),
        bootstrap_means(np.ascontiguousarray(scores(3, 80)[:, ::2]), 10, seed=2),
    )


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_non_finite_data_is_refused_with_count_and_place(backend):
    require_backend(backend)
    x = np.zeros(10)
    x[[4, 7]] = np.nan
    x[9] = np.inf
    with pytest.raises(ValueError, match=r"3 non-finite values .*first is nan at index 4"):
        bootstrap_means(x, 5, backend=backend)
    rows = np.zeros((2, 6))
    rows[1, 2] = -np.inf
    with pytest.raises(ValueError, match=r"1 non-finite value .*first is -inf at row 1, index 2"):
        bootstrap_means(rows, 5, backend=backend)
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_means_reference(rows, 5)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.zeros(0), ValueError, "empty"),
        (np.zeros((2, 0)), ValueError, "empty"),
        (np.zeros((0, 5)), ValueError, "empty"),
        (np.zeros((2, 2, 2)), ValueError, "1-D .* or 2-D"),
        (np.float64(1.0), TypeError, "numpy.ndarray or a torch.Tensor"),
        (np.array(1.0), ValueError, "1-D .* or 2-D"),
        ([1.0, 2.0], TypeError, "numpy.ndarray or a torch.Tensor"),
        (np.array([True, False]), TypeError, "dtype bool"),
        (np.array([1 + 2j]), TypeError, "dtype complex128"),
        (np.array(["a"]), TypeError, "dtype"),
    ],
)
def test_bad_data_is_refused(data, error, match):
    with pytest.raises(error, match=match):
        bootstrap_means(data, 5)


def test_bad_counts_seeds_and_strata_are_refused():
    data = scores(2, 10)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n_resamples must be >= 1"):
            bootstrap_means(data, bad)
    for bad in (2.5, "10", None, True):
        with pytest.raises(TypeError, match="n_resamples must be an integer"):
            bootstrap_means(data, bad)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
            bootstrap_means(data, 5, seed=bad)
    for bad in (1.0, "1", True, np.bool_(True)):
        with pytest.raises(TypeError, match="seed must be an integer"):
            bootstrap_means(data, 5, seed=bad)
    with pytest.raises(ValueError, match=r"strata must be 1-D .*shape \(10,\)"):
        bootstrap_means(data, 5, strata=np.zeros(9, dtype=np.int64))
    with pytest.raises(ValueError, match="strata must be 1-D"):
        bootstrap_means(data, 5, strata=np.zeros((2, 5), dtype=np.int64))
    for bad in (np.zeros(10), np.zeros(10, dtype=bool), ["a"] * 10):
        with pytest.raises(TypeError, match="strata must be integer labels"):
            bootstrap_means(data, 5, strata=bad)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_result_too_large_names_n_resamples(backend):
    require_backend(backend)
    data = scores(2, 10)
    for n_resamples in (2**62, 2**63, 2**64, 2**100):  # more bytes than any address space
        with pytest.raises(ValueError, match=f"n_resamples = {n_resamples} is too large"):
            bootstrap_means(data, n_resamples, backend=backend)
    # Within the address space, but not within any memory (2**61 bytes): refused on allocation.
    with pytest.raises(MemoryError, match=f"n_resamples = {2**57} is too large"):
        bootstrap_means(data[0], 2**58 // 2, backend=backend)


def test_indices_too_large_name_n_and_n_resamples():
    with pytest.raises(ValueError, match=f"n = 5 and n_resamples = {2**62} are too large"):
        bootstrap_indices(5, 2**62)
    with pytest.raises(MemoryError, match=f"n = 1 and n_resamples = {2**59} are too large"):
        bootstrap_indices(1, 2**59)


def test_awkward_data_and_strata_are_read_as_values_or_refused_by_name():
    data, labels = scores(2, 6), np.array([0, 0, 1, 1, 1, 2])
    want = bootstrap_means(data, 20, seed=3, strata=labels)
    swapped = bootstrap_means(data.astype(">f8"), 20, seed=3, strata=labels.astype(">i4"))
    np.testing.assert_array_equal(swapped, want)
    with pytest.raises(ValueError, match="data: cannot take a torch array on meta"):
        bootstrap_means(torch.zeros(2, 6, device="meta"), 5)
    with pytest.raises(ValueError, match="strata: cannot take a torch array on meta"):
        bootstrap_means(data, 5, strata=torch.zeros(6, dtype=torch.int64, device="meta"))
    with pytest.raises(TypeError, match=r"strata is a torch tensor of layout torch\.sparse_coo"):
        bootstrap_indices(6, 5, strata=torch.from_numpy(labels).to_sparse())
    with pytest.raises(MemoryError, match=r"data of shape \(2, 2147483648\)"):
        bootstrap_means(np.broadcast_to(1.0, (2, 2**31)), 5)


def test_bad_indices_arguments_are_refused():
    with pytest.raises(ValueError, match="n must be >= 1"):
        bootstrap_indices(0, 5)
    with pytest.raises(ValueError, match="below 2"):
        bootstrap_indices(2**32, 1)
    with pytest.raises(ValueError, match="start must be >= 0"):
        bootstrap_indices(5, 1, start=-1)
    with pytest.raises(ValueError, match=r"start = .* too large"):
        bootstrap_indices(5, 2, start=2**64 - 1)
    last = bootstrap_indices(5, 1, start=2**64 - 1)  # the last resample of the stream
    np.testing.assert_array_equal(last, indices_by_definition(5, 1, 0, start=2**64 - 1))
    with pytest.raises(TypeError, match="n must be an integer"):
        bootstrap_indices(5.0, 1)
    with pytest.raises(ValueError, match="strata"):
        bootstrap_indices(5, 1, strata=[0, 1])


def test_compiled_module_checks_its_own_arguments():
    require_backend("cpu")
    from airda._native import native

    c = native()
    data = np.ascontiguousarray(scores(2, 10))
    out = np.empty((4, 2))
    bad = data.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="not finite at row 0, index 3"):
        c.bootstrap_means(bad, 4, 0, None, 0, out)
    with pytest.raises(ValueError, match="out must have shape"):
        c.bootstrap_means(data, 5, 0, None, 0, out)
    with pytest.raises(TypeError, match="data has dtype"):
        c.bootstrap_means(data.astype(np.float32), 4, 0, None, 0, out)
    with pytest.raises(ValueError, match="n_resamples"):
        c.bootstrap_means(data, 0, 0, None, 0, np.empty((0, 2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        c.bootstrap_means(np.asfortranarray(data), 4, 0, None, 0, out)
    with pytest.raises(TypeError):
        c.bootstrap_means(data, 4, -1, None, 0, out)  # seeds are unsigned
    layout = np.zeros((3, 10), dtype=np.int64)
    layout[0] = np.arange(10)
    layout[2] = 1
    layout[1] = np.arange(10)
    c.bootstrap_means(data, 4, 0, layout, 0, out)  # singleton strata: fine
    np.testing.assert_array_equal(out, bootstrap_means_reference(data, 4, strata=np.arange(10)))
    for row, col, value in ((1, 9, 9 + 1), (2, 0, 0), (1, 0, -1), (0, 5, 10), (0, 5, -1)):
        broken = layout.copy()
        broken[row, col] = value
        with pytest.raises(ValueError, match="strata"):
            c.bootstrap_means(data, 4, 0, broken, 0, out)
    with pytest.raises(ValueError, match="strata must have shape"):
        c.bootstrap_means(data, 4, 0, layout[:, :5].copy(), 0, out)
    with pytest.raises(TypeError, match="strata has dtype"):
        c.bootstrap_means(data, 4, 0, layout.astype(np.int32), 0, out)
    readonly = np.empty((4, 2))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        c.bootstrap_means(data, 4, 0, None, 0, readonly)


# ---- backends ---------------------------------------------------------------------------------


def test_backend_dispatch(monkeypatch):
    data = scores(2, 30)
    expected = bootstrap_means_reference(data, 8)
    np.testing.assert_array_equal(bootstrap_means(data, 8, backend="reference"), expected)
    if ops.backend_status("cpu").usable:
        np.testing.assert_array_equal(bootstrap_means(data, 8, backend="cpu"), expected)
        np.testing.assert_array_equal(bootstrap_means(data, 8), expected)
    with pytest.raises(ops.BackendUnavailableError, match="no 'cuda' backend"):
        bootstrap_means(data, 8, backend="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        bootstrap_means(data, 8, backend="gpu")
    monkeypatch.setenv("AIRDA_BACKEND", "reference")
    called = []
    real = MODULE._MEANS_OP.impls["reference"]
    monkeypatch.setitem(
        MODULE._MEANS_OP.impls, "reference", lambda *a: called.append(1) or real(*a)
    )
    np.testing.assert_array_equal(bootstrap_means(data, 8), expected)
    assert called


def test_available_lists_the_op():
    row = ops.available()["bootstrap_means"]
    assert row["reference"].usable
    assert row["cpu"].usable == ops.backend_status("cpu").usable
    assert not row["cuda"].usable
    assert "no cuda implementation" in row["cuda"].reason

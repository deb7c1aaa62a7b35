"""knn_distances: exact distance to the closest record (k=1) of 20-column standard-normal rows,
against scikit-learn's NearestNeighbors (default settings, n_jobs=-1) as the baseline, and
airda's backends. Bar on the 2-core machine: 100k x 100k in under 10 s, >= 10x scikit-learn.

``AIRDA_BENCH_KNN_ROWS`` sets the rows of queries and of data (default 20,000, so that ``pytest
bench`` stays short; the documented run uses 100000). ``AIRDA_BENCH_KNN_STREAM=1`` adds the
streaming run: 1,000,000 queries against 100,000 rows, with the process's peak memory.
"""

from __future__ import annotations

import os
import resource

import numpy as np
import pytest

from airda import ops

N = int(os.environ.get("AIRDA_BENCH_KNN_ROWS", "20000"))
D = 20
GROUP = f"knn_distances k=1 {N}x{N}x{D}"


def make(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D))


@pytest.fixture(scope="module")
def inputs():
    return make(N, 1), make(N, 2)


def test_sklearn(timed, inputs):
    neighbors = pytest.importorskip("sklearn.neighbors", reason="scikit-learn is the baseline")
    q, x = inputs

    def run():
        return neighbors.NearestNeighbors(n_neighbors=1, n_jobs=-1).fit(x).kneighbors(q)

    dist, idx = timed(GROUP, "scikit-learn NearestNeighbors", run, rounds=1, baseline=True)
    got_d, got_i = ops.knn_distances(q[:2000], x, 1)
    assert (got_i[:, 0] == idx[:2000, 0]).mean() > 0.999  # sklearn's GEMM form may break near-ties
    np.testing.assert_allclose(got_d[:, 0], dist[:2000, 0], rtol=1e-6)


def test_cpu(timed, inputs):
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    q, x = inputs
    d, i = timed(GROUP, "airda cpu", lambda: ops.knn_distances(q, x, 1, backend="cpu"), rounds=3)
    sub = slice(0, 200)
    want_d, want_i = ops.knn_distances_reference(q[sub], x, 1)
    np.testing.assert_array_equal(i[sub], want_i)
    np.testing.assert_array_equal(d[sub], want_d)


def test_cpu_streams_a_million_queries(timed):
    if os.environ.get("AIRDA_BENCH_KNN_STREAM") != "1":
        pytest.skip("set AIRDA_BENCH_KNN_STREAM=1 for the 1,000,000 x 100,000 streaming run")
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    q, x = make(1_000_000, 3), make(100_000, 4)
    d, i = timed(
        f"knn_distances k=1 1000000x100000x{D}",
        "airda cpu (streamed)",
        lambda: ops.knn_distances(q, x, 1, backend="cpu"),
        rounds=1,
        warmup=0,
        baseline=True,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"\npeak resident memory of the process: {peak:.2f} GiB (inputs {q.nbytes / 2**30:.2f} GiB)"
    )
    want_d, want_i = ops.knn_distances_reference(q[:100], x, 1)
    np.testing.assert_array_equal(i[:100], want_i)
    np.testing.assert_array_equal(d[:100], want_d)

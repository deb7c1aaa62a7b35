"""knn_distances: exact distance to the closest record (k=1) of 20-column rows, against
scikit-learn's NearestNeighbors (default settings, n_jobs=-1) as the baseline, and airda's
backends. Bar on the 2-core machine: 100k x 100k in under 10 s, >= 10x scikit-learn.

The sizes here are kept so that the suite stays short (N rows of queries and of data); the
100k x 100k and 1M-query runs are in docs/results-ops.md with their command.
"""

from __future__ import annotations

import os

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

    timed(GROUP, "scikit-learn NearestNeighbors", run, rounds=1, baseline=True)


def test_cpu(timed, inputs):
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    q, x = inputs
    d, i = timed(GROUP, "airda cpu", lambda: ops.knn_distances(q, x, 1, backend="cpu"), rounds=3)
    sub = slice(0, 200)
    want_d, want_i = ops.knn_distances_reference(q[sub], x, 1)
    np.testing.assert_array_equal(i[sub], want_i)
    np.testing.assert_array_equal(d[sub], want_d)

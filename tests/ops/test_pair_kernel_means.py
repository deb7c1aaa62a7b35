"""pair_kernel_means, energy_distance and mmd: every backend against the reference, the reference
against the full pairwise matrix and SciPy's one-dimensional energy distance, on awkward shapes
(one row, duplicates, float32, strided inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda.ops import (
    energy_distance,
    median_heuristic_gamma,
    mmd,
    pair_kernel_means,
    pair_kernel_means_reference,
)
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend


def sample(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def full_means(x: np.ndarray, y: np.ndarray, kernel: str, gamma: float = 0.0) -> np.ndarray:
    def mean(a, b):
        sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        return (np.sqrt(sq) if kernel == "distance" else np.exp(-gamma * sq)).mean()

    return np.array([mean(x, y), mean(x, x), mean(y, y)])


SHAPES = [(1, 1, 1), (1, 6, 3), (7, 5, 2), (40, 33, 9), (70, 65, 20)]


@pytest.mark.parametrize(("n", "m", "d"), SHAPES)
@pytest.mark.parametrize(("kernel", "gamma"), [("distance", None), ("rbf", 0.3)])
def test_reference_matches_the_full_matrix(n, m, d, kernel, gamma):
    x, y = sample(n, d, 1), sample(m, d, 2, 0.5)
    got = pair_kernel_means_reference(x, y, kernel, gamma=gamma)
    np.testing.assert_allclose(got, full_means(x, y, kernel, gamma or 0.0), rtol=1e-12)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize(("n", "m", "d"), SHAPES)
@pytest.mark.parametrize(("kernel", "gamma"), [("distance", None), ("rbf", 0.3)])
def test_backend_matches_reference(backend, n, m, d, kernel, gamma):
    require_backend(backend)
    x, y = sample(n, d, 1), sample(m, d, 2, 0.5)
    want = pair_kernel_means_reference(x, y, kernel, gamma=gamma)
    dev = device_for(backend)
    got = pair_kernel_means(
        torch.from_numpy(x).to(dev),
        torch.from_numpy(y).to(dev),
        kernel,
        gamma=gamma,
        backend=backend,
    )
    assert got.dtype == torch.float64
    assert tuple(got.shape) == (3,)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_float32_strided_and_duplicate_rows(backend):
    require_backend(backend)
    x = np.repeat(sample(6, 5, 3), 2, axis=0).astype(np.float32)  # every row twice
    y = np.asfortranarray(sample(9, 5, 4).astype(np.float32))
    got = pair_kernel_means(x[::-1], y, "rbf", gamma=0.2, backend=backend)
    want = full_means(x.astype(np.float64), y.astype(np.float64), "rbf", 0.2)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_energy_distance_is_scipys_squared_in_one_dimension():
    scipy_stats = pytest.importorskip("scipy.stats", reason="SciPy's energy distance is the check")
    x, y = sample(30, 1, 5), sample(25, 1, 6, 0.7)
    want = scipy_stats.energy_distance(x.ravel(), y.ravel()) ** 2
    assert energy_distance(x, y) == pytest.approx(want, rel=1e-10)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mmd_biased_unbiased_and_median_heuristic():
    x, y = sample(20, 3, 7), sample(15, 3, 8, 1.0)
    gamma = median_heuristic_gamma(x, y)
    z = np.concatenate([x, y])
    dist = np.sqrt(((z[:, None] - z[None]) ** 2).sum(axis=2))[np.triu_indices(35, 1)]
    assert gamma == pytest.approx(1.0 / (2.0 * np.median(dist) ** 2))
    xx, yy, xy = (
        np.exp(-gamma * ((a[:, None] - b[None]) ** 2).sum(axis=2))
        for a, b in ((x, x), (y, y), (x, y))
    )
    assert mmd(x, y) == pytest.approx(xx.mean() + yy.mean() - 2 * xy.mean(), rel=1e-10)
    unbiased = (xx.sum() - 20) / (20 * 19) + (yy.sum() - 15) / (15 * 14) - 2 * xy.mean()
    assert mmd(x, y, unbiased=True) == pytest.approx(unbiased, rel=1e-10)
    assert mmd(x, x, gamma=0.5) == pytest.approx(0.0, abs=1e-12)
    assert median_heuristic_gamma(np.zeros((3, 2)), np.zeros((2, 2))) == 1.0


def test_bad_input_is_refused_naming_it():
    x = sample(4, 2, 1)
    with pytest.raises(ValueError, match="x has 2 columns but y has 3"):
        pair_kernel_means(x, sample(3, 3, 2))
    with pytest.raises(ValueError, match="kernel must be one of"):
        pair_kernel_means(x, x, "laplace")
    with pytest.raises(ValueError, match="needs gamma"):
        pair_kernel_means(x, x, "rbf")
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        pair_kernel_means(x, x, "rbf", gamma=-1.0)
    with pytest.raises(ValueError, match="gamma is for kernel='rbf' only"):
        pair_kernel_means(x, x, gamma=1.0)
    with pytest.raises(TypeError, match="gamma must be a number"):
        mmd(x, x, gamma="wide")
    bad = x.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"y has NaN or infinite values \(first in row 2\)"):
        energy_distance(x, bad)
    with pytest.raises(ValueError, match=r"x has NaN or infinite values \(first in row 2\)"):
        mmd(bad, x)
    with pytest.raises(ValueError, match="unbiased=True needs at least 2 rows"):
        mmd(x[:1], x, gamma=1.0, unbiased=True)

"""pair_kernel_means (energy distance, MMD) of two 20-column samples of N rows: the NumPy
reference (chunked, float64) as the baseline, a dense torch float64 cdist, and airda's cpu
backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda import ops

N = 4000
D = 20


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)), rng.standard_normal((N, D)) + 0.1


@pytest.mark.parametrize("kernel", ["distance", "rbf"])
def test_reference(timed, samples, kernel):
    x, y = samples
    gamma = 0.05 if kernel == "rbf" else None
    timed(
        f"pair_kernel_means {kernel} {N}x{N}x{D}",
        "reference (numpy float64)",
        lambda: ops.pair_kernel_means_reference(x, y, kernel, gamma=gamma),
        rounds=1,
        baseline=True,
    )


@pytest.mark.parametrize("kernel", ["distance", "rbf"])
def test_torch_cdist(timed, samples, kernel):
    x, y = (torch.from_numpy(a) for a in samples)

    def run():
        out = []
        for a, b in ((x, y), (x, x), (y, y)):
            dist = torch.cdist(a, b)
            out.append((dist if kernel == "distance" else torch.exp(-0.05 * dist**2)).mean())
        return out

    timed(f"pair_kernel_means {kernel} {N}x{N}x{D}", "torch cdist (dense, float64)", run, rounds=3)


@pytest.mark.parametrize("kernel", ["distance", "rbf"])
def test_cpu(timed, samples, kernel):
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    x, y = samples
    gamma = 0.05 if kernel == "rbf" else None
    got = timed(
        f"pair_kernel_means {kernel} {N}x{N}x{D}",
        "airda cpu",
        lambda: ops.pair_kernel_means(x, y, kernel, gamma=gamma, backend="cpu"),
        rounds=3,
    )
    want = ops.pair_kernel_means_reference(x[:500], y[:500], kernel, gamma=gamma)
    check = ops.pair_kernel_means(x[:500], y[:500], kernel, gamma=gamma, backend="cpu")
    np.testing.assert_allclose(check, want, rtol=1e-12)
    assert got.shape == (3,)

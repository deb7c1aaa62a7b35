"""hamming_gram at N=128: the NumPy reference (the paper's float formulation), torch float32
matmuls on the unpacked codes (how the NASWOT code computes K; unpacking not timed), and
airda's backends. Target on a 2-core machine: cpu >= 10x the reference at L=1e5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda import ops

N = 128
L_VALUES = (10_000, 100_000, 1_000_000)


def make_codes(units: int) -> np.ndarray:
    x = np.random.default_rng(units).standard_normal((N, units), dtype=np.float32)
    return ops.pack_sign_bits(x)


def torch_paper_gram(c: torch.Tensor) -> torch.Tensor:
    return c @ c.T + (1 - c) @ (1 - c).T


@pytest.mark.parametrize("units", L_VALUES)
def test_reference(timed, units):
    codes = make_codes(units)
    rounds = 3 if units >= 1_000_000 else 5
    timed(
        f"hamming_gram N={N} L={units:.0e}",
        "reference (numpy float64)",
        ops.hamming_gram_reference,
        codes,
        units,
        rounds=rounds,
        baseline=True,
    )


@pytest.mark.parametrize("units", L_VALUES)
def test_torch_float32_matmul(timed, units):
    codes = make_codes(units)
    c = torch.from_numpy(ops.unpack_sign_bits(codes, units).astype(np.float32))
    k = timed(
        f"hamming_gram N={N} L={units:.0e}", "torch float32 matmul (paper)", torch_paper_gram, c
    )
    np.testing.assert_array_equal(k.round().long().numpy(), ops.hamming_gram(codes, units))


@pytest.mark.parametrize("units", L_VALUES)
def test_cpu(timed, units):
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    codes = make_codes(units)
    k = timed(
        f"hamming_gram N={N} L={units:.0e}",
        "airda cpu",
        lambda: ops.hamming_gram(codes, units, backend="cpu"),
        rounds=20,
    )
    np.testing.assert_array_equal(k, ops.hamming_gram_reference(codes, units))


@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("units", L_VALUES)
def test_gpu(timed, backend, units):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: GPU backends are timed by bench/gpu_check.py on a GPU")
    if not ops.backend_status(backend).usable:
        pytest.skip(f"{backend} unavailable: {ops.backend_status(backend).reason}")
    codes = torch.from_numpy(make_codes(units)).cuda()

    def run():
        k = ops.hamming_gram(codes, units, backend=backend)
        torch.cuda.synchronize()
        return k

    timed(f"hamming_gram N={N} L={units:.0e}", f"airda {backend}", run, rounds=20)

"""pack_sign_bits of 64 x 1M float32 activations: the NumPy reference, torch's `x > 0` (a byte
per unit, the peer's representation), and airda's backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda import ops

N, L = 64, 1_000_000
GROUP = f"pack_sign_bits N={N} L={L:.0e} float32"


def make_x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, L), dtype=np.float32)


def test_reference(timed):
    timed(GROUP, "reference (numpy)", ops.pack_sign_bits_reference, make_x(), baseline=True)


def test_torch_compare(timed):
    x = torch.from_numpy(make_x())
    timed(GROUP, "torch x > 0 (bool, unpacked)", torch.gt, x, 0)


def test_cpu(timed):
    if not ops.backend_status("cpu").usable:
        pytest.skip(f"cpu backend unavailable: {ops.backend_status('cpu').reason}")
    x = make_x()
    codes = timed(GROUP, "airda cpu", lambda: ops.pack_sign_bits(x, backend="cpu"), rounds=20)
    np.testing.assert_array_equal(codes, ops.pack_sign_bits_reference(x))

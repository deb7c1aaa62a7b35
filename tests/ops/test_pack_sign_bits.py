"""pack_sign_bits: every backend against the reference, on awkward shapes and arrays."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import pack_sign_bits, pack_sign_bits_reference
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend

N_VALUES = (1, 2, 3, 65, 257)


L_VALUES = (1, 63, 64, 65, 10_001)


DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.cache
def activations(n: int, units: int) -> torch.Tensor:
    """Normal values with the sign edge cases sprinkled in: zeros, -0, NaN, +-inf, subnormals."""
    g = torch.Generator().manual_seed(n * 100_003 + units)
    x = torch.randn(n, units, generator=g)
    flat = x.view(-1)
    specials = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-40, -1e-40])
    idx = torch.randint(0, flat.numel(), (min(flat.numel(), 3 * len(specials)),), generator=g)
    flat[idx] = specials.repeat(3)[: idx.numel()]
    return x


def as_int64(t: torch.Tensor) -> torch.Tensor:
    return t.cpu().view(torch.int64)


def test_pack_reference_matches_definition():
    x = activations(3, 130).numpy()
    codes = pack_sign_bits_reference(x)
    for i in range(3):
        for j in range(130):
            assert bool((int(codes[i, j // 64]) >> (j % 64)) & 1) == bool(x[i, j] > 0)
    # padding bits beyond the last unit are zero
    assert int(codes[0, 2]) >> 2 == 0


def test_unpack_inverts_pack():
    x = activations(4, 70).numpy()
    np.testing.assert_array_equal(ops.unpack_sign_bits(pack_sign_bits_reference(x), 70), x > 0)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("units", L_VALUES)
@pytest.mark.parametrize("n", N_VALUES)
def test_pack_sign_bits_matches_reference(backend, dtype, units, n):
    require_backend(backend)
    x = activations(n, units).to(dtype)
    expected = pack_sign_bits_reference(x.float().numpy())
    got = pack_sign_bits(x.to(device_for(backend)), backend=backend)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.uint64
    assert got.shape == (n, -(-units // 64))
    assert torch.equal(as_int64(got), torch.from_numpy(expected.view(np.int64)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_cpu_takes_numpy_and_returns_numpy(dtype):
    require_backend("cpu")
    x = activations(17, 200).numpy().astype(dtype)
    codes = pack_sign_bits(x, backend="cpu")
    assert isinstance(codes, np.ndarray)
    assert codes.dtype == np.uint64
    np.testing.assert_array_equal(codes, pack_sign_bits_reference(x))


def test_automatic_choice_is_the_fastest_usable_host_backend():
    x = activations(2, 10).numpy()
    expected_cpu = ops.backend_status("cpu").usable
    # The compiled module is built in every supported install: the automatic choice uses it.
    assert expected_cpu
    np.testing.assert_array_equal(pack_sign_bits(x), pack_sign_bits_reference(x))


def require_host_backend(backend: str) -> None:
    """Skip unless `backend` takes NumPy arrays here (Triton does only on its interpreter)."""
    require_backend(backend)
    if device_for(backend) != "cpu":
        pytest.skip(f"backend {backend!r} takes device tensors only here")


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8"])
def test_pack_sign_bits_reads_non_native_byte_order_as_values(backend, dtype):
    require_host_backend(backend)
    x = activations(3, 130).numpy().astype(dtype)
    expected = pack_sign_bits_reference(x.astype(np.dtype(dtype).newbyteorder("=")))
    np.testing.assert_array_equal(pack_sign_bits(x, backend=backend), expected)


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_unaligned_arrays_are_read_as_values(backend):
    require_host_backend(backend)
    x = activations(4, 70).numpy()
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float32).reshape(x.shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    expected = pack_sign_bits_reference(x)
    np.testing.assert_array_equal(pack_sign_bits(unaligned, backend=backend), expected)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ([[1.0, 2.0]], TypeError, "numpy.ndarray or a torch.Tensor, got list"),
        (np.ones((2, 3), np.int32), TypeError, "dtype int32"),
        (np.ones((2, 3), bool), TypeError, "dtype bool"),
        (torch.ones(2, 3, dtype=torch.int64), TypeError, "dtype int64"),
        (np.ones(3, np.float32), ValueError, "must be 2-D"),
        (np.ones((2, 3, 4), np.float32), ValueError, "must be 2-D"),
        (np.ones((0, 3), np.float32), ValueError, "empty"),
        (np.ones((3, 0), np.float32), ValueError, "empty"),
        (np.ones((4, 6), np.float32)[:, ::2], ValueError, "C-contiguous"),
        (torch.ones(6, 4).T, ValueError, "C-contiguous"),
    ],
)
@pytest.mark.parametrize("backend", [None, "reference", "cpu", "triton"])
def test_pack_sign_bits_rejects_bad_input(x, error, message, backend):
    with pytest.raises(error, match=message):
        pack_sign_bits(x, backend=backend)


def test_compiled_module_validates_its_arguments():
    require_backend("cpu")
    from airda import _C

    x = np.ones((2, 70), np.float32)
    out = np.empty((2, 2), np.uint64)
    with pytest.raises(ValueError, match="unknown float kind"):
        _C.pack_sign_bits(x, "float8", out)
    with pytest.raises(TypeError, match="4-byte items, but float16 needs 2"):
        _C.pack_sign_bits(x, "float16", out)
    with pytest.raises(ValueError, match="must have shape"):
        _C.pack_sign_bits(x, "float32", np.empty((2, 3), np.uint64))
    with pytest.raises(TypeError, match="out has dtype"):
        _C.pack_sign_bits(x, "float32", np.empty((2, 2), np.int32))
    read_only = np.empty((2, 2), np.uint64)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _C.pack_sign_bits(x, "float32", read_only)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.pack_sign_bits(np.ones((4, 70), np.float32)[::2], "float32", out)
    with pytest.raises(ValueError, match="empty"):
        _C.pack_sign_bits(np.ones((0, 70), np.float32), "float32", np.empty((0, 2), np.uint64))

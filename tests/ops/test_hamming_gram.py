"""hamming_gram: every backend against the reference, on awkward shapes and arrays (the codes are
those of the pack_sign_bits tests)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from airda.ops import hamming_gram, hamming_gram_reference, pack_sign_bits_reference
from tests.helpers import COMPILED_BACKENDS, device_for, require_backend
from tests.ops.test_pack_sign_bits import L_VALUES, N_VALUES, activations, require_host_backend


@functools.cache
def codes_for(n: int, units: int) -> np.ndarray:
    return pack_sign_bits_reference(activations(n, units).numpy())


def test_gram_reference_matches_popcount_definition():
    units = 150
    codes = codes_for(5, units)
    expected = np.empty((5, 5), dtype=np.int64)
    for i in range(5):
        for j in range(5):
            ham = sum(
                bin(int(a) ^ int(b)).count("1") for a, b in zip(codes[i], codes[j], strict=True)
            )
            expected[i, j] = units - ham
    np.testing.assert_array_equal(hamming_gram_reference(codes, units), expected)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("units", L_VALUES)
@pytest.mark.parametrize("n", N_VALUES)
def test_hamming_gram_matches_reference(backend, units, n):
    require_backend(backend)
    codes = codes_for(n, units)
    expected = hamming_gram_reference(codes, units)
    got = hamming_gram(torch.from_numpy(codes).to(device_for(backend)), units, backend=backend)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.cpu().numpy(), expected)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_hamming_gram_ignores_padding_bits(backend):
    require_backend(backend)
    units = 70
    codes = codes_for(9, units).copy()
    expected = hamming_gram_reference(codes, units)
    codes[:, -1] |= np.uint64(0xFFFF_0000_0000_0000) + np.arange(9, dtype=np.uint64) * np.uint64(64)
    got = hamming_gram(torch.from_numpy(codes).to(device_for(backend)), units, backend=backend)
    np.testing.assert_array_equal(got.cpu().numpy(), expected)


def test_cpu_takes_numpy_and_returns_numpy():
    require_backend("cpu")
    codes = codes_for(17, 200)
    k = hamming_gram(codes, 200, backend="cpu")
    assert isinstance(k, np.ndarray)
    assert k.dtype == np.int64
    np.testing.assert_array_equal(k, hamming_gram_reference(codes, 200))


def test_gram_is_symmetric_with_units_on_the_diagonal():
    codes = codes_for(65, 10_001)
    k = hamming_gram(codes, 10_001)
    np.testing.assert_array_equal(k, k.T)
    assert (np.diag(k) == 10_001).all()
    assert k.min() >= 0


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_hamming_gram_reads_non_native_byte_order_as_values(backend):
    require_host_backend(backend)
    codes = codes_for(5, 150)
    got = hamming_gram(codes.astype(">u8"), 150, backend=backend)
    np.testing.assert_array_equal(got, hamming_gram_reference(codes, 150))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_subclassed_arrays_are_read_as_values(backend):
    require_host_backend(backend)
    expected = codes_for(4, 70)
    codes = np.asmatrix(expected)  # its * is a matrix product; the op must not care
    got = hamming_gram(codes, 70, backend=backend)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, hamming_gram_reference(expected, 70))


GOOD_CODES = np.zeros((3, 2), np.uint64)


@pytest.mark.parametrize(
    ("codes", "units", "error", "message"),
    [
        (GOOD_CODES.astype(np.int64), 100, TypeError, "dtype int64; expected uint64"),
        (GOOD_CODES.astype(np.float64), 100, TypeError, "dtype float64"),
        ("codes", 100, TypeError, "got str"),
        (GOOD_CODES, 100.0, TypeError, "units must be an int"),
        (GOOD_CODES, True, TypeError, "units must be an int"),
        (GOOD_CODES, 64, ValueError, r"2 words per row, but units=64 needs ceil\(64/64\) = 1"),
        (GOOD_CODES, 129, ValueError, "needs ceil"),
        (GOOD_CODES, 0, ValueError, "units must be >= 1"),
        (GOOD_CODES, -5, ValueError, "units must be >= 1"),
        (GOOD_CODES[0], 100, ValueError, "must be 2-D"),
        (np.zeros((0, 2), np.uint64), 100, ValueError, "empty"),
        (np.zeros((3, 4), np.uint64)[:, ::2], 100, ValueError, "C-contiguous"),
    ],
)
@pytest.mark.parametrize("backend", [None, "reference", "cpu", "triton"])
def test_hamming_gram_rejects_bad_input(codes, units, error, message, backend):
    with pytest.raises(error, match=message):
        hamming_gram(codes, units, backend=backend)


def test_numpy_units_integer_is_accepted():
    codes = codes_for(3, 100)
    np.testing.assert_array_equal(hamming_gram(codes, np.int64(100)), hamming_gram(codes, 100))


def test_compiled_module_validates_its_arguments():
    require_backend("cpu")
    from airda import _C

    codes = np.zeros((2, 2), np.uint64)
    with pytest.raises(ValueError, match="needs 1"):
        _C.hamming_gram(codes, 64, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="units must be >= 1"):
        _C.hamming_gram(codes, 0, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="must have shape"):
        _C.hamming_gram(codes, 100, np.empty((3, 3), np.int64))
    with pytest.raises(TypeError, match="codes has dtype"):
        _C.hamming_gram(codes.astype(np.int64), 100, np.empty((2, 2), np.int64))

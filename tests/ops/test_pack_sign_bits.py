"""pack_sign_bits and hamming_gram: every backend against the reference, on awkward shapes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import hamming_gram, hamming_gram_reference, pack_sign_bits, pack_sign_bits_reference
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


@functools.cache
def codes_for(n: int, units: int) -> np.ndarray:
    return pack_sign_bits_reference(activations(n, units).numpy())


def as_int64(t: torch.Tensor) -> torch.Tensor:
    return t.cpu().view(torch.int64)


# ---- the references themselves, against the definitions ----------------------------------


def test_pack_reference_matches_definition():
    x = activations(3, 130).numpy()
    codes = pack_sign_bits_reference(x)
    for i in range(3):
        for j in range(130):
            assert bool((int(codes[i, j // 64]) >> (j % 64)) & 1) == bool(x[i, j] > 0)
    # padding bits beyond the last unit are zero
    assert int(codes[0, 2]) >> 2 == 0


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


def test_unpack_inverts_pack():
    x = activations(4, 70).numpy()
    np.testing.assert_array_equal(ops.unpack_sign_bits(pack_sign_bits_reference(x), 70), x > 0)


# ---- every backend against the reference --------------------------------------------------


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_cpu_takes_numpy_and_returns_numpy(dtype):
    require_backend("cpu")
    x = activations(17, 200).numpy().astype(dtype)
    codes = pack_sign_bits(x, backend="cpu")
    assert isinstance(codes, np.ndarray)
    assert codes.dtype == np.uint64
    np.testing.assert_array_equal(codes, pack_sign_bits_reference(x))
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


def test_automatic_choice_is_the_fastest_usable_host_backend():
    x = activations(2, 10).numpy()
    expected_cpu = ops.backend_status("cpu").usable
    # The compiled module is built in every supported install: the automatic choice uses it.
    assert expected_cpu
    np.testing.assert_array_equal(pack_sign_bits(x), pack_sign_bits_reference(x))


# ---- NumPy arrays the kernels cannot read as they are: converted first ---------------------


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
def test_hamming_gram_reads_non_native_byte_order_as_values(backend):
    require_host_backend(backend)
    codes = codes_for(5, 150)
    got = hamming_gram(codes.astype(">u8"), 150, backend=backend)
    np.testing.assert_array_equal(got, hamming_gram_reference(codes, 150))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_unaligned_and_subclassed_arrays_are_read_as_values(backend):
    require_host_backend(backend)
    x = activations(4, 70).numpy()
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float32).reshape(x.shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    expected = pack_sign_bits_reference(x)
    np.testing.assert_array_equal(pack_sign_bits(unaligned, backend=backend), expected)
    codes = np.asmatrix(expected)  # its * is a matrix product; the op must not care
    got = hamming_gram(codes, 70, backend=backend)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, hamming_gram_reference(expected, 70))


def test_describe_refuses_what_it_cannot_describe_faithfully():
    from airda.ops._arrays import as_array, describe

    with pytest.raises(TypeError, match=r"x has non-native byte order \(dtype >f4\)"):
        describe(np.ones((2, 2), ">f4"), "x")
    converted, info = as_array(np.ones((2, 2), ">f4"), "x")
    assert converted.dtype.isnative
    assert info.dtype == "float32"
    with pytest.raises(TypeError, match=r"x is a torch tensor of layout torch\.sparse_coo"):
        pack_sign_bits(torch.ones(2, 3).to_sparse())


# ---- backend forcing and errors ------------------------------------------------------------


def test_airda_backend_environment_variable_forces_a_backend(monkeypatch):
    x = activations(2, 10).numpy()
    monkeypatch.setenv("AIRDA_BACKEND", "reference")
    np.testing.assert_array_equal(pack_sign_bits(x), pack_sign_bits_reference(x))
    monkeypatch.setenv("AIRDA_BACKEND", "gpu")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        pack_sign_bits(x)


def test_unknown_backend_argument_is_a_value_error():
    with pytest.raises(ValueError, match=r"unknown backend 'fast'.*cpu, cuda, triton, reference"):
        pack_sign_bits(np.ones((2, 2), np.float32), backend="fast")


def test_forcing_an_unusable_backend_says_why():
    status = ops.backend_status("cuda")
    if status.usable:
        pytest.skip("a usable CUDA device is present: the cuda backend is not unavailable")
    with pytest.raises(ops.BackendUnavailableError, match=r"backend 'cuda' is unavailable: .+"):
        pack_sign_bits(np.ones((2, 2), np.float32), backend="cuda")


def test_forcing_a_device_backend_on_host_data_explains_the_placement():
    if not ops.backend_status("cuda").usable:
        pytest.skip("needs a usable cuda backend to reach the placement check")
    with pytest.raises(ValueError, match="needs a CUDA tensor"):
        pack_sign_bits(np.ones((2, 2), np.float32), backend="cuda")


def test_cpu_backend_refuses_device_data():
    x = torch.ones(2, 2, device="meta")
    with pytest.raises(ValueError, match="cannot take a torch array on meta"):
        pack_sign_bits(x)


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


# ---- the compiled module validates on its own: no call from Python can crash it -----------


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
    codes = np.zeros((2, 2), np.uint64)
    with pytest.raises(ValueError, match="needs 1"):
        _C.hamming_gram(codes, 64, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="units must be >= 1"):
        _C.hamming_gram(codes, 0, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="must have shape"):
        _C.hamming_gram(codes, 100, np.empty((3, 3), np.int64))
    with pytest.raises(TypeError, match="codes has dtype"):
        _C.hamming_gram(codes.astype(np.int64), 100, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="number of threads"):
        _C.set_num_threads(0)


def test_available_reports_every_op_and_backend():
    table = ops.available()
    assert set(table) >= {"pack_sign_bits", "hamming_gram"}
    for row in table.values():
        assert list(row) == list(ops.BACKENDS)
        assert row["reference"].usable
        assert row["cpu"].usable
        for status in row.values():
            assert status.usable or status.reason

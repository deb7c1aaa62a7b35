"""The op registry (airda.ops._registry, _arrays): backend choice and forcing, AIRDA_BACKEND, the
errors of an unusable or misplaced backend, what inputs it refuses, and ops.available(); shown
on pack_sign_bits, and the table on every registered op."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airda import ops
from airda.ops import pack_sign_bits, pack_sign_bits_reference
from tests.ops.test_pack_sign_bits import activations


def test_describe_refuses_what_it_cannot_describe_faithfully():
    from airda.ops._arrays import as_array, describe

    with pytest.raises(TypeError, match=r"x has non-native byte order \(dtype >f4\)"):
        describe(np.ones((2, 2), ">f4"), "x")
    converted, info = as_array(np.ones((2, 2), ">f4"), "x")
    assert converted.dtype.isnative
    assert info.dtype == "float32"
    with pytest.raises(TypeError, match=r"x is a torch tensor of layout torch\.sparse_coo"):
        pack_sign_bits(torch.ones(2, 3).to_sparse())


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


def test_available_reports_every_op_and_backend():
    table = ops.available()
    assert set(table) >= {"pack_sign_bits", "hamming_gram"}
    for row in table.values():
        assert list(row) == list(ops.BACKENDS)
        assert row["reference"].usable
        assert row["cpu"].usable
        for status in row.values():
            assert status.usable or status.reason

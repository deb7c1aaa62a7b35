"""The compiled module: imports without a GPU, links no libtorch, fails CUDA calls cleanly."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

import pytest

from airda import ops


def c_module():
    return importlib.import_module("airda._C")


def test_compiled_module_imports_and_reports_its_build():
    info = c_module().build_info()
    assert info["openmp"] >= 201107  # OpenMP 3.1 or newer
    assert c_module().omp_max_threads() >= 1
    assert isinstance(info["cuda_built"], bool)
    with pytest.raises(ValueError, match="number of threads"):
        c_module().set_num_threads(0)


def test_compiled_module_does_not_link_libtorch():
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed: cannot list the module's dependencies")
    out = subprocess.run(
        [readelf, "-d", c_module().__file__], capture_output=True, text=True, check=True
    ).stdout
    needed = [line for line in out.splitlines() if "(NEEDED)" in line]
    assert needed, out
    assert not any("torch" in line or "c10" in line for line in needed), needed
    # The CUDA runtime is linked statically: no libcudart.so is needed at import time.
    assert not any("libcudart" in line for line in needed), needed


def test_cuda_is_built_when_a_cuda_compiler_is_present():
    if os.environ.get("AIRDA_CUDA", "AUTO").upper() == "OFF":
        pytest.skip("AIRDA_CUDA=OFF: CUDA was not asked for")
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH: AIRDA_CUDA=AUTO builds without CUDA")
    info = c_module().build_info()
    assert info["cuda_built"]
    archs = info["cuda_architectures"].split(",")
    assert archs
    if "CUDAARCHS" not in os.environ:
        assert archs == ["80", "90"]


def test_cuda_calls_without_a_gpu_raise_runtime_error():
    c = c_module()
    if ops.backend_status("cuda").usable:
        pytest.skip("a usable GPU is present: nothing to check about missing drivers")
    with pytest.raises(RuntimeError, match=r"cuda|CUDA"):
        c.cuda_device_count()
    # With no driver the kernels fail before touching the (dummy) pointers.
    with pytest.raises(RuntimeError, match=r"cuda|CUDA"):
        c.cuda_pack_sign_bits(16, "float32", 1, 1, 16, 0, 0)
    with pytest.raises(RuntimeError, match=r"cuda|CUDA"):
        c.cuda_hamming_gram(16, 1, 1, 16, 0, 0)
    status = ops.backend_status("cuda")
    assert not status.usable
    assert "CUDA" in status.reason or "cuda" in status.reason


def test_triton_kernels_are_importable_as_airda_kernels():
    pytest.importorskip("triton", reason="triton is not installed")
    pack = importlib.import_module("airda.kernels.pack_sign_bits")
    gram = importlib.import_module("airda.kernels.hamming_gram")
    assert callable(pack.pack_sign_bits_triton)
    assert callable(gram.hamming_gram_triton)


def test_the_kernels_package_is_light():
    """``airda.kernels`` (what airda.ops imports to ask whether Triton interprets) loads no
    triton or torch: only its submodules do."""
    code = (
        "import sys, airda.kernels as k; k.interpreting(); "
        "print(sorted(m for m in ('triton', 'torch', 'airda.ops') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_old_sign_codes_kernel_module_is_a_deprecated_alias():
    pytest.importorskip("triton", reason="triton is not installed")
    sys.modules.pop("airda.kernels.sign_codes", None)
    with pytest.warns(DeprecationWarning, match="airda.kernels.pack_sign_bits"):
        module = importlib.import_module("airda.kernels.sign_codes")
    gram = importlib.import_module("airda.kernels.hamming_gram")
    assert module.hamming_gram_triton is gram.hamming_gram_triton

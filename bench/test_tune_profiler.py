"""The profiler's hot path: taking 2,000 samples of a short compiled function.

Baseline: the same samples taken by a Python loop around the ctypes function (what a
pure-Python tuner does: Kernel Tuner's C backend calls the kernel through ctypes). airda's
compiled loop releases the GIL and has no per-call Python cost, so for a ~1 us function its
measurement overhead is what this ratio shows. Also: a racing round over 32 variants.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
import pytest

from airda._native import native, native_error
from airda.codeopt import Arg, compile_variant, race

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")

SRC = "void f(float* x, int n) { for (int i = 0; i < n; ++i) x[i] = x[i] * 0.5f + SHIFT; }"
N_SAMPLES = 2000


def _load(shift: int = 1):
    args = [Arg("float32", (256,), "ones", out=True), Arg("int32", value=256)]
    lib = ctypes.CDLL(str(compile_variant(SRC, "f", args, defines={"SHIFT": shift})))
    x = np.ones(256, np.float32)
    n = np.array(256, np.int32)
    ptrs = (ctypes.c_void_p * 2)(x.ctypes.data, n.ctypes.data)
    return lib, ptrs, (x, n)


@pytest.mark.parametrize("which", ["python", "compiled"])
def test_bench_sampling_compiled_vs_python_loop(timed, which):
    lib, ptrs, _keep = _load()
    fn = ctypes.cast(lib.airda_call, ctypes.c_void_p).value
    addr = ctypes.addressof(ptrs)
    call = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn)
    group = f"profiler: {N_SAMPLES} samples of a ~0.1 us C function"

    def python_loop():
        clock = time.perf_counter
        out = np.empty(N_SAMPLES)
        for i in range(N_SAMPLES):
            t0 = clock()
            call(addr)
            out[i] = clock() - t0
        return out

    def compiled():
        return np.asarray(native().sample_variant(fn, addr, N_SAMPLES, 1, False, 0)["samples"])

    if which == "python":
        samples = timed(group, "python ctypes loop", python_loop, baseline=True)
    else:
        samples = timed(group, "airda compiled loop", compiled)
    assert len(samples) == N_SAMPLES
    assert np.all(samples >= 0)


def test_bench_race_32_variants(timed):
    loaded = {s: _load(s) for s in range(32)}

    def samplers():
        out = {}
        for s, (lib, ptrs, _) in loaded.items():
            fn = ctypes.cast(lib.airda_call, ctypes.c_void_p).value
            addr = ctypes.addressof(ptrs)
            out[s] = lambda n, fn=fn, addr=addr: native().sample_variant(
                fn, addr, n, 100, False, 0
            )["samples"]
        return out

    result = timed(
        "racing: 32 equivalent variants (a tie)", "race", lambda: race(samplers(), max_rounds=5)
    )
    assert result.winner in loaded

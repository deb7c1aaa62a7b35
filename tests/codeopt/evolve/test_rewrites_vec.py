"""The vector-exp and AVX+FMA rewrites (``vexp(j)``, ``isa(avx,fma)``) and the legality test of
``#pragma omp simd``: proposed where they apply, not where they must not, and the outputs stay
the reference's within a few ulp (compiled and run)."""

from __future__ import annotations

import ctypes
import math
import platform
import random

import numpy as np
import pytest

from airda.codeopt.cvariants import compile_variant, parse_arg
from airda.codeopt.evolve._rewrites import rewrites
from airda.codeopt.evolve._rewrites_c_vec import EXP_SOURCE
from tests.codeopt.evolve.test_rewrites import BENCH, _all, _run_many

SOFTMAX = (BENCH / "softmax.c").read_text()
SOFTMAX_ARGS = ["float64[13*37]:zeros:out", "float64[13*37]", "int32=13", "int32=37"]
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _close(ref: np.ndarray, got: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0, err_msg=what)


def test_airda_exp_is_within_3_ulp_of_libm_and_keeps_the_special_values():
    src = (
        '#include <math.h>\n#pragma GCC optimize("no-trapping-math")\n'
        + EXP_SOURCE
        + """
void both(double *a, double *b, const double *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) b[i] = airda_exp(x[i]);
    for (int i = 0; i < n; i++) a[i] = exp(x[i]);
}"""
    )
    rng = np.random.default_rng(5)
    special = [0.0, -0.0, math.inf, -math.inf, math.nan, 709.78, 709.79, 710.0, 1e300, -1e300]
    special += [-708.3, -708.5, -744.4, -745.1, -745.2, -746.0, 5e-324, -5e-324, 1e-300]
    x = np.concatenate([rng.uniform(-745, 709.7, 20000), rng.uniform(-1, 1, 5000), special])
    n = len(x)
    args = [
        parse_arg(a)
        for a in (f"float64[{n}]:out", f"float64[{n}]:out", f"float64[{n}]", f"int32={n}")
    ]
    lib = ctypes.CDLL(str(compile_variant(src, "both", args, flags="-O2 -fopenmp")))
    a, b = np.zeros(n), np.zeros(n)
    P = ctypes.POINTER(ctypes.c_double)
    lib.both(a.ctypes.data_as(P), b.ctypes.data_as(P), x.ctypes.data_as(P), ctypes.c_int(n))
    normal = np.isfinite(a) & (a >= np.finfo(float).tiny)
    ulp = np.abs(a[normal] - b[normal]) / np.spacing(a[normal])
    assert ulp.max() <= 3.0, ulp.max()
    sub = np.isfinite(a) & ~normal
    assert np.all(np.abs(a[sub] - b[sub]) <= 5e-324)
    other = ~np.isfinite(a)
    np.testing.assert_array_equal(a[other], b[other])  # inf and nan alike (nan == nan here)


def test_vexp_on_softmax_keeps_the_outputs_and_composes():
    found = _all(SOFTMAX, "c", "softmax")
    assert "vexp(j)" in found
    v = found["vexp(j)"].source
    assert "#pragma omp simd reduction(+:s)" in v
    assert v.count("double airda_exp(double x)") == 1
    # a second generation on top: the helper is not added twice, the loops keep working
    rng = random.Random(2)
    second = rewrites(v, "c", "softmax", rng, limit=10)
    assert second
    assert all(r.source.count("double airda_exp(double x)") == 1 for r in second)
    progs = [v] + [r.source for r in second]
    outs = _run_many(
        [(SOFTMAX, "softmax", SOFTMAX_ARGS)] + [(p, "softmax", SOFTMAX_ARGS) for p in progs]
    )
    for name, got in zip(["vexp(j)"] + [r.name for r in second], outs[1:], strict=True):
        _close(outs[0][0], got[0], name)


@pytest.mark.skipif(not X86, reason="the AVX+FMA clone is offered on x86-64 only")
def test_isa_clone_dispatches_and_follows_later_rewrites():
    v = _all(SOFTMAX, "c", "softmax")["vexp(j)"].source
    isa = _all(v, "c", "softmax")["isa(avx,fma)"].source
    assert '#pragma GCC target("avx,fma")' in isa
    assert "__builtin_cpu_supports" in isa
    # offered once
    assert "isa(avx,fma)" not in _all(isa, "c", "softmax")
    # a later rewrite of the entry's loops reaches the clone too
    later = _all(isa, "c", "softmax")
    r = later["reciprocal(j: s)"].source
    clone = r[r.index("softmax_avx_fma(double") : r.index("#pragma GCC pop_options")]
    assert "inv" in clone
    assert "__builtin_cpu_supports" not in clone
    rs = later["restrict"].source
    assert "softmax_avx_fma(double * restrict y" in rs
    outs = _run_many(
        [(SOFTMAX, "softmax", SOFTMAX_ARGS)] + [(p, "softmax", SOFTMAX_ARGS) for p in (isa, r, rs)]
    )
    for got in outs[1:]:
        np.testing.assert_allclose(got[0], outs[0][0], rtol=1e-13, atol=0)


NO_SIMD = [
    # a loop-carried array element (the prefix sum)
    """#include <math.h>
    void f(double *y, const double *x, int n) {
        for (int i = 1; i < n; i++) y[i] = y[i - 1] + exp(x[i]);
    }""",
    # a shared scalar that is not a sum (the running maximum)
    """#include <math.h>
    void f(double *y, const double *x, int n) {
        double m = 0.0;
        for (int i = 0; i < n; i++) m = m > exp(x[i]) ? m : exp(x[i]);
        y[0] = m;
    }""",
    # the same element written by every iteration
    """#include <math.h>
    void f(double *y, const double *x, int n) {
        for (int i = 0; i < n; i++) y[0] = exp(x[i]);
    }""",
]


@pytest.mark.parametrize("src", NO_SIMD)
def test_no_omp_simd_where_iterations_depend_on_each_other(src):
    found = _all(src, "c", "f")
    assert found
    assert not [k for k in found if k.startswith(("vexp(", "pragma(omp simd"))], sorted(found)


def test_vexp_is_refused_when_the_file_has_its_own_airda_exp():
    src = """#include <math.h>
    double airda_exp(double x) { return x; }
    void f(double *y, const double *x, int n) {
        for (int i = 0; i < n; i++) y[i] = exp(x[i]);
    }"""
    assert "vexp(i)" not in _all(src, "c", "f")


def test_vexp_on_a_float_loop_matches():
    src = """#include <math.h>
    void g(float *y, const float *x, int n) {
        for (int i = 0; i < n; i++) y[i] = exp(x[i]) * 0.5f;
    }"""
    found = _all(src, "c", "g")
    assert "vexp(i)" in found
    args = ["float32[77]:zeros:out", "float32[77]", "int32=77"]
    outs = _run_many([(src, "g", args), (found["vexp(i)"].source, "g", args)])
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-6, atol=0)


def test_isa_is_not_offered_without_a_loop_or_on_variadic_functions():
    flat = "void f(double *y, const double *x) { y[0] = x[0] * 2.0; }"
    assert "isa(avx,fma)" not in _all(flat, "c", "f")
    variadic = "void f(double *y, int n, ...) { for (int i = 0; i < n; i++) y[i] = 1.0; }"
    assert "isa(avx,fma)" not in _all(variadic, "c", "f")


@pytest.mark.skipif(not X86, reason="the AVX+FMA clone is offered on x86-64 only")
def test_isa_clone_of_a_cpp_kernel_compiles_and_returns_its_value():
    src = """extern "C" double dot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
"""
    found = rewrites(src, "cpp", "dot", random.Random(0), limit=1000)
    isa = next(r for r in found if r.name == "isa(avx,fma)").source
    assert "return dot_avx_fma(a, b, n);" in isa
    assert 'extern "C" double dot(' in isa
    args = [parse_arg(a) for a in ("float64[101]", "float64[101]", "int32=101")]
    for code in (src, isa):
        lib = ctypes.CDLL(str(compile_variant(code, "dot", args, cpp=True)))
        lib.dot.restype = ctypes.c_double
        a = np.linspace(0.0, 1.0, 101)
        P = ctypes.POINTER(ctypes.c_double)
        got = lib.dot(a.ctypes.data_as(P), a.ctypes.data_as(P), ctypes.c_int(101))
        assert got == pytest.approx(float(a @ a), rel=1e-13)

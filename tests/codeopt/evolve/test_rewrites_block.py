"""Loop fission through a buffer (``fission(i, b, 64|256)``): proposed where a loop's body
computes a scalar and then uses it in memory updates, never where the split could change the
result; the rewritten kernels compile and give the reference's outputs (trip counts that are
not a multiple of the block, empty loops, values outside the histogram's range)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from airda.codeopt.evolve._rewrites import rewrites
from tests.codeopt.evolve.test_rewrites import BENCH, _all, _run_many

HIST = (BENCH / "histogram.c").read_text()


def _hist_args(n: int, lo: float = 0.1, hi: float = 0.9) -> list[str]:
    # inputs are uniform in [0, 1): with [lo, hi) narrower, both clamps are exercised
    return [
        "int32[13]:zeros:out",
        f"float64[{max(n, 1)}]",
        f"int32={n}",
        "int32=13",
        f"float64={lo}",
        f"float64={hi}",
    ]


SCALE = """
void scale_scatter(double *y, const double *x, const int *idx, int n, double a) {
    for (int i = 0; i < n; i++) {
        double v = a * x[i] + 1.0;
        if (v > 2.0)
            v = 2.0;
        else
            v = v * 0.5;
        y[idx[i]] += v;
    }
}
"""
SCALE_ARGS = [
    "float64[37]:zeros:out",
    "float64[301]",
    "int32[301]:zeros",
    "int32=301",
    "float64=1.7",
]

NOT_LEGAL = [
    # the prefix reads the array the rest writes
    """void f(double *y, int n) {
        for (int i = 0; i < n; i++) { double t = y[i] * 2.0; y[i + 1] = t; }
    }""",
    # the rest uses two of the prefix's scalars
    """void f(double *y, const double *x, int n) {
        for (int i = 0; i < n; i++) { double t = x[i] * 2.0; double u = t + 1.0; y[i] = t * u; }
    }""",
    # the start is not a constant
    """void f(int *h, const double *x, int k, int n) {
        for (int i = k; i < n; i++) { int b = (int)(x[i] * 4.0); h[b & 3] += 1; }
    }""",
    # the rest writes no array (a sum: nothing for the split to gain)
    """void f(double *out, const double *x, int n) {
        double s = 0.0;
        for (int i = 0; i < n; i++) { double t = x[i] * 2.0; s += t; }
        out[0] = s;
    }""",
    # a call that is not a pure math function
    """int g(int);
    void f(int *h, const double *x, int n) {
        for (int i = 0; i < n; i++) { int b = (int)(x[i] * 4.0); h[g(b)] += 1; }
    }""",
    # a write through a pointer (its target unknown)
    """void f(int *h, const double *x, int n) {
        for (int i = 0; i < n; i++) { int b = (int)(x[i] * 4.0); *(h + (b & 3)) += 1; }
    }""",
    # the prefix reads a scalar the rest assigns
    """void f(int *h, const double *x, int n) {
        int k = 0;
        for (int i = 0; i < n; i++) { int b = (int)(x[i] * 4.0) + k; h[b & 3] += 1; k = b & 1; }
    }""",
    # a static local in the prefix
    """void f(int *h, const double *x, int n) {
        for (int i = 0; i < n; i++) { static int b = 1; h[b & 3] += 1; }
    }""",
    # a loop whose variable lives on after it
    """void f(int *h, const double *x, int n) {
        int i;
        for (i = 0; i < n; i++) { int b = (int)(x[i] * 4.0); h[b & 3] += 1; }
        h[0] += i;
    }""",
]


def test_fission_is_proposed_on_the_histogram_with_both_blocks():
    found = _all(HIST, "c", "histogram")
    assert {"fission(i, b, 64)", "fission(i, b, 256)"} <= set(found)
    src = found["fission(i, b, 64)"].source
    assert "#pragma omp simd" in src
    assert "b_buf[64]" in src


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 999])
def test_fission_keeps_the_histogram_exactly(n):
    found = _all(HIST, "c", "histogram")
    names = ["fission(i, b, 64)", "fission(i, b, 256)"]
    args = _hist_args(n)
    outs = _run_many(
        [(HIST, "histogram", args)] + [(found[k].source, "histogram", args) for k in names]
    )
    for name, got in zip(names, outs[1:], strict=True):
        np.testing.assert_array_equal(got[0], outs[0][0], err_msg=name)
    assert outs[0][0].sum() == n


def test_fission_with_an_else_branch_and_an_indirect_write_keeps_the_outputs():
    found = _all(SCALE, "c", "scale_scatter")
    names = sorted(k for k in found if k.startswith("fission("))
    assert names == ["fission(i, v, 256)", "fission(i, v, 64)"]
    outs = _run_many(
        [(SCALE, "scale_scatter", SCALE_ARGS)]
        + [(found[k].source, "scale_scatter", SCALE_ARGS) for k in names]
    )
    for name, got in zip(names, outs[1:], strict=True):
        np.testing.assert_allclose(got[0], outs[0][0], rtol=0, atol=0, err_msg=name)


@pytest.mark.parametrize("src", NOT_LEGAL)
def test_fission_is_not_proposed_where_the_split_could_change_the_result(src):
    found = _all(src, "c", "f")
    assert found, "the kernel should still have other rewrites"
    assert not [k for k in found if k.startswith("fission(")], sorted(found)


def test_rewrites_of_a_fission_compose_and_stay_exact():
    """A second and third generation (reciprocal, unroll, restrict, pragmas...) on the split
    loops: every program compiles and matches the reference (reciprocal within rounding:
    compared on bins away from the edges by the chosen range)."""
    first = _all(HIST, "c", "histogram")["fission(i, b, 64)"]
    rng = random.Random(3)
    second = rewrites(first.source, "c", "histogram", rng, limit=12)
    assert second
    third = [r3 for r in second[:3] for r3 in rewrites(r.source, "c", "histogram", rng, limit=3)]
    progs = second + third
    args = _hist_args(777, 0.0, 1.0)
    outs = _run_many([(HIST, "histogram", args)] + [(r.source, "histogram", args) for r in progs])
    for r, got in zip(progs, outs[1:], strict=True):
        np.testing.assert_array_equal(got[0], outs[0][0], err_msg=r.name)

"""The deterministic rewrites of code evolution: every transform keeps the program's outputs
(compiled and run against the original on random inputs), bad code gives no rewrites, the same
seed gives the same rewrites, and rewrites of rewrites work."""

from __future__ import annotations

import ctypes
import doctest
import random
import time
from pathlib import Path

import numpy as np
import pytest

from airda.codeopt.cvariants import compile_variants, parse_arg
from airda.codeopt.evolve._evaluate import openmp_flags
from airda.codeopt.evolve._rewrites import Rewrite, rewrites

BENCH = Path(__file__).resolve().parents[3] / "bench" / "evolve"

MATMUL = """
void matmul(double *c, const double *a, const double *b, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}
"""
MATMUL_ARGS = ["float64[13*13]:zeros:out", "float64[13*13]", "float64[13*13]", "int32=13"]

TRANSPOSE = """
void transpose(double *out, const double *in, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            out[j * n + i] = in[i * n + j];
}
"""
TRANSPOSE_ARGS = ["float64[37*37]:zeros:out", "float64[37*37]", "int32=37"]

PREFIX = """
void prefix(double *out, const double *x, int n) {
    out[0] = x[0];
    for (int i = 1; i < n; i++)
        out[i] = out[i - 1] + x[i];
}
"""
PREFIX_ARGS = ["float64[101]:zeros:out", "float64[101]", "int32=101"]

HIST = """
#include <math.h>
#define CLAMP(v, lo, hi) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))
void hist(int *h, const double *x, int n, int nb, double lo, double hi) {
    for (int i = 0; i < n; i++) {
        int b = (int)((x[i] - lo) / (hi - lo) * nb);
        h[CLAMP(b, 0, nb - 1)] += 1;
    }
}
"""
HIST_ARGS = [
    "int32[16]:zeros:out",
    "float64[999]",
    "int32=999",
    "int32=16",
    "float64=0.0",
    "float64=1.0",
]

DOT = """
void dot(double *out, const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    out[0] = s;
}
"""
DOT_ARGS = ["float64[1]:zeros:out", "float64[203]", "float64[203]", "int32=203"]

ROWSUM = """
void rowsum(double *y, const double *x, int r, int c) {
    for (int i = 0; i < r; i++) {
        y[i] = 0.0;
        for (int j = 0; j < c; j++) y[i] += x[i * c + j] / (double) c;
    }
}
"""
ROWSUM_ARGS = ["float64[9]:zeros:out", "float64[9*21]", "int32=9", "int32=21"]


def _run_many(jobs: list[tuple[str, str, list[str]]]) -> list[list[np.ndarray]]:
    """Compile each (source, entry, args) and run it once on the same random inputs; the
    output arrays of each."""
    parsed = [[parse_arg(a) for a in args] for _, _, args in jobs]
    libs = compile_variants(
        [
            {"source": s, "entry": e, "args": p, "flags": openmp_flags(s, "-O1")}
            for (s, e, _), p in zip(jobs, parsed, strict=True)
        ]
    )
    outs = []
    for lib, args in zip(libs, parsed, strict=True):
        if isinstance(lib, Exception):
            raise lib
        dll = ctypes.CDLL(str(lib))
        vals = [a.make(np.random.default_rng(0)) for a in args]
        ptrs = (ctypes.c_void_p * len(vals))(*[v.ctypes.data for v in vals])
        dll.airda_call(ptrs)
        outs.append([v for v, a in zip(vals, args, strict=True) if a.out])
    return outs


def _all(source: str, language: str, entry: str, parallel: bool = False) -> dict[str, Rewrite]:
    found = rewrites(source, language, entry, random.Random(0), limit=1000, parallel=parallel)
    return {r.name: r for r in found}


def _assert_same(ref: list[np.ndarray], got: list[np.ndarray], what: str) -> None:
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=what)


CASES = [
    (MATMUL, "matmul", MATMUL_ARGS, ["interchange(j, k)", "interchange(i, j)", "tile(i, j, 16)"]),
    (MATMUL, "matmul", MATMUL_ARGS, ["unroll(k, 4)", "accumulators(s, 4)", "hoist(j: i * n)"]),
    (MATMUL, "matmul", MATMUL_ARGS, ["restrict", "pragma(GCC ivdep)", "pragma(GCC unroll 4)"]),
    (TRANSPOSE, "transpose", TRANSPOSE_ARGS, ["tile(i, j, 16)", "tile(i, j, 32)", "unroll(j, 8)"]),
    (PREFIX, "prefix", PREFIX_ARGS, ["carry(out, i)", "unroll(i, 2)"]),
    (HIST, "hist", HIST_ARGS, ["reciprocal(i: hi - lo)", "unroll(i, 4)"]),
    (DOT, "dot", DOT_ARGS, ["accumulators(s, 8)", "pragma(omp simd reduction(+:s))"]),
    (ROWSUM, "rowsum", ROWSUM_ARGS, ["scalarize(j: y[i])", "reciprocal(j: (double) c)"]),
]


@pytest.mark.parametrize(("src", "entry", "args", "names"), CASES)
def test_each_c_transform_keeps_the_outputs(src, entry, args, names):
    found = _all(src, "c", entry)
    missing = [n for n in names if n not in found]
    assert not missing, f"{missing} not among {sorted(found)}"
    outs = _run_many([(src, entry, args)] + [(found[n].source, entry, args) for n in names])
    for name, got in zip(names, outs[1:], strict=True):
        _assert_same(outs[0], got, name)


STENCIL_ARGS = ["float64[23*23]:zeros:out", "float64[23*23]", "int32=23"]
SOFTMAX_ARGS = ["float64[13*37]:zeros:out", "float64[13*37]", "int32=13", "int32=37"]
OUTER_SUM = """
void colsum(double *out, const double *x, int r, int c) {
    double t = 0.0;
    for (int i = 0; i < r; i++) {
        for (int j = 0; j < c; j++)
            out[i * c + j] = 2.0 * x[i * c + j];
        t += x[i * c];
    }
    out[0] += t;
}
"""
OUTER_ARGS = ["float64[17*19]:zeros:out", "float64[17*19]", "int32=17", "int32=19"]


@pytest.mark.parametrize(
    ("src", "entry", "args", "name", "pragma"),
    [
        (MATMUL, "matmul", MATMUL_ARGS, "parallel(i)", "omp parallel for\n"),
        (
            (BENCH / "histogram.c").read_text(),
            "histogram",
            [
                "int32[13]:zeros:out",
                "float64[999]",
                "int32=999",
                "int32=13",
                "float64=0.1",
                "float64=0.9",
            ],
            "parallel(i)",
            "reduction(+:hist[:nbins])",
        ),
        (OUTER_SUM, "colsum", OUTER_ARGS, "parallel(i)", "reduction(+:t)"),
        (
            (BENCH / "stencil.c").read_text(),
            "stencil",
            STENCIL_ARGS,
            "parallel(i)",
            "omp parallel for\n",
        ),
        ((BENCH / "softmax.c").read_text(), "softmax", SOFTMAX_ARGS, "parallel(r)", "for\n"),
    ],
)
def test_parallel_for_keeps_the_outputs_on_two_threads(src, entry, args, name, pragma):
    """``#pragma omp parallel for`` (with a reduction clause where the loop sums into a scalar
    or increments an array) is proposed only with ``parallel=True``, compiles with -fopenmp
    and gives the reference's outputs on the machine's threads."""
    assert not [n for n in _all(src, "c", entry) if n.startswith("parallel")]
    found = _all(src, "c", entry, parallel=True)
    assert name in found, sorted(found)
    assert pragma in found[name].source
    ref, got = _run_many([(src, entry, args), (found[name].source, entry, args)])
    _assert_same(ref, got, name)


@pytest.mark.parametrize(
    ("src", "entry"),
    [
        # every i writes out[0]: not a sum, so no reduction clause makes it safe
        (
            "void f(double *out, const double *x, int n) { for (int i = 0; i < n; i++)"
            " out[0] = x[i]; }",
            "f",
        ),
        # a running value carried from one iteration to the next
        (
            "void g(double *out, const double *x, int n) { double t = 0; for (int i = 0; i < n;"
            " i++) { t = t * 0.5 + x[i]; out[i] = t; } }",
            "g",
        ),
        # out[i] reads out[i - 1], written by the previous iteration
        (PREFIX, "prefix"),
        # an incremented array with no loop that gives its length
        (HIST, "hist"),
    ],
)
def test_parallel_for_is_refused_where_iterations_interfere(src, entry):
    assert not [n for n in _all(src, "c", entry, parallel=True) if n.startswith("parallel")]


def test_an_omp_loop_is_not_unrolled_into_a_loop_without_init():
    par = _all(MATMUL, "c", "matmul", parallel=True)["parallel(i)"]
    again = _all(par.source, "c", "matmul", parallel=True)
    assert "unroll(i, 2)" not in again
    assert "parallel(i)" not in again  # one pragma per loop
    assert any(n.startswith("interchange") or n.startswith("tile") for n in again)


def test_interchange_makes_the_matmul_loop_order_i_k_j():
    r = _all(MATMUL, "c", "matmul")["interchange(j, k)"]
    body = r.source[r.source.index("{") :]
    assert body.index("int k") < body.index("+=")
    assert "s +=" not in body
    assert "stored in place" in r.description


@pytest.mark.parametrize(
    ("src", "entry", "forbidden"),
    [
        # a wavefront: a[i][j] reads a[i-1][j+1], which the interchanged order has not written
        (
            "void w(double *a, int n) { for (int i = 1; i < n; i++)"
            " for (int j = 0; j < n - 1; j++) a[i * n + j] = a[(i - 1) * n + j + 1] + 1.0; }",
            "w",
            ("interchange", "tile"),
        ),
        # one element written by many (i, j): c[i + j]
        (
            "void d(double *c, const double *x, int n) { for (int i = 0; i < n; i++)"
            " for (int j = 0; j < n; j++) c[i + j] = x[i * n + j]; }",
            "d",
            ("interchange", "tile"),
        ),
        # a scalar carried across both loops
        (
            "void s(double *o, const double *x, int n) { double t = 0; for (int i = 0; i < n; i++)"
            " for (int j = 0; j < n; j++) { t = t * 0.5 + x[j * n + i]; o[i * n + j] = t; } }",
            "s",
            ("interchange", "tile"),
        ),
        # a loop that leaves early is not unrolled
        (
            "void f(double *o, int n) { for (int i = 0; i < n; i++) { if (o[i] < 0) break;"
            " o[i] = 1.0; } }",
            "f",
            ("unroll", "pragma"),
        ),
        # a loop that writes its own bound
        (
            "void g(double *o, int n) { for (int i = 0; i < n; i++) { o[i] = 1.0; n--; } }",
            "g",
            ("unroll", "pragma", "accumulators"),
        ),
    ],
)
def test_illegal_transforms_are_not_proposed(src, entry, forbidden):
    names = list(_all(src, "c", entry))
    bad = [n for n in names if n.startswith(forbidden)]
    assert not bad, bad


@pytest.mark.parametrize(
    ("source", "language"),
    [
        ("", "c"),
        ("   \n", "c"),
        ("template <class T> T twice(T x) { return 2 * x; }", "cpp"),
        ("void f(double *x, int n) { for (int i = 0; i < n; i++) x[i] = ; }", "c"),
        ("void f(double *x, int n) {\n#ifdef X\n x[0] = 1;\n#endif\n}", "c"),
        ("\x00\xff garbage {{{{", "c"),
        ("void f(int n) { " + "{" * 3000 + "}" * 3000 + " }", "c"),
        ("def f(x):\n    return [", "python"),
        ("def f(x):\n" + "    " + "(" * 5000 + ")" * 5000, "python"),
        ("void f(double *x) { x[0] = 1.0; }", "fortran"),
        ("int x;", "c"),
    ],
)
def test_bad_code_gives_no_rewrites(source, language):
    assert rewrites(source, language, "f", random.Random(0)) == []


def test_no_entry_no_rewrites_and_limit_zero():
    assert rewrites(MATMUL, "c", "nosuch", random.Random(0)) == []
    assert rewrites(MATMUL, "c", "matmul", random.Random(0), limit=0) == []
    assert rewrites(None, "c", "matmul", random.Random(0)) == []  # type: ignore[arg-type]


def test_same_seed_same_rewrites_spread_over_kinds():
    a = rewrites(MATMUL, "c", "matmul", random.Random(7), limit=6)
    b = rewrites(MATMUL, "c", "matmul", random.Random(7), limit=6)
    assert [(r.name, r.source) for r in a] == [(r.name, r.source) for r in b]
    assert len(a) == 6
    assert len({r.source for r in a}) == 6
    assert all(isinstance(r, Rewrite) and r.description for r in a)
    kinds = {r.name.split("(")[0] for r in a}
    assert len(kinds) == 6  # one of each of six kinds before a second of any
    others = {
        tuple(r.name for r in rewrites(MATMUL, "c", "matmul", random.Random(s), limit=6))
        for s in range(5)
    }
    assert len(others) > 1


def test_rewrites_of_rewrites_compose_and_stay_correct():
    chain = ["interchange(j, k)", "hoist(j: a[(i * n) + k], i * n)", "unroll(j, 4)", "restrict"]
    src, done = MATMUL, []
    for step in chain:
        found = _all(src, "c", "matmul")
        name = next((n for n in found if n == step or n.startswith(step.split(":")[0])), None)
        assert name is not None, f"after {done}: no {step} among {sorted(found)}"
        src = found[name].source
        done.append(name)
    assert "restrict" in src
    assert "hoisted" in src
    ref, got = _run_many([(MATMUL, "matmul", MATMUL_ARGS), (src, "matmul", MATMUL_ARGS)])
    _assert_same(ref, got, " > ".join(done))


def test_preprocessor_lines_survive_and_comments_go():
    found = _all(HIST, "c", "hist")
    r = found["unroll(i, 2)"]
    assert r.source.startswith("#include <math.h>\n#define CLAMP(v, lo, hi)")
    src = "// a comment\n/* another */\n" + DOT
    assert "comment" not in _all(src, "c", "dot")["restrict"].source


def test_cpp_sources_keep_extern_c_and_use_gnu_restrict():
    src = 'extern "C" void scale(double *__restrict__ y, const double *x, int n) {\n'
    src += "    for (int i = 0; i < n; i++) y[i] = 2.0 * x[i];\n}\n"
    found = _all(src, "cpp", "scale")
    r = found["restrict"]
    assert 'extern "C" void scale' in r.source
    assert "__restrict__" in r.source
    assert " restrict " not in r.source
    args = [parse_arg(a) for a in ["float64[17]:zeros:out", "float64[17]", "int32=17"]]
    libs = compile_variants(
        [
            {"source": s, "entry": "scale", "args": args, "cpp": True, "flags": "-O1"}
            for s in (src, r.source, found["unroll(i, 4)"].source)
        ]
    )
    assert not [x for x in libs if isinstance(x, Exception)]


@pytest.mark.parametrize("kernel", ["matmul", "transpose", "stencil", "histogram", "prefix_sum",
                                    "softmax"])  # fmt: skip
def test_bench_kernels_two_generations_of_rewrites_stay_correct(kernel):
    from airda.codeopt.evolve._spec import EvolveSpec

    spec = EvolveSpec.from_toml(BENCH / f"{kernel}.toml")
    args = [a.describe() for a in spec.quick_args]
    src = Path(spec.source).read_text() if isinstance(spec.source, Path) else spec.source
    rng = random.Random(1)
    first = rewrites(src, "c", kernel, rng, limit=4)
    assert first, kernel
    second = [r2 for r in first[:2] for r2 in rewrites(r.source, "c", kernel, rng, limit=2)]
    jobs = [(src, kernel, args)] + [(r.source, kernel, args) for r in first + second]
    outs = _run_many(jobs)
    for r, got in zip(first + second, outs[1:], strict=True):
        for a, b in zip(outs[0], got, strict=True):
            np.testing.assert_allclose(b, a, rtol=spec.rtol, atol=spec.atol, err_msg=r.name)


# --- Python ---------------------------------------------------------------------------------

PY = '''
"""A docstring stays first."""
import math


def kern(out, a, b, n):
    for i in range(n):
        out[i] = math.exp(a[i]) * 2.0 + b[i] / 3.0 - abs(a[i] - 0.5)
    s = 0.0
    for i in range(n):
        s += a[i] * b[i]
    t = 0.0
    for i in range(1, n):
        t = t + a[i] * 0.5
    m = -1.0
    for i in range(n):
        m = max(m, b[i])
    return s + t + m
'''

PY_MATMUL = """
import numpy as np


def mm(c, a, b, n, m, p):
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for k in range(p):
                acc += a[i][k] * b[k][j]
            c[i][j] = acc
"""

PY_HOIST = """
import math


def f(out, x, n, scale):
    for i in range(n):
        for j in range(n):
            out[i * n + j] = math.sqrt(x[i * n + j]) * (scale * 2.0) + x[i]
"""


def _exec(src: str, name: str):
    ns: dict = {}
    exec(compile(src, "<test>", "exec"), ns)
    return ns[name]


def _py_inputs(n: int = 300):
    rng = np.random.default_rng(3)
    return np.zeros(n), rng.random(n), rng.random(n), n


def test_python_vectorise_and_reductions_keep_the_result():
    found = _all(PY, "python", "kern")
    assert {"vectorize(i)", "reduce(i: np.dot)", "reduce(i: np.sum)", "reduce(i: max)"} <= set(
        found
    )
    ref_out, a, b, n = _py_inputs()
    ref = _exec(PY, "kern")(ref_out, a, b, n)
    for name in ("vectorize(i)", "reduce(i: np.dot)", "reduce(i: np.sum)", "reduce(i: max)"):
        src = found[name].source
        assert src.startswith('"""A docstring stays first."""')
        assert "import numpy as np" in src
        out = np.zeros(n)
        got = _exec(src, "kern")(out, a, b, n)
        np.testing.assert_allclose(got, ref, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(out, ref_out, rtol=1e-12, err_msg=name)
    assert "np.exp(a[:n])" in found["vectorize(i)"].source  # math. -> np. in the slice form


def test_python_all_rewrites_compose_to_a_loop_free_kernel_that_is_faster():
    src = PY
    for _ in range(4):
        nxt = [r for r in rewrites(src, "python", "kern", random.Random(0), limit=50)]
        nxt = [r for r in nxt if r.name.startswith(("vectorize", "reduce"))]
        if not nxt:
            break
        src = nxt[0].source
    assert "for " not in src, src
    ref_f, new_f = _exec(PY, "kern"), _exec(src, "kern")
    out_ref, a, b, n = _py_inputs(4000)
    out_new = np.zeros(n)
    np.testing.assert_allclose(new_f(out_new, a, b, n), ref_f(out_ref, a, b, n), rtol=1e-9)
    np.testing.assert_allclose(out_new, out_ref, rtol=1e-12)

    def best(f, out):
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            f(out, a, b, n)
            ts.append(time.perf_counter() - t0)
        return min(ts)

    assert best(new_f, out_new) * 5 < best(ref_f, out_ref)


def test_python_matmul_nest_becomes_one_product():
    found = _all(PY_MATMUL, "python", "mm")
    r = found["matmul(i, j, k)"]
    assert "@" in r.source
    assert "for " not in r.source
    rng = np.random.default_rng(0)
    a, b = rng.random((7, 5)), rng.random((5, 9))
    c_ref, c_new = np.zeros((7, 9)), np.zeros((7, 9))
    _exec(PY_MATMUL, "mm")(c_ref, a, b, 7, 9, 5)
    _exec(r.source, "mm")(c_new, a, b, 7, 9, 5)
    np.testing.assert_allclose(c_new, c_ref, rtol=1e-12)


def test_python_hoist_keeps_the_result_and_guards_an_empty_loop():
    found = _all(PY_HOIST, "python", "f")
    hoists = [n for n in found if n.startswith("hoist(j:")]
    assert hoists, sorted(found)
    r = found[hoists[0]]
    assert "math.sqrt" in r.name
    assert "scale * 2.0" in r.name
    rng = np.random.default_rng(0)
    x = rng.random(36)
    ref, got = np.zeros(36), np.zeros(36)
    _exec(PY_HOIST, "f")(ref, x, 6, 1.5)
    _exec(r.source, "f")(got, x, 6, 1.5)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    _exec(r.source, "f")(np.zeros(0), np.zeros(0), 0, 1.5)  # no IndexError on an empty range


def test_python_loops_with_dependences_are_not_vectorised():
    src = "def p(out, x, n):\n    for i in range(1, n):\n        out[i] = out[i - 1] + x[i]\n"
    assert not [r for r in rewrites(src, "python", "p", random.Random(0), limit=50)
                if r.name.startswith("vectorize")]  # fmt: skip
    src = "def q(out, x, n):\n    for i in range(n):\n        out[i] = x[i] * i\n"
    assert rewrites(src, "python", "q", random.Random(0)) == []
    src = "np = 3\ndef r(out, x, n):\n    for i in range(n):\n        out[i] = x[i] * 2\n"
    assert rewrites(src, "python", "r", random.Random(0)) == []


def test_tiles_of_tiles_and_loops_inside_tiles_stay_correct():
    first = _all(TRANSPOSE, "c", "transpose")["tile(i, j, 16)"].source
    found = _all(first, "c", "transpose")
    # the loops inside a tile (bounded by a ?:) are canonical loops again
    names = ["tile(i, j, 64)", "unroll(j, 4)", "interchange(i, j)"]
    assert set(names) <= set(found), sorted(found)
    second = found["tile(i, j, 64)"].source
    third = _all(second, "c", "transpose")["unroll(j, 2)"].source
    jobs = [(TRANSPOSE, "transpose", TRANSPOSE_ARGS)]
    jobs += [(s, "transpose", TRANSPOSE_ARGS) for s in (first, second, third)]
    jobs += [(found[n].source, "transpose", TRANSPOSE_ARGS) for n in names]
    outs = _run_many(jobs)
    for got in outs[1:]:
        _assert_same(outs[0], got, "tiles")


def test_inlined_fmax_and_fmin_keep_the_nan_rules():
    src = (
        "#include <math.h>\n"
        "void mm(double *o, double *p, const double *a, const double *b, int n) {\n"
        "    for (int i = 0; i < n; i++) { o[i] = fmax(a[i], b[i]); p[i] = fmin(a[i], b[i]); }\n"
        "}\n"
    )
    r = _all(src, "c", "mm")["inline(fmax/fmin)"]
    assert "fmax" not in r.source.split("\n", 1)[1]
    args = ["float64[6]:zeros:out", "float64[6]:zeros:out", "float64[6]", "float64[6]", "int32=6"]
    parsed = [parse_arg(x) for x in args]
    libs = compile_variants(
        [{"source": s, "entry": "mm", "args": parsed, "flags": "-O2"} for s in (src, r.source)]
    )
    nan = float("nan")
    a = np.array([1.0, nan, 2.0, nan, -1.0, 0.0])
    b = np.array([2.0, 3.0, nan, nan, -5.0, 0.0])
    outs = []
    for lib in libs:
        o, p = np.zeros(6), np.zeros(6)
        vals = [o, p, a, b, np.array(6, np.int32)]
        ptrs = (ctypes.c_void_p * 5)(*[v.ctypes.data for v in vals])
        ctypes.CDLL(str(lib)).airda_call(ptrs)
        outs.append((o, p))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])


def test_the_docstring_example_runs():
    from airda.codeopt.evolve import _rewrites

    result = doctest.testmod(_rewrites, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

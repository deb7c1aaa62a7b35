"""The cascade: each kind of bad candidate rejected at its stage with its reason, in the
sandbox; Python candidates and the score metric; the prompt's profile hint."""

from __future__ import annotations

import pytest

from airda._native import native_error
from airda.codeopt.evolve import EvolveSpec, profile_hint
from airda.codeopt.evolve._evaluate import Evaluator
from tests.codeopt.evolve._kernels import BROKEN, CRASH, FAST, HANG, REFERENCE, WRONG, psum_spec

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")


@pytest.fixture(scope="module")
def ev():
    with Evaluator(psum_spec(timeout=0.5)) as ev:
        ref = ev.reference()
        assert ref.ok
        assert ref.value > 0
        yield ev


def test_compile_error(ev):
    out = ev.evaluate(BROKEN)
    assert (out.ok, out.stage) == (False, "compile")
    assert out.error.startswith("compile error: candidate.c:")
    assert "expected" in out.error


def test_wrong_answer_caught_by_the_quick_test(ev):
    out = ev.evaluate(WRONG)
    assert (out.ok, out.stage) == (False, "quick")
    assert out.error.startswith("wrong output 0: max abs error")
    assert "at index 0" in out.error


def test_segfault(ev):
    out = ev.evaluate(CRASH)
    assert (out.ok, out.stage) == (False, "quick")
    assert "SIGSEGV" in out.error


def test_infinite_loop_times_out(ev):
    out = ev.evaluate(HANG)
    assert (out.ok, out.stage) == (False, "quick")
    assert out.error.startswith("timeout: a call ran over 0.5 s")


def test_wrong_only_on_the_full_inputs(ev):
    code = FAST.replace("y[i] = s;", "y[i] = (i == 399) ? 0.0 : s;")
    out = ev.evaluate(code)
    assert (out.ok, out.stage) == (False, "full")
    assert "at index 399" in out.error


def test_correct_and_faster_then_final_race(ev):
    out = ev.evaluate(FAST)
    assert out.ok
    assert out.stage == "done"
    assert out.value < ev.ref_profile["median_s"]
    final = ev.final_speedup(FAST)
    lo, hi = final["ci"]
    assert final["speedup"] > 5
    assert lo <= final["speedup"] <= hi


def test_final_race_has_an_interval_however_short_its_time():
    """A final race whose time budget one round spends (a loaded machine) still takes enough
    pairs for the median's interval: a number, never NaN (the study stores it as JSON)."""
    with Evaluator(psum_spec(final_time_s=1e-9)) as ev2:
        assert ev2.reference().ok
        final = ev2.final_speedup(FAST)
    assert final["samples"] >= 20
    lo, hi = final["ci"]
    assert lo is not None
    assert hi is not None
    assert lo <= final["speedup"] <= hi


def test_a_failing_reference_is_an_error():
    spec = EvolveSpec("psum", "c", CRASH, "psum", psum_spec().args)
    with Evaluator(spec) as ev2, pytest.raises(ValueError, match="fails at stage 'full': crash"):
        ev2.reference()


def test_user_verify_that_raises_is_a_failure_of_the_candidate():
    def verify(outs, expected):
        if outs[0][0] > 100:
            raise RuntimeError("boom")
        return True

    spec = psum_spec(verify=verify, quick_args=None)
    with Evaluator(spec) as ev2:
        ev2.reference()
        out = ev2.evaluate(FAST.replace("y[i] = s;", "y[i] = s + 1000;"))
    assert (out.ok, out.stage) == (False, "full")
    assert out.error == "verify failed: RuntimeError: boom"


PY_REF = """def total(xs):
    out = []
    s = 0.0
    for x in xs:
        s = 0.0 + s + x
        out.append(s)
    return out
"""


def make_inputs():
    return ([float(i % 7) for i in range(300)],)


def test_python_candidates_in_the_sandbox():
    spec = EvolveSpec("tot", "python", PY_REF, "total", inputs=make_inputs,
                      quick_inputs=lambda: ([1.0, 2.0],), max_time_s=0.02,
                      timeout=0.5)  # fmt: skip
    with Evaluator(spec) as ev2:
        assert ev2.reference().ok
        fast = "import itertools\n\ndef total(xs):\n    return list(itertools.accumulate(xs))\n"
        assert ev2.evaluate(fast).ok
        assert ev2.evaluate("def total(xs):\n    return xs\n").stage == "quick"
        syntax = ev2.evaluate("def total(xs:\n    pass\n")
        assert syntax.stage == "compile"
        assert "SyntaxError" in syntax.error
        hang = ev2.evaluate("def total(xs):\n    while True:\n        pass\n")
        assert hang.stage == "quick"
        assert hang.error.startswith("timeout")
        crash = ev2.evaluate("import os\n\ndef total(xs):\n    os.abort()\n")
        assert crash.stage == "quick"
        assert "SIGABRT" in crash.error
        raises = ev2.evaluate("def total(xs):\n    return 1 / 0\n")
        assert raises.stage == "quick"
        assert "ZeroDivisionError" in raises.error


def density(outputs):
    return float(sum(outputs[0]) / len(outputs[0]))


def test_score_metric():
    spec = EvolveSpec(
        "dens", "c", "void fill(double* y, int n) { for (int i = 0; i < n; ++i) y[i] = 0.5; }",
        "fill", ["float64[16]:zeros:out", "int32=16"], metric="score", score=density,
        verify=lambda outs, ref: bool((outs[0] <= 1).all()) or "a value above 1",
    )  # fmt: skip
    assert spec.direction == "maximize"
    with Evaluator(spec) as ev2:
        assert ev2.reference().value == 0.5
        better = ev2.evaluate(spec.source.replace("0.5", "0.75"))
        assert better.ok
        assert better.value == 0.75
        over = ev2.evaluate(spec.source.replace("0.5", "1.5"))
        assert over.stage == "full"
        assert over.error == "verify failed: a value above 1"


def test_profile_hint_names_the_deepest_nest():
    assert "depth 2, lines 2-6" in profile_hint(REFERENCE, "c", "psum", 1e-4)
    assert profile_hint(FAST, "c", "psum").startswith("the deepest loop nest (depth 1")
    assert "depth 1, lines 4-6" in profile_hint(PY_REF, "python", "total")
    assert profile_hint("void psum(void) {}", "c", "psum") == "no loops found"


PY_TWO_LOOPS = """def total(xs):
    out = [0.0] * len(xs)
    for i in range(len(xs)):
        out[i] = sum(xs[: i + 1])
    return out
"""


def test_measured_line_profile_of_python_and_c_programs(ev):
    """The evaluator's line profile: Python's hot line from a sampling thread, C's from the
    SIGPROF sampler; cached per program; None for a program that crashes."""
    spec = EvolveSpec("tot", "python", PY_REF, "total", inputs=make_inputs, timeout=2.0)
    with Evaluator(spec) as py:
        line = py.line_profile(PY_TWO_LOOPS, seconds=0.2)
        assert line.startswith("sampled"), line
        assert "line 4 `out[i] = sum(xs[: i + 1])`" in line.split(",")[0], line
        assert py.line_profile(PY_TWO_LOOPS) is line  # cached
    c_line = ev.line_profile(ev.spec.source, seconds=0.1)
    assert c_line.startswith("sampled"), c_line
    crash = "void psum(double* y, const double* x, int n) { *(volatile int*)0 = 1; }"
    assert ev.line_profile(crash) is None

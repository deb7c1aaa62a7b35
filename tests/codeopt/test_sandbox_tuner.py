"""Sandboxed C variants: crashes, hangs and wrong outputs become failed trials with their
reason while the search goes on; a second run is answered from storage."""

from __future__ import annotations

import numpy as np
import pytest

from airda._native import native_error
from airda.codeopt import (
    Arg,
    CompileError,
    Sandbox,
    VariantFailed,
    compile_variant,
    compile_variants,
    parse_arg,
    trampoline,
    tune_c,
)
from airda.trial import TrialState

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")

# MODE 0: correct; 1: null write; 2: abort(); 3: infinite loop; 4: wrong output; 5: printf.
KERNEL = """
#include <stdio.h>
#include <stdlib.h>
void twice(float* y, const float* x, int n) {
    if (MODE == 1) *(volatile int*)0 = 1;
    if (MODE == 2) abort();
    if (MODE == 3) { volatile int spin = 1; while (spin) {} }
    if (MODE == 5) printf("noise on stdout\\n");
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i] + (MODE == 4 && i == 3 ? 0.25f : 0.0f);
}
"""
REF = "void twice(float* y, const float* x, int n) { for (int i = 0; i < n; ++i) y[i] = 2*x[i]; }"
ARGS = [Arg("float32", (37,), "zeros", out=True), Arg("float32", (37,)), Arg("int32", value=37)]


def test_parse_arg_forms_and_errors():
    a = parse_arg("float64[M, K+1]:randn:out", {"M": 3, "K": 4})
    assert (a.dtype, a.shape, a.init, a.out) == ("float64", (3, 5), "randn", True)
    assert parse_arg("int64=N*2", {"N": 5}).value == 10
    assert parse_arg("float32=0.5").value == 0.5
    with pytest.raises(ValueError, match="unknown name 'Q'"):
        parse_arg("float32[Q]")
    with pytest.raises(ValueError, match="cannot parse"):
        parse_arg("nonsense")
    with pytest.raises(ValueError, match="dtype"):
        parse_arg("complex64[4]")
    with pytest.raises(ValueError, match="unknown option"):
        parse_arg("float32[4]:bogus")
    with pytest.raises(ValueError, match="unsupported"):
        parse_arg("int32=__import__('os')")
    with pytest.raises(ValueError, match="C identifier"):
        trampoline("f; g", [])


def test_compile_cache_and_errors():
    lib = compile_variant(REF, "twice", ARGS)
    assert lib.exists()
    assert compile_variant(REF, "twice", ARGS) == lib  # cached by content
    assert compile_variant(REF, "twice", ARGS, flags="-O1") != lib
    with pytest.raises(CompileError, match="compile failed"):
        compile_variant("void twice( {", "twice", ARGS)
    out = compile_variants(
        [
            {"source": REF, "entry": "twice", "args": ARGS, "flags": f}
            for f in ("-O0", "-O1", "-Onope")
        ],
        workers=2,
    )
    assert out[0].exists()
    assert out[1].exists()
    assert isinstance(out[2], CompileError)


@pytest.mark.parametrize(
    ("mode", "kind", "reason"),
    [(1, "crash", "SIGSEGV"), (2, "crash", "SIGABRT"), (3, "timeout", "timeout")],
)
def test_sandbox_records_crashes_and_hangs(mode, kind, reason):
    good = compile_variant(KERNEL, "twice", ARGS, defines={"MODE": 0})
    bad = compile_variant(KERNEL, "twice", ARGS, defines={"MODE": mode})
    with Sandbox(ARGS, timeout=0.5) as box:
        first = box.run("good", good)
        with pytest.raises(VariantFailed) as info:
            box.run("bad", bad)
        assert info.value.kind == kind
        assert reason in info.value.reason
        # The worker restarts and the arguments are rebuilt identically.
        again = box.run("good", good)
        np.testing.assert_array_equal(first[0], again[0])
        assert box.restarts == 1


def test_sandbox_exit_is_a_crash_with_its_code():
    lib = compile_variant(
        "#include <stdlib.h>\nvoid twice(float* y, const float* x, int n) { exit(3); }",
        "twice",
        ARGS,
    )
    with Sandbox(ARGS) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("exit", lib)
        assert info.value.kind == "crash"
        assert "exited with code 3" in info.value.reason


def test_sandbox_variant_stdout_does_not_corrupt_replies():
    lib = compile_variant(KERNEL, "twice", ARGS, defines={"MODE": 5})
    with Sandbox(ARGS) as box:
        out = box.run("p", lib)
        assert out[0].shape == (37,)


def test_sandbox_missing_symbol_is_an_error_not_a_crash(tmp_path):
    with Sandbox(ARGS) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("x", tmp_path / "missing.so")
        assert info.value.kind == "error"
        assert "OSError" in info.value.reason


def test_tune_c_records_each_failure_and_finds_the_correct_variant():
    res = tune_c(
        KERNEL,
        "twice",
        ARGS,
        params={"MODE": [0, 1, 2, 3, 4]},
        flags=["-O1", "-Onope"],
        reference=REF,
        strategy="grid",
        variant_timeout=0.5,
        max_time_s=0.01,
    )
    assert res.best_params == {"MODE": 0, "flags": "-O1"}
    by = {(t.params["MODE"], t.params["flags"]): t for t in res.study.trials}
    assert len(by) == 10
    assert by[(0, "-O1")].state is TrialState.COMPLETE
    assert "SIGSEGV" in by[(1, "-O1")].error
    assert "SIGABRT" in by[(2, "-O1")].error
    assert "timeout" in by[(3, "-O1")].error
    wrong = by[(4, "-O1")]
    assert wrong.state is TrialState.FAIL
    assert wrong.user_attrs["failure"] == "wrong"
    assert "max abs error 0.25 at index 3" in wrong.error
    for mode in range(5):
        assert by[(mode, "-Onope")].user_attrs["failure"] == "compile"
    assert res.n_complete == 1
    assert res.n_failed == 9
    assert res.speedup is not None
    assert res.speedup > 0
    table = res.table()
    assert "SIGSEGV" in table
    assert "FAILED" in table


def test_tune_c_second_run_is_answered_from_storage(tmp_path):
    db = tmp_path / "tune.db"
    kw = dict(
        params={"MODE": [0, 4]},
        flags=["-O1", "-O2"],
        reference=REF,
        storage=str(db),
        strategy="random",
        max_time_s=0.01,
        seed=3,
    )
    first = tune_c(KERNEL, "twice", ARGS, **kw)
    assert first.evaluated == 4
    assert first.n_complete == 2
    assert first.n_failed == 2
    second = tune_c(KERNEL, "twice", ARGS, **kw)
    assert second.evaluated == 0
    assert second.best_params == first.best_params
    assert second.reference == first.reference
    assert second.study.name == first.study.name
    # A changed kernel is another key: another study.
    third = tune_c(KERNEL + "\n", "twice", ARGS, **{**kw, "params": {"MODE": [0]}})
    assert third.study.name != first.study.name
    assert third.evaluated == 2


def test_tune_c_budget_resumes_and_races(tmp_path):
    src = """
    void spin(float* y, int n) {
        for (int r = 0; r < WORK; ++r)
            for (int i = 0; i < n; ++i) y[i] = y[i] * 0.5f + 1.0f;
    }"""
    args = [Arg("float32", (64,), "zeros", out=True), Arg("int32", value=64)]
    # A final race of the 2 fastest: a variant clearly behind the second fastest so far is
    # stopped within its measurement (raced out).
    kw = dict(
        params={"WORK": [1, 2, 30, 31]},
        flags=["-O1"],
        storage=str(tmp_path / "s.db"),
        strategy="grid",
        max_time_s=0.05,
        final_race=2,
        verify=lambda out, ref: bool(np.all(np.isfinite(out[0]))),
    )
    part = tune_c(src, "spin", args, budget=3, **kw)
    assert part.evaluated == 3
    rest = tune_c(src, "spin", args, **kw)
    assert rest.evaluated == 1
    assert rest.n_complete == 4
    assert rest.best_params["WORK"] == 1
    final = rest.study.user_attrs["final_race"]  # the finalists raced side by side
    assert len(final["numbers"]) == 2
    winner = next(t for t in rest.study.trials if t.number == final["winner"])
    assert winner.params["WORK"] == 1
    assert rest.best["final_race"] is True
    raced = [r for r in rest.rows if r["raced_out"]]
    assert raced
    assert all(r["params"]["WORK"] >= 30 for r in raced)


def test_tune_c_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="output"):
        tune_c(REF, "twice", [Arg("int32", value=1)])
    with pytest.raises(ValueError, match="budget"):
        tune_c(REF, "twice", ARGS, budget=0)
    with pytest.raises(ValueError, match="reference does not compile"):
        tune_c(REF, "twice", ARGS, reference="void twice( {", max_time_s=0.01)
    with pytest.raises(ValueError, match="flags is empty"):
        tune_c(REF, "twice", ARGS, flags=[])


def test_tune_c_races_the_reference_beside_the_finalists(tmp_path):
    # The reference does 40x the work of the best variant: raced in the same interleaved
    # rounds, the speed-up comes from measurements taken side by side.
    src = """
    void spin(float* y, int n) {
        for (int r = 0; r < WORK; ++r)
            for (int i = 0; i < n; ++i) y[i] = y[i] * 0.5f + 1.0f;
    }"""
    args = [Arg("float32", (256,), "zeros", out=True), Arg("int32", value=256)]
    ref = src.replace("WORK", "40")
    kw = dict(
        params={"WORK": [1, 2]},
        flags=["-O1"],
        reference=ref,
        storage=str(tmp_path / "s.db"),
        strategy="grid",
        max_time_s=0.05,
        verify=lambda out, expected: bool(np.all(np.isfinite(out[0]))),
    )
    res = tune_c(src, "spin", args, **kw)
    final = res.study.user_attrs["final_race"]
    assert "reference" in final
    assert res.reference["final_race"] is True
    assert res.reference["median_s"] == final["reference"]["median_s"]
    assert res.speedup > 5
    again = tune_c(src, "spin", args, **kw)  # answered from storage: the same race
    assert again.evaluated == 0
    assert again.speedup == res.speedup


def test_tune_c_without_final_race_times_the_reference_alone():
    src = """
    void spin(float* y, int n) {
        for (int r = 0; r < WORK; ++r)
            for (int i = 0; i < n; ++i) y[i] = y[i] * 0.5f + 1.0f;
    }"""
    args = [Arg("float32", (256,), "zeros", out=True), Arg("int32", value=256)]
    res = tune_c(
        src,
        "spin",
        args,
        params={"WORK": [1, 2]},
        flags=["-O1"],
        reference=src.replace("WORK", "40"),
        strategy="grid",
        max_time_s=0.02,
        final_race=0,
        verify=lambda out, expected: bool(np.all(np.isfinite(out[0]))),
    )
    assert "final_race" not in res.study.user_attrs
    assert res.reference is not None
    assert not res.reference.get("final_race")
    assert res.speedup > 5

"""Triton specs: a module of @triton.jit kernels and its launcher, evolved like a C or Python
program. Without a GPU the kernels run under Triton's interpreter on the CPU (the sandbox
worker gets TRITON_INTERPRET=1), with tiny shapes (n = 37 against BLOCK 16, so the masks
matter); the result says `interpreted`. On a GPU the same tests run on the GPU."""

from __future__ import annotations

import doctest
import importlib
import os
import random
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch", reason="Triton specs need torch")
pytest.importorskip("triton", reason="Triton specs need triton")

from airda.codeopt.evolve import (
    Context,
    EvolveSpec,
    LMProposer,
    Program,
    RewriteProposer,
    apply_reply,
    evolve,
    profile_hint,
)
from airda.codeopt.evolve._evaluate import Evaluator
from airda.codeopt.evolve._rewrites import rewrites

ADD = """import triton
import triton.language as tl


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    y = tl.load(y_ptr + offs, mask=m)
    tl.store(out_ptr + offs, x + y, mask=m)


def add(x, y, out, n):
    BLOCK = 16
    add_kernel[(triton.cdiv(n, BLOCK),)](x, y, out, n, BLOCK=BLOCK, num_warps=4)
"""

ROWSUM = """import torch
import triton
import triton.language as tl


@triton.jit
def rowsum_kernel(x_ptr, out_ptr, cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * cols + offs, mask=offs < cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(x, axis=0))


def rowsum(x):
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    rowsum_kernel[(x.shape[0],)](x, out, x.shape[1], BLOCK=64)
    return out
"""


def add_spec(**kw):
    base = dict(
        args=["float32[N]", "float32[N]", "float32[N]:zeros:out", "int32=N"],
        quick_args=["float32[5]", "float32[5]", "float32[5]:zeros:out", "int32=5"],
        defines={"N": 37},
        max_time_s=0.02,
        final_time_s=0.05,
        timeout=20.0,  # the first launch of a kernel also compiles it (on a GPU)
    )
    return EvolveSpec("add", "triton", ADD, "add", **(base | kw))


def rows():
    return (np.random.default_rng(0).random((7, 37)).astype(np.float32),)


@pytest.fixture(scope="module")
def ev():
    with Evaluator(add_spec()) as ev:
        ref = ev.reference()
        assert ref.ok, ref.error
        yield ev


def test_the_reference_passes_and_says_where_it_ran(ev):
    assert ev.ref_profile["median_s"] > 0
    assert ev.interpreted == ev.spec.interpreted
    if ev.interpreted:
        assert ev.ref_profile["interpreted"] is True
        assert ev.device == "cpu"
    [out] = ev.expected
    assert out.shape == (37,)
    assert np.all(out > 0)  # every element written: the last, masked block too


def test_a_wrong_kernel_fails_at_quick(ev):
    out = ev.evaluate(ADD.replace("x + y", "x - y"))
    assert (out.ok, out.stage) == (False, "quick")
    assert out.error.startswith("wrong output 0: max abs error")


def test_a_triton_compile_error_is_reported_at_compile_with_its_reason(ev):
    out = ev.evaluate(ADD.replace("tl.arange(0, BLOCK)", "tl.arange(0, 37)"))
    assert (out.ok, out.stage) == (False, "compile")
    assert out.error.startswith("compile error: triton: ")
    assert "power of 2" in out.error
    assert "tl.arange(0, 37)" in out.error  # the kernel's line


def test_an_import_error_and_a_missing_kernel_fail_at_compile(ev):
    out = ev.evaluate(ADD.replace("import triton\n", "import triton\nimport no_such_module\n", 1))
    assert (out.ok, out.stage) == (False, "compile")
    assert "importing the module: ModuleNotFoundError" in out.error
    out = ev.evaluate("import torch\n\ndef add(x, y, out, n):\n    out.copy_(x + y)\n")
    assert (out.ok, out.stage) == (False, "compile")
    assert "no @triton.jit kernel" in out.error


def test_a_write_past_the_end_is_caught(ev):
    out = ev.evaluate(ADD.replace("m = offs < n", "m = offs < n + 3"))
    assert (out.ok, out.stage) == (False, "quick")
    assert "out-of-bounds write" in out.error
    assert "argument 2" in out.error
    assert ev.evaluate(ADD.replace("BLOCK = 16", "BLOCK = 64")).ok  # fresh workers after it


def test_a_block_rewrite_changes_block_and_passes(ev):
    found = {r.name: r for r in rewrites(ADD, "triton", "add", random.Random(0), limit=20)}
    assert "block(BLOCK, 16->32)" in found
    assert "num_warps(add_kernel, 4->8)" in found
    assert "num_stages(add_kernel, +2)" in found
    assert "block(BLOCK, 16->8)" not in found  # below MIN_BLOCK
    doubled = found["block(BLOCK, 16->32)"].source
    assert "BLOCK = 32" in doubled
    assert doubled.replace("BLOCK = 32", "BLOCK = 16") == ADD  # only the literal changed
    out = ev.evaluate(doubled)
    assert out.ok, out.error
    assert out.value > 0


def test_rewrites_of_launch_literals_and_defaults():
    src = ROWSUM.replace("BLOCK=64)", "BLOCK=64, num_stages=5)")
    names = {r.name for r in rewrites(src, "triton", "rowsum", random.Random(0), limit=20)}
    assert {"block(BLOCK, 64->32)", "block(BLOCK, 64->128)", "num_stages(rowsum_kernel, 5->4)",
            "num_warps(rowsum_kernel, +2)", "num_warps(rowsum_kernel, +8)"} <= names  # fmt: skip
    assert not any(n.startswith("num_stages(rowsum_kernel, +") for n in names)
    default = ROWSUM.replace("BLOCK: tl.constexpr", "BLOCK: tl.constexpr = 64").replace(
        ", BLOCK=64)", ")"
    )
    [r] = [r for r in rewrites(default, "triton", "rowsum", random.Random(0), limit=20)
           if r.name == "block(BLOCK, 64->128)"]  # fmt: skip
    assert "BLOCK: tl.constexpr = 128" in r.source
    assert rewrites("def f(:\n", "triton", "f", random.Random(0)) == []


def test_evolve_with_the_rewrites_records_trials_and_says_interpreted():
    spec = EvolveSpec("rowsum", "triton", ROWSUM, "rowsum", inputs=rows,
                      quick_inputs=lambda: (np.ones((2, 5), np.float32),), atol=1e-5,
                      rtol=1e-5, max_time_s=0.02, final_time_s=0.05, timeout=20.0)  # fmt: skip
    res = evolve(spec, budget=3, proposers=RewriteProposer(), islands=1, show_progress=False)
    assert res.counts["evaluated"] == 3
    assert res.counts["by_proposer"]["rewrites"]["proposed"] >= 3
    assert res.interpreted == spec.interpreted
    assert res.to_dict()["interpreted"] == spec.interpreted
    if spec.interpreted:
        assert "interpreted" in res.summary()
        assert res.reference.value > 0
    if res.final:
        assert res.final["interpreted"] == spec.interpreted


def test_spec_checks_and_toml(tmp_path):
    with pytest.raises(ValueError, match=r"no @triton\.jit kernel"):
        EvolveSpec("a", "triton", "def add(x):\n    return x\n", "add", ["float32[4]:out"])
    with pytest.raises(ValueError, match="args or inputs=, not both"):
        add_spec(inputs=rows)
    with pytest.raises(ValueError, match="quick_inputs goes with inputs"):
        add_spec(quick_inputs=rows)
    with pytest.raises(ValueError, match="threads is for C/C"):
        add_spec(threads=2)
    # no ':out': the launcher's result is the output
    plain = add_spec(args=["float32[N]", "float32[N]", "float32[N]", "int32=N"], quick_args=None)
    assert not any(a.out for a in plain.args)
    (tmp_path / "add.py").write_text(ADD)
    (tmp_path / "add.toml").write_text(
        'name = "add"\nlanguage = "triton"\nsource = "add.py"\nentry = "add"\n'
        'args = ["float32[N]", "float32[N]", "float32[N]:zeros:out", "int32=N"]\n'
        "defines = { N = 37 }\n"
    )
    spec = EvolveSpec.from_toml(tmp_path / "add.toml")
    assert (spec.language, spec.entry, spec.args[2].out) == ("triton", "add", True)
    assert spec.key() != add_spec().key()  # no quick args: another question


def test_prompt_profile_and_replies_treat_it_as_triton():
    parent = Program(0, ADD, None, -1, "reference", "", "", "", "done", True, 2e-3)
    ctx = Context(language="triton", entry="add", metric="time", reference=parent)
    lm = LMProposer(SimpleNamespace(name="stub"))
    text = lm.prompt(parent, ctx)[1]["content"]
    assert "current Triton program" in text
    assert "```python\nimport triton" in text
    assert "num_warps" in text
    hint = profile_hint(ADD, "triton", "add", 2e-3)
    assert hint.startswith("time per call 2 ms; launches add_kernel (line 16: BLOCK=16")
    reply = (
        "```python\ndef add(x, y, out, n):\n    BLOCK = 32\n"
        "    add_kernel[(triton.cdiv(n, BLOCK),)](x, y, out, n, BLOCK=BLOCK)\n```"
    )
    edit = apply_reply(reply, ADD, "triton", "add")
    assert "BLOCK = 32" in edit.code
    assert "@triton.jit" in edit.code  # the kernel kept: the launcher alone was replaced


COMPILE_FOR_SM90 = """
import importlib.util
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from airda.codeopt.evolve._triton import _kernel_message

spec = importlib.util.spec_from_file_location("bad", sys.argv[1])
bad = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bad)
src = ASTSource(fn=bad.add_kernel, signature={"x_ptr": "*fp32", "y_ptr": "*fp32",
                "out_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"}, constexprs={"BLOCK": 16})
try:
    triton.compile(src, target=GPUTarget("cuda", 90, 32))
except Exception as exc:
    print("MESSAGE " + _kernel_message(exc))
"""


def test_a_gpu_compile_error_reads_as_one_line_with_the_kernel_line(tmp_path):
    """Triton's CompilationError (what a launch on a GPU raises) as the cascade reports it,
    compiled for sm_90 without a GPU (TRITON_INTERPRET=0 in a subprocess)."""
    path = tmp_path / "bad.py"
    path.write_text(ADD.replace("tl.arange(0, BLOCK)", "tl.arange(0, 37)"))
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    proc = subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90, str(path)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("MESSAGE ")]
    assert line == (
        "MESSAGE ValueError: arange's range must be a power of 2 "
        "(kernel line `offs = tl.program_id(0) * BLOCK + tl.arange(0, 37)`)"
    )


@pytest.mark.parametrize(
    "name", ["airda.codeopt.evolve._triton", "airda.codeopt.evolve._rewrites_triton"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

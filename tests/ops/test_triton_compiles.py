"""The Triton kernels of airda compile for an H100 (sm_90) with the installed Triton, on any
machine: lowering errors (a cast, a float64 function, a hint) show here, not first on a GPU.
The interpreter that runs the other tests never lowers a kernel, so this compiles in a
subprocess with TRITON_INTERPRET=0 (no GPU needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

SCRIPT = textwrap.dedent(
    """
    import json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import airda.kernels.grouped_depthwise_conv as dw
    import airda.kernels.knn_distances as kn
    import airda.kernels.mixed_op as mo
    import airda.kernels.pair_kernel_means as pk

    target = GPUTarget("cuda", 90, 32)
    results = {}


    def compile_one(name, fn, sig, consts, div16, warps=4):
        names = list(sig)
        attrs = {(names.index(a),): [["tt.divisibility", 16]] for a in div16}
        src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
        kernel = triton.compile(src, target=target, options={"num_warps": warps})
        results[name] = len(kernel.asm["ptx"])


    for dt in ("fp32", "fp64"):
        f = "*" + dt
        compile_one(
            "mixed_op_forward " + dt, mo.mixed_op_forward_kernel,
            {"ys_ptr": f, "alpha_ptr": f, "out_ptr": f, "n": "i32", "K": "constexpr",
             "BLOCK": "constexpr"},
            {"K": 5, "BLOCK": 1024}, ["ys_ptr", "alpha_ptr", "out_ptr", "n"],
        )
        compile_one(
            "mixed_op_backward " + dt, mo.mixed_op_backward_kernel,
            {"ys_ptr": f, "alpha_ptr": f, "g_ptr": f, "grad_ys_ptr": f, "partial_ptr": "*fp64",
             "n": "i32", "K": "constexpr", "KP": "constexpr", "BLOCK": "constexpr"},
            {"K": 5, "KP": 8, "BLOCK": 1024}, ["ys_ptr", "g_ptr", "grad_ys_ptr", "n"],
        )
        compile_one(
            "mixed_op_finish " + dt, mo.mixed_op_finish_kernel,
            {"alpha_ptr": f, "partial_ptr": "*fp64", "grad_alpha_ptr": f, "programs": "i32",
             "K": "constexpr", "KP": "constexpr", "CHUNK": "constexpr"},
            {"K": 5, "KP": 8, "CHUNK": 256}, [],
        )
        sig = {"w_ptr": f, "out_ptr": f, "meta_ptr": "*i64"}
        for arg in ("g0", "H", "W", "Ho", "Wo", "BIG_KH", "BIG_KW", "CBLOCKS", "TILES_W",
                    "TILES"):
            sig[arg] = "i32"
        for arg in ("KH", "KW", "STRIDE", "ACT", "AFFINE", "BC", "BH", "BW"):
            sig[arg] = "constexpr"
        compile_one(
            "grouped_depthwise_conv " + dt, dw.grouped_depthwise_conv_kernel, sig,
            {"KH": 5, "KW": 5, "STRIDE": 2, "ACT": 3, "AFFINE": True, "BC": 4, "BH": 16,
             "BW": 16},
            ["w_ptr", "out_ptr", "meta_ptr", "W", "Wo"],
        )
    for dt in ("fp32", "fp64"):
        f = "*" + dt
        compile_one(
            "knn_topk " + dt, kn.knn_topk_kernel,
            {"q_ptr": f, "x_ptr": f, "out_d_ptr": "*fp64", "out_i_ptr": "*i64", "n": "i32",
             "m": "i32", "d": "i32", "k": "i32", "EXCLUDE_SELF": "constexpr",
             "BLOCK_Q": "constexpr", "BLOCK_M": "constexpr", "KP": "constexpr"},
            {"EXCLUDE_SELF": True, "BLOCK_Q": 32, "BLOCK_M": 64, "KP": 8},
            ["q_ptr", "x_ptr", "out_d_ptr", "out_i_ptr"],
        )
    for rbf in (False, True):
        compile_one(
            f"pair_row_sums rbf={rbf}", pk.pair_row_sums_kernel,
            {"a_ptr": "*fp64", "b_ptr": "*fp64", "out_ptr": "*fp64", "n": "i32", "m": "i32",
             "d": "i32", "gamma": "fp64", "SAME": "constexpr", "RBF": "constexpr",
             "BLOCK_N": "constexpr", "BLOCK_M": "constexpr"},
            {"SAME": True, "RBF": rbf, "BLOCK_N": 32, "BLOCK_M": 64},
            ["a_ptr", "b_ptr", "out_ptr"],
        )
    print("RESULT " + json.dumps(results))
    """
)


def test_kernels_compile_for_sm90():
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    if proc.returncode != 0 and "ptxas" in proc.stderr and "not found" in proc.stderr.lower():
        pytest.skip(f"no ptxas for the CUDA target: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    results = json.loads(line.removeprefix("RESULT "))
    assert len(results) == 12
    assert all(size > 0 for size in results.values())

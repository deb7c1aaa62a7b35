"""One-shot GPU check: every CUDA and Triton backend against its reference, then timings.

Run on a GPU machine after installing the package (this script builds nothing):

    python -m pip install --no-build-isolation --no-deps . && python bench/gpu_check.py

(``python -m pip``: on some images the ``pip`` on the PATH belongs to another Python.)

Prints PASS/FAIL per check and the timing ratios against the reference and against torch
doing the same computation; exits 1 if any check fails. Meant to finish in under 3 minutes on
one H100. Sections can be chosen, e.g. ``python bench/gpu_check.py mixed_op,evaluate_many``
(sign_codes, sign_timings, mixed_op, evaluate_many, tune, evolve, distances; default all).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from airda import ops
from airda.nas import naswot_score

FAILURES: list[str] = []
# Population sizes of the evaluate_many section (GPU_CHECK_P=32 for a short rerun).
POPULATIONS = tuple(int(p) for p in os.environ.get("GPU_CHECK_P", "8,32,128").split(","))


def report(ok: bool, what: str, detail: str = "") -> None:
    print(f"  {'PASS' if ok else 'FAIL'}  {what}{('  ' + detail) if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(what)


def checked(what: str, fn: Callable[[], tuple[bool, str]]) -> None:
    try:
        ok, detail = fn()
    except Exception as exc:  # a crash in one check must not hide the others
        ok, detail = False, f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    report(ok, what, detail)


def gpu_time(fn: Callable[[], Any], reps: int = 20, warmup: int = 3) -> float:
    """Median milliseconds of fn() by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def cpu_time(fn: Callable[[], Any], reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def activations(n: int, units: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + n * 7919 + units)
    x = torch.randn(n, units, generator=g)
    flat = x.view(-1)
    specials = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-40])
    idx = torch.randint(0, flat.numel(), (min(flat.numel(), 12),), generator=g)
    flat[idx] = specials.repeat(2)[: idx.numel()]
    return x


def torch_pack(x: torch.Tensor) -> torch.Tensor:
    """The same packing in plain torch ops: int64 weights 2^b, summed (bit 63 wraps)."""
    n, units = x.shape
    words = -(-units // 64)
    bits = torch.zeros(n, words * 64, dtype=torch.int64, device=x.device)
    bits[:, :units] = x > 0
    shifts = torch.arange(64, device=x.device, dtype=torch.int64)
    return (bits.view(n, words, 64) << shifts).sum(-1)


def torch_paper_gram(c: torch.Tensor) -> torch.Tensor:
    return c @ c.T + (1 - c) @ (1 - c).T


def cnn_1m_units() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    c_in = 3
    for _ in range(8):
        layers += [nn.Conv2d(c_in, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        c_in = 32
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)]
    return nn.Sequential(*layers).train()


def paper_naswot(model: nn.Module, x: torch.Tensor) -> float:
    k = torch.zeros(x.shape[0], x.shape[0], device=x.device)

    def hook(_m, args, _out):
        nonlocal k
        c = (args[0].reshape(args[0].shape[0], -1) > 0).float()
        k = k + c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return float(torch.linalg.slogdet(k.double())[1])


TUNE_KERNEL = """
import triton
import triton.language as tl
from airda.codeopt import autotune


def make(**options):
    @autotune(**options)
    @triton.jit
    def scale_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = offs < n
        x = tl.load(x_ptr + offs, mask=m)
        y = tl.load(y_ptr + offs, mask=m)
        tl.store(out_ptr + offs, 2.0 * x + y, mask=m)

    return scale_add_kernel
"""


def tune_checks() -> None:
    """airda.codeopt on the GPU: do_bench_gpu against triton's do_bench, CUDA-graph replay for a
    short kernel, and @autotune (search within a budget, persistent cache, correct output)."""
    import importlib.util
    import tempfile

    print("\nairda.codeopt on the GPU")
    try:
        import triton
        import triton.testing
    except ImportError:
        report(False, "tune: triton importable")
        return
    from airda.codeopt.triton_autotune import do_bench_gpu

    folder = tempfile.mkdtemp(prefix="airda-gpu-tune-")
    os.environ["AIRDA_CACHE_DIR"] = folder
    path = os.path.join(folder, "scale_add.py")
    with open(path, "w") as f:
        f.write(TUNE_KERNEL)
    spec = importlib.util.spec_from_file_location("airda_gpu_tune_kernel", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    space = {"BLOCK": [256, 512, 1024, 2048, 4096], "num_warps": [2, 4, 8]}

    def check_bench() -> tuple[bool, str]:
        n = 1 << 24
        a, b = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")

        def add() -> Any:
            return torch.add(a, b)

        ours = statistics.median(do_bench_gpu(add)) * 1e3
        theirs = triton.testing.do_bench(add)
        ratio = ours / theirs
        return 0.8 < ratio < 1.25, f"{ours:.4f} ms vs triton do_bench {theirs:.4f} ms ({ratio:.2f})"

    def check_graph() -> tuple[bool, str]:
        a = torch.rand(1024, device="cuda")

        def tiny() -> Any:
            return a.mul_(1.0)

        graph = statistics.median(do_bench_gpu(tiny, graph_below_us=50.0)) * 1e6
        plain = statistics.median(do_bench_gpu(tiny, graph_below_us=0.0)) * 1e6
        return (
            graph <= plain,
            f"graph replay {graph:.2f} us vs one launch per sample {plain:.2f} us",
        )

    def check_autotune() -> tuple[bool, str]:
        n = 10_000_019
        x, y = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")
        out = torch.empty_like(x)
        kern = module.make(space=space, key=["n"], budget=6, strategy="random")
        t0 = time.perf_counter()
        kern[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, y, out, n)
        torch.cuda.synchronize()
        tuned_s = time.perf_counter() - t0
        ok = bool(torch.allclose(out, 2 * x + y))
        study = kern.studies[(n,)]
        done = [t for t in study.trials if t.state.value == "complete"]
        best = min(t.values[0] for t in done)
        worst = max(t.values[0] for t in done)
        fresh = module.make(space=space, key=["n"], budget=6, strategy="random")
        t0 = time.perf_counter()
        fresh[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, y, out, n)
        torch.cuda.synchronize()
        cached_s = time.perf_counter() - t0
        ok = ok and len(done) == 6 and fresh.studies == {} and fresh.best == kern.best
        gbs = 3 * 4 * n / best / 1e9
        return ok, (
            f"{len(done)} of 15 configs timed in {tuned_s:.1f} s, best {kern.best[(n,)]} "
            f"{best * 1e3:.4f} ms ({gbs:.0f} GB/s), worst timed {worst * 1e3:.4f} ms; "
            f"a new autotuner answered from the cache in {cached_s:.2f} s"
        )

    checked("tune: do_bench_gpu agrees with triton.testing.do_bench", check_bench)
    checked("tune: CUDA-graph replay for a short kernel", check_graph)
    checked("tune: @autotune searches, caches and computes correctly", check_autotune)


EVOLVE_KERNEL = """
import triton
import triton.language as tl


@triton.jit
def scale_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    y = tl.load(y_ptr + offs, mask=m)
    tl.store(out_ptr + offs, 2.0 * x + y, mask=m)


def scale_add(x, y, out, n):
    BLOCK = 128
    scale_add_kernel[(triton.cdiv(n, BLOCK),)](x, y, out, n, BLOCK=BLOCK, num_warps=4)
"""


def evolve_checks() -> None:
    """airda.codeopt.evolve with a Triton spec on the GPU: a scale-add kernel starting from a
    small block (128) evolved by the deterministic rewrites alone (block size, num_warps,
    num_stages; budget 10); every candidate checked against the reference on odd sizes and
    timed by do_bench_gpu in the sandbox worker; the winner raced side by side with the
    reference. Prints the speed-up and its 95% interval."""
    print("\nairda.codeopt.evolve: a Triton kernel on the GPU")
    try:
        import triton  # noqa: F401
    except ImportError:
        report(False, "evolve: triton importable")
        return
    from airda.codeopt.evolve import EvolveSpec, RewriteProposer, evolve

    n = (1 << 24) + 17
    spec = EvolveSpec(
        "gpu-scale-add",
        "triton",
        EVOLVE_KERNEL,
        "scale_add",
        args=["float32[N]", "float32[N]", "float32[N]:zeros:out", "int32=N"],
        quick_args=["float32[1037]", "float32[1037]", "float32[1037]:zeros:out", "int32=1037"],
        defines={"N": n},
        atol=1e-6,
        rtol=1e-6,
        max_time_s=0.1,
        final_time_s=1.0,
        timeout=60.0,  # a call may include the kernel's first compile
    )

    def check() -> tuple[bool, str]:
        t0 = time.perf_counter()
        res = evolve(spec, budget=10, proposers=RewriteProposer(), islands=1, show_progress=False)
        took = time.perf_counter() - t0
        c = res.counts
        failed = ", ".join(f"{k} {v}" for k, v in sorted(c["failed"].items())) or "none"
        steps = " -> ".join(s.description.split(":")[0] for s in res.lineage[1:]) or "none"
        detail = (
            f"{c['evaluated']} candidates in {took:.0f} s, {c['passed']} passed (failed: "
            f"{failed}); reference {res.reference.value * 1e6:.1f} us per call"
        )
        if res.speedup_ci is not None and res.final:
            lo, hi = res.speedup_ci
            gbs = 3 * 4 * n / res.final["best_s"] / 1e9
            detail += (
                f"; best {res.final['best_s'] * 1e6:.1f} us ({gbs:.0f} GB/s) by {steps}: "
                f"speed-up {res.speedup:.2f}x (95% interval {lo:.2f}-{hi:.2f}x)"
            )
        else:
            detail += "; no candidate beat the reference"
        ok = not res.interpreted and c["evaluated"] == 10 and c["passed"] >= 1
        ok = ok and res.reference.value is not None and res.reference.value > 0
        if res.final:  # a winner: its race has an interval around its speed-up
            lo, hi = res.speedup_ci or (None, None)
            ok = ok and lo is not None and hi is not None and lo <= res.speedup <= hi
        return ok, detail

    checked("evolve: a Triton spec evolved on the GPU by the rewrites (budget 10)", check)


def mixed_op_checks(gpu_backends: list[str]) -> None:
    """The fused DARTS mixed operation: each GPU backend against the float64 reference, the
    autograd function by gradcheck, then forward + backward against the unfused expression."""
    from airda.nas import mixed_op

    def unfused(ys: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(alpha, 0).view(-1, *[1] * (ys.dim() - 1)) * ys).sum(0)

    print("\nmixed_op (fused DARTS mixed operation)")
    shapes = [(), (0,), (1,), (7,), (1_000_003,), (64, 16, 32, 32)]
    for backend in gpu_backends:

        def check_values(backend: str = backend) -> tuple[bool, str]:
            bad, cases = [], 0
            gen = torch.Generator().manual_seed(0)
            for k in (1, 5, 8):
                for shape in shapes:
                    ys64 = torch.randn((k, *shape), generator=gen, dtype=torch.float64) * 3
                    a64 = torch.randn(k, generator=gen, dtype=torch.float64) * 2
                    g64 = torch.randn(shape, generator=gen, dtype=torch.float64)
                    dot = (ys64.abs() * g64.abs()).reshape(k, -1).sum(1).max().item()
                    for dtype in (torch.float32, torch.float64):
                        cases += 1
                        eps = torch.finfo(dtype).eps
                        # the float64 reference of the very inputs the backend gets
                        y_in, a_in, g_in = (t.to(dtype).double() for t in (ys64, a64, g64))
                        want_out = ops.mixed_op_forward_reference(y_in, a_in)
                        want_gy, want_ga = ops.mixed_op_backward_reference(y_in, a_in, g_in)
                        ys, a, g = (t.to(dtype).cuda() for t in (ys64, a64, g64))
                        out = ops.mixed_op_forward(ys, a, backend=backend).cpu().double()
                        gy, ga = ops.mixed_op_backward(ys, a, g, backend=backend)
                        errs = [
                            (out - want_out).abs().max().item() if out.numel() else 0.0,
                            (gy.cpu().double() - want_gy).abs().max().item() if gy.numel() else 0,
                            (ga.cpu().double() - want_ga).abs().max().item(),
                        ]
                        # a few ulps of each result's scale, and of the dot products' scale
                        limits = [16 * eps * 3 * 6, 16 * eps * 6, 16 * eps * (dot + 1)]
                        if not all(e <= lim for e, lim in zip(errs, limits, strict=True)):
                            bad.append(f"K={k} S={shape} {dtype}: errors {errs}")
            return not bad, f"{cases} cases" + (f"; wrong: {bad[:3]}" if bad else "")

        def check_grad(backend: str = backend) -> tuple[bool, str]:
            ys = torch.randn(5, 3, 4, dtype=torch.float64, device="cuda", requires_grad=True)
            a = torch.randn(5, dtype=torch.float64, device="cuda", requires_grad=True)
            ok = torch.autograd.gradcheck(lambda y, al: mixed_op(y, al, backend=backend), (ys, a))
            got = torch.autograd.grad(mixed_op(ys, a, backend=backend).sum(), (ys, a))
            want = torch.autograd.grad(unfused(ys, a).sum(), (ys, a))
            close = all(torch.allclose(x, y) for x, y in zip(got, want, strict=True))
            return bool(ok and close), "float64 gradcheck + autograd of the unfused expression"

        def check_stream(backend: str = backend) -> tuple[bool, str]:
            ys = torch.randn(5, 100_000, device="cuda")
            a = torch.randn(5, device="cuda")
            want = ops.mixed_op_forward_reference(ys.double(), a.double())
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                got = ops.mixed_op_forward(ys, a, backend=backend)
            side.synchronize()
            return bool(torch.allclose(got.double(), want, atol=1e-5)), "on a side stream"

        checked(f"{backend}: mixed_op values, K in 1/5/8, awkward S, 2 dtypes", check_values)
        checked(f"{backend}: mixed_op autograd function", check_grad)
        checked(f"{backend}: mixed_op on a non-default stream", check_stream)

    # A DARTS edge (K=5, batch 64, C=16, 32x32: launch-bound on a large GPU) and a large one
    # (K=8, 256x64x32x32: memory-bound), in float32.
    for k, shape in ((5, (64, 16, 32, 32)), (8, (256, 64, 32, 32))):
        ys = torch.randn(k, *shape, device="cuda", requires_grad=True)
        alpha = torch.randn(k, device="cuda", requires_grad=True)
        g = torch.randn(shape, device="cuda")

        def fwd_bwd(fn: Callable[..., Any], ys=ys, alpha=alpha, g=g) -> Any:
            return torch.autograd.grad(fn(ys, alpha), (ys, alpha), g)

        t_unfused = gpu_time(lambda: fwd_bwd(unfused))
        # bytes the fused pair must move: ys read twice, grad_ys written, out written, g read
        moved = (3 * ys.numel() + 2 * g.numel()) * 4
        print(
            f"mixed_op fwd+bwd K={k} S={shape} float32: unfused torch autograd "
            f"{t_unfused:.3f} ms ({moved / t_unfused / 1e6:.0f} GB/s at the fused byte count)"
        )
        for backend in gpu_backends:
            t = gpu_time(lambda b=backend: fwd_bwd(lambda y, a: mixed_op(y, a, backend=b)))
            print(
                f"  {backend:<7} {t:8.3f} ms  {moved / t / 1e6:7.0f} GB/s  "
                f"{t_unfused / t:5.2f}x faster than unfused"
            )
        del ys, alpha, g
        torch.cuda.empty_cache()


def evaluate_many_checks(gpu_backends: list[str]) -> None:
    """grouped_depthwise_conv on the GPU against its reference, then evaluate_many against
    evaluate_loop (batch 64, BN recalibration on 64 inputs) for P = 32 subnets of both
    supernets, random and evolutionary populations: equal results, and the speed-up."""
    from airda.nas.evaluate import evaluate_loop, evaluate_many
    from airda.nas.supernet import ElasticSupernet, NB201Supernet

    print("\ngrouped_depthwise_conv (elastic blocks) and evaluate_many")
    if "triton" in gpu_backends:

        def check_values() -> tuple[bool, str]:
            bad, cases = [], 0
            gen = torch.Generator().manual_seed(0)
            for batch, spatial, chans, ks, (c_max, k_max) in [
                (1, (1, 1), (1,), (1,), (1, 1)),
                (3, (9, 8), (7, 2, 7), (7, 3, 5), (7, 7)),
                (2, (17,), (5, 3), (7, 3), (6, 7)),
                (8, (32, 32), (96, 144, 72, 96), (3, 5, 7, 7), (144, 7)),
            ]:
                dims = len(spatial)
                wshape = (c_max, k_max, k_max) if dims == 2 else (c_max, k_max)
                w = torch.randn(wshape, generator=gen, dtype=torch.float64)
                xs = [torch.randn((batch, c, *spatial), generator=gen, dtype=torch.float64)
                      for c in chans]  # fmt: skip
                sc = [torch.randn(c, generator=gen, dtype=torch.float64) for c in chans]
                sh = [torch.randn(c, generator=gen, dtype=torch.float64) for c in chans]
                for dtype in (torch.float32, torch.float64):
                    for stride in (1, 2):
                        for act in ("none", "relu", "hardswish"):
                            cases += 1
                            cast = [[t.to(dtype) for t in ts] for ts in (xs, sc, sh)]
                            want = ops.grouped_depthwise_conv_reference(
                                [t.double() for t in cast[0]], w.to(dtype).double(), list(ks),
                                stride=stride, scales=[t.double() for t in cast[1]],
                                shifts=[t.double() for t in cast[2]], activation=act,
                            )  # fmt: skip
                            got = ops.grouped_depthwise_conv(
                                [t.cuda() for t in cast[0]], w.to(dtype).cuda(), list(ks),
                                stride=stride, scales=[t.cuda() for t in cast[1]],
                                shifts=[t.cuda() for t in cast[2]], activation=act,
                                backend="triton",
                            )  # fmt: skip
                            eps = torch.finfo(dtype).eps
                            for a, b in zip(got, want, strict=True):
                                if not b.numel():
                                    continue
                                err = (a.cpu().double() - b).abs().max().item()
                                lim = 64 * eps * (b.abs().max().item() + k_max**2 * 16)
                                if a.shape != b.shape or not err <= lim:
                                    bad.append(f"{batch}x{spatial} {dtype} s{stride} {act}: {err}")
            return not bad, f"{cases} cases" + (f"; wrong: {bad[:3]}" if bad else "")

        checked("triton: grouped_depthwise_conv against the float64 reference", check_values)

        xs = [torch.randn(64, 144, 32, 32, device="cuda") for _ in range(32)]
        w = torch.randn(144, 7, 7, device="cuda")
        ks = [(3, 5, 7)[i % 3] for i in range(32)]

        def per_group() -> Any:
            return [
                F.conv2d(x, w[:, (7 - k) // 2 : (7 + k) // 2, (7 - k) // 2 : (7 + k) // 2]
                         .unsqueeze(1), padding=k // 2, groups=144)
                for x, k in zip(xs, ks, strict=True)
            ]  # fmt: skip

        t_torch = gpu_time(per_group, reps=10)
        t_ours = gpu_time(lambda: ops.grouped_depthwise_conv(xs, w, ks, backend="triton"), reps=10)
        print(
            f"grouped depthwise conv, 32 groups of 64x144x32x32, k in 3/5/7: 32 torch convs "
            f"{t_torch:.3f} ms, triton (one launch per kernel size) {t_ours:.3f} ms "
            f"({t_torch / t_ours:.2f}x)"
        )
        import _grouped_depthwise_conv_v1 as v1  # bench/ is this script's folder

        pairs = [(k, k) for k in ks]

        def check_first_kernel() -> tuple[bool, str]:
            got = v1.grouped_depthwise_conv_triton(xs[:3], w, pairs[:3], 1, None, None, 0)
            want = ops.grouped_depthwise_conv(xs[:3], w, ks[:3], backend="triton")
            err = max((a - b).abs().max().item() for a, b in zip(got, want, strict=True))
            return err <= 1e-3, f"max abs difference {err:.2e} on 3 groups"

        checked(
            "triton: the first grouped-conv kernel (bench A/B) matches the op", check_first_kernel
        )
        t_old = gpu_time(
            lambda: v1.grouped_depthwise_conv_triton(xs, w, pairs, 1, None, None, 0), reps=10
        )
        print(
            f"grouped depthwise conv, same shapes: first triton kernel {t_old:.3f} ms, current "
            f"{t_ours:.3f} ms "
            f"({t_old / t_ours:.2f}x)"
        )
        del xs

    # exact float32 convolutions on both sides, so that results can be compared to 1e-5
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, 32, 32, generator=gen).cuda()
        y = torch.randint(0, 10, (64,), generator=gen).cuda()
        calib = torch.randn(64, 3, 32, 32, generator=gen).cuda()
        for name, make in (("nb201 C=16 N=5", lambda: NB201Supernet(C=16, N=5)),
                           ("elastic (OFA default)", lambda: ElasticSupernet())):  # fmt: skip
            torch.manual_seed(0)
            net = make().cuda().eval()
            for kind in ("evolution", "random"):
                for pop in POPULATIONS:
                    rng = np.random.default_rng(pop)
                    if kind == "random":
                        archs = [net.sample(rng) for _ in range(pop)]
                    else:
                        archs = [net.sample(rng) for _ in range(max(1, pop // 8))]
                        while len(archs) < pop:
                            archs.append(net.mutate(archs[int(rng.integers(len(archs)))], rng))

                    def many(archs=archs, net=net, group=True) -> Any:
                        return evaluate_many(
                            net, archs, x, y, calib=calib, batch_size=64, group=group
                        )

                    def loop(archs=archs, net=net) -> Any:
                        return evaluate_loop(net, archs, x, y, calib=calib, batch_size=64)

                    what = f"evaluate_many {name} {kind} P={pop} batch 64"

                    def check(many=many, loop=loop) -> tuple[bool, str]:
                        a, b, c = many(), loop(), many(group=False)
                        diff = max(
                            max(abs(r[k] - s[k]), abs(t[k] - s[k]))
                            for r, s, t in zip(a, b, c, strict=True)
                            for k in ("loss", "accuracy")
                        )
                        return diff <= 1e-5, f"max |difference| {diff:.1e} (loss, accuracy)"

                    checked(f"{what}: equals evaluate_loop (grouped and not)", check)
                    t_loop = _wall(loop)
                    t_many = _wall(many)
                    t_flat = _wall(lambda many=many: many(group=False))
                    ratio = t_loop / t_many
                    target = ""
                    if pop == 32:
                        target = f" ({'meets' if ratio >= 3 else 'below'} the 3x target)"
                    print(
                        f"  {what}: loop {t_loop:.1f} ms, evaluate_many {t_many:.1f} ms "
                        f"{ratio:.2f}x{target}; ungrouped {t_flat:.1f} ms {t_loop / t_flat:.2f}x"
                    )
                    if pop == 32 and kind == "evolution":
                        _profile(many, f"{what}, grouped")
            del net
            torch.cuda.empty_cache()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def _profile(fn: Callable[[], Any], what: str) -> None:
    """Where one call of fn spends host and device time: the top operators."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    print(f"  profile of {what}:")
    try:
        table = prof.key_averages().table
        print(table(sort_by="self_device_time_total", row_limit=10, max_name_column_width=50))
        print(table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=50))
    except Exception as exc:  # a profiler API change must not stop the checks
        print(f"  (profile table failed: {type(exc).__name__}: {exc})")


def _wall(fn: Callable[[], Any], reps: int = 3) -> float:
    """Median wall milliseconds of fn() (host work included), synchronised, after a warm-up."""
    fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def sign_code_checks(gpu_backends: list[str]) -> None:
    """pack_sign_bits, hamming_gram and naswot_score on each GPU backend against the
    references."""
    print("\ncorrectness against the references")
    shapes = [(n, u) for n in (1, 2, 3, 65, 257) for u in (1, 63, 64, 65, 10_001)]
    dtypes = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    for backend in gpu_backends:

        def check_pack(backend: str = backend) -> tuple[bool, str]:
            bad = []
            for n, units in shapes:
                x = activations(n, units)
                for dtype in dtypes:
                    xd = x.to(dtype)
                    want = ops.pack_sign_bits_reference(xd.float().numpy())
                    got = ops.pack_sign_bits(xd.cuda(), backend=backend)
                    if not np.array_equal(got.view(torch.int64).cpu().numpy(), want.view(np.int64)):
                        bad.append(f"{n}x{units} {dtype}")
            return not bad, f"{len(shapes) * len(dtypes)} cases" + (
                f"; wrong: {bad[:5]}" if bad else ""
            )

        def check_gram(backend: str = backend) -> tuple[bool, str]:
            bad = []
            cases = [*shapes, (1000, 100_000), (130, 1_000_000)]
            for n, units in cases:
                codes = ops.pack_sign_bits_reference(activations(n, units).numpy())
                want = ops.hamming_gram(codes, units, backend="cpu")
                got = ops.hamming_gram(torch.from_numpy(codes).cuda(), units, backend=backend)
                if not np.array_equal(got.cpu().numpy(), want):
                    bad.append(f"{n}x{units}")
            return not bad, f"{len(cases)} cases" + (f"; wrong: {bad[:5]}" if bad else "")

        def check_stream(backend: str = backend) -> tuple[bool, str]:
            codes = ops.pack_sign_bits_reference(activations(300, 5000).numpy())
            want = ops.hamming_gram(codes, 5000, backend="cpu")
            side = torch.cuda.Stream()
            with torch.cuda.stream(side):
                got = ops.hamming_gram(torch.from_numpy(codes).cuda(), 5000, backend=backend)
            side.synchronize()
            return bool(np.array_equal(got.cpu().numpy(), want)), "on a side stream"

        def check_naswot(backend: str = backend) -> tuple[bool, str]:
            model, x = cnn_1m_units().cuda(), torch.randn(16, 3, 24, 24, device="cuda")
            # The reference packs the same GPU activations on the host: K is exact integers on
            # both sides, so the scores must agree to rounding.
            want = naswot_score(model, x, backend="reference")
            got = naswot_score(model, x, backend=backend)
            cpu = naswot_score(model.cpu(), x.cpu())
            ok = math.isfinite(got) and abs(got - want) <= 1e-9 * abs(want)
            return ok, f"{got:.6f} vs reference {want:.6f} (CPU forward pass: {cpu:.6f})"

        checked(f"{backend}: pack_sign_bits, awkward shapes x 4 dtypes", check_pack)
        checked(f"{backend}: hamming_gram, awkward shapes + large", check_gram)
        checked(f"{backend}: hamming_gram on a non-default stream", check_stream)
        checked(f"{backend}: naswot_score of a CNN on the GPU", check_naswot)


def sign_code_timings(gpu_backends: list[str]) -> None:
    """pack_sign_bits, hamming_gram and naswot_score timings against torch and the
    references."""
    print("\ntimings (median ms; ratios measured in this run)")
    x = torch.randn(64, 1_000_000, device="cuda")
    t_torch_pack = gpu_time(lambda: torch_pack(x))
    t_torch_gt = gpu_time(lambda: x > 0)
    t_ref = cpu_time(lambda: ops.pack_sign_bits_reference(x.cpu().numpy()), reps=2)
    print(
        f"pack_sign_bits 64 x 1e6 float32: reference (numpy, host) {t_ref:.2f}, "
        f"torch packing {t_torch_pack:.3f}, torch x>0 (bool) {t_torch_gt:.3f}"
    )
    for backend in gpu_backends:
        t = gpu_time(lambda backend=backend: ops.pack_sign_bits(x, backend=backend))
        gbs = x.numel() * 4 / t / 1e6
        print(
            f"  {backend:<7} {t:8.3f} ms  {gbs:7.0f} GB/s  {t_ref / t:8.0f}x reference  "
            f"{t_torch_pack / t:6.1f}x torch packing  {t_torch_gt / t:5.2f}x torch x>0"
        )

    for n in (128, 1024):
        for units in (10_000, 100_000, 1_000_000):
            xg = torch.randn(n, units, device="cuda")
            codes = torch_pack(xg).view(torch.uint64)
            c = (xg > 0).float()
            del xg
            t_torch = gpu_time(lambda c=c: torch_paper_gram(c), reps=10)
            t_ref = float("nan")
            if n == 128:  # the float64 host reference is minutes at N=1024
                codes_h = codes.cpu().numpy()
                t_ref = cpu_time(
                    lambda h=codes_h, u=units: ops.hamming_gram_reference(h, u), reps=1
                )
            print(
                f"hamming_gram N={n} L={units:.0e}: reference (numpy, host) {t_ref:.1f}, "
                f"torch float32 matmul (paper) {t_torch:.3f}"
            )
            for backend in gpu_backends:
                t = gpu_time(lambda b=backend, c=codes, u=units: ops.hamming_gram(c, u, backend=b))
                tops = n * n * units / t / 1e9  # unit-pairs compared per second, in 1e12
                print(
                    f"  {backend:<7} {t:8.3f} ms  {tops:6.2f} T unit-pairs/s  "
                    f"{t_ref / t:8.0f}x reference  {t_torch / t:6.1f}x torch matmul"
                )
            del c, codes
            torch.cuda.empty_cache()

    model, xb = cnn_1m_units().cuda(), torch.randn(64, 3, 64, 64, device="cuda")

    def fwd() -> Any:
        with torch.no_grad():
            return model(xb)

    t_fwd = gpu_time(fwd, reps=10)
    t_paper = gpu_time(lambda: paper_naswot(model, xb), reps=5)
    print(
        f"naswot CNN 1M ReLU units/sample, batch 64: forward {t_fwd:.2f} ms, "
        f"paper's hooks {t_paper:.2f} ms ({t_paper / t_fwd:.2f}x forward)"
    )
    for backend in gpu_backends:
        t = gpu_time(lambda backend=backend: naswot_score(model, xb, backend=backend), reps=10)
        print(
            f"  {backend:<7} {t:8.2f} ms  {t / t_fwd:5.2f}x forward  {t_paper / t:5.1f}x faster "
            "than the paper's hooks"
        )


def distance_checks(gpu_backends: list[str]) -> None:
    """knn_distances and pair_kernel_means (energy distance, MMD) on each GPU backend against
    the reference (awkward shapes, ties, exclude_self, float32), then timings against the cpu
    backend and torch.cdist + topk (which holds the n x m matrix)."""
    print("\n== distances: knn_distances, pair_kernel_means ==")
    rng = np.random.default_rng(0)
    shapes = [(1, 1, 1, 1), (5, 33, 1, 2), (40, 129, 17, 3), (300, 1000, 20, 8)]
    for backend in gpu_backends:

        def check_knn(backend=backend):
            worst = []
            for n, m, d, k in shapes:
                for levels in (None, 2):
                    if levels is None:
                        q, x = rng.standard_normal((n, d)), rng.standard_normal((m, d))
                    else:
                        q = rng.integers(0, levels, (n, d)).astype(np.float64)
                        x = rng.integers(0, levels, (m, d)).astype(np.float64)
                    for dtype in (np.float64, np.float32):
                        qq, xx = q.astype(dtype), x.astype(dtype)
                        want_d, want_i = ops.knn_distances_reference(qq, xx, k)
                        got_d, got_i = ops.knn_distances(
                            torch.from_numpy(qq).cuda(),
                            torch.from_numpy(xx).cuda(),
                            k,
                            backend=backend,
                        )
                        if not np.array_equal(got_i.cpu().numpy(), want_i):
                            return False, f"indices differ at n={n} m={m} d={d} k={k}"
                        worst.append(float(np.abs(got_d.cpu().numpy() - want_d).max()))
                xs = torch.from_numpy(x).cuda()
                want = (
                    ops.knn_distances_reference(x, x, min(k, m - 1), exclude_self=True)
                    if m > 1
                    else None
                )
                if want is not None:
                    got = ops.knn_distances(
                        xs, xs, min(k, m - 1), exclude_self=True, backend=backend
                    )
                    if not np.array_equal(got[1].cpu().numpy(), want[1]):
                        return False, f"exclude_self indices differ at m={m}"
            return max(worst) <= 1e-12, f"max |distance error| {max(worst):.1e}"

        def check_means(backend=backend):
            worst = 0.0
            for n, m, d, _ in shapes:
                x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + 0.3
                for kernel, gamma in (("distance", None), ("rbf", 0.2)):
                    want = ops.pair_kernel_means_reference(x, y, kernel, gamma=gamma)
                    got = ops.pair_kernel_means(
                        torch.from_numpy(x).cuda(),
                        torch.from_numpy(y).cuda(),
                        kernel,
                        gamma=gamma,
                        backend=backend,
                    )
                    err = np.abs(got.cpu().numpy() - want) / np.maximum(np.abs(want), 1.0)
                    worst = max(worst, float(err.max()))
            return worst <= 1e-10, f"max error (relative above 1) {worst:.1e}"

        checked(f"{backend}: knn_distances, awkward shapes, ties, float32, exclude_self", check_knn)
        checked(f"{backend}: pair_kernel_means, distance and rbf", check_means)

    n, d = 100_000, 20
    q = torch.randn(n, d, dtype=torch.float64, device="cuda")
    x = torch.randn(n, d, dtype=torch.float64, device="cuda")
    qh, xh = q.cpu().numpy(), x.cpu().numpy()
    t_cpu = cpu_time(lambda: ops.knn_distances(qh, xh, 1, backend="cpu"), reps=1)
    print(
        f"knn_distances k=1 {n}x{n}x{d} float64: airda cpu (host, {os.cpu_count()} CPUs) {t_cpu:.0f} ms"
    )

    def torch_cdist_topk():
        out = []
        for i in range(0, n, 8192):
            dist = torch.cdist(q[i : i + 8192], x)
            out.append(dist.topk(1, dim=1, largest=False))
        return out

    t_torch = gpu_time(torch_cdist_topk, reps=3, warmup=1)
    print(f"  torch cdist+topk (chunks of 8192 queries, GEMM form) {t_torch:8.1f} ms")
    for backend in gpu_backends:
        t = gpu_time(lambda b=backend: ops.knn_distances(q, x, 1, backend=b), reps=3, warmup=1)
        print(
            f"  {backend:<7} {t:8.1f} ms  {t_cpu / t:6.1f}x the cpu backend  {t_torch / t:5.2f}x torch"
        )
    xs, ys = q[:20_000], x[:20_000]
    t_ref = cpu_time(
        lambda: ops.pair_kernel_means(xs.cpu().numpy(), ys.cpu().numpy(), backend="cpu"), reps=1
    )
    print(f"pair_kernel_means distance 20000x20000x{d}: airda cpu {t_ref:.0f} ms")
    for backend in gpu_backends:
        t = gpu_time(lambda b=backend: ops.pair_kernel_means(xs, ys, backend=b), reps=3, warmup=1)
        print(f"  {backend:<7} {t:8.1f} ms  {t_ref / t:6.1f}x the cpu backend")


def main(argv: list[str]) -> int:
    t_start = time.perf_counter()
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to check")
        return 1
    from airda._native import native

    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}", end="")
    try:
        import triton

        print(f"  triton {triton.__version__}")
    except ImportError:
        print("  triton not installed")
    print(f"airda._C build: {native().build_info()}")
    for b in ops.BACKENDS:
        print(f"  backend {b:<9} {ops.backend_status(b)}")
    gpu_backends = [b for b in ("cuda", "triton") if ops.backend_status(b).usable]
    for b in ("cuda", "triton"):
        if b not in gpu_backends:
            report(False, f"backend {b} usable", str(ops.backend_status(b)))
    sections: dict[str, Callable[[list[str]], None]] = {
        "sign_codes": sign_code_checks,
        "sign_timings": sign_code_timings,
        "mixed_op": mixed_op_checks,
        "evaluate_many": evaluate_many_checks,
        "tune": lambda _backends: tune_checks(),
        "evolve": lambda _backends: evolve_checks(),
        "distances": distance_checks,
    }
    only = set(argv[0].split(",")) if argv else set()
    unknown = only - set(sections)
    if unknown:
        print(f"unknown sections {sorted(unknown)}; choose from {sorted(sections)}")
        return 2

    for name, section in sections.items():
        if only and name not in only:
            continue
        try:
            section(gpu_backends)
        except Exception as exc:  # one broken section must not hide the others
            traceback.print_exc()
            report(False, f"section {name} ran to the end", f"{type(exc).__name__}: {exc}")

    print(
        f"\n{len(FAILURES)} failure(s) in {time.perf_counter() - t_start:.0f} s"
        + (": " + "; ".join(FAILURES) if FAILURES else "")
    )
    return 1 if FAILURES else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))

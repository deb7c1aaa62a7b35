"""Measurements of the code-variant profiler, racing and C-kernel tuning (issue 7).

Run: ``python bench/tune_table.py`` (``--quick`` for a short smoke run, ``--only NAME`` for
one section). Sections:

- accuracy: the same loop doing k = 1..8 times the work; ranking and ratio errors.
- three_percent: two variants 3% apart, ordered over repeated trials of <= 1 s each.
- racing: successive elimination against fixed protocols on >= 30 compiled variants.
- matmul: a blocked matmul (tile, unroll, flags): the best found with 25% of the space
  against the exhaustive best.
- kernel_tuner: the same space and budget through Kernel Tuner's C backend, in the same run
  (skipped with the reason when ``kernel_tuner`` is not installed: pip install airda[bench]);
  paired runs in alternating order (``--repeats N``), airda on an empty compile cache. Part of
  the matmul section; ``--only kernel_tuner`` runs it alone.
- python_sandbox: Python callables timed in this process and in the sandbox worker, paired.

Timings depend on the machine's load; the script prints the machine and load average.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from airda._native import native
from airda.codeopt import (
    Arg,
    compile_variant,
    fixed_protocol,
    profile_address,
    race,
    summarize,
    tune_c,
)
from airda.codeopt.tuner import cpu_model

# The repetition count is a run-time argument: every k runs the same machine code.
LOOP = """
void work(float* x, int n, int reps) {
    for (int r = 0; r < reps; ++r)
        for (int i = 0; i < n; ++i) x[i] = x[i] * 0.999f + 0.5f;
}
"""


def loop_args(reps: int) -> list[Arg]:
    return [
        Arg("float32", (1024,), "ones", out=True),
        Arg("int32", value=1024),
        Arg("int32", value=reps),
    ]


MATMUL = """
void matmul(float* C, const float* A, const float* B, int n) {
    for (int i = 0; i < n * n; ++i) C[i] = 0.0f;
    for (int ii = 0; ii < n; ii += BLOCK)
        for (int kk = 0; kk < n; kk += BLOCK)
            for (int i = ii; i < ii + BLOCK && i < n; ++i)
                for (int k = kk; k < kk + BLOCK && k < n; ++k) {
                    const float a = A[i * n + k];
                    int j = 0;
                    for (; j + UNROLL <= n; j += UNROLL)
                        for (int u = 0; u < UNROLL; ++u) C[i * n + j + u] += a * B[k * n + j + u];
                    for (; j < n; ++j) C[i * n + j] += a * B[k * n + j];
                }
}
"""
MATMUL_REF = """
void matmul(float* C, const float* A, const float* B, int n) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            float s = 0.0f;
            for (int k = 0; k < n; ++k) s += A[i * n + k] * B[k * n + j];
            C[i * n + j] = s;
        }
}
"""
# Kernel Tuner's C backend times inside the kernel: the function returns milliseconds.
KT_WRAPPER = """
#include <time.h>
float matmul_kt(float* C, const float* A, const float* B, int n) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    matmul(C, A, B, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (float)((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6);
}
"""


CLOCK = 0  # 0 wall, 1 thread CPU time (--clock cpu)


def aligned(a: np.ndarray, align: int = 64) -> np.ndarray:
    """A copy of `a` starting on an `align`-byte boundary, as the sandbox worker places its
    arguments. Where an array starts matters: the blocked matmul with AVX2 runs about 40%
    slower on arrays 16 bytes off a 64-byte boundary, and a NumPy array starts wherever malloc
    put it, so every measurement here (and Kernel Tuner's arguments) uses aligned copies."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    raw = np.empty(a.nbytes + align, np.uint8)
    start = (-raw.ctypes.data) % align
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


class Loaded:
    """A compiled variant loaded in this process, with its arguments."""

    def __init__(self, source, entry, args, defines, flags="-O2", clock=CLOCK):
        self.lib = ctypes.CDLL(
            str(compile_variant(source, entry, args, defines=defines, flags=flags))
        )
        rng = np.random.default_rng(0)
        self.arrays = [aligned(a.make(rng)) for a in args]
        self.ptrs = (ctypes.c_void_p * len(args))(*[a.ctypes.data for a in self.arrays])
        self.fn = ctypes.cast(self.lib.airda_call, ctypes.c_void_p).value
        self.args = ctypes.addressof(self.ptrs)
        self.clock = clock
        self.inner = native().calibrate_inner(self.fn, self.args, 5e-5, clock)

    def sampler(self):
        def draw(n):
            raw = native().sample_variant(self.fn, self.args, n, self.inner, False, 0, self.clock)
            return np.asarray(raw["samples"]), float(raw["measured_s"])

        return draw


def header() -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"# machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    print(
        f"# load average at start: {load}; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
        f"clock: {'thread CPU time' if CLOCK else 'wall'}"
    )


def accuracy(quick: bool) -> None:
    print("\n## accuracy: the same loop doing k times the work (median ratio vs k)")
    # Short calls (~20-160 us): a sample shorter than a scheduler time slice is rarely
    # preempted, so on a loaded machine the median stays the unpreempted cost.
    base = 50
    loads = {k: Loaded(LOOP, "work", loop_args(base * k), {}) for k in range(1, 9)}
    cap = 0.5 if quick else 4.0
    # Interleaved rounds: every k sees the same machine conditions (a busy SMT sibling or a
    # frequency change shifts all of them, not one), each k measured for about cap / 8 s.
    draws = {k: v.sampler() for k, v in loads.items()}
    samples: dict[int, list[np.ndarray]] = {k: [] for k in loads}
    spent = 0.0
    while spent < cap:
        for k in loads:
            x, t = draws[k](5)
            samples[k].append(x)
            spent += t
    med = {k: summarize(np.concatenate(samples[k])).median for k in loads}
    low = {k: float(np.concatenate(samples[k]).min()) for k in loads}
    ranking_ok = sorted(med, key=med.get) == list(range(1, 9))
    errs = []
    print("k  median        ratio   error    (min-based ratio)")
    for k in med:
        ratio = med[k] / med[1]
        errs.append(abs(ratio / k - 1))
        print(
            f"{k}  {med[k] * 1e6:9.1f} us  {ratio:6.3f}  {ratio / k - 1:+.2%}   "
            f"({low[k] / low[1]:.3f})"
        )
    print(f"ranking right: {ranking_ok}; max ratio error {max(errs):.2%} (target < 5%)")


def three_percent(quick: bool) -> None:
    print("\n## two variants 3% apart: correct order over repeated trials (<= 1 s each)")
    base = 100
    a = Loaded(LOOP, "work", loop_args(base), {})
    b = Loaded(LOOP, "work", loop_args(round(base * 1.03)), {})
    trials = 10 if quick else 40
    ok_race = ok_seq = 0
    spent = []
    for _ in range(trials):
        # Interleaved rounds (racing two variants) within a 1 s budget.
        r = race(
            {"a": a.sampler(), "b": b.sampler()}, round_samples=5, rel_ci=0.002, max_time_s=1.0
        )
        ok_race += r.winner == "a"
        spent.append(r.measured_s)
        # Back to back: each measured on its own for 0.5 s.
        pa = profile_address(a.fn, a.args, max_time_s=0.5, rel_ci=0.002, clock=a.clock)
        pb = profile_address(b.fn, b.args, max_time_s=0.5, rel_ci=0.002, clock=b.clock)
        ok_seq += pa.median < pb.median
    print(
        f"interleaved (race, <= 1 s): {ok_race}/{trials} = {ok_race / trials:.0%} correct, "
        f"median measurement {np.median(spent):.4f} s"
    )
    print(
        f"back to back (0.5 s each):  {ok_seq}/{trials} = {ok_seq / trials:.0%} correct "
        "(target >= 95%)"
    )


def matmul_space():
    return {"BLOCK": [8, 16, 32, 64], "UNROLL": [1, 2, 4, 8]}, [
        "-O1",
        "-O2",
        "-O3",
        "-O3 -march=native",
    ]


def racing(quick: bool) -> None:
    print("\n## racing vs fixed protocols on the matmul space (64 variants, in process)")
    params, flags = matmul_space()
    n = 64
    args = matmul_args(n)
    variants = {}
    for blk in params["BLOCK"]:
        for un in params["UNROLL"]:
            for fl in flags:
                variants[(blk, un, fl)] = Loaded(
                    MATMUL, "matmul", args, {"BLOCK": blk, "UNROLL": un}, fl
                )
    # The reference answer: a long fixed measurement of every variant.
    truth = fixed_protocol(
        {k: v.sampler() for k, v in variants.items()},
        n_samples=40 if quick else 200,
        rounds=8 if quick else 40,
    )
    best = truth.profiles[truth.winner].median

    def gap(k):
        return truth.profiles[k].median / best - 1

    print(f"{len(variants)} variants; truth (fixed, many samples): {truth.winner}")
    # unpaired (the default for these samplers, which take a variant's samples of a round in
    # one block: stops when every interval left is rel_ci narrow) and paired by per-round
    # medians (stops once no rival can be rel_ci faster), each against a fixed protocol giving
    # every variant the race winner's sample count
    for paired in (False, True):
        t0 = time.perf_counter()
        r = race(
            {k: v.sampler() for k, v in variants.items()},
            round_samples=5,
            rel_ci=0.01,
            paired=paired,
        )
        race_wall = time.perf_counter() - t0
        same = fixed_protocol(
            {k: v.sampler() for k, v in variants.items()},
            n_samples=r.profiles[r.winner].n_samples,
        )
        label = "race (paired by round):" if paired else "race:"
        print(
            f"{label:24s} winner {r.winner} (+{gap(r.winner):.1%} vs truth), "
            f"{r.measured_s:.3f} s measured, {r.rounds} rounds, wall {race_wall:.2f} s"
        )
        print(
            f"  fixed, same n as the race's winner ({r.profiles[r.winner].n_samples}): winner "
            f"{same.winner} (+{gap(same.winner):.1%}), {same.measured_s:.3f} s measured; "
            f"race/fixed time = {r.measured_s / same.measured_s:.2f}"
        )
    kt7 = fixed_protocol({k: v.sampler() for k, v in variants.items()}, n_samples=7)
    print(
        f"fixed, 7 iterations (Kernel Tuner default): winner {kt7.winner} "
        f"(+{gap(kt7.winner):.1%}), {kt7.measured_s:.3f} s measured"
    )


def matmul_args(n):
    return [
        Arg("float32", (n, n), "zeros", out=True),
        Arg("float32", (n, n)),
        Arg("float32", (n, n)),
        Arg("int32", value=n),
    ]


def matmul(quick: bool, kt: bool, repeats: int | None = None) -> None:
    print("\n## blocked matmul: 25% budget vs the exhaustive best (and Kernel Tuner)")
    params, flags = matmul_space()
    n = 64 if quick else 128
    args = matmul_args(n)
    size = len(params["BLOCK"]) * len(params["UNROLL"]) * len(flags)
    budget = size // 4
    cap = 0.05 if quick else 0.3
    t0 = time.perf_counter()
    full = tune_c(
        MATMUL,
        "matmul",
        args,
        params=params,
        flags=flags,
        reference=MATMUL_REF,
        strategy="grid",
        race=False,
        max_time_s=cap,
        rtol=1e-3,
        atol=1e-3,
    )
    t_full = time.perf_counter() - t0
    exh = dict(full.best_params)
    print(
        f"n={n}, {size} variants; exhaustive (then a final race of its 4 fastest): best {exh} "
        f"{full.best['median_s'] * 1e3:.3f} ms, speed-up over the naive reference "
        f"{full.speedup:.2f}x, wall {t_full:.1f} s"
    )
    found_by: dict[str, list[dict]] = {}
    for strategy in ("random", "rea", "local", "predictor"):
        gaps, walls = [], []
        found_by[strategy] = []
        for seed in range(3):
            t0 = time.perf_counter()
            res = tune_c(
                MATMUL,
                "matmul",
                args,
                params=params,
                flags=flags,
                reference=MATMUL_REF,
                strategy=strategy,
                seed=seed,
                budget=budget,
                max_time_s=cap,
                clock="cpu" if CLOCK else "wall",
                rtol=1e-3,
                atol=1e-3,
            )
            walls.append(time.perf_counter() - t0)
            found_by[strategy].append(dict(res.best_params))
        print(f"airda {strategy:9s} budget {budget}: wall {np.mean(walls):.1f} s per run")
    # Found vs exhaustive best, re-measured side by side in interleaved rounds: a sequential
    # table drifts with the machine's load, an interleaved comparison does not.
    configs = [exh] + [c for cs in found_by.values() for c in cs]
    med = remeasure(n, configs, quick)
    base = med[_ck(exh)]
    for strategy, cs in found_by.items():
        gaps = [med[_ck(c)] / base - 1 for c in cs]
        print(
            f"  {strategy:9s} found / exhaustive best - 1, 3 seeds: "
            f"{', '.join(f'{g:+.1%}' for g in gaps)}"
        )
    if kt:
        kernel_tuner_compare(n, params, budget, cap, quick, repeats)


def _ck(c):
    return tuple(sorted(c.items()))


def remeasure(n, configs, quick):
    """Median seconds of each distinct config, in interleaved rounds, in this process."""
    args = matmul_args(n)
    loaded = {}
    for c in configs:
        if _ck(c) not in loaded:
            d = {k: v for k, v in c.items() if k != "flags"}
            loaded[_ck(c)] = Loaded(MATMUL, "matmul", args, d, c["flags"])
    res = fixed_protocol(
        {k: v.sampler() for k, v in loaded.items()},
        n_samples=20 if quick else 100,
        rounds=5 if quick else 20,
    )
    return {k: p.median for k, p in res.profiles.items()}


def kernel_tuner_compare(n, params, budget, cap, quick, repeats=None) -> None:
    """airda against Kernel Tuner's C backend on the same space and budget, in this process:
    paired runs in alternating order (even runs airda first, odd runs Kernel Tuner first), each
    airda run on an empty compile cache (Kernel Tuner has none). Two airda arms: given the
    expected output, as Kernel Tuner is (`answer=`), and given the naive reference source
    (compiled, run for the answer and timed for the speed-up)."""
    try:
        import kernel_tuner
    except ImportError:
        print("kernel_tuner: skipped (not installed: pip install airda[bench])")
        return
    import tempfile
    import warnings

    # a C kernel has no thread block: Kernel Tuner warns about it on every run
    warnings.filterwarnings("ignore", message="None of the tunable parameters specify thread")
    # Kernel Tuner's C backend has no compiler-flag parameter: both tuners search the same
    # BLOCK x UNROLL space with -O3 fixed.
    fixed = "-O3"
    space = len(params["BLOCK"]) * len(params["UNROLL"])
    b = max(1, space // 4)
    args = matmul_args(n)
    rng = np.random.default_rng(0)
    arrays = [aligned(a.make(rng)) for a in args]  # 64-byte aligned, as airda's worker has them
    expected = arrays[1].astype(np.float64) @ arrays[2].astype(np.float64)
    kt_args = [arrays[0], arrays[1], arrays[2], np.int32(n)]
    arms = ("airda", "airda+ref", "kernel_tuner")
    results: dict[str, list] = {k: [] for k in arms}
    repeats = repeats or (2 if quick else 10)
    cache_root = Path(tempfile.mkdtemp(prefix="airda-kt-"))
    saved_cache = os.environ.get("AIRDA_CACHE_DIR")
    load0 = os.getloadavg()

    def run_airda(seed, with_ref):
        os.environ["AIRDA_CACHE_DIR"] = str(cache_root / f"{seed}-{with_ref}")  # cold
        gate = {"reference": MATMUL_REF} if with_ref else {"expected": [expected]}
        t0 = time.perf_counter()
        res = tune_c(
            MATMUL,
            "matmul",
            args,
            params=params,
            flags=[fixed],
            strategy="random",
            seed=seed,
            budget=b,
            max_time_s=cap,
            clock="cpu" if CLOCK else "wall",
            rtol=1e-3,
            atol=1e-3,
            **gate,
        )
        return time.perf_counter() - t0, dict(res.best_params)

    def run_kt(seed):
        np.random.seed(seed)  # noqa: NPY002 - Kernel Tuner samples from the global state
        t0 = time.perf_counter()
        kt_res, _ = kernel_tuner.tune_kernel(
            "matmul_kt",
            MATMUL + KT_WRAPPER,
            (n,),
            kt_args,
            dict(params),
            lang="C",
            compiler_options=[fixed],
            answer=[expected.astype(np.float32), None, None, None],
            atol=1e-2,
            strategy="random_sample",
            strategy_options={"max_fevals": b},
            verbose=False,
            quiet=True,
            iterations=7,
        )
        wall = time.perf_counter() - t0
        ok = [r for r in kt_res if isinstance(r.get("time"), float)]
        kbest = min(ok, key=lambda r: r["time"])
        return wall, {"BLOCK": kbest["BLOCK"], "UNROLL": kbest["UNROLL"], "flags": fixed}

    try:
        # one untimed run of each first: imports and the compiler's first start are not a tuner's
        run_kt(repeats)
        run_airda(repeats, False)
        run_airda(repeats, True)
        for seed in range(repeats):
            order = ["airda", "airda+ref", "kernel_tuner"]
            if seed % 2:
                order.reverse()
            for who in order:
                if who == "kernel_tuner":
                    results[who].append(run_kt(seed))
                else:
                    results[who].append(run_airda(seed, who == "airda+ref"))
    finally:
        if saved_cache is None:
            os.environ.pop("AIRDA_CACHE_DIR", None)
        else:
            os.environ["AIRDA_CACHE_DIR"] = saved_cache
    load1 = os.getloadavg()
    med = remeasure(n, [p for rows in results.values() for _, p in rows], quick)
    print(
        f"same space BLOCK x UNROLL ({space} variants, {fixed}), budget {b}, {repeats} paired "
        f"runs (alternating order, airda on an empty compile cache each run); load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} after"
    )
    print("picks re-measured side by side in interleaved rounds (ms per call)")
    print("run  " + "  ".join(f"{a + ' wall':>17s}  {'pick':>6s}" for a in arms))
    for i in range(repeats):
        cells = []
        for a in arms:
            w, p = results[a][i]
            cells.append(f"{w:15.3f} s  {med[_ck(p)] * 1e3:6.3f}")
        print(f"{i:3d}  " + "  ".join(cells))
    kt_w = np.array([w for w, _ in results["kernel_tuner"]])
    for a in arms:
        walls = np.array([w for w, _ in results[a]])
        picks = np.array([med[_ck(p)] for _, p in results[a]])
        line = (
            f"  {a:13s} wall median {np.median(walls):.3f} s (mean {walls.mean():.3f}); "
            f"pick median {np.median(picks) * 1e3:.3f} ms (mean {picks.mean() * 1e3:.3f})"
        )
        if a != "kernel_tuner":
            line += f"; faster than Kernel Tuner in {int(np.sum(walls < kt_w))}/{repeats} runs"
            line += f", paired wall ratio median {np.median(walls / kt_w):.2f}"
        print(line)


def python_sandbox(quick: bool) -> None:
    """Python callables timed in this process and in the sandbox worker: are the ratios
    between variants - what a tuner decides by - the same in both? (On a shared machine two
    processes can run at different speeds for seconds at a time, one placed beside a busy
    neighbour and the other not, so absolute times of different processes are not compared;
    every variant of one run is timed in the same process.)"""
    from airda.codeopt import Sandbox, callable_sampler

    print("\n## Python variants: ratios between variants, in this process and in the worker")
    rng = np.random.default_rng(0)
    x = rng.random(100_000)
    pairs = {
        "np.cumsum / np.sort (100k float64)": (np.sort, np.cumsum, (x,)),
        "sum / sorted (list of 100k)": (sorted, sum, (x.tolist(),)),
    }
    rounds = 10 if quick else 40
    print(
        f"{rounds} interleaved rounds of 3 samples (>= 2 ms each) per variant; the median of the "
        "per-round ratios [95% CI]; 3 alternating repeats"
    )

    def ratio(sa, sb):
        res = fixed_protocol({"a": sa, "b": sb}, n_samples=3 * rounds, rounds=rounds)
        per_round = [
            float(np.median(b)) / float(np.median(a))
            for a, b in zip(
                np.array_split(res.profiles["a"].samples, rounds),
                np.array_split(res.profiles["b"].samples, rounds),
                strict=True,
            )
        ]
        p = summarize(per_round)
        return f"{p.median:6.3f} [{p.ci_low:.3f}..{p.ci_high:.3f}]"

    for name, (fa, fb, args) in pairs.items():
        cells = {"in-process": [], "sandbox": []}
        with Sandbox(py_args=args) as box:
            for r in range(1 if quick else 3):
                order = ("in-process", "sandbox") if r % 2 == 0 else ("sandbox", "in-process")
                for who in order:
                    if who == "in-process":
                        sa, sb = callable_sampler(fa, *args), callable_sampler(fb, *args)
                    else:
                        sa = callable_sampler(fa, box=box, key="a")
                        sb = callable_sampler(fb, box=box, key="b")
                    cells[who].append(ratio(sa, sb))
        print(f"{name}")
        for who, vals in cells.items():
            print(f"  {who:11s} " + "   ".join(vals))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument(
        "--only",
        choices=["accuracy", "three_percent", "racing", "matmul", "kernel_tuner", "python_sandbox"],
    )
    ap.add_argument("--repeats", type=int, default=None, help="paired Kernel Tuner runs")
    ap.add_argument("--no-kernel-tuner", action="store_true")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall clock (default) or the thread's CPU time (steadier on a loaded machine)",
    )
    a = ap.parse_args(argv)
    global CLOCK
    CLOCK = 1 if a.clock == "cpu" else 0
    os.environ.setdefault("AIRDA_CACHE_DIR", str(Path.cwd() / ".airda-bench-cache"))
    header()
    sections = (
        [a.only] if a.only else ["accuracy", "three_percent", "racing", "matmul", "python_sandbox"]
    )
    for s in sections:
        t0 = time.perf_counter()
        if s == "matmul":
            matmul(a.quick, not a.no_kernel_tuner, a.repeats)
        elif s == "kernel_tuner":
            params, _ = matmul_space()
            n = 64 if a.quick else 128
            kernel_tuner_compare(n, params, None, 0.05 if a.quick else 0.3, a.quick, a.repeats)
        else:
            globals()[s](a.quick)
        print(f"({s}: {time.perf_counter() - t0:.1f} s)")
    print(f"\n# load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

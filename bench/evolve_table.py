"""Code evolution with the deterministic rewrites alone (no language model) on six naive C
kernels (issue 21): the best correct variant within the budget and its speed-up over the
reference, with the 95 % interval of the final side-by-side race (the reference and best
times in the table are that race's medians).

Run: ``python bench/evolve_table.py`` (``--kernels matmul,transpose`` for some,
``--budget 200`` candidates per kernel, ``--json FILE`` to keep the results, ``--seed S``,
``--threads 2`` to let candidates use two threads: the rewrites then also propose OpenMP
``parallel for``; the reference stays the single-threaded naive kernel; ``--recheck 40`` to
time each winner and its reference again through ctypes, 40 alternating calls, beside a
``memcpy`` of the same bytes; ``--recheck-only FILE.json`` to do only that for stored winners).
Each kernel is ``bench/evolve/<name>.c`` with its spec ``<name>.toml`` (arguments, quick
arguments, tolerances, flags); every candidate goes through airda.codeopt.evolve's cascade
(compile, quick test, full test against the reference's outputs, racing-profiler timing) in the
sandbox. Timings depend on the machine's load: the script prints the machine, the compiler and
the load average before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from airda.codeopt.cvariants import compiler_version
from airda.codeopt.evolve import EvolveSpec, RewriteProposer, evolve
from airda.codeopt.tuner import cpu_model

HERE = Path(__file__).resolve().parent / "evolve"
KERNELS = ("matmul", "transpose", "stencil", "histogram", "prefix_sum", "softmax")


def _rewrite_name(description: str) -> str:
    """The rewrite's name at the head of a lineage description (``tile(i, j, 16): ...``)."""
    depth = 0
    for k, ch in enumerate(description):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == ":" and depth == 0:
            return description[:k]
    return description


def run_kernel(name: str, budget: int, seed: int, islands: int, threads: int = 1) -> dict:
    spec = EvolveSpec.from_toml(HERE / f"{name}.toml")
    if threads != spec.threads:
        spec = dataclasses.replace(spec, threads=threads)
    t0 = time.perf_counter()
    res = evolve(
        spec,
        budget=budget,
        proposers=RewriteProposer(),
        islands=islands,
        seed=seed,
        show_progress=None,
    )
    wall = time.perf_counter() - t0
    chain = [_rewrite_name(s.description) for s in res.lineage if s.proposer != "reference"]
    lo, hi = res.speedup_ci or (float("nan"), float("nan"))
    # the times of the final side-by-side race (the speed-up's samples) when there was one;
    # otherwise the search's (the reference stayed the best)
    ref_s = res.final.get("reference_s") or res.reference.value
    best_s = res.final.get("best_s") or res.best.value
    return {
        "kernel": name,
        "threads": spec.threads,
        "ref_ms": ref_s * 1e3 if ref_s else None,
        "best_ms": best_s * 1e3 if best_s else None,
        "speedup": res.speedup,
        "ci": [lo, hi],
        "evaluated": res.counts["evaluated"],
        "passed": res.counts["passed"],
        "failed": res.counts["failed"],
        "stopped": res.stopped,
        "chain": chain,
        "wall_s": wall,
        "best_code": res.best.code,
    }


def recheck(name: str, best_code: str, pairs: int = 40) -> dict:
    """The winner and the reference timed again outside the search, as a check of the race:
    both compiled as the cascade compiles them, called alternately through ctypes in this
    process (`pairs` pairs, after one warm-up call each) on the spec's full arguments. The
    minimum of each (the least disturbed call on a shared machine), the median of the paired
    ratios, and a ``memcpy`` of half the bytes of all array arguments (every byte read or
    written once: the kernel's least traffic) as the bandwidth yardstick of the same run."""
    import ctypes

    import numpy as np

    from airda.codeopt.cvariants import compile_variant
    from airda.codeopt.evolve._evaluate import openmp_flags

    spec = EvolveSpec.from_toml(HERE / f"{name}.toml")
    ref_code = Path(spec.source).read_text() if isinstance(spec.source, Path) else spec.source
    rng = np.random.default_rng(spec.arg_seed)

    def load(code: str, entry: str, args, defines) -> tuple:
        lib = compile_variant(
            code,
            entry,
            args,
            defines=defines,
            flags=openmp_flags(code, spec.flags),
            cpp=spec.language == "cpp",
            compiler=spec.compiler,
        )
        vals = [a.make(rng) for a in args]
        ptrs = (ctypes.c_void_p * len(vals))(*[v.ctypes.data for v in vals])
        dll = ctypes.CDLL(str(lib))
        return dll, ptrs, vals

    ref = load(ref_code, spec.entry, spec.args, spec.defines)
    best = load(best_code, spec.entry, spec.args, spec.defines)
    total = sum(a.nbytes for a in spec.args if a.is_array)
    half = max(total // 2, 1)
    cp_args = [f"uint8[{half}]:zeros:out", f"uint8[{half}]:zeros"]
    from airda.codeopt.cvariants import parse_arg

    cp = load(
        "#include <string.h>\nvoid airda_copy(unsigned char *out, const unsigned char *in)"
        f" {{ memcpy(out, in, {half}UL); }}\n",
        "airda_copy",
        [parse_arg(a) for a in cp_args],
        {},
    )
    times: dict[str, list[float]] = {"ref": [], "best": [], "copy": []}
    for k in range(pairs + 1):
        for key, (dll, ptrs, _vals) in (("ref", ref), ("best", best), ("copy", cp)):
            t = time.perf_counter()
            dll.airda_call(ptrs)
            if k:
                times[key].append(time.perf_counter() - t)
    ratios = sorted(r / b for r, b in zip(times["ref"], times["best"], strict=True))
    ref_min, best_min, copy_min = (min(times[k]) for k in ("ref", "best", "copy"))
    return {
        "ref_min_ms": ref_min * 1e3,
        "best_min_ms": best_min * 1e3,
        "speedup_min": ref_min / best_min,
        "speedup_median_pairs": ratios[len(ratios) // 2],
        "bytes": total,
        "copy_min_ms": copy_min * 1e3,
        "ref_gbs": total / ref_min / 1e9,
        "best_gbs": total / best_min / 1e9,
        "copy_gbs": total / copy_min / 1e9,
    }


def recheck_table(rows: list[dict]) -> str:
    out = [
        "| kernel | reference (min) | best (min) | speed-up of the minima | median paired ratio "
        "| bytes moved | reference GB/s | best GB/s | memcpy GB/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        c = r.get("recheck")
        if not c:
            continue
        out.append(
            f"| {r['kernel']} | {c['ref_min_ms']:.2f} ms | {c['best_min_ms']:.2f} ms "
            f"| {c['speedup_min']:.2f}x | {c['speedup_median_pairs']:.2f}x "
            f"| {c['bytes'] / 2**20:.0f} MiB | {c['ref_gbs']:.1f} | {c['best_gbs']:.1f} "
            f"| {c['copy_gbs']:.1f} |"
        )
    return "\n".join(out)


def table(rows: list[dict]) -> str:
    out = [
        "| kernel | reference | best | speed-up (95% CI) | candidates (passed) | winning chain |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        ci = f"{r['speedup']:.2f}x ({r['ci'][0]:.2f}-{r['ci'][1]:.2f})"
        chain = " > ".join(r["chain"]) or "(the reference)"
        out.append(
            f"| {r['kernel']} | {r['ref_ms']:.2f} ms | {r['best_ms']:.2f} ms | {ci} "
            f"| {r['evaluated']} ({r['passed']}) | {chain} |"
        )
    n2 = sum(1 for r in rows if r["speedup"] and r["ci"][0] >= 2.0)
    n2m = sum(1 for r in rows if r["speedup"] and r["speedup"] >= 2.0)
    out.append("")
    out.append(
        f"speed-up >= 2x: {n2m} of {len(rows)} kernels by the median ratio, {n2} of "
        f"{len(rows)} with the whole 95% interval above 2x (bar: 4 of 6)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated kernels")
    ap.add_argument("--budget", type=int, default=200, help="candidates per kernel (200)")
    ap.add_argument("--seed", type=int, default=0, help="the search's seed (0)")
    ap.add_argument("--islands", type=int, default=4, help="islands of the search (4)")
    ap.add_argument(
        "--threads", type=int, default=1, help="threads a candidate may use (1: one core)"
    )
    ap.add_argument("--json", help="write the rows (with each winner's code) to this file")
    ap.add_argument(
        "--recheck",
        type=int,
        default=0,
        metavar="PAIRS",
        help="time each winner and its reference again through ctypes, PAIRS alternating "
        "calls, with a memcpy of the same bytes (0: no recheck)",
    )
    ap.add_argument(
        "--recheck-only",
        metavar="JSON",
        help="no search: recheck the winners stored in this --json file",
    )
    args = ap.parse_args(argv)
    if args.recheck_only:
        doc = json.loads(Path(args.recheck_only).read_text())
        print(f"# load average at start: {os.getloadavg()}")
        for r in doc["rows"]:
            r["recheck"] = recheck(r["kernel"], r["best_code"], args.recheck or 40)
        print(recheck_table(doc["rows"]))
        print(f"\n# load average at end: {os.getloadavg()}")
        return 0
    names = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in names if not (HERE / f"{k}.toml").is_file()]
    if unknown:
        ap.error(f"unknown kernels {unknown}; known: {', '.join(KERNELS)}")
    cc = os.environ.get("CC", "cc")
    print(f"# machine: {platform.machine()} {cpu_model()}, {os.cpu_count()} cores")
    print(f"# compiler: {compiler_version(cc)}")
    print(f"# load average at start: {os.getloadavg()}")
    print(
        f"# budget {args.budget} candidates per kernel, seed {args.seed}, rewrites only, "
        f"{args.threads} thread(s) per candidate"
    )
    rows = []
    for name in names:
        row = run_kernel(name, args.budget, args.seed, args.islands, args.threads)
        rows.append(row)
        print(
            f"{name}: {row['speedup']:.2f}x ({row['ci'][0]:.2f}-{row['ci'][1]:.2f}) after "
            f"{row['evaluated']} candidates in {row['wall_s']:.0f} s: "
            f"{' > '.join(row['chain']) or '(the reference)'}",
            flush=True,
        )
    if args.recheck:
        for r in rows:
            r["recheck"] = recheck(r["kernel"], r["best_code"], args.recheck)
    print()
    print(table(rows))
    if args.recheck:
        print()
        print(recheck_table(rows))
    load = os.getloadavg()
    print(f"\n# load average at end: {load}")
    if args.json:
        doc = {
            "machine": f"{platform.machine()} {cpu_model()}",
            "compiler": compiler_version(cc),
            "budget": args.budget,
            "seed": args.seed,
            "threads": args.threads,
            "load_end": load,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

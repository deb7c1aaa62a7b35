"""Multi-trial NAS strategies on NAS-Bench-201 (12-epoch table): the measured table.

For every strategy, 20 seeds search ``cifar10-val`` with a budget of 300 queries (equivalent
cells cost none); the table gives, after 50, 100 and 300 queries, the mean ``cifar10-test`` of
the architecture each seed returns, with a 95% BCa bootstrap interval over seeds
(:func:`airda.eval.bootstrap_ci`), and whether the mean reaches random search's 300-query mean.

Run: ``python bench/nas_search_table.py [--seeds 20] [--warm-start synflow] [--out FILE]``
(needs ``../shared/data/nasbench201/nb201_12epoch.csv`` or ``--benchmark PATH``).
Single-threaded BLAS is forced: the GP's small matrices gain nothing from threads, and on a
busy 2-core machine threads spin against each other.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasbench201"
STRATEGIES = ["random", "rea", "local", "reinforce", "predictor"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default=str(DEFAULT_TABLE / "nb201_12epoch.csv"))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--warm-start", default=None, help="zero-cost proxy for warm starts")
    parser.add_argument("--warm-pool", type=int, default=200)
    parser.add_argument("--warm-n", type=int, default=10)
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if not Path(args.benchmark).exists():
        print(f"no benchmark table at {args.benchmark}", file=sys.stderr)
        return 2

    from airda.nas import TabularBenchmark, benchmark_search

    bench = TabularBenchmark.from_csv(args.benchmark)
    checks = [c for c in (50, 100, 300) if c <= args.budget]
    runs = [(name, name) for name in args.strategies.split(",") if name]
    if args.warm_start:
        from airda.cli.nas import _warm_factory

        for name in ("random", "rea"):
            factory = _warm_factory(name, args.warm_start, args.warm_pool, args.warm_n)
            runs.append((f"{name} + {args.warm_start} warm start", factory))
    rows, means = [], {}
    for label, strategy in runs:
        start = time.perf_counter()
        res = benchmark_search(
            bench,
            metric="cifar10-val",
            strategy=strategy,
            budget=args.budget,
            seeds=args.seeds,
            checkpoints=checks,
            report=["cifar10-test"],
        )
        took = time.perf_counter() - start
        summary = res.summary("cifar10-test")
        means[label] = {r["checkpoint"]: r["mean"] for r in summary}
        rows.append((label, summary, took))
        print(f"{label}: {took:.1f} s", file=sys.stderr, flush=True)
    target = means.get("random", {}).get(checks[-1])
    head = (
        "| strategy | "
        + " | ".join(f"after {c} queries" for c in checks)
        + " | reaches random@300 by | time |"
    )
    lines = [head, "|" + " --- |" * (len(checks) + 3)]
    for label, summary, took in rows:
        cells = [f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]" for r in summary]
        reach = "-"
        if target is not None:
            hit = [r["checkpoint"] for r in summary if r["mean"] >= target]
            reach = f"{hit[0]} queries" if hit else "not within the budget"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {reach} | {took:.0f} s |")
    text = "\n".join(lines)
    header = (
        f"NB201 12-epoch table, search on cifar10-val, report cifar10-test of the returned "
        f"architecture: mean [95% BCa interval] over {args.seeds} seeds. Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs."
    )
    print(header)
    print(text)
    if args.out:
        Path(args.out).write_text(header + "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How often a NAS strategy finds the best cell of NAS-Bench-201, by query count (issue 24).

For each strategy and each of the table's three validation columns (``cifar10-val``, which the
default strategy was designed on, and ``cifar100-val`` / ``imagenet-val``, which it was not),
20 seeds search the 12-epoch table with a budget of 200 queries (equivalent cells cost none).
The table gives, at 10, 25, 50, 100 and 200 queries, how many seeds hold the column's best value
(the global optimum of the search signal), with a 95% Clopper-Pearson interval of that
proportion, and the median number of queries to the optimum.

Run: ``python bench/nas_optimum.py [--seeds 20] [--budget 200] [--strategies default,rea,local,random]
[--out FILE]`` (needs ``../shared/data/nasbench201/nb201_12epoch.csv`` or ``--benchmark PATH``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasbench201"
COLUMNS = ("cifar10-val", "cifar100-val", "imagenet-val")
CHECKS = (10, 25, 50, 100, 200)


def proportion_ci(k: int, n: int) -> tuple[float, float]:
    """The 95% Clopper-Pearson interval of k successes in n."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def queries_to_optimum(bench, column: str, strategy: str, seeds: int, budget: int) -> list:
    """For each seed, the query count at which it first held the column's best value (None
    when it never did within the budget)."""
    from airda.nas import benchmark_search

    best = float(np.nanmax(bench.values(column)))
    res = benchmark_search(
        bench,
        metric=column,
        strategy=strategy,
        budget=budget,
        seeds=seeds,
        checkpoints=list(range(1, budget + 1)),
    )
    out = []
    for s in res.seeds:
        hit = next(
            (c for c, v in zip(s.checkpoints, s.search_values, strict=True) if v >= best), None
        )
        out.append(hit)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default=str(DEFAULT_TABLE / "nb201_12epoch.csv"))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--strategies", default="default,rea,local,random")
    parser.add_argument("--columns", default=",".join(COLUMNS))
    parser.add_argument("--out", help="also write the Markdown tables here")
    args = parser.parse_args(argv)
    if not Path(args.benchmark).exists():
        print(f"no benchmark table at {args.benchmark}", file=sys.stderr)
        return 2
    from airda.nas import TabularBenchmark

    bench = TabularBenchmark.from_csv(args.benchmark)
    checks = [c for c in CHECKS if c <= args.budget]
    blocks = []
    for column in args.columns.split(","):
        best = float(np.nanmax(bench.values(column)))
        lines = [
            f"**{column}** (best value {best:g})",
            "",
            "| strategy | "
            + " | ".join(f"by {c} queries" for c in checks)
            + " | median queries to the optimum | time |",
            "|" + " --- |" * (len(checks) + 3),
        ]
        for name in args.strategies.split(","):
            start = time.perf_counter()
            hits = queries_to_optimum(bench, column, name, args.seeds, args.budget)
            took = time.perf_counter() - start
            cells = []
            for c in checks:
                k = sum(1 for h in hits if h is not None and h <= c)
                lo, hi = proportion_ci(k, len(hits))
                cells.append(f"{k}/{len(hits)} [{lo:.2f}, {hi:.2f}]")
            ranked = sorted(h if h is not None else args.budget + 1 for h in hits)
            mid = ranked[(len(ranked) - 1) // 2]
            median = str(mid) if mid <= args.budget else f"> {args.budget}"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {median} | {took:.1f} s |")
            print(f"{column} {name}: {took:.1f} s", file=sys.stderr, flush=True)
        blocks.append("\n".join(lines))
    header = (
        f"NB201 12-epoch table, {args.seeds} seeds, budget {args.budget} queries: seeds holding "
        f"the column's best value [95% Clopper-Pearson interval]. Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}."
    )
    text = header + "\n\n" + "\n\n".join(blocks) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CMA-ES on mixed-integer functions: the margin rule (``discrete="margin"``, Hamano et al. 2022)
against the earlier minimum-spread rule (``discrete="spread"``), paired over seeds.

Functions (minimum 0 each; integers are ``Int`` parameters, so the strategy sees their bins):

- ``int-ellipsoid``: ``sum_i 10**(3 i / (n - 1)) (x_i - 2)**2``, every ``x_i`` in -10..10.
- ``mixed-ellipsoid``: the same weights, the first half floats in [-5, 5] (optimum 0.5) and
  the second half integers in -10..10 (optimum 2).
- ``onemax-sphere``: half binary integers (``Int(0, 1)``, 1 is best, each 0 costs 10) and half
  floats in [-2, 2] (a sphere around 0.3).

For each function, seed and rule: the best value after each budget. Printed per function and
budget: the median over seeds of each rule, how many seeds reach the optimum (< 1e-8), the
number of seeds where margin is better / worse / tied, and the two-sided Wilcoxon signed-rank
p-value of the paired differences (``airda.eval.wilcoxon``).

Run: ``OMP_NUM_THREADS=1 python bench/cmaes_margin.py [--seeds 10] [--dim 10]
[--budgets 200,500]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import airda
from airda.eval import wilcoxon
from airda.space import Float, Int, Space
from airda.strategies.cmaes import CmaEs


def problems(dim: int) -> dict[str, tuple[Space, object]]:
    weights = 10.0 ** (3.0 * np.arange(dim) / max(dim - 1, 1))
    half = dim // 2

    def int_ellipsoid(t) -> float:
        x = np.array([t[f"x{i}"] for i in range(dim)], dtype=float)
        return float((weights * (x - 2.0) ** 2).sum())

    def mixed_ellipsoid(t) -> float:
        x = np.array([t[f"x{i}"] for i in range(dim)], dtype=float)
        opt = np.where(np.arange(dim) < half, 0.5, 2.0)
        return float((weights * (x - opt) ** 2).sum())

    def onemax_sphere(t) -> float:
        bits = sum(t[f"b{i}"] for i in range(half))
        x = np.array([t[f"x{i}"] for i in range(dim - half)])
        return float(10.0 * (half - bits) + ((x - 0.3) ** 2).sum())

    return {
        "int-ellipsoid": (Space({f"x{i}": Int(-10, 10) for i in range(dim)}), int_ellipsoid),
        "mixed-ellipsoid": (
            Space({f"x{i}": Float(-5.0, 5.0) if i < half else Int(-10, 10) for i in range(dim)}),
            mixed_ellipsoid,
        ),
        "onemax-sphere": (
            Space(
                {f"b{i}": Int(0, 1) for i in range(half)}
                | {f"x{i}": Float(-2.0, 2.0) for i in range(dim - half)}
            ),
            onemax_sphere,
        ),
    }


def best_curve(space: Space, objective, rule: str, seed: int, budgets: list[int]) -> list[float]:
    study = airda.create_study(space=space, strategy=CmaEs(seed=seed, discrete=rule))
    out, done = [], 0
    for b in budgets:
        study.optimize(objective, n_trials=b - done)
        done = b
        out.append(study.best_value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--budgets", default="200,500")
    parser.add_argument("--functions", default="", help="comma-separated subset")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    chosen = problems(args.dim)
    if args.functions:
        chosen = {k: v for k, v in chosen.items() if k in args.functions.split(",")}
    print(f"CMA-ES, {args.dim}-D, seeds 0-{args.seeds - 1}, budgets {budgets}")
    print("| function | trials | margin: median (optimum reached) | spread: median (optimum "
          "reached) | margin better / worse / tied | Wilcoxon p |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    start = time.perf_counter()
    for name, (space, objective) in chosen.items():
        res = {
            rule: np.array(
                [best_curve(space, objective, rule, s, budgets) for s in range(args.seeds)]
            )
            for rule in ("margin", "spread")
        }
        for j, b in enumerate(budgets):
            m, s = res["margin"][:, j], res["spread"][:, j]
            better, worse = int((m < s).sum()), int((m > s).sum())
            tied = args.seeds - better - worse
            p = wilcoxon(m, s).p_value if better + worse else 1.0
            print(
                f"| {name} | {b} | {statistics.median(m):.4g} ({int((m < 1e-8).sum())}) | "
                f"{statistics.median(s):.4g} ({int((s < 1e-8).sum())}) | {better} / {worse} / "
                f"{tied} | {p:.3g} |",
                flush=True,
            )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

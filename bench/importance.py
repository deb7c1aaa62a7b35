"""Hyperparameter importance: airda's fANOVA and PED-ANOVA against Optuna's evaluators on the
same trials: time, rank agreement (Spearman) and the largest difference in the numbers.

Trials are drawn uniformly (the random search fANOVA is meant for) on synthetic objectives
whose truth is known (``known``: f = 10*x0^2 + x1 + 0.1*x2 + 0*x3; others below), written
into an Optuna study with ``create_trial`` and given to airda as ``FrozenTrial`` records.
Both sides fit the same scikit-learn forest (same seed, same encoding); the time is the whole
``importance()`` / ``get_param_importances()`` call (forest fit included), the best of
``--repeats``.

    python bench/importance.py                                 # 100 and 1,000 trials
    python bench/importance.py --sizes 100,1000,5000 --optuna-max 1000
    python bench/importance.py --quick                         # a tiny run (seconds)
    python bench/importance.py --sizes 0 --plots 100000        # airda.viz on a big study

``--plots N`` also times each :mod:`airda.viz` plot (matplotlib, drawn to PNG) on N trial
records held in memory (every seventh pruned), which the plots sample down to 5,000.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from airda.hpo.importance import importance
from airda.space import Categorical, Float, Int
from airda.trial import FrozenTrial, TrialState

OBJECTIVES: dict[str, Callable[[dict[str, Any]], float]] = {
    # the brief's: truth x0 > x1 > x2 > x3 = 0
    "known": lambda p: 10 * p["x0"] ** 2 + p["x1"] + 0.1 * p["x2"] + 0 * p["x3"],
    # an interaction and a nearly irrelevant parameter
    "interaction": lambda p: 4 * p["x0"] * p["x1"] + 0.5 * p["x2"] + 0.01 * p["x3"],
    # oscillation, a step
    "sine-step": lambda p: np.sin(8 * p["x1"]) + float(p["x3"] > 0.5) + 0.2 * p["x0"],
    # mixed kinds: a log-scaled learning rate, an int, a categorical
    "mixed": lambda p: (
        (np.log10(p["lr"]) + 2.5) ** 2
        + {"relu": 0.0, "tanh": 1.5, "gelu": 0.4}[p["act"]]
        + 0.2 * p["layers"]
        + 0.05 * p["x0"]
    ),
}


def _space(objective: str) -> dict[str, Any]:
    if objective == "mixed":
        return {
            "lr": Float(1e-5, 1.0, log=True),
            "act": Categorical(["relu", "tanh", "gelu"]),
            "layers": Int(1, 8),
            "x0": Float(0.0, 1.0),
        }
    return {f"x{i}": Float(0.0, 1.0) for i in range(4)}


def _sample(space: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{k: p.from_unit(float(rng.random())) for k, p in space.items()} for _ in range(n)]


def _optuna_study(space: dict[str, Any], params: list[dict[str, Any]], values: list[float]):
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {}
    for k, p in space.items():
        if p.kind == "categorical":
            dists[k] = CategoricalDistribution(list(p.choices))
        elif p.kind == "int":
            dists[k] = IntDistribution(p.low, p.high, log=p.log)
        else:
            dists[k] = FloatDistribution(p.low, p.high, log=p.log)
    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(params=pr, distributions=dists, value=v)
            for pr, v in zip(params, values, strict=True)
        ]
    )
    return study


def _best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _spearman(a: dict[str, float], b: dict[str, float]) -> float:
    from scipy.stats import spearmanr

    names = sorted(b)
    return float(spearmanr([a[n] for n in names], [b[n] for n in names]).statistic)


def run(sizes: list[int], objectives: list[str], repeats: int, optuna_max: int, seed: int):
    try:
        from optuna.importance import (
            FanovaImportanceEvaluator,
            PedAnovaImportanceEvaluator,
            get_param_importances,
        )
    except ImportError:
        get_param_importances = None
        print("optuna is not installed: airda's times only", file=sys.stderr)
    rows = []
    for n in sizes:
        for obj in objectives:
            space = _space(obj)
            params = _sample(space, n, seed)
            values = [float(OBJECTIVES[obj](p)) for p in params]
            trials = [
                FrozenTrial(i, TrialState.COMPLETE, p, values=(v,))
                for i, (p, v) in enumerate(zip(params, values, strict=True))
            ]
            study = (
                _optuna_study(space, params, values)
                if get_param_importances is not None and n <= optuna_max
                else None
            )
            for evaluator in ("fanova", "ped-anova"):
                t_ours, ours = _best_time(
                    lambda ev=evaluator, tr=trials, sp=space: importance(
                        tr, evaluator=ev, space=sp, seed=0
                    ),
                    repeats,
                )
                row = {
                    "trials": n,
                    "objective": obj,
                    "evaluator": evaluator,
                    "airda_s": t_ours,
                    "airda_top": list(ours)[:3],
                }
                if study is not None:
                    ev_obj = (
                        FanovaImportanceEvaluator(seed=0)
                        if evaluator == "fanova"
                        else PedAnovaImportanceEvaluator()
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t_opt, ref = _best_time(
                            lambda ev=ev_obj, st=study: get_param_importances(st, evaluator=ev),
                            1 if evaluator == "fanova" and n >= 1000 else repeats,
                        )
                    row.update(
                        optuna_s=t_opt,
                        speedup=t_opt / t_ours,
                        spearman=_spearman(ours, ref),
                        max_abs_diff=max(abs(ours[k] - ref[k]) for k in ref),
                        optuna_top=list(ref)[:3],
                    )
                rows.append(row)
                _print_row(row)
    return rows


def run_plots(n: int, seed: int) -> list[dict[str, Any]]:
    """Time every matplotlib plot, PNG included, on `n` records (sampled to 5,000)."""
    import io

    from airda import viz

    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    records = [
        FrozenTrial(
            i,
            TrialState.PRUNED if i % 7 == 0 else TrialState.COMPLETE,
            {"a": float(x[i, 0]), "b": float(x[i, 1]), "c": float(x[i, 2])},
            values=(float(x[i, 0] ** 2 + x[i, 1]),),
            intermediate={0: 2.0, 1: float(x[i, 0] ** 2 + x[i, 1] + 0.5)},
            datetime_start=float(i),
            datetime_complete=i + 0.5,
        )
        for i in range(n)
    ]
    rows = []
    for name in (
        "plot_history",
        "plot_parallel_coordinates",
        "plot_slice",
        "plot_contour",
        "plot_importance",
        "plot_intermediate_values",
        "plot_timeline",
    ):
        t0 = time.perf_counter()
        fig = getattr(viz, name)(records, name="big")
        fig.savefig(io.BytesIO(), format="png")
        row = {"plot": name, "trials": n, "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"{name:<28} {n:>8,} trials  {row['seconds']:6.2f} s  ({fig.axes[0].get_title()})")
    return rows


def _print_row(r: dict[str, Any]) -> None:
    line = f"{r['trials']:>6} {r['objective']:<12} {r['evaluator']:<10} airda {r['airda_s']:8.3f} s"
    if "optuna_s" in r:
        line += (
            f"  optuna {r['optuna_s']:8.3f} s  x{r['speedup']:7.1f}  "
            f"spearman {r['spearman']:.3f}  max|diff| {r['max_abs_diff']:.1e}"
        )
    line += f"  top {r['airda_top']}"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000", help="trial counts (default: 100,1000)")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES), help="which objectives")
    ap.add_argument("--repeats", type=int, default=3, help="best of N timings (default: 3)")
    ap.add_argument(
        "--optuna-max",
        type=int,
        default=1000,
        help="run Optuna up to this many trials (its fANOVA takes minutes at 5,000)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plots", type=int, default=0, metavar="N", help="time airda.viz on N trials")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--quick", action="store_true", help="a tiny run: 60 trials, 1 repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.objectives = "60", 1, "known,mixed"
    sizes = [int(s) for s in args.sizes.split(",") if int(s) > 0]
    objectives = args.objectives.split(",")
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        ap.error(f"unknown objective(s) {unknown}; choose from {list(OBJECTIVES)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load:.2f}; "
        f"python {platform.python_version()}"
    )
    rows = run(sizes, objectives, args.repeats, args.optuna_max, args.seed)
    if args.plots:
        rows += run_plots(args.plots, args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load at the end: {load:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

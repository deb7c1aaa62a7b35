"""Constrained multi-objective search: airda's default strategy (MOTPE) and NSGA-II against
Optuna's TPE and NSGA-II samplers with constraints, on the hypervolume of the feasible front.

Problems (two objectives, minimised; constraints ``c_i(x) <= 0``), the classic ones of
Deb's book and the constrained-MO literature:

* ``bnh``: Binh and Korn, 2-D, 2 constraints; reference point (140, 55).
* ``tnk``: Tanaka, 2-D, 2 constraints (about 8% of the box is feasible); (1.2, 1.2).
* ``srn``: Srinivas and Deb, 2-D, 2 constraints; (250, 50).
* ``osy``: Osyczka and Kundu, 6-D, 6 constraints; (0, 80).

For each run the hypervolume of its feasible complete trials (below the reference point) is
recorded after each trial count; the tables compare ``1 - HV / HV*``, HV* the largest
hypervolume any run of any sampler reached on that problem at that count (0: the best front
found), paired over problem x seed with airda.eval's Wilcoxon and sign tests.

Run: ``python bench/mo_constrained.py --runs bench/runs/mo_constrained.jsonl`` (appends a
line per run; ``--samplers``, ``--problems``, ``--seeds`` select a part); ``--merge FILES``
prints the tables of stored runs. The Optuna samplers need the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import airda
from airda.space import Float


@dataclass
class Problem:
    name: str
    bounds: list[tuple[float, float]]
    f: Callable[[np.ndarray], tuple[float, float]]
    c: Callable[[np.ndarray], list[float]]
    ref: tuple[float, float]


def _tnk_c(x: np.ndarray) -> list[float]:
    a, b = x
    wave = 1.0 + 0.1 * math.cos(16.0 * math.atan2(a, b))
    return [wave - a * a - b * b, (a - 0.5) ** 2 + (b - 0.5) ** 2 - 0.5]


def _osy_f(x: np.ndarray) -> tuple[float, float]:
    f1 = -(
        25 * (x[0] - 2) ** 2 + (x[1] - 2) ** 2 + (x[2] - 1) ** 2 + (x[3] - 4) ** 2 + (x[4] - 1) ** 2
    )
    return float(f1), float(np.sum(x * x))


def _osy_c(x: np.ndarray) -> list[float]:
    x1, x2, x3, x4, x5, x6 = x
    return [
        2 - x1 - x2,
        x1 + x2 - 6,
        x2 - x1 - 2,
        x1 - 3 * x2 - 2,
        (x3 - 3) ** 2 + x4 - 4,
        4 - (x5 - 3) ** 2 - x6,
    ]


PROBLEMS = [
    Problem(
        "bnh",
        [(0.0, 5.0), (0.0, 3.0)],
        lambda x: (4 * x[0] ** 2 + 4 * x[1] ** 2, (x[0] - 5) ** 2 + (x[1] - 5) ** 2),
        lambda x: [(x[0] - 5) ** 2 + x[1] ** 2 - 25, 7.7 - (x[0] - 8) ** 2 - (x[1] + 3) ** 2],
        (140.0, 55.0),
    ),
    Problem("tnk", [(0.0, math.pi)] * 2, lambda x: (float(x[0]), float(x[1])), _tnk_c, (1.2, 1.2)),
    Problem(
        "srn",
        [(-20.0, 20.0)] * 2,
        lambda x: (2 + (x[0] - 2) ** 2 + (x[1] - 1) ** 2, 9 * x[0] - (x[1] - 1) ** 2),
        lambda x: [x[0] ** 2 + x[1] ** 2 - 225, x[0] - 3 * x[1] + 10],
        (250.0, 50.0),
    ),
    Problem(
        "osy",
        [(0.0, 10.0), (0.0, 10.0), (1.0, 5.0), (0.0, 6.0), (1.0, 5.0), (0.0, 10.0)],
        _osy_f,
        _osy_c,
        (0.0, 80.0),
    ),
]


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """The 2-D hypervolume of `points` below `ref` (minimisation)."""
    from airda.ops import hypervolume as hv

    inside = np.array([p for p in points if p[0] < ref[0] and p[1] < ref[1]], dtype=np.float64)
    if not len(inside):
        return 0.0
    return float(hv(inside, np.asarray(ref, dtype=np.float64)))


def run(sampler: str, p: Problem, seed: int, counts: list[int]) -> dict[str, Any]:
    """The feasible front's hypervolume after each count."""
    n = max(counts)
    feasible: list[tuple[float, float]] = []
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    names = [f"x{i}" for i in range(len(p.bounds))]
    if sampler.startswith("optuna-"):
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if sampler == "optuna-tpe":
                s = optuna.samplers.TPESampler(multivariate=True, seed=seed)
            elif sampler == "optuna-nsga2":
                s = optuna.samplers.NSGAIISampler(seed=seed)
            else:
                raise SystemExit(f"unknown sampler {sampler!r}")
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
        dists = {
            name: optuna.distributions.FloatDistribution(lo, hi)
            for name, (lo, hi) in zip(names, p.bounds, strict=True)
        }
        for i in range(n):
            trial = study.ask(dists)
            x = np.array([trial.params[k] for k in names])
            f, c = p.f(x), p.c(x)
            for k, v in enumerate(c):
                trial.set_constraint(f"c{k}", v)
            study.tell(trial, f)
            if max(c) <= 0:
                feasible.append(f)
            if i + 1 in counts:
                out[str(i + 1)] = hypervolume(feasible, p.ref)
    else:
        space = {k: Float(lo, hi) for k, (lo, hi) in zip(names, p.bounds, strict=True)}
        strategy = "auto" if sampler == "auto" else sampler.removeprefix("airda-")
        study = airda.create_study(
            space=space, directions=["minimize", "minimize"], strategy=strategy, seed=seed
        )
        for i in range(n):
            trial = study.ask()
            x = np.array([trial.params[k] for k in names])
            f, c = p.f(x), p.c(x)
            study.tell(trial, f, constraints=c)
            if max(c) <= 0:
                feasible.append(f)
            if i + 1 in counts:
                out[str(i + 1)] = hypervolume(feasible, p.ref)
    return {"hv": out, "wall_seconds": time.perf_counter() - t0}


def as_regret_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``regret`` = 1 - HV / HV*, HV* the largest of the problem at that count."""
    top: dict[tuple[str, str], float] = {}
    for r in rows:
        for t, v in r["hv"].items():
            top[(r["problem"], t)] = max(top.get((r["problem"], t), 0.0), v)
    out = []
    for r in rows:
        regret = {
            t: (1.0 - v / top[(r["problem"], t)]) if top[(r["problem"], t)] > 0 else 0.0
            for t, v in r["hv"].items()
        }
        out.append({**r, "regret": regret})
    return out


def _tables(rows: list[dict[str, Any]]) -> str:
    path = Path(__file__).resolve().parent / "hpo_auto.py"
    spec = importlib.util.spec_from_file_location("hpo_auto", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hpo_auto"] = module
    spec.loader.exec_module(module)
    found = list(dict.fromkeys(r["sampler"] for r in rows))
    pairs = [
        (a, b)
        for a, b in (("auto", "optuna-tpe"), ("airda-nsga2", "optuna-nsga2"))
        if a in found and b in found
    ]
    text = module.tables(as_regret_rows(rows), pairs)
    return (
        text.replace("Median regret", "Median 1 - HV/HV*")
        .replace("log10 regret (regrets below 1e-8 equal)", "log10(1 - HV/HV*) (below 1e-8 equal)")
        .replace("auto against each peer", "airda's sampler against Optuna's")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samplers", default="auto,airda-nsga2,optuna-tpe,optuna-nsga2")
    ap.add_argument("--problems", default="")
    ap.add_argument("--trials", default="200,1000")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--runs", default="", help="append each finished run here (JSON lines)")
    ap.add_argument("--merge", default="", help="print the tables of these runs files only")
    ap.add_argument("--quick", action="store_true", help="a run of seconds")
    args = ap.parse_args(argv)
    if args.merge:
        rows = []
        for path in args.merge.split(","):
            with open(path) as fh:
                rows += [json.loads(line) for line in fh if line.strip()]
        print(_tables(rows))
        return 0
    if args.quick:
        args.samplers, args.trials, args.seeds = "auto,airda-nsga2", "30,60", 1
        args.problems = args.problems or "bnh,tnk"
    todo = PROBLEMS
    if args.problems:
        keep = set(args.problems.split(","))
        todo = [p for p in PROBLEMS if p.name in keep]
    counts = sorted(int(t) for t in args.trials.split(","))
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    rows = []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        for p in todo:
            for s in args.samplers.split(","):
                r = run(s, p, seed, counts)
                row = {
                    "sampler": s,
                    "problem": p.name,
                    "group": "2-D" if len(p.bounds) == 2 else "6-D",
                    "seed": seed,
                    "hv": r["hv"],
                    "wall_seconds": r["wall_seconds"],
                }
                rows.append(row)
                if args.runs:
                    with open(args.runs, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                print(
                    f"  {s:12s} {p.name:5s} seed {seed}: "
                    + ", ".join(f"HV@{c} {r['hv'][str(c)]:.4g}" for c in counts)
                    + f"  ({r['wall_seconds']:.1f} s)",
                    file=sys.stderr,
                )
    print(_tables(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

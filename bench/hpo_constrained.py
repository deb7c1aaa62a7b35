"""Constrained optimisation: airda's default strategy against Optuna's TPE and GP samplers
with ``constraints_func``, at equal budgets, paired over problem x seed.

Every problem is a minimisation with constraints ``c_i(x) <= 0`` whose unconstrained optimum
is infeasible (the constraints are active at the constrained optimum). The regret after n
trials is the best *feasible* value found minus the constrained optimum; a run that found no
feasible trial gets the regret ``NO_FEASIBLE`` (worse than any found). The optima are
published values or, where marked, the best of a SciPy SLSQP multistart (400 starts) computed
when the script starts:

* ``rosenbrock-disk-2``: Rosenbrock on [-1.5, 1.5]^2, x^2 + y^2 <= 2 (optimum 0 at (1, 1)).
* ``rosenbrock-cubic-2``: Rosenbrock with a cubic and a line, (x-1)^3 - y + 1 <= 0 and
  x + y - 2 <= 0 (optimum 0 at (1, 1)).
* ``mishra-bird-2``: (x+5)^2 + (y+5)^2 <= 25 on [-10, 0] x [-6.5, 0] (-106.7645367).
* ``gomez-levy-2``: -sin(4 pi x) + 2 sin^2(2 pi y) <= 1.5 (-1.031628453).
* ``simionescu-2``: 0.1 x y, x^2 + y^2 <= (1 + 0.2 cos(8 atan2(x, y)))^2 (-0.072).
* ``spring-3``: the tension/compression spring design, 4 constraints (SLSQP).
* ``vessel-4``: the pressure vessel design, continuous thicknesses, 4 constraints (SLSQP).
* ``hartmann6-l1``: Hartmann-6 with sum(x) <= 1.5 (SLSQP).
* ``rosenbrock-ball-10``: Rosenbrock-10 on [-2, 2]^10 with |x|^2 <= 5 (SLSQP).
* ``ackley-halfspace-5``: Ackley-5 on [-5, 5]^5 with sum(x) >= 2.5 (SLSQP).

Run: ``python bench/hpo_constrained.py --runs bench/runs/hpo_constrained.jsonl`` (appends a
line per finished run; ``--samplers``, ``--problems``, ``--seeds`` select a part, so that
separate processes can share the work); ``--merge FILES`` prints the tables of stored runs.
Peers need the ``bench`` extra (optuna).
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import airda
from airda.hpo.functions import get_function
from airda.space import Float

NO_FEASIBLE = 1e6  # the regret of a run without a feasible trial (worse than any found)


def _hpo_auto() -> Any:
    """bench/hpo_auto.py (its paired tables)."""
    path = Path(__file__).resolve().parent / "hpo_auto.py"
    spec = importlib.util.spec_from_file_location("hpo_auto", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hpo_auto"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Problem:
    name: str
    group: str
    bounds: list[tuple[float, float]]
    f: Callable[[np.ndarray], float]
    c: Callable[[np.ndarray], list[float]]
    optimum: float | None  # None: computed by the SLSQP multistart

    @property
    def space(self) -> dict[str, Any]:
        return {f"x{i}": Float(lo, hi) for i, (lo, hi) in enumerate(self.bounds)}

    def x(self, params: Mapping[str, Any]) -> np.ndarray:
        return np.array([float(params[f"x{i}"]) for i in range(len(self.bounds))])


def _rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def _mishra_bird(x: np.ndarray) -> float:
    a, b = x
    return float(
        math.sin(b) * math.exp((1 - math.cos(a)) ** 2)
        + math.cos(a) * math.exp((1 - math.sin(b)) ** 2)
        + (a - b) ** 2
    )


def _gomez_levy(x: np.ndarray) -> float:
    a, b = x
    return float(4 * a**2 - 2.1 * a**4 + a**6 / 3 + a * b - 4 * b**2 + 4 * b**4)


def _spring(x: np.ndarray) -> float:
    d, big_d, n = x
    return float((n + 2.0) * big_d * d * d)


def _spring_c(x: np.ndarray) -> list[float]:
    d, big_d, n = x
    return [
        1.0 - big_d**3 * n / (71785.0 * d**4),
        (4 * big_d**2 - d * big_d) / (12566.0 * (big_d * d**3 - d**4))
        + 1.0 / (5108.0 * d**2)
        - 1.0,
        1.0 - 140.45 * d / (big_d**2 * n),
        (big_d + d) / 1.5 - 1.0,
    ]


def _vessel(x: np.ndarray) -> float:
    ts, th, r, length = x
    return float(
        0.6224 * ts * r * length
        + 1.7781 * th * r * r
        + 3.1661 * ts * ts * length
        + 19.84 * ts * ts * r
    )


def _vessel_c(x: np.ndarray) -> list[float]:
    ts, th, r, length = x
    return [
        # scaled so that each is of order 1 near the optimum
        (-ts + 0.0193 * r) / 0.1,
        (-th + 0.00954 * r) / 0.1,
        (-math.pi * r * r * length - 4.0 / 3.0 * math.pi * r**3 + 1296000.0) / 1296000.0,
        (length - 240.0) / 240.0,
    ]


def problems() -> list[Problem]:
    hartmann = get_function("hartmann6", None)
    ackley = get_function("ackley", 5)
    return [
        Problem(
            "rosenbrock-disk-2",
            "2-D",
            [(-1.5, 1.5)] * 2,
            _rosenbrock,
            lambda x: [float(x @ x) - 2.0],
            0.0,
        ),
        Problem(
            "rosenbrock-cubic-2",
            "2-D",
            [(-1.5, 1.5), (-0.5, 2.5)],
            _rosenbrock,
            lambda x: [(x[0] - 1) ** 3 - x[1] + 1, x[0] + x[1] - 2],
            0.0,
        ),
        Problem(
            "mishra-bird-2",
            "2-D",
            [(-10.0, 0.0), (-6.5, 0.0)],
            _mishra_bird,
            lambda x: [(x[0] + 5) ** 2 + (x[1] + 5) ** 2 - 25.0],
            -106.7645367,
        ),
        Problem(
            "gomez-levy-2",
            "2-D",
            [(-1.0, 0.75), (-1.0, 1.0)],
            _gomez_levy,
            lambda x: [-math.sin(4 * math.pi * x[0]) + 2 * math.sin(2 * math.pi * x[1]) ** 2 - 1.5],
            -1.031628453,
        ),
        Problem(
            "simionescu-2",
            "2-D",
            [(-1.25, 1.25)] * 2,
            lambda x: float(0.1 * x[0] * x[1]),
            lambda x: [float(x @ x) - (1 + 0.2 * math.cos(8 * math.atan2(x[0], x[1]))) ** 2],
            -0.072,
        ),
        Problem(
            "spring-3",
            "design",
            [(0.05, 2.0), (0.25, 1.3), (2.0, 15.0)],
            _spring,
            _spring_c,
            None,
        ),
        Problem(
            "vessel-4",
            "design",
            [(0.0625, 6.1875), (0.0625, 6.1875), (10.0, 200.0), (10.0, 240.0)],
            _vessel,
            _vessel_c,
            None,
        ),
        Problem(
            "hartmann6-l1",
            "higher-D",
            [(0.0, 1.0)] * 6,
            lambda x: float(hartmann(x)),
            lambda x: [float(x.sum()) - 1.5],
            None,
        ),
        Problem(
            "rosenbrock-ball-10",
            "higher-D",
            [(-2.0, 2.0)] * 10,
            _rosenbrock,
            lambda x: [float(x @ x) - 5.0],
            None,
        ),
        Problem(
            "ackley-halfspace-5",
            "higher-D",
            [(-5.0, 5.0)] * 5,
            lambda x: float(ackley(x)),
            lambda x: [2.5 - float(x.sum())],
            None,
        ),
    ]


def reference_optimum(p: Problem, starts: int = 400) -> float:
    """The best feasible value of an SLSQP multistart (uniform starts in the box)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    lo = np.array([b[0] for b in p.bounds])
    hi = np.array([b[1] for b in p.bounds])
    best = math.inf
    for _ in range(starts):
        x0 = lo + rng.random(len(lo)) * (hi - lo)
        with np.errstate(all="ignore"):
            res = minimize(
                p.f,
                x0,
                method="SLSQP",
                bounds=list(p.bounds),
                constraints=[{"type": "ineq", "fun": lambda x: -np.asarray(p.c(x))}],
                options={"maxiter": 500, "ftol": 1e-12},
            )
        x = np.clip(res.x, lo, hi)
        if max(p.c(x)) <= 0.0 and math.isfinite(p.f(x)):
            best = min(best, p.f(x))
    return best


def run(sampler: str, p: Problem, seed: int, n: int, optimum: float) -> dict[str, Any]:
    """Regret of the best feasible value after every trial count up to n."""
    best = math.inf
    regrets = np.empty(n)
    t0 = time.perf_counter()
    if sampler.startswith("optuna-"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)

        def cons(t: Any) -> list[float]:
            return t.user_attrs["c"]

        if sampler == "optuna-tpe":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                s = optuna.samplers.TPESampler(multivariate=True, constraints_func=cons, seed=seed)
        elif sampler == "optuna-gp":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                s = optuna.samplers.GPSampler(constraints_func=cons, seed=seed)
        else:
            raise SystemExit(f"unknown sampler {sampler!r}")
        study = optuna.create_study(sampler=s)
        dists = {
            f"x{i}": optuna.distributions.FloatDistribution(lo, hi)
            for i, (lo, hi) in enumerate(p.bounds)
        }
        for i in range(n):
            trial = study.ask(dists)
            x = p.x(trial.params)
            value, c = p.f(x), p.c(x)
            trial.set_user_attr("c", c)
            study.tell(trial, value)
            if max(c) <= 0.0:
                best = min(best, value)
            regrets[i] = best - optimum if math.isfinite(best) else NO_FEASIBLE
    else:
        study = airda.create_study(space=p.space, strategy=sampler, seed=seed)
        for i in range(n):
            trial = study.ask()
            x = p.x(trial.params)
            value, c = p.f(x), p.c(x)
            study.tell(trial, value, constraints=c)
            if max(c) <= 0.0:
                best = min(best, value)
            regrets[i] = best - optimum if math.isfinite(best) else NO_FEASIBLE
    return {"regrets": np.maximum(regrets, 0.0), "wall_seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samplers", default="auto,optuna-tpe,optuna-gp")
    ap.add_argument("--problems", default="", help="only these (comma-separated)")
    ap.add_argument("--trials", default="50,200")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--runs", default="", help="append each finished run here (JSON lines)")
    ap.add_argument("--merge", default="", help="print the tables of these runs files only")
    ap.add_argument("--quick", action="store_true", help="a run of seconds")
    ap.add_argument("--optima", action="store_true", help="print the optima and exit")
    args = ap.parse_args(argv)
    hpo_auto = _hpo_auto()
    if args.merge:
        rows = []
        for path in args.merge.split(","):
            with open(path) as fh:
                rows += [json.loads(line) for line in fh if line.strip()]
        peers = [s for s in dict.fromkeys(r["sampler"] for r in rows) if s != "auto"]
        print(hpo_auto.tables(rows, [("auto", s) for s in peers]))
        return 0
    if args.quick:
        args.samplers, args.trials, args.seeds = "auto,tpe", "10,20", 1
        args.problems = args.problems or "rosenbrock-disk-2,spring-3"
    todo = problems()
    if args.problems:
        keep = set(args.problems.split(","))
        todo = [p for p in todo if p.name in keep]
    optima = {}
    for p in todo:
        optima[p.name] = p.optimum if p.optimum is not None else reference_optimum(p)
        if args.optima or args.quick:
            print(f"# {p.name}: optimum {optima[p.name]:.10g}", file=sys.stderr)
    if args.optima:
        return 0
    samplers = args.samplers.split(",")
    counts = sorted(int(t) for t in args.trials.split(","))
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    rows = []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        for p in todo:
            for s in samplers:
                r = run(s, p, seed, max(counts), optima[p.name])
                row = {
                    "sampler": s,
                    "problem": p.name,
                    "group": p.group,
                    "seed": seed,
                    "regret": {str(c): float(r["regrets"][c - 1]) for c in counts},
                    "wall_seconds": r["wall_seconds"],
                }
                rows.append(row)
                if args.runs:
                    with open(args.runs, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                print(
                    f"  {s:10s} {p.name:20s} seed {seed}: "
                    + ", ".join(f"{c}: {row['regret'][str(c)]:.3g}" for c in counts)
                    + f"  ({r['wall_seconds']:.1f} s)",
                    file=sys.stderr,
                )
    pairs = [("auto", s) for s in samplers if s != "auto"] if "auto" in samplers else []
    print(hpo_auto.tables(rows, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

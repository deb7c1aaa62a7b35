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
* ``nb201-c10-small``: NAS-Bench-201's 12-epoch CIFAR-10 validation accuracy under a size
  budget (at most two 3x3 convolutions' worth of weights per cell); the optimum by enumeration
  (skipped without the table in ../shared/data).

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
from airda.space import Categorical, Float

NO_FEASIBLE = 1e6  # the regret of a run without a feasible trial (worse than any found)
OPTUNA_NAMED = None  # None: trial.set_constraint where Optuna has it (5+); False: constraints_func


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
    """Minimise ``f(params)`` subject to ``c(params) <= 0`` over ``space``. Box problems also
    keep their vector form (``bounds``, ``fx``, ``cx``) for the SLSQP reference optimum."""

    name: str
    group: str
    space: dict[str, Any]
    f: Callable[[Mapping[str, Any]], float]
    c: Callable[[Mapping[str, Any]], list[float]]
    optimum: float | None  # None: computed by the SLSQP multistart
    bounds: list[tuple[float, float]] | None = None
    fx: Callable[[np.ndarray], float] | None = None
    cx: Callable[[np.ndarray], list[float]] | None = None


def _box(
    name: str,
    group: str,
    bounds: list[tuple[float, float]],
    fx: Callable[[np.ndarray], float],
    cx: Callable[[np.ndarray], list[float]],
    optimum: float | None,
) -> Problem:
    def vec(p: Mapping[str, Any]) -> np.ndarray:
        return np.array([float(p[f"x{i}"]) for i in range(len(bounds))])

    return Problem(
        name,
        group,
        {f"x{i}": Float(lo, hi) for i, (lo, hi) in enumerate(bounds)},
        lambda p: fx(vec(p)),
        lambda p: cx(vec(p)),
        optimum,
        bounds,
        fx,
        cx,
    )


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
        _box(
            "rosenbrock-disk-2",
            "2-D",
            [(-1.5, 1.5)] * 2,
            _rosenbrock,
            lambda x: [float(x @ x) - 2.0],
            0.0,
        ),
        _box(
            "rosenbrock-cubic-2",
            "2-D",
            [(-1.5, 1.5), (-0.5, 2.5)],
            _rosenbrock,
            lambda x: [(x[0] - 1) ** 3 - x[1] + 1, x[0] + x[1] - 2],
            0.0,
        ),
        _box(
            "mishra-bird-2",
            "2-D",
            [(-10.0, 0.0), (-6.5, 0.0)],
            _mishra_bird,
            lambda x: [(x[0] + 5) ** 2 + (x[1] + 5) ** 2 - 25.0],
            -106.7645367,
        ),
        _box(
            "gomez-levy-2",
            "2-D",
            [(-1.0, 0.75), (-1.0, 1.0)],
            _gomez_levy,
            lambda x: [-math.sin(4 * math.pi * x[0]) + 2 * math.sin(2 * math.pi * x[1]) ** 2 - 1.5],
            -1.031628453,
        ),
        _box(
            "simionescu-2",
            "2-D",
            [(-1.25, 1.25)] * 2,
            lambda x: float(0.1 * x[0] * x[1]),
            lambda x: [float(x @ x) - (1 + 0.2 * math.cos(8 * math.atan2(x[0], x[1]))) ** 2],
            -0.072,
        ),
        _box(
            "spring-3",
            "design",
            [(0.05, 2.0), (0.25, 1.3), (2.0, 15.0)],
            _spring,
            _spring_c,
            None,
        ),
        _box(
            "vessel-4",
            "design",
            [(0.0625, 6.1875), (0.0625, 6.1875), (10.0, 200.0), (10.0, 240.0)],
            _vessel,
            _vessel_c,
            None,
        ),
        _box(
            "hartmann6-l1",
            "higher-D",
            [(0.0, 1.0)] * 6,
            lambda x: float(hartmann(x)),
            lambda x: [float(x.sum()) - 1.5],
            None,
        ),
        _box(
            "rosenbrock-ball-10",
            "higher-D",
            [(-2.0, 2.0)] * 10,
            _rosenbrock,
            lambda x: [float(x @ x) - 5.0],
            None,
        ),
        _box(
            "ackley-halfspace-5",
            "higher-D",
            [(-5.0, 5.0)] * 5,
            lambda x: float(ackley(x)),
            lambda x: [2.5 - float(x.sum())],
            None,
        ),
    ]


NB201 = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nasbench201" / "nb201_12epoch.csv"
)
CONV_BUDGET = 20.0  # 9 per 3x3 convolution + 1 per 1x1 in the cell: at most two 3x3 convs


def nb201_problem() -> Problem | None:
    """NAS-Bench-201 (12-epoch CIFAR-10 validation accuracy, maximised) under a size budget:
    the cell's convolution weights (9 per 3x3, 1 per 1x1, in units of C^2: the parameters a
    cell adds, up to constants) at most ``CONV_BUDGET``. The optimum by enumeration of the
    15,625 cells. None without the table in ../shared/data."""
    if not NB201.exists():
        return None
    from airda.nas import TabularBenchmark
    from airda.nas.nb201 import OPS, Arch, nb201_space, params_to_arch

    bench = TabularBenchmark.from_csv(NB201)
    column = "cifar10-val"
    weight = {"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0}

    def cost(arch: Any) -> float:
        return sum(weight.get(arch.op(*e), 0.0) for e in _EDGES)

    best = -math.inf
    for index in range(len(OPS) ** 6):
        arch = Arch.from_index(index)
        if cost(arch) <= CONV_BUDGET:
            acc = bench.lookup(arch, column)
            if math.isfinite(acc):
                best = max(best, acc)
    space = nb201_space()
    return Problem(
        "nb201-c10-small",
        "NAS",
        {name: space[name] for name in space.names},
        lambda p: 100.0 - bench.lookup(params_to_arch(p), column),
        lambda p: [cost(params_to_arch(p)) - CONV_BUDGET],
        100.0 - best,
    )


_EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def reference_optimum(p: Problem, starts: int = 400) -> float:
    """The best feasible value of an SLSQP multistart (uniform starts in the box)."""
    from scipy.optimize import minimize

    assert p.bounds is not None
    assert p.fx is not None
    assert p.cx is not None
    fx, cx = p.fx, p.cx
    rng = np.random.default_rng(0)
    lo = np.array([b[0] for b in p.bounds])
    hi = np.array([b[1] for b in p.bounds])
    best = math.inf
    for _ in range(starts):
        x0 = lo + rng.random(len(lo)) * (hi - lo)
        with np.errstate(all="ignore"):
            res = minimize(
                fx,
                x0,
                method="SLSQP",
                bounds=list(p.bounds),
                constraints=[{"type": "ineq", "fun": lambda x: -np.asarray(cx(x))}],
                options={"maxiter": 500, "ftol": 1e-12},
            )
        x = np.clip(res.x, lo, hi)
        if max(cx(x)) <= 0.0 and math.isfinite(fx(x)):
            best = min(best, fx(x))
    return best


def run(sampler: str, p: Problem, seed: int, n: int, optimum: float) -> dict[str, Any]:
    """Regret of the best feasible value after every trial count up to n."""
    best = math.inf
    regrets = np.empty(n)
    t0 = time.perf_counter()
    if sampler.startswith("optuna-"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # Optuna 5 takes constraints from trial.set_constraint(key, value); constraints_func
        # (the sampler's argument before it) is deprecated there.
        named = hasattr(optuna.trial.Trial, "set_constraint") if OPTUNA_NAMED is None else False

        def read(t: Any) -> list[float]:
            return t.user_attrs["c"]

        cons = None if named else read

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
            name: optuna.distributions.CategoricalDistribution(list(q.choices))
            if isinstance(q, Categorical)
            else optuna.distributions.FloatDistribution(q.low, q.high)
            for name, q in p.space.items()
        }
        for i in range(n):
            trial = study.ask(dists)
            value, c = p.f(trial.params), p.c(trial.params)
            if named:
                for k, v in enumerate(c):
                    trial.set_constraint(f"c{k}", v)
            else:
                trial.set_user_attr("c", c)
            study.tell(trial, value)
            if max(c) <= 0.0:
                best = min(best, value)
            regrets[i] = best - optimum if math.isfinite(best) else NO_FEASIBLE
    else:
        study = airda.create_study(space=p.space, strategy=sampler, seed=seed)
        for i in range(n):
            trial = study.ask()
            value, c = p.f(trial.params), p.c(trial.params)
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
    keep = set(args.problems.split(",")) if args.problems else None
    if keep is None or "nb201-c10-small" in keep:
        nas = nb201_problem()
        if nas is None:
            print(f"# NAS: no NAS-Bench-201 table at {NB201} (skipped)", file=sys.stderr)
        else:
            todo.append(nas)
    if keep is not None:
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

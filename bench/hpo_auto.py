"""airda's default strategy against Optuna's samplers at equal budgets (issue 24, HPO half).

Problems (``--suite``, several joined with commas):

* ``continuous``: the test functions of :mod:`airda.hpo.functions` in 2-20 dimensions
  (Branin, Hartmann-6, Rosenbrock, Ackley, Rastrigin, Levy) and a 40-D ellipsoid and Levy;
* ``mixed``: Levy-6 and Rosenbrock-6 with half of the coordinates integers and a categorical
  parameter that adds 0, 1, 2 or 3 to the value (its first choice is the optimum's);
* ``conditional``: a categorical ``branch`` picks Rosenbrock-4 (parameters ``a0..a3``) or
  Levy-4 shifted up by 0.5 (``b0..b3``): only the active branch's parameters exist;
* ``noisy``: Hartmann-6 and Levy-5 plus Gaussian noise (sd 0.05 and 0.5); the regret is the
  noise-free value of the trial with the best observed value, as a user would pick it;
* ``tabular``: NAS-Bench-201's 12-epoch CIFAR-10 validation accuracy (six categorical
  parameters of five choices; ``../shared/data/nasbench201``), loss 100 - accuracy. Skipped,
  with the reason printed, when the table is absent.

Samplers (``--samplers``): ``auto`` (airda's default, what ``create_study`` uses when no
strategy is named), any other airda strategy name, ``optuna-tpe`` (TPESampler(multivariate=True,
group=True for the conditional problem)), ``optuna-gp`` (GPSampler) and ``optuna-auto``
(OptunaHub's AutoSampler: it is fetched from GitHub at run time, which this machine cannot
reach, so it is reported as skipped unless ``optunahub`` can load it).

For every problem, seed and sampler a study runs to the largest trial count and records the
regret after each count (``--trials``, default 50,200,1000; ``optuna-gp`` stops at 200: its
exact GP costs O(n^3) per trial and takes minutes per run beyond that). A finished run is
appended to ``--runs`` (JSON lines) at once; ``--merge FILES`` builds the tables from such files
without running anything. The tables: median regret per problem, and per pair (auto against
each peer) and trial count the paired Wilcoxon signed-rank test of log10 regret over all
problem x seed pairs, overall and by group (dimension up to 5, 6-10, over 10; mixed,
conditional, noisy, tabular), with airda.eval. Regrets below 1e-8 count as solved (equal).

    python bench/hpo_auto.py --suite continuous --samplers auto,optuna-tpe --trials 50,200 \\
        --seeds 10 --runs runs.jsonl
    python bench/hpo_auto.py --merge runs.jsonl,more.jsonl
    python bench/hpo_auto.py --quick        # seconds (the test suite runs it)
"""

from __future__ import annotations

import argparse
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

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

import airda
from airda.hpo.functions import get_function
from airda.space import Categorical, Float, Int

NB201 = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nasbench201" / "nb201_12epoch.csv"
)
PRECISION = 1e-8
GP_MAX = 200


@dataclass
class Problem:
    """A minimisation problem: ``observe`` (what the sampler sees) and ``true`` (the regret's
    value) of a params dict, over ``space``; ``optimum`` the least true value."""

    name: str
    group: str
    space: dict[str, Any]
    observe: Callable[[Mapping[str, Any], np.random.Generator], float]
    true: Callable[[Mapping[str, Any]], float]
    optimum: float


def _params(space: Any) -> dict[str, Any]:
    return {name: space[name] for name in space.names}


def _function(name: str, dim: int | None) -> Problem:
    f = get_function(name, dim)
    group = "dim<=5" if f.dim <= 5 else "dim6-10" if f.dim <= 10 else "dim>10"
    return Problem(
        f"{name}-{f.dim}",
        group,
        _params(f.space()),
        lambda p, _r: f.objective(p),
        f.objective,
        f.optimum,
    )


def _mixed(name: str, dim: int) -> Problem:
    """Half of the coordinates integers (the box's integer points include the argmin), and a
    categorical penalty."""
    f = get_function(name, dim)
    space: dict[str, Any] = {}
    for i in range(dim):
        lo, hi = float(f.low[i]), float(f.high[i])
        space[f"x{i}"] = Float(lo, hi) if i < dim // 2 else Int(math.ceil(lo), math.floor(hi))
    space["c"] = Categorical(["p0", "p1", "p2", "p3"])

    def value(p: Mapping[str, Any]) -> float:
        x = np.array([float(p[f"x{i}"]) for i in range(dim)])
        return float(f(x)) + float(p["c"][1])

    return Problem(f"mixed-{name}-{dim}", "mixed", space, lambda p, _r: value(p), value, f.optimum)


def _conditional() -> Problem:
    ros, levy = get_function("rosenbrock", 4), get_function("levy", 4)
    space: dict[str, Any] = {"branch": Categorical(["rosenbrock", "levy"])}
    for i in range(4):
        space[f"a{i}"] = Float(
            float(ros.low[i]), float(ros.high[i]), when={"branch": ["rosenbrock"]}
        )
        space[f"b{i}"] = Float(float(levy.low[i]), float(levy.high[i]), when={"branch": ["levy"]})

    def value(p: Mapping[str, Any]) -> float:
        if p["branch"] == "rosenbrock":
            return float(ros(np.array([p[f"a{i}"] for i in range(4)])))
        return float(levy(np.array([p[f"b{i}"] for i in range(4)]))) + 0.5

    return Problem("conditional-8", "conditional", space, lambda p, _r: value(p), value, 0.0)


def _noisy(name: str, dim: int | None, sd: float) -> Problem:
    f = get_function(name, dim)
    return Problem(
        f"noisy-{name}-{f.dim}",
        "noisy",
        _params(f.space()),
        lambda p, r: f.objective(p) + sd * float(r.standard_normal()),
        f.objective,
        f.optimum,
    )


def _nb201() -> Problem | str:
    if not NB201.exists():
        return f"tabular: no NAS-Bench-201 table at {NB201} (skipped)"
    from airda.nas import TabularBenchmark
    from airda.nas.nb201 import nb201_space, params_to_arch

    bench = TabularBenchmark.from_csv(NB201)
    column = "cifar10-val"
    best = float(np.nanmax(bench.values(column)))
    space = _params(nb201_space())

    def value(p: Mapping[str, Any]) -> float:
        return 100.0 - bench.lookup(params_to_arch(p), column)

    return Problem("nb201-cifar10", "tabular", space, lambda p, _r: value(p), value, 100.0 - best)


def suite(names: list[str]) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    skipped: list[str] = []
    for name in names:
        if name == "continuous":
            problems += [_function("branin", None), _function("hartmann6", None)]
            for d in (2, 5, 10, 20):
                problems += [_function(f, d) for f in ("rosenbrock", "ackley", "rastrigin", "levy")]
            problems += [_function("ellipsoid", 40), _function("levy", 40)]
        elif name == "mixed":
            problems += [_mixed("levy", 6), _mixed("rosenbrock", 6)]
        elif name == "conditional":
            problems.append(_conditional())
        elif name == "noisy":
            problems += [_noisy("hartmann6", None, 0.05), _noisy("levy", 5, 0.5)]
        elif name == "tabular":
            nb = _nb201()
            if isinstance(nb, str):
                skipped.append(nb)
            else:
                problems.append(nb)
        elif name == "quick":
            problems += [_function("branin", None), _mixed("levy", 4), _conditional()]
        else:
            raise SystemExit(f"unknown suite {name!r}")
    return problems, skipped


# ---- one run ---------------------------------------------------------------------------------
def _optuna_sampler(name: str, seed: int, conditional: bool) -> Any:
    import optuna

    if name == "optuna-tpe":
        import warnings

        with warnings.catch_warnings():  # multivariate and group are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=conditional, seed=seed)
    if name == "optuna-gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "optuna-auto":
        import optunahub

        return optunahub.load_module("samplers/auto_sampler").AutoSampler(seed=seed)
    raise SystemExit(f"unknown Optuna sampler {name!r}")


def _suggest(trial: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """Define-by-run suggestions for an airda space (conditions in declaration order)."""
    params: dict[str, Any] = {}
    for name, p in space.items():
        if any(params.get(k) not in allowed for k, allowed in p.when.items()):
            continue
        if isinstance(p, Categorical):
            params[name] = trial.suggest_categorical(name, list(p.choices))
        elif isinstance(p, Int):
            params[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
        else:
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
    return params


def _distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions of an airda space without conditions (asked up front, as
    bench/hpo_table.py does, so the relative samplers see every parameter from the start)."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Categorical):
            out[name] = d.CategoricalDistribution(list(p.choices))
        elif isinstance(p, Int):
            out[name] = d.IntDistribution(p.low, p.high, log=p.log)
        else:
            out[name] = d.FloatDistribution(p.low, p.high, log=p.log)
    return out


def run(sampler: str, problem: Problem, seed: int, n: int) -> dict[str, Any]:
    """Regret after every trial count up to n, ask seconds, wall seconds."""
    noise = np.random.default_rng([seed, 0x5EED])
    best_seen, best_true = math.inf, math.inf
    regrets = np.empty(n)
    ask_s = 0.0
    t0 = time.perf_counter()
    if sampler.startswith("optuna-"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        conditional = any(p.when for p in problem.space.values())
        study = optuna.create_study(sampler=_optuna_sampler(sampler, seed, conditional))
        fixed = None if conditional else _distributions(problem.space)
        for i in range(n):
            a = time.perf_counter()
            if fixed is None:
                trial = study.ask()
                params = _suggest(trial, problem.space)
            else:
                trial = study.ask(fixed)
                params = dict(trial.params)
            ask_s += time.perf_counter() - a
            value = problem.observe(params, noise)
            study.tell(trial, value)
            if value < best_seen:
                best_seen, best_true = value, problem.true(params)
            regrets[i] = best_true - problem.optimum
    else:
        study = airda.create_study(space=problem.space, strategy=sampler, seed=seed)
        for i in range(n):
            a = time.perf_counter()
            trial = study.ask()
            ask_s += time.perf_counter() - a
            value = problem.observe(trial.params, noise)
            study.tell(trial, value)
            if value < best_seen:
                best_seen, best_true = value, problem.true(trial.params)
            regrets[i] = best_true - problem.optimum
    return {
        "regrets": np.maximum(regrets, 0.0),
        "ask_seconds": ask_s,
        "wall_seconds": time.perf_counter() - t0,
    }


# ---- tables ----------------------------------------------------------------------------------
def _log(x: float) -> float:
    return math.log10(max(x, PRECISION))


def tables(rows: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> str:
    from airda.eval import sign_test, wilcoxon

    by: dict[tuple[str, str, int, str], float] = {}
    groups: dict[str, str] = {}
    samplers: list[str] = []
    counts: set[str] = set()
    for r in rows:
        for t, v in r["regret"].items():
            by[(r["sampler"], r["problem"], r["seed"], t)] = v
            counts.add(t)
        groups[r["problem"]] = r["group"]
        if r["sampler"] not in samplers:
            samplers.append(r["sampler"])
    out = []
    problems = sorted(groups)
    for t in sorted(counts, key=int):
        out.append(f"\nMedian regret after {t} trials:\n")
        here = [s for s in samplers if any(k[0] == s and k[3] == t for k in by)]
        out.append("| problem | " + " | ".join(here) + " |")
        out.append("|---|" + "---|" * len(here))
        for p in problems:
            cells = []
            for s in here:
                vals = [v for k, v in by.items() if k[0] == s and k[1] == p and k[3] == t]
                cells.append(f"{np.median(vals):.3g} ({len(vals)})" if vals else "")
            out.append(f"| {p} | " + " | ".join(cells) + " |")
    out.append(
        "\nPaired tests of log10 regret (regrets below 1e-8 equal), auto against each peer "
        "over problem x seed pairs: better / worse / ties, Wilcoxon signed-rank p (two-sided), "
        "sign test p.\n"
    )
    out.append("| pair | trials | group | n | better | worse | ties | Wilcoxon p | sign p |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for a, b in pairs:
        for t in sorted(counts, key=int):
            keys = [(p, s) for (smp, p, s, tt) in by if smp == a and tt == t and (b, p, s, t) in by]
            for label in ["all", *sorted({groups[p] for p, _ in keys})]:
                sub = [k for k in keys if label == "all" or groups[k[0]] == label]
                if not sub:
                    continue
                x = np.array([_log(by[(a, p, s, t)]) for p, s in sub])
                y = np.array([_log(by[(b, p, s, t)]) for p, s in sub])
                better, worse = int((x < y).sum()), int((x > y).sum())
                w = wilcoxon(x, y) if better + worse else None
                sg = sign_test(x, y) if better + worse else None
                out.append(
                    f"| {a} vs {b} | {t} | {label} | {len(sub)} | {better} | {worse} | "
                    f"{len(sub) - better - worse} | {w.p_value if w else 1.0:.3g} | "
                    f"{sg.p_value if sg else 1.0:.3g} |"
                )
    return "\n".join(out)


def ask_cost(problem: Problem, counts: list[int], seed: int = 0) -> str:
    """auto's mean ask time (wall and CPU) over the last tenth of the asks before each count."""
    n = max(counts)
    study = airda.create_study(space=problem.space, seed=seed)
    noise = np.random.default_rng(seed)
    wall, cpu, phase = np.empty(n), np.empty(n), []
    for i in range(n):
        phase.append(study.strategy.phase)
        c0, t0 = time.process_time(), time.perf_counter()
        trial = study.ask()
        wall[i], cpu[i] = time.perf_counter() - t0, time.process_time() - c0
        study.tell(trial, problem.observe(trial.params, noise))
    out = [
        f"\nauto's ask on {problem.name} (mean over the last tenth of the asks before each count):\n",
        "| asks | phase | wall ms | CPU ms |",
        "|---|---|---|---|",
    ]
    for c in counts:
        lo = c - max(c // 10, 1)
        out.append(
            f"| {c} | {phase[c - 1]} | {1e3 * wall[lo:c].mean():.3g} | {1e3 * cpu[lo:c].mean():.3g} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="continuous,mixed,conditional,noisy,tabular")
    ap.add_argument("--samplers", default=None, help="default auto,optuna-tpe,optuna-gp")
    ap.add_argument("--problems", default="", help="only these problem names (comma-separated)")
    ap.add_argument("--trials", default="50,200,1000")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--runs", default="", help="append each finished run here (JSON lines)")
    ap.add_argument("--merge", default="", help="build the tables from these runs files only")
    ap.add_argument("--quick", action="store_true", help="a run of seconds")
    ap.add_argument(
        "--gp-max",
        type=int,
        default=GP_MAX,
        help=f"the largest trial count Optuna's GP runs to (default {GP_MAX}: its ask grows with the history)",
    )
    ap.add_argument(
        "--timing",
        default="",
        help="only time auto's asks on the first problem at these counts (e.g. 100,300,1000,5000)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.suite, args.samplers, args.trials, args.seeds = "quick", "auto,random", "10,20", 2
    rows: list[dict[str, Any]] = []
    if args.merge:
        for path in args.merge.split(","):
            with open(path) as fh:
                rows += [json.loads(line) for line in fh if line.strip()]
        found = list(dict.fromkeys(r["sampler"] for r in rows))
        keep = args.samplers.split(",") if args.samplers else found
        rows = [r for r in rows if r["sampler"] in keep]
        print(tables(rows, [("auto", p) for p in found if p != "auto" and p in keep]))
        return 0
    samplers = (args.samplers or "auto,optuna-tpe,optuna-gp").split(",")
    peers = [s for s in samplers if s != "auto"]
    pairs = [("auto", p) for p in peers] if "auto" in samplers else []
    problems, skipped = suite(args.suite.split(","))
    if args.problems:
        keep = set(args.problems.split(","))
        problems = [p for p in problems if p.name in keep]
    if args.timing:
        print(ask_cost(problems[0], sorted(int(c) for c in args.timing.split(","))))
        return 0
    for s in samplers:
        if s == "optuna-auto":
            try:
                import optunahub

                optunahub.load_module("samplers/auto_sampler")
            except Exception as exc:  # no network, no package: say so
                skipped.append(f"optuna-auto: {type(exc).__name__}: {str(exc)[:120]} (skipped)")
                samplers = [x for x in samplers if x != "optuna-auto"]
                pairs = [p for p in pairs if p[1] != "optuna-auto"]
    for line in skipped:
        print(line, file=sys.stderr)
    counts = sorted(int(t) for t in args.trials.split(","))
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        file=sys.stderr,
    )
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        for problem in problems:
            for s in samplers:
                cs = [c for c in counts if not (s == "optuna-gp" and c > args.gp_max)]
                if not cs:
                    continue
                r = run(s, problem, seed, max(cs))
                row = {
                    "sampler": s,
                    "problem": problem.name,
                    "group": problem.group,
                    "seed": seed,
                    "regret": {str(c): float(r["regrets"][c - 1]) for c in cs},
                    "ask_seconds": r["ask_seconds"],
                    "wall_seconds": r["wall_seconds"],
                }
                rows.append(row)
                if args.runs:
                    with open(args.runs, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                print(
                    f"  {s:11s} {problem.name:18s} seed {seed}: "
                    + ", ".join(f"{c}: {row['regret'][str(c)]:.3g}" for c in cs)
                    + f"  ({r['wall_seconds']:.1f} s)",
                    file=sys.stderr,
                )
    print(tables(rows, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

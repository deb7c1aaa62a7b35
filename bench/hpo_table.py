"""Regret and sampler time of airda's HPO strategies against their Optuna counterparts.

For each sampler (airda's ``tpe``, ``cmaes`` and ``gp``; Optuna's TPESampler(multivariate=True),
CmaEsSampler and GPSampler), function, dimension and seed, a study runs to the largest trial
count asked for and records the best value after each count: the table gives the median
regret (best value minus the known optimum) over the seeds. GP runs stop at 200 trials (an
exact GP costs O(n^3) per trial; both libraries' GPs are built for small budgets).

Sampler time: separate runs (one seed, one function) time every ask (airda's ``study.ask()``;
Optuna's ``study.ask(fixed_distributions)``, which samples all parameters inside the ask) apart
from the objective, and report the mean over the last 10% of the trials before each count.

A paired test per pair (airda vs Optuna, regrets over functions x dims x seeds at each trial
count) uses airda.eval's Wilcoxon signed-rank and sign tests. Regrets below ``--precision``
(1e-8, the final target of the COCO/BBOB protocol) count as solved: they are compared as equal,
so a pair that both samplers solved is a tie, not a win for whichever rounded lower.

Run a subset (the full grid is long on a small machine)::

    python bench/hpo_table.py --samplers cmaes,optuna-cmaes --functions rosenbrock,levy \\
        --dims 2,5 --trials 50,200 --seeds 3 --timing 100,1000 --json out.json
    python bench/hpo_table.py --quick   # a tiny run (used by the tests)

At the end the script extrapolates, from the per-trial times it measured, how long the full
default grid would take.

Long runs lose nothing: every finished regret run is appended to ``<json>.runs.jsonl`` as it
completes, and ``--merge A.json,B.runs.jsonl,...`` builds the tables from such files (runs of
several invocations, or of one that was stopped) without running anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from typing import Any

import numpy as np

import airda
from airda.hpo.functions import FIXED_DIM, FUNCTIONS, get_function
from airda.strategies import STRATEGIES, get_strategy

AIRDA = ("tpe", "cmaes", "gp")
OPTUNA = ("optuna-tpe", "optuna-cmaes", "optuna-gp")
PAIRS = {"tpe": "optuna-tpe", "cmaes": "optuna-cmaes", "gp": "optuna-gp"}
GP_MAX_TRIALS = 200
DEFAULT_FUNCTIONS = ("branin", "hartmann6", "rosenbrock", "ackley", "rastrigin", "levy")
DEFAULT_DIMS = (2, 5, 10, 20)
DEFAULT_TRIALS = (50, 200, 1000)
DEFAULT_TIMING = (100, 1000, 5000)


def _is_gp(sampler: str) -> bool:
    return sampler in ("gp", "optuna-gp")


def available(samplers: list[str]) -> tuple[list[str], list[str]]:
    """The samplers that can run here, and a message for each one that cannot."""
    ok, skipped = [], []
    for s in samplers:
        if s in AIRDA:
            if s not in STRATEGIES:
                skipped.append(f"{s}: not registered in airda.strategies.STRATEGIES (skipped)")
                continue
        elif s in OPTUNA:
            try:
                import optuna  # noqa: F401

                if s == "optuna-cmaes":
                    import cmaes  # noqa: F401
            except ImportError as exc:
                skipped.append(f"{s}: {exc} (skipped)")
                continue
        else:
            raise SystemExit(f"unknown sampler {s!r}; choose from {AIRDA + OPTUNA}")
        ok.append(s)
    return ok, skipped


class _Runner:
    """Runs one study, timing asks apart from the objective."""

    def __init__(self, sampler: str, fname: str, dim: int, seed: int):
        self.sampler, self.f, self.seed = sampler, get_function(fname, dim), seed

    def run(self, n_trials: int) -> tuple[np.ndarray, np.ndarray]:
        """Best-so-far values (n_trials,) and ask seconds (n_trials,); the CPU seconds of the
        asks (this process, all threads) are left in ``self.ask_cpu``."""
        if self.sampler in OPTUNA:
            return self._run_optuna(n_trials)
        f = self.f
        study = airda.create_study(
            space=f.space(), strategy=get_strategy(self.sampler, seed=self.seed)
        )
        best = np.empty(n_trials)
        ask_s = np.empty(n_trials)
        self.ask_cpu = np.empty(n_trials)
        current = math.inf
        for i in range(n_trials):
            c0, t0 = time.process_time(), time.perf_counter()
            trial = study.ask()
            ask_s[i] = time.perf_counter() - t0
            self.ask_cpu[i] = time.process_time() - c0
            value = f.objective(trial.params)
            study.tell(trial, value)
            current = min(current, value)
            best[i] = current
        return best, ask_s

    def _run_optuna(self, n_trials: int) -> tuple[np.ndarray, np.ndarray]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        f = self.f
        if self.sampler == "optuna-tpe":
            sampler = optuna.samplers.TPESampler(multivariate=True, seed=self.seed)
        elif self.sampler == "optuna-cmaes":
            sampler = optuna.samplers.CmaEsSampler(seed=self.seed)
        else:
            sampler = optuna.samplers.GPSampler(seed=self.seed)
        study = optuna.create_study(sampler=sampler)
        dists = {
            f"x{i}": optuna.distributions.FloatDistribution(float(lo), float(hi))
            for i, (lo, hi) in enumerate(zip(f.low, f.high, strict=True))
        }
        best = np.empty(n_trials)
        ask_s = np.empty(n_trials)
        self.ask_cpu = np.empty(n_trials)
        current = math.inf
        for i in range(n_trials):
            c0, t0 = time.process_time(), time.perf_counter()
            trial = study.ask(dists)
            ask_s[i] = time.perf_counter() - t0
            self.ask_cpu[i] = time.process_time() - c0
            value = f.objective(trial.params)
            study.tell(trial, value)
            current = min(current, value)
            best[i] = current
        return best, ask_s


def regret_runs(
    samplers, cases, trials, seeds, log, sink=None, seed_start: int = 0
) -> list[dict[str, Any]]:
    """Every (sampler, case, seed) run; each finished row also goes to `sink` (a path: one JSON
    line per run, appended), so an interrupted grid keeps what it finished."""
    out = []
    for sampler in samplers:
        counts = [t for t in trials if not (_is_gp(sampler) and t > GP_MAX_TRIALS)]
        if not counts:
            continue
        n = max(counts)
        for fname, dim in cases:
            for seed in range(seed_start, seed_start + seeds):
                t0 = time.perf_counter()
                best, ask_s = _Runner(sampler, fname, dim, seed).run(n)
                f = get_function(fname, dim)
                row = {
                    "sampler": sampler,
                    "function": fname,
                    "dim": dim,
                    "seed": seed,
                    "regret": {str(t): f.regret(best[t - 1]) for t in counts},
                    "ask_seconds": float(ask_s.sum()),
                    "wall_seconds": time.perf_counter() - t0,
                    "n_trials": n,
                }
                out.append(row)
                if sink:
                    with open(sink, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                log(
                    f"  {sampler:13s} {fname}-{dim} seed {seed}: "
                    + ", ".join(f"{t}: {row['regret'][str(t)]:.3g}" for t in counts)
                    + f"  ({row['wall_seconds']:.1f} s)"
                )
    return out


def timing_runs(samplers, fname, dim, counts, log) -> list[dict[str, Any]]:
    out = []
    for sampler in samplers:
        cs = sorted({c for c in counts if not (_is_gp(sampler) and c > GP_MAX_TRIALS)})
        if _is_gp(sampler) and GP_MAX_TRIALS not in cs and any(c > GP_MAX_TRIALS for c in counts):
            cs.append(GP_MAX_TRIALS)
        if not cs:
            continue
        t0 = time.perf_counter()
        runner = _Runner(sampler, fname, dim, 0)
        _, ask_s = runner.run(max(cs))
        per, per_cpu = {}, {}
        for c in cs:
            lo = max(c - max(c // 10, 1), 0)
            per[str(c)] = float(ask_s[lo:c].mean())
            per_cpu[str(c)] = float(runner.ask_cpu[lo:c].mean())
        out.append(
            {
                "sampler": sampler,
                "function": fname,
                "dim": dim,
                "seconds_per_ask": per,
                "cpu_seconds_per_ask": per_cpu,
                "ask_seconds_cumulative": {str(c): float(ask_s[:c].sum()) for c in cs},
                "wall_seconds": time.perf_counter() - t0,
            }
        )
        log(
            f"  {sampler:13s} timing: "
            + ", ".join(
                f"{c}: {1e3 * v:.2f} ms/ask ({1e3 * per_cpu[c]:.2f} ms CPU)" for c, v in per.items()
            )
        )
    return out


def paired_tests(
    rows: list[dict[str, Any]], trials, precision: float = 1e-8
) -> list[dict[str, Any]]:
    from airda.eval import sign_test, wilcoxon

    index = {(r["sampler"], r["function"], r["dim"], r["seed"]): r for r in rows}
    out = []
    for a, b in PAIRS.items():
        for t in trials:
            pairs = []
            for (s, fn, d, seed), r in index.items():
                other = index.get((b, fn, d, seed))
                if s == a and other and str(t) in r["regret"] and str(t) in other["regret"]:
                    pairs.append((r["regret"][str(t)], other["regret"][str(t)]))
            if not pairs:
                continue
            # solved (below the target precision) compares as equal
            x = np.maximum(np.array([p[0] for p in pairs]), precision)
            y = np.maximum(np.array([p[1] for p in pairs]), precision)
            entry: dict[str, Any] = {
                "airda": a,
                "optuna": b,
                "trials": t,
                "n": len(pairs),
                "airda_better": int((x < y).sum()),
                "optuna_better": int((x > y).sum()),
                "ties": int((x == y).sum()),
                "median_airda": float(np.median(x)),
                "median_optuna": float(np.median(y)),
            }
            # Differences of log regrets: the functions' scales differ by orders of magnitude.
            lx, ly = np.log10(x), np.log10(y)
            if np.any(lx != ly):
                w = wilcoxon(lx, ly)
                st = sign_test(lx, ly)
                entry |= {"wilcoxon_p": w.p_value, "sign_p": st.p_value}
            out.append(entry)
    return out


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}"


def markdown(result: dict[str, Any]) -> str:
    rows, samplers, trials = result["regret_runs"], result["samplers"], result["trials"]
    lines = [f"Machine: {result['machine']}", ""]
    if rows:
        cases = sorted({(r["function"], r["dim"]) for r in rows})
        lines.append(
            f"Median regret over {result['seeds']} seeds (GP samplers stop at "
            f"{GP_MAX_TRIALS} trials: '-')."
        )
        lines.append("")
        header = "| function | dim | trials | " + " | ".join(samplers) + " |"
        lines += [header, "|" + "---|" * (3 + len(samplers))]
        for fname, dim in cases:
            for t in trials:
                cells = []
                for s in samplers:
                    vals = [
                        r["regret"][str(t)]
                        for r in rows
                        if r["sampler"] == s
                        and r["function"] == fname
                        and r["dim"] == dim
                        and str(t) in r["regret"]
                    ]
                    cells.append(_fmt(float(np.median(vals))) if vals else "-")
                lines.append(f"| {fname} | {dim} | {t} | " + " | ".join(cells) + " |")
        lines.append("")
    if result["timing_runs"]:
        tr = result["timing_runs"]
        counts = sorted({int(c) for r in tr for c in r["seconds_per_ask"]})
        lines.append(
            f"Sampler time per trial (ms per ask, wall and in brackets CPU time of the process; "
            f"mean over the last 10% of trials before the "
            f"count; {tr[0]['function']}-{tr[0]['dim']}, seed 0)."
        )
        lines.append("")
        lines += ["| sampler | " + " | ".join(str(c) for c in counts) + " |"]
        lines += ["|" + "---|" * (1 + len(counts))]
        by = {r["sampler"]: r["seconds_per_ask"] for r in tr}
        cpu = {r["sampler"]: r.get("cpu_seconds_per_ask", {}) for r in tr}
        for s, per in by.items():
            cells = [
                f"{1e3 * per[str(c)]:.2f} ({1e3 * cpu[s][str(c)]:.2f} CPU)"
                if str(c) in per and str(c) in cpu[s]
                else "-"
                for c in counts
            ]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        ratios = []
        for a, b in PAIRS.items():
            if a in by and b in by:
                common = [c for c in counts if str(c) in by[a] and str(c) in by[b]]
                ratios += [
                    f"{b}/{a} at {c}: {by[b][str(c)] / by[a][str(c)]:.1f}x wall, "
                    f"{cpu[b][str(c)] / max(cpu[a][str(c)], 1e-9):.1f}x CPU"
                    for c in common
                ]
        if ratios:
            lines += ["", "Speed ratios (Optuna time / airda time): " + "; ".join(ratios) + "."]
        lines.append("")
    if result["paired_tests"]:
        lines.append(
            "Paired tests of log10 regret, airda vs Optuna over functions x dims x seeds "
            f"(Wilcoxon signed-rank and sign test, two-sided; regrets below "
            f"{result.get('precision', 1e-8):.0e} count as solved, equal)."
        )
        lines.append("")
        lines += [
            "| pair | trials | n | airda better | Optuna better | ties | median airda | "
            "median Optuna | Wilcoxon p | sign p |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in result["paired_tests"]:
            lines.append(
                f"| {e['airda']} vs {e['optuna']} | {e['trials']} | {e['n']} | "
                f"{e['airda_better']} | {e['optuna_better']} | {e['ties']} | "
                f"{_fmt(e['median_airda'])} | {_fmt(e['median_optuna'])} | "
                f"{_fmt(e.get('wilcoxon_p', float('nan')))} | {_fmt(e.get('sign_p', float('nan')))} |"
            )
        lines.append("")
    if result.get("skipped"):
        lines += ["Skipped: " + "; ".join(result["skipped"]), ""]
    if result.get("full_run_estimate_hours") is not None:
        lines.append(
            "Estimated cost of the full default grid for the samplers timed here ("
            + ", ".join(r["sampler"] for r in result["timing_runs"])
            + f"), extrapolated from their timing runs: "
            f"{result['full_run_estimate_hours']:.1f} hours on this machine."
        )
    return "\n".join(lines)


def _cumulative(cum: dict[int, float], n: int) -> float:
    """Ask seconds of an n-trial run, from those measured (quadratic beyond: per-ask costs
    grow with the history)."""
    if n in cum:
        return cum[n]
    c = max(cum)
    return cum[c] * (n / c) ** 2 if n > c else cum[c] * n / c


def estimate_full(result: dict[str, Any]) -> float | None:
    """Hours for the default grid (10 seeds, every function and dim, the timing runs) of the
    samplers timed in this run, extrapolated from their timing runs: ask time, scaled by each
    sampler's measured ratio of wall time (objective, tell, study overhead) to ask time."""
    if not result["timing_runs"]:
        return None
    n_cases = sum(1 if f in FIXED_DIM else len(DEFAULT_DIMS) for f in DEFAULT_FUNCTIONS)
    total = 0.0
    for r in result["timing_runs"]:
        cum = {int(c): v for c, v in r["ask_seconds_cumulative"].items()}
        gp = _is_gp(r["sampler"])
        asks = 10 * n_cases * _cumulative(cum, GP_MAX_TRIALS if gp else max(DEFAULT_TRIALS))
        asks += _cumulative(cum, GP_MAX_TRIALS if gp else max(DEFAULT_TIMING))
        overhead = r["wall_seconds"] / max(cum[max(cum)], 1e-9)
        total += asks * overhead
    return total / 3600


def load_runs(path: str) -> list[dict[str, Any]]:
    """Regret runs of a results .json or a .runs.jsonl file (a truncated last line, from a run
    killed mid-write, is skipped)."""
    with open(path) as fh:
        if path.endswith(".jsonl"):
            rows = []
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            return rows
        return json.load(fh)["regret_runs"]


def merge(paths: list[str], precision: float, out: str | None) -> dict[str, Any]:
    """Tables and paired tests of the regret runs in `paths` (see ``--merge``)."""
    index: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise SystemExit(f"--merge: {path}: no such file")
        for r in load_runs(path):
            index[(r["sampler"], r["function"], r["dim"], r["seed"])] = r
    rows = list(index.values())
    if not rows:
        raise SystemExit(f"no regret runs in {', '.join(paths)}")
    trials = sorted({int(t) for r in rows for t in r["regret"]})
    result: dict[str, Any] = {
        "machine": "merged from " + ", ".join(paths),
        "samplers": sorted({r["sampler"] for r in rows}),
        "skipped": [],
        "trials": trials,
        "seeds": len({r["seed"] for r in rows}),
        "cases": sorted({(r["function"], r["dim"]) for r in rows}),
        "regret_runs": rows,
        "timing_runs": [],
        "precision": precision,
    }
    result["paired_tests"] = paired_tests(rows, trials, precision)
    result["full_run_estimate_hours"] = None
    print(markdown(result))
    if out:
        with open(out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samplers", default=",".join(AIRDA + OPTUNA))
    p.add_argument("--functions", default=",".join(DEFAULT_FUNCTIONS))
    p.add_argument("--dims", default=",".join(map(str, DEFAULT_DIMS)))
    p.add_argument("--trials", default=",".join(map(str, DEFAULT_TRIALS)))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument(
        "--seed-start", type=int, default=0, help="first seed (to add seeds to an earlier run)"
    )
    p.add_argument("--timing", default=",".join(map(str, DEFAULT_TIMING)),
                   help="trial counts for the sampler-time runs ('' to skip)")  # fmt: skip
    p.add_argument("--timing-function", default="rosenbrock")
    p.add_argument("--timing-dim", type=int, default=5, help="ignored for fixed-dim functions")
    p.add_argument("--json", default="hpo_table.json", help="where to write the raw results")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds)")
    p.add_argument(
        "--merge",
        default="",
        help="comma-separated .json results / .runs.jsonl files: tables from their regret runs "
        "(later files win for the same sampler, function, dim and seed); nothing is run",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--precision",
        type=float,
        default=1e-8,
        help="regrets below this count as solved (equal) in the paired tests",
    )
    args = p.parse_args(argv)
    if args.merge:
        return merge([f for f in args.merge.split(",") if f], args.precision, args.json)
    if args.quick:
        args.functions, args.dims, args.trials, args.seeds = "branin,levy", "2", "20,40", 2
        args.timing = "30"
        args.samplers = "tpe,cmaes,gp,optuna-cmaes"
    log = (lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    logging.getLogger("airda").setLevel(logging.ERROR)
    samplers, skipped = available([s for s in args.samplers.split(",") if s])
    for s in skipped:
        log(s)
    functions = [f for f in args.functions.split(",") if f]
    for f in functions:
        if f not in FUNCTIONS:
            raise SystemExit(f"unknown function {f!r}; choose from {sorted(FUNCTIONS)}")
    dims = [int(d) for d in args.dims.split(",") if d]
    cases = []
    for f in functions:
        for d in [FIXED_DIM[f]] if f in FIXED_DIM else dims:
            if (f, d) not in cases and not (f in ("rosenbrock", "ellipsoid") and d < 2):
                cases.append((f, d))
    trials = sorted(int(t) for t in args.trials.split(",") if t)
    if args.timing_function not in FUNCTIONS:
        raise SystemExit(f"unknown function {args.timing_function!r}")
    args.timing_dim = FIXED_DIM.get(args.timing_function, args.timing_dim)
    timing = [int(t) for t in args.timing.split(",") if t]
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "samplers": samplers,
        "skipped": skipped,
        "trials": trials,
        "seeds": args.seeds,
        "cases": cases,
    }
    log(f"regret runs: {len(samplers)} samplers x {len(cases)} cases x {args.seeds} seeds")
    sink = f"{args.json}.runs.jsonl" if args.json else None
    result["regret_runs"] = regret_runs(
        samplers, cases, trials, args.seeds, log, sink, args.seed_start
    )
    log("timing runs")
    result["timing_runs"] = (
        timing_runs(samplers, args.timing_function, args.timing_dim, timing, log) if timing else []
    )
    result["precision"] = args.precision
    result["paired_tests"] = paired_tests(result["regret_runs"], trials, args.precision)
    result["full_run_estimate_hours"] = estimate_full(result)
    text = markdown(result)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()

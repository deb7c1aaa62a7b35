"""Hypervolume of airda's multi-objective samplers against Optuna's on ZDT, DTLZ and WFG.

Samplers: airda's ``motpe`` and ``nsga2`` (defaults; population 50), Optuna's
TPESampler(multivariate=True) with several objectives (its MOTPE) and NSGAIISampler (defaults:
population 50). For every problem of :mod:`airda.hpo.mo_functions`, seed and sampler a study
runs to the largest trial count asked for, and the hypervolume of the objectives of all its
complete trials is recorded after each count, as a ratio to the hypervolume of the true front
(both below the problem's reference point: ZDT (11, 11); DTLZ ideal + 11 (nadir - ideal);
WFG (3, 5, ..) = 2m + 1), so 1 means the front was reached and problems share one scale.

Paired tests (airda.eval's Wilcoxon signed-rank and sign tests, two-sided) over problem x seed
pairs of HV ratios, at each trial count: airda-motpe vs optuna-tpe, airda-nsga2 vs
optuna-nsga2, and "best vs best", where each library's sampler per problem is the one of its two
with the larger mean HV ratio on that problem at that count (the same rule for both sides); also
per family (ZDT, DTLZ with 2 and 3 objectives, WFG), so that a loss on one family is not hidden
by wins on another.

Run a subset, or the whole grid::

    python bench/mo_table.py --problems zdt1,wfg4_m2 --trials 200 --seeds 3 --json out.json
    python bench/mo_table.py --quick   # a tiny run (used by the tests)

Long runs lose nothing: every finished run is appended to ``<json>.runs.jsonl`` as it completes
(``--resume`` skips the runs already there), and ``--merge A.json,B.runs.jsonl,...`` builds the
tables from such files without running anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from typing import Any

import numpy as np

import airda
from airda.hpo.mo_functions import get_problem
from airda.strategies import get_strategy

AIRDA = ("airda-motpe", "airda-nsga2")
OPTUNA = ("optuna-tpe", "optuna-nsga2")
PAIRS = (("airda-motpe", "optuna-tpe"), ("airda-nsga2", "optuna-nsga2"))
DEFAULT_PROBLEMS = (
    *(f"zdt{i}" for i in (1, 2, 3, 4, 6)),
    # DTLZ5 with two objectives is DTLZ2 (its extra angles start at the third objective)
    *(f"dtlz{i}_m2" for i in (1, 2, 3, 4, 6, 7)),
    *(f"dtlz{i}_m3" for i in range(1, 8)),
    *(f"wfg{i}_m2" for i in range(1, 10)),
)
DEFAULT_TRIALS = (200, 1000)


def family(problem: str) -> str:
    """ZDT, DTLZ-2, DTLZ-3 or WFG-2 (the suffix: the number of objectives)."""
    base, _, m = problem.partition("_m")
    name = base.rstrip("0123456789").upper()
    return f"{name}-{m}" if m else name


def run_one(sampler: str, problem: str, seed: int, n_trials: int) -> np.ndarray:
    """The objective vectors (n_trials, M) of one study, in trial order."""
    p = get_problem(problem)
    out = np.empty((n_trials, p.n_objectives))
    if sampler in AIRDA:
        strategy = get_strategy(sampler.removeprefix("airda-"), seed=seed)
        study = airda.create_study(
            space=p.space(), directions=["minimize"] * p.n_objectives, strategy=strategy
        )
        for i in range(n_trials):
            trial = study.ask()
            values = p.objective(trial.params)
            study.tell(trial, values)
            out[i] = values
        return out
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if sampler == "optuna-tpe":
        s = optuna.samplers.TPESampler(multivariate=True, seed=seed)
    elif sampler == "optuna-nsga2":
        s = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        raise SystemExit(f"unknown sampler {sampler!r}; choose from {AIRDA + OPTUNA}")
    study = optuna.create_study(directions=["minimize"] * p.n_objectives, sampler=s)
    dists = {
        f"x{i}": optuna.distributions.FloatDistribution(float(lo), float(hi))
        for i, (lo, hi) in enumerate(zip(p.low, p.high, strict=True))
    }
    for i in range(n_trials):
        trial = study.ask(dists)
        values = p.objective(trial.params)
        study.tell(trial, values)
        out[i] = values
    return out


def available(samplers: list[str]) -> tuple[list[str], list[str]]:
    ok, skipped = [], []
    for s in samplers:
        if s not in AIRDA + OPTUNA:
            raise SystemExit(f"unknown sampler {s!r}; choose from {AIRDA + OPTUNA}")
        if s in OPTUNA:
            try:
                import optuna  # noqa: F401
            except ImportError as exc:
                skipped.append(f"{s}: {exc} (skipped)")
                continue
        ok.append(s)
    return ok, skipped


def _key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["sampler"], r["problem"], r["seed"])


def hv_runs(samplers, problems, trials, seeds, log, sink=None, done=()) -> list[dict[str, Any]]:
    """Every (problem, seed, sampler) run, problem by problem so that a stopped grid leaves
    complete pairs; each finished row is appended to `sink` (one JSON line) as it completes."""
    out = []
    n = max(trials)
    done = set(done)
    for problem in problems:
        p = get_problem(problem)
        for seed in seeds:
            for sampler in samplers:
                if (sampler, problem, seed) in done:
                    continue
                t0 = time.perf_counter()
                values = run_one(sampler, problem, seed, n)
                wall = time.perf_counter() - t0
                row = {
                    "sampler": sampler,
                    "problem": problem,
                    "seed": seed,
                    "hv_ratio": {str(t): p.hypervolume_ratio(values[:t]) for t in trials},
                    "hv": {str(t): p.hypervolume(values[:t]) for t in trials},
                    "wall_seconds": wall,
                    "n_trials": n,
                }
                out.append(row)
                if sink:
                    with open(sink, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                log(
                    f"  {problem:9s} seed {seed} {sampler:12s} "
                    + ", ".join(f"{t}: {row['hv_ratio'][str(t)]:.4f}" for t in trials)
                    + f"  ({wall:.1f} s)"
                )
    return out


def _test(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from airda.eval import sign_test, wilcoxon

    entry: dict[str, Any] = {
        "n": len(x),
        "airda_better": int((x > y).sum()),
        "optuna_better": int((x < y).sum()),
        "ties": int((x == y).sum()),
        "median_airda": float(np.median(x)),
        "median_optuna": float(np.median(y)),
        "median_difference": float(np.median(x - y)),
    }
    if np.any(x != y):
        entry["wilcoxon_p"] = wilcoxon(x, y).p_value
        entry["sign_p"] = sign_test(x, y).p_value
    return entry


def _best_per_problem(index, samplers, problem, seeds, t) -> str | None:
    means = {}
    for s in samplers:
        rows = [index.get((s, problem, seed)) for seed in seeds]
        vals = [r["hv_ratio"][str(t)] for r in rows if r and str(t) in r["hv_ratio"]]
        if vals:
            means[s] = float(np.mean(vals))
    return max(means, key=lambda s: means[s]) if means else None


def paired_tests(rows: list[dict[str, Any]], trials) -> list[dict[str, Any]]:
    """Wilcoxon and sign tests of HV ratios per pair and trial count, over all problems and
    per family."""
    index = {_key(r): r for r in rows}
    problems = sorted({r["problem"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    out = []
    pairs = [*PAIRS, ("airda-best", "optuna-best")]
    for t in trials:
        for a, b in pairs:
            groups: dict[str, list[tuple[float, float]]] = {}
            for problem in problems:
                if a == "airda-best":
                    sa = _best_per_problem(index, AIRDA, problem, seeds, t)
                    sb = _best_per_problem(index, OPTUNA, problem, seeds, t)
                else:
                    sa, sb = a, b
                if sa is None or sb is None:
                    continue
                for seed in seeds:
                    ra, rb = index.get((sa, problem, seed)), index.get((sb, problem, seed))
                    if ra and rb and str(t) in ra["hv_ratio"] and str(t) in rb["hv_ratio"]:
                        pair = (ra["hv_ratio"][str(t)], rb["hv_ratio"][str(t)])
                        groups.setdefault("all", []).append(pair)
                        groups.setdefault(family(problem), []).append(pair)
            for group, pairs_ in sorted(groups.items(), key=lambda kv: kv[0] != "all"):
                x = np.array([q[0] for q in pairs_])
                y = np.array([q[1] for q in pairs_])
                out.append({"airda": a, "optuna": b, "trials": t, "group": group} | _test(x, y))
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v == v else "-"


def markdown(result: dict[str, Any]) -> str:
    rows, samplers, trials = result["runs"], result["samplers"], result["trials"]
    lines = [f"Machine: {result['machine']}", ""]
    problems = [p for p in result["problems"] if any(r["problem"] == p for r in rows)]
    per_count = ", ".join(
        f"{t} trials: {len({r['seed'] for r in rows if str(t) in r['hv_ratio']})}" for t in trials
    )
    lines += [
        f"Median hypervolume ratio (HV / HV of the true front) over the seeds ({per_count}); "
        "wall seconds of the runs that stopped at that count (median) in the last columns.",
        "",
        "| problem | trials | " + " | ".join(samplers) + " | " + " | ".join(
            f"s {s}" for s in samplers
        ) + " |",
        "|" + "---|" * (2 + 2 * len(samplers)),
    ]  # fmt: skip
    for problem in problems:
        for t in trials:
            cells, secs = [], []
            for s in samplers:
                sel = [r for r in rows if r["sampler"] == s and r["problem"] == problem]
                vals = [r["hv_ratio"][str(t)] for r in sel if str(t) in r["hv_ratio"]]
                cells.append(f"{np.median(vals):.4f}" if vals else "-")
                walls = [r["wall_seconds"] for r in sel if r["n_trials"] == t]
                secs.append(f"{np.median(walls):.1f}" if walls else "-")
            lines.append(f"| {problem} | {t} | " + " | ".join(cells + secs) + " |")
    lines.append("")
    if result["paired_tests"]:
        lines += [
            "Paired tests of HV ratios over problem x seed pairs (Wilcoxon signed-rank and sign "
            "test, two-sided; 'best': each library's better sampler per problem by mean HV "
            "ratio).",
            "",
            "| pair | trials | group | n | airda better | Optuna better | ties | median airda | "
            "median Optuna | median diff. | Wilcoxon p | sign p |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in result["paired_tests"]:
            lines.append(
                f"| {e['airda']} vs {e['optuna']} | {e['trials']} | {e['group']} | {e['n']} | "
                f"{e['airda_better']} | {e['optuna_better']} | {e['ties']} | "
                f"{e['median_airda']:.4f} | {e['median_optuna']:.4f} | "
                f"{e['median_difference']:+.2g} | {_fmt(e.get('wilcoxon_p', float('nan')))} | "
                f"{_fmt(e.get('sign_p', float('nan')))} |"
            )
        lines.append("")
    if result.get("skipped"):
        lines += ["Skipped: " + "; ".join(result["skipped"]), ""]
    return "\n".join(lines)


def load_runs(path: str) -> list[dict[str, Any]]:
    """Runs of a results .json or a .runs.jsonl file (a truncated last line is skipped)."""
    with open(path) as fh:
        if path.endswith(".jsonl"):
            rows = []
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            return rows
        return json.load(fh)["runs"]


def _result(rows, samplers, problems, trials, machine, skipped=()) -> dict[str, Any]:
    return {
        "machine": machine,
        "samplers": samplers,
        "skipped": list(skipped),
        "problems": problems,
        "trials": trials,
        "seeds": sorted({r["seed"] for r in rows}),
        "runs": rows,
        "paired_tests": paired_tests(rows, trials),
    }


def merge(paths: list[str], out: str | None, problems: list[str] | None = None) -> dict[str, Any]:
    """Tables and tests of the runs in `paths` on `problems` (None: all of them; later files
    win for the same sampler, problem and seed; a count missing from a run is left out of that
    count's table)."""
    index: dict[tuple[str, str, int], dict[str, Any]] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise SystemExit(f"--merge: {path}: no such file")
        for r in load_runs(path):
            old = index.get(_key(r))
            if old is not None and old["n_trials"] > r["n_trials"]:
                # keep the longer run's counts, take the shorter one's where it has more
                r = old | {"hv_ratio": r["hv_ratio"] | old["hv_ratio"], "hv": r["hv"] | old["hv"]}
            index[_key(r)] = r
    rows = [r for r in index.values() if problems is None or r["problem"] in problems]
    if not rows:
        raise SystemExit(f"no runs in {', '.join(paths)}")
    order = {s: i for i, s in enumerate(AIRDA + OPTUNA)}
    samplers = sorted({r["sampler"] for r in rows}, key=lambda s: order.get(s, 99))
    listed = {p: i for i, p in enumerate(DEFAULT_PROBLEMS)}
    problems = sorted({r["problem"] for r in rows}, key=lambda p: (listed.get(p, 99), p))
    trials = sorted({int(t) for r in rows for t in r["hv_ratio"]})
    result = _result(rows, samplers, problems, trials, "merged from " + ", ".join(paths))
    print(markdown(result))
    if out:
        with open(out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samplers", default=",".join(AIRDA + OPTUNA))
    p.add_argument(
        "--problems",
        default=",".join(DEFAULT_PROBLEMS),
        help="comma-separated problem names (with --merge: the ones tabled, 'all' for every one)",
    )
    p.add_argument("--trials", default=",".join(map(str, DEFAULT_TRIALS)))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seed-start", type=int, default=0, help="first seed")
    p.add_argument("--json", default="mo_table.json", help="where to write the raw results")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds)")
    p.add_argument(
        "--resume", action="store_true", help="skip the runs already in <json>.runs.jsonl"
    )
    p.add_argument(
        "--merge",
        default="",
        help="comma-separated .json results / .runs.jsonl files: tables from their runs; "
        "nothing is run",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.merge:
        chosen = [q for q in args.problems.split(",") if q] if args.problems != "all" else None
        return merge([f for f in args.merge.split(",") if f], args.json, chosen)
    if args.quick:
        args.problems, args.trials, args.seeds = "zdt1,dtlz2_m3", "20,40", 2
    log = (lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    logging.getLogger("airda").setLevel(logging.ERROR)
    samplers, skipped = available([s for s in args.samplers.split(",") if s])
    for s in skipped:
        log(s)
    problems = [q for q in args.problems.split(",") if q]
    for q in problems:
        get_problem(q)  # a clear error for an unknown name, before anything runs
    trials = sorted(int(t) for t in args.trials.split(",") if t)
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    sink = f"{args.json}.runs.jsonl" if args.json else None
    done = []
    if args.resume and sink and os.path.isfile(sink):
        done = [_key(r) for r in load_runs(sink) if r["n_trials"] >= max(trials)]
    log(f"{len(samplers)} samplers x {len(problems)} problems x {len(seeds)} seeds")
    rows = hv_runs(samplers, problems, trials, seeds, log, sink, done)
    if done and sink:
        keep = set(problems)
        rows = [r for r in load_runs(sink) if r["problem"] in keep and r["sampler"] in samplers]
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    result = _result(rows, samplers, problems, trials, machine, skipped)
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()

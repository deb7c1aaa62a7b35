"""RayExecutor's throughput and per-trial overhead against Ray Tune, same cluster, same run.

A local Ray cluster with 16 logical CPUs (the objectives sleep, so the machine's cores are not
the limit) runs 100 ms objectives with 1, 2, 4, 8 and 16 trials at once, first as an airda
study on SQLite with ``RayExecutor(max_concurrent=c)``, then as a Ray Tune experiment
(``Tuner``, random search, ``max_concurrent_trials=c``, the same number of samples, and
``reuse_actors=True``, its fastest setting for short trials). Each wall time counts everything
a user waits for: workers starting, the storage, the results. airda's rate once its workers
run (first trial started to last trial finished, from the stored trial times) is shown apart.

    overhead per trial = (wall - n * 0.1 / c) / n

Usage:
    python bench/ray_scaling.py                      # the table of docs/results-ray.md
    python bench/ray_scaling.py --levels 1,2 --min-trials 4 --no-tune   # a quick look
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

SLEEP = 0.1


def _objective(trial):
    time.sleep(SLEEP)
    return trial["x"] ** 2


def run_airda(c: int, n: int, root: Path) -> tuple[float, float]:
    import airda
    from airda.space import Float
    from airda.study import RayExecutor

    study = airda.create_study(storage=root / f"airda-{c}.db", space={"x": Float(-3.0, 3.0)})
    t0 = time.perf_counter()
    study.optimize(
        _objective, n_trials=n, executor=RayExecutor(max_concurrent=c), show_progress=False
    )
    wall = time.perf_counter() - t0
    trials = study.trials
    bad = [t for t in trials if t.state.value != "complete"]
    if len(trials) != n or bad:
        raise RuntimeError(f"airda: {len(trials)} trials of {n}, not complete: {bad[:3]}")
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return wall, n / span


def _trainable(config):
    from ray import tune

    time.sleep(SLEEP)
    tune.report({"loss": config["x"] ** 2})


def run_tune(c: int, n: int, root: Path) -> float:
    from ray import tune

    tuner = tune.Tuner(
        _trainable,
        param_space={"x": tune.uniform(-3.0, 3.0)},
        tune_config=tune.TuneConfig(
            num_samples=n, max_concurrent_trials=c, metric="loss", mode="min", reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(root / f"tune-{c}"), verbose=0),
    )
    t0 = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - t0
    if len(results) != n or results.errors:
        raise RuntimeError(f"tune: {len(results)} results of {n}, errors: {results.errors[:3]}")
    return wall


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", default="1,2,4,8,16", help="trials at once, comma-separated")
    p.add_argument("--per-worker", type=int, default=4, help="trials per concurrent worker")
    p.add_argument("--min-trials", type=int, default=16, help="trials at least, per level")
    p.add_argument("--num-cpus", type=int, default=16, help="logical CPUs of the local cluster")
    p.add_argument("--no-tune", action="store_true", help="skip Ray Tune")
    args = p.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster
    warnings.filterwarnings("ignore")
    logging.getLogger("airda").setLevel(logging.WARNING)
    import ray

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load before: {_uptime()}")
    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    print(f"ray {ray.__version__}: local cluster of {args.num_cpus} logical CPUs started in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="airda-ray-bench-") as tmp:
        root = Path(tmp)
        for c in levels:
            n = max(args.min_trials, args.per_worker * c)
            ideal = n * SLEEP / c
            a, warm = run_airda(c, n, root)
            t = None if args.no_tune else run_tune(c, n, root)
            rows.append((c, n, ideal, a, warm, t))
            print(f"  c={c:2d} n={n:3d}: airda {a:6.2f} s"
                  + ("" if t is None else f", tune {t:6.2f} s"), flush=True)  # fmt: skip
    ray.shutdown()
    print(f"load after: {_uptime()}")
    print()
    head = (
        "| trials at once | trials | ideal wall (s) | airda wall (s) | airda trials/s "
        "| airda overhead/trial (ms) | airda trials/s once running | Tune wall (s) | Tune trials/s | Tune overhead/trial (ms) "
        "| airda / Tune overhead |"
    )
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for c, n, ideal, a, warm, t in rows:
        ao = (a - ideal) / n * 1e3
        cells = [str(c), str(n), f"{ideal:.1f}", f"{a:.2f}", f"{n / a:.1f}", f"{ao:.0f}"]
        cells.append(f"{warm:.1f}")
        if t is None:
            cells += ["-", "-", "-", "-"]
        else:
            to = (t - ideal) / n * 1e3
            cells += [f"{t:.2f}", f"{n / t:.1f}", f"{to:.0f}", f"{ao / to:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print(f"\ncommand: {sys.executable} {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()

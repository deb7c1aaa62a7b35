"""airda's PostgreSQL storage against Optuna's RDBStorage on the same PostgreSQL server, in one
run.

1. Per-trial storage overhead, one process, 300 trials of a trivial objective (a float, an int
   and a categorical), random search and TPE: the time per trial on PostgreSQL minus the time
   per trial of the same library in memory (median of ``--repeats`` runs). Optuna talks to the
   server through SQLAlchemy and psycopg 3 (``postgresql+psycopg://``). Target: airda's
   overhead at most 1/5 of Optuna's.
2. Trials per second with 8 worker processes on one study (``optimize(n_workers=8)``; the rate
   between the first and the last completion, so process start-up is not counted), and
   Optuna's with 8 processes running ``optimize`` on one RDB study. Target: >= 100 for airda.
3. 16 worker processes on one study while one random worker is SIGKILLed and replaced every
   ``--kill-every`` seconds: the trial numbers must be 0..n-1 with none missing or shared,
   every trial a worker recorded as finished must be stored as finished, every trial left
   running by a killed worker is failed by the dead-worker rule, and no worker may see a lock
   or deadlock error.

The server is a throwaway cluster (initdb into a temporary folder) with PostgreSQL's default
durability (fsync and synchronous commits on), unless ``--url`` names one; ``--fast`` turns
durability off (as the tests do).

    python bench/storage_pg.py                 # everything (10 minutes on a busy 2-core machine)
    python bench/storage_pg.py --json out.json --trials 300 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import random
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import airda
from airda.space import Categorical, Float, Int
from airda.storage.postgres import PostgresStorage
from airda.trial import TrialState

# Module level: the worker processes (spawned) import this file too.
logging.getLogger("airda").setLevel(logging.WARNING)

SPACE = {"x": Float(-1.0, 1.0), "y": Int(0, 10), "c": Categorical(["a", "b", "c"])}
_count = iter(range(1_000_000))


def _name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_count)}-{time.time_ns()}"


def airda_objective(trial):
    return trial["x"] + trial["y"] + (trial["c"] == "b")


def optuna_objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    y = trial.suggest_int("y", 0, 10)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return x + y + (c == "b")


def sleepy_objective(trial):
    time.sleep(0.005)  # so that kills land mid-trial as well as mid-write
    return airda_objective(trial)


def _quiet() -> None:
    logging.getLogger("airda").setLevel(logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)


# ---- 1. one process -------------------------------------------------------------------------
def airda_time(n: int, strategy: str, storage) -> float:
    study = airda.create_study(
        _name("a"), storage=storage, space=SPACE, strategy=strategy, seed=0, cache=False
    )
    start = time.perf_counter()
    study.optimize(airda_objective, n_trials=n)
    took = time.perf_counter() - start
    assert len(study.trials) == n
    return took / n


def optuna_time(n: int, strategy: str, storage) -> float:
    import optuna

    sampler = (
        optuna.samplers.RandomSampler(seed=0)
        if strategy == "random"
        else optuna.samplers.TPESampler(seed=0)
    )
    study = optuna.create_study(study_name=_name("o"), storage=storage, sampler=sampler)
    start = time.perf_counter()
    study.optimize(optuna_objective, n_trials=n)
    took = time.perf_counter() - start
    assert len(study.trials) == n
    return took / n


def overhead(args, airda_url: str, optuna_url: str) -> list[dict]:
    import optuna

    rows = []
    rdb = optuna.storages.RDBStorage(optuna_url)
    pg = PostgresStorage(airda_url)
    for strategy in ("random", "tpe"):
        times: dict[str, list[float]] = {k: [] for k in ("am", "ap", "om", "op")}
        for _ in range(args.repeats):  # interleaved, so a burst of load hits every column
            times["am"].append(airda_time(args.trials, strategy, None))
            times["ap"].append(airda_time(args.trials, strategy, pg))
            times["om"].append(optuna_time(args.trials, strategy, None))
            times["op"].append(optuna_time(args.trials, strategy, rdb))
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {
            "strategy": strategy,
            "trials": args.trials,
            "airda_memory_ms": med["am"] * 1e3,
            "airda_postgres_ms": med["ap"] * 1e3,
            "optuna_memory_ms": med["om"] * 1e3,
            "optuna_postgres_ms": med["op"] * 1e3,
            "airda_overhead_ms": (med["ap"] - med["am"]) * 1e3,
            "optuna_overhead_ms": (med["op"] - med["om"]) * 1e3,
        }
        row["ratio"] = row["optuna_overhead_ms"] / row["airda_overhead_ms"]
        rows.append(row)
        print(
            f"{strategy:6s} per trial: airda memory {row['airda_memory_ms']:.3f} ms, "
            f"postgres {row['airda_postgres_ms']:.3f} ms; optuna memory "
            f"{row['optuna_memory_ms']:.3f} ms, postgres {row['optuna_postgres_ms']:.3f} ms; "
            f"overhead airda {row['airda_overhead_ms']:.3f} ms, optuna "
            f"{row['optuna_overhead_ms']:.3f} ms: {row['ratio']:.1f}x",
            flush=True,
        )
    pg.close()
    rdb.remove_session()
    return rows


# ---- 2. eight workers -----------------------------------------------------------------------
def _rate(times: list[float]) -> float:
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def _optuna_worker(url: str, name: str, n: int) -> None:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url, sampler=optuna.samplers.RandomSampler())
    study.optimize(optuna_objective, n_trials=n)


def workers8(args, airda_url: str, optuna_url: str) -> dict:
    import optuna

    n = args.parallel_trials
    storage = PostgresStorage(airda_url)
    study = airda.create_study(_name("w8"), storage=storage, space=SPACE, seed=0, cache=False)
    start = time.perf_counter()
    study.optimize(airda_objective, n_trials=n, n_workers=8)
    wall = time.perf_counter() - start
    trials = study.trials
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    airda_rate = _rate([t.datetime_complete for t in trials])
    storage.close()

    name = _name("o8")
    optuna.create_study(study_name=name, storage=optuna_url)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_optuna_worker, args=(optuna_url, name, n // 8)) for _ in range(8)]
    ostart = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    owall = time.perf_counter() - ostart
    done = optuna.load_study(study_name=name, storage=optuna_url).get_trials(deepcopy=False)
    optuna_rate = _rate([t.datetime_complete.timestamp() for t in done if t.datetime_complete])
    out = {
        "trials": n,
        "airda_trials_per_s": airda_rate,
        "airda_wall_s": wall,
        "optuna_trials": len(done),
        "optuna_trials_per_s": optuna_rate,
        "optuna_wall_s": owall,
    }
    print(
        f"8 workers: airda {airda_rate:.0f} trials/s ({n} trials, {wall:.1f} s with start-up); "
        f"optuna {optuna_rate:.0f} trials/s ({len(done)} trials, {owall:.1f} s)",
        flush=True,
    )
    return out


# ---- 3. sixteen workers and SIGKILLs ---------------------------------------------------------
def _kill_worker(url: str, name: str, log_dir: str) -> None:
    """A worker: optimize until the STOP file appears, logging each trial it finished."""
    logging.getLogger("airda").setLevel(logging.CRITICAL)  # a killed neighbour is expected
    log = open(Path(log_dir) / f"{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115
    errors = 0
    storage = PostgresStorage(url)
    study = airda.load_study(name, storage=storage)

    def record(study, frozen):
        log.write(f"{frozen.number} {frozen.state.value} {frozen.values!r}\n")

    while not (Path(log_dir) / "STOP").exists():
        try:
            study.optimize(sleepy_objective, n_trials=20, callbacks=[record])
        except Exception as exc:
            errors += 1
            log.write(f"ERROR {type(exc).__name__}: {exc}\n")
    log.write(f"DONE errors={errors}\n")
    storage.close()


def killed16(args, airda_url: str, log_dir: Path) -> dict:
    storage = PostgresStorage(airda_url)
    name = _name("k16")
    study = airda.create_study(name, storage=storage, space=SPACE, seed=0, cache=False)
    ctx = mp.get_context("spawn")
    rng = random.Random(0)

    def spawn() -> mp.process.BaseProcess:
        p = ctx.Process(target=_kill_worker, args=(airda_url, name, str(log_dir)))
        p.start()
        return p

    procs = [spawn() for _ in range(16)]
    # The kills start once the workers are up (spawned processes take a while to import).
    deadline = time.time() + 300
    while len(study.trials) < 64 and time.time() < deadline:
        time.sleep(0.2)
    kills = 0
    stop_at = time.time() + args.kill_seconds
    while time.time() < stop_at:
        time.sleep(args.kill_every)
        i = rng.randrange(len(procs))
        if procs[i].is_alive():
            os.kill(procs[i].pid, signal.SIGKILL)
            procs[i].join()
            kills += 1
        procs[i] = spawn()
    (log_dir / "STOP").touch()
    for p in procs:
        p.join(timeout=120)
    failed = study.fail_stale_trials()
    trials = study.trials
    numbers = [t.number for t in trials]
    states = {s.value: sum(t.state is s for t in trials) for s in TrialState}
    by_number = {t.number: t for t in trials}
    logged = {}
    errors = []
    for f in log_dir.glob("*.log"):
        for line in f.read_text().splitlines():
            if line.startswith("ERROR"):
                errors.append(line)
            elif not line.startswith("DONE"):
                num, state, _ = line.split(" ", 2)
                logged[int(num)] = state
    lost = [n for n, s in logged.items() if n not in by_number or by_number[n].state.value != s]
    lock_errors = [e for e in errors if "lock" in e.lower() or "deadlock" in e.lower()]
    out = {
        "workers": 16,
        "seconds": args.kill_seconds,
        "kills": kills,
        "trials": len(trials),
        "states": states,
        "failed_worker_died": sum("WorkerDied" in (t.error or "") for t in trials),
        "failed_at_the_end": len(failed),
        "numbers_consecutive": numbers == list(range(len(numbers))),
        "duplicated_numbers": len(numbers) - len(set(numbers)),
        "finished_in_worker_logs": len(logged),
        "lost": len(lost),
        "worker_errors": len(errors),
        "lock_errors": len(lock_errors),
        "error_samples": errors[:5],
        "trials_per_s": _rate([t.datetime_complete for t in trials if t.datetime_complete]),
    }
    print(f"16 workers, {kills} SIGKILLs: {json.dumps(out)}", flush=True)
    storage.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an existing server (postgresql://...); default: a new one")
    ap.add_argument("--fast", action="store_true", help="throwaway server without fsync")
    ap.add_argument(
        "--async-commit",
        action="store_true",
        help="both libraries' sessions with synchronous_commit=off (libpq options in the URL)",
    )
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parallel-trials", type=int, default=2000)
    ap.add_argument("--kill-seconds", type=float, default=20.0)
    ap.add_argument("--kill-every", type=float, default=0.5)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: 1,2,3")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    _quiet()
    import optuna
    import psycopg

    server = None
    if args.url:
        airda_url = args.url
    else:
        from airda.testing._postgres import PostgresServer

        server = PostgresServer(durable=not args.fast).start()
        airda_url = server.url()
    if args.async_commit:
        sep = "&" if "?" in airda_url else "?"
        airda_url += f"{sep}options=-csynchronous_commit%3Doff"
    optuna_url = airda_url.replace("postgresql://", "postgresql+psycopg://", 1)
    load = os.getloadavg()
    with psycopg.connect(airda_url) as con:
        version = con.execute("SHOW server_version").fetchone()[0]
    info = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "postgresql": version,
        "durable": not args.fast if server else None,
        "synchronous_commit": "off" if args.async_commit else "server default",
        "optuna": optuna.__version__,
        "psycopg": psycopg.__version__,
        "load_before": load,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(info), flush=True)
    results: dict = {"info": info}
    skip = set(args.skip.split(","))
    import tempfile

    try:
        if "1" not in skip:
            results["overhead"] = overhead(args, airda_url, optuna_url)
        if "2" not in skip:
            results["workers8"] = workers8(args, airda_url, optuna_url)
        if "3" not in skip:
            with tempfile.TemporaryDirectory() as d:
                results["killed16"] = killed16(args, airda_url, Path(d))
    finally:
        info["load_after"] = os.getloadavg()
        if server is not None:
            server.remove()
    print(f"load average before {load}, after {info['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many workers on one PostgreSQL study, simulated on one machine: the numbers behind the
projection to 1,000 workers in docs/results-cluster.md.

Each simulated worker is a thread with its own connection, its own :class:`PostgresStorage`
and its own :class:`~airda.study.Study` (a distinct random stream), as a worker on its own
machine would have: it runs the driver loop every executor runs (``ask(max_trials=M)``, the
objective, ``tell``) until the study holds M trials. The objective sleeps 0.5 to 2 s (uniform),
so the cores are not the limit; the threads are spread over several processes.

Measured per run (64, 128, 256 workers by default): trials per second (first to last
completion), the server's transactions, rows written and rows returned per trial
(``pg_stat_database`` deltas), the server's CPU seconds per trial and share of the run (the
``postgres`` processes' CPU times), the workers' CPU per trial, p50 / p99 latency of ask and of
tell, storage errors (a lock or deadlock error would be one), and lost or duplicated trials
(numbers must be 0..M-1, each told exactly once, each stored complete).

The server is a throwaway cluster (initdb into a temporary folder) with PostgreSQL's default
durability (fsync and synchronous commits on) and max_connections above the worker count.

    python bench/storage_sim.py                                  # 64, 128, 256 workers
    python bench/storage_sim.py --workers 64 --trials-per-worker 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import airda
from airda.space import Categorical, Float, Int
from airda.storage.base import MaxTrialsReached, StorageError
from airda.storage.postgres import PostgresStorage
from airda.trial import TrialState

logging.getLogger("airda").setLevel(logging.WARNING)

SPACE = {"x": Float(-1.0, 1.0), "y": Int(0, 10), "c": Categorical(["a", "b", "c"])}


def _worker_thread(
    url: str,
    name: str,
    stream: int,
    max_trials: int,
    low: float,
    high: float,
    out: dict,
    lock: threading.Lock,
    start: threading.Event,
) -> None:
    asks, tells, told, errors = [], [], [], []
    storage = None
    try:
        storage = PostgresStorage(url)
        study = airda.load_study(name, storage=storage, stream=stream)
        rng = random.Random(stream)
        start.wait()
        while True:
            t0 = time.perf_counter()
            try:
                trial = study.ask(max_trials=max_trials)
            except MaxTrialsReached:
                break
            t1 = time.perf_counter()
            time.sleep(rng.uniform(low, high))
            value = trial["x"] + trial["y"] + (trial["c"] == "b")
            t2 = time.perf_counter()
            frozen = study.tell(trial, value)
            t3 = time.perf_counter()
            asks.append(t1 - t0)
            tells.append(t3 - t2)
            told.append((frozen.number, time.time()))
    except StorageError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if storage is not None:
            storage.close()
    with lock:
        out["asks"] += asks
        out["tells"] += tells
        out["told"] += told
        out["errors"] += errors


def _process_main(
    url: str, name: str, streams: list[int], max_trials: int, low: float, high: float, go, queue
) -> None:
    logging.getLogger("airda").setLevel(logging.WARNING)
    out: dict = {"asks": [], "tells": [], "told": [], "errors": []}
    lock = threading.Lock()
    start = threading.Event()
    threads = [
        threading.Thread(
            target=_worker_thread,
            args=(url, name, s, max_trials, low, high, out, lock, start),
        )
        for s in streams
    ]
    for t in threads:
        t.start()
    go.wait()  # every process has its connections open
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start.set()
    for t in threads:
        t.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    queue.put(out)


def _server_cpu() -> float:
    """CPU seconds of the server so far: its live processes, and the reaped ones (counted in
    the postmaster's children times), so that backends that exit are not lost."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["name", "ppid"]):
        if p.info["name"] != "postgres":
            continue
        try:
            c = p.cpu_times()
            total += c.user + c.system
            if psutil.Process(p.info["ppid"]).name() != "postgres":  # the postmaster
                total += c.children_user + c.children_system
        except psutil.Error:
            pass
    return total


_STAT_COLUMNS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "deadlocks",
    "blks_hit",
    "blks_read",
)


def _db_stats(server, dbname: str) -> dict[str, int]:
    row = server.sql(
        f"SELECT {', '.join(_STAT_COLUMNS)} FROM pg_stat_database WHERE datname = '{dbname}'"
    )[0]
    return dict(zip(_STAT_COLUMNS, map(int, row), strict=True))


def _wal_stats(server) -> dict[str, float]:
    row = server.sql("SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")[0]
    keys = ("wal_records", "wal_bytes", "wal_write", "wal_sync")
    return dict(zip(keys, map(float, row), strict=True))


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run_one(
    server, url: str, n_workers: int, per_worker: int, low: float, high: float, n_procs: int
) -> dict:
    name = f"sim-{n_workers}-{time.time_ns()}"
    total = n_workers * per_worker
    airda.create_study(name, storage=PostgresStorage(url), space=SPACE, seed=0)
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    queue = ctx.Queue()
    streams = list(range(1, n_workers + 1))
    procs = [
        ctx.Process(
            target=_process_main,
            args=(url, name, streams[i::n_procs], total, low, high, go, queue),
        )
        for i in range(n_procs)
    ]
    for p in procs:
        p.start()
    # Let every worker connect and load the study before the clock starts.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        (count,) = server.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'airda'",
            dbname="airda_test",
        )[0]
        if count >= n_workers:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    stats0 = _db_stats(server, "airda_test")
    wal0 = _wal_stats(server)
    cpu0 = _server_cpu()
    t0 = time.time()
    go.set()
    results = [queue.get() for _ in procs]
    wall = time.time() - t0
    time.sleep(1.5)  # the backends of closed connections exit and flush their statistics
    cpu1 = _server_cpu()
    stats1 = _db_stats(server, "airda_test")
    wal1 = _wal_stats(server)
    for p in procs:
        p.join()
    server_cpu = cpu1 - cpu0
    merged: dict = {"asks": [], "tells": [], "told": [], "errors": []}
    client_cpu = 0.0
    for r in results:
        for k in merged:
            merged[k] += r[k]
        client_cpu += r["cpu"]
    trials = airda.load_study(name, storage=PostgresStorage(url)).trials
    numbers = [t.number for t in trials]
    told = [n for n, _ in merged["told"]]
    ends = sorted(ts for _, ts in merged["told"])
    rate = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else float("nan")
    delta = {k: stats1[k] - stats0[k] for k in _STAT_COLUMNS}
    n = len(trials)
    return {
        "workers": n_workers,
        "processes": n_procs,
        "trials": n,
        "max_trials": total,
        "wall_s": wall,
        "trials_per_s": rate,
        "ideal_trials_per_s": n_workers / ((low + high) / 2),
        "server_cpu_s": server_cpu,
        "server_cpu_share": server_cpu / wall / (os.cpu_count() or 1),
        "server_cpu_ms_per_trial": 1e3 * server_cpu / n,
        "client_cpu_ms_per_trial": 1e3 * client_cpu / n,
        "xact_per_trial": delta["xact_commit"] / n,
        "rows_written_per_trial": (delta["tup_inserted"] + delta["tup_updated"]) / n,
        "rows_fetched_per_trial": delta["tup_fetched"] / n,
        "rows_scanned_per_trial": delta["tup_returned"] / n,
        "wal_bytes_per_trial": (wal1["wal_bytes"] - wal0["wal_bytes"]) / n,
        "wal_syncs_per_trial": (wal1["wal_sync"] - wal0["wal_sync"]) / n,
        "rollbacks": delta["xact_rollback"],
        "deadlocks": delta["deadlocks"],
        "ask_ms_p50": 1e3 * _pct(merged["asks"], 0.5),
        "ask_ms_p99": 1e3 * _pct(merged["asks"], 0.99),
        "tell_ms_p50": 1e3 * _pct(merged["tells"], 0.5),
        "tell_ms_p99": 1e3 * _pct(merged["tells"], 0.99),
        "storage_errors": len(merged["errors"]),
        "error_samples": merged["errors"][:3],
        "exact_total": n == total,
        "numbers_consecutive": numbers == list(range(n)),
        "told_once": sorted(told) == list(range(n)),
        "all_complete": all(t.state is TrialState.COMPLETE for t in trials),
        "lost": len(set(range(total)) - set(told)),
        "duplicated": len(told) - len(set(told)),
    }


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def project(results: list[dict], target: int = 1000) -> list[str]:
    """The projection to `target` workers: the server's CPU per trial and rows read per trial
    as measured, fitted linear in the number of workers (each worker's sync reads what the
    others changed), and the trial rate the workers ask of the server for several trial
    durations. Lines of Markdown."""
    ns = [float(r["workers"]) for r in results]
    a, b = _fit(ns, [r["server_cpu_ms_per_trial"] for r in results])
    c, d = _fit(ns, [r["rows_fetched_per_trial"] for r in results])
    xact = statistics.mean(r["xact_per_trial"] for r in results)
    writes = statistics.mean(r["rows_written_per_trial"] for r in results)
    wal = statistics.mean(r["wal_bytes_per_trial"] for r in results)
    lines = [
        f"fit over {', '.join(str(int(n)) for n in ns)} workers: server CPU per trial = "
        f"{a:.3f} + {b * 1e3:.3f}e-3 x workers ms; rows fetched per trial = {c:.1f} + "
        f"{d:.2f} x workers; {xact:.2f} transactions, {writes:.2f} rows written and "
        f"{wal:.0f} WAL bytes per trial (flat)",
        "",
        f"| mean trial | trials/s at {target} workers | commits/s | rows fetched/s | "
        f"server CPU ms/trial | server cores needed | workers one core saturates | "
        "workers 16 cores saturate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seconds in (1.25, 10.0, 60.0, 600.0):
        rate = target / seconds
        cpu = a + b * target
        cores = rate * cpu / 1e3

        def saturating(n_cores: float, seconds: float = seconds) -> float:
            # (N / T) (a + b N) / 1000 = cores
            if b <= 0:
                return n_cores * 1e3 * seconds / a
            return (-a + math.sqrt(a * a + 4 * b * 1e3 * n_cores * seconds)) / (2 * b)

        lines.append(
            f"| {seconds:g} s | {rate:.0f} | {rate * xact:.0f} | {rate * (c + d * target):,.0f} | "
            f"{cpu:.2f} | {cores:.2f} | {saturating(1):,.0f} | {saturating(16):,.0f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument(
        "--trials-per-worker",
        type=int,
        default=12,
        help="the study's total is workers x this (default 12)",
    )
    ap.add_argument(
        "--sleep",
        type=float,
        nargs=2,
        default=[0.5, 2.0],
        metavar=("LOW", "HIGH"),
        help="objective duration, uniform (default 0.5 2.0 s)",
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=8,
        help="processes the worker threads are spread over (default 8)",
    )
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    from airda.testing._postgres import PostgresServer

    server = PostgresServer(durable=True, max_connections=max(args.workers) + 40).start()
    try:
        url = server.url()
        version = server.sql("SHOW server_version")[0][0]
        results = []
        for n in args.workers:
            r = run_one(server, url, n, args.trials_per_worker, *args.sleep, min(args.processes, n))
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        server.remove()
    load = os.getloadavg()
    header = (
        f"# {platform.node()}: {os.cpu_count()} cores, {platform.python_version()}, "
        f"PostgreSQL {version} (durable), objective sleeps U({args.sleep[0]}, {args.sleep[1]}) s; "
        f"load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(header)
    cols = [
        ("workers", "workers", "{}"),
        ("trials", "trials", "{}"),
        ("trials/s", "trials_per_s", "{:.1f}"),
        ("ideal/s", "ideal_trials_per_s", "{:.1f}"),
        ("xact/trial", "xact_per_trial", "{:.2f}"),
        ("rows written/trial", "rows_written_per_trial", "{:.2f}"),
        ("rows fetched/trial", "rows_fetched_per_trial", "{:.0f}"),
        ("rows scanned/trial", "rows_scanned_per_trial", "{:.0f}"),
        ("WAL syncs/trial", "wal_syncs_per_trial", "{:.2f}"),
        ("server CPU ms/trial", "server_cpu_ms_per_trial", "{:.2f}"),
        ("server CPU share", "server_cpu_share", "{:.0%}"),
        ("client CPU ms/trial", "client_cpu_ms_per_trial", "{:.2f}"),
        ("ask p50/p99 ms", None, None),
        ("tell p50/p99 ms", None, None),
        ("errors", "storage_errors", "{}"),
        ("lost/dup", None, None),
    ]
    print("| " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        cells = []
        for title, key, fmt in cols:
            if title.startswith("ask"):
                cells.append(f"{r['ask_ms_p50']:.1f} / {r['ask_ms_p99']:.1f}")
            elif title.startswith("tell"):
                cells.append(f"{r['tell_ms_p50']:.1f} / {r['tell_ms_p99']:.1f}")
            elif title == "lost/dup":
                cells.append(f"{r['lost']} / {r['duplicated']}")
            else:
                cells.append(fmt.format(r[key]))
        print("| " + " | ".join(cells) + " |")
    projection = project(results) if len(results) > 1 else []
    print()
    print("\n".join(projection))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        doc = {"machine": header, "results": results, "projection": projection}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    ok = all(
        r["exact_total"] and r["told_once"] and r["all_complete"] and not r["storage_errors"]
        for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The single-file ceiling: how many trials per second one SQLite study takes from 1, 2, 4 and
8 worker processes writing at once (a trivial objective, so the storage is the limit).

Each worker loads the study with its own random stream and runs `optimize` in rounds of 20
trials for ``--seconds``; the table gives the trials stored per second of wall time, the
errors the workers saw (a "database is locked" would be one) and whether the trial numbers are
exactly 0..n-1.

Run: ``python bench/sqlite_workers.py [--workers 1,2,4,8] [--seconds 8] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path


def objective(trial):
    return trial["x"] ** 2


def _worker(path: str, stream: int, seconds: float, out: mp.Queue) -> None:
    import airda

    logging.getLogger("airda").setLevel(logging.WARNING)
    study = airda.load_study("ceiling", storage=path, stream=stream)
    n = errors = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            study.optimize(objective, n_trials=20)
            n += 20
        except Exception:  # counted: the table reports them
            errors += 1
    out.put((n, errors))


def run(n_workers: int, seconds: float, folder: Path) -> dict:
    import airda
    from airda.space import Float

    path = str(folder / f"ceiling-{n_workers}.db")
    airda.create_study("ceiling", storage=path, space={"x": Float(-1, 1)}, strategy="random")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(path, i + 1, seconds, out)) for i in range(n_workers)
    ]
    start = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.monotonic() - start
    trials = airda.load_study("ceiling", storage=path).trials
    return {
        "workers": n_workers,
        "trials": len(trials),
        "wall_s": wall,
        "per_s": len(trials) / wall,
        "errors": sum(e for _, e in results),
        "numbers_exact": sorted(t.number for t in trials) == list(range(len(trials))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--dir", help="where the study files go (default: a temporary folder)")
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print("| worker processes | trials | wall | trials per second | errors | numbers 0..n-1 |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        for n in (int(x) for x in args.workers.split(",")):
            r = run(n, args.seconds, folder)
            print(f"| {n} | {r['trials']:,} | {r['wall_s']:.1f} s | {r['per_s']:,.0f} | "
                  f"{r['errors']} | {'yes' if r['numbers_exact'] else 'NO'} |", flush=True)  # fmt: skip
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

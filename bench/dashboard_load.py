"""`airda dashboard` on a 100,000-trial study: time from the server's start to the first plot's
data, the server's memory, the first full read, every plot, and an incremental poll.

The study is written in one transaction through the storage's bulk path
(:meth:`~airda.storage.Storage.import_trials`): 100,000 finished trials (90 % complete, 8 %
pruned with 5 reported values each, 2 % failed) over four parameters. The dashboard runs as
its own process (``airda dashboard --storage FILE --port 0``), so its memory is its own
(``VmRSS``/``VmHWM`` of /proc/PID/status).

Run:
    .venv/bin/python bench/dashboard_load.py                 # 100,000 trials
    .venv/bin/python bench/dashboard_load.py --trials 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_study(path: Path, n: int, seed: int = 0) -> float:
    """A study of `n` finished trials in one transaction; the seconds it took."""
    import airda
    from airda.space import Categorical, Float, Int
    from airda.storage import get_storage
    from airda.trial import FrozenTrial, TrialState

    start = time.perf_counter()
    space = {
        "lr": Float(1e-5, 1.0, log=True),
        "dropout": Float(0.0, 0.6),
        "layers": Int(1, 12),
        "act": Categorical(["relu", "gelu", "tanh"]),
    }
    airda.create_study("big", storage=path, space=space, seed=seed)
    rng = random.Random(seed)
    now = time.time() - n
    trials = []
    for i in range(n):
        p = {
            "lr": 10 ** rng.uniform(-5, 0),
            "dropout": rng.uniform(0, 0.6),
            "layers": rng.randint(1, 12),
            "act": rng.choice(["relu", "gelu", "tanh"]),
        }
        loss = (p["lr"] - 0.01) ** 2 * 50 + abs(p["dropout"] - 0.2) + 0.02 * p["layers"]
        r = rng.random()
        if r < 0.90:
            state, values, inter, error = TrialState.COMPLETE, (loss,), {}, None
        elif r < 0.98:
            state, values, error = TrialState.PRUNED, None, None
            inter = {s: loss + 1.0 / (s + 1) for s in range(5)}
        else:
            state, values, inter, error = TrialState.FAIL, None, {}, "RuntimeError: diverged"
        trials.append(
            FrozenTrial(
                number=i,
                state=state,
                params=p,
                values=values,
                intermediate=inter,
                datetime_start=now + i,
                datetime_complete=now + i + 0.5,
                worker="bench:1",
                error=error,
            )
        )
    storage = get_storage(path)
    storage.import_trials(storage.get_study("big").study_id, trials)
    return time.perf_counter() - start


def add_trials(path: Path, n: int) -> None:
    """`n` more trials, as a worker writes them (create, then finish), from this process."""
    from airda.storage import get_storage
    from airda.trial import TrialState

    storage = get_storage(path)
    study_id = storage.get_study("big").study_id
    for i in range(n):
        params = {"lr": 0.01, "dropout": 0.2, "layers": 1 + i % 12, "act": "relu"}
        t = storage.create_trial(study_id, params, worker="bench:2")
        storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[0.1 + i / n])


def memory(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(rest.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=300) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--db", help="the SQLite file (default: a new temporary one)")
    args = ap.parse_args()

    folder = tempfile.mkdtemp(prefix="airda-dash-")
    path = Path(args.db or os.path.join(folder, "big.db"))
    rows: list[tuple[str, str]] = []
    if not path.exists():
        rows.append(
            (
                f"write {args.trials:,} trials (import_trials, one transaction)",
                f"{write_study(path, args.trials):.1f} s",
            )
        )

    exe = Path(sys.executable).with_name("airda")
    start = time.perf_counter()
    server = subprocess.Popen(
        [str(exe), "dashboard", "--storage", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = server.stdout.readline()
        serving = time.perf_counter()
        url = line.split(" at ")[1].split()[0]
        while True:  # 202 until the server can draw it (values alone while trials load)
            status, body = get(url + "api/studies/big/plot/history")
            if status == 200:
                break
            if status != 202:
                raise SystemExit(f"history: {status} {body[:200]!r}")
        first_plot = time.perf_counter()
        head = json.loads(body[:200].split(b', "figure"')[0] + b"}")
        rows.append(
            (
                "process start -> serving (interpreter, imports, storage opened)",
                f"{serving - start:.2f} s",
            )
        )
        rows.append(("process start -> first plot's data (history)", f"{first_plot - start:.2f} s"))
        rows.append(("serving -> first plot's data (history)", f"{first_plot - serving:.2f} s"))
        rows.append(
            (
                "  drawn from",
                f"{head['shown']:,} of {head['total']:,} trials"
                + (" (values alone, while the trials load)" if head["partial"] else ""),
            )
        )
        while True:
            status, body = get(url + "api/studies/big/loading")
            if json.loads(body)["ready"]:
                break
            time.sleep(0.05)  # polling another process
        ready = time.perf_counter()
        peaks = [("after the first load", memory(server.pid))]
        rows.append(
            ("process start -> every trial read (first full load)", f"{ready - start:.2f} s")
        )
        for kind in ("history", "parallel", "slice", "contour", "importance", "intermediate"):
            t = time.perf_counter()
            status, body = get(url + f"api/studies/big/plot/{kind}")
            assert status == 200, (kind, status, body[:200])
            rows.append(
                (
                    f"plot {kind} (sampled, {len(body) / 1e6:.2f} MB of JSON)",
                    f"{time.perf_counter() - t:.2f} s",
                )
            )
        peaks.append(("after every plot", memory(server.pid)))
        t = time.perf_counter()
        status, body = get(url + "api/studies/big/trials?state=complete&sort=value&limit=50")
        rows.append(
            ("trial table: complete, best first, 50 rows", f"{time.perf_counter() - t:.2f} s")
        )
        t = time.perf_counter()
        status, body = get(url + "api/studies/big/trials.csv")
        rows.append(
            (
                f"CSV export of every trial ({len(body) / 1e6:.1f} MB)",
                f"{time.perf_counter() - t:.2f} s",
            )
        )
        peaks.append(("after the CSV export", memory(server.pid)))
        seq = json.loads(get(url + "api/studies/big")[1])["seq"]
        time.sleep(0.6)  # the server reads a study at most every 0.5 s
        t = time.perf_counter()
        status, body = get(url + f"api/studies/big/since?seq={seq}")
        rows.append(("incremental poll, nothing new", f"{(time.perf_counter() - t) * 1e3:.0f} ms"))
        add_trials(path, 100)
        time.sleep(0.6)
        t = time.perf_counter()
        status, body = get(url + f"api/studies/big/since?seq={seq}")
        got = json.loads(body)
        rows.append(
            (
                f"incremental poll, {len(got['trials'])} new trials",
                f"{(time.perf_counter() - t) * 1e3:.0f} ms",
            )
        )
        peaks.append(("at the end", memory(server.pid)))
        for when, (rss, peak) in peaks:
            rows.append(
                (f"server memory {when}: now / peak so far", f"{rss:.0f} MB / {peak:.0f} MB")
            )
    finally:
        server.terminate()
        server.wait()

    width = max(len(k) for k, _ in rows)
    print(f"airda dashboard on {args.trials:,} trials; {platform.node()}, {os.cpu_count()} CPUs")
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()

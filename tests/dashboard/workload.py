"""Module-level objectives and a writer process for the dashboard's tests (worker processes
import them by name): ``python -m tests.dashboard.workload DB STUDY MAX_TRIALS START_DIR N_WRITERS``."""

from __future__ import annotations

import sys

from airda.space import Categorical, Float, Int
from airda.trial import TrialPruned

SPACE = {
    "lr": Float(1e-4, 1.0, log=True),
    "layers": Int(1, 6),
    "act": Categorical(["relu", "tanh"]),
}


def curve(trial):
    """A learning curve over 4 steps, pruned by the study's scheduler, failing now and then."""
    base = 100 * (trial["lr"] - 0.01) ** 2 + 0.1 * trial["layers"]
    base += 0.5 if trial["act"] == "tanh" else 0.0
    if trial.number % 7 == 3:
        raise RuntimeError("diverged")
    for step in range(4):
        trial.report(step, base + 1.0 / (step + 1))
        if trial.should_prune():
            raise TrialPruned()
    return base


def quadratic(trial):
    return (trial["lr"] - 0.1) ** 2 + trial["layers"]


def two_objectives(trial):
    return trial["lr"], (1.0 - trial["lr"]) ** 2 + 0.01 * trial["layers"]


def variant(trial):
    """A code variant's speed-up with its interval (as airda.codeopt records them)."""
    speedup = 1.0 + trial["layers"] / 3 - trial["lr"]
    trial.set_user_attr("code", f"block={2 ** trial['layers']} act={trial['act']}")
    trial.set_user_attr("speedup", speedup)
    trial.set_user_attr("speedup_ci", [speedup * 0.95, speedup * 1.05])
    return speedup


def slow_curve(trial):
    """`curve`, with each step taking a few milliseconds (a reader sees the study grow)."""
    import time

    for step in range(3):
        time.sleep(0.03)
        trial.report(step, trial["lr"] + 1.0 / (step + 1))
    return curve(trial)


def write(path: str, name: str, max_trials: int, start_dir: str, n_writers: int) -> None:
    """One of `n_writers` processes sharing a study: together they run `max_trials`. Each
    starts once all have loaded the study (a file each in `start_dir`), so that they write
    at the same time however slowly the machine starts processes."""
    import os
    import time

    import airda
    from airda.schedulers import MedianStopping

    study = airda.load_study(name, storage=path, scheduler=MedianStopping())
    open(os.path.join(start_dir, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(start_dir)) < n_writers and time.monotonic() < deadline:
        time.sleep(0.01)
    study.optimize(slow_curve, max_trials=max_trials)


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))

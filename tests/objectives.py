"""Module-level objectives: worker processes import them by name."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def quadratic(trial):
    return (trial["x"] - 1.0) ** 2


def kill_self_on_trial_3(trial):
    """Dies by SIGKILL, mid-trial, the first time it reaches trial 3 (a marker file says so)."""
    marker = Path(os.environ["AIRDA_TEST_MARKER"])
    if trial.number == 3 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return (trial["x"] - 1.0) ** 2


def slow_quadratic(trial):
    """A trial that takes a while, so that workers are mid-trial when their parent is killed."""
    import time

    time.sleep(0.05)
    return (trial["x"] - 1.0) ** 2


def stop_at_trial_5(trial):
    """Stops its study's optimize call from inside the objective, at trial 5."""
    if trial.number == 5:
        trial.study.stop()
    return (trial["x"] - 1.0) ** 2

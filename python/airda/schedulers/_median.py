"""The median stopping rule, the scheduler base class and what a scheduler sees of a study."""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from airda.trial import FrozenTrial, TrialState

__all__ = ["MedianStopping", "ReportingTrial", "Scheduler", "TrialHistory"]


@dataclass(frozen=True)
class TrialHistory:
    """What a scheduler sees of a study: its directions and the records of its trials.

    Schedulers decide from these alone (never from a study's internals), so a study loaded
    in another process, or a driver of its own, gets the same decisions.
    """

    directions: tuple[str, ...]
    trials: Collection[FrozenTrial]


class ReportingTrial(Protocol):
    """The running trial being judged: its number and the values it reported by step."""

    number: int
    intermediate: Mapping[int, float]


class Scheduler:
    """Base class: decide whether a running trial should stop at its last reported step.

    A scheduler with ``requires_report = True`` works on a budget (the reported step is the
    resource spent, e.g. epochs): ``trial.should_prune()`` before any ``trial.report`` is an
    error there, not a silent "continue".
    """

    requires_report: ClassVar[bool] = False

    def should_prune(self, history: TrialHistory, trial: ReportingTrial) -> bool:
        return False


class MedianStopping(Scheduler):
    """The median stopping rule (Golovin et al., Google Vizier, 2017): stop a trial whose value
    at its last step is worse than the median of the values other trials reported at that
    step. Waits for `n_startup_trials` complete trials and `n_warmup_steps` steps, and only
    checks every `interval` steps. Single objective.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> def objective(trial):
        ...     for step in range(10):
        ...         trial.report(step, trial["x"] * (10 - step))
        ...         if trial.should_prune():
        ...             raise airda.TrialPruned()
        ...     return trial["x"]
        >>> study = airda.create_study(space={"x": Float(0, 1)}, scheduler=MedianStopping(), seed=1)
        >>> study.optimize(objective, n_trials=30)
        >>> any(t.state is airda.TrialState.PRUNED for t in study.trials)
        True
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval: int = 1):
        if n_startup_trials < 0 or n_warmup_steps < 0 or interval < 1:
            raise ValueError("n_startup_trials and n_warmup_steps must be >= 0, interval >= 1")
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval = interval

    def should_prune(self, history: TrialHistory, trial: ReportingTrial) -> bool:
        if len(history.directions) != 1:
            raise ValueError("MedianStopping supports one objective")
        step = max(trial.intermediate)
        if step < self.n_warmup_steps or (step - self.n_warmup_steps) % self.interval:
            return False
        done = [t for t in history.trials if t.state is TrialState.COMPLETE]
        if len(done) < self.n_startup_trials:
            return False
        others = [
            t.intermediate[step]
            for t in history.trials
            if t.number != trial.number
            and step in t.intermediate
            and t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        ]
        if not others:
            return False
        median = statistics.median(others)
        value = trial.intermediate[step]
        if math.isnan(value):
            return True
        return value > median if history.directions[0] == "minimize" else value < median

"""Successive halving, ASHA and Hyperband as early-stopping rules on ``trial.report``.

The budget is the reported step: a trial reports ``trial.report(step=resource, value)`` (the
resource spent so far, e.g. epochs) and asks ``trial.should_prune()``. Rungs lie at
``min_resource * eta**k`` below ``max_resource``. A trial's value at a rung is the value it
reported at its first step at or beyond the rung, and the decision at that rung is taken when
that step is reported, so a loop that reports every other epoch still meets every rung.

Every decision is a function of the stored intermediate values of the study's trials (and of
trial numbers), never of state held in memory: a study loaded again after a crash decides
exactly as the uninterrupted one would have.

airda does not pause trials. A trial that is not among the best at its rung is stopped, and
one that arrives at a rung before enough others have is compared with those that are there
(the first to arrive continues when it is the best so far), as in Optuna's
``SuccessiveHalvingPruner`` and the no-pause variant of ASHA (Li et al., 2020).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar

from airda._budget import rung_steps
from airda.schedulers._median import ReportingTrial, Scheduler, TrialHistory
from airda.trial import TrialState

if TYPE_CHECKING:
    from airda.trial import FrozenTrial

__all__ = ["ASHA", "Hyperband", "SuccessiveHalving", "rung_steps"]

_POOL_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


def _check_int(name: str, value: object, low: int) -> int:
    if value is None:
        raise ValueError(
            f"{name} is required: the schedulers count the budget in reported steps "
            "(trial.report(step=<resource spent>, value)), e.g. epochs"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def rung_entry(intermediate: Mapping[int, float], rung: int) -> tuple[int, float] | None:
    """(step, value) of the first report at or beyond `rung`; None if the trial is not there."""
    steps = [s for s in intermediate if s >= rung]
    if not steps:
        return None
    s = min(steps)
    return s, intermediate[s]


class _RungScheduler(Scheduler):
    """Shared machinery: validation, rung lookup and the top-1/eta ranking."""

    requires_report: ClassVar[bool] = True

    def __init__(
        self, min_resource: int = 1, max_resource: int | None = None, reduction_factor: int = 3
    ):
        self.min_resource = _check_int("min_resource", min_resource, 1)
        self.max_resource = _check_int("max_resource", max_resource, 1)
        self.reduction_factor = _check_int("reduction_factor", reduction_factor, 2)
        if self.max_resource < self.min_resource:
            raise ValueError(
                f"max_resource ({max_resource}) must be >= min_resource ({min_resource})"
            )

    # ---- subclasses ----------------------------------------------------------------------
    def _rungs(self, history: TrialHistory | None, number: int) -> list[int]:
        return rung_steps(self.min_resource, self.max_resource, self.reduction_factor)

    def _pool(self, history: TrialHistory, number: int) -> Iterable[FrozenTrial]:
        return (t for t in history.trials if t.number != number and t.state in _POOL_STATES)

    def _keep(self, n_at_rung: int, rung_index: int) -> int:
        return max(1, n_at_rung // self.reduction_factor)

    # ---- the decision --------------------------------------------------------------------
    def should_prune(self, history: TrialHistory, trial: ReportingTrial) -> bool:
        if len(history.directions) != 1:
            raise ValueError(f"{type(self).__name__} supports one objective")
        if not trial.intermediate:
            raise ValueError(
                f"trial {trial.number}: call trial.report(step=<resource spent>, value) "
                "before trial.should_prune()"
            )
        last = max(trial.intermediate)
        if last > self.max_resource:
            raise ValueError(
                f"trial {trial.number} reported step {last}, beyond max_resource="
                f"{self.max_resource}: the step is the resource spent (e.g. the epoch)"
            )
        sign = 1.0 if history.directions[0] == "minimize" else -1.0
        rungs = self._rungs(history, trial.number)
        for k, rung in enumerate(rungs):
            entry = rung_entry(trial.intermediate, rung)
            if entry is None or entry[0] != last:
                continue
            mine = (sign * entry[1], trial.number)
            others = []
            for t in self._pool(history, trial.number):
                e = rung_entry(t.intermediate, rung)
                if e is not None:
                    others.append((sign * e[1], t.number))
            rank = sum(1 for o in others if o < mine)
            if rank >= self._keep(len(others) + 1, k):
                return True
        return False

    def rungs_of(self, history: TrialHistory | None, number: int) -> list[int]:
        """The rung steps that apply to trial `number` (of the study `history` describes)."""
        return self._rungs(history, number)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_resource={self.min_resource}, max_resource="
            f"{self.max_resource}, reduction_factor={self.reduction_factor})"
        )


class ASHA(_RungScheduler):
    """Asynchronous successive halving (Li et al., 2020): at each rung a trial continues only
    if it ranks in the top ``1/eta`` of all trials that reached that rung (at least the best
    one continues), compared with every trial of the study, finished or running.

    Args:
        min_resource: the first rung (steps, e.g. epochs).
        max_resource: the full budget; a trial reaching it ends normally.
        reduction_factor: eta, an int >= 2.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> def objective(trial):
        ...     for epoch in range(1, 28):
        ...         loss = trial["x"] + 1.0 / epoch
        ...         trial.report(epoch, loss)
        ...         if trial.should_prune():
        ...             raise airda.TrialPruned()
        ...     return loss
        >>> sched = ASHA(min_resource=1, max_resource=27, reduction_factor=3)
        >>> study = airda.create_study(space={"x": Float(0, 1)}, scheduler=sched, seed=0)
        >>> study.optimize(objective, n_trials=20)
        >>> sum(max(t.intermediate) for t in study.trials) < 20 * 27 / 3
        True
    """


class SuccessiveHalving(_RungScheduler):
    """Successive halving (Jamieson & Talwalkar, 2016) in cohorts of consecutive trials.

    Trials ``0..n-1`` form the first cohort, ``n..2n-1`` the second, and so on. At rung ``k`` a
    trial is compared only with its cohort: it continues if it ranks in the top ``1/eta`` of the
    cohort members that reached the rung, and never more than ``n // eta**(k+1)`` of them (the
    number a synchronous round keeps) can be ahead of it: the budget of a cohort is bounded as
    in the synchronous algorithm. As airda does not pause trials, a member reaching a rung
    before the rest of its cohort is judged on those already there.

    Args:
        min_resource, max_resource, reduction_factor: as for :class:`ASHA`.
        n_trials_per_bracket: cohort size ``n``; default ``eta ** len(rungs)`` (so that one
            member can reach ``max_resource``).

    Example:
        >>> sh = SuccessiveHalving(min_resource=1, max_resource=9, reduction_factor=3)
        >>> sh.n_trials_per_bracket, sh.rungs_of(None, 0)
        (9, [1, 3])
    """

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int | None = None,
        reduction_factor: int = 3,
        n_trials_per_bracket: int | None = None,
    ):
        super().__init__(min_resource, max_resource, reduction_factor)
        n_rungs = len(rung_steps(self.min_resource, self.max_resource, self.reduction_factor))
        if n_trials_per_bracket is None:
            n_trials_per_bracket = self.reduction_factor**n_rungs
        self.n_trials_per_bracket = _check_int("n_trials_per_bracket", n_trials_per_bracket, 1)

    def _pool(self, history: TrialHistory, number: int) -> Iterable[FrozenTrial]:
        cohort = number // self.n_trials_per_bracket
        return (
            t
            for t in super()._pool(history, number)
            if t.number // self.n_trials_per_bracket == cohort
        )

    def _keep(self, n_at_rung: int, rung_index: int) -> int:
        quota = self.n_trials_per_bracket // self.reduction_factor ** (rung_index + 1)
        return max(1, min(n_at_rung // self.reduction_factor, quota))


class Hyperband(_RungScheduler):
    """Hyperband (Li et al., 2018) run asynchronously: brackets of ASHA with different first
    rungs, from ``min_resource`` (most aggressive) to ``max_resource`` (no early stop).

    Bracket ``b`` (``0..s_max``, ``s_max = len(rungs)``) starts at ``min_resource * eta**b``
    and receives a share of trials proportional to the paper's
    ``n_b = ceil((s_max + 1) / (s_max - b + 1) * eta**(s_max - b))``. A trial's bracket is
    fixed by its number alone: ``crc32(str(number)) % sum(n)`` walked along the cumulative
    shares, so it survives restarts and is the same in every worker. Within a bracket the
    ASHA rule compares a trial with the other trials of the bracket only.

    Example:
        >>> hb = Hyperband(min_resource=1, max_resource=27, reduction_factor=3)
        >>> hb.bracket_sizes
        [27, 12, 6, 4]
        >>> [hb.bracket_rungs(b) for b in range(4)]
        [[1, 3, 9], [3, 9], [9], []]
        >>> hb.bracket_of(0) in range(4)
        True
    """

    def __init__(
        self, min_resource: int = 1, max_resource: int | None = None, reduction_factor: int = 3
    ):
        super().__init__(min_resource, max_resource, reduction_factor)
        eta = self.reduction_factor
        s_max = len(rung_steps(self.min_resource, self.max_resource, eta))
        self.n_brackets = s_max + 1
        self.bracket_sizes = [
            math.ceil((s_max + 1) / (s_max - b + 1) * eta ** (s_max - b))
            for b in range(self.n_brackets)
        ]

    def bracket_of(self, number: int) -> int:
        """The bracket of trial `number`."""
        h = zlib.crc32(str(number).encode()) % sum(self.bracket_sizes)
        for b, size in enumerate(self.bracket_sizes):
            if h < size:
                return b
            h -= size
        raise AssertionError("unreachable")

    def bracket_rungs(self, bracket: int) -> list[int]:
        first = self.min_resource * self.reduction_factor**bracket
        return rung_steps(first, self.max_resource, self.reduction_factor)

    def _rungs(self, history: TrialHistory | None, number: int) -> list[int]:
        return self.bracket_rungs(self.bracket_of(number))

    def _pool(self, history: TrialHistory, number: int) -> Iterable[FrozenTrial]:
        b = self.bracket_of(number)
        return (t for t in super()._pool(history, number) if self.bracket_of(t.number) == b)

"""Synchronous successive halving and Hyperband, as segment strategies.

The schedulers in :mod:`airda.schedulers` (``SuccessiveHalving``, ``Hyperband``, ``ASHA``) stop
trials early through the pruning interface and never pause one, so they judge a trial on the
trials that reached its rung before it did. The strategies here are the synchronous algorithms
of Jamieson & Talwalkar (2016) and Li et al. (2018): a rung is judged once **all** of its
configurations have trained to its budget, and the promoted ones continue from their
checkpoints. Each trial is one *segment*: a configuration trained from the budget of the rung
below to the budget of its rung, through :class:`airda.hpo.Session` (``session.steps``,
``session.load_checkpoint()``, ``session.save_checkpoint(state)``).

Budgets are the ladder ``min_resource * eta**k`` below ``max_resource``, then
``max_resource``; ``s_max`` is the ladder's length minus one. Bracket ``s`` (Hyperband runs
``s = s_max .. 0``, successive halving runs ``s = s_max`` only) starts ``n_s`` random
configurations at the ladder's budget ``s_max - s`` and keeps the best ``floor(n_s / eta**i)``
at its rung ``i``, with ``n_s = ceil((s_max + 1) / (s + 1) * eta**s)`` (Li et al., 2018). One
pass over the brackets is :attr:`SyncHyperband.n_trials_per_cycle` trials; asks beyond it start
the next cycle with new configurations.

Every decision is a function of the seed, the ask index and the stored results of the rung
below, so a reloaded study makes the same ones. Run the trials of a rung before the next rung
starts: a serial study, or parallel workers no more than the narrowest rung. A rung that has
fewer complete trials below it than places (segments that failed, or are still running with
more workers) fills the rest with new random configurations trained from scratch to its budget.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from airda._budget import rung_steps
from airda.strategies.segments import SegmentStrategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["SyncHyperband", "SyncSuccessiveHalving"]


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class SyncHyperband(SegmentStrategy):
    """Synchronous Hyperband (Li et al., 2018) over training segments; see the module
    docstring for the rule.

    Args:
        min_resource: the smallest budget (steps: epochs, optimiser steps).
        max_resource: the full budget of a configuration.
        reduction_factor: ``eta``, the fraction ``1 / eta`` of a rung that is promoted.
        seed: random seed of the configurations.

    Example:
        >>> import tempfile, airda
        >>> from airda.hpo import Session
        >>> from airda.space import Float
        >>> root = tempfile.mkdtemp()
        >>> def train(trial):
        ...     s = Session(trial, checkpoint_dir=root)
        ...     state = s.load_checkpoint() or {"loss": 1.0}
        ...     for step in s.steps:  # this segment's epochs
        ...         state["loss"] *= 1.0 - trial["lr"]  # one epoch of "training"
        ...         s.report(step, state["loss"])
        ...     s.save_checkpoint(state)
        ...     return state["loss"]
        >>> hb = SyncHyperband(min_resource=1, max_resource=9, reduction_factor=3, seed=0)
        >>> hb.n_trials_per_cycle  # brackets of 9 + 3 + 1, 5 + 1 and 3 segments
        22
        >>> study = airda.create_study(space={"lr": Float(0.01, 0.5)}, strategy=hb)
        >>> study.optimize(train, n_trials=hb.n_trials_per_cycle)
        >>> sum(hb.budget_of(t) - hb.start_of(t) for t in study.trials)  # epochs trained
        69
        >>> best = hb.best_trial(study)
        >>> hb.budget_of(best), hb.rung_of(best)  # (bracket s, rung i)
        (9, (0, 0))
    """

    name: ClassVar[str] = "sync_hyperband"
    supports_multi_objective: ClassVar[bool] = False
    parent_attr: ClassVar[str] = "hyperband_parent"

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int = 81,
        reduction_factor: int = 3,
        *,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        self.min_resource = _check_int("min_resource", min_resource, 1)
        self.max_resource = _check_int("max_resource", max_resource, 1)
        self.reduction_factor = _check_int("reduction_factor", reduction_factor, 2)
        if self.max_resource < self.min_resource:
            raise ValueError(
                f"max_resource ({max_resource}) must be >= min_resource ({min_resource})"
            )
        self.ladder = [*rung_steps(self.min_resource, self.max_resource, self.reduction_factor)]
        self.ladder.append(self.max_resource)
        self.s_max = len(self.ladder) - 1
        self._build()

    def options(self) -> dict[str, Any]:
        return {
            "min_resource": self.min_resource,
            "max_resource": self.max_resource,
            "reduction_factor": self.reduction_factor,
        }

    # ---- the schedule --------------------------------------------------------------------
    def _brackets(self) -> list[tuple[int, int]]:
        """(s, n_s) of the brackets of one cycle, in the order they run."""
        eta, s_max = self.reduction_factor, self.s_max
        return [(s, math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9)) for s in range(s_max, -1, -1)]

    def _build(self) -> None:
        # slot: (bracket position, rung, place); rungs[(b, i)] = (first slot, width, budget)
        self._slots: list[tuple[int, int, int]] = []
        self._rungs: dict[tuple[int, int], tuple[int, int, int]] = {}
        for b, (s, n) in enumerate(self._brackets()):
            for i in range(s + 1):
                width = max(1, n // self.reduction_factor**i)
                budget = self.ladder[self.s_max - s + i]
                self._rungs[(b, i)] = (len(self._slots), width, budget)
                self._slots.extend((b, i, j) for j in range(width))

    @property
    def n_trials_per_cycle(self) -> int:
        """Trials (segments) in one pass over the brackets."""
        return len(self._slots)

    def _where(self, index: int) -> tuple[int, int, int, int]:
        """(first index of the cycle, bracket position, rung, place) of ask `index`."""
        cycle, pos = divmod(index, len(self._slots))
        b, i, j = self._slots[pos]
        return cycle * len(self._slots), b, i, j

    def rung_of(self, trial: FrozenTrial | Any) -> tuple[int, int]:
        """(bracket s, rung i) of a trial: the bracket that starts at budget ladder[s_max - s]."""
        frozen = getattr(trial, "_frozen", trial)
        _, b, i, _ = self._where(self._own_index(frozen))
        return self._brackets()[b][0], i

    def budget_of(self, trial: FrozenTrial | Any) -> int:
        """The step the trial's segment trains up to."""
        frozen = getattr(trial, "_frozen", trial)
        _, b, i, _ = self._where(self._own_index(frozen))
        return self._rungs[(b, i)][2]

    def start_of(self, trial: FrozenTrial | Any) -> int:
        """The step the trial's segment starts after (0: trained from scratch)."""
        frozen = getattr(trial, "_frozen", trial)
        parent = self.parent_of(frozen)
        return self._span(self._own_index(frozen), None if parent is None else frozen)[0]

    def best_trial(self, study: Any) -> FrozenTrial:
        """The best complete trial trained to ``max_resource`` (the study's own best trial
        may be a low-budget segment). Raises ValueError when none is complete yet."""
        full = [
            t
            for t in study.get_trials([TrialState.COMPLETE])
            if self._index(t) is not None and self.budget_of(t) == self.max_resource
        ]
        if not full:
            raise ValueError("no trial has completed the full budget yet")
        return min(full, key=lambda t: (self.loss(t), t.number))

    # ---- decisions -----------------------------------------------------------------------
    def _decide(self, index: int) -> tuple[dict[str, Any], int | None]:
        assert self.space is not None
        base, b, i, j = self._where(index)
        if i > 0:
            first, width, _ = self._rungs[(b, i - 1)]
            below = [self._by_index.get(base + first + k) for k in range(width)]
            done = sorted(
                (self.loss(t), k, t)
                for k, t in enumerate(below)
                if t is not None and t.state is TrialState.COMPLETE
            )
            if j < len(done):
                t = done[j][2]
                return dict(t.params), t.number
        return self.space.sample(self.rng(index)), None

    def _span(self, index: int, parent: FrozenTrial | None) -> tuple[int, int]:
        _, b, i, _ = self._where(index)
        budget = self._rungs[(b, i)][2]
        start = self._rungs[(b, i - 1)][2] if parent is not None and i > 0 else 0
        return start, budget


class SyncSuccessiveHalving(SyncHyperband):
    """Synchronous successive halving (Jamieson & Talwalkar, 2016): Hyperband's most
    aggressive bracket alone, ``n_configs`` configurations at ``min_resource``, the best
    ``1 / eta`` of each rung promoted until ``max_resource``.

    Args:
        min_resource, max_resource, reduction_factor, seed: as for :class:`SyncHyperband`.
        n_configs: configurations per bracket; default ``eta ** s_max`` (one reaches the
            full budget).

    Example:
        >>> sh = SyncSuccessiveHalving(min_resource=1, max_resource=27, reduction_factor=3)
        >>> sh.ladder, sh.n_trials_per_cycle  # 27 + 9 + 3 + 1 segments
        ([1, 3, 9, 27], 40)
    """

    name: ClassVar[str] = "sync_halving"

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int = 81,
        reduction_factor: int = 3,
        *,
        n_configs: int | None = None,
        seed: int | None = None,
    ):
        self.n_configs = None if n_configs is None else _check_int("n_configs", n_configs, 1)
        super().__init__(min_resource, max_resource, reduction_factor, seed=seed)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n_configs": self.n_configs}

    def _brackets(self) -> list[tuple[int, int]]:
        n = self.reduction_factor**self.s_max if self.n_configs is None else self.n_configs
        return [(self.s_max, n)]

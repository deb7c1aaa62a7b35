"""Strategies whose trials are *segments* of a longer training run.

A segment trial trains steps ``start + 1 .. end`` and, unless it starts from scratch, first
restores the checkpoint its *parent* trial saved (through :class:`airda.hpo.Session`). Which
segment an ask is, and its parent, are a function of the seed, the ask index and the stored
results of earlier segments, so a reloaded study makes the same decisions. Subclasses:
:class:`~airda.strategies.PopulationBasedTraining` and
:class:`~airda.strategies.SyncHyperband` / :class:`~airda.strategies.SyncSuccessiveHalving`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from airda.strategies.base import Strategy
from airda.trial import FrozenTrial

__all__ = ["SegmentStrategy"]


class SegmentStrategy(Strategy):
    """Base of the segment strategies: keeps the trials by ask index and answers
    :meth:`segment` for the training loop.

    Subclasses implement :meth:`_decide` (``index -> (params, parent number or None)``) and
    :meth:`_span` (``index, parent -> (start_step, end_step)``), and name the system attribute
    the :class:`airda.hpo.Session` records the parent under (:attr:`parent_attr`).
    """

    # A segment that continues proposes the same hyperparameters again: the study must run it,
    # not reuse the earlier segment's result.
    proposes_repeats: ClassVar[bool] = True
    parent_attr: ClassVar[str] = "segment_parent"

    def __init__(self, *, seed: int | None = None):
        super().__init__(seed=seed)
        self._by_index: dict[int, FrozenTrial] = {}

    # ---- history -------------------------------------------------------------------------
    def _reset(self) -> None:
        self._by_index = {}

    def _index(self, trial: FrozenTrial) -> int | None:
        attrs = trial.system_attrs
        if "ask_index" in attrs and attrs.get("stream", 0) == self.stream:
            return int(attrs["ask_index"])
        return None

    def _own_index(self, trial: FrozenTrial) -> int:
        i = self._index(trial)
        if i is None:
            raise ValueError(f"trial {trial.number} was not proposed by this {self.name} strategy")
        return i

    def note(self, trial: FrozenTrial) -> None:
        super().note(trial)
        i = self._index(trial)
        if i is not None:
            self._by_index[i] = trial

    def _tell(self, trial: FrozenTrial) -> None:
        i = self._index(trial)
        if i is not None:
            self._by_index[i] = trial

    # ---- decisions -----------------------------------------------------------------------
    def _decide(self, index: int) -> tuple[dict[str, Any], int | None]:
        raise NotImplementedError

    def _span(self, index: int, parent: FrozenTrial | None) -> tuple[int, int]:
        raise NotImplementedError

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        params, _ = self._decide(self.n_asked)
        return params

    def parent_of(self, trial: FrozenTrial | Any) -> int | None:
        """The number of the trial whose checkpoint `trial` starts from (None: from scratch).

        The decision recorded by :class:`airda.hpo.Session` (``system_attrs[parent_attr]``)
        takes precedence; otherwise it is recomputed.
        """
        frozen = getattr(trial, "_frozen", trial)
        attrs = frozen.system_attrs
        if self.parent_attr in attrs:
            return attrs[self.parent_attr]
        i = self._index(frozen)
        if i is None:
            return None
        return self._decide(i)[1]

    def segment(self, trial: FrozenTrial | Any, parent: FrozenTrial | None) -> tuple[int, int]:
        """``(start_step, end_step)``: the segment `trial` trains is steps ``start + 1 ..
        end``; `parent` is the trial it continues (None: from scratch)."""
        frozen = getattr(trial, "_frozen", trial)
        return self._span(self._own_index(frozen), parent)

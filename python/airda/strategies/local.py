"""Local search: first-improvement hill climbing over a space's neighbours, with restarts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda.space import candidate_key
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial

__all__ = ["LocalSearch"]


class LocalSearch(Strategy):
    """Start at a random candidate; evaluate its neighbours in random order and move to the
    first that improves; at a local optimum (every neighbour tried, none better), restart at
    a random candidate.

    The climb is a function of the history alone (a told trial that is no neighbour of the
    centre starts a new climb), so a resumed study climbs on exactly as before. `step` is the
    move of a float parameter in unit-scale coordinates.
    """

    name = "local"
    tracks_seen = True
    supports_multi_objective = False

    def __init__(self, *, step: float = 0.1, seed: int | None = None):
        super().__init__(seed=seed)
        if not 0 < step <= 1:
            raise ValueError(f"step must be in (0, 1], got {step}")
        self.step = step

    def options(self) -> dict[str, Any]:
        return {"step": self.step}

    def _reset(self) -> None:
        self._center: FrozenTrial | None = None
        self._neighbours: list[dict[str, Any]] = []
        self._neighbour_keys: set[str] = set()

    def _set_center(self, trial: FrozenTrial | None) -> None:
        self._center = trial
        if trial is None:
            self._neighbours, self._neighbour_keys = [], set()
            return
        assert self.space is not None
        found = self.space.neighbours(trial.params, self.step)
        # The order of a centre's neighbours depends on the centre alone.
        order = np.random.default_rng([self.seed, self.stream, 1, trial.number]).permutation(
            len(found)
        )
        self._neighbours = [found[i] for i in order]
        self._neighbour_keys = {candidate_key(c) for c in found}

    def _tell(self, trial: FrozenTrial) -> None:
        if self._center is not None and candidate_key(trial.params) in self._neighbour_keys:
            if self.loss(trial) < self.loss(self._center):
                self._set_center(trial)
        elif trial.system_attrs.get("ask_index") is not None or self._center is None:
            # A restart (or the first point): a new climb starts here, if it has a value.
            self._set_center(trial if math.isfinite(self.loss(trial)) else None)

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        for c in self._neighbours:
            if candidate_key(c) not in self.seen:
                self.seen.add(candidate_key(c))
                return c
        # No centre yet, or a local optimum: every neighbour was tried. Restart.
        return self.space.sample(rng)

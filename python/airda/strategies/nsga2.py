"""NSGA-II (Deb et al., IEEE TEC 2002) on the ask/tell interface, steady-state.

The population is the best ``population_size`` complete trials by non-dominated front, then
crowding distance (the whole history competes: elitist). It is updated at every result, so
the state is a function of the history and a resumed study continues exactly. After
``population_size`` random candidates, each ask picks two parents by binary tournament (lower
front, then larger crowding distance), takes every coordinate from either parent with equal
probability (uniform crossover on the unit-cube encoding; a coordinate one parent lacks comes
from the other, or is drawn at random where neither has it, so conditional spaces stay valid),
and mutates each parameter of the child with probability ``mutation_prob`` (default
1 / number of parameters). With one objective it is a plain elitist genetic algorithm.
With constraints (``trial.set_constraints``) the fronts follow Deb's constrained domination:
feasible trials first, then the others by total violation.

Example:
    >>> import airda
    >>> from airda.space import Float
    >>> study = airda.create_study(space={"x": Float(0, 1), "y": Float(0, 1)},
    ...                            directions=["minimize", "minimize"],
    ...                            strategy=NSGA2(population_size=10, seed=0))
    >>> study.optimize(lambda t: (t["x"], (1 - t["x"]) * (1 + t["y"])), n_trials=60)
    >>> len(study.pareto_front()) >= 5
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda.strategies._pareto import crowding_distance
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["NSGA2"]


class NSGA2(Strategy):
    """Steady-state NSGA-II; see the module docstring.

    Args:
        population_size: trials kept as parents (and random candidates at the start), >= 2.
        crossover_prob: probability that a child is a crossover of two parents (else a copy of
            the first), in [0, 1].
        mutation_prob: per-parameter mutation probability; None: 1 / number of parameters.
        seed: the sampling seed.
    """

    name = "nsga2"
    supports_constraints = True
    supports_multi_objective = True

    def __init__(
        self,
        *,
        population_size: int = 50,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if (
            isinstance(population_size, bool)
            or not isinstance(population_size, (int, np.integer))
            or population_size < 2
        ):
            raise ValueError(f"population_size must be an integer >= 2, got {population_size!r}")
        for label, value in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if value is None and label == "mutation_prob":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{label} must be a number in [0, 1], got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value!r}")
        self.population_size = int(population_size)
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = None if mutation_prob is None else float(mutation_prob)

    def options(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "crossover_prob": self.crossover_prob,
            "mutation_prob": self.mutation_prob,
        }

    def _reset(self) -> None:
        self._members: list[FrozenTrial] = []
        self._signed = np.empty((0, len(self.directions)))
        self._viol = np.empty(0)  # total constraint violation (0: feasible)
        self._rank = np.empty(0, dtype=np.int64)
        self._crowd = np.empty(0)

    def _tell(self, trial: FrozenTrial) -> None:
        if trial.state is not TrialState.COMPLETE or trial.values is None:
            return
        if len(trial.values) != len(self.directions):
            return
        signed = [
            v if d == "minimize" else -v for v, d in zip(trial.values, self.directions, strict=True)
        ]
        if not all(map(math.isfinite, signed)):
            return
        members = [*self._members, trial]
        values = np.vstack((self._signed, signed))
        viol = np.append(self._viol, trial.violation)
        keep = self._select(values, viol, [t.number for t in members])
        self._members = [members[i] for i in keep]
        self._signed = values[keep]
        self._viol = viol[keep]
        self._rank, self._crowd = self._fronts(self._signed, self._viol)

    @staticmethod
    def _fronts(values: np.ndarray, viol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Front of each member and its crowding distance within the front. With constraints
        (Deb's constrained domination) the feasible members' fronts come first, then one
        front per distinct total violation, smallest first."""
        from airda.ops import non_dominated_rank

        feasible = viol == 0.0
        ranks = np.zeros(len(values), dtype=np.int64)
        if feasible.any():
            ranks[feasible] = np.asarray(non_dominated_rank(values[feasible]), dtype=np.int64)
        if not feasible.all():
            top = int(ranks[feasible].max()) + 1 if feasible.any() else 0
            _, dense = np.unique(viol[~feasible], return_inverse=True)
            ranks[~feasible] = top + dense
        crowd = np.zeros(len(values))
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            crowd[idx] = crowding_distance(values[idx])
        return ranks, crowd

    def _select(self, values: np.ndarray, viol: np.ndarray, numbers: list[int]) -> np.ndarray:
        """Indices of the population_size best: by front, then crowding, then older first."""
        if len(values) <= self.population_size:
            return np.arange(len(values))
        ranks, crowd = self._fronts(values, viol)
        order = np.lexsort((np.asarray(numbers), -crowd, ranks))
        return np.sort(order[: self.population_size])

    def _tournament(self, rng: np.random.Generator) -> int:
        a, b = rng.choice(len(self._members), size=2, replace=False)
        if self._rank[a] != self._rank[b]:
            return int(a if self._rank[a] < self._rank[b] else b)
        return int(a if self._crowd[a] >= self._crowd[b] else b)

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        space = self.space
        if len(self._members) < self.population_size:
            return space.sample(rng)
        first = space.encode(self._members[self._tournament(rng)].params)
        if rng.random() < self.crossover_prob:
            second = space.encode(self._members[self._tournament(rng)].params)
            take = rng.random(space.dim) < 0.5
            child = np.where(take, second, first)
            child = np.where(np.isnan(child), np.where(take, first, second), child)
        else:
            child = first
        fresh = rng.random(space.dim)
        child = np.where(np.isnan(child), fresh, child)
        candidate = space.decode(child)
        movable = [n for n in candidate if space[n].cardinality() > 1]
        if movable:
            p = self.mutation_prob if self.mutation_prob is not None else 1.0 / len(movable)
            n_mutations = int((rng.random(len(movable)) < p).sum())
            if n_mutations:
                candidate = space.mutate(candidate, rng, n=n_mutations)
        return candidate

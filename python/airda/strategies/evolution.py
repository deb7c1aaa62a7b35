"""Regularized (aging) evolution, Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Strategy):
    """Aging evolution: a population of the `population` most recently completed trials; each
    new candidate mutates the best of `sample_size` members drawn at random, and the oldest
    member dies. The first `population` candidates are random.

    With several objectives, the tournament winner is a sampled member that no other sampled
    member dominates (ties broken at random).

    Example:
        >>> import airda
        >>> from airda.space import Categorical
        >>> space = {f"x{i}": Categorical([0, 1, 2, 3]) for i in range(6)}
        >>> rea = RegularizedEvolution(population=10, sample_size=3, seed=0)
        >>> study = airda.create_study(space=space, strategy=rea)
        >>> study.optimize(lambda t: sum(t.params.values()), n_trials=150)
        >>> study.best_value <= 2
        True
    """

    name = "rea"
    supports_constraints = True

    def __init__(
        self,
        *,
        population: int = 50,
        sample_size: int = 10,
        mutations: int = 1,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if population < 2:
            raise ValueError(f"population must be >= 2, got {population}")
        if not 1 <= sample_size <= population:
            raise ValueError(f"sample_size must be in [1, population], got {sample_size}")
        if mutations < 1:
            raise ValueError(f"mutations must be >= 1, got {mutations}")
        self.population = population
        self.sample_size = sample_size
        self.mutations = mutations

    def options(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "sample_size": self.sample_size,
            "mutations": self.mutations,
        }

    def _reset(self) -> None:
        self._members: deque[FrozenTrial] = deque(maxlen=self.population)

    def _tell(self, trial: FrozenTrial) -> None:
        if trial.state is TrialState.COMPLETE and trial.values is not None:
            self._members.append(trial)  # the oldest member leaves: aging

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        if self.n_asked < self.population or not self._members:
            return self.space.sample(rng)
        members = list(self._members)
        picks = rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
        sample = [members[i] for i in picks]
        if len(self.directions) == 1:
            parent = min(sample, key=self.rank_key)
        else:
            front = [a for a in sample if not any(self.dominates(b, a) for b in sample)]
            parent = front[int(rng.integers(len(front)))]
        return self.space.mutate(parent.params, rng, n=self.mutations)

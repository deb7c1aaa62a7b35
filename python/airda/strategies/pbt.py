"""Population-based training (Jaderberg et al., 2017) as a strategy over training segments.

A member of the population trains in segments of ``perturbation_interval`` steps, and each
segment is one trial: ask index ``i`` is member ``i % population_size`` of generation
``i // population_size``. Before a segment starts, the member looks at the previous
generation's results (each trial's final value):

- a member in the bottom ``quantile`` *exploits*: it copies the hyperparameters and the
  checkpoint of a member drawn from the top ``quantile``, then *explores*: every numeric
  hyperparameter is multiplied by a factor drawn from ``perturb_factors`` (0.8 or 1.2, then
  clipped to its range), and every hyperparameter is resampled from the space with
  probability ``resample_probability``;
- the others continue from their own checkpoint with their own hyperparameters.

The checkpoint a segment starts from is its *parent* trial, given by :meth:`parent_of`; the
training loop saves and loads checkpoints through :class:`airda.hpo.Session`, which records the
checkpoint's path in the trial's system attributes. A member whose last segment failed (or
whose checkpoint could not be restored) exploits a top member; when no member of the previous
generation finished, the member starts afresh from a new random sample.

Every decision is a function of the seed, the ask index and the stored results of the previous
generation, so a reloaded study makes the same ones. Segments of a generation should finish
before the next generation starts (a serial study, or parallel workers no more than the
population): a member whose previous segment is still running continues it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from airda.space import Fixed, Float, Int
from airda.strategies.segments import SegmentStrategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["PopulationBasedTraining"]


class PopulationBasedTraining(SegmentStrategy):
    """Population-based training; see the module docstring for the rule.

    Args:
        population_size: members trained side by side (>= 2).
        perturbation_interval: steps each trial (segment) trains; read by
            :class:`airda.hpo.Session` to give the loop its steps.
        quantile: fraction of the population that exploits (bottom) and that is copied
            (top), in (0, 0.5]; at least one member each.
        resample_probability: chance that a hyperparameter is drawn again from the space.
        perturb_factors: the factors a numeric hyperparameter is multiplied by.
        seed: random seed.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> pbt = PopulationBasedTraining(population_size=4, perturbation_interval=2, seed=0)
        >>> study = airda.create_study(space={"lr": Float(1e-4, 1.0, log=True)}, strategy=pbt)
        >>> study.optimize(lambda t: abs(t["lr"] - 0.01), n_trials=12)
        >>> [pbt.parent_of(t) is None for t in study.trials[:5]]
        [True, True, True, True, False]
        >>> pbt.generation_of(study.trials[11]), pbt.member_of(study.trials[11])
        (2, 3)
    """

    name: ClassVar[str] = "pbt"
    supports_multi_objective: ClassVar[bool] = False
    parent_attr: ClassVar[str] = "pbt_parent"

    def __init__(
        self,
        population_size: int = 8,
        perturbation_interval: int = 1,
        *,
        quantile: float = 0.25,
        resample_probability: float = 0.25,
        perturb_factors: Sequence[float] = (0.8, 1.2),
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if isinstance(population_size, bool) or not isinstance(population_size, int):
            raise ValueError(f"population_size must be an int >= 2, got {population_size!r}")
        if population_size < 2:
            raise ValueError(f"population_size must be an int >= 2, got {population_size!r}")
        if (
            isinstance(perturbation_interval, bool)
            or not isinstance(perturbation_interval, int)
            or perturbation_interval < 1
        ):
            raise ValueError(
                f"perturbation_interval must be an int >= 1, got {perturbation_interval!r}"
            )
        if not 0.0 < quantile <= 0.5:
            raise ValueError(f"quantile must be in (0, 0.5], got {quantile!r}")
        if not 0.0 <= resample_probability <= 1.0:
            raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability}")
        factors = tuple(float(f) for f in perturb_factors)
        if not factors or any(not (math.isfinite(f) and f > 0) for f in factors):
            raise ValueError(f"perturb_factors must be positive numbers, got {perturb_factors!r}")
        self.population_size = population_size
        self.perturbation_interval = perturbation_interval
        self.quantile = float(quantile)
        self.resample_probability = float(resample_probability)
        self.perturb_factors = factors

    def options(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "perturbation_interval": self.perturbation_interval,
            "quantile": self.quantile,
            "resample_probability": self.resample_probability,
            "perturb_factors": list(self.perturb_factors),
        }

    # ---- positions -----------------------------------------------------------------------
    def generation_of(self, trial: FrozenTrial) -> int:
        return self._own_index(trial) // self.population_size

    def member_of(self, trial: FrozenTrial) -> int:
        return self._own_index(trial) % self.population_size

    # ---- decisions -----------------------------------------------------------------------
    def _decide(self, index: int) -> tuple[dict[str, Any], int | None]:
        """(params, parent trial number) of ask `index`."""
        assert self.space is not None
        rng = self.rng(index)
        P = self.population_size
        g, m = divmod(index, P)
        if g == 0:
            return self.space.sample(rng), None
        prev = [self._by_index.get((g - 1) * P + j) for j in range(P)]
        own = prev[m]
        if own is None:  # the previous segment was never asked here (another stream)
            return self.space.sample(rng), None
        scored = [
            (self.loss(t), j)
            for j, t in enumerate(prev)
            if t is not None and t.state is TrialState.COMPLETE
        ]
        if not scored:
            return self.space.sample(rng), None
        if not own.state.finished:
            return dict(own.params), own.number
        scored.sort()
        n_q = max(1, int(self.quantile * P))
        top = [j for _, j in scored[:n_q]]
        ranked = [j for _, j in scored]
        # failed / pruned members rank below every complete one
        ranked += [j for j, t in enumerate(prev) if j not in ranked and t is not None]
        bottom = set(ranked[-n_q:]) if len(ranked) > n_q else set()
        if own.state is not TrialState.COMPLETE or m in bottom:
            donor = prev[top[int(rng.integers(len(top)))]]
            assert donor is not None
            return self._explore(donor.params, rng), donor.number
        return dict(own.params), own.number

    def _explore(self, params: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        out: dict[str, Any] = {}
        for name, p in self.space.params.items():
            if not self.space.is_active(name, out):
                continue
            u = float(rng.random())
            if name not in params or u < self.resample_probability:
                out[name] = p.from_unit(float(rng.random()))
                continue
            value = params[name]
            if isinstance(p, (Float, Int)) and not isinstance(p, Fixed):
                f = self.perturb_factors[int(rng.integers(len(self.perturb_factors)))]
                moved = min(max(value * f, p.low), p.high)
                out[name] = p.from_unit(p.to_unit(moved))
            else:  # categorical and fixed values are only resampled
                out[name] = value
        return out

    def _span(self, index: int, parent: FrozenTrial | None) -> tuple[int, int]:
        start = int(parent.system_attrs.get("checkpoint_step", 0)) if parent is not None else 0
        return start, start + self.perturbation_interval

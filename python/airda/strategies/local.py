"""Local search: first-improvement hill climbing over a space's neighbours, with restarts;
optionally with exchange moves and a prior over the choices that orders the moves and picks
the starts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from airda.space import Categorical, candidate_key
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

    Args:
        step: the move of a float parameter (unit scale).
        swaps: also move by exchanging the values of two categorical parameters that have the
            same choices (the ops of two edges of a cell): a move that keeps the multiset of
            choices, which one-parameter moves can only make through worse candidates.
        prior: an additive prior over choices, ``{choice: weight}``: a candidate's prior is the
            sum of the weights of its values (absent: 0), higher meaning more promising (for a
            cell space, e.g. the parameter count each operation adds). With a prior, the
            neighbours are tried best prior first (ties in random order), and every start or
            restart is the best-prior candidate of `pool` random unseen ones: a zero-cost warm
            start and a learned-free move order. JSON, so worker processes rebuild it.
        pool: random candidates scored by the prior for each (re)start.

    Example:
        >>> import airda
        >>> from airda.space import Categorical
        >>> ops = ["none", "skip", "conv1", "conv3"]
        >>> space = {f"e{i}": Categorical(ops) for i in range(4)}
        >>> def score(t):  # best: conv3 everywhere but a skip on e3
        ...     want = ["conv3", "conv3", "conv3", "skip"]
        ...     return sum(t.params[f"e{i}"] == w for i, w in enumerate(want))
        >>> ls = LocalSearch(swaps=True, prior={"conv3": 9, "conv1": 1}, seed=0)
        >>> study = airda.create_study(space=space, strategy=ls, direction="maximize")
        >>> study.optimize(score, n_trials=12)
        >>> study.best_value
        4.0
    """

    name = "local"
    supports_constraints = True
    tracks_seen = True
    supports_multi_objective = False

    def __init__(
        self,
        *,
        step: float = 0.1,
        swaps: bool = False,
        prior: Mapping[str, float] | None = None,
        pool: int = 200,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if not 0 < step <= 1:
            raise ValueError(f"step must be in (0, 1], got {step}")
        if prior is not None:
            if not isinstance(prior, Mapping):
                raise TypeError(f"prior must be a mapping choice -> weight, got {prior!r}")
            bad = {k: v for k, v in prior.items() if not _finite(v)}
            if bad:
                raise ValueError(f"prior weights must be finite numbers, got {bad}")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be an int >= 1, got {pool!r}")
        self.step = step
        self.swaps = bool(swaps)
        self.prior = None if prior is None else {str(k): float(v) for k, v in prior.items()}
        self.pool = pool

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step}
        if self.swaps:
            out["swaps"] = True
        if self.prior is not None:
            out["prior"] = dict(self.prior)
            out["pool"] = self.pool
        return out

    def _reset(self) -> None:
        self._center: FrozenTrial | None = None
        self._neighbours: list[dict[str, Any]] = []
        self._neighbour_keys: set[str] = set()

    def _score(self, candidate: Mapping[str, Any]) -> float:
        assert self.prior is not None
        return sum(self.prior.get(str(v), 0.0) for v in candidate.values())

    def _swap_groups(self) -> list[list[str]]:
        """Names of unconditional categorical parameters, grouped by equal choices, that no
        other parameter's condition refers to."""
        assert self.space is not None
        params = self.space.params
        parents = {p for q in params.values() for p in q.when}
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name, p in params.items():
            if isinstance(p, Categorical) and not p.when and name not in parents:
                groups.setdefault(tuple(p.choices), []).append(name)
        return [g for g in groups.values() if len(g) > 1]

    def _swapped(self, candidate: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for group in self._swap_groups():
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    if candidate.get(a) != candidate.get(b):
                        c = dict(candidate)
                        c[a], c[b] = candidate[b], candidate[a]
                        out.append(c)
        return out

    def _set_center(self, trial: FrozenTrial | None) -> None:
        self._center = trial
        if trial is None:
            self._neighbours, self._neighbour_keys = [], set()
            return
        assert self.space is not None
        found = self.space.neighbours(trial.params, self.step)
        if self.swaps:
            keys = {candidate_key(c) for c in found} | {candidate_key(trial.params)}
            for c in self._swapped(trial.params):
                if candidate_key(c) not in keys:
                    keys.add(candidate_key(c))
                    found.append(c)
        # The order of a centre's neighbours depends on the centre alone.
        order = np.random.default_rng([self.seed, self.stream, 1, trial.number]).permutation(
            len(found)
        )
        ordered = [found[i] for i in order]
        if self.prior is not None:
            ordered.sort(key=self._score, reverse=True)  # stable: ties keep the random order
        self._neighbours = ordered
        self._neighbour_keys = {candidate_key(c) for c in found}

    def _tell(self, trial: FrozenTrial) -> None:
        if self._center is not None and candidate_key(trial.params) in self._neighbour_keys:
            if self.rank_key(trial) < self.rank_key(self._center):
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
        if self.prior is None:
            return self.space.sample(rng)
        best, best_score = None, -math.inf
        for _ in range(self.pool):
            c = self.space.sample(rng)
            if candidate_key(c) in self.seen:
                continue
            s = self._score(c)
            if s > best_score:
                best, best_score = c, s
        return best if best is not None else self.space.sample(rng)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

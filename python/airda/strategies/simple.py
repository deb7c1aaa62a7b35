"""Strategies that do not learn: random, grid and quasi-random (scrambled Halton) search."""

from __future__ import annotations

from typing import Any

import numpy as np

from airda.space import candidate_key
from airda.strategies.base import Strategy, StrategyExhausted

__all__ = ["GridSearch", "HaltonSearch", "RandomSearch"]


class RandomSearch(Strategy):
    """Independent uniform samples (log-uniform for log parameters).

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> study = airda.create_study(space={"x": Float(-1, 1)}, strategy=RandomSearch(seed=0))
        >>> study.optimize(lambda t: t["x"] ** 2, n_trials=20)
        >>> study.best_value < 0.05
        True
    """

    name = "random"
    supports_constraints = True

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        return self.space.sample(rng)


class GridSearch(Strategy):
    """Every point of the space's grid once: finite parameters fully, floats at `resolution`
    points; in order, or shuffled when `shuffle`. Raises StrategyExhausted when done."""

    name = "grid"
    supports_constraints = True
    tracks_seen = True

    def __init__(self, *, resolution: int = 5, shuffle: bool = False, seed: int | None = None):
        super().__init__(seed=seed)
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.resolution = resolution
        self.shuffle = shuffle

    def options(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "shuffle": self.shuffle}

    def _reset(self) -> None:
        assert self.space is not None
        points = self.space.grid(self.resolution)
        if self.shuffle:
            listed = list(points)
            np.random.default_rng([self.seed, 1]).shuffle(listed)
            points = iter(listed)
        # Lazy: a large grid is walked only as far as the search goes.
        self._points = points

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for point in self._points:
            key = candidate_key(point)
            if key in self.seen:  # taken by another worker, or before a restart
                continue
            self.seen.add(key)
            self.n_asked += 1
            out.append(point)
            if len(out) == n:
                return out
        if not out:
            raise StrategyExhausted("every grid point was asked")
        return out

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError  # ask is overridden


_PRIMES = (
    2,
    3,
    5,
    7,
    11,
    13,
    17,
    19,
    23,
    29,
    31,
    37,
    41,
    43,
    47,
    53,
    59,
    61,
    67,
    71,
    73,
    79,
    83,
    89,
    97,
    101,
    103,
    107,
    109,
    113,
    127,
    131,
    137,
    139,
    149,
    151,
    157,
    163,
    167,
    173,
)


def _primes(n: int) -> list[int]:
    out = list(_PRIMES[:n])
    candidate = out[-1] + 2 if out else 2
    while len(out) < n:
        if all(candidate % p for p in out if p * p <= candidate):
            out.append(candidate)
        candidate += 2
    return out


def halton_point(index: int, bases: list[int], perms: list[np.ndarray]) -> np.ndarray:
    """Point `index` (>= 1) of the Halton sequence, digits scrambled by fixed permutations
    (which keep 0 -> 0 so that the expansion stays finite)."""
    x = np.empty(len(bases))
    for d, (b, perm) in enumerate(zip(bases, perms, strict=True)):
        f, r, i = 1.0, 0.0, index
        while i > 0:
            f /= b
            r += f * perm[i % b]
            i //= b
        x[d] = r
    return x


class HaltonSearch(Strategy):
    """Quasi-random points (scrambled Halton): they cover the space more evenly than random
    ones, so a short search misses less. Point k depends only on (seed, k)."""

    name = "halton"
    supports_constraints = True

    def _reset(self) -> None:
        assert self.space is not None
        rng = np.random.default_rng([self.seed, 2])
        self._bases = _primes(max(self.space.dim, 1))
        self._perms = []
        for b in self._bases:
            perm = np.concatenate([[0], 1 + rng.permutation(b - 1)])
            self._perms.append(perm)

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        assert self.space is not None
        out = []
        for _ in range(n):
            # Parallel workers take interleaved indices of one sequence.
            index = 1 + self.n_asked * self.n_streams + self.stream
            u = halton_point(index, self._bases, self._perms)[: self.space.dim]
            out.append(self.space.decode(u))
            self.n_asked += 1
        return out

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError  # ask is overridden

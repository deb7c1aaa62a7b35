"""The strategy interface: ``ask(n)`` candidates, ``tell(trial)`` results.

A strategy's state is a function of its seed, its stream (the worker it serves) and the
history it was told, so a study rebuilds it exactly after a restart by replaying the history:
the i-th ask draws from a random generator keyed by (seed, stream, i), never from a generator
that was advanced by earlier calls.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from airda.space import Space, candidate_key
from airda.trial import FrozenTrial, TrialState

__all__ = ["Strategy", "StrategyExhausted"]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def pcg_state(seed: int, stream: int, index: int) -> dict[str, Any]:
    """A PCG64 state that depends only on (seed, stream, index), mixed by splitmix64: one
    generator can jump to any ask in a microsecond (a SeedSequence costs ~40)."""
    a = _splitmix64(seed & _MASK64)
    b = _splitmix64(a ^ _splitmix64(stream & _MASK64))
    c = _splitmix64(b ^ (index & _MASK64))
    d = _splitmix64(c)
    e = _splitmix64(d)
    return {
        "bit_generator": "PCG64",
        "state": {"state": (c << 64) | d, "inc": (e << 1) | 1},
        "has_uint32": 0,
        "uinteger": 0,
    }


class StrategyExhausted(Exception):
    """Raised by ``ask`` when a finite strategy (a grid) has nothing left to propose."""


class Strategy(abc.ABC):
    """Base class of search strategies.

    Subclasses implement :meth:`_ask_one` (and :meth:`_tell` if they learn from results). The
    study calls :meth:`setup`, then :meth:`note` for every trial it learns of and :meth:`tell`
    for every trial that finished, in order; ``ask`` may be called at any time, for one or a
    batch of candidates.
    """

    name: ClassVar[str] = ""
    supports_multi_objective: ClassVar[bool] = True
    # Whether `seen` (keys of every candidate in the history) is kept: strategies that must not
    # propose a candidate twice (grid, local search) set it.
    tracks_seen: ClassVar[bool] = False
    # Whether the strategy honours trials' constraint values (``trial.set_constraints``):
    # adaptive ones rank feasible trials first (by value), the rest by total violation;
    # non-adaptive ones (random, grid, quasi-random) have nothing to rank.
    supports_constraints: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None):
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self.stream = 0
        self.n_streams = 1
        self.space: Space | None = None
        self.directions: tuple[str, ...] = ("minimize",)
        self.n_asked = 0
        self.seen: set[str] = set()
        self._bitgen = np.random.PCG64(0)
        self._generator = np.random.Generator(self._bitgen)

    # ---- the study's side ----------------------------------------------------------------
    def setup(
        self, space: Space, directions: Sequence[str], stream: int = 0, n_streams: int = 1
    ) -> None:
        """Bind to a space and objective directions; forget all history. Parallel workers each
        set up their own copy with a distinct `stream` out of `n_streams`."""
        if len(directions) > 1 and not self.supports_multi_objective:
            raise ValueError(
                f"strategy {self.name!r} supports one objective; the study has {len(directions)}"
            )
        self.space = space
        self.directions = tuple(directions)
        self.stream = stream
        self.n_streams = max(n_streams, 1)
        self.n_asked = 0
        self.seen = set()
        self._reset()

    def note(self, trial: FrozenTrial) -> None:
        """The study learnt of a trial (any state); counts the asks it stands for."""
        if self.tracks_seen:
            self.seen.add(candidate_key(trial.params))
        attrs = trial.system_attrs
        if "ask_index" in attrs and attrs.get("stream", 0) == self.stream:
            self.n_asked = max(self.n_asked, int(attrs["ask_index"]) + 1)

    def tell(self, trial: FrozenTrial) -> None:
        """A trial finished (complete, pruned or failed)."""
        self._tell(trial)

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """`n` candidates; each carries its ask index in the order asked."""
        if self.space is None:
            raise RuntimeError(f"strategy {self.name!r} is not set up; a study does this")
        out = []
        for _ in range(n):
            candidate = self._ask_one(self.rng(self.n_asked))
            self.n_asked += 1
            out.append(candidate)
        return out

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of ask number `index` of this stream (valid until the next
        call: one generator is re-positioned each time)."""
        self._bitgen.state = pcg_state(self.seed, self.stream, index)
        return self._generator

    def config(self) -> dict[str, Any]:
        """Name and options, enough to build the strategy again (stored with the study)."""
        return {"name": self.name, "seed": self.seed, "options": self.options()}

    def options(self) -> dict[str, Any]:
        return {}

    # ---- for subclasses ------------------------------------------------------------------
    def _reset(self) -> None:  # noqa: B027 - optional
        """Forget learnt state (called by setup)."""

    @abc.abstractmethod
    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]: ...

    def _tell(self, trial: FrozenTrial) -> None:  # noqa: B027 - optional
        pass

    def loss(self, trial: FrozenTrial) -> float:
        """Single-objective value to minimise (+inf for trials without values)."""
        if trial.state is not TrialState.COMPLETE or trial.values is None:
            return math.inf
        v = trial.values[0]
        return v if self.directions[0] == "minimize" else -v

    def rank_key(self, trial: FrozenTrial) -> tuple[float, float]:
        """The order of trials for a single objective with constraints: feasible trials
        (violation 0) by loss, then infeasible ones by total violation (``(violation,
        loss)``), then trials without a value; without constraints, the loss alone decides."""
        loss = self.loss(trial)
        return (trial.violation, loss) if math.isfinite(loss) else (math.inf, math.inf)

    def dominates(self, a: FrozenTrial, b: FrozenTrial) -> bool:
        """a is at least as good in every objective and better in one; with constraints
        (Deb's constrained domination), a feasible trial dominates an infeasible one and of
        two infeasible ones the smaller total violation dominates."""
        if a.values is None or b.values is None:
            return a.values is not None
        va, vb = a.violation, b.violation
        if va or vb:
            return va < vb
        sa = [v if d == "minimize" else -v for v, d in zip(a.values, self.directions, strict=True)]
        sb = [v if d == "minimize" else -v for v, d in zip(b.values, self.directions, strict=True)]
        return all(x <= y for x, y in zip(sa, sb, strict=True)) and sa != sb

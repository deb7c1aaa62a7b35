"""Curriculum learning as a searchable choice: the order training examples are introduced in
(by a difficulty score you supply) and the pace at which the rest join.

Orderings, after Hacohen & Weinshall (2019):

- ``none``: no curriculum, every example from the start;
- ``easy_to_hard``: the curriculum, easiest first;
- ``hard_to_easy``: the anti-curriculum, hardest first;
- ``random_paced``: a random order under the same pacing (the control that separates the
  effect of the order from that of the pacing).

The pacing function gives the fraction of the ordered examples available after ``t`` of
``total`` steps, from ``pacing_start`` to 1 when ``t`` reaches ``pacing_ramp * total``:
``linear`` (``s + (1 - s) p``), ``root`` (``sqrt(s^2 + (1 - s^2) p)``, Platanios et al. 2019),
``exponential`` (``s * (1 / s) ** p``) and ``step`` (four equal stairs), with
``p = min(1, t / (pacing_ramp * total))``.

Example:
    >>> import numpy as np
    >>> config = {"curriculum": "easy_to_hard", "pacing": "linear", "pacing_start": 0.2,
    ...           "pacing_ramp": 0.5}
    >>> sampler = CurriculumSampler(np.arange(100.0), config, total_steps=10, seed=0)
    >>> sampler.fraction(0), sampler.fraction(5)
    (0.2, 1.0)
    >>> bool(sampler.batch(0, 8).max() < 20)  # only the 20 easiest at first
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from airda.space import Categorical, Float, Param

__all__ = ["CURRICULA", "PACINGS", "CurriculumSampler", "curriculum_space", "pacing_fraction"]

CURRICULA = ("none", "easy_to_hard", "hard_to_easy", "random_paced")
PACINGS = ("linear", "root", "exponential", "step")
_STAIRS = 4


def curriculum_space(
    curricula: tuple[str, ...] = CURRICULA, pacings: tuple[str, ...] = PACINGS
) -> dict[str, Param]:
    """The curriculum choice and, for the paced ones, the pacing function and its start and
    ramp (conditional parameters)."""
    bad = [c for c in curricula if c not in CURRICULA] + [p for p in pacings if p not in PACINGS]
    if bad or not curricula or not pacings:
        raise ValueError(f"unknown choices {bad}; curricula {CURRICULA}, pacings {PACINGS}")
    out: dict[str, Param] = {"curriculum": Categorical(tuple(curricula))}
    paced = tuple(c for c in curricula if c != "none")
    if paced:
        out["pacing"] = Categorical(tuple(pacings), when={"curriculum": paced})
        out["pacing_start"] = Float(0.05, 0.5, when={"curriculum": paced})
        out["pacing_ramp"] = Float(0.1, 1.0, when={"curriculum": paced})
    return out


def pacing_fraction(config: Mapping[str, Any], step: int, total: int) -> float:
    """Fraction of the ordered examples available after `step` of `total` steps."""
    if total < 1 or step < 0:
        raise ValueError(f"need total >= 1 and step >= 0, got step={step}, total={total}")
    kind = config.get("curriculum", "none")
    if kind not in CURRICULA:
        raise ValueError(f"unknown curriculum {kind!r}; choose among {CURRICULA}")
    if kind == "none":
        return 1.0
    missing = [k for k in ("pacing", "pacing_start", "pacing_ramp") if k not in config]
    if missing:
        raise ValueError(f"curriculum {kind!r} needs {missing} in the config")
    s = float(config["pacing_start"])
    if not 0 < s <= 1:
        raise ValueError(f"pacing_start must be in (0, 1], got {s}")
    ramp = max(1.0, float(config["pacing_ramp"]) * total)
    p = min(1.0, step / ramp)
    pacing = config["pacing"]
    if pacing == "linear":
        f = s + (1 - s) * p
    elif pacing == "root":
        f = math.sqrt(s * s + (1 - s * s) * p)
    elif pacing == "exponential":
        f = s * (1.0 / s) ** p
    elif pacing == "step":
        f = s + (1 - s) * math.floor(p * _STAIRS) / _STAIRS
    else:
        raise ValueError(f"unknown pacing {pacing!r}; choose among {PACINGS}")
    return min(1.0, max(s, f))


class CurriculumSampler:
    """Batches (or per-epoch subsets) of example indices under a sampled curriculum.

    Args:
        difficulty: one score per training example (higher is harder), e.g. the loss of a
            small reference model or a heuristic (sentence length, label noise estimate).
        config: a configuration of :func:`curriculum_space`.
        total_steps: the steps (batches or epochs) the pacing is spread over.
        seed: batches are a function of (seed, step) only, so a resumed run sees the same.
    """

    def __init__(self, difficulty: Any, config: Mapping[str, Any], total_steps: int, seed: int = 0):
        d = np.asarray(difficulty, dtype=np.float64)
        if d.ndim != 1 or len(d) == 0:
            raise ValueError(f"difficulty must be a non-empty 1-d array, got shape {d.shape}")
        if np.isnan(d).any():
            raise ValueError("difficulty has NaN scores")
        self.config = dict(config)
        self.total_steps = int(total_steps)
        self.seed = int(seed)
        pacing_fraction(self.config, 0, max(self.total_steps, 1))  # validates the config
        kind = self.config.get("curriculum", "none")
        if kind == "easy_to_hard":
            self.order = np.argsort(d, kind="stable")
        elif kind == "hard_to_easy":
            self.order = np.argsort(-d, kind="stable")
        elif kind == "random_paced":
            self.order = np.random.default_rng([self.seed, 0x5EED]).permutation(len(d))
        else:
            self.order = np.arange(len(d))

    def fraction(self, step: int) -> float:
        return pacing_fraction(self.config, step, self.total_steps)

    def available(self, step: int) -> np.ndarray:
        """Indices of the examples available at `step`, easiest (first introduced) first."""
        n = max(1, math.ceil(self.fraction(step) * len(self.order) - 1e-9))
        return self.order[:n]

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """A batch drawn uniformly from the available examples (without replacement when
        enough are available)."""
        pool = self.available(step)
        rng = np.random.default_rng([self.seed, step])
        return rng.choice(pool, size=batch_size, replace=batch_size > len(pool))

    def epoch(self, step: int) -> np.ndarray:
        """The available examples of `step` in a shuffled order (for epoch-based loops)."""
        return np.random.default_rng([self.seed, step]).permutation(self.available(step))

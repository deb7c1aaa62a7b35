"""REINFORCE: a policy over the space's choices, trained on the rewards of completed trials.

Williams (1992), as used for NAS by Zoph & Le (2017) and as the NAS-Bench-201 / NATS-Bench
multi-trial baseline: one softmax distribution (a vector of logits) per discrete parameter; a
candidate is a draw from the product of the distributions; after every completed trial the
logits take one Adam step along ``(reward - baseline) * grad log p(candidate)``, where the
baseline is an exponential moving average of the rewards (momentum 0.9) and the reward is the
objective (negated when minimised). Parameters inactive in a candidate (a condition not met)
take no gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda.space import Categorical, Fixed
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["Reinforce"]

_MAX_CHOICES = 10_000


class Reinforce(Strategy):
    """Policy-gradient search over the choices of a space (continuous ranges are binned).

    Args:
        learning_rate: Adam step size on the logits.
        momentum: of the moving-average reward baseline.
        entropy: optional weight of an entropy bonus that keeps the policy exploring.
        bins: a continuous parameter (or an Int or stepped Float with more than 10,000 values)
            is searched over this many evenly spaced values of its (log) range.
        seed: the sampling seed.

    Example:
        >>> import airda
        >>> from airda.space import Categorical
        >>> space = {f"x{i}": Categorical([0, 1, 2, 3]) for i in range(4)}
        >>> study = airda.create_study(space=space, strategy=Reinforce(learning_rate=0.1, seed=0))
        >>> study.optimize(lambda t: sum(t.params.values()), n_trials=200)
        >>> study.best_value
        0.0
    """

    name = "reinforce"
    supports_multi_objective = False

    def __init__(
        self,
        *,
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        entropy: float = 0.0,
        bins: int = 16,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if entropy < 0:
            raise ValueError(f"entropy must be >= 0, got {entropy}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        self.bins = bins
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.entropy = float(entropy)

    def options(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "entropy": self.entropy,
            "bins": self.bins,
        }

    def _reset(self) -> None:
        assert self.space is not None
        self._choices: dict[str, list[Any]] = {}
        for name in self.space.names:
            param = self.space[name]
            if isinstance(param, (Categorical, Fixed)) or param.cardinality() <= _MAX_CHOICES:
                self._choices[name] = list(param.values())
            else:  # continuous or huge: bin centres of the unit interval (log scale where log)
                grid = (np.arange(self.bins) + 0.5) / self.bins
                self._choices[name] = list(dict.fromkeys(param.from_unit(u) for u in grid))
        self._logits = {n: np.zeros(len(v)) for n, v in self._choices.items()}
        self._m = {n: np.zeros(len(v)) for n, v in self._choices.items()}
        self._v = {n: np.zeros(len(v)) for n, v in self._choices.items()}
        self._steps = 0
        self._baseline: float | None = None

    def probabilities(self) -> dict[str, np.ndarray]:
        """The policy's current probability of every choice of every parameter."""
        return {n: _softmax(v) for n, v in self._logits.items()}

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        picks: dict[str, Any] = {}
        for name, logits in self._logits.items():
            if not self.space.is_active(name, picks):
                continue  # a condition on an earlier choice is not met
            p = _softmax(logits)
            picks[name] = self._choices[name][int(rng.choice(p.size, p=p))]
        return picks

    def _tell(self, trial: FrozenTrial) -> None:
        if trial.state is not TrialState.COMPLETE or trial.values is None:
            return
        reward = -self.loss(trial)
        if not math.isfinite(reward):
            return
        if self._baseline is None:
            self._baseline = reward
        advantage = reward - self._baseline
        self._baseline = self.momentum * self._baseline + (1 - self.momentum) * reward
        self._steps += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for name, logits in self._logits.items():
            if name not in trial.params:
                continue  # inactive under a condition: no gradient
            try:
                chosen = self._choices[name].index(trial.params[name])
            except ValueError:
                continue  # a value outside the choices (an enqueued candidate)
            p = _softmax(logits)
            # ascent on advantage * log p(chosen) (+ entropy bonus): minimise the negative
            grad = -advantage * (np.eye(p.size)[chosen] - p)
            if self.entropy:
                logp = np.log(p + 1e-300)
                grad += self.entropy * p * (logp + _entropy(p))
            m = self._m[name] = b1 * self._m[name] + (1 - b1) * grad
            v = self._v[name] = b2 * self._v[name] + (1 - b2) * grad**2
            m_hat = m / (1 - b1**self._steps)
            v_hat = v / (1 - b2**self._steps)
            logits -= self.learning_rate * m_hat / (np.sqrt(v_hat) + eps)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def _entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(p + 1e-300)).sum())

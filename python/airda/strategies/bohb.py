"""BOHB (Falkner et al., 2018): the model-based sampler of Hyperband.

Use it as the strategy of a study whose scheduler is :class:`airda.schedulers.Hyperband` (or
ASHA): the scheduler decides how far each trial trains, this strategy decides which
hyperparameters the next trial gets. The two only share the stored trials: the strategy reads
the intermediate values every finished trial reported, so any early-stopping scheduler works
with it, and its state is rebuilt from the history after a restart.

The model: among the budgets (reported steps) with at least ``min_points_in_model + 2``
observations, take the largest. Split its observations into the best ``top_n_percent`` percent
("good", at least ``min_points_in_model``) and the rest ("bad"), fit a product-Gaussian kernel
density to each in the unit-cube encoding of the space (bandwidths by Scott's rule, at least
``min_bandwidth``), draw ``n_samples`` candidates around good points with the bandwidths
widened by ``bandwidth_factor``, and propose the one maximising ``l(x) / g(x)``. A fraction
``random_fraction`` of proposals (and every proposal until a budget has enough points) is
drawn uniformly from the space. Categorical parameters are modelled on their unit-cube
position (a simplification of the paper's Aitchison-Aitken kernel); inactive conditional
parameters are imputed with 0.5.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from airda.ops.parzen import parzen_logpdf
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["BOHB"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _scott(x: np.ndarray, min_bandwidth: float) -> np.ndarray:
    n = max(len(x), 1)
    sd = x.std(axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    return np.maximum(1.06 * sd * n ** (-1.0 / 5.0), min_bandwidth)


def _log_kde(points: np.ndarray, centres: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """log of the mean over centres of product Gaussians, at each point.

    A Parzen estimator with equal weights, scored by :func:`airda.ops.parzen.parzen_logpdf`.
    BOHB's kernels are not truncated to the unit cube (unlike TPE's), so the normaliser is the
    untruncated one, passed as ``log_norm``; the [0, 1] bounds only say where the points and
    centres lie (candidates are clipped into the cube, encodings are in it).
    """
    n, d = centres.shape
    log_norm = np.full(n, -np.log(bw).sum() - d * _HALF_LOG_2PI)
    return parzen_logpdf(
        points,
        centres,
        bw,
        np.full(n, -math.log(n)),
        np.zeros(d),
        np.ones(d),
        log_norm=log_norm,
    )


class BOHB(Strategy):
    """Kernel-density sampler of BOHB on the largest budget with enough observations.

    Args:
        min_points_in_model: points a density needs; default ``dim + 1``.
        top_n_percent: share of a budget's observations that are "good".
        n_samples: candidates drawn per proposal.
        random_fraction: share of proposals drawn uniformly at random.
        bandwidth_factor: widening of the bandwidths when drawing candidates.
        min_bandwidth: smallest bandwidth (unit-cube scale), keeps the densities proper.
        seed: random seed.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.schedulers import Hyperband
        >>> def objective(trial):
        ...     for step in range(1, 10):
        ...         loss = (trial["x"] - 0.7) ** 2 + 1.0 / step
        ...         trial.report(step, loss)
        ...         if trial.should_prune():
        ...             raise airda.TrialPruned()
        ...     return loss
        >>> study = airda.create_study(
        ...     space={"x": Float(0, 1)}, strategy=BOHB(seed=0), scheduler=Hyperband(1, 9, 3)
        ... )
        >>> study.optimize(objective, n_trials=40)
        >>> abs(study.best_params["x"] - 0.7) < 0.1
        True
    """

    name: ClassVar[str] = "bohb"
    supports_multi_objective: ClassVar[bool] = False

    def __init__(
        self,
        *,
        min_points_in_model: int | None = None,
        top_n_percent: float = 15.0,
        n_samples: int = 64,
        random_fraction: float = 1.0 / 3.0,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 1e-3,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if min_points_in_model is not None and (
            isinstance(min_points_in_model, bool)
            or not isinstance(min_points_in_model, int)
            or min_points_in_model < 1
        ):
            raise ValueError(f"min_points_in_model must be an int >= 1, got {min_points_in_model}")
        if not 0 < top_n_percent < 100:
            raise ValueError(f"top_n_percent must be in (0, 100), got {top_n_percent}")
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
        if not 0 <= random_fraction <= 1:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
        if not bandwidth_factor > 0 or not min_bandwidth > 0:
            raise ValueError("bandwidth_factor and min_bandwidth must be > 0")
        self.min_points_in_model = min_points_in_model
        self.top_n_percent = float(top_n_percent)
        self.n_samples = n_samples
        self.random_fraction = float(random_fraction)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self._obs: dict[int, list[tuple[np.ndarray, float]]] = {}

    def options(self) -> dict[str, Any]:
        return {
            "min_points_in_model": self.min_points_in_model,
            "top_n_percent": self.top_n_percent,
            "n_samples": self.n_samples,
            "random_fraction": self.random_fraction,
            "bandwidth_factor": self.bandwidth_factor,
            "min_bandwidth": self.min_bandwidth,
        }

    def _reset(self) -> None:
        self._obs = {}

    def _tell(self, trial: FrozenTrial) -> None:
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED) or not trial.params:
            return
        assert self.space is not None
        if any(n not in self.space for n in trial.params):
            return
        x = np.nan_to_num(self.space.encode(trial.params), nan=0.5)
        sign = 1.0 if self.directions[0] == "minimize" else -1.0
        for step, value in trial.intermediate.items():
            if math.isfinite(value):
                self._obs.setdefault(step, []).append((x, sign * value))

    def _n_min(self) -> int:
        assert self.space is not None
        return self.min_points_in_model or self.space.dim + 1

    def model_budget(self) -> int | None:
        """The budget (step) the model is fitted on now; None while none has enough points."""
        ok = [b for b, obs in self._obs.items() if len(obs) >= self._n_min() + 2]
        return max(ok) if ok else None

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        budget = self.model_budget()
        if budget is None or self.space.dim == 0 or rng.random() < self.random_fraction:
            return self.space.sample(rng)
        obs = self._obs[budget]
        order = sorted(range(len(obs)), key=lambda i: obs[i][1])
        x = np.array([obs[i][0] for i in order])
        n_min = self._n_min()
        n_good = max(n_min, math.ceil(self.top_n_percent / 100.0 * len(x)))
        n_good = min(n_good, len(x) - 1)
        good, bad = x[:n_good], x[n_good:]
        bw_good = _scott(good, self.min_bandwidth)
        bw_bad = _scott(bad, self.min_bandwidth)
        centres = good[rng.integers(len(good), size=self.n_samples)]
        scale = bw_good * self.bandwidth_factor
        cand = centres + rng.standard_normal(centres.shape) * scale
        # Truncated normals by redrawing what falls outside the cube (clipping would pile
        # candidates on the faces, where the bad density is thin).
        for _ in range(20):
            out = (cand < 0.0) | (cand > 1.0)
            if not out.any():
                break
            redraw = centres + rng.standard_normal(centres.shape) * scale
            cand = np.where(out, redraw, cand)
        cand = np.clip(cand, 0.0, 1.0)
        score = _log_kde(cand, good, bw_good) - _log_kde(cand, bad, bw_bad)
        return self.space.decode(cand[int(np.argmax(score))])

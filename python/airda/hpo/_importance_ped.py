"""PED-ANOVA (Watanabe et al., IJCAI 2023), as Optuna's ``PedAnovaImportanceEvaluator``.

The importance of a parameter is the Pearson divergence between two Parzen estimators of its
values: one fitted on the top-quantile trials, one on all of them (the region). A numerical
parameter is counted on a grid of at most 50 points (in log space when log-scaled) and each
estimator is a mixture of discretised normals (Scott's bandwidth) plus a wide prior; a
categorical one is a mixture of smoothed one-hot kernels. A conditional parameter contributes
only over the trials where it is active (its active regime, weighted as in Optuna's
"conditional PED-ANOVA").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ParamInfo", "ped_anova_importances"]

_N_STEPS = 50
_PRIOR_WEIGHT = 1.0
_MIN_IN_REGIME = 2


@dataclass(frozen=True)
class ParamInfo:
    """What importance needs of one parameter: its kind and its range (or choices)."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    @property
    def single(self) -> bool:
        if self.kind == "categorical":
            return len(self.choices) <= 1
        return self.low == self.high


def _grid_counts(info: ParamInfo, values: list) -> np.ndarray:
    if info.kind == "categorical":
        idx = [_choice_index(info.choices, v) for v in values]
        return np.bincount(np.asarray(idx, dtype=np.int64), minlength=len(info.choices))
    n_steps = _N_STEPS
    if info.kind == "int" and info.log:
        n_steps = min(int(np.ceil(np.log(info.high - info.low + 1) / np.log(2))) + 1, n_steps)
    elif info.step is not None:
        n_steps = min(round((info.high - info.low) / info.step) + 1, n_steps)
    low, high = (math.log(info.low), math.log(info.high)) if info.log else (info.low, info.high)
    x = np.asarray(values, dtype=np.float64)
    if info.log:
        x = np.log(x)
    step_size = (high - low) / (n_steps - 1)
    idx = np.clip(np.ceil((x - low) / step_size - 0.5).astype(np.int64), 0, n_steps - 1)
    return np.bincount(idx, minlength=n_steps)


def _choice_index(choices: tuple, value: object) -> int:
    for i, c in enumerate(choices):
        if type(c) is type(value) and c == value:
            return i
    for i, c in enumerate(choices):
        if c == value and isinstance(c, bool) == isinstance(value, bool):
            return i
    raise ValueError(f"{value!r} is not one of the choices {list(choices)}")


def _pdf(info: ParamInfo, counts: np.ndarray) -> np.ndarray:
    """The Parzen estimator of Optuna's ``build_parzen_estimator_on_grid``, on its grid."""
    from airda.ops.parzen import _normal_log_mass

    size = counts.size
    obs = np.flatnonzero(counts).astype(np.float64)
    w_obs = counts[counts > 0].astype(np.float64)
    if obs.size == 0:
        return np.full(size, 1.0 / size)
    weights = np.append(w_obs, _PRIOR_WEIGHT)
    weights /= weights.sum()
    grid = np.arange(size)
    if info.kind == "categorical":
        n_kernels = obs.size + 1
        kern = np.full((n_kernels, size), _PRIOR_WEIGHT / n_kernels)
        kern[np.arange(obs.size), obs.astype(np.int64)] += 1.0
        kern /= kern.sum(axis=1, keepdims=True)
        return weights @ kern
    # Numerical: discretised truncated normals on the integer grid 0 .. size-1.
    low, high = 0.0, float(size - 1)
    cum = np.cumsum(w_obs)
    total = cum[-1]
    mean = (obs @ w_obs) / total
    sigma = np.sqrt(((obs - mean) ** 2 @ w_obs) / max(1.0, total - 1))
    q1 = np.searchsorted(cum, total // 4, side="left")
    q3 = np.searchsorted(cum, total * 3 // 4, side="right")
    iqr = obs[min(obs.size - 1, q3)] - obs[q1]
    sigma = 1.059 * min(iqr / 1.34, sigma) * total**-0.2
    sigma = max(sigma, 0.5 / 1.64)
    mus = np.r_[obs, (low + high) / 2.0]
    sigmas = np.r_[np.full(obs.size, sigma), high - low + 1.0]
    log_mass = _normal_log_mass(
        mus[None, :], sigmas[None, :], grid[:, None] - 0.5, grid[:, None] + 0.5
    ) - _normal_log_mass(mus, sigmas, low - 0.5, high + 0.5)
    return np.exp(log_mass) @ weights


def _divergence(info: ParamInfo, top_values: list, region_values: list) -> float:
    pdf_top = _pdf(info, _grid_counts(info, top_values)) + 1e-12
    pdf_region = _pdf(info, _grid_counts(info, region_values)) + 1e-12
    return float(pdf_region @ ((pdf_top / pdf_region - 1.0) ** 2))


def ped_anova_importances(
    infos: list[ParamInfo],
    params: list[dict],
    loss: np.ndarray,
    *,
    target_quantile: float = 0.1,
) -> np.ndarray:
    """The PED-ANOVA importance of each parameter (not normalised).

    Args:
        infos: the parameters.
        params: each trial's parameters (a parameter may be absent: inactive there).
        loss: each trial's value, lower is better.
        target_quantile: the top fraction of trials whose distribution is compared with all.
    """
    loss = np.asarray(loss, dtype=np.float64)
    n = loss.size
    cutoff_index = math.ceil(target_quantile * n) - 1
    cutoff = float(np.partition(loss, cutoff_index)[cutoff_index])
    top = loss <= cutoff
    n_top = int(top.sum())
    quantile = n_top / n
    out = np.zeros(len(infos))
    for i, info in enumerate(infos):
        if info.single:
            continue
        active = np.array([info.name in p for p in params])
        if active.sum() < _MIN_IN_REGIME:
            continue
        region_values = [p[info.name] for p, a in zip(params, active, strict=True) if a]
        top_values = [p[info.name] for p, a, t in zip(params, active, top, strict=True) if a and t]
        if not top_values:
            continue
        alpha = len(top_values) / n_top
        beta = len(region_values) / n
        out[i] = alpha**2 / beta * _divergence(info, top_values, region_values)
    return out * quantile**2

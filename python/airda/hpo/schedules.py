"""What practitioners tune, as search spaces: learning-rate schedules, optimiser, batch size,
and the learning-rate range test.

The space helpers return plain dicts of parameters (merge them into a study's space); the
schedule parameters are conditional on the chosen family. :func:`lr_at` gives the learning
rate of a sampled configuration at a step in closed form (no torch), and
:func:`build_lr_scheduler` builds the matching ``torch.optim.lr_scheduler`` object.

Families (``total`` is the number of scheduler steps: epochs, or iterations if you step per
batch):

==================  ==================================================================
``constant``        ``lr``
``step``            ``lr * gamma ** (t // step_size)``, ``step_size = round(step_frac*total)``
``cosine``          cosine from ``lr`` to ``lr * min_lr_frac`` over ``total`` (torch
                    ``CosineAnnealingLR``)
``onecycle``        torch ``OneCycleLR`` (cosine, two phases): from ``lr / onecycle_div`` up
                    to ``lr`` during ``pct_start * total`` steps, then down to
                    ``lr / onecycle_div / 1e4``
``warmup_cosine``   linear warm-up ``lr * (t + 1) / W`` for ``W = round(warmup_frac *
                    total)`` steps, then cosine to ``lr * min_lr_frac`` over the rest
==================  ==================================================================

Example:
    >>> import airda, numpy as np
    >>> from airda.space import Space
    >>> space = Space(lr_schedule_space() | optimizer_space() | batch_size_space())
    >>> config = space.sample(np.random.default_rng(0))
    >>> config["lr_schedule"] in LR_FAMILIES
    True
    >>> lr_at({"lr": 0.1, "lr_schedule": "step", "step_frac": 0.3, "step_gamma": 0.5}, 6, 10)
    0.025
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from airda.space import Categorical, Float, Param

__all__ = [
    "LR_FAMILIES",
    "LRRangeResult",
    "batch_size_space",
    "build_lr_scheduler",
    "build_optimizer",
    "lr_at",
    "lr_range_test",
    "lr_schedule_space",
    "optimizer_space",
]

LR_FAMILIES = ("constant", "step", "cosine", "onecycle", "warmup_cosine")
_ONECYCLE_FINAL_DIV = 1e4  # torch's default final_div_factor


def lr_schedule_space(
    lr: tuple[float, float] = (1e-5, 1.0), families: Sequence[str] = LR_FAMILIES
) -> dict[str, Param]:
    """The learning rate and a schedule family with its own parameters (conditional)."""
    families = tuple(families)
    unknown = [f for f in families if f not in LR_FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown schedule families {unknown}; choose among {LR_FAMILIES}")
    out: dict[str, Param] = {
        "lr": Float(lr[0], lr[1], log=True),
        "lr_schedule": Categorical(families),
    }
    if "step" in families:
        out["step_frac"] = Float(0.1, 0.5, when={"lr_schedule": "step"})
        out["step_gamma"] = Float(0.1, 0.5, when={"lr_schedule": "step"})
    cos = tuple(f for f in ("cosine", "warmup_cosine") if f in families)
    if cos:
        out["min_lr_frac"] = Float(0.0, 0.1, when={"lr_schedule": cos})
    if "warmup_cosine" in families:
        out["warmup_frac"] = Float(0.01, 0.3, when={"lr_schedule": "warmup_cosine"})
    if "onecycle" in families:
        out["pct_start"] = Float(0.1, 0.5, when={"lr_schedule": "onecycle"})
        out["onecycle_div"] = Float(5.0, 100.0, log=True, when={"lr_schedule": "onecycle"})
    return out


def optimizer_space(
    choices: Sequence[str] = ("sgd", "adam", "adamw"),
    weight_decay: tuple[float, float] = (1e-6, 1e-1),
) -> dict[str, Param]:
    """Optimiser family, weight decay (log scale) and SGD's momentum (when sgd)."""
    bad = [c for c in choices if c not in ("sgd", "adam", "adamw")]
    if bad or not choices:
        raise ValueError(f"unknown optimisers {bad}; choose among sgd, adam, adamw")
    out: dict[str, Param] = {
        "optimizer": Categorical(tuple(choices)),
        "weight_decay": Float(weight_decay[0], weight_decay[1], log=True),
    }
    if "sgd" in choices:
        out["momentum"] = Float(0.0, 0.99, when={"optimizer": "sgd"})
    return out


def batch_size_space(sizes: Sequence[int] = (16, 32, 64, 128, 256)) -> dict[str, Param]:
    """Batch size among powers of two (or the sizes given)."""
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"batch sizes must be positive ints, got {sizes!r}")
    return {"batch_size": Categorical(tuple(sizes))}


def _need(config: Mapping[str, Any], *names: str) -> list[Any]:
    missing = [n for n in names if n not in config]
    if missing:
        raise ValueError(
            f"schedule {config.get('lr_schedule')!r} needs parameter(s) {missing} in the config"
        )
    return [config[n] for n in names]


def _cos(start: float, end: float, frac: float) -> float:
    return end + (start - end) / 2.0 * (1.0 + math.cos(math.pi * frac))


def _step_size(frac: float, total: int) -> int:
    return max(1, round(frac * total))


def _warmup(frac: float, total: int) -> int:
    return min(max(1, round(frac * total)), max(total - 1, 1))


def lr_at(config: Mapping[str, Any], step: int, total: int) -> float:
    """The learning rate of `config` after `step` scheduler steps out of `total`."""
    if total < 1 or step < 0:
        raise ValueError(f"need total >= 1 and step >= 0, got step={step}, total={total}")
    (lr, family) = _need(config, "lr", "lr_schedule")
    if family == "constant":
        return float(lr)
    if family == "step":
        frac, gamma = _need(config, "step_frac", "step_gamma")
        return float(lr * gamma ** (step // _step_size(frac, total)))
    if family == "cosine":
        (mf,) = _need(config, "min_lr_frac")
        return _cos(lr, lr * mf, min(step, total) / total)
    if family == "warmup_cosine":
        mf, wf = _need(config, "min_lr_frac", "warmup_frac")
        w = _warmup(wf, total)
        if step < w:
            return lr * (step + 1) / w
        span = total - w
        return _cos(lr, lr * mf, min(step - w, span) / span if span > 0 else 1.0)
    if family == "onecycle":
        pct, div = _need(config, "pct_start", "onecycle_div")
        initial = lr / div
        final = initial / _ONECYCLE_FINAL_DIV
        up_end = float(pct * total) - 1.0
        down_end = float(total - 1)
        if step <= up_end:
            return _cos(initial, lr, step / up_end if up_end > 0 else 1.0)
        return _cos(lr, final, (step - up_end) / (down_end - up_end))
    raise ValueError(f"unknown lr_schedule {family!r}; choose among {LR_FAMILIES}")


def build_lr_scheduler(optimizer: Any, config: Mapping[str, Any], total: int) -> Any:
    """The torch scheduler of `config` for `optimizer` (whose lr is set to ``config["lr"]``);
    call ``scheduler.step()`` `total` times (per epoch or per batch)."""
    from torch.optim import lr_scheduler as S

    lr, family = _need(config, "lr", "lr_schedule")
    for group in optimizer.param_groups:
        group["lr"] = lr
        group.pop("initial_lr", None)
    if family == "constant":
        return S.LambdaLR(optimizer, lambda t: 1.0)
    if family == "step":
        frac, gamma = _need(config, "step_frac", "step_gamma")
        return S.StepLR(optimizer, step_size=_step_size(frac, total), gamma=gamma)
    if family == "cosine":
        (mf,) = _need(config, "min_lr_frac")
        return S.CosineAnnealingLR(optimizer, T_max=total, eta_min=lr * mf)
    if family == "onecycle":
        pct, div = _need(config, "pct_start", "onecycle_div")
        return S.OneCycleLR(
            optimizer,
            max_lr=lr,
            total_steps=total,
            pct_start=pct,
            div_factor=div,
            final_div_factor=_ONECYCLE_FINAL_DIV,
            anneal_strategy="cos",
            cycle_momentum=False,
        )
    if family == "warmup_cosine":
        return S.LambdaLR(optimizer, lambda t: lr_at(config, t, total) / lr)
    raise ValueError(f"unknown lr_schedule {family!r}; choose among {LR_FAMILIES}")


def build_optimizer(params: Any, config: Mapping[str, Any]) -> Any:
    """A torch optimiser from a config of :func:`optimizer_space` (+ ``lr``)."""
    import torch

    name, lr = _need(config, "optimizer", "lr")
    wd = config.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.get("momentum", 0.0), weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; choose among sgd, adam, adamw")


@dataclass(frozen=True)
class LRRangeResult:
    """The learning-rate range test's record and suggestion."""

    lrs: np.ndarray
    losses: np.ndarray  # smoothed
    suggestion: float  # the learning rate of the lowest loss, divided by 10
    steepest: float  # the learning rate where the loss fell fastest
    diverged_at: float | None


def lr_range_test(
    train_step: Callable[[float], float],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 200,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
) -> LRRangeResult:
    """Smith's learning-rate range test (2017): train with a learning rate growing
    exponentially from `min_lr` to `max_lr` over `num_steps` steps, record the loss, stop at
    divergence (a non-finite loss, or the smoothed loss above `diverge_factor` times its best).

    The result gives two readings of the curve: ``steepest``, where the smoothed loss falls
    fastest against log lr (Smith's reading; on a problem the first steps already solve, it
    marks where training starts to work), and ``suggestion``, the learning rate of the lowest
    smoothed loss before divergence divided by 10 (the rule fastai made common), which is the
    one to start a search around.

    `train_step(lr)` trains one batch with learning rate `lr` and returns its loss; the model
    is changed by the test, so restore it (or start a fresh one) afterwards.

    Example:
        >>> w = [5.0]
        >>> def step(lr):  # gradient descent on 0.5 * 10 * w**2: diverges above lr = 0.2
        ...     loss = 5.0 * w[0] ** 2
        ...     w[0] -= lr * 10.0 * w[0]
        ...     return loss
        >>> result = lr_range_test(step, min_lr=1e-5, max_lr=10.0, num_steps=100)
        >>> 0.002 < result.suggestion < 0.2
        True
    """
    if not (0 < min_lr < max_lr) or not math.isfinite(max_lr):
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr}, {max_lr}")
    if num_steps < 3:
        raise ValueError(f"num_steps must be >= 3, got {num_steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    lrs = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
    kept_lr: list[float] = []
    smoothed: list[float] = []
    avg = 0.0
    best = math.inf
    diverged = None
    for i, lr in enumerate(lrs):
        loss = float(train_step(float(lr)))
        if not math.isfinite(loss):
            diverged = float(lr)
            break
        # bias-corrected exponential moving average
        avg = smoothing * avg + (1 - smoothing) * loss if smoothing else loss
        value = avg / (1 - smoothing ** (i + 1)) if smoothing else avg
        if value > diverge_factor * best and i > 0:
            diverged = float(lr)
            break
        best = min(best, value)
        kept_lr.append(float(lr))
        smoothed.append(value)
    x = np.log(np.array(kept_lr))
    y = np.array(smoothed)
    if len(y) < 3:
        raise ValueError(
            f"the loss diverged after {len(y)} steps (at lr {diverged:g}): lower min_lr"
        )
    slope = np.gradient(y, x)
    return LRRangeResult(
        lrs=np.array(kept_lr),
        losses=y,
        suggestion=float(kept_lr[int(np.argmin(y))]) / 10.0,
        steepest=float(kept_lr[int(np.argmin(slope))]),
        diverged_at=diverged,
    )

"""A small, real architecture search: CNNs scored by NASWOT (no training), for ``airda run``.

The objective builds a CNN from the trial's parameters (depth, width, kernel size, pooling,
batch norm) and returns its NASWOT score on a fixed batch: higher predicts a network that trains
better (Mellor et al., 2021). One trial takes tens of milliseconds on a CPU.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _batch() -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 3, 32, 32, generator=g)


def build(params: dict[str, Any]) -> Any:
    """The CNN a candidate describes."""
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    c_in, side = 3, 32
    for i in range(params["depth"]):
        c_out = params["width"] * (
            2 if params.get("widen", False) and i >= params["depth"] // 2 else 1
        )
        layers.append(
            nn.Conv2d(
                c_in,
                c_out,
                params["kernel"],
                padding=params["kernel"] // 2,
                bias=not params["batchnorm"],
            )
        )
        if params["batchnorm"]:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
        if params["pool_every"] and (i + 1) % params["pool_every"] == 0 and side > 4:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def objective(trial: Any) -> float:
    """NASWOT score of the trial's CNN (maximise)."""
    from airda.nas import naswot_score

    model = build(trial.params).train()
    n_params = sum(p.numel() for p in model.parameters())
    trial.set_user_attr("params", n_params)
    return naswot_score(model, _batch())

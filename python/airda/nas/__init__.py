"""Neural architecture search: zero-cost proxies, architecture spaces and their builders.

Modules that need torch load when first used, so ``import airda.nas`` stays light.

Example:
    >>> import torch
    >>> from airda.nas import naswot_score
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    >>> score = naswot_score(model, torch.randn(16, 8, generator=torch.Generator().manual_seed(0)))
    >>> isinstance(score, float)
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from airda.nas.naswot import naswot_score

__all__ = [
    "Latency",
    "LayerChoice",
    "ModelSpace",
    "Repeat",
    "ValueChoice",
    "measure_latency",
    "naswot_score",
]

_LAZY = {
    "Latency": "airda.nas.latency",
    "measure_latency": "airda.nas.latency",
    "LayerChoice": "airda.nas.model_space",
    "ModelSpace": "airda.nas.model_space",
    "Repeat": "airda.nas.model_space",
    "ValueChoice": "airda.nas.model_space",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

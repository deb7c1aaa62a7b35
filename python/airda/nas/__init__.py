"""Neural architecture search: the NAS-Bench-201 space and network, user-defined model spaces,
tabular benchmarks as objectives, multi-trial search over seeds, model cost and latency, and
zero-cost proxies.

``import airda.nas`` stays light: torch loads when a function that needs it first runs, and
:func:`build_model` (whose module defines torch modules) when first accessed.

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
from typing import TYPE_CHECKING, Any

from airda.nas.benchmark import TableObjective, TabularBenchmark
from airda.nas.cost import count_flops, count_params
from airda.nas.mixed_op import mixed_op
from airda.nas.naswot import naswot_score
from airda.nas.nb201 import (
    Arch,
    arch_to_params,
    as_arch,
    canonical,
    is_degenerate,
    nb201_space,
    params_to_arch,
)
from airda.nas.proxies import ProxyError, ZeroCostEvaluator, proxy_names, zero_cost_scores

if TYPE_CHECKING:
    from airda.nas.checkpoint import load_checkpoint, save_checkpoint
    from airda.nas.differentiable import (
        DARTS,
        GDAS,
        DifferentiableSearch,
        SearchResult,
        derive_arch,
    )
    from airda.nas.evaluate import evaluate_loop, evaluate_many, recalibrate_bn
    from airda.nas.latency import Latency, measure_latency
    from airda.nas.model_space import LayerChoice, ModelSpace, Repeat, ValueChoice
    from airda.nas.nb201_model import NB201Network, build_model
    from airda.nas.oneshot import (
        OneShotResult,
        TrainConfig,
        enas,
        retrain,
        search_subnets,
        spos,
        train_supernet,
    )
    from airda.nas.search import SearchResults, benchmark_search, default_strategy, path_encoding
    from airda.nas.supernet import ElasticSupernet, NB201Supernet, SuperBatchNorm, Supernet

__all__ = [
    "DARTS",
    "GDAS",
    "Arch",
    "DifferentiableSearch",
    "ElasticSupernet",
    "Latency",
    "LayerChoice",
    "ModelSpace",
    "NB201Network",
    "NB201Supernet",
    "OneShotResult",
    "ProxyError",
    "Repeat",
    "SearchResult",
    "SearchResults",
    "SuperBatchNorm",
    "Supernet",
    "TableObjective",
    "TabularBenchmark",
    "TrainConfig",
    "ValueChoice",
    "ZeroCostEvaluator",
    "arch_to_params",
    "as_arch",
    "benchmark_search",
    "build_model",
    "canonical",
    "count_flops",
    "count_params",
    "default_strategy",
    "derive_arch",
    "enas",
    "evaluate_loop",
    "evaluate_many",
    "is_degenerate",
    "load_checkpoint",
    "measure_latency",
    "mixed_op",
    "naswot_score",
    "nb201_space",
    "params_to_arch",
    "path_encoding",
    "proxy_names",
    "recalibrate_bn",
    "retrain",
    "save_checkpoint",
    "search_subnets",
    "spos",
    "train_supernet",
    "zero_cost_scores",
]

# Names whose modules import torch when imported: loaded on first access.
_LAZY = {
    "build_model": "airda.nas.nb201_model",
    "NB201Network": "airda.nas.nb201_model",
    "LayerChoice": "airda.nas.model_space",
    "ModelSpace": "airda.nas.model_space",
    "Repeat": "airda.nas.model_space",
    "ValueChoice": "airda.nas.model_space",
    "Latency": "airda.nas.latency",
    "measure_latency": "airda.nas.latency",
    "SearchResults": "airda.nas.search",
    "benchmark_search": "airda.nas.search",
    "default_strategy": "airda.nas.search",
    "path_encoding": "airda.nas.search",
    "evaluate_loop": "airda.nas.evaluate",
    "evaluate_many": "airda.nas.evaluate",
    "recalibrate_bn": "airda.nas.evaluate",
    "load_checkpoint": "airda.nas.checkpoint",
    "save_checkpoint": "airda.nas.checkpoint",
    "DARTS": "airda.nas.differentiable",
    "GDAS": "airda.nas.differentiable",
    "DifferentiableSearch": "airda.nas.differentiable",
    "SearchResult": "airda.nas.differentiable",
    "derive_arch": "airda.nas.differentiable",
    "OneShotResult": "airda.nas.oneshot",
    "TrainConfig": "airda.nas.oneshot",
    "enas": "airda.nas.oneshot",
    "retrain": "airda.nas.oneshot",
    "search_subnets": "airda.nas.oneshot",
    "spos": "airda.nas.oneshot",
    "train_supernet": "airda.nas.oneshot",
    **{
        name: "airda.nas.supernet"
        for name in ("ElasticSupernet", "NB201Supernet", "SuperBatchNorm", "Supernet")
    },
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'airda.nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

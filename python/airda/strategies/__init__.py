"""Search strategies on the ask/tell interface, by name or instance.

======================  ==========================================================
name                    strategy
======================  ==========================================================
``random``              :class:`RandomSearch`
``grid``                :class:`GridSearch`
``halton`` (``qmc``)    :class:`HaltonSearch` (scrambled Halton quasi-random points)
``rea`` (``evolution``) :class:`RegularizedEvolution` (aging evolution)
``local``               :class:`LocalSearch` (hill climbing with restarts)
``reinforce``           :class:`Reinforce` (policy gradient over discrete choices)
``predictor``           :class:`PredictorGuided` (GP surrogate + expected improvement)
``cmaes``               :class:`airda.hpo.cmaes.CmaEs` (CMA-ES with IPOP/BIPOP restarts)
``gp``                  :class:`airda.hpo.gp.GaussianProcessSearch` (GP + log EI)
======================  ==========================================================

:class:`WarmStart` wraps any of them: its first candidates are the best of a large random pool
by a cheap score (a zero-cost proxy).
"""

from __future__ import annotations

from typing import Any

from airda.hpo.cmaes import CmaEs
from airda.hpo.gp import GaussianProcessSearch
from airda.strategies.base import Strategy, StrategyExhausted
from airda.strategies.evolution import RegularizedEvolution
from airda.strategies.local import LocalSearch
from airda.strategies.predictor import PredictorGuided, WarmStart
from airda.strategies.reinforce import Reinforce
from airda.strategies.simple import GridSearch, HaltonSearch, RandomSearch

__all__ = [
    "STRATEGIES",
    "GridSearch",
    "HaltonSearch",
    "LocalSearch",
    "PredictorGuided",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Strategy",
    "StrategyExhausted",
    "WarmStart",
    "get_strategy",
]

STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomSearch,
    "grid": GridSearch,
    "halton": HaltonSearch,
    "rea": RegularizedEvolution,
    "local": LocalSearch,
    "reinforce": Reinforce,
    "predictor": PredictorGuided,
    "cmaes": CmaEs,
    "gp": GaussianProcessSearch,
}
_ALIASES = {
    "qmc": "halton",
    "quasirandom": "halton",
    "evolution": "rea",
    "regularized_evolution": "rea",
    "local_search": "local",
    "rl": "reinforce",
    "bananas": "predictor",
    "cma": "cmaes",
    "cma-es": "cmaes",
    "bo": "gp",
    "gaussian_process": "gp",
    "surrogate": "predictor",
    "policy_gradient": "reinforce",
}


def get_strategy(
    strategy: Strategy | str | dict[str, Any] | None, *, seed: int | None = None, **options: Any
) -> Strategy:
    """A strategy from an instance, a registered name (with options), or a stored config.

    Example:
        >>> get_strategy("rea", population=20, seed=1).population
        20
    """
    if isinstance(strategy, Strategy):
        if options:
            raise ValueError("options apply to a strategy given by name, not an instance")
        return strategy
    if strategy is None:
        strategy = "random"
    if isinstance(strategy, dict):
        config = strategy
        return get_strategy(
            config["name"],
            seed=config.get("seed", seed),
            **(config.get("options") or {}),
            **options,
        )
    if not isinstance(strategy, str):
        raise TypeError(f"strategy must be a name or a Strategy, got {type(strategy).__name__}")
    key = _ALIASES.get(strategy.lower(), strategy.lower())
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    try:
        return STRATEGIES[key](seed=seed, **options)
    except TypeError as exc:
        raise ValueError(f"strategy {key!r}: {exc}") from None

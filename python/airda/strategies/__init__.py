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
``tpe``                 :class:`airda.hpo.TPE` (tree-structured Parzen estimators)
``motpe``               :class:`airda.hpo.MOTPE` (TPE with the multi-objective split)
``nsga2``               :class:`airda.hpo.NSGA2` (steady-state NSGA-II)
``pbt``                 :class:`PopulationBasedTraining` (exploit / explore segments)
``bohb``                :class:`BOHB` (KDE sampler for Hyperband, Falkner et al. 2018)
``sync_hyperband``      :class:`SyncHyperband` (synchronous Hyperband over checkpointed segments)
``sync_halving``        :class:`SyncSuccessiveHalving` (synchronous successive halving)
``cmaes``               :class:`airda.hpo.cmaes.CmaEs` (CMA-ES with IPOP/BIPOP restarts)
``gp``                  :class:`airda.hpo.gp.GaussianProcessSearch` (GP + log EI)
======================  ==========================================================

:class:`WarmStart` wraps any of them: its first candidates are the best of a large random pool
by a cheap score (a zero-cost proxy).
"""

from __future__ import annotations

from typing import Any

from airda.strategies.base import Strategy, StrategyExhausted
from airda.strategies.bohb import BOHB
from airda.strategies.evolution import RegularizedEvolution
from airda.strategies.local import LocalSearch
from airda.strategies.pbt import PopulationBasedTraining
from airda.strategies.predictor import PredictorGuided, WarmStart
from airda.strategies.reinforce import Reinforce
from airda.strategies.segments import SegmentStrategy
from airda.strategies.simple import GridSearch, HaltonSearch, RandomSearch
from airda.strategies.sync_halving import SyncHyperband, SyncSuccessiveHalving

__all__ = [
    "BOHB",
    "STRATEGIES",
    "GridSearch",
    "HaltonSearch",
    "LocalSearch",
    "PopulationBasedTraining",
    "PredictorGuided",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "SegmentStrategy",
    "Strategy",
    "StrategyExhausted",
    "SyncHyperband",
    "SyncSuccessiveHalving",
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
    "pbt": PopulationBasedTraining,
    "bohb": BOHB,
    "sync_hyperband": SyncHyperband,
    "sync_halving": SyncSuccessiveHalving,
}
# Defined in airda.hpo (which imports this package first, so either import order works).
from airda.hpo.cmaes import CmaEs  # noqa: E402
from airda.hpo.gp import GaussianProcessSearch  # noqa: E402
from airda.hpo.nsga2 import NSGA2  # noqa: E402
from airda.hpo.tpe import MOTPE, TPE  # noqa: E402

STRATEGIES["tpe"] = TPE
STRATEGIES["motpe"] = MOTPE
STRATEGIES["nsga2"] = NSGA2
STRATEGIES["cmaes"] = CmaEs
STRATEGIES["gp"] = GaussianProcessSearch
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

"""Search strategies on the ask/tell interface, by name or instance.

==================  ===================================================================
name                strategy
==================  ===================================================================
``auto``            :class:`AutoSearch` (the default: GP, then CMA-ES or TPE; see its docs)
``random``          :class:`RandomSearch` (uniform over the space)
``grid``            :class:`GridSearch` (every combination, then exhausted)
``halton``          :class:`HaltonSearch` (scrambled Halton quasi-random points)
``rea``             :class:`RegularizedEvolution` (aging evolution)
``local``           :class:`LocalSearch` (hill climbing with restarts)
``reinforce``       :class:`Reinforce` (policy gradient over discrete choices)
``predictor``       :class:`PredictorGuided` (GP surrogate + expected improvement)
``tpe``             :class:`TPE` (tree-structured Parzen estimators)
``motpe``           :class:`MOTPE` (TPE with the multi-objective split)
``nsga2``           :class:`NSGA2` (steady-state NSGA-II)
``cmaes``           :class:`CmaEs` (CMA-ES with IPOP/BIPOP restarts)
``gp``              :class:`GaussianProcessSearch` (Matérn-5/2 GP + log expected improvement)
``pbt``             :class:`PopulationBasedTraining` (exploit / explore segments)
``bohb``            :class:`BOHB` (KDE sampler for Hyperband, Falkner et al. 2018)
``sync_hyperband``  :class:`SyncHyperband` (synchronous Hyperband over checkpointed segments)
``sync_halving``    :class:`SyncSuccessiveHalving` (synchronous successive halving)
==================  ===================================================================

Aliases: ``qmc`` and ``quasirandom`` (halton), ``evolution`` and ``regularized_evolution``
(rea), ``local_search`` (local), ``rl`` and ``policy_gradient`` (reinforce), ``bananas`` and
``surrogate`` (predictor), ``cma`` and ``cma-es`` (cmaes), ``bo`` and ``gaussian_process`` (gp).
Names are case-insensitive.

:class:`WarmStart` wraps any of them: its first candidates are the best of a large random pool
by a cheap score (a zero-cost proxy). :class:`SegmentStrategy` is the base of the strategies
whose trials continue one another from checkpoints (PBT, the synchronous schedules).

Each algorithm lives in its own module (``airda.strategies.tpe``, ``.gp``, ...), which imports
only :mod:`airda.strategies.base` (and private helpers here) and the layers below (space,
trial records, ops, storage). A module is loaded when one of its classes is first asked for,
by name (:func:`get_strategy`, :data:`STRATEGIES`) or as an attribute
(``airda.strategies.TPE``): ``import airda.strategies`` imports only the interface.

:data:`STRATEGIES` maps each name to its class; a plug-in registers its own with
``STRATEGIES["mine"] = MyStrategy`` (or ``"package.module:MyStrategy"``, imported on first use).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from airda.strategies.base import Strategy, StrategyExhausted

if TYPE_CHECKING:
    from airda.strategies.auto import AutoSearch
    from airda.strategies.bohb import BOHB
    from airda.strategies.cmaes import CmaEs
    from airda.strategies.evolution import RegularizedEvolution
    from airda.strategies.gp import GaussianProcessSearch
    from airda.strategies.local import LocalSearch
    from airda.strategies.nsga2 import NSGA2
    from airda.strategies.pbt import PopulationBasedTraining
    from airda.strategies.predictor import PredictorGuided, WarmStart
    from airda.strategies.reinforce import Reinforce
    from airda.strategies.segments import SegmentStrategy
    from airda.strategies.simple import GridSearch, HaltonSearch, RandomSearch
    from airda.strategies.sync_halving import SyncHyperband, SyncSuccessiveHalving
    from airda.strategies.tpe import MOTPE, TPE

__all__ = [
    "BOHB",
    "MOTPE",
    "NSGA2",
    "STRATEGIES",
    "TPE",
    "AutoSearch",
    "CmaEs",
    "GaussianProcessSearch",
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

# Public class -> the module that defines it, imported on first attribute access.
_HOMES = {
    "AutoSearch": "auto",
    "RandomSearch": "simple",
    "GridSearch": "simple",
    "HaltonSearch": "simple",
    "RegularizedEvolution": "evolution",
    "LocalSearch": "local",
    "Reinforce": "reinforce",
    "PredictorGuided": "predictor",
    "WarmStart": "predictor",
    "TPE": "tpe",
    "MOTPE": "tpe",
    "NSGA2": "nsga2",
    "CmaEs": "cmaes",
    "GaussianProcessSearch": "gp",
    "PopulationBasedTraining": "pbt",
    "BOHB": "bohb",
    "SegmentStrategy": "segments",
    "SyncHyperband": "sync_halving",
    "SyncSuccessiveHalving": "sync_halving",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"a lazy strategy entry is 'module:Class', got {target!r}")
    return getattr(importlib.import_module(module), attr)


class _Registry(MutableMapping[str, "type[Strategy]"]):
    """Strategy classes by name. An entry is a class or a ``"module:Class"`` string; a string
    is imported on its first lookup and replaced by the class, so listing or testing the names
    (``sorted(STRATEGIES)``, ``name in STRATEGIES``) imports nothing."""

    def __init__(self, entries: Mapping[str, type[Strategy] | str]):
        self._entries: dict[str, type[Strategy] | str] = dict(entries)

    def __getitem__(self, name: str) -> type[Strategy]:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = _load(entry)
        return entry

    def __setitem__(self, name: str, value: type[Strategy] | str) -> None:
        self._entries[name] = value

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        shown = {
            k: v if isinstance(v, str) else f"{v.__module__}:{v.__qualname__}"
            for k, v in self._entries.items()
        }
        return f"STRATEGIES({shown})"


STRATEGIES: MutableMapping[str, type[Strategy]] = _Registry(
    {
        "auto": "airda.strategies.auto:AutoSearch",
        "random": "airda.strategies.simple:RandomSearch",
        "grid": "airda.strategies.simple:GridSearch",
        "halton": "airda.strategies.simple:HaltonSearch",
        "rea": "airda.strategies.evolution:RegularizedEvolution",
        "local": "airda.strategies.local:LocalSearch",
        "reinforce": "airda.strategies.reinforce:Reinforce",
        "predictor": "airda.strategies.predictor:PredictorGuided",
        "tpe": "airda.strategies.tpe:TPE",
        "motpe": "airda.strategies.tpe:MOTPE",
        "nsga2": "airda.strategies.nsga2:NSGA2",
        "cmaes": "airda.strategies.cmaes:CmaEs",
        "gp": "airda.strategies.gp:GaussianProcessSearch",
        "pbt": "airda.strategies.pbt:PopulationBasedTraining",
        "bohb": "airda.strategies.bohb:BOHB",
        "sync_hyperband": "airda.strategies.sync_halving:SyncHyperband",
        "sync_halving": "airda.strategies.sync_halving:SyncSuccessiveHalving",
    }
)
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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'airda.strategies' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.strategies.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


def get_strategy(
    strategy: Strategy | str | dict[str, Any] | None, *, seed: int | None = None, **options: Any
) -> Strategy:
    """A strategy from an instance, a registered name (with options), or a stored config.

    Example:
        >>> get_strategy("rea", population=20, seed=1).population
        20
        >>> type(get_strategy("cma-es", seed=0)).__name__
        'CmaEs'
    """
    if isinstance(strategy, Strategy):
        if options:
            raise ValueError("options apply to a strategy given by name, not an instance")
        return strategy
    if strategy is None:
        strategy = "auto"
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

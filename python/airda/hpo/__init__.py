"""Hyperparameter optimisation: the samplers :class:`TPE`, :class:`MOTPE`, :class:`NSGA2`,
:class:`CmaEs` and :class:`GaussianProcessSearch` (defined in :mod:`airda.strategies`, where
every proposer lives, and re-exported here), :func:`OptunaSampler`, which lets any airda
strategy drive an existing Optuna study, the standard test functions
(:mod:`airda.hpo.functions`), and fine-tuning automation: the training-loop integration
(:class:`Session`: report, stop, checkpoint), learning-rate schedule, optimiser and curriculum
search spaces, and the learning-rate range test.

``import airda.hpo`` stays light: torch is imported when a schedule or checkpoint needs it.

Example:
    >>> import airda
    >>> from airda.hpo import TPE
    >>> from airda.space import Float
    >>> study = airda.create_study(space={"x": Float(-3, 3)}, strategy=TPE(seed=1))
    >>> study.optimize(lambda t: t["x"] ** 2, n_trials=40)
    >>> abs(study.best_params["x"]) < 0.3
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from airda.hpo.curriculum import (
    CURRICULA,
    PACINGS,
    CurriculumSampler,
    curriculum_space,
    pacing_fraction,
)
from airda.hpo.optuna_sampler import OptunaSampler
from airda.hpo.schedules import (
    LR_FAMILIES,
    LRRangeResult,
    batch_size_space,
    build_lr_scheduler,
    build_optimizer,
    lr_at,
    lr_range_test,
    lr_schedule_space,
    optimizer_space,
)
from airda.hpo.tuning import CheckpointError, Session
from airda.strategies.cmaes import CmaEs
from airda.strategies.gp import GaussianProcessSearch
from airda.strategies.nsga2 import NSGA2
from airda.strategies.tpe import MOTPE, TPE

__all__ = [
    "CURRICULA",
    "LR_FAMILIES",
    "MOTPE",
    "NSGA2",
    "PACINGS",
    "TPE",
    "CheckpointError",
    "CmaEs",
    "CurriculumSampler",
    "GaussianProcessSearch",
    "LRRangeResult",
    "OptunaSampler",
    "Session",
    "batch_size_space",
    "build_lr_scheduler",
    "build_optimizer",
    "curriculum_space",
    "lr_at",
    "lr_range_test",
    "lr_schedule_space",
    "optimizer_space",
    "pacing_fraction",
]

# The samplers' old modules (airda.hpo.tpe, ...) are deprecated shims; attribute access such
# as ``airda.hpo.gp.GaussianProcessSearch`` keeps working through them, with their warning.
_MOVED = frozenset({"cmaes", "gp", "nsga2", "tpe"})


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return importlib.import_module(f"airda.hpo.{name}")
    raise AttributeError(f"module 'airda.hpo' has no attribute {name!r}")

"""airda inside the training loops and trackers people already use.

==========================================  ===================================================
name                                        what it does
==========================================  ===================================================
:class:`~.lightning.PruningCallback`        a PyTorch Lightning callback: reports a validation
                                            metric to the trial, stops pruned runs
:class:`~.transformers.TrialCallback`       a Hugging Face ``TrainerCallback``: reports
                                            evaluations to the trial, stops pruned runs
:func:`~.transformers.optimize_distributed` a study under DDP (``torchrun``): rank 0 runs the
                                            study, every rank the objective with a
                                            :class:`~.transformers.DistributedTrial`
:class:`~.tensorboard.TensorBoardCallback`  a study callback: one TensorBoard run per trial, in
                                            the HParams dashboard's format
:class:`~.mlflow.MLflowCallback`            a study callback: one MLflow run per trial (params,
                                            metrics, tags), nested under a study run if asked
==========================================  ===================================================

Each lives in a module named after the library it connects to and imports that library
when the module is first used: ``import airda.integrations`` imports none of torch,
Lightning, Transformers, TensorBoard or MLflow. The libraries are optional extras:
``pip install 'airda-lab[lightning]'`` (and ``tensorboard``, ``mlflow``; Transformers comes
with ``lm``). The guide is ``docs/integrations.md``.

Example:
    >>> import airda.integrations as integrations
    >>> sorted(integrations.__all__)  # doctest: +NORMALIZE_WHITESPACE
    ['DistributedTrial', 'MLflowCallback', 'PruningCallback', 'TensorBoardCallback',
     'TrialCallback', 'optimize_distributed']
    >>> integrations.TensorBoardCallback.__module__
    'airda.integrations.tensorboard'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airda.integrations.lightning import PruningCallback
    from airda.integrations.mlflow import MLflowCallback
    from airda.integrations.tensorboard import TensorBoardCallback
    from airda.integrations.transformers import (
        DistributedTrial,
        TrialCallback,
        optimize_distributed,
    )

__all__ = [
    "DistributedTrial",
    "MLflowCallback",
    "PruningCallback",
    "TensorBoardCallback",
    "TrialCallback",
    "optimize_distributed",
]

_LAZY = {
    "PruningCallback": "airda.integrations.lightning",
    "TrialCallback": "airda.integrations.transformers",
    "DistributedTrial": "airda.integrations.transformers",
    "optimize_distributed": "airda.integrations.transformers",
    "TensorBoardCallback": "airda.integrations.tensorboard",
    "MLflowCallback": "airda.integrations.mlflow",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

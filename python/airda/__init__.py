"""airda: AI R&D automation on compiled kernels.

Search engines for architectures, hyperparameters, kernel variants, synthetic data and prompts,
and the evaluation that tells a real improvement from noise. ``import airda`` is light: the
compiled module, torch and triton load when an op or engine first needs them.

Example:
    >>> import airda
    >>> from airda.space import Float
    >>> study = airda.create_study(space={"x": Float(-2, 2)}, strategy="halton", seed=0)
    >>> study.optimize(lambda trial: trial["x"] ** 2, n_trials=16)
    >>> abs(study.best_params["x"]) < 0.3
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airda._version import __version__

if TYPE_CHECKING:
    from airda import codeopt, eval, nas, ops, space
    from airda.study import Study, Trial, copy_study, create_study, load_study
    from airda.trial import FrozenTrial, TrialPruned, TrialState

__all__ = [
    "FrozenTrial",
    "Study",
    "Trial",
    "TrialPruned",
    "TrialState",
    "__version__",
    "codeopt",
    "copy_study",
    "create_study",
    "eval",
    "load_study",
    "nas",
    "ops",
    "space",
]

_LAZY_SUBMODULES = frozenset(
    {
        "eval",
        "nas",
        "ops",
        "cli",
        "kernels",
        "testing",
        "space",
        "storage",
        "strategies",
        "schedulers",
        "executor",
        "logging",
        "study",
        "trial",
        "codeopt",
        "synth",
        "lm",
        "prompt",
        "hpo",
        "integrations",
        "viz",
    }
)
_LAZY_NAMES = {
    "create_study": "airda.study",
    "load_study": "airda.study",
    "copy_study": "airda.study",
    "Study": "airda.study",
    "Trial": "airda.study",
    "FrozenTrial": "airda.trial",
    "TrialState": "airda.trial",
    "TrialPruned": "airda.trial",
}


def __getattr__(name: str) -> Any:
    # Submodules and entry points load on first use, keeping `import airda` light.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"airda.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    hint = _OPTUNA_MODULES.get(name)
    raise AttributeError(
        f"module 'airda' has no attribute {name!r}" + (f"; airda's is {hint}" if hint else "")
    )


# Optuna's modules, for a script ported with `import airda as optuna`.
_OPTUNA_MODULES = {
    "samplers": "airda.strategies (create_study(strategy='tpe'), 'gp', 'cmaes', 'nsga2', ...)",
    "pruners": "airda.schedulers (create_study(scheduler=airda.schedulers.MedianStopping()))",
    "visualization": "airda.viz",
    "importance": "airda.hpo.importance",
    "distributions": "airda.space (Float, Int, Categorical)",
    "storages": "airda.storage",
}


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES | set(_LAZY_NAMES))

"""The study layer: :class:`Study` (a search recorded in a storage), the live :class:`Trial`
an objective receives, and the executors that run the ask / evaluate / tell loop (serially,
in threads, in local worker processes, on a Ray cluster with :class:`RayExecutor`).

This package is the only code that touches a study's internals; strategies and schedulers
below it see trial records, and the domains above it (hpo, nas, codeopt, eval) use the public
methods.

Example:
    >>> import airda
    >>> from airda.space import Float, Int
    >>> study = airda.create_study(space={"x": Float(-5, 5), "n": Int(1, 3)}, seed=0)
    >>> study.optimize(lambda t: (t["x"] - 1) ** 2 + t["n"], n_trials=30)
    >>> len(study.trials), study.best_params["n"]
    (30, 1)
"""

from airda.study._executor import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    WorkerTerminated,
    get_executor,
)
from airda.study._study import Study, copy_study, create_study, load_study
from airda.study._trial import Trial

__all__ = [
    "Executor",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "Study",
    "ThreadExecutor",
    "Trial",
    "WorkerTerminated",
    "copy_study",
    "create_study",
    "get_executor",
    "load_study",
]


def __getattr__(name: str):
    # RayExecutor's module is light, but it is loaded only when named, like Ray itself.
    if name == "RayExecutor":
        from airda.study._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Objectives for ``airda run`` examples of hyperparameter optimisation: the standard test
functions of :mod:`airda.hpo.functions` as trial objectives (parameters ``x0 .. x{d-1}``).
"""

from __future__ import annotations

from typing import Any


def hartmann6(trial: Any) -> float:
    """Hartmann-6 on [0, 1]^6 (minimum -3.32237)."""
    from airda.hpo.functions import get_function

    return get_function("hartmann6").objective(trial)


def branin(trial: Any) -> float:
    """Branin on [-5, 10] x [0, 15] (minimum 0.397887)."""
    from airda.hpo.functions import get_function

    return get_function("branin").objective(trial)


EPOCHS = 27


def hartmann6_epochs(trial: Any) -> float:
    """Hartmann-6 as a training run of :data:`EPOCHS` (27) epochs, for schedulers: the value
    after epoch e is ``hartmann6(x) + 1 / e`` (a learning curve that converges to the
    function), reported every epoch with ``trial.report(e, value)``; the trial stops when the
    study's scheduler says so (``trial.should_prune()``)."""
    from airda.trial import TrialPruned

    final = hartmann6(trial)
    value = final
    for epoch in range(1, EPOCHS + 1):
        value = final + 1.0 / epoch
        trial.report(epoch, value)
        if epoch < EPOCHS and trial.should_prune():
            raise TrialPruned()
    return value

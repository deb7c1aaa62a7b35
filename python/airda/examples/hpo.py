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

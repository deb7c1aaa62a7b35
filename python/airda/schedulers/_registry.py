"""Schedulers by name, for configuration files (``airda run``'s ``[scheduler]`` table)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from airda.schedulers._halving import ASHA, Hyperband, SuccessiveHalving
from airda.schedulers._median import MedianStopping, Scheduler

__all__ = ["SCHEDULERS", "get_scheduler"]

SCHEDULERS: dict[str, type[Scheduler]] = {
    "median": MedianStopping,
    "asha": ASHA,
    "successive_halving": SuccessiveHalving,
    "hyperband": Hyperband,
}


def _options_of(cls: type[Scheduler]) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items() if k != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}


def get_scheduler(name: str, options: Mapping[str, Any] | None = None) -> Scheduler:
    """The scheduler registered as `name` (see :data:`SCHEDULERS`), made with `options`.

    Every option of the registered schedulers is an integer (``max_resource`` has no default
    for the budget-based ones); a wrong name, an unknown option or a value that is not an
    integer is a ``ValueError`` that says which and lists what is accepted.

    Example:
        >>> get_scheduler("asha", {"min_resource": 1, "max_resource": 27})
        ASHA(min_resource=1, max_resource=27, reduction_factor=3)
        >>> get_scheduler("hyperband", {"max_resource": 9, "eta": 3})
        Traceback (most recent call last):
        ...
        ValueError: scheduler 'hyperband' has no option 'eta'; its options: min_resource, max_resource, reduction_factor
    """
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; registered: {', '.join(sorted(SCHEDULERS))}")
    cls = SCHEDULERS[name]
    accepted = _options_of(cls)
    options = dict(options or {})
    for key, value in options.items():
        if key not in accepted:
            raise ValueError(
                f"scheduler {name!r} has no option {key!r}; its options: {', '.join(accepted)}"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"scheduler {name!r}: option {key!r} must be an integer, got {value!r}"
            )
    try:
        return cls(**options)
    except ValueError as exc:
        raise ValueError(f"scheduler {name!r}: {exc}") from None

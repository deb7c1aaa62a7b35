"""Deprecated home of :mod:`airda.strategies.cmaes`, kept for one release.

Every proposer lives in :mod:`airda.strategies` (the layer below the domains); import from
``airda.strategies.cmaes``, or take the classes from ``airda.strategies`` or ``airda.hpo``.
"""

from __future__ import annotations

import warnings
from typing import Any

import airda.strategies.cmaes as _new

__all__ = list(_new.__all__)

warnings.warn(
    "airda.hpo.cmaes is deprecated and will be removed in the next release; "
    "import from airda.strategies.cmaes instead",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    # Private helpers too, so code written against the old module keeps running; dunders
    # stay the shim's own (a forwarded __path__ would make it look like a package).
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_new, name)

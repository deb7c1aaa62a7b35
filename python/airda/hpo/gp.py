"""Deprecated home of :mod:`airda.strategies.gp`, kept for one release.

Every proposer lives in :mod:`airda.strategies` (the layer below the domains); import from
``airda.strategies.gp``, or take the classes from ``airda.strategies`` or ``airda.hpo``.
"""

from __future__ import annotations

import warnings
from typing import Any

import airda.strategies.gp as _new

__all__ = list(_new.__all__)

warnings.warn(
    "airda.hpo.gp is deprecated and will be removed in the next release; "
    "import from airda.strategies.gp instead",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    # Private helpers too, so code written against the old module keeps running; dunders
    # stay the shim's own (a forwarded __path__ would make it look like a package).
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_new, name)

"""pareto: the former home of the Pareto ops, now :mod:`airda.ops.non_dominated_rank` and
:mod:`airda.ops.hypervolume` (one module per op). This alias is kept for one release: import the
functions from :mod:`airda.ops`.
"""

from __future__ import annotations

import warnings

from airda.ops.hypervolume import hypervolume, hypervolume_reference
from airda.ops.non_dominated_rank import non_dominated_rank, non_dominated_rank_reference

__all__ = [
    "hypervolume",
    "hypervolume_reference",
    "non_dominated_rank",
    "non_dominated_rank_reference",
]

warnings.warn(
    "airda.ops.pareto is deprecated: import from airda.ops (or airda.ops.non_dominated_rank and airda.ops.hypervolume)",
    DeprecationWarning,
    stacklevel=2,
)

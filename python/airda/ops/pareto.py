"""pareto: the former home of the Pareto ops, now :mod:`airda.ops.non_dominated_rank` and
:mod:`airda.ops.hypervolume` (one module per op). This alias is kept for one release: import the
functions from :mod:`airda.ops`.

Example:
    >>> import numpy as np
    >>> from airda.ops.pareto import hypervolume, non_dominated_rank
    >>> values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
    >>> non_dominated_rank(values).tolist(), hypervolume(values, [5.0, 5.0])
    ([0, 0, 1, 0], 11.0)
"""

from __future__ import annotations

from airda.ops.hypervolume import hypervolume, hypervolume_reference
from airda.ops.non_dominated_rank import non_dominated_rank, non_dominated_rank_reference

__all__ = [
    "hypervolume",
    "hypervolume_reference",
    "non_dominated_rank",
    "non_dominated_rank_reference",
]

"""non_dominated_rank: the non-dominated front of every point, all objectives minimised.

Point a dominates point b when a <= b in every objective and a < b in at least one; negate an
objective to maximise it. :func:`non_dominated_rank` gives every point its front (0: dominated
by none), the order NSGA-II and multi-objective TPE select by.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import ArrayInfo, like_input
from airda.ops._objectives import objectives_for
from airda.ops._registry import register_op

__all__ = ["non_dominated_rank", "non_dominated_rank_reference"]


# ---- reference: plain NumPy, written to be read ------------------------------------------


def _dominated_by(values: np.ndarray, i: int) -> np.ndarray:
    """Which rows point `i` dominates."""
    return np.all(values[i] <= values, axis=1) & np.any(values[i] < values, axis=1)


def non_dominated_rank_reference(values: np.ndarray) -> np.ndarray:
    """Reference: Deb's fast non-dominated sort, in O(n^2 m) time and O(n) memory.

    Counts the dominators of every point, then peels fronts: the points with no dominator left
    form the next front, and removing them uncounts them from the points they dominate.
    Integers are compared as integers (float64 would tie neighbours beyond 2**53).
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        values = values.astype(np.float64)
    n = values.shape[0]
    dominators = np.zeros(n, dtype=np.int64)
    for i in range(n):
        dominators += _dominated_by(values, i)
    ranks = np.full(n, -1, dtype=np.int64)
    front = np.flatnonzero(dominators == 0)
    rank = 0
    while front.size:
        ranks[front] = rank
        for i in front:
            dominators -= _dominated_by(values, i)
        front = np.flatnonzero((dominators == 0) & (ranks < 0))
        rank += 1
    return ranks


# ---- backends ---------------------------------------------------------------------------


def _rank_reference(values: np.ndarray, info: ArrayInfo, device: Any) -> Any:
    return like_input(non_dominated_rank_reference(values), info, device)


def _rank_cpu(values: np.ndarray, info: ArrayInfo, device: Any) -> Any:
    out = np.empty(values.shape[0], dtype=np.int64)
    native().non_dominated_rank(values, out)
    return like_input(out, info)


_RANK_OP = register_op("non_dominated_rank", {"reference": _rank_reference, "cpu": _rank_cpu})


# ---- public function --------------------------------------------------------------------


def non_dominated_rank(values: Any, *, backend: str | None = None) -> Any:
    """The non-dominated front of every point; all objectives are minimised.

    Rank 0 is the Pareto front (points no other point dominates), rank 1 the front of what is
    left without rank 0, and so on; equal points share a rank. Point a dominates b when
    a <= b in every objective and a < b in at least one.

    Args:
        values: (n, m) matrix, one point per row (NumPy or torch, C-contiguous; float64,
            float32, float16, bfloat16 or integers; integers are compared exactly, also
            beyond 2**53). n may be 0; +-inf compare as usual, NaN is an error.
        backend: force ``"cpu"`` (C++, O(n log^(m-1) n)) or ``"reference"`` (NumPy, O(n^2 m));
            by default host data takes ``cpu``.

    Returns:
        int64 ranks of shape (n,), of the same library as `values` (NumPy in, NumPy out).

    Raises:
        TypeError: `values` is not a NumPy array or torch tensor of real numbers.
        ValueError: not 2-D, no columns, not C-contiguous, or contains NaN.

    Example:
        >>> import numpy as np
        >>> values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0], [3.0, 3.0]])
        >>> non_dominated_rank(values).tolist()
        [0, 0, 1, 0, 1]
    """
    impl, host, info = objectives_for(_RANK_OP, values, backend, exact=True)
    return impl(host, info, getattr(values, "device", None))

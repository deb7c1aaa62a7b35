"""pareto: non-dominated sorting and hypervolume of points whose objectives are all minimised.

Point a dominates point b when a <= b in every objective and a < b in at least one; negate an
objective to maximise it. :func:`non_dominated_rank` gives every point its front (0: dominated
by none), the order NSGA-II and multi-objective TPE select by; :func:`hypervolume` measures the
region a set of points dominates below a reference point, the usual score of a Pareto front.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import (
    REAL_DTYPES,
    ArrayInfo,
    as_array,
    host_array,
    is_tensor,
    like_input,
)
from airda.ops._registry import Op, register_op

__all__ = [
    "hypervolume",
    "hypervolume_reference",
    "non_dominated_rank",
    "non_dominated_rank_reference",
]


# ---- references: plain NumPy, written to be read ------------------------------------------


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


def _gap(low: Any, high: Any) -> Any:
    """high - low where positive, else 0, without the NaN of inf - inf."""
    with np.errstate(invalid="ignore"):
        return np.where(high > low, np.subtract(high, low), 0.0)


def _area_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by 2-D points that all lie strictly below `reference`."""
    if len(points) == 0:
        return 0.0
    order = np.lexsort((points[:, 1], points[:, 0]))
    x, y = points[order, 0], points[order, 1]
    # Between x[i] and the next x, the covered band reaches down to the lowest y seen so far.
    lowest = np.minimum.accumulate(y)
    widths = _gap(x, np.append(x[1:], reference[0]))
    heights = _gap(lowest, reference[1])
    with np.errstate(invalid="ignore"):  # 0 * inf: an empty band, masked out below
        areas = np.where((widths > 0) & (heights > 0), widths * heights, 0.0)
    return float(areas.sum())


def hypervolume_reference(values: np.ndarray, reference_point: np.ndarray) -> float:
    """Reference: a sweep of rectangles in 2-D; in 3-D, the sum over slabs between consecutive
    distinct values of the third objective of the 2-D area below each slab (O(n^2 log n))."""
    values = np.asarray(values, dtype=np.float64)
    reference = np.asarray(reference_point, dtype=np.float64)
    inside = values[np.all(values < reference, axis=1)]
    if values.shape[1] == 2:
        return _area_2d(inside, reference)
    if len(inside) == 0:
        return 0.0
    levels = np.unique(inside[:, 2])
    tops = np.append(levels[1:], reference[2])
    volume = 0.0
    for level, top in zip(levels, tops, strict=True):
        area = _area_2d(inside[inside[:, 2] <= level, :2], reference[:2])
        thickness = float(_gap(level, top))
        if area > 0 and thickness > 0:
            volume += area * thickness
    return volume


# ---- backends ---------------------------------------------------------------------------


def _rank_reference(values: np.ndarray, info: ArrayInfo, device: Any) -> Any:
    return like_input(non_dominated_rank_reference(values), info, device)


def _rank_cpu(values: np.ndarray, info: ArrayInfo, device: Any) -> Any:
    out = np.empty(values.shape[0], dtype=np.int64)
    native().non_dominated_rank(values, out)
    return like_input(out, info)


def _hypervolume_reference(values: np.ndarray, reference: np.ndarray, info: ArrayInfo) -> float:
    return hypervolume_reference(values, reference)


def _hypervolume_cpu(values: np.ndarray, reference: np.ndarray, info: ArrayInfo) -> float:
    return float(native().hypervolume(values, reference))


_RANK_OP = register_op("non_dominated_rank", {"reference": _rank_reference, "cpu": _rank_cpu})
_HYPERVOLUME_OP = register_op(
    "hypervolume", {"reference": _hypervolume_reference, "cpu": _hypervolume_cpu}
)


# ---- input checks -----------------------------------------------------------------------


# Integers of larger magnitude do not all have a float64 of their own.
_EXACT_INTEGERS = 2**53


def _column_ranks(values: np.ndarray) -> np.ndarray:
    """Each column replaced by the dense rank of its values, as float64: dominance compares
    values within a column only, so the ranks dominate as the values do, and are exact."""
    ranks = np.empty(values.shape, dtype=np.float64)
    for j in range(values.shape[1]):
        ranks[:, j] = np.unique(values[:, j], return_inverse=True)[1].reshape(-1)
    return ranks


def _beyond_float64(values: np.ndarray) -> bool:
    """Whether integer `values` hold one that float64 would round."""
    if values.dtype.kind not in "iu" or values.size == 0:
        return False
    return int(values.max()) > _EXACT_INTEGERS or int(values.min()) < -_EXACT_INTEGERS


def _objectives(
    op: Op, values: Any, backend: str | None, *, exact: bool = False
) -> tuple[Any, np.ndarray, ArrayInfo]:
    """Check `values`, pick the backend, and return it with a float64 host copy of the data.

    Integers beyond 2**53 in magnitude become per-column ranks when `exact` (the order is all
    that counts), and are refused otherwise: rounded to float64, distinct values could tie.
    """
    values, info = _check_objectives(values)
    impl = op.select(info, backend)
    host, _ = host_array(values, "values")
    if _beyond_float64(host):
        if not exact:
            raise ValueError(
                "values holds integers beyond 2**53 in magnitude, which float64 cannot hold "
                "exactly; the result would be computed from rounded coordinates (shift or scale "
                "them first)"
            )
        return impl, _column_ranks(host), info
    host, _ = host_array(host, "values", np.float64)
    nan = np.isnan(host)
    if nan.any():
        row, col = np.argwhere(nan)[0]
        raise ValueError(
            f"values contains NaN (first at row {row}, column {col}); objectives must be "
            "numbers (+-inf is allowed)"
        )
    return impl, host, info


def _check_objectives(values: Any) -> tuple[Any, ArrayInfo]:
    values, info = as_array(values, "values")
    if info.dtype not in REAL_DTYPES:
        raise TypeError(
            f"values has dtype {info.dtype}; expected real numbers (a float or integer dtype)"
        )
    if len(info.shape) != 2:
        raise ValueError(f"values must be 2-D (n points x m objectives), got shape {info.shape}")
    if info.shape[1] == 0:
        raise ValueError(f"values has no objectives (shape {info.shape}); it needs m >= 1 columns")
    if not info.contiguous:
        hint = "np.ascontiguousarray(x)" if info.lib == "numpy" else "x.contiguous()"
        raise ValueError(f"values must be C-contiguous (row-major); make a copy with {hint}")
    return values, info


def _reference_point(reference_point: Any, m: int) -> np.ndarray:
    if is_tensor(reference_point) or isinstance(reference_point, np.ndarray):
        point, _ = host_array(reference_point, "reference_point")
    else:
        try:
            point = np.asarray(reference_point)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"reference_point must be m numbers (a sequence or an array): {exc}"
            ) from None
    if point.dtype.kind not in "fiu":
        raise TypeError(
            f"reference_point has dtype {point.dtype}; expected real numbers (float or integer)"
        )
    if point.shape != (m,):
        raise ValueError(
            f"reference_point must have shape ({m},), one value per objective of values, got "
            f"shape {point.shape}"
        )
    if _beyond_float64(point):
        raise ValueError(
            f"reference_point holds integers beyond 2**53 in magnitude, which float64 cannot hold "
            f"exactly: {point.tolist()}"
        )
    point = np.ascontiguousarray(point, dtype=np.float64)
    if np.isnan(point).any():
        raise ValueError(f"reference_point contains NaN: {point.tolist()}")
    return point


# ---- public functions -------------------------------------------------------------------


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
    impl, host, info = _objectives(_RANK_OP, values, backend, exact=True)
    return impl(host, info, getattr(values, "device", None))


def hypervolume(values: Any, reference_point: Any, *, backend: str | None = None) -> float:
    """The volume dominated by the points and bounded by `reference_point` (minimisation).

    The union of the boxes [point, reference_point] over the points that are below the
    reference point in every objective; the others add nothing.

    Args:
        values: (n, m) matrix of points, m = 2 or 3 (as for :func:`non_dominated_rank`, but
            integers must be within 2**53 in magnitude: the volume is computed in float64).
        reference_point: m values (sequence, NumPy array or torch tensor), no NaN.
        backend: force ``"cpu"`` (C++ sweep, O(n log n)) or ``"reference"`` (NumPy).

    Returns:
        The hypervolume as a float: 0.0 for no points, inf when a point at -inf (or a
        reference at +inf) bounds an infinite region.

    Raises:
        TypeError: `values` or `reference_point` are not real numbers.
        ValueError: m is not 2 or 3, `reference_point` has the wrong length, NaN, or integers
            beyond 2**53 in magnitude.

    Example:
        >>> import numpy as np
        >>> values = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
        >>> hypervolume(values, [5.0, 5.0])
        11.0
    """
    m = _check_objectives(values)[1].shape[1]
    if m not in (2, 3):
        raise ValueError(
            f"hypervolume supports only 2 and 3 objectives for now, got m = {m} (values has "
            "shape (n, m))"
        )
    point = _reference_point(reference_point, m)
    impl, host, info = _objectives(_HYPERVOLUME_OP, values, backend)
    return impl(host, point, info)

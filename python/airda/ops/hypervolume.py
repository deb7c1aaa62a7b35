"""hypervolume: the volume a set of points dominates below a reference point, all objectives
minimised (2 or 3 of them): the usual score of a Pareto front.

Point a dominates point b when a <= b in every objective and a < b in at least one; negate an
objective to maximise it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import ArrayInfo, host_array, is_tensor
from airda.ops._objectives import beyond_float64, check_objectives, objectives_for
from airda.ops._registry import register_op

__all__ = ["hypervolume", "hypervolume_reference"]


# ---- reference: plain NumPy, written to be read ------------------------------------------


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


def _hypervolume_reference(values: np.ndarray, reference: np.ndarray, info: ArrayInfo) -> float:
    return hypervolume_reference(values, reference)


def _hypervolume_cpu(values: np.ndarray, reference: np.ndarray, info: ArrayInfo) -> float:
    return float(native().hypervolume(values, reference))


_HYPERVOLUME_OP = register_op(
    "hypervolume", {"reference": _hypervolume_reference, "cpu": _hypervolume_cpu}
)


# ---- input checks -----------------------------------------------------------------------


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
    if beyond_float64(point):
        raise ValueError(
            f"reference_point holds integers beyond 2**53 in magnitude, which float64 cannot hold "
            f"exactly: {point.tolist()}"
        )
    point = np.ascontiguousarray(point, dtype=np.float64)
    if np.isnan(point).any():
        raise ValueError(f"reference_point contains NaN: {point.tolist()}")
    return point


# ---- public function --------------------------------------------------------------------


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
    m = check_objectives(values)[1].shape[1]
    if m not in (2, 3):
        raise ValueError(
            f"hypervolume supports only 2 and 3 objectives for now, got m = {m} (values has "
            "shape (n, m))"
        )
    point = _reference_point(reference_point, m)
    impl, host, info = objectives_for(_HYPERVOLUME_OP, values, backend)
    return impl(host, point, info)

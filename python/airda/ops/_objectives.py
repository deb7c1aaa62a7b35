"""Checks of the objective matrices the Pareto ops (:mod:`airda.ops.non_dominated_rank`,
:mod:`airda.ops.hypervolume`) take: n points x m objectives, all minimised."""

from __future__ import annotations

from typing import Any

import numpy as np

from airda.ops._arrays import REAL_DTYPES, ArrayInfo, as_array, host_array
from airda.ops._registry import Op

# Integers of larger magnitude do not all have a float64 of their own.
EXACT_INTEGERS = 2**53


def column_ranks(values: np.ndarray) -> np.ndarray:
    """Each column replaced by the dense rank of its values, as float64: dominance compares
    values within a column only, so the ranks dominate as the values do, and are exact."""
    ranks = np.empty(values.shape, dtype=np.float64)
    for j in range(values.shape[1]):
        ranks[:, j] = np.unique(values[:, j], return_inverse=True)[1].reshape(-1)
    return ranks


def beyond_float64(values: np.ndarray) -> bool:
    """Whether integer `values` hold one that float64 would round."""
    if values.dtype.kind not in "iu" or values.size == 0:
        return False
    return int(values.max()) > EXACT_INTEGERS or int(values.min()) < -EXACT_INTEGERS


def objectives_for(
    op: Op, values: Any, backend: str | None, *, exact: bool = False
) -> tuple[Any, np.ndarray, ArrayInfo]:
    """Check `values`, pick the backend, and return it with a float64 host copy of the data.

    Integers beyond 2**53 in magnitude become per-column ranks when `exact` (the order is all
    that counts), and are refused otherwise: rounded to float64, distinct values could tie.
    """
    values, info = check_objectives(values)
    impl = op.select(info, backend)
    host, _ = host_array(values, "values")
    if beyond_float64(host):
        if not exact:
            raise ValueError(
                "values holds integers beyond 2**53 in magnitude, which float64 cannot hold "
                "exactly; the result would be computed from rounded coordinates (shift or scale "
                "them first)"
            )
        return impl, column_ranks(host), info
    host, _ = host_array(host, "values", np.float64)
    nan = np.isnan(host)
    if nan.any():
        row, col = np.argwhere(nan)[0]
        raise ValueError(
            f"values contains NaN (first at row {row}, column {col}); objectives must be "
            "numbers (+-inf is allowed)"
        )
    return impl, host, info


def check_objectives(values: Any) -> tuple[Any, ArrayInfo]:
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

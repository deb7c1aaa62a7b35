"""The correctness gate: a variant's outputs against the reference's, before it is timed.

Example:
    >>> import numpy as np
    >>> from airda.codeopt import check_outputs
    >>> check_outputs([np.array([1.0, 2.0])], [np.array([1.0, 2.0 + 1e-9])]) is None
    True
    >>> print(check_outputs([np.array([1.0, 2.5])], [np.array([1.0, 2.0])], atol=1e-6, rtol=1e-6))
    wrong output 0: max abs error 0.5 at index 1 (rel 0.25; atol 1e-06, rtol 1e-06)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["check_outputs"]


def check_outputs(
    outputs: Sequence[Any],
    expected: Sequence[Any],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    verify: Callable[[Sequence[Any], Sequence[Any]], Any] | None = None,
) -> str | None:
    """None when `outputs` match `expected`, else a sentence giving the error's size.

    With `verify`, ``verify(outputs, expected)`` decides: a false result or an exception fails
    (its message is the reason; a string result is taken as the reason). Otherwise each output
    must satisfy ``|out - ref| <= atol + rtol * |ref|`` elementwise, NaN only where the
    reference has NaN.
    """
    if verify is not None:
        try:
            ok = verify(list(outputs), list(expected))
        except Exception as exc:
            return f"verify failed: {type(exc).__name__}: {exc}"
        if isinstance(ok, str):
            return f"verify failed: {ok}"
        return None if ok is None or bool(ok) else "verify returned False"
    if len(outputs) != len(expected):
        return f"wrong output count: {len(outputs)} != {len(expected)}"
    for i, (out, ref) in enumerate(zip(outputs, expected, strict=True)):
        a = np.asarray(out)
        b = np.asarray(ref)
        if a.shape != b.shape:
            return f"wrong output {i}: shape {a.shape} != {b.shape}"
        if a.size == 0:
            continue
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        nan_a, nan_b = np.isnan(a64), np.isnan(b64)
        if np.any(nan_a != nan_b):
            j = int(np.flatnonzero((nan_a != nan_b).ravel())[0])
            return f"wrong output {i}: NaN mismatch at index {j}"
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(nan_b, 0.0, np.abs(a64 - b64))
            same_inf = np.isinf(b64) & (a64 == b64)
            diff = np.where(same_inf, 0.0, diff)
            bad = diff > atol + rtol * np.abs(np.where(np.isfinite(b64), b64, 0.0))
        if np.any(bad):
            j = int(np.argmax(np.where(np.isfinite(diff), diff, np.inf).ravel()))
            err = float(diff.ravel()[j])
            ref_j = abs(float(b64.ravel()[j]))
            rel = err / ref_j if ref_j > 0 else float("inf")
            return (
                f"wrong output {i}: max abs error {err:.3g} at index {j} "
                f"(rel {rel:.3g}; atol {atol:g}, rtol {rtol:g})"
            )
    return None

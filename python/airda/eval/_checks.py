"""Input checks shared by the statistics: arrays of finite scores, pairing, NaN policy.

Every function of :mod:`airda.eval` goes through these, so the same bad input gets the same
message everywhere, and an exclusion under ``nan_policy="omit"`` is counted, never silent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NAN_POLICIES", "as_scores", "paired_rows", "paired_scores", "two_samples"]

NAN_POLICIES = ("raise", "omit")


def _policy(nan_policy: str) -> str:
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    return nan_policy


def _float_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _bad_message(name: str, bad: np.ndarray) -> str:
    where = np.flatnonzero(bad)
    shown = ", ".join(str(int(i)) for i in where[:5]) + (", ..." if where.size > 5 else "")
    return (
        f"{name} holds {where.size} NaN or infinite value(s) (at index {shown}); "
        "pass nan_policy='omit' to exclude them (the count is reported)"
    )


def as_scores(
    x: Any, name: str = "scores", *, nan_policy: str = "raise", min_size: int = 1
) -> tuple[np.ndarray, int]:
    """A 1-D float64 array of finite scores and how many were excluded as NaN/inf."""
    _policy(nan_policy)
    arr = _float_array(x, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be a 1-D array of scores, got a scalar")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    excluded = int(bad.sum())
    if excluded:
        if nan_policy == "raise":
            raise ValueError(_bad_message(name, bad))
        arr = arr[~bad]
    if arr.size < min_size:
        raise ValueError(
            f"{name} has {arr.size} usable score(s)"
            + (f" after excluding {excluded} NaN/inf" if excluded else "")
            + f"; this needs at least {min_size}"
        )
    return arr, excluded


def paired_scores(
    a: Any,
    b: Any,
    names: tuple[str, str] = ("a", "b"),
    *,
    nan_policy: str = "raise",
    min_size: int = 1,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two equally long 1-D arrays of paired scores; a pair with a NaN/inf is dropped whole."""
    (x, y), excluded = paired_rows((a, b), names, nan_policy=nan_policy, min_size=min_size)
    return x, y, excluded


def two_samples(
    a: Any,
    b: Any,
    names: tuple[str, str] = ("a", "b"),
    *,
    nan_policy: str = "raise",
    min_size: int = 1,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two independent 1-D samples (lengths may differ), NaN/inf handled per sample."""
    x, ex = as_scores(a, names[0], nan_policy=nan_policy, min_size=min_size)
    y, ey = as_scores(b, names[1], nan_policy=nan_policy, min_size=min_size)
    return x, y, ex + ey


def paired_rows(
    samples: Any,
    names: Any = None,
    *,
    nan_policy: str = "raise",
    min_size: int = 1,
) -> tuple[list[np.ndarray], int]:
    """Several equally long 1-D samples of paired scores; a pair with a NaN/inf is dropped whole."""
    _policy(nan_policy)
    names = list(names) if names is not None else [f"data[{i}]" for i in range(len(samples))]
    arrays = [_float_array(s, name) for s, name in zip(samples, names, strict=False)]
    for arr, name in zip(arrays, names, strict=False):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if len({arr.size for arr in arrays}) != 1:
        raise ValueError(
            "paired scores need equal lengths: "
            + ", ".join(f"{name} has {arr.size}" for arr, name in zip(arrays, names, strict=False))
            + " (pass paired=False for independent samples)"
        )
    bad = np.zeros(arrays[0].size, dtype=bool)
    for arr in arrays:
        bad |= ~np.isfinite(arr)
    excluded = int(bad.sum())
    if excluded:
        if nan_policy == "raise":
            raise ValueError(_bad_message("the pairs (" + ", ".join(names) + ")", bad))
        arrays = [arr[~bad] for arr in arrays]
    if arrays[0].size < min_size:
        raise ValueError(
            f"{arrays[0].size} usable pair(s)"
            + (f" after excluding {excluded} with NaN/inf" if excluded else "")
            + f"; this needs at least {min_size}"
        )
    return arrays, excluded

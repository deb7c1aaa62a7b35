"""bootstrap_means: the bootstrap behind confidence intervals, on a random stream both backends
share.

:func:`bootstrap_means` gives the mean of every row of k paired score rows over each bootstrap
resample (the paired bootstrap: all rows share each resample's indices), optionally stratified
(each stratum resampled within itself, as rliable does per task); :func:`bootstrap_indices`
gives the very same indices to NumPy code, to bootstrap any other statistic.

The stream is counter-based, so that every resample can be made on its own, by any thread, by
the C++ kernel or by NumPy, with identical results. All arithmetic is on unsigned 64-bit
integers, mod 2^64::

    mix(x)   = SplitMix64's finaliser:  x ^= x >> 30;  x *= 0xBF58476D1CE4E5B9
                                        x ^= x >> 27;  x *= 0x94D049BB133111EB
                                        x ^= x >> 31
    seed_mix = mix(seed)                                  0 <= seed < 2^64
    key(r)   = mix(seed_mix + r)                          resample r = 0, 1, ...
    z(r, j)  = mix(key(r) + (j + 1) * 0x9E3779B97F4A7C15)  draw j = 0 .. n-1 of resample r
    draw     = floor(z(r, j) * m / 2^64)                  the high word of the 128-bit product

Without strata, m = n and index(r, j) = draw. With strata, position j draws from its own
stratum: m is the size of the stratum of position j and index(r, j) is the draw-th smallest
position of that stratum, so every resample takes from each stratum as many indices as it has.
The draw is biased by at most m / 2^64, and n must be below 2^32 (NumPy forms the 128-bit
product from 32-bit halves).

Means are summed in one fixed order, so that the backends agree bit for bit: value j of a row
goes to lane j mod 4, each lane adds its values in increasing j, and the mean is
((lane0 + lane1) + (lane2 + lane3)) / n.
"""

from __future__ import annotations

import operator
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
from airda.ops._registry import register_op

__all__ = [
    "bootstrap_indices",
    "bootstrap_means",
    "bootstrap_means_reference",
]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_LOW_32 = np.uint64(0xFFFFFFFF)
_MAX_POPULATION = 2**32 - 1
_LANES = 4
# Values gathered per chunk of the reference: its arrays stay tens of MB, reused by malloc.
_CHUNK_VALUES = 1 << 20


# ---- the stream ---------------------------------------------------------------------------


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place, on a uint64 array (array arithmetic wraps mod 2^64
    silently; in place, it runs about three times as fast)."""
    z ^= z >> np.uint64(30)
    z *= _MIX_1
    z ^= z >> np.uint64(27)
    z *= _MIX_2
    z ^= z >> np.uint64(31)
    return z


def _scale(z: np.ndarray, m: Any) -> np.ndarray:
    """floor(z * m / 2^64) for m < 2^32, from 32-bit halves: no partial sum reaches 2^64."""
    m = np.asarray(m, dtype=np.uint64)
    high = (z >> np.uint64(32)) * m
    low = ((z & _LOW_32) * m) >> np.uint64(32)
    return (high + low) >> np.uint64(32)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer in [0, 2**64), got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def _check_count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _empty(shape: tuple[int, int], dtype: Any, sized_by: str) -> np.ndarray:
    """np.empty(shape, dtype), with errors that name the argument (`sized_by`, "name = value")
    that asked for that size: NumPy's own say only "array is too big" or give a shape."""
    nbytes = shape[0] * shape[1] * np.dtype(dtype).itemsize
    size = f"an array of shape {shape} ({nbytes / 2**30:.3g} GiB)"
    if nbytes > np.iinfo(np.intp).max:
        raise ValueError(f"{sized_by} is too large: the result would be {size}")
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        raise MemoryError(f"{sized_by} is too large: {size} does not fit in memory") from None


def _strata_layout(strata: Any, n: int) -> np.ndarray | None:
    """Strata labels as the kernel reads them: rows order, start, size of a (3, n) int64 array.

    order lists the positions stratum by stratum, ascending within each; position j draws from
    order[start[j] : start[j] + size[j]], the positions of its own stratum.
    """
    if strata is None:
        return None
    if is_tensor(strata) or isinstance(strata, np.ndarray):
        labels, _ = host_array(strata, "strata")
    else:
        try:
            labels = np.asarray(strata)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"strata must be n integer labels: {exc}") from None
    if labels.dtype.kind not in "iu":
        raise TypeError(f"strata must be integer labels, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(
            f"strata must be 1-D with one label per score (shape ({n},)), got shape {labels.shape}"
        )
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(n)
    order = np.argsort(inverse, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    layout = np.empty((3, n), dtype=np.int64)
    layout[0] = order
    layout[1] = offsets[inverse]
    layout[2] = counts[inverse]
    return layout


def _indices(n: int, n_resamples: int, seed: int, start: int, layout: np.ndarray | None):
    """Indices of resamples start .. start + n_resamples - 1 as an (n_resamples, n) array."""
    seed_mix = _mix(np.array([seed], dtype=np.uint64))
    keys = _mix(seed_mix + np.arange(start, start + n_resamples, dtype=np.uint64))
    steps = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
    z = _mix(keys[:, None] + steps[None, :])
    if layout is None:
        return _scale(z, n).astype(np.int64)
    order, first, size = layout
    return order[first + _scale(z, size).astype(np.int64)]


def bootstrap_indices(
    n: int, n_resamples: int, *, seed: Any = 0, start: int = 0, strata: Any = None
) -> np.ndarray:
    """The indices of bootstrap resamples ``start .. start + n_resamples - 1``, in NumPy.

    The same stream as :func:`bootstrap_means` (see the module's docstring): row r holds the n
    indices of resample ``start + r``, so ``data[..., idx].mean(-1)`` equals its means up to
    summation order, and ``start`` lets a long run be made in chunks.

    Args:
        n: number of scores, 1 <= n < 2**32.
        n_resamples: number of resamples (rows), >= 1.
        seed: integer in [0, 2**64) (Python or NumPy).
        start: index of the first resample, >= 0.
        strata: optional n integer labels; each resample then draws, for each position, from
            the positions that share its label.

    Returns:
        int64 array of shape (n_resamples, n).

    Raises:
        TypeError: a count, the seed or the labels are not integers.
        ValueError: a count or the seed is out of range, strata has the wrong shape, or the
            result would exceed the address space.
        MemoryError: the result does not fit in memory (the message names n and n_resamples).

    Example:
        >>> idx = bootstrap_indices(5, 3, seed=7)
        >>> idx.shape, bool(((0 <= idx) & (idx < 5)).all())
        ((3, 5), True)
        >>> bool((bootstrap_indices(5, 2, seed=7, start=1) == idx[1:]).all())
        True
        >>> labels = [0, 0, 1, 1, 1]  # positions 0-1 draw from {0, 1}, 2-4 from {2, 3, 4}
        >>> s = bootstrap_indices(5, 100, strata=labels)
        >>> bool((s[:, :2] < 2).all() and (s[:, 2:] >= 2).all())
        True
    """
    n = _check_count(n, "n", 1)
    if n > _MAX_POPULATION:
        raise ValueError(f"n must be below 2**32, got {n}")
    n_resamples = _check_count(n_resamples, "n_resamples", 1)
    start = _check_count(start, "start", 0)
    if start + n_resamples > 2**64:
        raise ValueError(f"resamples are numbered below 2**64; start = {start} is too large")
    seed, layout = _check_seed(seed), _strata_layout(strata, n)
    sizes = f"n = {n} and n_resamples = {n_resamples} are"
    if n_resamples * n * 8 > np.iinfo(np.intp).max:
        raise ValueError(
            f"{sizes} too large: the result would be an array of shape ({n_resamples}, {n})"
        )
    try:
        return _indices(n, n_resamples, seed, start, layout)
    except MemoryError:
        raise MemoryError(
            f"{sizes} too large: the ({n_resamples}, {n}) indices and their intermediates "
            "do not fit in memory"
        ) from None


# ---- reference: plain NumPy ---------------------------------------------------------------


def _lane_means(gathered: np.ndarray) -> np.ndarray:
    """Means over the last axis, summed in the kernel's order: lane j mod 4, each lane in
    increasing j (cumsum is a strict left-to-right recurrence), then (l0 + l1) + (l2 + l3)."""
    n = gathered.shape[-1]
    padded = -(-n // _LANES) * _LANES
    if padded != n:  # -0.0 is the exact identity of addition, signed zeros included
        pad = np.full((*gathered.shape[:-1], padded - n), -0.0)
        gathered = np.concatenate((gathered, pad), axis=-1)
    lanes = gathered.reshape(*gathered.shape[:-1], padded // _LANES, _LANES)
    sums = np.cumsum(lanes, axis=-2)[..., -1, :]
    return ((sums[..., 0] + sums[..., 1]) + (sums[..., 2] + sums[..., 3])) / n


def _reference_rows(
    rows: np.ndarray, n_resamples: int, seed: int, layout: np.ndarray | None
) -> np.ndarray:
    """(n_resamples, k) means of the rows of a (k, n) float64 matrix, a chunk at a time."""
    k, n = rows.shape
    out = _empty((n_resamples, k), np.float64, f"n_resamples = {n_resamples}")
    chunk = max(1, _CHUNK_VALUES // (n * k))
    for first in range(0, n_resamples, chunk):
        count = min(chunk, n_resamples - first)
        idx = _indices(n, count, seed, first, layout)
        out[first : first + count] = _lane_means(rows.take(idx, axis=1)).T
    return out


def bootstrap_means_reference(
    data: Any, n_resamples: int, *, seed: Any = 0, strata: Any = None
) -> np.ndarray:
    """Reference: gather each chunk of resamples with :func:`bootstrap_indices` and sum in the
    kernel's order (see the module's docstring); takes what :func:`bootstrap_means` takes and
    returns NumPy."""
    rows, n_resamples, seed, layout, info = _prepare(data, n_resamples, seed, strata)
    out = _reference_rows(rows, n_resamples, seed, layout)
    return out[:, 0] if len(info.shape) == 1 else out


# ---- backends ---------------------------------------------------------------------------


def _means_reference(rows: np.ndarray, n_resamples: int, seed: int, layout: Any) -> np.ndarray:
    return _reference_rows(rows, n_resamples, seed, layout)


def _means_cpu(rows: np.ndarray, n_resamples: int, seed: int, layout: Any) -> np.ndarray:
    out = _empty((n_resamples, rows.shape[0]), np.float64, f"n_resamples = {n_resamples}")
    native().bootstrap_means(rows, n_resamples, seed, layout, 0, out)
    return out


_MEANS_OP = register_op("bootstrap_means", {"reference": _means_reference, "cpu": _means_cpu})


# ---- input checks -----------------------------------------------------------------------


def _prepare(
    data: Any, n_resamples: Any, seed: Any, strata: Any
) -> tuple[np.ndarray, int, int, np.ndarray | None, ArrayInfo]:
    """Check every argument; return data as a (k, n) float64 host copy and the strata layout."""
    data, info = as_array(data, "data")
    if info.dtype not in REAL_DTYPES:
        raise TypeError(
            f"data has dtype {info.dtype}; expected real numbers (a float or integer dtype)"
        )
    if len(info.shape) not in (1, 2):
        raise ValueError(
            f"data must be 1-D (n scores) or 2-D (k rows of n paired scores), got shape "
            f"{info.shape}"
        )
    n = info.shape[-1]
    if n == 0 or info.shape[0] == 0:
        raise ValueError(f"data is empty (shape {info.shape}); it needs n >= 1 scores per row")
    if n > _MAX_POPULATION:
        raise ValueError(f"data has n = {n} scores per row; at most 2**32 - 1 are supported")
    n_resamples = _check_count(n_resamples, "n_resamples", 1)
    seed = _check_seed(seed)
    rows = host_array(data, "data", np.float64)[0].reshape(-1, n)
    finite = np.isfinite(rows)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        row, col = np.argwhere(~finite)[0]
        where = f"index {col}" if len(info.shape) == 1 else f"row {row}, index {col}"
        raise ValueError(
            f"data has {bad} non-finite value{'s' if bad > 1 else ''} (NaN or inf); the first "
            f"is {rows[row, col]} at {where}"
        )
    return rows, n_resamples, seed, _strata_layout(strata, n), info


# ---- public function ----------------------------------------------------------------------


def bootstrap_means(
    data: Any,
    n_resamples: int,
    *,
    seed: Any = 0,
    strata: Any = None,
    backend: str | None = None,
) -> Any:
    """The mean of every row of `data` over each of `n_resamples` bootstrap resamples.

    Rows are paired: every row of a resample is taken at the same indices, so the spread of
    ``means[:, 0] - means[:, 1]`` is that of the paired difference. The resamples are those of
    :func:`bootstrap_indices` with the same `seed` and `strata`, whatever the backend and the
    thread count.

    Args:
        data: n scores (1-D) or k rows of n paired scores (2-D), NumPy or torch, any real dtype
            (taken as float64), all finite; 1 <= n < 2**32.
        n_resamples: number of resamples, >= 1.
        seed: integer in [0, 2**64) (Python or NumPy).
        strata: optional n integer labels (any values, in any order): each resample then draws,
            within every stratum, as many indices as it has, uniformly from that stratum.
        backend: force ``"cpu"`` (C++/OpenMP) or ``"reference"`` (NumPy); by default host data
            takes ``cpu``.

    Returns:
        float64 means of shape (n_resamples, k), or (n_resamples,) for 1-D data, of the same
        library as `data`.

    Raises:
        TypeError: `data` is not a NumPy array or torch tensor of real numbers, or a count,
            the seed or the strata labels are not integers.
        ValueError: `data` is not 1-D or 2-D, is empty, or holds NaN or inf (the message says
            how many and where the first is); `n_resamples` < 1 or so large that the result
            would exceed the address space; the seed is out of range; `strata` does not have
            n labels.
        MemoryError: the result does not fit in memory (the message names `n_resamples`), or
            `data` is a view (``np.broadcast_to``) too large to copy.

    Example:
        >>> import numpy as np
        >>> scores = np.array([[0.9, 0.7, 0.8, 0.6], [0.8, 0.7, 0.6, 0.6]])  # two methods
        >>> means = bootstrap_means(scores, 1000, seed=1)
        >>> means.shape
        (1000, 2)
        >>> diff = means[:, 0] - means[:, 1]
        >>> bool(diff.min() >= 0.0)  # method 0 never scores below method 1 on a task
        True
        >>> bool((means == bootstrap_means_reference(scores, 1000, seed=1)).all())
        True
    """
    rows, n_resamples, seed, layout, info = _prepare(data, n_resamples, seed, strata)
    impl = _MEANS_OP.select(info, backend)
    out = impl(rows, n_resamples, seed, layout)
    if len(info.shape) == 1:
        out = out[:, 0]
    return like_input(out, info, getattr(data, "device", None))

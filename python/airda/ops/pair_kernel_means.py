"""pair_kernel_means: the means of a pairwise kernel over X x Y, X x X and Y x Y, and the two-sample
statistics built on them, :func:`energy_distance` and :func:`mmd`.

For samples X (n x d) and Y (m x d) and a kernel k, the op returns the three V-statistic means
(diagonals included)::

    [mean_ij k(x_i, y_j), mean_ij k(x_i, x_j), mean_ij k(y_i, y_j)]

with k(a, b) = |a - b| (``kernel="distance"``) or exp(-gamma |a - b|^2) (``kernel="rbf"``).
Then the energy statistic is ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (Szekely and Rizzo; in one
dimension it is the square of :func:`scipy.stats.energy_distance`) and the squared MMD with an
RBF kernel is ``E k(X,X') + E k(Y,Y') - 2 E k(X,Y)`` (Gretton et al., JMLR 2012).

Every backend works in float64 on chunks of rows and never holds an n x m matrix; the work is
O(n m d), so these suit samples up to some 10^5 rows on a CPU.

Example:
    >>> import numpy as np
    >>> from airda.ops import energy_distance, mmd
    >>> x = np.array([[0.0], [1.0]])
    >>> round(energy_distance(x, x + 1.0), 6), round(mmd(x, x), 6)
    (1.0, 0.0)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import REAL_DTYPES, ArrayInfo, as_array, host_numpy, like_input
from airda.ops._registry import register_op
from airda.ops.knn_distances import _require_finite, _torch_view

__all__ = [
    "energy_distance",
    "median_heuristic_gamma",
    "mmd",
    "pair_kernel_means",
    "pair_kernel_means_reference",
]

KERNELS = ("distance", "rbf")
# Rows the median heuristic looks at (evenly spaced over the pooled sample).
_MEDIAN_ROWS = 1000
_REFERENCE_PAIRS = 1 << 20


# ---- reference: plain NumPy, chunked -------------------------------------------------------


def _mean_host(a: np.ndarray, b: np.ndarray, kernel: str, gamma: float, same: bool) -> float:
    n, d = a.shape
    m = b.shape[0]
    chunk = max(1, _REFERENCE_PAIRS // m)
    rows = np.empty(n)
    for i0 in range(0, n, chunk):
        sub = a[i0 : i0 + chunk]
        acc = np.zeros((sub.shape[0], m))
        for c in range(d):
            diff = sub[:, c, None] - b[None, :, c]
            acc += diff * diff
        k = np.sqrt(acc) if kernel == "distance" else np.exp(-gamma * acc)
        rows[i0 : i0 + chunk] = k.sum(axis=1)
    total = float(rows.sum())
    return total / (n * m)


def _reference_host(x: np.ndarray, y: np.ndarray, kernel: str, gamma: float) -> np.ndarray:
    return np.array(
        [
            _mean_host(x, y, kernel, gamma, False),
            _mean_host(x, x, kernel, gamma, True),
            _mean_host(y, y, kernel, gamma, True),
        ]
    )


def pair_kernel_means_reference(
    x: Any, y: Any, kernel: str = "distance", *, gamma: float | None = None
) -> np.ndarray:
    """Reference of :func:`pair_kernel_means` (same arguments, NumPy result)."""
    x, y, kernel, gamma, _ = _check(x, y, kernel, gamma)
    return _reference_host(_host64(x), _host64(y), kernel, gamma)


# ---- backends ------------------------------------------------------------------------------


def _host64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(host_numpy(a), dtype=np.float64)


def _reference(x: Any, y: Any, kernel: str, gamma: float, info: ArrayInfo) -> Any:
    out = _reference_host(_host64(x), _host64(y), kernel, gamma)
    return like_input(out, info, getattr(x, "device", None))


def _cpu(x: Any, y: Any, kernel: str, gamma: float, info: ArrayInfo) -> Any:
    out = np.empty(3, dtype=np.float64)
    native().pair_kernel_means(_host64(x), _host64(y), kernel, gamma, out)
    return like_input(out, info)


def _cuda(x: Any, y: Any, kernel: str, gamma: float, info: ArrayInfo) -> Any:
    import torch

    x = x.detach().to(torch.float64).contiguous()
    y = y.detach().to(torch.float64).contiguous()
    stream = torch.cuda.current_stream(x.device).cuda_stream
    means = []
    for a, b, same in ((x, y, False), (x, x, True), (y, y, True)):
        rows = torch.empty(a.shape[0], dtype=torch.float64, device=x.device)
        native().cuda_pair_kernel_row_sums(
            a.data_ptr(),
            a.shape[0],
            b.data_ptr(),
            b.shape[0],
            a.shape[1],
            same,
            kernel,
            gamma,
            rows.data_ptr(),
            x.device.index,
            stream,
        )
        total = rows.sum()
        if same:
            total = 2.0 * total + (a.shape[0] if kernel == "rbf" else 0.0)
        means.append(total / (a.shape[0] * b.shape[0]))
    return torch.stack(means)


def _triton(x: Any, y: Any, kernel: str, gamma: float, info: ArrayInfo) -> Any:
    from airda.kernels.pair_kernel_means import pair_kernel_means_triton

    return like_input(pair_kernel_means_triton(_torch_view(x), _torch_view(y), kernel, gamma), info)


_OP = register_op(
    "pair_kernel_means", {"reference": _reference, "cpu": _cpu, "cuda": _cuda, "triton": _triton}
)


# ---- input checks --------------------------------------------------------------------------


def _matrix(a: Any, name: str) -> tuple[Any, ArrayInfo]:
    a, info = as_array(a, name)
    if info.dtype not in REAL_DTYPES:
        raise TypeError(f"{name} has dtype {info.dtype}; expected real numbers (float32/float64)")
    if len(info.shape) != 2:
        raise ValueError(f"{name} must be 2-D (rows x columns), got shape {info.shape}")
    if info.shape[0] == 0 or info.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {info.shape}); it needs rows and columns")
    _require_finite(a, info, name)
    return a, info


def _check(x: Any, y: Any, kernel: Any, gamma: Any):
    x, x_info = _matrix(x, "x")
    y, y_info = _matrix(y, "y")
    if (x_info.lib, x_info.device) != (y_info.lib, y_info.device):
        raise ValueError(
            f"x and y must live in the same place: x is {x_info.where}, y is {y_info.where}"
        )
    if x_info.shape[1] != y_info.shape[1]:
        raise ValueError(
            f"x has {x_info.shape[1]} columns but y has {y_info.shape[1]}; "
            "they must have the same columns"
        )
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "distance":
        if gamma is not None:
            raise ValueError("gamma is for kernel='rbf' only; leave it None for 'distance'")
        gamma = 0.0
    else:
        if gamma is None:
            raise ValueError("kernel='rbf' needs gamma (see median_heuristic_gamma)")
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
            raise TypeError(f"gamma must be a number, got {type(gamma).__name__}")
        gamma = float(gamma)
        if not (math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, got {gamma}")
    return x, y, kernel, gamma, x_info


def pair_kernel_means(
    x: Any,
    y: Any,
    kernel: str = "distance",
    *,
    gamma: float | None = None,
    backend: str | None = None,
) -> Any:
    """The means of a pairwise kernel over X x Y, X x X and Y x Y (diagonals included).

    Args:
        x: n x d real array (NumPy or torch; host or CUDA).
        y: m x d real array of the same kind and place.
        kernel: ``"distance"`` (|a - b|, Euclidean) or ``"rbf"`` (exp(-gamma |a - b|^2)).
        gamma: the RBF's inverse width (``kernel="rbf"`` only; > 0).
        backend: force ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"reference"``.

    Returns:
        float64 array ``[E k(X, Y), E k(X, X'), E k(Y, Y')]``, same library and device as `x`.

    Raises:
        TypeError: non-real dtypes, a non-numeric gamma.
        ValueError: not 2-D, empty, columns differ, NaN or infinite values (the row is named),
            an unknown kernel, gamma missing, not > 0, or given for the distance kernel.

    Example:
        >>> import numpy as np
        >>> pair_kernel_means(np.array([[0.0], [2.0]]), np.array([[1.0]])).tolist()
        [1.0, 1.0, 0.0]
    """
    x, y, kernel, gamma, info = _check(x, y, kernel, gamma)
    return _OP.select(info, backend)(x, y, kernel, gamma, info)


def energy_distance(x: Any, y: Any, *, backend: str | None = None) -> float:
    """The energy statistic ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` of two samples (>= 0; 0 iff the
    empirical distributions are equal).

    In one dimension this is the square of :func:`scipy.stats.energy_distance`. Arguments as
    :func:`pair_kernel_means`.

    Example:
        >>> import numpy as np
        >>> energy_distance(np.array([[0.0]]), np.array([[3.0]]))
        6.0
    """
    xy, xx, yy = (float(v) for v in pair_kernel_means(x, y, "distance", backend=backend))
    return 2.0 * xy - xx - yy


def median_heuristic_gamma(x: Any, y: Any) -> float:
    """``1 / (2 median^2)``, the median of the pairwise distances of the pooled rows of `x` and
    `y` (at most 1000 rows, evenly spaced, when there are more); zero distances are left out,
    and 1.0 is returned when every distance is zero."""
    x, y = as_array(x, "x")[0], as_array(y, "y")[0]
    n, total = x.shape[0], x.shape[0] + y.shape[0]
    rows = np.arange(total)
    if total > _MEDIAN_ROWS:
        rows = np.linspace(0, total - 1, _MEDIAN_ROWS).astype(np.int64)
    # Only the chosen rows leave the device.
    xs = np.asarray(host_numpy(x[rows[rows < n]]), dtype=np.float64)
    ys = np.asarray(host_numpy(y[rows[rows >= n] - n]), dtype=np.float64)
    z = np.concatenate([xs, ys])
    sq = np.zeros((z.shape[0], z.shape[0]))
    for c in range(z.shape[1]):
        diff = z[:, c, None] - z[None, :, c]
        sq += diff * diff
    dist = np.sqrt(sq[np.triu_indices(z.shape[0], 1)])
    dist = dist[dist > 0]
    if dist.size == 0:
        return 1.0
    median = float(np.median(dist))
    return 1.0 / (2.0 * median * median)


def mmd(
    x: Any,
    y: Any,
    gamma: float | None = None,
    *,
    unbiased: bool = False,
    backend: str | None = None,
) -> float:
    """Squared maximum mean discrepancy of two samples with the RBF kernel exp(-gamma |a-b|^2).

    Args:
        x, y: samples as in :func:`pair_kernel_means`.
        gamma: the kernel's inverse width; None: :func:`median_heuristic_gamma`.
        unbiased: the U-statistic (pairs of a row with itself left out of E k(X, X') and
            E k(Y, Y'); can be negative, needs two rows each) instead of the V-statistic.
        backend: force a backend of :func:`pair_kernel_means`.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [1.0]])
        >>> round(mmd(x, x + 10.0, gamma=0.5), 6)
        1.606531
    """
    if gamma is None:
        _check(x, y, "distance", None)  # clear errors before the heuristic reads the data
        gamma = median_heuristic_gamma(x, y)
    xy, xx, yy = (float(v) for v in pair_kernel_means(x, y, "rbf", gamma=gamma, backend=backend))
    if not unbiased:
        return xx + yy - 2.0 * xy
    n, m = as_array(x, "x")[1].shape[0], as_array(y, "y")[1].shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"unbiased=True needs at least 2 rows in x and y, got {n} and {m}")
    # Leave out the diagonal, where the RBF kernel is 1.
    xx_u = (xx * n * n - n) / (n * (n - 1))
    yy_u = (yy * m * m - m) / (m * (m - 1))
    return xx_u + yy_u - 2.0 * xy

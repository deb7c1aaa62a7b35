"""knn_distances: exact k-nearest-neighbour Euclidean distances, streamed in chunks.

For each query row ``q_i`` the ``k`` rows of `data` nearest to it, as ``(distances, indices)``
of shape ``(n, k)``: float64 distances ``sqrt(sum_c (q_ic - x_jc)**2)`` sorted ascending, ties
broken by the lower data index. With ``exclude_self=True`` queries and data are the same rows
(leave-one-out): row i never counts as its own neighbour, by index, while an identical row at
another index does (distance 0). This is what distance-to-closest-record (DCR) and other privacy
metrics of synthetic data need.

No backend ever holds an ``n x m`` matrix: the reference works on chunks of queries and data
with a running top-k; the ``cpu`` backend (C++/OpenMP) finds candidates with a blocked
low-precision product ``|x|^2 + |y|^2 - 2 x.y`` (float32, or bfloat16 dot products where the CPU
has them) lowered by a bound of its rounding error, and recomputes the distance of every
candidate exactly in float64, in the same order as the reference (column by column), so that its
distances are the reference's bit for bit. ``cuda`` and ``triton`` compute every distance
directly in float64 without fused multiply-adds (``triton``: k <= 64). Memory: the inputs, a
packed float32 copy of `data` (``cpu``), the outputs and a chunk.

Example:
    >>> import numpy as np
    >>> from airda.ops import knn_distances
    >>> data = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    >>> d, i = knn_distances(np.array([[0.0, 1.0]]), data, k=2)
    >>> d.round(4).tolist(), i.tolist()
    ([[1.0, 1.4142]], [[0, 2]])
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import REAL_DTYPES, ArrayInfo, as_array, host_numpy, like_input
from airda.ops._registry import register_op

__all__ = ["knn_distances", "knn_distances_reference"]

# The reference holds at most this many float64 pairwise values at once (8 MB).
_REFERENCE_PAIRS = 1 << 20
_REFERENCE_QUERY_CHUNK = 256


# ---- reference: plain NumPy, streamed ------------------------------------------------------


def _reference_host(q: np.ndarray, x: np.ndarray, k: int, exclude_self: bool):
    """Top-k of float64 host arrays, chunk by chunk: a running (distance, index) top-k per query,
    merged with each data chunk by a lexicographic sort. Squared distances are summed column by
    column (the order the compiled backends use)."""
    n, d = q.shape
    m = x.shape[0]
    out_d = np.empty((n, k), dtype=np.float64)
    out_i = np.empty((n, k), dtype=np.int64)
    q_chunk = min(n, _REFERENCE_QUERY_CHUNK)
    x_chunk = max(k, _REFERENCE_PAIRS // q_chunk)
    for q0 in range(0, n, q_chunk):
        qs = q[q0 : q0 + q_chunk]
        rows = qs.shape[0]
        # Placeholders: infinite distance and index m (past every real row), so they lose ties.
        best_d = np.full((rows, k), np.inf)
        best_i = np.full((rows, k), m, dtype=np.int64)
        for x0 in range(0, m, x_chunk):
            xs = x[x0 : x0 + x_chunk]
            acc = np.zeros((rows, xs.shape[0]))
            for c in range(d):
                diff = qs[:, c, None] - xs[None, :, c]
                acc += diff * diff
            idx = np.broadcast_to(np.arange(x0, x0 + xs.shape[0], dtype=np.int64), acc.shape)
            if exclude_self:
                self_col = np.arange(q0, q0 + rows) - x0
                hit = (self_col >= 0) & (self_col < xs.shape[0])
                idx = idx.copy()
                acc[hit.nonzero()[0], self_col[hit]] = np.inf
                idx[hit.nonzero()[0], self_col[hit]] = m + 1  # after the placeholders
            all_d = np.concatenate([best_d, acc], axis=1)
            all_i = np.concatenate([best_i, idx], axis=1)
            order = np.lexsort((all_i, all_d))[:, :k]
            best_d = np.take_along_axis(all_d, order, axis=1)
            best_i = np.take_along_axis(all_i, order, axis=1)
        out_d[q0 : q0 + rows] = np.sqrt(best_d)
        out_i[q0 : q0 + rows] = best_i
    return out_d, out_i


def knn_distances_reference(
    queries: Any, data: Any, k: int = 1, *, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Reference of :func:`knn_distances` (same arguments, NumPy results), in float64."""
    q, x, k, _ = _check(queries, data, k, exclude_self)
    return _reference_host(_host64(q), _host64(x), k, exclude_self)


# ---- backends ------------------------------------------------------------------------------


def _host64(a: Any) -> np.ndarray:
    return np.asarray(host_numpy(a), dtype=np.float64)


def _reference(q: Any, x: Any, k: int, exclude_self: bool, info: ArrayInfo):
    dist, idx = _reference_host(_host64(q), _host64(x), k, exclude_self)
    device = getattr(q, "device", None)
    return like_input(dist, info, device), like_input(idx, info, device)


def _host_native(a: Any) -> np.ndarray:
    """A host float32/float64 view (any strides the kernel can step by) or a float64 copy."""
    h = host_numpy(a)
    if h.dtype not in (np.float32, np.float64):
        h = h.astype(np.float64)
    if any(s % h.itemsize for s in h.strides):
        h = np.ascontiguousarray(h)
    return h


def _cpu(q: Any, x: Any, k: int, exclude_self: bool, info: ArrayInfo):
    hq, hx = _host_native(q), _host_native(x)
    if hq.dtype != hx.dtype:
        hq, hx = hq.astype(np.float64), hx.astype(np.float64)
    n = hq.shape[0]
    dist = np.empty((n, k), dtype=np.float64)
    idx = np.empty((n, k), dtype=np.int64)
    native().knn_distances(hq, hx, k, exclude_self, dist, idx)
    return like_input(dist, info), like_input(idx, info)


def _device_float(a: Any) -> Any:
    import torch

    if a.dtype not in (torch.float32, torch.float64):
        a = a.to(torch.float64)
    return a.contiguous()


def _cuda(q: Any, x: Any, k: int, exclude_self: bool, info: ArrayInfo):
    import torch

    q, x = _device_float(q), _device_float(x)
    if q.dtype != x.dtype:
        q, x = q.to(torch.float64), x.to(torch.float64)
    n, d = q.shape
    m = x.shape[0]
    dist = torch.empty((n, k), dtype=torch.float64, device=q.device)
    idx = torch.empty((n, k), dtype=torch.int64, device=q.device)
    stream = torch.cuda.current_stream(q.device).cuda_stream
    native().cuda_knn_distances(
        q.data_ptr(),
        x.data_ptr(),
        q.dtype == torch.float32,
        n,
        m,
        d,
        k,
        exclude_self,
        dist.data_ptr(),
        idx.data_ptr(),
        q.device.index,
        stream,
    )
    return dist, idx


def _torch_view(a: Any) -> Any:
    """`a` as a torch tensor (NumPy arrays with negative strides, which torch cannot view,
    are copied)."""
    from airda.ops._arrays import to_torch

    if isinstance(a, np.ndarray) and any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)
    return to_torch(a)


def _triton(q: Any, x: Any, k: int, exclude_self: bool, info: ArrayInfo):
    from airda.kernels.knn_distances import knn_distances_triton

    dist, idx = knn_distances_triton(_torch_view(q), _torch_view(x), k, exclude_self)
    return like_input(dist, info), like_input(idx, info)


_OP = register_op(
    "knn_distances", {"reference": _reference, "cpu": _cpu, "cuda": _cuda, "triton": _triton}
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
    return a, info


def _require_finite(a: Any, info: ArrayInfo, name: str) -> None:
    """Refuse NaN and infinities, naming the first row; a view too large to scan (a huge
    broadcast) is refused as not fitting in memory."""
    try:
        _scan_finite(a, info, name)
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
            raise
        raise MemoryError(
            f"{name} of shape {info.shape} is too large to scan for NaN here: {exc}"
        ) from None


def _scan_finite(a: Any, info: ArrayInfo, name: str) -> None:
    if info.lib == "torch":
        import torch

        bad = ~torch.isfinite(a.detach()).all(dim=1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(f"{name} has NaN or infinite values (first in row {row})")
        return
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} has NaN or infinite values (first in row {int(bad.argmax())})")


def _check(queries: Any, data: Any, k: Any, exclude_self: Any):
    q, q_info = _matrix(queries, "queries")
    x, x_info = _matrix(data, "data")
    if (q_info.lib, q_info.device) != (x_info.lib, x_info.device):
        raise ValueError(
            f"queries and data must live in the same place: queries is {q_info.where}, "
            f"data is {x_info.where}"
        )
    if q_info.shape[1] != x_info.shape[1]:
        raise ValueError(
            f"queries has {q_info.shape[1]} columns but data has {x_info.shape[1]}; "
            "they must have the same columns"
        )
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not isinstance(exclude_self, bool | np.bool_):
        raise TypeError(f"exclude_self must be a bool, got {type(exclude_self).__name__}")
    k, exclude_self = int(k), bool(exclude_self)
    m = x_info.shape[0]
    if exclude_self and q_info.shape != x_info.shape:
        raise ValueError(
            f"exclude_self=True needs queries to be data (row i of queries is row i of data), "
            f"but queries has shape {q_info.shape} and data {x_info.shape}"
        )
    available = m - 1 if exclude_self else m
    if not 1 <= k <= available:
        extra = " minus one for exclude_self" if exclude_self else ""
        raise ValueError(f"k must be in [1, {available}] (the rows of data{extra}), got {k}")
    _require_finite(q, q_info, "queries")
    if not exclude_self or x is not q:
        _require_finite(x, x_info, "data")
    return q, x, k, q_info


def knn_distances(
    queries: Any,
    data: Any,
    k: int = 1,
    *,
    exclude_self: bool = False,
    backend: str | None = None,
) -> tuple[Any, Any]:
    """The `k` nearest rows of `data` to each row of `queries`, by exact Euclidean distance.

    Memory stays proportional to the inputs plus a chunk, never ``n x m``: a million queries
    against a million rows stream through.

    Args:
        queries: n x d real array (float32 or float64 best; other real dtypes are converted),
            NumPy or torch, C-contiguous or strided, on the host or (torch) a CUDA device.
        data: m x d array of the same kind and place as `queries`.
        k: neighbours per query, 1 <= k <= m (m - 1 with `exclude_self`).
        exclude_self: queries are data (same shape, row i is row i): leave each row out of its
            own neighbours, by index (an identical row elsewhere still counts, at distance 0).
        backend: force ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"reference"``.

    Returns:
        ``(distances, indices)``: n x k float64 distances sorted ascending and the int64 row
        indices into `data`, ties broken by the lower index; same library and device as
        `queries`.

    Raises:
        TypeError: an input is not a real array, `k` is not an int, `exclude_self` not a bool.
        ValueError: not 2-D, empty, columns differ, k out of range, inputs in different places,
            NaN or infinite values (the message names the first such row).

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [1.0], [1.0], [5.0]])
        >>> d, i = knn_distances(x, x, k=1, exclude_self=True)
        >>> d.ravel().tolist(), i.ravel().tolist()
        ([1.0, 0.0, 0.0, 4.0], [1, 2, 1, 1])
    """
    q, x, k, info = _check(queries, data, k, exclude_self)
    return _OP.select(info, backend)(q, x, k, bool(exclude_self), info)

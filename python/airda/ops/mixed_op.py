"""mixed_op: the fused DARTS mixed operation, forward and backward.

Given the K candidate outputs of an edge stacked as ``ys`` (shape ``(K, *S)``) and the edge's
architecture logits ``alpha`` (shape ``(K,)``), with ``w = softmax(alpha)``::

    out           = sum_k w_k ys[k]                           shape S
    grad_ys[k]    = w_k g                                     given g = d loss / d out
    grad_alpha_k  = w_k (s_k - sum_j w_j s_j),  s_k = <g, ys[k]>  (sum over all elements)

The compiled backends read every element once per pass; the unfused expression
``(softmax(alpha)[:, None, ...] * ys).sum(0)`` materialises the K weighted copies and, under
autograd, saves and re-reads them. The softmax is taken with its maximum subtracted, in float64
in the C++, CUDA and Triton kernels; the dot products s_k are summed in float64 in a fixed order
(chunks of 4096 elements, added in order), so the C++ result does not depend on the thread count,
and the GPU results depend on the shape only (no atomics). On the GPU, forward is one launch and
backward two (the main pass, then one program adding the per-program partial sums).
NaN (or an infinite logit) propagates as in the plain expression.

Inputs are float32 or float64, all of one dtype, one library (NumPy or torch) and one device.
Non-contiguous inputs are copied to contiguous memory first (autograd hands over expanded,
zero-stride gradients, so refusing them would only move the copy to every caller).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import ArrayInfo, as_array, contiguous, like_input
from airda.ops._registry import _AUTO_ORDER as _AUTO
from airda.ops._registry import register_op

__all__ = [
    "mixed_op_backward",
    "mixed_op_backward_reference",
    "mixed_op_forward",
    "mixed_op_forward_reference",
]

_DTYPES = ("float32", "float64")


# ---- reference: plain NumPy / torch arithmetic --------------------------------------------


def _softmax(alpha: Any) -> Any:
    if isinstance(alpha, np.ndarray):
        e = np.exp(alpha - alpha.max())
    else:
        import torch

        e = torch.exp(alpha - alpha.max())
    return e / e.sum()


def _column(w: Any, ndim: int) -> Any:
    return w.reshape((-1,) + (1,) * (ndim - 1))


def mixed_op_forward_reference(ys: Any, alpha: Any) -> Any:
    """Reference: ``(softmax(alpha)[:, None, ...] * ys).sum(0)`` in the inputs' library."""
    return (_column(_softmax(alpha), ys.ndim) * ys).sum(0)


def mixed_op_backward_reference(ys: Any, alpha: Any, grad_out: Any) -> tuple[Any, Any]:
    """Reference: ``grad_ys = w[:, None, ...] * g``, ``grad_alpha = w * (s - <w, s>)`` with
    ``s_k = (g * ys[k]).sum()``, in the inputs' library."""
    w = _softmax(alpha)
    grad_ys = _column(w, ys.ndim) * grad_out[None]
    s = (ys * grad_out[None]).reshape(ys.shape[0], -1).sum(1)
    return grad_ys, w * (s - (w * s).sum())


# ---- backends: ys as (K, n), alpha (K,), grad_out (n,), all contiguous ---------------------


def _fwd_reference(ys: Any, alpha: Any) -> Any:
    return mixed_op_forward_reference(ys, alpha)


def _bwd_reference(ys: Any, alpha: Any, g: Any) -> tuple[Any, Any]:
    return mixed_op_backward_reference(ys, alpha, g)


def _host(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.detach().numpy()


def _fwd_cpu(ys: Any, alpha: Any) -> Any:
    y = _host(ys)
    out = np.empty(y.shape[1], dtype=y.dtype)
    native().mixed_op_forward(y, _host(alpha), out)
    return out


def _bwd_cpu(ys: Any, alpha: Any, g: Any) -> tuple[Any, Any]:
    y = _host(ys)
    grad_ys = np.empty_like(y)
    grad_alpha = np.empty(y.shape[0], dtype=y.dtype)
    native().mixed_op_backward(y, _host(alpha), _host(g), grad_ys, grad_alpha)
    return grad_ys, grad_alpha


@functools.cache
def _raw_stream() -> Callable[[int], int]:
    """device index -> the handle of torch's current stream there. torch's private
    ``_cuda_getCurrentRawStream`` (what Triton's launcher calls) skips building a Stream
    object per call; torch.cuda.current_stream is the fallback."""
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return raw
    return lambda index: torch.cuda.current_stream(index).cuda_stream


def _stream(t: Any) -> int:
    return _raw_stream()(t.device.index)


def _kind(t: Any) -> str:
    return "float32" if t.element_size() == 4 else "float64"  # the dtypes _DTYPES allows


def _fwd_cuda(ys: Any, alpha: Any) -> Any:
    import torch

    k, n = ys.shape
    out = torch.empty(n, dtype=ys.dtype, device=ys.device)
    native().cuda_mixed_op_forward(
        ys.data_ptr(),
        alpha.data_ptr(),
        _kind(ys),
        k,
        n,
        out.data_ptr(),
        ys.device.index,
        _stream(ys),
    )
    return out


def _bwd_cuda(ys: Any, alpha: Any, g: Any) -> tuple[Any, Any]:
    import torch

    k, n = ys.shape
    grad_ys = torch.empty_like(ys)
    grad_alpha = torch.empty(k, dtype=ys.dtype, device=ys.device)
    work = torch.empty(
        native().mixed_op_cuda_workspace(k, n), dtype=torch.float64, device=ys.device
    )
    native().cuda_mixed_op_backward(
        ys.data_ptr(),
        alpha.data_ptr(),
        g.data_ptr(),
        _kind(ys),
        k,
        n,
        grad_ys.data_ptr(),
        grad_alpha.data_ptr(),
        work.data_ptr(),
        ys.device.index,
        _stream(ys),
    )
    return grad_ys, grad_alpha


def _torch(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        import torch

        return torch.from_numpy(x)
    return x


@functools.cache
def _kernels() -> Any:
    import airda.kernels.mixed_op

    return airda.kernels.mixed_op


def _fwd_triton(ys: Any, alpha: Any) -> Any:
    return _kernels().mixed_op_forward_triton(_torch(ys), _torch(alpha))


def _bwd_triton(ys: Any, alpha: Any, g: Any) -> tuple[Any, Any]:
    return _kernels().mixed_op_backward_triton(_torch(ys), _torch(alpha), _torch(g))


_FORWARD = register_op(
    "mixed_op_forward",
    {"reference": _fwd_reference, "cpu": _fwd_cpu, "cuda": _fwd_cuda, "triton": _fwd_triton},
)
_BACKWARD = register_op(
    "mixed_op_backward",
    {"reference": _bwd_reference, "cpu": _bwd_cpu, "cuda": _bwd_cuda, "triton": _bwd_triton},
)


# ---- input checks -----------------------------------------------------------------------


def _prepare(
    ys: Any, alpha: Any, grad_out: Any = None, *, backward: bool = False
) -> tuple[ArrayInfo, list[Any]]:
    """Check the arguments; return ys's info and [ys (K, n), alpha (K,), grad_out (n,)]
    (grad_out for `backward` only)."""
    ys, info = as_array(ys, "ys")
    if info.dtype not in _DTYPES:
        raise TypeError(f"ys has dtype {info.dtype}; expected float32 or float64")
    if len(info.shape) < 1 or info.shape[0] < 1:
        raise ValueError(
            f"ys must have shape (K, *S) with K >= 1 stacked candidate outputs, got shape "
            f"{info.shape}"
        )
    k, shape = info.shape[0], info.shape[1:]
    args = [(ys, info, "ys")]
    for value, name, expected in ((alpha, "alpha", (k,)), (grad_out, "grad_out", shape)):
        if name == "grad_out" and not backward:
            continue
        value, other = as_array(value, name)
        if (other.lib, other.device) != (info.lib, info.device):
            raise TypeError(f"{name} is {other.where} but ys is {info.where}; pass both alike")
        if other.lib == "torch" and value.device != ys.device:
            raise ValueError(f"{name} is on {value.device} but ys is on {ys.device}")
        if other.dtype != info.dtype:
            raise TypeError(
                f"{name} has dtype {other.dtype} but ys has {info.dtype}; they must match"
            )
        if other.shape != expected:
            what = "one logit per candidate" if name == "alpha" else "the shape of ys[0]"
            raise ValueError(
                f"{name} must have shape {expected} ({what}, K = {k}), got {other.shape}"
            )
        args.append((value, other, name))
    n = int(np.prod(shape, dtype=np.int64))
    flat = []
    for value, arg_info, name in args:
        if arg_info.lib == "torch":
            value = value.detach()  # every backend returns results outside autograd
        value = contiguous(value, arg_info, name)
        if name == "ys":
            value = value.reshape(k, n)
        elif name == "grad_out":
            value = value.reshape(n)
        flat.append(value)
    return info, flat


def _fast_torch(
    op: Any, backend: str | None, ys: Any, alpha: Any, grad_out: Any = None
) -> tuple[Any, list[Any]] | None:
    """The implementation and flat arguments for torch tensors that pass every check, found
    with a few attribute reads (a DARTS step calls this per edge, so the generic checks would
    cost more than the GPU kernels); None sends the call through :func:`_prepare`, whose
    messages name what is wrong."""
    torch = sys.modules.get("torch")
    if torch is None or type(ys) is not torch.Tensor or type(alpha) is not torch.Tensor:
        return None
    dtype, device, dense = ys.dtype, ys.device, torch.strided
    if dtype not in (torch.float32, torch.float64) or ys.dim() < 1 or device.type not in _AUTO:
        return None
    k = ys.shape[0]
    if k < 1 or alpha.dtype != dtype or alpha.device != device or alpha.shape != (k,):
        return None
    if ys.layout != dense or alpha.layout != dense:
        return None
    if grad_out is not None and (
        type(grad_out) is not torch.Tensor
        or grad_out.dtype != dtype
        or grad_out.device != device
        or grad_out.shape != ys.shape[1:]
        or grad_out.layout != dense
    ):
        return None
    impl = op.select(ArrayInfo("torch", device.type, str(dtype)[6:], (), True), backend)
    try:
        flat = [ys.detach().contiguous().view(k, -1), alpha.detach().contiguous()]
        if grad_out is not None:
            flat.append(grad_out.detach().contiguous().view(-1))
    except RuntimeError:  # a copy that does not fit: _prepare's message names the argument
        return None
    return impl, flat


def _as_torch(x: Any) -> Any:
    return _torch(x) if isinstance(x, np.ndarray) else x


# ---- public functions -------------------------------------------------------------------


def mixed_op_forward(ys: Any, alpha: Any, *, backend: str | None = None) -> Any:
    """The DARTS mixed operation ``sum_k softmax(alpha)_k * ys[k]`` in one pass.

    Args:
        ys: the K candidate outputs stacked, shape ``(K, *S)``, K >= 1: a NumPy array or torch
            tensor of float32 or float64, on the CPU or a CUDA device (copied first if it is
            not contiguous).
        alpha: the K architecture logits, shape ``(K,)``, same library, dtype and device.
        backend: force ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"reference"``; by default the
            fastest usable backend for where `ys` lives (also settable with ``AIRDA_BACKEND``).

    Returns:
        The weighted sum, shape ``S``, of the same library, dtype and device as `ys`.

    Raises:
        TypeError: an argument is not an array, not float32/float64, or the dtypes, libraries
            or devices differ.
        ValueError: `ys` has no candidates, or `alpha` is not of shape ``(K,)``.
        BackendUnavailableError: a forced backend cannot run here.

    Example:
        >>> import numpy as np
        >>> ys = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> mixed_op_forward(ys, np.zeros(2)).tolist()  # equal logits: the mean
        [2.0, 3.0]
    """
    fast = _fast_torch(_FORWARD, backend, ys, alpha)
    if fast is not None:
        impl, (y, a) = fast
        return _as_torch(impl(y, a)).view(ys.shape[1:])
    info, (y, a) = _prepare(ys, alpha)
    out = _FORWARD.select(info, backend)(y, a)
    return like_input(out, info).reshape(info.shape[1:])


def mixed_op_backward(
    ys: Any, alpha: Any, grad_out: Any, *, backend: str | None = None
) -> tuple[Any, Any]:
    """Gradients of :func:`mixed_op_forward` with respect to `ys` and `alpha`, in one pass.

    Args:
        ys: as for :func:`mixed_op_forward`, shape ``(K, *S)``.
        alpha: the K logits, shape ``(K,)``.
        grad_out: the gradient of the loss with respect to the output, shape ``S``.
        backend: as for :func:`mixed_op_forward`.

    Returns:
        ``(grad_ys, grad_alpha)`` of shapes ``(K, *S)`` and ``(K,)``, like `ys`.

    Raises:
        TypeError, ValueError, BackendUnavailableError: as for :func:`mixed_op_forward`, and
        when `grad_out` does not have the shape of ``ys[0]``.

    Example:
        >>> import numpy as np
        >>> ys = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> grad_ys, grad_alpha = mixed_op_backward(ys, np.zeros(2), np.ones(2))
        >>> grad_ys.tolist(), grad_alpha.tolist()  # s = (3, 7), <w, s> = 5
        ([[0.5, 0.5], [0.5, 0.5]], [-1.0, 1.0])
    """
    # Without grad_out the fast path would take the call for a forward one.
    fast = None if grad_out is None else _fast_torch(_BACKWARD, backend, ys, alpha, grad_out)
    if fast is not None:
        impl, (y, a, g) = fast
        grad_ys, grad_alpha = impl(y, a, g)
        return _as_torch(grad_ys).view(ys.shape), _as_torch(grad_alpha)
    info, (y, a, g) = _prepare(ys, alpha, grad_out, backward=True)
    grad_ys, grad_alpha = _BACKWARD.select(info, backend)(y, a, g)
    return like_input(grad_ys, info).reshape(info.shape), like_input(grad_alpha, info)

"""The DARTS mixed operation as a differentiable torch function, on airda's fused op.

:func:`mixed_op` computes ``sum_k softmax(alpha)_k * ys[k]`` with :func:`airda.ops.mixed_op_forward`
and differentiates it with :func:`airda.ops.mixed_op_backward`, so that a DARTS cell's edge
costs one pass over its candidate outputs forward and one backward, instead of the K weighted
copies autograd keeps for the unfused expression. The backend follows the tensors: C++ for CPU
tensors, CUDA then Triton for CUDA tensors, the reference where neither can run.

torch is imported when :func:`mixed_op` first runs, not when this module is imported.
"""

from __future__ import annotations

import functools
from typing import Any

from airda.ops.mixed_op import mixed_op_backward, mixed_op_forward

__all__ = ["mixed_op"]

# Dtypes the fused op does not take (mixed precision): these run the unfused expression.
_UNFUSED_DTYPES = ("torch.float16", "torch.bfloat16")


@functools.cache
def _function() -> Any:
    import torch
    from torch.autograd.function import once_differentiable

    class MixedOpFunction(torch.autograd.Function):
        """Fused forward and backward; the backward is not itself differentiable (DARTS'
        second-order step approximates its Hessian-vector product by finite differences)."""

        @staticmethod
        def forward(ctx: Any, ys: Any, alpha: Any, backend: str | None) -> Any:
            ctx.backend = backend
            ctx.save_for_backward(ys, alpha)
            return mixed_op_forward(ys.detach(), alpha.detach(), backend=backend)

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_out: Any) -> tuple[Any, Any, None]:
            ys, alpha = ctx.saved_tensors
            grad_ys, grad_alpha = mixed_op_backward(ys, alpha, grad_out, backend=ctx.backend)
            need_ys, need_alpha, _ = ctx.needs_input_grad
            return (grad_ys if need_ys else None, grad_alpha if need_alpha else None, None)

    return MixedOpFunction


def mixed_op(ys: Any, alpha: Any, *, backend: str | None = None) -> Any:
    """``sum_k softmax(alpha)_k * ys[k]``, differentiable with respect to `ys` and `alpha`.

    Args:
        ys: the K candidate outputs of an edge stacked, a torch tensor of shape ``(K, *S)``,
            float32 or float64 (``torch.stack(outputs)``). float16 and bfloat16 (autocast)
            run the unfused expression instead, unless a backend is forced.
        alpha: the edge's K architecture logits, shape ``(K,)``, same dtype and device.
        backend: force an :mod:`airda.ops` backend (``"cpu"``, ``"cuda"``, ``"triton"``,
            ``"reference"``); by default the fastest one for where `ys` lives.

    Returns:
        A tensor of shape ``S`` whose backward gives ``w_k * g`` to ``ys[k]`` and
        ``w * (s - <w, s>)``, ``s_k = <g, ys[k]>``, to `alpha`.

    Raises:
        TypeError, ValueError: as :func:`airda.ops.mixed_op_forward` (shapes, dtypes, devices).

    Example:
        >>> import torch
        >>> from airda.nas import mixed_op
        >>> ys = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> alpha = torch.zeros(2, requires_grad=True)
        >>> out = mixed_op(ys, alpha)
        >>> out.tolist()
        [2.0, 3.0]
        >>> out.sum().backward()
        >>> alpha.grad.tolist()
        [-1.0, 1.0]
    """
    if backend is None and str(ys.dtype) in _UNFUSED_DTYPES and ys.dtype == alpha.dtype:
        import torch

        return (torch.softmax(alpha, 0).view(-1, *[1] * (ys.dim() - 1)) * ys).sum(0)
    return _function().apply(ys, alpha, backend)

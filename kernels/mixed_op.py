"""Triton kernels of the fused DARTS mixed operation (see :mod:`airda.ops.mixed_op`).

The launcher takes softmax(alpha) with torch (K values); each program then handles BLOCK
elements: forward adds the K weighted rows, backward writes ``w_k * g`` and one partial dot
product per candidate, which torch adds in program order (no atomics: the result depends on the
shape only).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from airda.ops._registry import triton_interpreting as interpreting


@triton.jit
def mixed_op_forward_kernel(ys_ptr, w_ptr, out_ptr, k, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    # Pointers advance a row at a time: 64-bit arithmetic however large K * n is.
    row = ys_ptr + offs
    acc = tl.load(w_ptr) * tl.load(row, mask=mask, other=0.0)
    for j in range(1, k):
        row += n
        acc += tl.load(w_ptr + j) * tl.load(row, mask=mask, other=0.0)
    tl.store(out_ptr + offs, acc, mask=mask)


@triton.jit
def mixed_op_backward_kernel(
    ys_ptr, w_ptr, g_ptr, grad_ys_ptr, partial_ptr, k, n, BLOCK: tl.constexpr
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask, other=0.0)
    g64 = g.to(tl.float64)
    row = ys_ptr + offs
    grad_row = grad_ys_ptr + offs
    for j in range(0, k):
        y = tl.load(row, mask=mask, other=0.0)
        tl.store(grad_row, tl.load(w_ptr + j) * g, mask=mask)
        tl.store(partial_ptr + pid * k + j, tl.sum(g64 * y.to(tl.float64), axis=0))
        row += n
        grad_row += n


def _block(n: int) -> int:
    # The interpreter runs one program at a time: few, large blocks are fastest there.
    cap = 1 << 16 if interpreting() else 1024
    return max(16, min(cap, triton.next_power_of_2(max(n, 1))))


def _weights(alpha: torch.Tensor) -> torch.Tensor:
    e = torch.exp(alpha.double() - alpha.double().max())
    return (e / e.sum()).to(alpha.dtype)


def mixed_op_forward_triton(ys: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Launch :func:`mixed_op_forward_kernel`: ys (K, n) contiguous, alpha (K,) -> out (n,)."""
    k, n = ys.shape
    out = torch.empty(n, dtype=ys.dtype, device=ys.device)
    if n == 0:
        return out
    block = _block(n)
    mixed_op_forward_kernel[(triton.cdiv(n, block),)](ys, _weights(alpha), out, k, n, BLOCK=block)
    return out


def mixed_op_backward_triton(
    ys: torch.Tensor, alpha: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch :func:`mixed_op_backward_kernel`: (grad_ys (K, n), grad_alpha (K,))."""
    k, n = ys.shape
    w64 = torch.exp(alpha.double() - alpha.double().max())
    w64 = w64 / w64.sum()
    grad_ys = torch.empty_like(ys)
    if n == 0:
        s = torch.zeros(k, dtype=torch.float64, device=ys.device)
    else:
        block = _block(n)
        programs = triton.cdiv(n, block)
        partial = torch.empty((programs, k), dtype=torch.float64, device=ys.device)
        mixed_op_backward_kernel[(programs,)](
            ys, w64.to(ys.dtype), g, grad_ys, partial, k, n, BLOCK=block
        )
        s = partial.sum(0)
    return grad_ys, (w64 * (s - (w64 * s).sum())).to(ys.dtype)

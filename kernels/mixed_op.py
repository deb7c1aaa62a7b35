"""Triton kernels of the fused DARTS mixed operation (see :mod:`airda.ops.mixed_op`).

Forward is one launch and backward two, with no torch arithmetic around them: a DARTS step
calls the op once per edge on small tensors, where launches and host work, not memory, set the
time. Every program takes softmax(alpha) itself, in float64 with the maximum subtracted (K
loads and exps, unrolled: K is a compile-time constant). Backward's main pass writes
``grad_ys = w_k * g`` and, per program, one float64 partial dot product per candidate (its
tiles added in order); a one-program kernel adds the partials (chunks in program order, a
fixed tree inside each chunk) and forms ``grad_alpha = w * (s - <w, s>)``. No atomics: the
result depends on the shape only. NaN (or an infinite logit) propagates as in the reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl

from airda.kernels import interpreting

MAX_K = 64
"""Largest K the kernels take (the candidate loop is unrolled at compile time)."""

# Programs of the backward pass at most: a fixed number, not the GPU's, since the order of the
# float64 sums, hence the result, must depend on the shape only.
_MAX_PROGRAMS = 1024
# Partials the finishing kernel loads per step: CHUNK rows of KP candidates.
_CHUNK_ELEMENTS = 2048

# Triton reads TRITON_INTERPRET when a kernel is defined: read it once too.
_INTERPRETING = interpreting()
# The interpreter runs one program at a time: few, large blocks are fastest there.
_BLOCK_CAP = 1 << 16 if _INTERPRETING else 1024


@triton.jit
def _softmax_stats(alpha_ptr, K: tl.constexpr):
    """max(alpha) and sum_k exp(alpha_k - max), in float64, added in the order k = 0..K-1."""
    m = tl.load(alpha_ptr).to(tl.float64)
    for j in tl.static_range(1, K):
        m = tl.maximum(m, tl.load(alpha_ptr + j).to(tl.float64))
    total = tl.exp(tl.load(alpha_ptr).to(tl.float64) - m)
    for j in tl.static_range(1, K):
        total += tl.exp(tl.load(alpha_ptr + j).to(tl.float64) - m)
    return m, total


@triton.jit
def mixed_op_forward_kernel(ys_ptr, alpha_ptr, out_ptr, n, K: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    m, total = _softmax_stats(alpha_ptr, K)
    dtype = ys_ptr.dtype.element_ty
    # Pointers advance a row at a time: 64-bit arithmetic however large K * n is.
    row = ys_ptr + offs
    w = tl.exp(tl.load(alpha_ptr).to(tl.float64) - m) / total
    acc = w.to(dtype) * tl.load(row, mask=mask, other=0.0)
    for j in tl.static_range(1, K):
        row += n
        w = tl.exp(tl.load(alpha_ptr + j).to(tl.float64) - m) / total
        acc += w.to(dtype) * tl.load(row, mask=mask, other=0.0)
    tl.store(out_ptr + offs, acc, mask=mask)


@triton.jit
def mixed_op_backward_kernel(
    ys_ptr,
    alpha_ptr,
    g_ptr,
    grad_ys_ptr,
    partial_ptr,
    n,
    K: tl.constexpr,
    KP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    tiles = tl.cdiv(n, BLOCK)
    m, total = _softmax_stats(alpha_ptr, K)
    dtype = ys_ptr.dtype.element_ty
    ks = tl.arange(0, KP)
    acc = tl.zeros((KP,), dtype=tl.float64)
    start = pid.to(tl.int64) * BLOCK
    for _ in range(pid, tiles, programs):
        offs = start + tl.arange(0, BLOCK)
        start += programs * BLOCK
        mask = offs < n
        g = tl.load(g_ptr + offs, mask=mask, other=0.0)
        g64 = g.to(tl.float64)
        row = ys_ptr + offs
        grad_row = grad_ys_ptr + offs
        for j in tl.static_range(K):
            w = tl.exp(tl.load(alpha_ptr + j).to(tl.float64) - m) / total
            y = tl.load(row, mask=mask, other=0.0)
            tl.store(grad_row, w.to(dtype) * g, mask=mask)
            dot = tl.sum(g64 * y.to(tl.float64), axis=0)
            acc = tl.where(ks == j, acc + dot, acc)
            row += n
            grad_row += n
    tl.store(partial_ptr + pid * K + ks, acc, mask=ks < K)


@triton.jit
def mixed_op_finish_kernel(
    alpha_ptr,
    partial_ptr,
    grad_alpha_ptr,
    programs,
    K: tl.constexpr,
    KP: tl.constexpr,
    CHUNK: tl.constexpr,
):
    ks = tl.arange(0, KP)
    kmask = ks < K
    rows = tl.arange(0, CHUNK)
    s = tl.zeros((KP,), dtype=tl.float64)
    for start in range(0, programs, CHUNK):
        r = start + rows
        tile_mask = (r < programs)[:, None] & kmask[None, :]
        tile = tl.load(partial_ptr + r[:, None] * K + ks[None, :], mask=tile_mask, other=0.0)
        s += tl.sum(tile, axis=0)
    m, total = _softmax_stats(alpha_ptr, K)
    a = tl.load(alpha_ptr + ks, mask=kmask, other=0.0).to(tl.float64)
    w = tl.where(kmask, tl.exp(a - m) / total, 0.0)
    mean = tl.sum(w * s, axis=0)
    grad = w * (s - mean)
    tl.store(grad_alpha_ptr + ks, grad.to(grad_alpha_ptr.dtype.element_ty), mask=kmask)


def _check_k(k: int) -> None:
    if k > MAX_K:
        raise ValueError(f"mixed_op: the Triton kernels take K <= {MAX_K} candidates, got {k}")


def mixed_op_forward_triton(ys: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Launch :func:`mixed_op_forward_kernel` once: ys (K, n) contiguous, alpha (K,) -> (n,)."""
    k, n = ys.shape
    out = torch.empty(n, dtype=ys.dtype, device=ys.device)
    if n:
        _check_k(k)
        block = min(_BLOCK_CAP, max(16, triton.next_power_of_2(n)))
        mixed_op_forward_kernel[(triton.cdiv(n, block),)](ys, alpha, out, n, K=k, BLOCK=block)
    return out


def mixed_op_backward_triton(
    ys: torch.Tensor, alpha: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch :func:`mixed_op_backward_kernel` then :func:`mixed_op_finish_kernel` (only the
    latter when n is 0): returns (grad_ys (K, n), grad_alpha (K,))."""
    k, n = ys.shape
    _check_k(k)
    kp = triton.next_power_of_2(k)
    device = ys.device
    grad_ys = torch.empty_like(ys)
    grad_alpha = torch.empty(k, dtype=ys.dtype, device=device)
    programs = 0
    if n:
        block = min(_BLOCK_CAP, max(16, triton.next_power_of_2(n)))
        programs = min(triton.cdiv(n, block), _MAX_PROGRAMS)
    # Never empty: a zero-size tensor's pointer may be null, which the launcher refuses.
    partial = torch.empty(max(programs, 1) * k, dtype=torch.float64, device=device)
    if programs:
        mixed_op_backward_kernel[(programs,)](
            ys, alpha, g, grad_ys, partial, n, K=k, KP=kp, BLOCK=block
        )
    mixed_op_finish_kernel[(1,)](
        alpha, partial, grad_alpha, programs, K=k, KP=kp, CHUNK=max(2, _CHUNK_ELEMENTS // kp)
    )
    return grad_ys, grad_alpha


def _quietly(launcher: Callable[..., Any]) -> Callable[..., Any]:
    """`launcher` with NumPy's floating-point warnings off: the interpreter computes with NumPy,
    which warns where a GPU quietly makes the NaN or inf the op documents."""

    @functools.wraps(launcher)
    def run(*args: Any) -> Any:
        with np.errstate(all="ignore"):
            return launcher(*args)

    return run


if _INTERPRETING:
    mixed_op_forward_triton = _quietly(mixed_op_forward_triton)
    mixed_op_backward_triton = _quietly(mixed_op_backward_triton)

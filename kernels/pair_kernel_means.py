"""Triton kernel of pair_kernel_means (see :mod:`airda.ops.pair_kernel_means`): per row of A, the
sum over the rows of B of |a - b| or exp(-gamma |a - b|^2), float64, B streamed in tiles; the
launcher adds the row sums into the three means."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def pair_row_sums_kernel(
    a_ptr,
    b_ptr,
    out_ptr,
    n,
    m,
    d,
    gamma,
    SAME: tl.constexpr,
    RBF: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    row_ok = rows < n
    total = tl.zeros((BLOCK_N,), dtype=tl.float64)
    for j0 in range(0, m, BLOCK_M):
        cols = (j0 + tl.arange(0, BLOCK_M)).to(tl.int64)
        col_ok = cols < m
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float64)
        for c in range(0, d):
            av = tl.load(a_ptr + rows * d + c, mask=row_ok, other=0).to(tl.float64)
            bv = tl.load(b_ptr + cols * d + c, mask=col_ok, other=0).to(tl.float64)
            diff = av[:, None] - bv[None, :]
            acc += diff * diff
        if RBF:
            kv = tl.exp(-gamma * acc)
        else:
            kv = tl.sqrt(acc)
        valid = row_ok[:, None] & col_ok[None, :]
        if SAME:
            valid = valid & (cols[None, :] > rows[:, None])
        total += tl.sum(tl.where(valid, kv, 0.0), axis=1)
    tl.store(out_ptr + rows, total, mask=row_ok)


def pair_kernel_means_triton(
    x: torch.Tensor, y: torch.Tensor, kernel: str, gamma: float
) -> torch.Tensor:
    """``[E k(X, Y), E k(X, X'), E k(Y, Y')]`` (diagonals included) as a float64 tensor."""
    if kernel not in ("distance", "rbf"):
        raise ValueError(f"unknown kernel {kernel!r}")
    x = x.to(torch.float64).contiguous()
    y = y.to(torch.float64).contiguous()
    block_n, block_m = 32, 64
    means = []
    for a, b, same in ((x, y, False), (x, x, True), (y, y, True)):
        rows = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
        grid = (triton.cdiv(a.shape[0], block_n),)
        pair_row_sums_kernel[grid](
            a,
            b,
            rows,
            a.shape[0],
            b.shape[0],
            a.shape[1],
            float(gamma),
            SAME=same,
            RBF=kernel == "rbf",
            BLOCK_N=block_n,
            BLOCK_M=block_m,
        )
        total = rows.sum()
        if same:
            total = 2.0 * total + (a.shape[0] if kernel == "rbf" else 0.0)
        means.append(total / (a.shape[0] * b.shape[0]))
    return torch.stack(means)

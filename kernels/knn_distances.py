"""Triton kernel of knn_distances (see :mod:`airda.ops.knn_distances`): exact float64 distances
of a block of queries to tiles of data rows, column by column, and a running top-k per query
(an unordered set of k slots whose worst entry, by (distance, index), a better candidate
replaces). The launcher sorts the slots by (distance, index) at the end. k <= 64."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# TRITON_INTERPRET=1 must be set before this module is imported for the kernels to interpret.
from airda.kernels import interpreting

MAX_K = 64


@triton.jit
def knn_topk_kernel(
    q_ptr,
    x_ptr,
    out_d_ptr,
    out_i_ptr,
    n,
    m,
    d,
    k,
    EXCLUDE_SELF: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_M: tl.constexpr,
    KP: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_Q + tl.arange(0, BLOCK_Q)).to(tl.int64)
    row_ok = rows < n
    slots = tl.arange(0, KP).to(tl.int64)
    big = m.to(tl.int64) + 1  # an index past every row: placeholders and masked pairs
    real_slot = (slots < k)[None, :] & row_ok[:, None]
    # Real slots start as placeholders (inf, big + slot); padding slots (-inf, -1) never change.
    best_d = tl.where(real_slot, float("inf"), -float("inf")).to(tl.float64)
    best_i = tl.where(real_slot, big + slots[None, :], -1).to(tl.int64)
    for j0 in range(0, m, BLOCK_M):
        cols = (j0 + tl.arange(0, BLOCK_M)).to(tl.int64)
        col_ok = cols < m
        acc = tl.zeros((BLOCK_Q, BLOCK_M), dtype=tl.float64)
        for c in range(0, d):
            qv = tl.load(q_ptr + rows * d + c, mask=row_ok, other=0).to(tl.float64)
            xv = tl.load(x_ptr + cols * d + c, mask=col_ok, other=0).to(tl.float64)
            diff = qv[:, None] - xv[None, :]
            acc += diff * diff
        valid = col_ok[None, :] & row_ok[:, None]
        if EXCLUDE_SELF:
            valid = valid & (cols[None, :] != rows[:, None])
        acc = tl.where(valid, acc, float("inf"))
        col_idx = tl.where(valid, cols[None, :], big)
        for _ in range(0, k):
            mv = tl.min(acc, axis=1)
            mi = tl.min(tl.where(acc == mv[:, None], col_idx, big + 1), axis=1)
            wd = tl.max(best_d, axis=1)
            wi = tl.max(tl.where(best_d == wd[:, None], best_i, -2), axis=1)
            better = (mi < m) & ((mv < wd) | ((mv == wd) & (mi < wi)))
            replace = better[:, None] & (best_d == wd[:, None]) & (best_i == wi[:, None])
            best_d = tl.where(replace, mv[:, None], best_d)
            best_i = tl.where(replace, mi[:, None], best_i)
            taken = col_idx == mi[:, None]
            acc = tl.where(taken, float("inf"), acc)
            col_idx = tl.where(taken, big, col_idx)
    out = rows[:, None] * KP + slots[None, :]
    tl.store(out_d_ptr + out, best_d, mask=row_ok[:, None])
    tl.store(out_i_ptr + out, best_i, mask=row_ok[:, None])


def knn_distances_triton(
    queries: torch.Tensor, data: torch.Tensor, k: int, exclude_self: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch :func:`knn_topk_kernel`, then sort each query's slots: (n, k) float64 distances
    (ascending, ties by the lower index) and int64 indices."""
    if queries.dim() != 2 or data.dim() != 2 or queries.shape[1] != data.shape[1]:
        raise ValueError("queries and data must be 2-D with the same columns")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in [1, {MAX_K}] for the triton backend, got {k}")
    floats = (torch.float32, torch.float64)
    if queries.dtype not in floats or data.dtype not in floats or queries.dtype != data.dtype:
        queries, data = queries.to(torch.float64), data.to(torch.float64)
    queries, data = queries.contiguous(), data.contiguous()
    n, d = queries.shape
    m = data.shape[0]
    kp = triton.next_power_of_2(k)
    block_q, block_m = (16, 64) if interpreting() else (32, 64)
    dist = torch.empty((n, kp), dtype=torch.float64, device=queries.device)
    idx = torch.empty((n, kp), dtype=torch.int64, device=queries.device)
    grid = (triton.cdiv(n, block_q),)
    knn_topk_kernel[grid](
        queries,
        data,
        dist,
        idx,
        n,
        m,
        d,
        k,
        EXCLUDE_SELF=bool(exclude_self),
        BLOCK_Q=block_q,
        BLOCK_M=block_m,
        KP=kp,
        enable_fp_fusion=False,  # no fused multiply-add: the reference's rounding, bit for bit
    )
    # Sort by (distance, index): by index, then stably by distance; padding slots (-inf) first.
    order = torch.argsort(idx, dim=1, stable=True)
    dist, idx = dist.gather(1, order), idx.gather(1, order)
    order = torch.argsort(dist, dim=1, stable=True)
    dist, idx = dist.gather(1, order)[:, kp - k :], idx.gather(1, order)[:, kp - k :]
    if dist.device.type == "cpu":
        # torch's CPU sqrt can be one ulp off; NumPy's is correctly rounded, as CUDA's is.
        import numpy as np

        return torch.from_numpy(np.sqrt(dist.numpy())), idx
    return torch.sqrt(dist), idx

"""Triton kernel of hamming_gram (see :mod:`airda.ops.hamming_gram`): K = L - Hamming(c_i, c_j)
of packed sign codes, by XOR and popcount over their words."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# TRITON_INTERPRET=1 must be set before this module is imported for the kernels to interpret.
from airda.kernels import interpreting


@triton.jit
def _popcount64(v):
    # SWAR popcount: portable to every Triton target, the CPU interpreter included.
    v = v - ((v >> 1) & 0x5555555555555555)
    v = (v & 0x3333333333333333) + ((v >> 2) & 0x3333333333333333)
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0F
    v = v + (v >> 8)
    v = v + (v >> 16)
    v = v + (v >> 32)
    return (v & 0x7F).to(tl.int64)


@triton.jit
def hamming_partial_kernel(
    codes_ptr,
    h_ptr,
    n,
    words,
    tail_mask,
    words_per_split,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # Tiles below the diagonal are mirrors of tiles above it: skip them.
    pid_i = tl.program_id(0)
    pid_j = tl.program_id(1)
    if pid_i > pid_j:
        return
    rows = (pid_i * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    cols = (pid_j * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    k_begin = tl.program_id(2).to(tl.int64) * words_per_split
    k_end = tl.minimum(k_begin + words_per_split, words)
    acc = tl.zeros((BLOCK_N, BLOCK_N), dtype=tl.int64)
    for k0 in range(k_begin, k_end, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        in_k = ks < k_end
        a = tl.load(
            codes_ptr + rows[:, None] * words + ks[None, :],
            mask=(rows[:, None] < n) & in_k[None, :],
            other=0,
        )
        b = tl.load(
            codes_ptr + cols[:, None] * words + ks[None, :],
            mask=(cols[:, None] < n) & in_k[None, :],
            other=0,
        )
        last = (ks == words - 1)[None, :]
        a = tl.where(last, a & tail_mask, a)
        b = tl.where(last, b & tail_mask, b)
        acc += tl.sum(_popcount64(a[:, None, :] ^ b[None, :, :]), axis=2)
    out_mask = (rows[:, None] < n) & (cols[None, :] < n)
    tl.atomic_add(h_ptr + rows[:, None] * n + cols[None, :], acc, mask=out_mask)


def _check_tensor(t: torch.Tensor, name: str) -> None:
    if t.dim() != 2 or not t.is_contiguous() or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty, contiguous 2-D tensor")


def hamming_gram_triton(codes: torch.Tensor, units: int) -> torch.Tensor:
    """Launch :func:`hamming_partial_kernel` and mirror: K = units - Hamming, N x N int64."""
    _check_tensor(codes, "codes")
    n, words = codes.shape
    if words != triton.cdiv(units, 64):
        raise ValueError(
            f"codes has {words} words per row, units={units} needs {triton.cdiv(units, 64)}"
        )
    if interpreting():
        # The interpreter runs a program at a time: few, large blocks are fastest.
        block_n, block_k, splits = 64, 16, 1
    else:
        block_n, block_k = 32, 4
        tiles = triton.cdiv(n, block_n)
        pairs = tiles * (tiles + 1) // 2
        sms = torch.cuda.get_device_properties(codes.device).multi_processor_count
        splits = max(1, min(triton.cdiv(4 * sms, pairs), triton.cdiv(words, block_k)))
    words_per_split = triton.cdiv(triton.cdiv(words, splits), block_k) * block_k
    splits = triton.cdiv(words, words_per_split)
    tail = units % 64
    tail_mask = (1 << tail) - 1 if tail else (1 << 64) - 1
    h = torch.zeros((n, n), dtype=torch.int64, device=codes.device)
    tiles = triton.cdiv(n, block_n)
    hamming_partial_kernel[(tiles, tiles, splits)](
        codes, h, n, words, tail_mask, words_per_split, BLOCK_N=block_n, BLOCK_K=block_k
    )
    upper = torch.triu(h)
    return units - (upper + torch.triu(h, 1).T)

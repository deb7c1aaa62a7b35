"""Triton kernels of the sign-code ops: sign packing and the XOR/popcount Hamming Gram matrix."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# TRITON_INTERPRET=1 must be set before this module is imported for the kernels to interpret.
from airda.ops._registry import triton_interpreting as interpreting


@triton.jit
def pack_sign_bits_kernel(
    x_ptr,
    out_ptr,
    n,
    units,
    words,
    word_blocks,
    BLOCK_R: tl.constexpr,
    BLOCK_W: tl.constexpr,
    HALF_INF_BITS: tl.constexpr,
):
    # A program packs BLOCK_R rows x BLOCK_W words, i.e. a [BLOCK_R, BLOCK_W, 64] tile of x.
    pid = tl.program_id(0)
    rows = ((pid // word_blocks) * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    w = (pid % word_blocks) * BLOCK_W + tl.arange(0, BLOCK_W)
    bit = tl.arange(0, 64)
    col = w[None, :, None].to(tl.int64) * 64 + bit[None, None, :]
    in_row = rows[:, None, None] < n
    x = tl.load(x_ptr + rows[:, None, None] * units + col, mask=in_row & (col < units), other=0)
    if HALF_INF_BITS:
        # 16-bit floats arrive as int16 bit patterns (the CPU interpreter cannot compare
        # bfloat16): positive means sign clear, non-zero, and not above infinity (NaN).
        positive = (x > 0) & (x <= HALF_INF_BITS)
    else:
        positive = x > 0
    bits = positive.to(tl.uint64) << bit[None, None, :].to(tl.uint64)
    # The summands are distinct powers of two, so their sum is their bitwise OR.
    word = tl.sum(bits, axis=2)
    out_mask = (rows[:, None] < n) & (w[None, :] < words)
    tl.store(out_ptr + rows[:, None] * words + w[None, :], word, mask=out_mask)


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


# Bit pattern of +infinity for the 16-bit float types.
_HALF_INF_BITS = {torch.float16: 0x7C00, torch.bfloat16: 0x7F80}


def _check_tensor(t: torch.Tensor, name: str) -> None:
    if t.dim() != 2 or not t.is_contiguous() or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty, contiguous 2-D tensor")


def pack_sign_bits_triton(x: torch.Tensor) -> torch.Tensor:
    """Launch :func:`pack_sign_bits_kernel`: (x > 0) of an N x L tensor as N x ceil(L/64)."""
    _check_tensor(x, "x")
    n, units = x.shape
    words = triton.cdiv(units, 64)
    out = torch.empty((n, words), dtype=torch.uint64, device=x.device)
    half_inf_bits = _HALF_INF_BITS.get(x.dtype, 0)
    if half_inf_bits:
        x = x.view(torch.int16)
    # The interpreter runs one program at a time: few, large tiles are fastest there.
    block_r, block_w = (16, 32) if interpreting() else (1, 16)
    word_blocks = triton.cdiv(words, block_w)
    grid = (triton.cdiv(n, block_r) * word_blocks,)
    pack_sign_bits_kernel[grid](
        x,
        out,
        n,
        units,
        words,
        word_blocks,
        BLOCK_R=block_r,
        BLOCK_W=block_w,
        HALF_INF_BITS=half_inf_bits,
    )
    return out


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

"""Triton kernel of pack_sign_bits (see :mod:`airda.ops.pack_sign_bits`): the signs of an
N x L activation matrix as N x ceil(L/64) uint64 words, 64 units per word."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# TRITON_INTERPRET=1 must be set before this module is imported for the kernels to interpret.
from airda.kernels import interpreting


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

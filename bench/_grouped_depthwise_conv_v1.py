"""The first Triton kernel of the grouped depthwise convolution, kept in bench/ to compare
against :mod:`airda.kernels.grouped_depthwise_conv` (``bench/gpu_check.py`` times both, and
``bench/test_grouped_depthwise_conv.py`` checks it still matches the reference); the op never
calls it, so it is not installed.

All G groups run in one launch. The launcher packs the inputs (and the optional per-channel
scale/shift) into one buffer each and passes a small int64 table per group (offsets, channel
count, kernel size); program ``(plane, g, tile)`` computes BLOCK output pixels of channel
``plane % C`` of sample ``plane // C`` of group g, or nothing when that channel is beyond the
group's prefix. Taps are summed in the order (row, column), as in the C++ kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from airda.kernels import interpreting

_META = 6  # x offset, out offset, channels, kh, kw, scale offset


@triton.jit
def grouped_depthwise_conv_kernel(
    x_ptr,
    w_ptr,
    out_ptr,
    scale_ptr,
    shift_ptr,
    meta_ptr,
    H,
    W,
    Ho,
    Wo,
    KH,
    KW,
    CMAX,
    stride,
    ACT: tl.constexpr,
    AFFINE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    plane = tl.program_id(0)
    g = tl.program_id(1)
    tile = tl.program_id(2)
    meta = meta_ptr + g * 6
    x_off = tl.load(meta)
    out_off = tl.load(meta + 1)
    cg = tl.load(meta + 2)
    kh = tl.load(meta + 3)
    kw = tl.load(meta + 4)
    b = plane // CMAX
    c = plane % CMAX
    if c < cg:
        q = (b * cg + c).to(tl.int64)
        offs = tile * BLOCK + tl.arange(0, BLOCK)
        mask = offs < Ho * Wo
        oh = offs // Wo
        ow = offs % Wo
        x_base = x_ptr + x_off + q * H * W
        w_base = w_ptr + c * KH * KW + ((KH - kh) // 2) * KW + (KW - kw) // 2
        acc = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
        for i in range(0, kh):
            ih = oh * stride + i - kh // 2
            row_ok = mask & (ih >= 0) & (ih < H)
            for j in range(0, kw):
                iw = ow * stride + j - kw // 2
                m = row_ok & (iw >= 0) & (iw < W)
                v = tl.load(x_base + ih * W + iw, mask=m, other=0.0)
                acc += tl.load(w_base + i * KW + j) * v
        if AFFINE:
            s_off = tl.load(meta + 5)
            acc = acc * tl.load(scale_ptr + s_off + c) + tl.load(shift_ptr + s_off + c)
        if ACT == 1:
            acc = tl.where(acc < 0, 0.0, acc)
        elif ACT == 2:
            acc = tl.where(acc < 0, 0.0, tl.where(acc > 6, 6.0, acc))
        elif ACT == 3:
            r = acc + 3.0
            r = tl.where(r < 0, 0.0, tl.where(r > 6, 6.0, r))
            acc = acc * r / 6.0
        tl.store(out_ptr + out_off + q * Ho * Wo + offs, acc, mask=mask)


def grouped_depthwise_conv_triton(xs, weight, ksizes, stride, scales, shifts, act):
    """Launch :func:`grouped_depthwise_conv_kernel`: xs G contiguous (B, c_g, H, W), weight
    (C, KH, KW) contiguous, ksizes G (kh, kw); returns G outputs (views of one buffer)."""
    b, _, h, w = xs[0].shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    _big_c, big_kh, big_kw = weight.shape
    device, dtype = weight.device, weight.dtype
    chans = [x.shape[1] for x in xs]
    rows, x_off, o_off, s_off = [], 0, 0, 0
    for c, (kh, kw) in zip(chans, ksizes, strict=True):
        rows.append([x_off, o_off, c, kh, kw, s_off])
        x_off += b * c * h * w
        o_off += b * c * ho * wo
        s_off += c
    meta = torch.tensor(rows, dtype=torch.int64, device=device)
    x = torch.cat([t.reshape(-1) for t in xs]) if len(xs) > 1 else xs[0].reshape(-1)
    out = torch.empty(o_off, dtype=dtype, device=device)
    affine = scales is not None
    if affine:
        sc = torch.cat([s.reshape(-1) for s in scales])
        sh = torch.cat([s.reshape(-1) for s in shifts])
    else:
        sc = sh = out  # unused
    cmax = max(chans)
    if o_off > 0 and cmax > 0:
        cap = 1 << 12 if interpreting() else 256
        block = max(16, min(cap, triton.next_power_of_2(ho * wo)))
        grid = (b * cmax, len(xs), triton.cdiv(ho * wo, block))
        grouped_depthwise_conv_kernel[grid](
            x,
            weight,
            out,
            sc,
            sh,
            meta,
            h,
            w,
            ho,
            wo,
            big_kh,
            big_kw,
            cmax,
            stride,
            ACT=act,
            AFFINE=affine,
            BLOCK=block,
        )
    outs, at = [], 0
    for c in chans:
        n = b * c * ho * wo
        outs.append(out[at : at + n].view(b, c, ho, wo))
        at += n
    return outs

"""Triton kernel of the grouped depthwise convolution (see :mod:`airda.ops.grouped_depthwise_conv`).

One launch per distinct kernel size among the groups (three at most for OFA's 3/5/7), with the
kernel size a compile-time constant, so that each row of taps unrolls: a tap is then one masked
load at a fixed offset from the row's first and one multiply-add (about 5 instructions per tap
and output in the sm_90 code, against about 15 in the first kernel's runtime loops). The inputs are not packed: a small int64 table holds,
per group, the address of its input (read in place, any batch and channel strides, so sliced
channel prefixes need no copy), its output offset in one shared buffer, its channel count and
the addresses of its scale and shift. Program ``(p, g)`` computes a
``BC x BH x BW`` tile (channels x output rows x output columns) of group g, the tile chosen so
that small planes share a program across channels and large ones keep neighbouring taps in
cache. Taps are summed in the order (row, column), as in the C++ kernel.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from airda.kernels import interpreting

# Output offsets of the groups are rounded up to this many elements (64-byte aligned in float32),
# which lets the compiler vectorise the stores.
_ALIGN = 16
_INTERPRETING = interpreting()
# Output elements per program: the interpreter runs one program at a time, so larger there.
_TILE = 4096 if _INTERPRETING else 1024


@triton.jit
def grouped_depthwise_conv_kernel(
    w_ptr,
    out_ptr,
    meta_ptr,
    g0,
    H,
    W,
    Ho,
    Wo,
    BIG_KH,
    BIG_KW,
    CBLOCKS,
    TILES_W,
    TILES,
    KH: tl.constexpr,
    KW: tl.constexpr,
    STRIDE: tl.constexpr,
    ACT: tl.constexpr,
    AFFINE: tl.constexpr,
    BC: tl.constexpr,
    BH: tl.constexpr,
    BW: tl.constexpr,
):
    pid = tl.program_id(0)
    tile = pid % TILES
    rest = pid // TILES
    cb = rest % CBLOCKS
    b = rest // CBLOCKS
    # the group's row: x address, x batch and channel strides, output offset, channels, scale
    # and shift addresses
    row = meta_ptr + (g0 + tl.program_id(1)) * 7
    cg = tl.load(row + 4)
    if cb * BC < cg:
        dtype = w_ptr.dtype.element_ty
        x_base = tl.load(row).to(tl.pointer_type(dtype))
        x_sb = tl.load(row + 1)
        x_sc = tl.load(row + 2)
        out_off = tl.multiple_of(tl.load(row + 3), 16)
        c3 = (cb * BC + tl.arange(0, BC))[:, None, None]
        oh3 = ((tile // TILES_W) * BH + tl.arange(0, BH))[None, :, None]
        ow3 = ((tile % TILES_W) * BW + tl.arange(0, BW))[None, None, :]
        c_ok = c3 < cg
        ih0 = oh3 * STRIDE - KH // 2
        iw0 = ow3 * STRIDE - KW // 2
        # the input pixel under the top-left tap; tap (i, j) is i * W + j further
        x_c = x_base + (b.to(tl.int64) * x_sb + c3.to(tl.int64) * x_sc) + (ih0 * W + iw0)
        w_c = w_ptr + c3 * (BIG_KH * BIG_KW) + ((BIG_KH - KH) // 2) * BIG_KW + (BIG_KW - KW) // 2
        acc = tl.zeros((BC, BH, BW), dtype=dtype)
        # Rows of taps in a loop, columns unrolled: unrolling both keeps every tap's load in
        # flight at once (255 registers and spills at 7x7 on sm_90), this about 80.
        for i in range(KH):
            ih = ih0 + i
            row_ok = c_ok & (ih >= 0) & (ih < H)
            for j in tl.static_range(KW):
                iw = iw0 + j
                v = tl.load(x_c + (i * W + j), mask=row_ok & (iw >= 0) & (iw < W), other=0.0)
                acc += tl.load(w_c + (i * BIG_KW + j), mask=c_ok, other=0.0) * v
        if AFFINE:
            scale = tl.load(row + 5).to(tl.pointer_type(dtype))
            shift = tl.load(row + 6).to(tl.pointer_type(dtype))
            acc = acc * tl.load(scale + c3, mask=c_ok, other=0.0) + tl.load(
                shift + c3, mask=c_ok, other=0.0
            )
        if ACT == 1:
            acc = tl.where(acc < 0, 0.0, acc)
        elif ACT == 2:
            acc = tl.where(acc < 0, 0.0, tl.where(acc > 6, 6.0, acc))
        elif ACT == 3:
            r = acc + 3.0
            r = tl.where(r < 0, 0.0, tl.where(r > 6, 6.0, r))
            acc = acc * r / 6.0
        plane = b.to(tl.int64) * cg + c3
        out_ok = c_ok & (oh3 < Ho) & (ow3 < Wo)
        tl.store(out_ptr + out_off + plane * (Ho * Wo) + (oh3 * Wo + ow3), acc, mask=out_ok)


@functools.cache
def _tiling(ho: int, wo: int, cmax: int, target: int) -> tuple[int, int, int, int]:
    """(BC, BH, BW, num_warps): about `target` outputs per program, 8 per thread."""
    bw = min(triton.next_power_of_2(wo), 64)
    bh = min(triton.next_power_of_2(ho), max(1, target // bw))
    bc = min(triton.next_power_of_2(cmax), max(1, target // (bh * bw)))
    return bc, bh, bw, max(1, min(8, bc * bh * bw // 256))


def inner_dense(x: torch.Tensor) -> bool:
    """Whether the kernel can read `x` (B, c, H, W) in place: rows W apart, columns adjacent
    (any batch and channel strides)."""
    _, _, h, w = x.shape
    return (h == 1 or x.stride(2) == w) and (w == 1 or x.stride(3) == 1)


def _table(rows: list[list[int]], device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        # pinned, copied without waiting: a pageable copy would block until the GPU catches up
        host = torch.tensor(rows, dtype=torch.int64, pin_memory=True)
        return host.to(device, non_blocking=True)
    return torch.tensor(rows, dtype=torch.int64)


def grouped_depthwise_conv_triton(xs, weight, ksizes, stride, scales, shifts, act):
    """Launch :func:`grouped_depthwise_conv_kernel` once per distinct kernel size: xs G tensors
    (B, c_g, H, W) with :func:`inner_dense` layouts, weight (C, KH, KW) contiguous, ksizes G
    (kh, kw); returns G contiguous outputs (views of one buffer)."""
    b, _, h, w = xs[0].shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    _big_c, big_kh, big_kw = weight.shape
    device = weight.device
    chans = [x.shape[1] for x in xs]
    offsets, at = [], 0
    for c in chans:
        offsets.append(at)
        at += -(-(b * c * ho * wo) // _ALIGN) * _ALIGN
    out = torch.empty(at, dtype=weight.dtype, device=device)
    outs = [
        out[o : o + b * c * ho * wo].view(b, c, ho, wo) for o, c in zip(offsets, chans, strict=True)
    ]
    order = sorted(range(len(xs)), key=ksizes.__getitem__)  # stable: one run per kernel size
    if b == 0 or max(chans) == 0:
        return outs
    affine = scales is not None
    rows = []
    for g in order:
        x = xs[g]
        scale = scales[g].data_ptr() if affine else 0
        shift = shifts[g].data_ptr() if affine else 0
        rows.append([x.data_ptr(), x.stride(0), x.stride(1), offsets[g], chans[g], scale, shift])
    meta = _table(rows, device)
    start = 0
    while start < len(order):
        kh, kw = ksizes[order[start]]
        stop = start
        while stop < len(order) and ksizes[order[stop]] == (kh, kw):
            stop += 1
        cmax = max(chans[g] for g in order[start:stop])
        if cmax:
            bc, bh, bw, warps = _tiling(ho, wo, cmax, _TILE)
            cblocks, tiles_w = triton.cdiv(cmax, bc), triton.cdiv(wo, bw)
            tiles = triton.cdiv(ho, bh) * tiles_w
            grouped_depthwise_conv_kernel[(b * cblocks * tiles, stop - start)](
                weight,
                out,
                meta,
                start,
                h,
                w,
                ho,
                wo,
                big_kh,
                big_kw,
                cblocks,
                tiles_w,
                tiles,
                KH=kh,
                KW=kw,
                STRIDE=stride,
                ACT=act,
                AFFINE=affine,
                BC=bc,
                BH=bh,
                BW=bw,
                num_warps=warps,
            )
        start = stop
    return outs

"""A Triton kernel for the autotune tests (a @triton.jit function must live in a file)."""

from __future__ import annotations

import triton
import triton.language as tl

from airda.codeopt import autotune


def make_add(**options):
    @autotune(**options)
    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(
            out_ptr + offs,
            tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask),
            mask=mask,
        )

    return add_kernel

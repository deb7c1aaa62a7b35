"""Triton kernels of airda, installed as ``airda.kernels``.

One module per op, named after it (``airda.kernels.pack_sign_bits``, ``hamming_gram``,
``mixed_op``, ``grouped_depthwise_conv``): the ``@triton.jit`` kernels and a launcher that picks
the grid and block sizes. Import a submodule to load triton; this package itself imports nothing
heavy. Without a GPU, set ``TRITON_INTERPRET=1`` before the import to run the kernels on
Triton's CPU interpreter.

The kernels sit below :mod:`airda.ops` and import nothing from it: the ops import them.
"""

from __future__ import annotations

import os

__all__ = ["interpreting"]


def interpreting() -> bool:
    """True when Triton kernels run on the CPU interpreter (``TRITON_INTERPRET=1``).

    Triton reads the variable when a kernel is defined, so set it before importing a kernel
    module.
    """
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

"""Deprecated alias: the sign-code kernels live in :mod:`airda.kernels.pack_sign_bits` and
:mod:`airda.kernels.hamming_gram`, one module per op. This module goes in the next release."""

from __future__ import annotations

import warnings

from airda.kernels.hamming_gram import hamming_gram_triton, hamming_partial_kernel
from airda.kernels.pack_sign_bits import pack_sign_bits_kernel, pack_sign_bits_triton

__all__ = [
    "hamming_gram_triton",
    "hamming_partial_kernel",
    "pack_sign_bits_kernel",
    "pack_sign_bits_triton",
]

warnings.warn(
    "airda.kernels.sign_codes is deprecated: import airda.kernels.pack_sign_bits or "
    "airda.kernels.hamming_gram",
    DeprecationWarning,
    stacklevel=2,
)

"""pack_sign_bits: the signs of an activation matrix as bit-packed binary codes.

Row i of the result holds ``x[i, j] > 0`` at bit ``j % 64`` of word ``j // 64`` (least
significant bit first); bits past the last unit are zero. NaN, zero and negative values give 0.
These codes are the input of :func:`airda.ops.hamming_gram` and of the NASWOT score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import (
    FLOAT_DTYPES,
    ArrayInfo,
    as_array,
    host_bits,
    host_numpy,
    like_input,
    require_dtype,
    require_matrix,
    to_torch,
)
from airda.ops._registry import register_op

__all__ = ["pack_sign_bits", "pack_sign_bits_reference", "unpack_sign_bits", "words_for"]


def words_for(units: int) -> int:
    """Number of 64-bit words that hold `units` bits."""
    return -(-units // 64)


def pack_sign_bits_reference(x: np.ndarray) -> np.ndarray:
    """Reference: ``x > 0`` packed least-significant-bit first into uint64 words (NumPy)."""
    n, units = x.shape
    bits = np.zeros((n, words_for(units) * 64), dtype=np.uint8)
    bits[:, :units] = x > 0
    # Little-endian bit and byte order make byte b of a word hold bits 8b .. 8b+7.
    packed = np.packbits(bits, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def unpack_sign_bits(codes: np.ndarray, units: int) -> np.ndarray:
    """Inverse of :func:`pack_sign_bits`: an n x units bool matrix of the code bits (NumPy).

    Example:
        >>> import numpy as np
        >>> unpack_sign_bits(np.array([[5]], dtype=np.uint64), 3).tolist()
        [[True, False, True]]
    """
    as_bytes = np.ascontiguousarray(codes, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")
    return bits[:, :units].astype(bool)


def _reference(x: Any, info: ArrayInfo) -> Any:
    return like_input(pack_sign_bits_reference(host_numpy(x)), info, getattr(x, "device", None))


def _cpu(x: Any, info: ArrayInfo) -> Any:
    n, units = info.shape
    out = np.empty((n, words_for(units)), dtype=np.uint64)
    native().pack_sign_bits(host_bits(x, info), info.dtype, out)
    return like_input(out, info)


def _cuda(x: Any, info: ArrayInfo) -> Any:
    import torch

    n, units = info.shape
    out = torch.empty((n, words_for(units)), dtype=torch.uint64, device=x.device)
    stream = torch.cuda.current_stream(x.device).cuda_stream
    native().cuda_pack_sign_bits(
        x.data_ptr(), info.dtype, n, units, out.data_ptr(), x.device.index, stream
    )
    return out


def _triton(x: Any, info: ArrayInfo) -> Any:
    from airda.kernels.pack_sign_bits import pack_sign_bits_triton

    return like_input(pack_sign_bits_triton(to_torch(x)), info)


_OP = register_op(
    "pack_sign_bits", {"reference": _reference, "cpu": _cpu, "cuda": _cuda, "triton": _triton}
)


def pack_sign_bits(x: Any, *, backend: str | None = None) -> Any:
    """Pack the signs of an N x L float matrix into N x ceil(L/64) uint64 codes.

    Args:
        x: activations, one row per sample: a C-contiguous NumPy array or torch tensor of
            float32, float64, float16 or bfloat16 (torch), on the CPU or a CUDA device.
        backend: force ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"reference"``; by default the
            fastest usable backend for where `x` lives (also settable with ``AIRDA_BACKEND``).

    Returns:
        uint64 codes of the same library and device as `x`.

    Raises:
        TypeError: `x` is not an array, or not floating point.
        ValueError: `x` is not 2-D, is empty, or is not contiguous.
        BackendUnavailableError: a forced backend cannot run here.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.5, -1.0, 2.0], [-0.1, 0.0, 3.0]], dtype=np.float32)
        >>> pack_sign_bits(x).tolist()
        [[5], [4]]
    """
    x, info = as_array(x, "x")
    require_dtype(info, "x", FLOAT_DTYPES)
    require_matrix(info, "x", "sample row x unit column")
    return _OP.select(info, backend)(x, info)

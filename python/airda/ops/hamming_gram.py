"""hamming_gram: the NASWOT kernel matrix of binary codes, K[i, j] = L - Hamming(c_i, c_j).

For the 0/1 code matrix C (N x L) this equals ``C @ C.T + (1 - C) @ (1 - C).T``, the number of
units on which two samples agree (Mellor et al., ICML 2021). The compiled backends compute it by
XOR and popcount over packed words, 64 units per instruction.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from airda._native import native
from airda.ops._arrays import (
    ArrayInfo,
    as_array,
    host_numpy,
    like_input,
    require_dtype,
    require_matrix,
    to_torch,
)
from airda.ops._registry import register_op
from airda.ops.pack_sign_bits import unpack_sign_bits, words_for

__all__ = ["hamming_gram", "hamming_gram_reference"]


def hamming_gram_reference(codes: np.ndarray, units: int) -> np.ndarray:
    """Reference: the paper's formulation with float matrices, ``C C^T + (1-C)(1-C)^T``."""
    c = unpack_sign_bits(codes, units).astype(np.float64)
    k = c @ c.T + (1.0 - c) @ (1.0 - c).T
    return np.rint(k).astype(np.int64)


def _reference(codes: Any, units: int, info: ArrayInfo) -> Any:
    result = hamming_gram_reference(host_numpy(codes), units)
    return like_input(result, info, getattr(codes, "device", None))


def _cpu(codes: Any, units: int, info: ArrayInfo) -> Any:
    n = info.shape[0]
    out = np.empty((n, n), dtype=np.int64)
    host = codes if isinstance(codes, np.ndarray) else codes.detach().numpy()
    native().hamming_gram(host, units, out)
    return like_input(out, info)


def _cuda(codes: Any, units: int, info: ArrayInfo) -> Any:
    import torch

    n = info.shape[0]
    out = torch.empty((n, n), dtype=torch.int64, device=codes.device)
    stream = torch.cuda.current_stream(codes.device).cuda_stream
    native().cuda_hamming_gram(
        codes.data_ptr(), n, units, out.data_ptr(), codes.device.index, stream
    )
    return out


def _triton(codes: Any, units: int, info: ArrayInfo) -> Any:
    from airda.kernels.hamming_gram import hamming_gram_triton

    return like_input(hamming_gram_triton(to_torch(codes), units), info)


_OP = register_op(
    "hamming_gram", {"reference": _reference, "cpu": _cpu, "cuda": _cuda, "triton": _triton}
)


def hamming_gram(codes: Any, units: int, *, backend: str | None = None) -> Any:
    """The N x N matrix K[i, j] = units - Hamming(codes[i], codes[j]).

    Args:
        codes: N x ceil(units/64) uint64 codes from :func:`pack_sign_bits` (NumPy or torch,
            C-contiguous). Bits past `units` in the last word are ignored.
        units: the number of units L the codes hold.
        backend: force ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"reference"`` (see
            :func:`pack_sign_bits`).

    Returns:
        int64 matrix of the same library and device as `codes`.

    Raises:
        TypeError: `codes` is not a uint64 array, or `units` is not an integer.
        ValueError: wrong rank, empty, non-contiguous, or `units` does not match the width.

    Example:
        >>> import numpy as np
        >>> codes = np.array([[0b101], [0b100]], dtype=np.uint64)
        >>> hamming_gram(codes, 3).tolist()
        [[3, 2], [2, 3]]
    """
    codes, info = as_array(codes, "codes")
    require_dtype(info, "codes", ("uint64",))
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise TypeError(f"units must be an int, got {type(units).__name__}")
    units = int(units)
    _, width = require_matrix(info, "codes", "sample row x 64-bit word column")
    if units < 1:
        raise ValueError(f"units must be >= 1, got {units}")
    if width != words_for(units):
        raise ValueError(
            f"codes has {width} words per row, but units={units} needs ceil({units}/64) = "
            f"{words_for(units)}"
        )
    return _OP.select(info, backend)(codes, units, info)

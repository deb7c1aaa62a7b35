"""What an op's input is (library, device, dtype, shape), checked once, without importing torch.

Ops accept NumPy arrays and torch tensors and return the same kind on the same device. The
checks here give the errors users see, so each message names the argument and the problem.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
# Real dtypes that convert exactly to float64 (integers up to 2**53 in magnitude).
REAL_DTYPES = (
    *FLOAT_DTYPES,
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
)


@dataclass(frozen=True)
class ArrayInfo:
    """Facts about one array argument of an op."""

    lib: str  # "numpy" or "torch"
    device: str  # "cpu" or "cuda" (any other torch device type is reported as is)
    dtype: str  # "float32", "bfloat16", "uint64", ...
    shape: tuple[int, ...]
    contiguous: bool

    @property
    def where(self) -> str:
        return f"a {self.lib} array on {self.device}"


def _torch_module() -> Any | None:
    # Only look at torch if the caller already imported it: a NumPy user never pays for it.
    return sys.modules.get("torch")


def is_tensor(x: object) -> bool:
    torch = _torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def describe(x: object, name: str) -> ArrayInfo:
    """Describe `x`; raise TypeError if it is neither a NumPy array nor a dense torch tensor.

    A NumPy array in non-native byte order is refused here (kernels read raw memory, and would
    read its bytes reversed); :func:`as_array` converts it first, so ops call that instead.
    """
    if isinstance(x, np.ndarray):
        if not x.dtype.isnative:
            raise TypeError(
                f"{name} has non-native byte order (dtype {x.dtype.str}); convert it with "
                f"{name}.astype({name}.dtype.newbyteorder('='))"
            )
        return ArrayInfo("numpy", "cpu", x.dtype.name, tuple(x.shape), x.flags.c_contiguous)
    if is_tensor(x):
        torch = _torch_module()
        if x.layout != torch.strided:
            raise TypeError(
                f"{name} is a torch tensor of layout {x.layout}; ops take dense tensors "
                f"({name}.to_dense())"
            )
        dtype = str(x.dtype).removeprefix("torch.")
        return ArrayInfo("torch", x.device.type, dtype, tuple(x.shape), x.is_contiguous())
    raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")


def as_array(x: Any, name: str) -> tuple[Any, ArrayInfo]:
    """`x` in a form every backend reads as its values, and its description.

    NumPy arrays in non-native byte order or unaligned are copied to native, aligned memory
    (the compiled kernels read raw memory through typed pointers; Triton's torch refuses them),
    and subclasses such as ``np.matrix`` become plain arrays (their operators mean other things
    in the NumPy references). Torch tensors off the host or CUDA (``meta``) are refused, since
    no backend can read them. Anything else is refused as by :func:`describe`.
    """
    if isinstance(x, np.ndarray):
        if type(x) is not np.ndarray:
            x = x.view(np.ndarray)
        if not x.dtype.isnative:
            x = x.astype(x.dtype.newbyteorder("="))
        elif not x.flags.aligned:
            x = x.copy()
    info = describe(x, name)
    if info.device not in ("cpu", "cuda"):
        raise ValueError(f"{name}: cannot take {info.where}; ops take host data or CUDA tensors")
    return x, info


def contiguous(x: Any, info: ArrayInfo, name: str, dtype: Any = None) -> Any:
    """`x` as C-contiguous memory (a copy only if needed; NumPy arrays become `dtype`, if given).

    A zero-stride view (``np.broadcast_to``, ``Tensor.expand``) can describe far more elements
    than memory holds; the copy's MemoryError then names the argument.
    """
    try:
        if info.lib == "numpy":
            return np.ascontiguousarray(x, dtype=dtype)
        return x if info.contiguous else x.contiguous()
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
            raise  # torch reports a failed allocation as a RuntimeError; others are not ours
        count = int(np.prod(info.shape, dtype=np.float64))
        raise MemoryError(
            f"{name} of shape {info.shape} ({count:.3g} elements) does not fit in memory as a "
            f"contiguous copy: {exc}"
        ) from None


def host_array(x: Any, name: str, dtype: Any = None) -> tuple[np.ndarray, ArrayInfo]:
    """`x` checked, as a C-contiguous host NumPy array of `dtype` (a copy when needed)."""
    x, info = as_array(x, name)
    host = host_numpy(x)
    host_info = ArrayInfo("numpy", "cpu", host.dtype.name, info.shape, host.flags.c_contiguous)
    return contiguous(host, host_info, name, dtype), info


def require_matrix(info: ArrayInfo, name: str, what: str) -> tuple[int, int]:
    """Check that `info` is a non-empty, C-contiguous 2-D array; return its shape."""
    if len(info.shape) != 2:
        raise ValueError(f"{name} must be 2-D ({what}), got shape {info.shape}")
    rows, cols = info.shape
    if rows == 0 or cols == 0:
        raise ValueError(f"{name} is empty (shape {info.shape}); it needs at least one {what}")
    if not info.contiguous:
        hint = "np.ascontiguousarray(x)" if info.lib == "numpy" else "x.contiguous()"
        raise ValueError(f"{name} must be C-contiguous (row-major); make a copy with {hint}")
    return rows, cols


def require_dtype(info: ArrayInfo, name: str, allowed: tuple[str, ...]) -> None:
    if info.dtype not in allowed:
        raise TypeError(f"{name} has dtype {info.dtype}; expected {' or '.join(allowed)}")


def host_numpy(x: Any) -> np.ndarray:
    """A NumPy view (or copy, from a device) of `x`; bfloat16 tensors become float32."""
    if isinstance(x, np.ndarray):
        return x
    t = x.detach()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return t.cpu().numpy()


def host_bits(x: Any, info: ArrayInfo) -> np.ndarray:
    """A zero-copy NumPy view of host data; 16-bit floats as their raw uint16 bit patterns."""
    if isinstance(x, np.ndarray):
        return x.view(np.uint16) if info.dtype in ("float16", "bfloat16") else x
    if info.dtype in ("float16", "bfloat16"):
        import torch

        return x.detach().view(torch.int16).numpy().view(np.uint16)
    return x.detach().numpy()


def to_torch(x: Any) -> Any:
    """`x` as a torch tensor sharing its memory."""
    if isinstance(x, np.ndarray):
        import torch

        return torch.from_numpy(x)
    return x


def like_input(result: Any, info: ArrayInfo, device: Any = None) -> Any:
    """Return `result` as the kind of array the caller passed: NumPy in, NumPy out."""
    if info.lib == "numpy":
        return result if isinstance(result, np.ndarray) else result.cpu().numpy()
    if isinstance(result, np.ndarray):
        import torch

        result = torch.from_numpy(result)
    return result if device is None else result.to(device)

"""Model cost: parameter count and FLOPs of one forward pass, for any ``torch.nn.Module``.

FLOPs are counted by forward hooks on the model's modules, with the convention of the
NAS-Bench-201 zero-cost tables NASLib publishes (they were measured with tensorwatch's
torchstat counters); a multiply-accumulate counts as one FLOP:

=============================================  ==============================================
module                                         FLOPs
=============================================  ==============================================
``Conv1d/2d/3d``                               output elements x (C_in / groups) x kernel
                                               volume, + output elements if it has a bias
``ConvTranspose1d/2d/3d``                      input elements x (C_out / groups) x kernel
                                               volume, + output elements if it has a bias
``Linear``                                     rows x in_features x out_features (no bias
                                               term)
``BatchNorm1d/2d/3d``, ``LayerNorm``,          input elements, twice if affine
``GroupNorm``, ``InstanceNorm*``
``ReLU``, ``ReLU6``, ``LeakyReLU``, ``PReLU``,  input elements
``ELU``, ``GELU``, ``SiLU``, ``Sigmoid``,
``Tanh``, ``Hardswish``, ``Hardsigmoid``
``AvgPool*``, ``MaxPool*``                     output elements x kernel volume
``AdaptiveAvgPool*``, ``AdaptiveMaxPool*``     sum over output cells of their window size
anything else (identity, dropout, reshapes,    0
additions of branches, ``torch.*`` calls in a
``forward``)
=============================================  ==============================================

The one difference from the recorded NAS-Bench-201 numbers: torchstat adds one row and one
column to every adaptive-pooling window (81 instead of 64 per channel for the benchmark's 8x8
global pool), 1,088 FLOPs per NB201 network; counted here as the window's true size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["count_flops", "count_params"]


def count_params(model: Any, *, trainable_only: bool = False) -> int:
    """The number of parameters of `model` (shared parameters counted once).

    Args:
        model: a ``torch.nn.Module``.
        trainable_only: count only parameters with ``requires_grad``.

    Example:
        >>> import torch
        >>> count_params(torch.nn.Linear(10, 3))
        33
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _prod(values: Sequence[int] | int, dims: int = 1) -> int:
    return math.prod(values) if isinstance(values, (tuple, list)) else int(values) ** dims


def _adaptive_windows(in_sizes: Sequence[int], out_sizes: Sequence[int]) -> int:
    # PyTorch's adaptive windows along one axis: [floor(i*L/n), ceil((i+1)*L/n)).
    total = 1
    for length, n in zip(in_sizes, out_sizes, strict=True):
        total *= sum(-(-(i + 1) * length // n) - (i * length // n) for i in range(n))
    return total


@functools.cache
def _kinds() -> dict[str, tuple[type, ...]]:
    from torch import nn

    return {
        "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
        "deconv": (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        "linear": (nn.Linear,),
        "norm": (
            nn.BatchNorm1d,
            nn.BatchNorm2d,
            nn.BatchNorm3d,
            nn.GroupNorm,
            nn.LayerNorm,
            nn.InstanceNorm1d,
            nn.InstanceNorm2d,
            nn.InstanceNorm3d,
        ),
        "act": (
            nn.ReLU,
            nn.ReLU6,
            nn.LeakyReLU,
            nn.PReLU,
            nn.ELU,
            nn.GELU,
            nn.SiLU,
            nn.Sigmoid,
            nn.Tanh,
            nn.Hardswish,
            nn.Hardsigmoid,
        ),
        "pool1": (nn.AvgPool1d, nn.MaxPool1d),
        "pool2": (nn.AvgPool2d, nn.MaxPool2d),
        "pool3": (nn.AvgPool3d, nn.MaxPool3d),
        "adaptive1": (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d),
        "adaptive2": (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d),
        "adaptive3": (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d),
    }


def _module_flops(module: Any, inputs: tuple[Any, ...], output: Any) -> int:
    kind = next((k for k, types in _kinds().items() if isinstance(module, types)), None)
    if kind is None or not inputs:
        return 0
    x = inputs[0]
    out = output[0] if isinstance(output, tuple) else output  # max pools may return indices
    if kind == "conv":
        per_output = (module.in_channels // module.groups) * _prod(module.kernel_size)
        return out.numel() * per_output + (out.numel() if module.bias is not None else 0)
    if kind == "deconv":
        per_input = (module.out_channels // module.groups) * _prod(module.kernel_size)
        return x.numel() * per_input + (out.numel() if module.bias is not None else 0)
    if kind == "linear":
        return (x.numel() // module.in_features) * module.in_features * module.out_features
    if kind == "norm":
        affine = getattr(module, "affine", False) or getattr(module, "elementwise_affine", False)
        return x.numel() * (2 if affine else 1)
    if kind == "act":
        return x.numel()
    dims = int(kind[-1])
    if kind.startswith("pool"):
        return out.numel() * _prod(module.kernel_size, dims)
    in_sizes = list(x.shape[-dims:])
    planes = x.numel() // max(math.prod(in_sizes), 1)
    return planes * _adaptive_windows(in_sizes, list(out.shape[-dims:]))


def count_flops(
    model: Any,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    *,
    inputs: Any = None,
) -> int:
    """FLOPs (multiply-accumulates) of one forward pass, counted per module by hooks.

    The convention is the module docstring's table. The model runs once under
    ``torch.no_grad()`` in eval mode (its training flags are restored afterwards, and hooks
    removed, even on error), on zeros of `input_shape` created on the device and with the dtype
    of the model's first parameter, or on `inputs` if given.

    Args:
        model: a ``torch.nn.Module``.
        input_shape: shape of the input tensor, batch included; the count covers the whole
            batch, so use a batch of 1 for per-sample FLOPs.
        inputs: a tensor or a tuple of positional inputs to use instead of zeros.

    Returns:
        The FLOP count as an int (divide by 1e6 for the benchmark's "MFLOPs").

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False),
        ...                           torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
        >>> count_flops(net, (1, 3, 4, 4))  # conv 8*4*4 * 3*3*3, relu 128, linear 128*10
        4864
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if inputs is None:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"input_shape must be positive ints, got {input_shape!r}")
        ref = next(model.parameters(), None)
        if ref is None:
            ref = next(model.buffers(), None)
        device = ref.device if ref is not None else torch.device("cpu")
        dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
        args: tuple[Any, ...] = (torch.zeros(shape, device=device, dtype=dtype),)
    else:
        args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)

    total = 0

    def hook(module: Any, hook_inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        total += int(_module_flops(module, hook_inputs, output))

    modes = [(m, m.training) for m in model.modules()]
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    return total

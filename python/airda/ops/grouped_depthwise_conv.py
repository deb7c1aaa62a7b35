"""grouped_depthwise_conv: the depthwise convolutions of G elastic blocks in one call.

Elastic (Once-for-All style) supernets keep one depthwise weight of the largest kernel size and
width; a subnet uses the first ``c`` channels and the centre ``k x k`` crop of it. When many
subnets are evaluated together (:func:`airda.nas.evaluate_many`), the subnets at one block
differ in their input, their channel count and their kernel size. This op runs all of them as
one grouped kernel: group ``g`` takes its input ``xs[g]`` of shape ``(B, c_g, H, W)`` (or
``(B, c_g, L)`` in 1-D), the crop ``k_g`` of ``weight[:c_g]``, zero padding ``k_g // 2`` and
the common stride, and may fold the batch norm and activation that follow the convolution::

    out_g = act(conv(xs[g], crop(weight[:c_g], k_g)) * scales[g][c] + shifts[g][c])

with ``act`` one of ``none``, ``relu``, ``relu6``, ``hardswish`` (PyTorch's definitions; NaN
propagates). Every output has ``Ho = (H - 1) // stride + 1`` rows (and columns likewise).
The padding is part of the input: a weight tap that lands on it adds ``w * 0``, which is NaN
for a non-finite ``w`` (PyTorch's own convolution skips such taps; the reference here pads
explicitly so that every backend answers alike).

Backends: ``reference`` (``torch.nn.functional.conv2d`` per group, then the affine map and the
activation), ``cpu`` (C++/OpenMP: one pass per output plane, the affine map and activation
applied while the row is in cache, no padded copy; PyTorch's own CPU depthwise convolution is
several times slower on these shapes, see ``bench/test_grouped_depthwise_conv.py``) and
``triton`` (one launch per distinct kernel size, inputs read in place, channel prefixes
of a wider tensor included). The inputs are torch tensors of float32 or float64.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from airda._native import native
from airda.ops._arrays import as_array, contiguous
from airda.ops._registry import register_op

__all__ = ["ACTIVATIONS", "grouped_depthwise_conv", "grouped_depthwise_conv_reference"]

ACTIVATIONS: dict[str, int] = {"none": 0, "relu": 1, "relu6": 2, "hardswish": 3}
"""The activations the op can fold, with their code in the compiled kernels."""

_DTYPES = ("float32", "float64")


def _activate(y: Any, activation: str) -> Any:
    import torch.nn.functional as F

    if activation == "relu":
        return F.relu(y)
    if activation == "relu6":
        return F.relu6(y)
    if activation == "hardswish":
        return F.hardswish(y)
    return y


def _crop(weight: Any, c: int, k: int, dims: int) -> Any:
    """weight (C, K[, K]) -> the conv weight (c, 1, k[, k]) of one group."""
    big = weight.shape[-1]
    lo = (big - k) // 2
    w = weight[:c, ..., lo : lo + k]
    if dims == 2:
        w = w[:, lo : lo + k, :]
    return w.unsqueeze(1)


def grouped_depthwise_conv_reference(
    xs: Sequence[Any],
    weight: Any,
    kernel_sizes: Sequence[int],
    *,
    stride: int = 1,
    scales: Sequence[Any] | None = None,
    shifts: Sequence[Any] | None = None,
    activation: str = "none",
) -> list[Any]:
    """Reference: one ``torch.nn.functional.conv{1,2}d(..., groups=c_g)`` per group, then
    ``y * scale + shift`` and the activation. `weight` is ``(C, K, K)`` (2-D) or ``(C, K)``."""
    import torch.nn.functional as F

    outs = []
    for g, (x, k) in enumerate(zip(xs, kernel_sizes, strict=True)):
        dims = x.dim() - 2
        c = x.shape[1]
        conv = F.conv2d if dims == 2 else F.conv1d
        if c == 0:  # torch refuses a convolution with no channels
            shape = x.shape[:2] + tuple((s - 1) // stride + 1 for s in x.shape[2:])
            outs.append(x.new_empty(shape))
            continue
        x = F.pad(x, (k // 2,) * (2 * dims))  # explicit zeros: see the module's docstring
        y = conv(x, _crop(weight, c, k, dims), stride=stride, groups=c)
        if scales is not None and shifts is not None:
            shape = (1, c) + (1,) * dims
            y = y * scales[g].reshape(shape) + shifts[g].reshape(shape)
        outs.append(_activate(y, activation))
    return outs


# ---- backends: checked torch tensors; xs 4-D (B, c_g, H, W), weight (C, KH, KW) ------------


def _ref_backend(xs, weight, ksizes, stride, scales, shifts, activation):
    import torch.nn.functional as F

    outs = []
    for g, (x, (kh, kw)) in enumerate(zip(xs, ksizes, strict=True)):
        c = x.shape[1]
        if c == 0:  # torch refuses a convolution with no channels
            outs.append(x.new_empty(_out_shape(x, stride)))
            continue
        big_h, big_w = weight.shape[1:]
        w = weight[:c, (big_h - kh) // 2 : (big_h + kh) // 2, (big_w - kw) // 2 : (big_w + kw) // 2]
        x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2))  # explicit zeros: see the docstring
        y = F.conv2d(x, w.unsqueeze(1), stride=stride, groups=c)
        if scales is not None:
            y = y * scales[g].reshape(1, c, 1, 1) + shifts[g].reshape(1, c, 1, 1)
        outs.append(_activate(y, activation))
    return outs


def _out_shape(x: Any, stride: int) -> tuple[int, int, int, int]:
    b, c, h, w = x.shape
    return b, c, (h - 1) // stride + 1, (w - 1) // stride + 1


def _cpu_work_bytes(h: int, w: int, kh: int, kw: int, stride: int, itemsize: int) -> int:
    """The work buffer one thread of the C++ kernel allocates for one plane (see
    ``csrc/cpu/grouped_depthwise_conv_body.inc``): the zero-padded plane, split into `stride`
    column phases, plus the accumulator rows at stride 1."""
    hp, wp = h + kh // 2 * 2, w + kw // 2 * 2
    if stride == 1:
        return (hp * wp + h * wp + kw) * itemsize
    return stride * hp * (-(-wp // stride)) * itemsize


def _memory_bytes() -> int:
    """Physical memory, or the address-space limit of this process when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            total = min(total, soft)
    except (ImportError, OSError):  # no such limit on this platform
        pass
    return total


def _check_cpu_memory(xs, ksizes, stride) -> None:
    """Refuse a call whose work buffers cannot fit: the C++ kernel allocates them inside an
    OpenMP region, where a failed allocation aborts the process instead of raising."""
    _, _, h, w = xs[0].shape
    threads = max(1, native().omp_max_threads())
    for g, (kh, kw) in enumerate(ksizes):
        need = _cpu_work_bytes(h, w, kh, kw, stride, xs[g].element_size()) * threads
        if need > _memory_bytes() // 2:
            raise MemoryError(
                f"the cpu backend needs {need / 2**30:.3g} GiB of work memory for xs[{g}] "
                f"(spatial size {h} x {w}) with kernel_sizes[{g}] = {max(kh, kw)} and "
                f"stride = {stride}"
            )


def _check_output_memory(xs, stride: int) -> None:
    """Refuse outputs larger than memory before any is allocated (inputs expanded from a few
    elements, ``Tensor.expand``, can describe more than memory holds)."""
    b, _, h, w = xs[0].shape
    planes = sum(b * x.shape[1] for x in xs)
    need = planes * ((h - 1) // stride + 1) * ((w - 1) // stride + 1) * xs[0].element_size()
    if need > _memory_bytes():
        raise MemoryError(
            f"the outputs need {need / 2**30:.3g} GiB, more than this machine's memory: xs[0] "
            f"has shape {tuple(xs[0].shape)} (batch and spatial size of every group) and "
            f"stride = {stride}"
        )


def _cpu_backend(xs, weight, ksizes, stride, scales, shifts, activation):
    import torch

    _check_cpu_memory(xs, ksizes, stride)
    outs = [torch.empty(_out_shape(x, stride), dtype=x.dtype) for x in xs]
    none = [None] * len(xs)
    native().grouped_depthwise_conv(
        [x.numpy() for x in xs],
        weight.numpy(),
        list(ksizes),
        stride,
        [s.numpy() for s in scales] if scales is not None else none,
        [s.numpy() for s in shifts] if shifts is not None else none,
        ACTIVATIONS[activation],
        [o.numpy() for o in outs],
    )
    return outs


def _triton_backend(xs, weight, ksizes, stride, scales, shifts, activation):
    from airda.kernels.grouped_depthwise_conv import grouped_depthwise_conv_triton

    return grouped_depthwise_conv_triton(
        xs, weight, ksizes, stride, scales, shifts, ACTIVATIONS[activation]
    )


_triton_backend.reads_strided = True  # type: ignore[attr-defined]

_OP = register_op(
    "grouped_depthwise_conv",
    {"reference": _ref_backend, "cpu": _cpu_backend, "triton": _triton_backend},
)


# ---- input checks -----------------------------------------------------------------------


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _as_list(values: Any, name: str) -> list[Any]:
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a sequence, got {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence, got {type(values).__name__}") from None


def grouped_depthwise_conv(
    xs: Sequence[Any],
    weight: Any,
    kernel_sizes: Sequence[int],
    *,
    stride: int = 1,
    scales: Sequence[Any] | None = None,
    shifts: Sequence[Any] | None = None,
    activation: str = "none",
    backend: str | None = None,
) -> list[Any]:
    """Depthwise convolutions of G groups sharing one elastic weight, in one call.

    Args:
        xs: G torch tensors ``(B, c_g, H, W)`` (2-D) or ``(B, c_g, L)`` (1-D) of one dtype
            (float32 or float64) and device, with the same B and spatial size; non-contiguous
            ones are copied first.
        weight: the shared depthwise weight, ``(C, K, K)`` or ``(C, 1, K, K)`` in 2-D,
            ``(C, K)`` or ``(C, 1, K)`` in 1-D, with ``c_g <= C``.
        kernel_sizes: G odd kernel sizes ``k_g <= K`` (the centre crop of the weight).
        stride: the common stride; padding is ``k_g // 2``.
        scales, shifts: optional G tensors ``(c_g,)`` each (both or neither): a per-channel
            affine map after the convolution (a folded batch norm).
        activation: ``"none"``, ``"relu"``, ``"relu6"`` or ``"hardswish"`` after the map.
        backend: force ``"cpu"``, ``"triton"`` or ``"reference"``.

    Returns:
        G tensors ``(B, c_g, Ho[, Wo])``, ``Ho = (H - 1) // stride + 1``.

    Raises:
        TypeError: not torch tensors, not float32/float64, or dtypes/devices differ.
        ValueError: shapes that do not fit (naming the group), a bad kernel size, stride or
            activation.

    Example:
        >>> import torch
        >>> w = torch.ones(4, 5, 5)  # 4 channels, kernel 5
        >>> xs = [torch.ones(1, 2, 3, 3), torch.ones(1, 4, 3, 3)]
        >>> a, b = grouped_depthwise_conv(xs, w, [1, 3])
        >>> a.shape, b.shape, a[0, 0, 1, 1].item(), b[0, 0, 1, 1].item()
        (torch.Size([1, 2, 3, 3]), torch.Size([1, 4, 3, 3]), 1.0, 9.0)
    """
    xs = _as_list(xs, "xs")
    ksizes_in = _as_list(kernel_sizes, "kernel_sizes")
    g_count = len(xs)
    if len(ksizes_in) != g_count:
        raise ValueError(f"kernel_sizes has {len(ksizes_in)} entries for {g_count} inputs")
    _check_int(stride, "stride", 1)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if (scales is None) != (shifts is None):
        raise ValueError("give both scales and shifts, or neither")
    weight, w_info = as_array(weight, "weight")
    if w_info.lib != "torch":
        raise TypeError("grouped_depthwise_conv takes torch tensors; weight is a NumPy array")
    if w_info.dtype not in _DTYPES:
        raise TypeError(f"weight has dtype {w_info.dtype}; expected float32 or float64")
    if g_count == 0:
        return []
    dims = xs[0].dim() - 2 if hasattr(xs[0], "dim") else 0
    if dims not in (1, 2):
        raise ValueError(
            f"xs[0] must be (B, c, H, W) or (B, c, L), got shape {tuple(getattr(xs[0], 'shape', ()))}"
        )
    w = weight.detach()
    if w.dim() == dims + 2 and w.shape[1] == 1:
        w = w.squeeze(1)
    if w.dim() != dims + 1:
        raise ValueError(
            f"weight must be (C, {'K, K' if dims == 2 else 'K'}) for {dims}-D inputs, got shape "
            f"{tuple(weight.shape)}"
        )
    if dims == 2 and w.shape[1] != w.shape[2]:
        raise ValueError(f"weight must have a square kernel, got shape {tuple(weight.shape)}")
    big_c, big_k = w.shape[0], w.shape[-1]
    ref = xs[0]
    checked, ksizes = [], []
    for g, (x, k) in enumerate(zip(xs, ksizes_in, strict=True)):
        x, info = as_array(x, f"xs[{g}]")
        if info.lib != "torch":
            raise TypeError(f"xs[{g}] is a NumPy array; grouped_depthwise_conv takes torch tensors")
        if info.dtype != w_info.dtype:
            raise TypeError(f"xs[{g}] has dtype {info.dtype} but weight has {w_info.dtype}")
        if x.device != weight.device:
            raise TypeError(f"xs[{g}] is on {x.device} but weight is on {weight.device}")
        if x.dim() != dims + 2:
            raise ValueError(f"xs[{g}] has shape {tuple(x.shape)}; xs[0] is {dims}-D")
        if x.shape[0] != ref.shape[0] or x.shape[2:] != ref.shape[2:]:
            raise ValueError(
                f"xs[{g}] has shape {tuple(x.shape)}; every group needs the batch and spatial "
                f"size of xs[0] {tuple(ref.shape)}"
            )
        if any(s < 1 for s in x.shape[2:]):
            raise ValueError(f"xs[{g}] has an empty spatial size {tuple(x.shape)}")
        if x.shape[1] > big_c:
            raise ValueError(f"xs[{g}] has {x.shape[1]} channels but weight has only {big_c}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 or k > big_k:
            raise ValueError(
                f"kernel_sizes[{g}] must be an odd int in 1..{big_k} (the weight's), got {k!r}"
            )
        if (big_k - k) % 2:
            raise ValueError(f"kernel_sizes[{g}] = {k} cannot be centred in a {big_k} kernel")
        x = x.detach()
        checked.append(x if dims == 2 else x.unsqueeze(2))
        ksizes.append((k, k) if dims == 2 else (1, k))
    sc = sh = None
    if scales is not None and shifts is not None:
        sc, sh = [], []
        for name, values, out in (("scales", scales, sc), ("shifts", shifts, sh)):
            values = _as_list(values, name)
            if len(values) != g_count:
                raise ValueError(f"{name} has {len(values)} entries for {g_count} inputs")
            for g, v in enumerate(values):
                c = xs[g].shape[1]
                if not hasattr(v, "shape") or tuple(v.shape) != (c,):
                    raise ValueError(
                        f"{name}[{g}] must be a tensor of shape ({c},), got "
                        f"{tuple(getattr(v, 'shape', ()))}"
                    )
                v, v_info = as_array(v, f"{name}[{g}]")
                if v.dtype != weight.dtype or v.device != weight.device:
                    raise TypeError(f"{name}[{g}] must have weight's dtype and device")
                out.append(contiguous(v.detach(), v_info, f"{name}[{g}]"))
    w4 = w if dims == 2 else w.unsqueeze(1)
    w4 = contiguous(w4, as_array(w4, "weight")[1], "weight")
    # A stride at least the input's size leaves one output row and column, whatever its value;
    # the smallest such stride keeps the kernels' index arithmetic and work buffers small.
    stride = min(stride, max(ref.shape[2:]))
    _check_output_memory(checked, stride)
    infos = [as_array(x, f"xs[{g}]")[1] for g, x in enumerate(checked)]
    impl = _OP.select(infos[0], backend)
    if getattr(impl, "reads_strided", False):  # rows of any batch and channel strides, in place
        from airda.kernels.grouped_depthwise_conv import inner_dense

        checked = [
            x if inner_dense(x) else contiguous(x, i, f"xs[{g}]")
            for g, (x, i) in enumerate(zip(checked, infos, strict=True))
        ]
    else:
        checked = [
            contiguous(x, i, f"xs[{g}]")
            for g, (x, i) in enumerate(zip(checked, infos, strict=True))
        ]
    try:
        outs = impl(checked, w4, ksizes, stride, sc, sh, activation)
    except RuntimeError as exc:  # torch reports a failed allocation as a RuntimeError
        if "alloc" not in str(exc):
            raise
        raise MemoryError(
            f"the outputs for xs of shape {tuple(ref.shape)} with stride = {stride} do not fit "
            f"in memory: {exc}"
        ) from None
    return outs if dims == 2 else [o.squeeze(2) for o in outs]

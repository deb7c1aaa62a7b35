"""The NAS-Bench-201 network as a ``torch.nn.Module``, built from an :class:`~airda.nas.nb201.Arch`.

The macro skeleton of the benchmark: a 3x3 conv stem (3 -> C channels) with BatchNorm; three
stages of N cells at C, 2C and 4C channels; between stages a residual reduction block (a ResNet
basic block with stride 2, whose shortcut is a 2x2 average pool then a 1x1 conv); then
BatchNorm-ReLU, global average pooling and a linear classifier. Every cell of the network has
the same architecture.

Cell ops: ``nor_conv_kxk`` is ReLU-Conv(k x k, no bias)-BatchNorm; ``avg_pool_3x3`` is a 3x3
average pool, stride 1, padding 1, not counting the padding; ``skip_connect`` is the identity;
``none`` outputs zeros. Node j of a cell is the sum of its incoming edges. Every BatchNorm has
affine parameters and running statistics, as in the benchmark: the parameter counts then match
the benchmark's records exactly (tested on the 725 CIFAR-10 architectures NASLib publishes).

The benchmark's network also keeps the modules of edges that cannot affect the output (see
:func:`airda.nas.nb201.canonical`); so does this one, so that costs agree with the benchmark.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from airda.nas.nb201 import EDGES, NUM_NODES, Arch, ArchLike, as_arch

__all__ = ["NB201Cell", "NB201Network", "ResNetReduction", "build_model"]


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
    )


class _Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _cell_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return _Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {op!r}")  # pragma: no cover - Arch validates ops


class NB201Cell(nn.Module):
    """One NB201 cell at a fixed channel count (input and output have `channels` channels).

    ``edges[k]`` is the op of edge :data:`airda.nas.nb201.EDGES` ``[k]``.
    """

    def __init__(self, arch: Arch, channels: int):
        super().__init__()
        self.arch = arch
        self.edges = nn.ModuleList(_cell_op(op, channels) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[Any] = [x] + [None] * (NUM_NODES - 1)
        for (i, j), op in zip(EDGES, self.edges, strict=True):
            y = op(nodes[i])
            nodes[j] = y if nodes[j] is None else nodes[j] + y
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"arch={self.arch.to_string()!r}"


class ResNetReduction(nn.Module):
    """The residual block between stages: halves the resolution, changes the channel count.

    Main path ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN; shortcut AvgPool2d(2, 2) then a 1x1
    conv without bias; the output is their sum.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NB201 network (see the module docstring); ``forward`` returns the logits."""

    def __init__(self, arch: Arch, num_classes: int = 10, C: int = 16, N: int = 5):
        super().__init__()
        self.arch = arch
        self.stem = nn.Sequential(
            nn.Conv2d(3, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage:
                layers.append(ResNetReduction(channels, 2 * channels))
                channels *= 2
            layers.extend(NB201Cell(arch, channels) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features the classifier sees, shape (batch, 4C)."""
        x = self.lastact(self.cells(self.stem(x)))
        return torch.flatten(self.global_pooling(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(arch: ArchLike, num_classes: int = 10, C: int = 16, N: int = 5) -> NB201Network:
    """The NAS-Bench-201 network of one cell architecture.

    Args:
        arch: an :class:`~airda.nas.nb201.Arch`, an arch string, :func:`nb201_space` params,
            or six op names.
        num_classes: outputs of the classifier (10 for CIFAR-10, 100 for CIFAR-100, 120 for
            ImageNet16-120).
        C: channels of the first stage (the benchmark uses 16).
        N: cells per stage (the benchmark uses 5).

    Returns:
        An :class:`NB201Network` in training mode, freshly initialised by PyTorch's defaults;
        ``model(x)`` maps images (batch, 3, H, W) to logits (batch, num_classes).

    Example:
        >>> import torch
        >>> from airda.nas import build_model, count_params
        >>> model = build_model("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        ...                     "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
        >>> count_params(model)
        802426
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    for name, value, low in (("num_classes", num_classes, 1), ("C", C, 1), ("N", N, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return NB201Network(as_arch(arch), num_classes=num_classes, C=C, N=N)

"""Weight-sharing supernets: every subnet of a space runs on one set of shared weights.

Two spaces, each for images (``dims=2``, input ``(batch, channels, H, W)``) and sequences
(``dims=1``, input ``(batch, channels, length)``):

- :class:`NB201Supernet`: the NAS-Bench-201 cell space. Every edge of the cell holds all five
  operations (:data:`airda.nas.nb201.OPS`); a subnet picks one per edge, and every cell of the
  network shares that choice, as in the benchmark's one-shot baselines. It also runs the
  continuous relaxations of DARTS and GDAS (:meth:`NB201Supernet.forward_weighted`).
- :class:`ElasticSupernet`: an elastic space in the style of Once-for-All (Cai et al., 2020):
  stages of inverted-residual blocks with an elastic kernel size (one ``k_max`` weight whose
  centre ``k x k`` crop serves kernel size ``k``), an elastic expansion ratio (the hidden
  channels are a prefix of the widest block's) and an elastic depth per stage (the first
  ``depth`` blocks of the stage run, the others are skipped).

A subnet is a params dict of :attr:`Supernet.space`, an airda :class:`~airda.space.Space`, so
any airda strategy searches it. :meth:`Supernet.extract` copies a subnet out as a standalone
``nn.Module`` with its inherited weights; :func:`airda.nas.evaluate.evaluate_many` evaluates
subnets with them, after re-estimating their batch-norm statistics, and
:func:`airda.nas.checkpoint.save_checkpoint` saves a supernet with a training state.

The computation is a list of layers (:attr:`Supernet.layers`); ``layers[l](x, key)`` runs
layer ``l`` with the choice ``key = path(arch)[l]``, and its output depends only on
``path(arch)[: l + 1]``. That is what lets several subnets share their common prefix.

Example:
    >>> import numpy as np, torch
    >>> from airda.nas.supernet import ElasticSupernet
    >>> net = ElasticSupernet(dims=1, in_channels=1, stem=8, stages=((8, 2, 1), (16, 2, 2)),
    ...                       depths=(1, 2)).eval()
    >>> arch = net.sample(np.random.default_rng(0))
    >>> x = torch.randn(4, 1, 40)
    >>> sub = net.extract(arch).eval()
    >>> torch.allclose(net(x, arch), sub(x), atol=1e-5)
    True
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from airda._deprecation import moved_names
from airda.nas.nb201 import EDGE_NAMES, EDGES, NUM_NODES, OPS, Arch
from airda.space import Categorical, Space, SpaceError

__all__ = ["ElasticSupernet", "NB201Supernet", "SuperBatchNorm", "Supernet"]

# Names that lived here before they joined their kind; served, with a warning, for one release.
_MOVED = {
    "evaluate_loop": "airda.nas.evaluate",
    "recalibrate_bn": "airda.nas.evaluate",
    "load_checkpoint": "airda.nas.checkpoint",
    "save_checkpoint": "airda.nas.checkpoint",
}


def _conv_fn(dims: int) -> Any:
    return F.conv1d if dims == 1 else F.conv2d


def _conv_cls(dims: int) -> type[nn.Module]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _bn_cls(dims: int) -> type[nn.modules.batchnorm._BatchNorm]:
    return nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Batch norm over a channel prefix


class SuperBatchNorm(nn.Module):
    """Batch norm over the first ``x.shape[1]`` of `num_features` channels.

    An elastic layer with fewer active channels normalises with the matching prefix of the
    affine parameters and running statistics. In training mode it normalises with the batch's
    statistics and updates the prefix of the running ones (an exponential average with
    `momentum`, or the cumulative average when `momentum` is ``None``, as ``nn.BatchNorm``);
    in eval mode it uses the running ones. When :attr:`override` holds a ``(mean, var)`` pair
    it normalises with those instead, in either mode (how :func:`airda.nas.evaluate_many`
    applies per-subnet statistics).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.override: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.num_features:
            raise ValueError(f"{c} channels given to a batch norm of {self.num_features}")
        weight, bias = self.weight[:c], self.bias[:c]
        if self.override is not None:
            mean, var = self.override
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        if not self.training:
            return F.batch_norm(
                x, self.running_mean[:c], self.running_var[:c], weight, bias, False, 0.0, self.eps
            )
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        # The prefix views share storage with the buffers: batch_norm updates them in place.
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], weight, bias, True, factor, self.eps
        )

    def to_plain(self, channels: int, dims: int) -> nn.modules.batchnorm._BatchNorm:
        """A standalone ``nn.BatchNorm{1,2}d`` holding a copy of the first `channels`."""
        bn = _bn_cls(dims)(
            channels,
            eps=self.eps,
            momentum=self.momentum,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            bn.weight.copy_(self.weight[:channels])
            bn.bias.copy_(self.bias[:channels])
            bn.running_mean.copy_(self.running_mean[:channels])
            bn.running_var.copy_(self.running_var[:channels])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def _plain_copy(module: nn.Module, dims: int) -> nn.Module:
    """A deep copy of `module` with every SuperBatchNorm made a plain full-width batch norm."""
    if isinstance(module, SuperBatchNorm):
        return module.to_plain(module.num_features, dims)
    out = copy.deepcopy(module)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SuperBatchNorm):
                setattr(parent, name, child.to_plain(child.num_features, dims))
    return out


def _run_cell(x: torch.Tensor, edges: Iterable[tuple[str, Any]]) -> torch.Tensor:
    """An NB201 cell: node j sums op(node i) over its edges (EDGES order); ``none`` edges add
    nothing, and a node without inputs is zeros (what its ops then see)."""
    nodes: list[Any] = [x] + [None] * (NUM_NODES - 1)
    for (i, j), (op, fn) in zip(EDGES, edges, strict=True):
        if op == "none":
            continue
        y = fn(torch.zeros_like(x) if nodes[i] is None else nodes[i])
        nodes[j] = y if nodes[j] is None else nodes[j] + y
    return torch.zeros_like(x) if nodes[-1] is None else nodes[-1]


# ---------------------------------------------------------------------------------------------
# The base class


class Supernet(nn.Module):
    """A weight-sharing network over a space of subnets (see the module docstring).

    Subclasses build :attr:`layers` (each called as ``layer(x, key)``), :attr:`space` and
    :attr:`config`, and implement :meth:`path` and :meth:`extract`.
    """

    dims: int
    in_channels: int
    num_classes: int
    config: dict[str, Any]
    layers: nn.ModuleList

    def __init__(self) -> None:
        super().__init__()
        self._space: Space | None = None

    # ---- the space --------------------------------------------------------------------

    @property
    def space(self) -> Space:
        """Every subnet, as an airda :class:`~airda.space.Space` of categorical choices."""
        if self._space is None:
            self._space = self._build_space()
        return self._space

    def _build_space(self) -> Space:
        raise NotImplementedError

    def validate(self, arch: Any) -> dict[str, Any]:
        """The complete, checked params dict of a subnet.

        Raises:
            ValueError: naming the parameter or value that is not in this supernet's space.
        """
        if not isinstance(arch, Mapping):
            raise ValueError(
                f"a subnet of {type(self).__name__} is a dict of {self.space.names}, "
                f"got {type(arch).__name__}"
            )
        try:
            return self.space.validate(arch)
        except SpaceError as e:
            raise ValueError(f"arch is not in the {type(self).__name__} space: {e}") from None

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random subnet: every active choice uniform."""
        return self.space.sample(rng)

    def mutate(self, arch: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """A subnet one choice away from `arch` (choices that become active are sampled)."""
        return self.space.mutate(self.validate(arch), rng)

    def largest(self) -> dict[str, Any]:
        """The subnet with the last (largest) value of every choice."""
        return self._extreme(-1)

    def smallest(self) -> dict[str, Any]:
        """The subnet with the first (smallest) value of every choice."""
        return self._extreme(0)

    def _extreme(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, p in self.space.params.items():
            if self.space.is_active(name, out):
                out[name] = p.values()[index]
        return out

    # ---- running a subnet -------------------------------------------------------------

    def path(self, arch: Any) -> tuple[Hashable, ...]:
        """The choice key of every layer for `arch` (``None`` where a layer has no choice)."""
        raise NotImplementedError

    def check_input(self, x: Any) -> None:
        """Raise ValueError unless `x` is a float tensor shaped for this supernet."""
        shape = "(batch, channels, length)" if self.dims == 1 else "(batch, channels, H, W)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}(dims={self.dims}, in_channels={self.in_channels}) takes "
                f"input {shape} with {self.in_channels} channels, got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        """The logits of subnet `arch` on `x`, computed with the shared weights."""
        self.check_input(x)
        for layer, key in zip(self.layers, self.path(arch), strict=True):
            x = layer(x, key)
        return x

    def extract(self, arch: Any) -> nn.Module:
        """Subnet `arch` as a standalone ``nn.Module`` with copies of its inherited weights:
        sliced to its channels, cropped to its kernels, with its batch-norm statistics. In eval
        mode ``extract(arch)(x)`` equals ``supernet(x, arch)``."""
        path = self.path(arch)
        return _Subnet(
            [layer.extract(key) for layer, key in zip(self.layers, path, strict=True)],
            arch=self.validate(arch),
        )


class _Subnet(nn.Sequential):
    """An extracted subnet: its layers in order; ``forward(x)`` returns the logits."""

    def __init__(self, layers: Sequence[nn.Module], arch: Mapping[str, Any]):
        super().__init__(*[layer for layer in layers if layer is not None])
        self.arch = dict(arch)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}"


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class _Fixed(nn.Module):
    """A layer without a choice: `body` runs whatever the key (which must be ``None``)."""

    def __init__(self, body: nn.Module, dims: int):
        super().__init__()
        self.body = body
        self.dims = dims

    def forward(self, x: torch.Tensor, key: Hashable = None) -> torch.Tensor:
        return self.body(x)

    def extract(self, key: Hashable) -> nn.Module:
        return _plain_copy(self.body, self.dims)


class _Head(nn.Module):
    """Optional batch norm + ReLU, global average pooling, a linear classifier."""

    def __init__(self, channels: int, num_classes: int, dims: int, norm: nn.Module | None):
        super().__init__()
        self.norm = norm
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = F.relu(self.norm(x))
        return self.classifier(torch.flatten(x.mean(dim=tuple(range(2, x.dim()))), 1))


# ---------------------------------------------------------------------------------------------
# NAS-Bench-201


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, dims: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        _conv_cls(dims)(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        SuperBatchNorm(c_out),
    )


def _nb201_op(op: str, channels: int, dims: int) -> nn.Module:
    if op == "none":
        return _Zero()
    if op == "skip_connect":
        return _Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1, 1, dims)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3, 1, dims)
    if op == "avg_pool_3x3":
        pool = nn.AvgPool1d if dims == 1 else nn.AvgPool2d
        return pool(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {op!r}")  # pragma: no cover


class NB201SuperCell(nn.Module):
    """An NB201 cell holding every op on every edge: ``edges[k][op]`` is the module of op
    `op` on edge :data:`~airda.nas.nb201.EDGES` ``[k]``."""

    def __init__(self, channels: int, dims: int):
        super().__init__()
        self.channels = channels
        self.dims = dims
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: _nb201_op(op, channels, dims) for op in OPS}) for _ in EDGES
        )

    def forward(self, x: torch.Tensor, key: Sequence[str]) -> torch.Tensor:
        """Run the cell with op ``key[k]`` on edge ``k``; ``none`` edges cost nothing."""
        return _run_cell(x, [(op, edge[op]) for edge, op in zip(self.edges, key, strict=True)])

    def forward_weighted(
        self, x: torch.Tensor, weights: torch.Tensor, hard: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The relaxed cell: see :meth:`NB201Supernet.forward_weighted`."""
        from airda.nas.mixed_op import mixed_op

        nodes: list[Any] = [x] + [None] * (NUM_NODES - 1)
        for k, ((i, j), edge) in enumerate(zip(EDGES, self.edges, strict=True)):
            if hard is None:
                ys = torch.stack([edge[op](nodes[i]) for op in OPS])
                y = mixed_op(ys, weights[k])
            else:
                h = int(hard[k])
                y = weights[k, h] * edge[OPS[h]](nodes[i])
            nodes[j] = y if nodes[j] is None else nodes[j] + y
        return nodes[-1]

    def extract(self, key: Sequence[str]) -> nn.Module:
        return _NB201FixedCell(
            [_plain_copy(edge[op], self.dims) for edge, op in zip(self.edges, key, strict=True)],
            tuple(key),
        )


class _NB201FixedCell(nn.Module):
    """One NB201 cell of a fixed architecture (an extracted subnet's cell)."""

    def __init__(self, ops: Sequence[nn.Module], names: tuple[str, ...]):
        super().__init__()
        self.names = names
        self.edges = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_cell(x, zip(self.names, self.edges, strict=True))

    def extra_repr(self) -> str:
        return f"arch={Arch(self.names).to_string()!r}"


class _ResNetReduction(nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block with a pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, dims: int):
        super().__init__()
        pool = nn.AvgPool1d if dims == 1 else nn.AvgPool2d
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2, dims)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1, dims)
        self.shortcut = nn.Sequential(
            pool(kernel_size=2, stride=2, padding=0, ceil_mode=True, count_include_pad=False),
            _conv_cls(dims)(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Supernet(Supernet):
    """The NAS-Bench-201 supernet: every edge of the cell holds all five operations.

    The macro skeleton of the benchmark (stem, three stages of `N` cells at `C`, 2C, 4C
    channels joined by residual reduction blocks, batch norm + ReLU, pooling, classifier), in
    1-D or 2-D. A subnet is a :func:`~airda.nas.nb201.nb201_space` params dict (an
    :class:`~airda.nas.nb201.Arch` or arch string is accepted too); every cell runs it.

    Args:
        dims: 2 for images ``(batch, in_channels, H, W)``, 1 for sequences ``(batch,
            in_channels, length)``.
        in_channels: input channels.
        num_classes: classifier outputs.
        C: channels of the first stage.
        N: cells per stage.

    Example:
        >>> import torch
        >>> from airda.nas.supernet import NB201Supernet
        >>> net = NB201Supernet(dims=1, in_channels=1, C=8, N=1)
        >>> arch = {"0->1": "nor_conv_3x3", "0->2": "skip_connect", "1->2": "none",
        ...         "0->3": "avg_pool_3x3", "1->3": "nor_conv_1x1", "2->3": "skip_connect"}
        >>> net(torch.randn(2, 1, 40), arch).shape
        torch.Size([2, 10])
        >>> net.space.size()
        15625.0
    """

    num_edges = len(EDGES)
    ops = OPS

    def __init__(
        self,
        *,
        dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 10,
        C: int = 16,
        N: int = 5,
    ):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims!r}")
        _check_int("in_channels", in_channels, 1)
        _check_int("num_classes", num_classes, 1)
        _check_int("C", C, 1)
        _check_int("N", N, 1)
        self.dims, self.in_channels, self.num_classes = dims, in_channels, num_classes
        self.C, self.N = C, N
        self.config = {
            "kind": "nb201",
            "dims": dims,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "C": C,
            "N": N,
        }
        conv = _conv_cls(dims)
        layers: list[nn.Module] = [
            _Fixed(
                nn.Sequential(conv(in_channels, C, 3, padding=1, bias=False), SuperBatchNorm(C)),
                dims,
            )
        ]
        self.cell_layers: list[int] = []
        channels = C
        for stage in range(3):
            if stage:
                layers.append(_Fixed(_ResNetReduction(channels, 2 * channels, dims), dims))
                channels *= 2
            for _ in range(N):
                self.cell_layers.append(len(layers))
                layers.append(NB201SuperCell(channels, dims))
        layers.append(_Fixed(_Head(channels, num_classes, dims, SuperBatchNorm(channels)), dims))
        self.layers = nn.ModuleList(layers)

    def _build_space(self) -> Space:
        return Space({name: Categorical(OPS) for name in EDGE_NAMES})

    def validate(self, arch: Any) -> dict[str, Any]:
        if isinstance(arch, (Arch, str)) or (
            isinstance(arch, Sequence) and not isinstance(arch, Mapping)
        ):
            from airda.nas.nb201 import as_arch

            try:
                return as_arch(arch).to_params()
            except (TypeError, ValueError) as e:
                raise ValueError(f"arch is not in the NB201Supernet space: {e}") from None
        return super().validate(arch)

    def path(self, arch: Any) -> tuple[Hashable, ...]:
        params = self.validate(arch)
        key = tuple(params[name] for name in EDGE_NAMES)
        cells = set(self.cell_layers)
        return tuple(key if i in cells else None for i in range(len(self.layers)))

    def forward_weighted(
        self, x: torch.Tensor, weights: torch.Tensor, hard: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The continuous relaxation of DARTS, or GDAS's hard one, shared by every cell.

        Args:
            x: the input.
            weights: shape ``(6, 5)``: edge ``k``'s row is over :data:`~airda.nas.nb201.OPS`.
                Without `hard`, the rows are architecture *logits* and edge ``k`` outputs
                ``sum_o softmax(weights[k])_o * op_o(x)`` (the fused
                :func:`airda.nas.mixed_op`, DARTS). With `hard`, the rows are mixing weights
                used as they are (GDAS passes its straight-through one-hot sample).
            hard: optional shape ``(6,)`` op indices: edge ``k`` runs only op ``hard[k]``,
                scaled by ``weights[k, hard[k]]``, so the gradient reaches that weight.

        Returns:
            The logits; differentiable with respect to `weights` and the supernet's weights.
        """
        self.check_input(x)
        if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (6, len(OPS)):
            got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights)
            raise ValueError(f"weights must be a tensor of shape (6, {len(OPS)}), got {got}")
        if hard is not None:
            hard = torch.as_tensor(hard)
            if tuple(hard.shape) != (6,) or bool(((hard < 0) | (hard >= len(OPS))).any()):
                raise ValueError(f"hard must be 6 op indices in [0, {len(OPS)}), got {hard}")
        cells = set(self.cell_layers)
        for i, layer in enumerate(self.layers):
            x = layer.forward_weighted(x, weights, hard) if i in cells else layer(x)
        return x


# ---------------------------------------------------------------------------------------------
# Once-for-All style elastic space


class ElasticBlock(nn.Module):
    """An inverted-residual block with an elastic kernel size and expansion ratio.

    1x1 expand (``c_in -> e * c_in``) - BN - ReLU, depthwise ``k``-wide (stride `stride`) - BN
    - ReLU, 1x1 project (``-> c_out``) - BN, plus the input when the shape is kept. The weights
    are those of ``k_max`` and ``e_max``; ``key = (k, e)`` uses the centre ``k`` crop of the
    depthwise kernel and the first ``e * c_in`` hidden channels. ``key = None`` skips the block
    (only blocks that keep the shape can be skipped).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[int],
        dims: int,
    ):
        super().__init__()
        self.c_in, self.c_out, self.stride, self.dims = c_in, c_out, stride, dims
        self.k_max = max(kernel_sizes)
        self.hidden_max = max(expand_ratios) * c_in
        self.residual = stride == 1 and c_in == c_out
        conv = _conv_cls(dims)
        self.expand = conv(c_in, self.hidden_max, 1, bias=False)
        self.expand_bn = SuperBatchNorm(self.hidden_max)
        self.depthwise = conv(
            self.hidden_max, self.hidden_max, self.k_max, stride=stride, groups=self.hidden_max,
            bias=False, padding=self.k_max // 2,
        )  # fmt: skip
        self.depthwise_bn = SuperBatchNorm(self.hidden_max)
        self.project = conv(self.hidden_max, c_out, 1, bias=False)
        self.project_bn = SuperBatchNorm(c_out)

    def weights_for(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (expand, depthwise, project) weights of choice ``key = (k, e)``: views."""
        k, e = key
        hidden = e * self.c_in
        lo = (self.k_max - k) // 2
        crop = (slice(lo, lo + k),) * self.dims
        return (
            self.expand.weight[:hidden],
            self.depthwise.weight[(slice(0, hidden), slice(None), *crop)],
            self.project.weight[:, :hidden],
        )

    def forward(self, x: torch.Tensor, key: tuple[int, int] | None) -> torch.Tensor:
        if key is None:
            return x
        w_expand, w_dw, w_project = self.weights_for(key)
        conv = _conv_fn(self.dims)
        k, hidden = key[0], w_expand.shape[0]
        h = F.relu(self.expand_bn(conv(x, w_expand)))
        h = F.relu(
            self.depthwise_bn(conv(h, w_dw, stride=self.stride, padding=k // 2, groups=hidden))
        )
        out = self.project_bn(conv(h, w_project))
        return out + x if self.residual else out

    def extract(self, key: tuple[int, int] | None) -> nn.Module | None:
        if key is None:
            return None
        k, e = key
        hidden = e * self.c_in
        w_expand, w_dw, w_project = self.weights_for(key)
        conv = functools.partial(
            _conv_cls(self.dims), bias=False, device=w_expand.device, dtype=w_expand.dtype
        )
        expand = conv(self.c_in, hidden, 1)
        depthwise = conv(hidden, hidden, k, stride=self.stride, padding=k // 2, groups=hidden)
        project = conv(hidden, self.c_out, 1)
        with torch.no_grad():
            expand.weight.copy_(w_expand)
            depthwise.weight.copy_(w_dw)
            project.weight.copy_(w_project)
        return _StaticBlock(
            nn.Sequential(
                expand,
                self.expand_bn.to_plain(hidden, self.dims),
                nn.ReLU(),
                depthwise,
                self.depthwise_bn.to_plain(hidden, self.dims),
                nn.ReLU(),
                project,
                self.project_bn.to_plain(self.c_out, self.dims),
            ),
            self.residual,
        )


class _StaticBlock(nn.Module):
    def __init__(self, body: nn.Sequential, residual: bool):
        super().__init__()
        self.body = body
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


class ElasticSupernet(Supernet):
    """A Once-for-All style elastic supernet (see the module docstring), 1-D or 2-D.

    Params of :attr:`space`: ``"s{i}_depth"`` (over the `depths` up to the stage's max
    depth) for every stage ``i``, and for
    block ``j`` of stage ``i`` ``"s{i}_b{j}_k"`` (over `kernel_sizes`) and ``"s{i}_b{j}_e"``
    (over `expand_ratios`); blocks beyond the smallest depth are conditional on the depth.

    Args:
        dims: 2 for images, 1 for sequences.
        in_channels: input channels.
        num_classes: classifier outputs.
        stem: channels of the stem convolution (3-wide, stride 1, BN, ReLU).
        stages: ``(out_channels, max_depth, stride)`` per stage; the first block of a stage
            has the stride and changes the channel count.
        kernel_sizes: the elastic kernel sizes (odd), smallest first.
        expand_ratios: the elastic expansion ratios, smallest first.
        depths: the elastic depths; every stage's max depth must be one of them, and a stage
            chooses among those up to its max depth.

    Example:
        >>> from airda.nas.supernet import ElasticSupernet
        >>> net = ElasticSupernet(dims=2, in_channels=1, stem=8, stages=((8, 2, 1), (16, 3, 2)),
        ...                       depths=(1, 2, 3))
        >>> net.largest()["s1_depth"], net.smallest()["s1_b0_k"]
        (3, 3)
        >>> net.space.size()  # stage 0: 9 + 9**2 subnets; stage 1: 9 + 9**2 + 9**3
        73710.0
    """

    def __init__(
        self,
        *,
        dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 10,
        stem: int = 16,
        stages: Sequence[Sequence[int]] = ((24, 4, 1), (40, 4, 2), (80, 4, 2)),
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[int] = (3, 4, 6),
        depths: Sequence[int] = (2, 3, 4),
    ):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims!r}")
        _check_int("in_channels", in_channels, 1)
        _check_int("num_classes", num_classes, 1)
        _check_int("stem", stem, 1)
        kernel_sizes = _sorted_choices("kernel_sizes", kernel_sizes, 1)
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd, got {kernel_sizes}")
        expand_ratios = _sorted_choices("expand_ratios", expand_ratios, 1)
        depths = _sorted_choices("depths", depths, 1)
        stages = tuple(tuple(s) for s in stages)
        if not stages:
            raise ValueError("stages must not be empty")
        for i, s in enumerate(stages):
            if len(s) != 3:
                raise ValueError(f"stage {i} must be (out_channels, max_depth, stride), got {s}")
            _check_int(f"stage {i} out_channels", s[0], 1)
            _check_int(f"stage {i} stride", s[2], 1)
            if _check_int(f"stage {i} max_depth", s[1], 1) not in depths:
                raise ValueError(
                    f"stage {i} has max depth {s[1]}, which is not one of the depths {depths}"
                )
        self.dims, self.in_channels, self.num_classes = dims, in_channels, num_classes
        self.stages = stages
        self.kernel_sizes, self.expand_ratios, self.depths = kernel_sizes, expand_ratios, depths
        self.config = {
            "kind": "elastic",
            "dims": dims,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "stem": stem,
            "stages": [list(s) for s in stages],
            "kernel_sizes": list(kernel_sizes),
            "expand_ratios": list(expand_ratios),
            "depths": list(depths),
        }
        conv = _conv_cls(dims)
        layers: list[nn.Module] = [
            _Fixed(
                nn.Sequential(
                    conv(in_channels, stem, 3, padding=1, bias=False),
                    SuperBatchNorm(stem),
                    nn.ReLU(),
                ),
                dims,
            )
        ]
        self.block_layers: dict[tuple[int, int], int] = {}
        channels = stem
        for i, (c_out, max_depth, stride) in enumerate(stages):
            for j in range(max_depth):
                self.block_layers[(i, j)] = len(layers)
                layers.append(
                    ElasticBlock(
                        channels if j == 0 else c_out,
                        c_out,
                        stride if j == 0 else 1,
                        kernel_sizes,
                        expand_ratios,
                        dims,
                    )
                )
            channels = c_out
        layers.append(_Fixed(_Head(channels, num_classes, dims, None), dims))
        self.layers = nn.ModuleList(layers)

    def _build_space(self) -> Space:
        params: dict[str, Any] = {}
        for i, (_, max_depth, _) in enumerate(self.stages):
            stage_depths = [d for d in self.depths if d <= max_depth]
            params[f"s{i}_depth"] = Categorical(stage_depths)
            for j in range(max_depth):
                when = None
                if j >= min(stage_depths):
                    when = {f"s{i}_depth": [d for d in stage_depths if d > j]}
                params[f"s{i}_b{j}_k"] = Categorical(self.kernel_sizes, when=when)
                params[f"s{i}_b{j}_e"] = Categorical(self.expand_ratios, when=when)
        return Space(params)

    def path(self, arch: Any) -> tuple[Hashable, ...]:
        params = self.validate(arch)
        keys: list[Hashable] = [None] * len(self.layers)
        for (i, j), layer in self.block_layers.items():
            if j < params[f"s{i}_depth"]:
                keys[layer] = (params[f"s{i}_b{j}_k"], params[f"s{i}_b{j}_e"])
        return tuple(keys)


def _sorted_choices(name: str, values: Iterable[int], low: int) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        _check_int(name, v, low)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has repeated values: {values}")
    return tuple(sorted(values))


__getattr__ = moved_names(__name__, _MOVED)

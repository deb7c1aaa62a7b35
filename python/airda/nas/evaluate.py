"""Evaluate subnets of a supernet with inherited weights.

:func:`evaluate_loop` extracts each subnet, re-estimates its batch-norm statistics on
calibration data (:func:`recalibrate_bn`) and evaluates it, one subnet after another.
:func:`evaluate_many` gives the same results for a whole population in one pass, sharing the
work the subnets have in common:

- **A prefix tree over the population.** ``supernet.path(arch)[l]`` is the choice of layer
  ``l``, and the output of layer ``l`` depends only on ``path[: l + 1]``. The population's paths
  form a trie whose node at depth ``l`` is a distinct prefix; each node's layer runs once,
  whatever the number of subnets below it. An evolutionary population, where each child is
  one mutation away from its parent, shares long prefixes.
- **Batch-norm recalibration on the trie.** The statistics a subnet's batch norms collect at
  layer ``l`` also depend only on ``path[: l + 1]``, so each trie node collects them once: the
  calibration batches go through the trie in training-mode normalisation (each batch norm
  normalises with its batch's statistics), and each node keeps the cumulative average of its
  batch means and unbiased variances, as :func:`recalibrate_bn` does for an
  extracted subnet. Evaluation then normalises every node with its own statistics
  (:attr:`~airda.nas.supernet.SuperBatchNorm.override`).
- **Sharing inside a layer.** In an NB201 cell, an edge's output depends on the op chosen and
  on the node it reads, not on the whole cell: subnets that reach the same node value and pick
  the same op share it (all the subnets entering their first cell from the shared stem do). In
  an elastic block, siblings (same input, different ``(k, e)``) share the expand convolution
  (their hidden channels are prefixes of the widest one's) and, per kernel size, the depthwise
  convolution.
- **Grouping across subnets.** Subnets whose nodes differ at a layer can run the layer as one
  launch (``group=True``, the default on CUDA): per NB201 edge, the inputs of every subnet
  choosing the same op are concatenated along the batch and the op runs once, its batch norm
  applied per subnet; in elastic blocks the pointwise convolutions run per expansion ratio over
  concatenated inputs and the depthwise convolutions of all subnets, of any kernel size and
  width, run as one :func:`airda.ops.grouped_depthwise_conv` with the batch norm and ReLU
  folded in. On a CPU the concatenation costs more than the launches it saves, and PyTorch's
  depthwise convolution is faster than the grouped C++ kernel, so ``group`` defaults to False
  there (see docs/evaluate_many.md for the measurements).

Results equal :func:`evaluate_loop`'s up to float rounding (the tests check
1e-5).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from airda.nas.nb201 import EDGES, NUM_NODES
from airda.nas.supernet import ElasticBlock, NB201SuperCell, SuperBatchNorm, Supernet

__all__ = ["evaluate_loop", "evaluate_many", "recalibrate_bn"]

# Activations of one level of the trie kept at once, in bytes, before the level is split into
# slices processed one after another (depth first): bounds memory for large populations.
_LEVEL_BYTES = 256 * 2**20

Stats = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]


def _batches(x: torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    for start in range(0, x.shape[0], batch_size):
        yield x[start : start + batch_size]


# ---- the prefix tree ------------------------------------------------------------------------


@dataclass
class _Trie:
    """levels[l] lists the nodes at depth l as (parent index at depth l - 1, key)."""

    levels: list[list[tuple[int, Hashable]]]
    leaf_of: list[int]  # arch index -> node index at the last level
    children: list[list[list[int]]] = field(default_factory=list)  # [l][parent] -> nodes at l

    @classmethod
    def build(cls, paths: Sequence[tuple[Hashable, ...]]) -> _Trie:
        depth = len(paths[0])
        levels: list[list[tuple[int, Hashable]]] = []
        ids = [0] * len(paths)  # node of each arch at the previous level (the root is 0)
        parents = 1
        children: list[list[list[int]]] = []
        for level in range(depth):
            index: dict[tuple[int, Hashable], int] = {}
            nodes: list[tuple[int, Hashable]] = []
            kids: list[list[int]] = [[] for _ in range(parents)]
            for a, path in enumerate(paths):
                item = (ids[a], path[level])
                if item not in index:
                    index[item] = len(nodes)
                    kids[ids[a]].append(len(nodes))
                    nodes.append(item)
                ids[a] = index[item]
            levels.append(nodes)
            children.append(kids)
            parents = len(nodes)
        return cls(levels, ids, children)

    def nodes(self) -> int:
        return sum(len(level) for level in self.levels)


# ---- batch norm with per-node statistics -----------------------------------------------------


class _NormState:
    """How the batch norms of the layer being run normalise.

    mode "calib": with the batch's statistics (training-mode normalisation), recording per
    module the batch mean and unbiased variance in `record`; mode "eval": with `stats` (a
    node's recalibrated statistics) or, for modules not in it, the running statistics.
    """

    def __init__(self) -> None:
        self.mode = "eval"
        self.stats: Stats | None = None
        self.record: Stats = {}
        self.saved: dict[nn.Module, tuple[Any, ...]] = {}

    def calib_norm(self, bn: SuperBatchNorm, h: torch.Tensor) -> torch.Tensor:
        """Training-mode batch norm of `h` (its batch's statistics), recording the batch mean
        and unbiased variance: PyTorch's own kernel, with momentum 1 into scratch buffers."""
        c = h.shape[1]
        mean = torch.zeros(c, dtype=h.dtype, device=h.device)
        var = torch.ones(c, dtype=h.dtype, device=h.device)
        y = F.batch_norm(h, mean, var, bn.weight[:c], bn.bias[:c], True, 1.0, bn.eps)
        self.record[bn] = (mean, var)
        return y

    def norm(self, bn: SuperBatchNorm, h: torch.Tensor) -> torch.Tensor:
        c = h.shape[1]
        if self.mode == "calib":
            return self.calib_norm(bn, h)
        if self.stats is not None and bn in self.stats:
            mean, var = self.stats[bn]
        else:
            mean, var = bn.running_mean[:c], bn.running_var[:c]
        return F.batch_norm(h, mean, var, bn.weight[:c], bn.bias[:c], False, 0.0, bn.eps)

    def affine(self, bn: SuperBatchNorm, stats: Stats | None, c: int) -> tuple[torch.Tensor, ...]:
        """The eval-mode batch norm as ``h * scale + shift`` (for folding into a kernel)."""
        if stats is not None and bn in stats:
            mean, var = stats[bn]
        else:
            mean, var = bn.running_mean[:c], bn.running_var[:c]
        scale = bn.weight[:c] / torch.sqrt(var + bn.eps)
        return scale, bn.bias[:c] - mean * scale

    # hooks on every SuperBatchNorm, for layers run through their own forward: in calib mode
    # the module runs in training mode on scratch running buffers (momentum 1, so they end
    # holding the batch's statistics), which are recorded and the real buffers put back
    def pre_hook(self, bn: nn.Module, args: tuple[Any, ...]) -> None:
        if not isinstance(bn, SuperBatchNorm):
            return
        if self.mode == "calib":
            self.saved[bn] = (
                bn.running_mean,
                bn.running_var,
                bn.num_batches_tracked,
                bn.momentum,
                bn.training,
            )
            bn._buffers["running_mean"] = torch.zeros_like(bn.running_mean)
            bn._buffers["running_var"] = torch.ones_like(bn.running_var)
            bn._buffers["num_batches_tracked"] = torch.zeros_like(bn.num_batches_tracked)
            bn.momentum, bn.training, bn.override = 1.0, True, None
        elif self.stats is not None and bn in self.stats:
            bn.override = self.stats[bn]
        else:
            bn.override = None

    def post_hook(self, bn: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if not isinstance(bn, SuperBatchNorm) or bn not in self.saved:
            return
        c = args[0].shape[1]
        self.record[bn] = (bn.running_mean[:c], bn.running_var[:c])
        self.restore(bn)

    def restore(self, bn: SuperBatchNorm) -> None:
        mean, var, count, momentum, training = self.saved.pop(bn)
        bn._buffers["running_mean"] = mean
        bn._buffers["running_var"] = var
        bn._buffers["num_batches_tracked"] = count
        bn.momentum, bn.training = momentum, training


# ---- layers ------------------------------------------------------------------------------------
#
# A level runs `items`: one (input tensor, key, stats) per trie node of the level (stats: the
# node's recalibrated statistics in eval mode, None otherwise); it returns per item the output
# and, in calib mode, the statistics the node's batch norms collected.


def _run_generic(layer, items, state: _NormState, group: bool) -> list[tuple[torch.Tensor, Stats]]:
    out = []
    for x, key, stats in items:
        state.stats, state.record = stats, {}
        y = layer(x, key)
        out.append((y, state.record))
    for bn in layer.modules():
        if isinstance(bn, SuperBatchNorm):
            bn.override = None
    state.stats, state.record = None, {}
    return out


def _fold(weight: torch.Tensor, bn: SuperBatchNorm, state: _NormState, stats: Stats | None):
    """A convolution weight (out channels first) and bias with the eval batch norm after it
    folded in."""
    scale, shift = state.affine(bn, stats, weight.shape[0])
    return weight * scale.reshape(-1, *[1] * (weight.dim() - 1)), shift


def _relu_conv_bn(
    op: nn.Sequential, xs: list[torch.Tensor], stats: list[Stats | None], state, group: bool
) -> tuple[list[torch.Tensor], list[Stats]]:
    """NB201's ReLU-conv-BN on several inputs (one per distinct edge computation)."""
    conv, bn = op[1], op[2]
    if state.mode == "eval" and not group:
        # eval: the batch norm folded into the convolution (one pass over the output fewer)
        fn = F.conv2d if conv.weight.dim() == 4 else F.conv1d
        outs = []
        for x, st in zip(xs, stats, strict=True):
            w, b = _fold(conv.weight, bn, state, st)
            outs.append(fn(F.relu(x), w, b, conv.stride, conv.padding))
        return outs, [{} for _ in xs]
    if group and len(xs) > 1:
        h = conv(F.relu(torch.cat(xs)))
        h, recs = _segment_norm(state, bn, h, stats)
        outs = list(h.split(xs[0].shape[0]))
        records = [{bn: rec} for rec in recs] if recs is not None else [{} for _ in xs]
        return outs, records
    parts = [conv(F.relu(x)) for x in xs]
    outs, records = [], []
    for h, st in zip(parts, stats, strict=True):
        state.stats, state.record = st, {}
        outs.append(state.norm(bn, h))
        records.append(state.record)
    state.stats, state.record = None, {}
    return outs, records


def _run_nb201_cell(cell: NB201SuperCell, items, state: _NormState, group: bool):
    """An NB201 cell for several trie nodes, sharing edge computations.

    A node value is identified by the input it derives from and the edge computations summed
    into it; an edge computation by its source node value and its op. Each distinct edge
    computation runs once (per op, all of an edge's at once when grouping)."""
    calib = state.mode == "calib"
    values: dict[Hashable, torch.Tensor] = {}
    ident: list[list[Hashable]] = []  # per item: identity of nodes 0..3 (None: no input yet)
    for n, (x, _key, _stats) in enumerate(items):
        values[("in", n)] = x
        ident.append([("in", n)] + [None] * (NUM_NODES - 1))
    # Items with the same input tensor share it: identify inputs by the tensor object.
    by_tensor: dict[int, Hashable] = {}
    for n, (x, _key, _stats) in enumerate(items):
        ident[n][0] = by_tensor.setdefault(id(x), ("in", n))
    records: list[Stats] = [{} for _ in items]
    edge_stats: dict[Hashable, Stats] = {}  # edge computation -> its collected statistics
    for k, (i, j) in enumerate(EDGES):
        todo: dict[str, dict[Hashable, list[int]]] = {}
        for n, (_x, key, _stats) in enumerate(items):
            op = key[k]
            if op == "none":
                continue
            src = ident[n][i]
            if src is None:
                src = ("zero", ident[n][0])
                if src not in values:
                    values[src] = torch.zeros_like(values[ident[n][0]])
            todo.setdefault(op, {}).setdefault((src, k, op), []).append(n)
        for op, comps in todo.items():
            module = cell.edges[k][op]
            names = list(comps)
            if op == "skip_connect":
                for name in names:
                    values[name] = values[name[0]]
                continue
            if op == "avg_pool_3x3":
                srcs = [values[name[0]] for name in names]
                if group and len(srcs) > 1:
                    pooled = module(torch.cat(srcs)).split(srcs[0].shape[0])
                else:
                    pooled = [module(s) for s in srcs]
                values.update(zip(names, pooled, strict=True))
                continue
            bn = module[2]
            # in eval mode, a computation's statistics are those of any node that uses it
            st = [None if calib else items[comps[name][0]][2] for name in names]
            outs, recs = _relu_conv_bn(
                module, [values[name[0]] for name in names], st, state, group
            )
            values.update(zip(names, outs, strict=True))
            if calib:
                for name, rec in zip(names, recs, strict=True):
                    edge_stats[name] = rec
                    for n in comps[name]:
                        records[n][bn] = rec[bn]
        # node j of every item: its previous identity plus this edge's computation
        for n, (_x, key, _stats) in enumerate(items):
            op = key[k]
            if op == "none":
                continue
            src = ident[n][i] if ident[n][i] is not None else ("zero", ident[n][0])
            comp = (src, k, op)
            prev = ident[n][j]
            new = ("sum", prev, comp) if prev is not None else comp
            if new not in values:
                values[new] = values[comp] if prev is None else values[prev] + values[comp]
            ident[n][j] = new
    out = []
    for n, (x, _key, _stats) in enumerate(items):
        last = ident[n][NUM_NODES - 1]
        out.append((torch.zeros_like(x) if last is None else values[last], records[n]))
    return out


def _run_elastic_folded(block: ElasticBlock, items, active, out, state: _NormState):
    """Eval-mode elastic blocks, one subnet after another with every batch norm folded into its
    convolution; siblings share the expand and, per kernel size, the depthwise convolution."""
    conv = F.conv2d if block.dims == 2 else F.conv1d
    hidden_of = {n: items[n][1][1] * block.c_in for n in active}
    by_input: dict[int, list[int]] = {}
    for n in active:
        by_input.setdefault(id(items[n][0]), []).append(n)
    hidden_in: dict[int, torch.Tensor] = {}
    for users in by_input.values():
        lead = max(users, key=lambda n: hidden_of[n])
        w, b = _fold(block.expand.weight[: hidden_of[lead]], block.expand_bn, state, items[lead][2])
        h = F.relu(conv(items[lead][0], w, b), inplace=True)
        for n in users:
            hidden_in[n] = h if hidden_of[n] == hidden_of[lead] else h[:, : hidden_of[n]]
    dw_users: dict[tuple[int, int], list[int]] = {}
    for n in active:
        dw_users.setdefault((id(items[n][0]), items[n][1][0]), []).append(n)
    hidden_out: dict[int, torch.Tensor] = {}
    for (_src, k), users in dw_users.items():
        lead = max(users, key=lambda n: hidden_of[n])
        c = hidden_of[lead]
        lo = (block.k_max - k) // 2
        crop = (slice(0, c), slice(None)) + (slice(lo, lo + k),) * block.dims
        w, b = _fold(block.depthwise.weight[crop], block.depthwise_bn, state, items[lead][2])
        h = conv(hidden_in[lead], w, b, stride=block.stride, padding=k // 2, groups=c)
        h = F.relu(h, inplace=True)
        for n in users:
            hidden_out[n] = h if hidden_of[n] == c else _dense(h[:, : hidden_of[n]])
    for n in active:
        w, b = _fold(block.project.weight[:, : hidden_of[n]], block.project_bn, state, items[n][2])
        y = conv(hidden_out[n], w, b)
        out[n] = (y + items[n][0] if block.residual else y, {})
    state.stats, state.record = None, {}
    return out


def _segment_norm(state: _NormState, bn: SuperBatchNorm, h: torch.Tensor, stats: list[Any]):
    """Batch norm of `h` = ``len(stats)`` equal segments concatenated along the batch, each with
    its own statistics, in a few launches whatever the number of segments.

    calib mode: each segment normalised with its batch statistics, returned per segment as
    (mean, unbiased variance); eval mode: ``stats[i]`` is segment i's node statistics (or None
    for the running ones). Returns (output, per-segment statistics or None)."""
    g, c = len(stats), h.shape[1]
    hv = h.reshape(g, h.shape[0] // g, c, -1)
    records = None
    if state.mode == "calib":
        # in double, as PyTorch's CPU batch norm accumulates
        var, mean = torch.var_mean(hv.double(), dim=(1, 3), unbiased=False)
        n = hv.shape[1] * hv.shape[3]
        unbiased = (var * (n / max(n - 1, 1))).to(h.dtype)
        var, mean = var.to(h.dtype), mean.to(h.dtype)
        records = [(mean[i], unbiased[i]) for i in range(g)]
    else:
        pairs = [
            st[bn] if st is not None and bn in st else (bn.running_mean[:c], bn.running_var[:c])
            for st in stats
        ]
        mean = torch.stack([m[:c] for m, _ in pairs])
        var = torch.stack([v[:c] for _, v in pairs])
    # (x - mean) * (weight / std) + bias, the order batch_norm computes in
    scale = bn.weight[:c] / torch.sqrt(var + bn.eps)
    y = (hv - mean[:, None, :, None]) * scale[:, None, :, None] + bn.bias[:c, None]
    return y.reshape(h.shape), records


def _run_elastic(block: ElasticBlock, items, state: _NormState, group: bool):
    """Elastic blocks for several trie nodes (see the module docstring)."""
    out: list[Any] = [None] * len(items)
    active = []
    for n, (x, key, _stats) in enumerate(items):
        if key is None:
            out[n] = (x, {})
        else:
            active.append(n)
    if not active:
        return out
    if group:
        return _run_elastic_grouped(block, items, active, out, state)
    if state.mode == "eval":
        return _run_elastic_folded(block, items, active, out, state)
    return _run_elastic_calib(block, items, active, out, state)


def _run_elastic_calib(block: ElasticBlock, items, active, out, state: _NormState):
    """Calibration of elastic blocks, one distinct computation after another: siblings share
    the expand convolution and, per kernel size, the depthwise one (batch statistics are per
    channel, so a prefix of the widest sibling's are the narrower siblings')."""
    conv = F.conv2d if block.dims == 2 else F.conv1d
    records: dict[int, Stats] = {n: {} for n in active}
    hidden_of = {n: items[n][1][1] * block.c_in for n in active}

    def norm(bn, h, users):
        state.record = {}
        y = state.calib_norm(bn, h)
        mean, var = state.record[bn]
        for n in users:  # hidden batch norms: each user's prefix; the project's: all channels
            c = h.shape[1] if bn is block.project_bn else hidden_of[n]
            records[n][bn] = (mean[:c], var[:c])
        return y

    by_input: dict[int, list[int]] = {}
    for n in active:
        by_input.setdefault(id(items[n][0]), []).append(n)
    hidden_in: dict[int, torch.Tensor] = {}
    for users in by_input.values():
        lead = max(users, key=lambda n: hidden_of[n])
        h = conv(items[lead][0], block.expand.weight[: hidden_of[lead]])
        y = F.relu(norm(block.expand_bn, h, users), inplace=True)
        for n in users:
            hidden_in[n] = y[:, : hidden_of[n]]
    dw_users: dict[tuple[int, int], list[int]] = {}
    for n in active:
        dw_users.setdefault((id(items[n][0]), items[n][1][0]), []).append(n)
    hidden_out: dict[int, torch.Tensor] = {}
    for (_src, k), users in dw_users.items():
        lead = max(users, key=lambda n: hidden_of[n])
        c = hidden_of[lead]
        lo = (block.k_max - k) // 2
        crop = (slice(0, c), slice(None)) + (slice(lo, lo + k),) * block.dims
        h = conv(hidden_in[lead], block.depthwise.weight[crop], stride=block.stride,
                 padding=k // 2, groups=c)  # fmt: skip
        y = F.relu(norm(block.depthwise_bn, h, users), inplace=True)
        for n in users:
            hidden_out[n] = y[:, : hidden_of[n]]
    for n in active:
        h = conv(hidden_out[n], block.project.weight[:, : hidden_of[n]])
        y = norm(block.project_bn, h, [n])
        out[n] = (y + items[n][0] if block.residual else y, records[n])
    state.stats, state.record = None, {}
    return out


def _run_elastic_grouped(block: ElasticBlock, items, active, out, state: _NormState):
    """Elastic blocks of many trie nodes as grouped launches: the expand and project
    convolutions once per hidden width over the concatenated inputs, their batch norms per
    segment in one go, and every depthwise convolution (any kernel size and width) as one
    :func:`airda.ops.grouped_depthwise_conv`, with its batch norm and ReLU folded in when the
    statistics are known (eval)."""
    from airda.ops import grouped_depthwise_conv

    calib = state.mode == "calib"
    conv = F.conv2d if block.dims == 2 else F.conv1d
    records: dict[int, Stats] = {n: {} for n in active}
    hidden_of = {n: items[n][1][1] * block.c_in for n in active}

    def record(bn, rec, users):
        mean, var = rec
        for n in users:  # hidden batch norms: each user's prefix; the project's: all channels
            c = mean.shape[0] if bn is block.project_bn else hidden_of[n]
            records[n][bn] = (mean[:c], var[:c])

    # expand: one segment per distinct input, at the widest width among its users
    by_input: dict[int, list[int]] = {}
    for n in active:
        by_input.setdefault(id(items[n][0]), []).append(n)
    by_width: dict[int, list[list[int]]] = {}
    for users in by_input.values():
        by_width.setdefault(max(hidden_of[n] for n in users), []).append(users)
    hidden_in: dict[int, torch.Tensor] = {}
    for width, segments in by_width.items():
        leads = [max(users, key=lambda n: hidden_of[n]) for users in segments]
        xs = [items[lead][0] for lead in leads]
        h = conv(torch.cat(xs) if len(xs) > 1 else xs[0], block.expand.weight[:width])
        h, recs = _segment_norm(state, block.expand_bn, h, [items[m][2] for m in leads])
        h = F.relu(h, inplace=True)
        for i, (users, part) in enumerate(zip(segments, h.split(xs[0].shape[0]), strict=True)):
            if calib:
                record(block.expand_bn, recs[i], users)
            for n in users:
                hidden_in[n] = part[:, : hidden_of[n]]
    # depthwise: one group per (input, kernel size), all in one launch
    dw_users: dict[tuple[int, int], list[int]] = {}
    for n in active:
        dw_users.setdefault((id(items[n][0]), items[n][1][0]), []).append(n)
    groups = list(dw_users.items())
    leads = [max(users, key=lambda n: hidden_of[n]) for _, users in groups]
    xs = [hidden_in[lead] for lead in leads]
    kernel_sizes = [k for (_src, k), _ in groups]
    if calib:
        ys = grouped_depthwise_conv(xs, block.depthwise.weight, kernel_sizes, stride=block.stride)
        # batch norm per width: the groups of one width stacked as segments
        normed: list[Any] = [None] * len(groups)
        widths: dict[int, list[int]] = {}
        for i, lead in enumerate(leads):
            widths.setdefault(hidden_of[lead], []).append(i)
        for idx in widths.values():
            h = torch.cat([ys[i] for i in idx]) if len(idx) > 1 else ys[idx[0]]
            h, recs = _segment_norm(state, block.depthwise_bn, h, [None] * len(idx))
            h = F.relu(h, inplace=True)
            for i, part, rec in zip(idx, h.split(ys[idx[0]].shape[0]), recs, strict=True):
                normed[i] = part
                record(block.depthwise_bn, rec, groups[i][1])
        ys = normed
    else:
        affine = [
            state.affine(block.depthwise_bn, items[lead][2], hidden_of[lead]) for lead in leads
        ]
        ys = grouped_depthwise_conv(
            xs,
            block.depthwise.weight,
            kernel_sizes,
            stride=block.stride,
            scales=[a[0] for a in affine],
            shifts=[a[1] for a in affine],
            activation="relu",
        )
    hidden_out: dict[int, torch.Tensor] = {}
    for (_key, users), y in zip(groups, ys, strict=True):
        for n in users:
            hidden_out[n] = y if hidden_of[n] == y.shape[1] else y[:, : hidden_of[n]]
    # project: per width over the concatenated hidden tensors, batch norm per segment
    by_hidden: dict[int, list[int]] = {}
    for n in active:
        by_hidden.setdefault(hidden_of[n], []).append(n)
    for width, users in by_hidden.items():
        hs = [hidden_out[n] for n in users]
        h = conv(torch.cat(hs) if len(hs) > 1 else hs[0], block.project.weight[:, :width])
        h, recs = _segment_norm(state, block.project_bn, h, [items[n][2] for n in users])
        if block.residual:
            xs = [items[n][0] for n in users]
            h = h + (torch.cat(xs) if len(xs) > 1 else xs[0])
        for i, (n, part) in enumerate(zip(users, h.split(hs[0].shape[0]), strict=True)):
            if calib:
                record(block.project_bn, recs[i], [n])
            out[n] = (part, records[n])
    state.stats, state.record = None, {}
    return out


def _runner(layer: nn.Module):
    if isinstance(layer, NB201SuperCell):
        return _run_nb201_cell
    if isinstance(layer, ElasticBlock):
        return _run_elastic
    return _run_generic


# ---- the traversal -------------------------------------------------------------------------


def _dense(t: torch.Tensor) -> torch.Tensor:
    """A dense copy of a view, in the memory format it had (channels last stays so)."""
    if t.dim() == 4 and t.stride(1) == 1 and t.shape[1] > 1:
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


class _Traversal:
    """Runs batches through the trie level by level (slices of a level depth first)."""

    def __init__(self, supernet: Supernet, trie: _Trie, state: _NormState, group: bool):
        self.layers = list(supernet.layers)
        self.runners = [_runner(layer) for layer in self.layers]
        self.trie = trie
        self.state = state
        self.group = group

    def run(self, xb: torch.Tensor, node_stats, visit, depth: int | None = None) -> None:
        """`node_stats[l][node]`: eval statistics (or None); `visit(l, node, out, record)` sees
        every node's output and collected statistics; only the first `depth` layers run."""
        self.depth = len(self.layers) if depth is None else depth
        self._level(0, [(0, xb)], node_stats, visit)

    def _level(self, level, parents, node_stats, visit) -> None:
        if level == self.depth:
            return
        items, nodes = [], []
        kids = self.trie.children[level]
        for parent, x in parents:
            for node in kids[parent]:
                key = self.trie.levels[level][node][1]
                stats = node_stats[level][node] if node_stats is not None else None
                items.append((x, key, stats))
                nodes.append(node)
        results = self.runners[level](self.layers[level], items, self.state, self.group)
        del items
        outs = []
        for node, (y, record) in zip(nodes, results, strict=True):
            visit(level, node, y, record)
            outs.append((node, y))
        del results
        # split a wide level into slices that fit the memory bound
        slices, current, size = [], [], 0
        for node, y in outs:
            nbytes = y.numel() * y.element_size()
            if current and size + nbytes > _LEVEL_BYTES:
                slices.append(current)
                current, size = [], 0
            current.append((node, y))
            size += nbytes
        if current:
            slices.append(current)
        del outs
        while slices:
            self._level(level + 1, slices.pop(0), node_stats, visit)


# ---- the entry point -----------------------------------------------------------------------


def _check(supernet, archs, x, y, calib, batch_size):
    if not isinstance(supernet, Supernet):
        raise TypeError(f"supernet must be an airda Supernet, got {type(supernet).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    supernet.check_input(x)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (x.shape[0],):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"y must be a tensor of shape ({x.shape[0]},) (one label per input), got {got}"
        )
    param = next(supernet.parameters(), None)
    if param is not None and param.device != x.device:
        raise ValueError(f"x is on {x.device} but the supernet's weights are on {param.device}")
    if y.device != x.device:
        raise ValueError(f"y is on {y.device} but x is on {x.device}")
    if calib is not None and isinstance(calib, torch.Tensor) and calib.device != x.device:
        raise ValueError(f"calib is on {calib.device} but x is on {x.device}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= supernet.num_classes):
        raise ValueError(f"y has labels outside [0, {supernet.num_classes})")
    if x.shape[0] == 0:
        raise ValueError("x is empty")
    if calib is not None:
        try:
            supernet.check_input(calib)
        except (TypeError, ValueError) as e:
            raise ValueError(f"calib: {e}") from None
        if calib.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"calib has inputs of shape {tuple(calib.shape[1:])}, x of {tuple(x.shape[1:])}"
            )
        if calib.shape[0] == 0:
            raise ValueError("calib is empty")
    paths = []
    for i, arch in enumerate(archs):
        try:
            paths.append(supernet.path(arch))
        except ValueError as e:
            raise ValueError(f"archs[{i}]: {e}") from None
    return paths


@torch.no_grad()
def evaluate_many(
    supernet: Supernet,
    archs: Sequence[Any],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    calib: torch.Tensor | None = None,
    batch_size: int = 256,
    group: bool | None = None,
    channels_last: bool | None = None,
    return_logits: bool = False,
) -> list[dict[str, Any]]:
    """Accuracy and loss of many subnets with inherited weights, in one shared pass.

    The same results as :func:`evaluate_loop` (to float rounding), computed
    once per distinct prefix of the subnets' paths (see the module docstring).

    Args:
        supernet: an :class:`~airda.nas.supernet.Supernet` (its weights are only read; its
            batch norms' running statistics are left untouched).
        archs: the subnets (params dicts of ``supernet.space``; repeats are computed once).
        x: evaluation inputs, shaped for the supernet.
        y: their integer labels, shape ``(len(x),)``.
        calib: calibration inputs: when given, every subnet's batch-norm statistics are
            re-estimated on them first (cumulative average over batches of `batch_size`, as
            :func:`recalibrate_bn`); otherwise the supernet's running
            statistics are used.
        batch_size: evaluation and calibration batch size.
        group: run the subnets of a layer as grouped launches (see the module docstring);
            default: on CUDA tensors only.
        channels_last: run 2-D supernets on channels-last (NHWC) activations, oneDNN's fast
            layout on CPUs (about 1.6-2x faster convolutions and batch norms than NCHW on the
            development machine); default: for 4-D CPU inputs when not grouping. Results are
            the same to float rounding.
        return_logits: also return each subnet's logits.

    Returns:
        One dict per arch, in order: ``accuracy`` (fraction correct), ``loss`` (mean
        cross-entropy), and ``logits`` when asked.

    Raises:
        ValueError: an arch not in the supernet's space (naming its index and the parameter),
            inputs or labels of the wrong shape, an empty `x` or `calib`.

    Example:
        >>> import numpy as np, torch
        >>> from airda.nas.supernet import ElasticSupernet
        >>> net = ElasticSupernet(dims=1, in_channels=1, stem=4, stages=((4, 2, 1), (8, 2, 2)),
        ...                       depths=(1, 2)).eval()
        >>> rng = np.random.default_rng(0)
        >>> archs = [net.sample(rng) for _ in range(3)]
        >>> archs.append(net.mutate(archs[0], rng))
        >>> x, y = torch.randn(16, 1, 20), torch.randint(0, 10, (16,))
        >>> fast = evaluate_many(net, archs, x, y, calib=x)
        >>> slow = evaluate_loop(net, archs, x, y, calib=x)
        >>> all(abs(f["loss"] - s["loss"]) < 1e-5 for f, s in zip(fast, slow))
        True
    """
    archs = list(archs)
    paths = _check(supernet, archs, x, y, calib, batch_size)
    if not archs:
        return []
    if group is None:
        group = x.is_cuda
    if channels_last is None:
        channels_last = x.dim() == 4 and not x.is_cuda and not group
    if channels_last and x.dim() != 4:
        raise ValueError(f"channels_last needs 4-D (2-D image) inputs, got {x.dim()}-D")

    def layout(batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch

    trie = _Trie.build(paths)
    state = _NormState()
    traversal = _Traversal(supernet, trie, state, group)
    last = len(trie.levels) - 1
    norms = [m for m in supernet.modules() if isinstance(m, SuperBatchNorm)]
    modes = {m: m.training for m in supernet.modules()}
    handles = [m.register_forward_pre_hook(state.pre_hook) for m in norms]
    handles += [m.register_forward_hook(state.post_hook) for m in norms]
    supernet.eval()
    try:
        node_stats = None
        if calib is not None:
            # per node and module, the cumulative average of the batch means and unbiased
            # variances, updated as PyTorch updates running statistics with momentum None
            # (in double, stored in the buffers' dtype), so that they agree to the last bit
            # or two
            node_stats = [[{} for _ in level] for level in trie.levels]
            batches = 0

            def collect(level, node, _out, record):
                acc = node_stats[level][node]
                f = 1.0 / batches
                for bn, (mean, var) in record.items():
                    if batches == 1:
                        acc[bn] = (mean, var)
                    else:
                        m0, v0 = acc[bn]
                        acc[bn] = (
                            (f * mean.double() + (1 - f) * m0.double()).to(m0.dtype),
                            (f * var.double() + (1 - f) * v0.double()).to(v0.dtype),
                        )

            # layers after the last one with a batch norm collect nothing: not run
            depth = 1 + max(
                (i for i, layer in enumerate(supernet.layers)
                 if any(isinstance(m, SuperBatchNorm) for m in layer.modules())),
                default=-1,
            )  # fmt: skip
            state.mode = "calib"
            for cb in _batches(calib, batch_size):
                batches += 1
                traversal.run(layout(cb), None, collect, depth)
        state.mode = "eval"
        logits: list[list[torch.Tensor]] = [[] for _ in trie.levels[last]]

        def keep(level, node, out, _record):
            if level == last:
                logits[node].append(out)

        for xb in _batches(x, batch_size):
            traversal.run(layout(xb), node_stats, keep)
    finally:
        for m in list(state.saved):  # a layer that raised mid-calibration
            state.restore(m)
        for h in handles:
            h.remove()
        for m in norms:
            m.override = None
        for m, training in modes.items():
            m.training = training
    per_leaf = []
    for parts in logits:
        z = torch.cat(parts)
        per_leaf.append(
            {
                "accuracy": float((z.argmax(1) == y).float().mean()),
                "loss": float(F.cross_entropy(z, y)),
                "logits": z,
            }
        )
    results = []
    for leaf in trie.leaf_of:
        r = dict(per_leaf[leaf])
        if not return_logits:
            del r["logits"]
        results.append(r)
    return results


# ---- one subnet at a time: the baseline evaluate_many is measured against --------------------


@torch.no_grad()
def recalibrate_bn(
    module: nn.Module, calib: torch.Tensor, *, arch: Any = None, batch_size: int = 256
) -> nn.Module:
    """Re-estimate every batch norm's running statistics of `module` on `calib`.

    The statistics are reset and re-accumulated as a cumulative average over the batches of
    `calib` in training mode (momentum ``None``), as SPOS and Once-for-All do before
    evaluating a subnet with inherited weights; the module is left in eval mode.

    Args:
        module: an extracted subnet (called ``module(x)``), or a supernet with `arch`.
        calib: calibration inputs (training images, not the evaluation set).
        arch: the subnet, when `module` is a :class:`~airda.nas.supernet.Supernet`.
        batch_size: calibration batch size.
    """
    if calib.shape[0] == 0:
        raise ValueError("calib is empty")
    norms = [
        m
        for m in module.modules()
        if isinstance(m, (SuperBatchNorm, nn.modules.batchnorm._BatchNorm))
    ]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    try:
        for xb in _batches(calib, batch_size):
            module(xb) if arch is None else module(xb, arch)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        module.eval()
    return module


@torch.no_grad()
def evaluate_loop(
    supernet: Supernet,
    archs: Sequence[Any],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    calib: torch.Tensor | None = None,
    batch_size: int = 256,
    return_logits: bool = False,
) -> list[dict[str, Any]]:
    """Accuracy and loss of subnets with inherited weights, one subnet after another.

    Each subnet is extracted (:meth:`~airda.nas.supernet.Supernet.extract`); with `calib`, its
    batch-norm statistics are re-estimated on it (:func:`recalibrate_bn`); then it is evaluated
    in eval mode on ``(x, y)``. This is the baseline :func:`evaluate_many` is measured against,
    and gives the same results.

    Returns:
        One dict per arch: ``accuracy`` (fraction correct), ``loss`` (mean cross-entropy), and
        ``logits`` (a tensor) when `return_logits`.

    Example:
        >>> import numpy as np, torch
        >>> from airda.nas.evaluate import evaluate_loop
        >>> from airda.nas.supernet import NB201Supernet
        >>> net = NB201Supernet(dims=1, in_channels=1, C=4, N=1)
        >>> archs = [net.sample(np.random.default_rng(s)) for s in range(2)]
        >>> x, y = torch.randn(8, 1, 40), torch.randint(0, 10, (8,))
        >>> [sorted(r) for r in evaluate_loop(net, archs, x, y, calib=x)]
        [['accuracy', 'loss'], ['accuracy', 'loss']]
    """
    supernet.check_input(x)
    if calib is not None:
        supernet.check_input(calib)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    results = []
    for arch in archs:
        sub = supernet.extract(arch)
        if calib is not None:
            recalibrate_bn(sub, calib, batch_size=batch_size)
        sub.eval()
        logits = torch.cat([sub(xb) for xb in _batches(x, batch_size)])
        result: dict[str, Any] = {
            "accuracy": float((logits.argmax(1) == y).float().mean()),
            "loss": float(F.cross_entropy(logits, y)),
        }
        if return_logits:
            result["logits"] = logits
        results.append(result)
    return results

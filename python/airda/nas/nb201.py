"""The NAS-Bench-201 cell space: architectures, their encodings, equivalence, and an airda Space.

A cell is a DAG on four nodes: node 0 is the cell's input, node 3 its output, and every pair
``i < j`` is joined by one edge carrying one of five operations (:data:`OPS`). Node ``j`` is
the sum of its incoming edges' outputs. Six edges with five choices each make 5**6 = 15,625
architectures (Dong & Yang, "NAS-Bench-201", ICLR 2020).

Encodings of one architecture, all exact inverses of each other:

- the benchmark's **arch string** ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node 1's input
  edge, then node 2's two, then node 3's three; ``~k`` names the source node;
- an **index** in 0..15,624 defined here (not the benchmark's own row order): the op ids
  (positions in :data:`OPS`) of the six edges in :data:`EDGES` order are the base-5 digits of
  the index, edge 0->1 the most significant. Index order is lexicographic order of the op-id
  tuple, which is also the order :meth:`airda.space.Space.enumerate` lists :func:`nb201_space`;
- **NASLib's 6-tuple**: op ids in NASLib's numbering (:data:`NASLIB_OPS`) on NASLib's edge
  order (:data:`NASLIB_EDGES`: 0->1, 0->2, 0->3, 1->2, 1->3, 2->3);
- the **params** of :func:`nb201_space`: ``{"0->1": op, "0->2": op, ...}``.

The benchmark table's own ``index`` column is a different order; look an architecture up by
that index through the table (:meth:`airda.nas.TabularBenchmark.arch_at`), not by formula.

Example:
    >>> from airda.nas.nb201 import Arch
    >>> a = Arch.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    >>> a.index, a.to_naslib()
    (9602, (2, 1, 4, 0, 1, 3))
    >>> Arch.from_index(a.index) == a == Arch.from_naslib(a.to_naslib())
    True
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airda.space import Space

__all__ = [
    "EDGES",
    "EDGE_NAMES",
    "NASLIB_EDGES",
    "NASLIB_OPS",
    "NUM_ARCHS",
    "OPS",
    "Arch",
    "ArchLike",
    "arch_to_params",
    "as_arch",
    "canonical",
    "is_degenerate",
    "nb201_space",
    "params_to_arch",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five cell operations; an op's id is its position here."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""The six edges (source, target) in the arch string's order."""

EDGE_NAMES: tuple[str, ...] = tuple(f"{i}->{j}" for i, j in EDGES)
"""Parameter names of :func:`nb201_space`, in :data:`EDGES` order."""

NASLIB_OPS: tuple[str, ...] = (
    "skip_connect",
    "none",
    "nor_conv_3x3",
    "nor_conv_1x1",
    "avg_pool_3x3",
)
"""NASLib's op numbering: NASLib id k is the op ``NASLIB_OPS[k]``."""

NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
"""NASLib's edge order for its 6-tuples."""

NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625
NUM_NODES = 4

_OP_ID = {op: k for k, op in enumerate(OPS)}
_EDGE_POS = {e: k for k, e in enumerate(EDGES)}
# NASLib tuple position k holds the edge at our position _NASLIB_TO_OURS[k].
_NASLIB_TO_OURS = tuple(_EDGE_POS[e] for e in NASLIB_EDGES)


@dataclass(frozen=True)
class Arch:
    """One NAS-Bench-201 cell: the op names of the six edges in :data:`EDGES` order.

    Immutable and hashable; build one from any encoding with the ``from_*`` constructors or
    :func:`as_arch`. Invalid input raises ``ValueError`` saying what is wrong.

    Example:
        >>> a = Arch(("nor_conv_3x3", "skip_connect", "none", "none", "none", "avg_pool_3x3"))
        >>> str(a)
        '|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|'
        >>> a.op(2, 3), a.to_params()["0->2"]
        ('avg_pool_3x3', 'skip_connect')
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = self.ops
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise ValueError(f"Arch needs a sequence of {len(EDGES)} op names, got {ops!r}")
        ops = tuple(ops)
        if len(ops) != len(EDGES):
            raise ValueError(f"Arch needs {len(EDGES)} ops (one per edge), got {len(ops)}: {ops!r}")
        for e, op in zip(EDGE_NAMES, ops, strict=True):
            if not isinstance(op, str) or op not in _OP_ID:
                raise ValueError(f"edge {e}: unknown op {op!r}; the ops are {list(OPS)}")
        object.__setattr__(self, "ops", ops)

    # ---- arch string ---------------------------------------------------------------------
    @classmethod
    def from_string(cls, text: str) -> Arch:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; ValueError names the problem."""
        if not isinstance(text, str):
            raise ValueError(f"an arch string must be a str, got {type(text).__name__}: {text!r}")
        return _parse(text.strip())

    def to_string(self) -> str:
        """The benchmark's arch string."""
        nodes = []
        for j in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{self.op(i, j)}~{i}" for i in range(j)) + "|")
        return "+".join(nodes)

    def __str__(self) -> str:
        return self.to_string()

    # ---- index -----------------------------------------------------------------------------
    @classmethod
    def from_index(cls, index: int) -> Arch:
        """The architecture whose op ids are the base-5 digits of `index` (module docstring)."""
        if (
            isinstance(index, bool)
            or not isinstance(index, numbers.Integral)
            or not 0 <= index < NUM_ARCHS
        ):
            raise ValueError(f"an NB201 index is an int in [0, {NUM_ARCHS}), got {index!r}")
        return _from_index(int(index))

    @property
    def index(self) -> int:
        """This architecture's index in 0..15,624 (module docstring)."""
        out = 0
        for op in self.ops:
            out = out * len(OPS) + _OP_ID[op]
        return out

    @property
    def op_ids(self) -> tuple[int, ...]:
        """The op ids (positions in :data:`OPS`) in :data:`EDGES` order."""
        return tuple(_OP_ID[op] for op in self.ops)

    # ---- NASLib ----------------------------------------------------------------------------
    @classmethod
    def from_naslib(cls, ids: Sequence[int] | str) -> Arch:
        """From NASLib's 6-tuple (also its string form ``"(0, 2, 3, 2, 3, 1)"``)."""
        raw = ids
        if isinstance(ids, str):
            try:
                ids = [int(x) for x in ids.strip().strip("()[]").split(",")]
            except ValueError:
                raise ValueError(f"cannot read a NASLib tuple from {raw!r}") from None
        ids = tuple(ids)
        if len(ids) != len(NASLIB_EDGES) or not all(
            isinstance(k, numbers.Integral) and not isinstance(k, bool) and 0 <= k < len(NASLIB_OPS)
            for k in ids
        ):
            raise ValueError(
                f"a NASLib NB201 encoding is {len(NASLIB_EDGES)} ints in "
                f"[0, {len(NASLIB_OPS)}), got {raw!r}"
            )
        ops = [""] * len(EDGES)
        for k, op_id in enumerate(ids):
            ops[_NASLIB_TO_OURS[k]] = NASLIB_OPS[int(op_id)]
        return cls(tuple(ops))

    def to_naslib(self) -> tuple[int, ...]:
        """NASLib's 6-tuple: its op ids on its edge order."""
        return tuple(NASLIB_OPS.index(self.ops[_NASLIB_TO_OURS[k]]) for k in range(len(EDGES)))

    # ---- space params ------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Arch:
        """From a candidate of :func:`nb201_space` (extra keys are an error)."""
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict, got {type(params).__name__}")
        missing = [e for e in EDGE_NAMES if e not in params]
        extra = [k for k in params if k not in EDGE_NAMES]
        if missing or extra:
            raise ValueError(
                f"NB201 params need exactly the keys {list(EDGE_NAMES)}; "
                f"missing {missing}, unexpected {extra}"
            )
        return cls(tuple(params[e] for e in EDGE_NAMES))

    def to_params(self) -> dict[str, str]:
        """A candidate of :func:`nb201_space`."""
        return dict(zip(EDGE_NAMES, self.ops, strict=True))

    # ---- structure -------------------------------------------------------------------------
    def op(self, source: int, target: int) -> str:
        """The op on edge ``source -> target``."""
        try:
            return self.ops[_EDGE_POS[(source, target)]]
        except KeyError:
            raise ValueError(f"the NB201 cell has no edge {source}->{target}") from None

    def live_edges(self) -> tuple[bool, ...]:
        """Per edge (:data:`EDGES` order): whether it can affect the cell's output.

        An edge is live when its op is not ``none``, its source carries a signal from the input
        (node 0, or a node with a live-input edge into it), and its target reaches the output
        (node 3) over non-``none`` edges.
        """
        return _live_edges(self.ops)

    def canonical(self) -> Arch:
        """See :func:`canonical`."""
        return canonical(self)

    def is_degenerate(self) -> bool:
        """See :func:`is_degenerate`."""
        return is_degenerate(self)

    def __repr__(self) -> str:
        return f"Arch({self.to_string()!r})"


ArchLike = Arch | str | Mapping[str, Any] | Sequence[str]
"""Anything :func:`as_arch` accepts."""


def as_arch(arch: ArchLike) -> Arch:
    """An :class:`Arch` from an Arch, an arch string, space params, or six op names.

    Example:
        >>> as_arch({"0->1": "skip_connect", "0->2": "none", "1->2": "none",
        ...          "0->3": "none", "1->3": "nor_conv_1x1", "2->3": "none"}).index
        3135
    """
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, str):
        return Arch.from_string(arch)
    if isinstance(arch, Mapping):
        return Arch.from_params(arch)
    if isinstance(arch, Sequence):
        return Arch(tuple(arch))
    raise ValueError(
        f"cannot make an NB201 architecture from {type(arch).__name__} {arch!r}; give an "
        "arch string, an Arch, nb201_space() params, or six op names"
    )


@cache
def _from_index(index: int) -> Arch:
    ids = []
    for _ in EDGES:
        index, digit = divmod(index, len(OPS))
        ids.append(digit)
    return Arch(tuple(OPS[k] for k in reversed(ids)))


@lru_cache(maxsize=65536)
def _parse(text: str) -> Arch:
    def bad(problem: str) -> ValueError:
        return ValueError(f"malformed NB201 arch string {text!r}: {problem}")

    nodes = text.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise bad(f"expected {NUM_NODES - 1} nodes separated by '+', found {len(nodes)}")
    ops = [""] * len(EDGES)
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or not node.startswith("|") or not node.endswith("|"):
            raise bad(f"node {j} ({node!r}) must be enclosed in '|'")
        items = node[1:-1].split("|")
        if len(items) != j:
            raise bad(f"node {j} must have {j} input edge(s), found {len(items)} in {node!r}")
        for i, item in enumerate(items):
            op, sep, src = item.rpartition("~")
            if not sep:
                raise bad(f"edge {item!r} of node {j} lacks '~source'")
            if src != str(i):
                raise bad(f"edge {item!r} of node {j}: expected source ~{i}")
            if op not in _OP_ID:
                raise bad(f"unknown op {op!r} on edge {i}->{j}; the ops are {list(OPS)}")
            ops[_EDGE_POS[(i, j)]] = op
    return Arch(tuple(ops))


# ---- equivalence ---------------------------------------------------------------------------


def _live_edges(ops: Sequence[str]) -> tuple[bool, ...]:
    present = {e: op != "none" for e, op in zip(EDGES, ops, strict=True)}
    fed = {0}  # nodes carrying a signal from the input
    for j in range(1, NUM_NODES):
        if any(present[(i, j)] and i in fed for i in range(j)):
            fed.add(j)
    feeds_out = {NUM_NODES - 1}  # nodes from which the output is reachable
    for i in range(NUM_NODES - 2, -1, -1):
        if any(present[(i, j)] and j in feeds_out for j in range(i + 1, NUM_NODES)):
            feeds_out.add(i)
    return tuple(present[(i, j)] and i in fed and j in feeds_out for i, j in EDGES)


def _relabellings() -> list[dict[int, int]]:
    # Input and output stay put; the intermediate nodes may be permuted.
    inner = list(range(1, NUM_NODES - 1))
    return [
        {0: 0, NUM_NODES - 1: NUM_NODES - 1, **dict(zip(inner, perm, strict=True))}
        for perm in itertools.permutations(inner)
    ]


_RELABELLINGS = _relabellings()


@lru_cache(maxsize=NUM_ARCHS)
def _canonical(arch: Arch) -> Arch:
    live = _live_edges(arch.ops)
    pruned = {e: op for e, op, ok in zip(EDGES, arch.ops, live, strict=True) if ok}
    best: Arch | None = None
    for relabel in _RELABELLINGS:
        moved = {(relabel[i], relabel[j]): op for (i, j), op in pruned.items()}
        if any(i >= j for i, j in moved):
            continue  # the relabelled graph would not fit the cell's node order
        cand = Arch(tuple(moved.get(e, "none") for e in EDGES))
        if best is None or cand.index < best.index:
            best = cand
    assert best is not None  # the identity always fits
    return best


def canonical(arch: ArchLike) -> Arch:
    """The representative of `arch`'s equivalence class (the member with the smallest index).

    Two cells are equivalent here when they are the same labelled graph after

    1. **pruning dead edges**: ``none`` edges are absent; an edge is dead when its source
       carries no signal from the input (node 0, or a node with a live incoming edge), or
       when the output (node 3) cannot be reached from its target; dead edges become ``none``;
    2. **relabelling intermediate nodes**: any permutation of nodes 1 and 2 that keeps every
       edge pointing from a lower to a higher node (for NB201: swapping 1 and 2 when no live
       edge joins them).

    Caveats: an op applied to a node with no input sees zeros; a ``nor_conv`` there outputs
    its BatchNorm's learned shift, a constant, which this equivalence (like the NAS-Bench-201
    papers) ignores. Algebraic identities beyond graph isomorphism (e.g. a ``skip_connect``
    chain ``0 -skip-> 1 -conv-> 3`` against ``0 -conv-> 3``) are not merged: those networks
    have the same function class but different graphs.

    Over all 15,625 cells this gives 8,765 classes (341 cells are degenerate and form one).
    The NAS-Bench-201 paper's 6,466 "unique" cells come from a coarser, expression-based key
    in its code that also treats ``skip_connect`` as the identity and sums as multisets (so
    the skip chain above merges with the direct conv), while keeping zero terms in the sums.

    Example:
        >>> a = Arch.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
        >>> b = Arch.from_string("|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
        >>> canonical(a) == canonical(b)
        True
        >>> dead = Arch.from_string("|none~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|")
        >>> str(canonical(dead))  # node 1 gets no input: both edges out of it are dead
        '|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|'
    """
    return _canonical(as_arch(arch))


def is_degenerate(arch: ArchLike) -> bool:
    """Whether no path of non-``none`` edges leads from the input to the output.

    A degenerate cell outputs zeros whatever its input (up to the BatchNorm-shift caveat of
    :func:`canonical`); all degenerate cells share one canonical form, the all-``none`` cell.

    Example:
        >>> is_degenerate("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        True
        >>> is_degenerate("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
        False
    """
    return not any(_live_edges(as_arch(arch).ops))


# ---- airda space ---------------------------------------------------------------------------

#: Weights an operation adds to an edge of a cell with C channels, in units of C x C (a 3x3
#: convolution 9, a 1x1 one 1; pooling, skip and none none; batch norm's 2C is negligible): a
#: candidate's sum is its cell's parameter count, the "params" zero-cost proxy (Spearman 0.74
#: with 200-epoch accuracy on NASLib's 725 cells), free to compute. The prior of the default
#: search (:func:`airda.nas.search.default_strategy`).
PARAMS_PRIOR: dict[str, float] = {"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0}


def nb201_space() -> Space:
    """The NB201 cell as an airda :class:`~airda.space.Space`: six categoricals over :data:`OPS`.

    Parameters are named ``"0->1"``, ``"0->2"``, ... (:data:`EDGE_NAMES`); every airda
    strategy runs on it unchanged. Enumeration order matches :attr:`Arch.index`.

    Example:
        >>> import numpy as np
        >>> space = nb201_space()
        >>> space.size()
        15625.0
        >>> params = space.sample(np.random.default_rng(0))
        >>> arch_to_params(params_to_arch(params)) == params
        True
    """
    from airda.space import Categorical, Space

    return Space({name: Categorical(OPS) for name in EDGE_NAMES})


def params_to_arch(params: Mapping[str, Any]) -> Arch:
    """The architecture of a :func:`nb201_space` candidate."""
    return Arch.from_params(params)


def arch_to_params(arch: ArchLike) -> dict[str, str]:
    """The :func:`nb201_space` candidate of an architecture (any form :func:`as_arch` takes)."""
    return as_arch(arch).to_params()

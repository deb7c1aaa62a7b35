"""Fuzzing of every op on every backend usable here, with awkward input, crash-safe.

Each op gets a small valid input, then one argument at a time is replaced by something awkward:
another dtype (non-native byte order included), a non-contiguous, unaligned or read-only copy,
a torch tensor, an empty axis, NaN and infinities, a huge virtual shape, a huge or negative
count, a list, None or a string. Each such input runs on every usable backend (``cpu``,
``reference`` and, with ``TRITON_INTERPRET=1``, ``triton``), and the call must either

* answer what the reference answers for the same values in plain form (native byte order,
  contiguous, NumPy), compared with NaN equal to NaN and a tolerance set by the dtype, or
* refuse with a clear error: a TypeError, ValueError, OverflowError, MemoryError (or
  BackendUnavailableError) whose message names an argument of the op, or the op.

It must also leave its inputs unchanged. The calls run in worker subprocesses, one per op,
which print each input's id before running it: a segfault, an abort or a hang (a per-input
watchdog) kills only the worker, the input it was running is named as the crash, and a new
worker carries on after it.

Run ``python -m airda.ops._fuzz [--pairs N --seed S]`` (or ``bench/fuzz_ops.py``) for a
table of calls per op and backend and how they ended, and the figures in one line::

    N inputs, 0 crashes, 0 silent wrong answers, 0 unclear errors (...)

``--pairs`` adds N inputs per op with two arguments changed at once, drawn with ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Report", "cases_for", "op_names", "run"]

# Workers may not grow beyond this: an op that tries to allocate what a fuzzed size asks for
# fails fast instead of pushing the machine into swap or the OOM killer.
_WORKER_MEMORY = 6 << 30
# Seconds one input may run before the worker's watchdog ends the worker (reported as a hang).
_UNIT_TIMEOUT = 60.0
_MARK = "@@fuzz "
_SAME = object()  # the reference takes the awkward value itself

# ---- what the ops take -------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """Replace argument `param` by ``apply(value)``: the awkward value and the plain value the
    reference gets (``_SAME``: the awkward one). With `param` ``"*"``, `apply` takes and gives
    all the arguments: ``apply(args) -> (args, plain args)``."""

    param: str
    label: str
    apply: Callable[[Any], tuple[Any, Any]]


@dataclass(frozen=True)
class Spec:
    """One op: a valid input and the kind of each argument."""

    name: str
    base: Callable[[], dict[str, Any]]
    arrays: tuple[str, ...] = ()  # NumPy arrays (torch tensors accepted)
    tensors: tuple[str, ...] = ()  # torch tensors only
    tensor_lists: tuple[str, ...] = ()  # sequences of torch tensors
    ints: tuple[str, ...] = ()
    int_lists: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    has_backend: bool = True
    torch_too: bool = False  # also every torch awkwardness with all arrays as torch tensors
    extra: tuple[Mutation, ...] = field(default=())
    call: Callable[..., Any] | None = None  # default: the function of airda.ops named `name`

    def function(self) -> Callable[..., Any]:
        if self.call is not None:
            return self.call
        import airda.ops

        return getattr(airda.ops, self.name)


def _rng() -> np.random.Generator:
    return np.random.default_rng(20240917)


def _pack_base() -> dict[str, Any]:
    x = _rng().standard_normal((3, 70)).astype(np.float32)
    x[0, :5] = 0.0
    return {"x": x}


def _gram_base() -> dict[str, Any]:
    from airda.ops import pack_sign_bits_reference

    return {"codes": pack_sign_bits_reference(_pack_base()["x"]), "units": 70}


def _mixed_forward_base() -> dict[str, Any]:
    rng = _rng()
    return {"ys": rng.standard_normal((3, 2, 5)), "alpha": rng.standard_normal(3)}


def _mixed_backward_base() -> dict[str, Any]:
    args = _mixed_forward_base()
    args["grad_out"] = _rng().standard_normal((2, 5))
    return args


def _conv_base() -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(7)
    return {
        "xs": [torch.randn(2, 3, 5, 5, generator=g), torch.randn(2, 1, 5, 5, generator=g)],
        "weight": torch.randn(3, 3, 3, generator=g),
        "kernel_sizes": [3, 1],
        "stride": 1,
        "scales": [torch.rand(3, generator=g) + 0.5, torch.rand(1, generator=g) + 0.5],
        "shifts": [torch.randn(3, generator=g), torch.randn(1, generator=g)],
        "activation": "relu",
    }


def _rank_base() -> dict[str, Any]:
    values = np.round(_rng().uniform(0, 4, (7, 3)))
    values[5] = values[2]  # a tie
    return {"values": values}


def _hypervolume_base() -> dict[str, Any]:
    return {"values": _rng().uniform(0, 1, (6, 2)), "reference_point": np.array([1.0, 1.0])}


def _log_norm_base() -> dict[str, Any]:
    rng = _rng()
    return {
        "mu": rng.uniform(0.1, 0.9, (3, 2)),
        "sigma": rng.uniform(0.1, 0.5, (3, 2)),
        "low": np.zeros(2),
        "high": np.ones(2),
    }


def _logpdf_base() -> dict[str, Any]:
    from airda.ops import parzen_log_norm_reference

    args = _log_norm_base()
    rng = _rng()
    logits = rng.standard_normal((3, 1, 3))
    args.update(
        x=rng.uniform(0, 1, (4, 2)),
        log_weights=np.log([0.2, 0.3, 0.5]),
        log_norm=parzen_log_norm_reference(args["mu"], args["sigma"], args["low"], args["high"]),
        cat_x=rng.integers(0, 3, (4, 1)),
        cat_logp=logits - np.log(np.exp(logits).sum(axis=2, keepdims=True)),
        log_extra=rng.standard_normal(4) - 3.0,
    )
    return args


def _means_base() -> dict[str, Any]:
    return {
        "data": _rng().uniform(0, 1, (2, 6)),
        "n_resamples": 5,
        "seed": 3,
        "strata": np.array([0, 0, 1, 1, 1, 2]),
    }


def _knn_base() -> dict[str, Any]:
    rng = _rng()
    data = rng.standard_normal((7, 3))
    data[4] = data[1]  # a duplicate row: a tie at distance 0
    return {"queries": rng.standard_normal((4, 3)), "data": data, "k": 3}


def _pair_means_base() -> dict[str, Any]:
    rng = _rng()
    return {"x": rng.standard_normal((5, 3)), "y": rng.standard_normal((4, 3)) + 0.5}


def _indices_base() -> dict[str, Any]:
    return {"n": 6, "n_resamples": 4, "seed": 3, "start": 0, "strata": np.array([0, 0, 1, 1, 1, 2])}


def _tall_thin_stride(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    # A stride wider than the input but shorter than it is tall: the C++ kernel's phase buffer
    # grows with stride x height.
    import torch

    args = {**args, "kernel_sizes": [3, 1], "stride": 39_999}
    args["xs"] = [torch.ones(1, 3, 40_000, 1), torch.ones(1, 1, 40_000, 1)]
    return args, _SAME


def _huge_batch(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    xs = [x.narrow(0, 0, 1).expand(_HUGE_AXIS, *x.shape[1:]) for x in args["xs"]]
    return {**args, "xs": xs}, _SAME


def _huge_planes(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    xs = [x[..., :1, :1].expand(*x.shape[:2], 2**20, 2**20) for x in args["xs"]]
    return {**args, "xs": xs}, _SAME


def _all_torch(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    torch = _torch()
    new = {
        k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v for k, v in args.items()
    }
    return new, _SAME


def _int64_beyond_2_53(_: Any) -> tuple[Any, Any]:
    # Equal as float64, different as integers: a rank computed in float64 ties them.
    big = np.array([[2**53 + 1, 0], [2**53, 1], [2**62 + 1, 5], [2**62, 5]], dtype=np.int64)
    return big, _SAME


_SPECS = {
    s.name: s
    for s in (
        Spec("pack_sign_bits", _pack_base, arrays=("x",), torch_too=True),
        Spec("hamming_gram", _gram_base, arrays=("codes",), ints=("units",), torch_too=True),
        Spec("mixed_op_forward", _mixed_forward_base, arrays=("ys", "alpha"), torch_too=True),
        Spec(
            "mixed_op_backward",
            _mixed_backward_base,
            arrays=("ys", "alpha", "grad_out"),
            torch_too=True,
        ),
        Spec(
            "grouped_depthwise_conv",
            _conv_base,
            tensors=("weight",),
            tensor_lists=("xs", "scales", "shifts"),
            ints=("stride",),
            int_lists=("kernel_sizes",),
            strings=("activation",),
            extra=(
                Mutation("*", "tall-thin-stride", _tall_thin_stride),
                Mutation("*", "every-xs-expanded-to-a-huge-batch", _huge_batch),
                Mutation("*", "every-xs-expanded-to-huge-planes", _huge_planes),
            ),
        ),
        Spec(
            "non_dominated_rank",
            _rank_base,
            arrays=("values",),
            extra=(Mutation("values", "int64-beyond-2**53", _int64_beyond_2_53),),
        ),
        Spec(
            "hypervolume",
            _hypervolume_base,
            arrays=("values", "reference_point"),
            extra=(Mutation("values", "int64-beyond-2**53", _int64_beyond_2_53),),
        ),
        Spec(
            "parzen_logpdf",
            _logpdf_base,
            arrays=(
                "x",
                "mu",
                "sigma",
                "log_weights",
                "low",
                "high",
                "log_norm",
                "cat_x",
                "cat_logp",
                "log_extra",
            ),
        ),
        Spec("parzen_log_norm", _log_norm_base, arrays=("mu", "sigma", "low", "high")),
        Spec(
            "bootstrap_means",
            _means_base,
            arrays=("data", "strata"),
            ints=("n_resamples", "seed"),
        ),
        Spec("knn_distances", _knn_base, arrays=("queries", "data"), ints=("k",), torch_too=True),
        Spec("pair_kernel_means", _pair_means_base, arrays=("x", "y"), torch_too=True),
        Spec(
            "bootstrap_indices",
            _indices_base,
            arrays=("strata",),
            ints=("n", "n_resamples", "seed", "start"),
            has_backend=False,
        ),
    )
}


def _broken_op(x: Any) -> Any:
    """An op with every fault the fuzz looks for, to test the fuzz itself: it aborts the process
    on None, reads non-native byte order as native, and fails on an empty array."""
    if x is None:
        os.abort()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a NumPy array, got {type(x).__name__}")
    if x.size == 0:
        raise IndexError("index 0 is out of bounds")
    return x.byteswap() if not x.dtype.isnative else x.copy()


_SPECS["_broken"] = Spec(
    "_broken", lambda: {"x": np.arange(4.0)}, arrays=("x",), has_backend=False, call=_broken_op
)


def op_names() -> list[str]:
    """The ops the fuzz covers: every op of airda.ops that has a backend choice, and
    bootstrap_indices."""
    return [name for name in _SPECS if not name.startswith("_")]


# ---- awkward values -------------------------------------------------------------------------

_INTS: tuple[Any, ...] = (
    0,
    -1,
    1,
    2,
    2**31 - 1,
    2**31,
    2**32,
    2**53 + 1,
    2**62,
    2**63 - 1,
    2**63,
    2**64,
    2**100,
    -(2**63),
    -(2**100),
    True,
    2.0,
    2.5,
    math.nan,
    math.inf,
    "2",
    None,
    [2],
)
_NUMPY_INTS = (("np.int64(2)", np.int64, 2), ("np.uint64(2**63)", np.uint64, 2**63))
_STRINGS: tuple[Any, ...] = ("", "RELU", "relu ", "none", "hardswish", "gelu", None, 3, b"relu")
_WRONG_TYPES: tuple[tuple[str, Any], ...] = (
    ("None", None),
    ("str", "abc"),
    ("int", 3),
    ("float", 2.5),
    ("object", object()),
)
_CASTS = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int32",
    "int64",
    "uint8",
    "uint64",
    "bool",
    "complex128",
    "object",
)
# Non-native byte order: the reference takes the same values in native order.
_SWAPPED = (">f2", ">f4", ">f8", ">i4", ">i8", ">u8", "<f4", "<f8")
_HUGE_AXIS = 2**31


def _swapped_name(code: str) -> str:
    return code.replace(">", "big-").replace("<", "little-")


def _numpy_mutations(param: str, base: np.ndarray) -> list[Mutation]:
    out: list[Mutation] = []

    def add(label: str, apply: Callable[[Any], tuple[Any, Any]]) -> None:
        out.append(Mutation(param, label, apply))

    # the same values, laid out or typed differently
    if base.ndim:

        def strided(v):
            wide = np.zeros((*v.shape[:-1], 2 * v.shape[-1]), dtype=v.dtype)
            wide[..., ::2] = v
            return wide[..., ::2], v

        add("strided", strided)
        add("reversed-strides", lambda v: (v[::-1].copy()[::-1], v))
        add("fortran-order", lambda v: (np.asfortranarray(v), v))
    if base.dtype.itemsize > 1 and base.size:

        def unaligned(v):
            raw = np.zeros(v.nbytes + 1, dtype=np.uint8)
            u = raw[1:].view(v.dtype).reshape(v.shape)
            u[...] = v
            return u, v

        add("unaligned", unaligned)

    def readonly(v):
        c = v.copy()
        c.flags.writeable = False
        return c, v

    add("read-only", readonly)
    for code in _SWAPPED:
        dtype = np.dtype(code)
        if dtype.isnative and dtype == base.dtype:
            continue
        add(
            f"dtype-{_swapped_name(code)}",
            lambda v, d=dtype: (v.astype(d), v.astype(d.newbyteorder("="))),
        )
    add("list", lambda v: (v.tolist(), v))
    if base.ndim == 2:
        add("np.matrix", lambda v: (np.asmatrix(v), v))
    add("torch", lambda v: (_torch().from_numpy(v.copy()), v))
    if base.ndim:

        def torch_strided(v):
            torch = _torch()
            wide = torch.zeros((*v.shape[:-1], 2 * v.shape[-1]), dtype=torch.from_numpy(v).dtype)
            wide[..., ::2] = torch.from_numpy(v)
            return wide[..., ::2], v

        add("torch-strided", torch_strided)
    if base.dtype.kind == "f":
        add("torch-requires-grad", lambda v: (_torch().tensor(v).requires_grad_(), v))
        add("torch-bfloat16", lambda v: (_torch().tensor(v).bfloat16(), _SAME))
    add("torch-meta", lambda v: (_torch().from_numpy(v.copy()).to("meta"), _SAME))
    if base.ndim and base.dtype.kind in "fiu":
        add("torch-sparse", lambda v: (_torch().from_numpy(v.copy()).to_sparse(), _SAME))

    # other values
    for dtype in _CASTS:
        if np.dtype(dtype) != base.dtype:
            add(f"dtype-{dtype}", lambda v, d=dtype: (v.astype(d), _SAME))
    add("dtype-str", lambda v: (np.full(v.shape, "a"), _SAME))
    if base.size:
        if base.dtype.kind == "f":
            specials = (
                ("nan", math.nan),
                ("inf", math.inf),
                ("-inf", -math.inf),
                ("huge", 1e300),
                ("-huge", -1e300),
                ("subnormal", 5e-324),
                ("-0.0", -0.0),
            )
        else:
            info = np.iinfo(base.dtype)
            specials = (("max", int(info.max)), ("min", int(info.min)), ("-1", -1))
        for name, value in specials:

            def put(v, value=value):
                c = v.copy()
                c.flat[0] = value if v.dtype.kind == "f" else np.array(value).astype(v.dtype)
                return c, _SAME

            add(f"first={name}", put)
        if base.dtype.kind == "f":
            add("all-nan", lambda v: (np.full_like(v, math.nan), _SAME))
            add("all-inf", lambda v: (np.full_like(v, math.inf), _SAME))
    for axis in range(base.ndim):
        add(f"empty-axis-{axis}", lambda v, a=axis: (np.take(v, [], axis=a), _SAME))
    add("0-d", lambda v: (np.array(v.flat[0] if v.size else 0, dtype=v.dtype), _SAME))
    add("extra-axis", lambda v: (v[None], _SAME))
    if base.ndim and base.shape[0]:
        add("drop-axis", lambda v: (v[0].copy(), _SAME))
        add("first-row", lambda v: (v[:1].copy(), _SAME))
    if base.ndim:
        for axis in sorted({0, base.ndim - 1}):

            def huge(v, axis=axis):
                shape = list(v.shape)
                shape[axis] = _HUGE_AXIS
                fill = v.flat[0] if v.size else np.zeros((), v.dtype)
                return np.broadcast_to(fill, tuple(shape)), _SAME

            add(f"huge-axis-{axis}", huge)
    for name, value in _WRONG_TYPES:
        add(name, lambda _v, value=value: (value, _SAME))
    return out


def _tensor_mutations(param: str, base: Any) -> list[Mutation]:
    """Awkward versions of a torch tensor argument (an op that takes torch tensors only)."""
    out: list[Mutation] = []

    def add(label: str, apply: Callable[[Any], tuple[Any, Any]]) -> None:
        out.append(Mutation(param, label, apply))

    torch = _torch()
    if base.dim():

        def strided(v):
            wide = torch.zeros((*v.shape[:-1], 2 * v.shape[-1]), dtype=v.dtype)
            wide[..., ::2] = v
            return wide[..., ::2], v

        add("strided", strided)
        add("transposed-storage", lambda v: (v.mT.contiguous().mT, v) if v.dim() > 1 else (v, v))
    if base.dim() == 4:
        add("channels-last", lambda v: (v.contiguous(memory_format=torch.channels_last), v))
    add("requires-grad", lambda v: (v.clone().requires_grad_(), v))
    add("numpy", lambda v: (v.numpy().copy(), v))
    add("list", lambda v: (v.tolist(), v))
    add("meta", lambda v: (v.to("meta"), _SAME))
    if base.dim():
        add("sparse", lambda v: (v.to_sparse(), _SAME))
    for dtype in ("float16", "bfloat16", "float64", "int64", "bool", "complex64"):
        add(f"dtype-{dtype}", lambda v, d=dtype: (v.to(getattr(torch, d)), _SAME))
    for name, value in (("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("huge", 1e38)):

        def put(v, value=value):
            c = v.clone()
            c.view(-1)[0] = value
            return c, _SAME

        add(f"first={name}", put)
    add("all-nan", lambda v: (torch.full_like(v, math.nan), _SAME))
    for axis in range(base.dim()):
        add(f"empty-axis-{axis}", lambda v, a=axis: (v.narrow(a, 0, 0), _SAME))
    add("extra-axis", lambda v: (v[None], _SAME))
    if base.dim():
        add("drop-axis", lambda v: (v[0].clone(), _SAME))
        for axis in range(base.dim()):

            def huge(v, axis=axis):
                shape = list(v.shape)
                shape[axis] = _HUGE_AXIS
                return v.narrow(axis, 0, 1).expand(*shape), _SAME

            add(f"huge-axis-{axis}", huge)
        if base.dim() >= 3:

            def huge_spatial(v):
                return v.narrow(-1, 0, 1).narrow(-2, 0, 1).expand(
                    *v.shape[:-2], 2**20, 2**20
                ), _SAME

            add("huge-spatial", huge_spatial)
    for name, value in _WRONG_TYPES:
        add(name, lambda _v, value=value: (value, _SAME))
    return out


def _element(param: str, index: int, inner: Mutation) -> Mutation:
    def apply(values):
        values = list(values)
        new, canon = inner.apply(values[index])
        mutated = [*values[:index], new, *values[index + 1 :]]
        plain = _SAME if canon is _SAME else [*values[:index], canon, *values[index + 1 :]]
        return mutated, plain

    return Mutation(param, f"[{index}]:{inner.label}", apply)


def _sequence_mutations(param: str) -> list[Mutation]:
    def add(label, apply):
        return Mutation(param, label, apply)

    return [
        add("tuple", lambda v: (tuple(v), v)),
        add("iterator", lambda v: (iter(list(v)), v)),
        add("empty", lambda v: ([], _SAME)),
        add("drop-last", lambda v: (list(v)[:-1], _SAME)),
        add("repeat-first", lambda v: ([*v, v[0]], _SAME)),
        add("first-alone", lambda v: (v[0], _SAME)),
        add("None", lambda v: (None, _SAME)),
        add("str", lambda v: ("abc", _SAME)),
        add("element-None", lambda v: ([None, *list(v)[1:]], _SAME)),
    ]


def _int_mutations(param: str) -> list[Mutation]:
    out = [Mutation(param, f"={value!r}", lambda _v, x=value: (x, _SAME)) for value in _INTS]
    for label, kind, value in _NUMPY_INTS:
        out.append(Mutation(param, f"={label}", lambda _v, k=kind, x=value: (k(x), _SAME)))
    return out


def _torch() -> Any:
    import torch

    return torch


def cases_for(op: str, pairs: int = 0, seed: int = 0) -> list[tuple[Mutation, ...]]:
    """The inputs tried for `op`, in a fixed order: the valid one, then one argument changed,
    then `pairs` inputs with two arguments changed, drawn with `seed`."""
    spec = _SPECS[op]
    base = spec.base()
    cases: list[tuple[Mutation, ...]] = [()]
    for param in spec.arrays:
        cases += [(m,) for m in _numpy_mutations(param, base[param])]
    for param in spec.tensors:
        cases += [(m,) for m in _tensor_mutations(param, base[param])]
    for param in spec.tensor_lists:
        cases += [(m,) for m in _sequence_mutations(param)]
        cases += [(_element(param, 0, m),) for m in _tensor_mutations(param, base[param][0])]
    for param in spec.ints:
        cases += [(m,) for m in _int_mutations(param)]
    for param in spec.int_lists:
        cases += [(m,) for m in _sequence_mutations(param)]
        cases += [(_element(param, 0, m),) for m in _int_mutations(param)]
    for param in spec.strings:
        cases += [
            (Mutation(param, f"={value!r}", lambda _v, x=value: (x, _SAME)),) for value in _STRINGS
        ]
    if spec.torch_too:
        to_torch = Mutation("*", "all-torch", _all_torch)
        cases.append((to_torch,))
        tensors = _all_torch(base)[0]
        for param in spec.arrays:
            cases += [(to_torch, m) for m in _tensor_mutations(param, tensors[param])]
    cases += [(m,) for m in spec.extra]
    if spec.has_backend:
        for value in ("nonsense", "", 3, "cuda", "CPU"):
            cases.append((Mutation("backend", f"={value!r}", lambda _v, x=value: (x, _SAME)),))
    singles = [c[0] for c in cases if len(c) == 1 and c[0].param not in ("*", "backend")]
    rng = np.random.default_rng(seed)
    for _ in range(pairs if len({m.param for m in singles}) > 1 else 0):
        while True:
            first, second = (singles[i] for i in rng.choice(len(singles), 2, replace=False))
            if first.param != second.param:
                break
        cases.append((first, second))
    return cases


def _label(case: tuple[Mutation, ...]) -> str:
    parts = []
    for m in case:
        if m.param == "*":
            parts.append(m.label)
        else:
            parts.append(f"{m.param}{'' if m.label.startswith(('=', '[')) else ':'}{m.label}")
    return " + ".join(parts) or "valid input"


def _build(spec: Spec, case: tuple[Mutation, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments with the case's awkward values, the same arguments in plain form)."""
    args = spec.base()
    plain = dict(args)
    for mutation in case:
        if mutation.param == "*":
            args, canon = mutation.apply(args)
            plain = dict(args) if canon is _SAME else canon
            continue
        new, canon = mutation.apply(args.get(mutation.param))
        args[mutation.param] = new
        plain[mutation.param] = new if canon is _SAME else canon
    return args, plain


# ---- judging one call -------------------------------------------------------------------------

_CLEAR_ERRORS = (TypeError, ValueError, OverflowError, MemoryError)


def _unclear(exc: BaseException, names: Sequence[str]) -> str | None:
    """Why `exc` is not a clear refusal, or None."""
    from airda.ops import BackendUnavailableError

    kind = type(exc).__name__
    if isinstance(exc, IndexError | KeyError) or not isinstance(
        exc, (*_CLEAR_ERRORS, BackendUnavailableError)
    ):
        return f"{kind} is not a clear refusal: {exc}"
    message = str(exc)
    if not any(re.search(rf"(?<![\w]){re.escape(name)}(?!\w)", message) for name in names):
        return f"{kind} names no argument: {message}"
    return None


def _host(result: Any) -> Any:
    if isinstance(result, tuple | list):
        return [_host(r) for r in result]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(result, torch.Tensor):
        t = result.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return np.asarray(result)


def _rtol(dtype: np.dtype) -> float:
    if dtype.kind not in "fc":
        return 0.0
    return {2: 1e-2, 4: 1e-4}.get(
        dtype.itemsize if dtype.kind == "f" else dtype.itemsize // 2, 1e-9
    )


def _difference(got: Any, want: Any) -> str | None:
    """How `got` differs from `want`, or None when equal (NaN equals NaN)."""
    if isinstance(want, list) or isinstance(got, list):
        if not (isinstance(want, list) and isinstance(got, list)) or len(got) != len(want):
            return f"got {type(got).__name__} of {len(got) if isinstance(got, list) else '-'}, want {len(want) if isinstance(want, list) else '-'} parts"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            why = _difference(g, w)
            if why is not None:
                return f"part {i}: {why}"
        return None
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape}, want {want.shape}"
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        g, w = got.astype(np.complex128).ravel(), want.astype(np.complex128).ravel()
        for part in (np.real, np.imag):
            gp, wp = part(g), part(w)
            nan = np.isnan(gp) != np.isnan(wp)
            if nan.any():
                i = int(np.argmax(nan))
                return f"NaN differs at flat index {i}: {gp[i]} vs {wp[i]}"
            inf = (np.isinf(gp) | np.isinf(wp)) & (gp != wp)
            if inf.any():
                i = int(np.argmax(inf))
                return f"inf differs at flat index {i}: {gp[i]} vs {wp[i]}"
            finite = np.isfinite(gp) & np.isfinite(wp)
            if finite.any():
                rtol = max(_rtol(got.dtype), _rtol(want.dtype))
                scale = float(np.abs(wp[finite]).max())
                err = np.abs(gp[finite] - wp[finite])
                if (err > rtol * (np.abs(wp[finite]) + scale)).any():
                    i = int(np.argmax(err - rtol * (np.abs(wp[finite]) + scale)))
                    return f"value {gp[finite][i]} vs {wp[finite][i]}"
        return None
    if got.dtype.kind in "OUSV" or want.dtype.kind in "OUSV":
        return None if got.tolist() == want.tolist() else "objects differ"
    if not np.array_equal(got, want):
        i = int(np.argmax((got != want).ravel()))
        return f"value {got.ravel()[i]} vs {want.ravel()[i]} at flat index {i}"
    return None


def _snapshot(args: dict[str, Any]) -> list[tuple[str, Any, bytes]]:
    """The bytes of every array argument (list elements included), to check none is written."""
    torch = sys.modules.get("torch")
    taken = []
    for name, value in args.items():
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            try:
                if isinstance(item, np.ndarray) and item.dtype.kind != "O":
                    data = np.ascontiguousarray(item).tobytes() if item.nbytes < 1 << 24 else b""
                elif torch is not None and isinstance(item, torch.Tensor):
                    t = item.detach()
                    if t.layout != torch.strided or t.device.type != "cpu" or t.numel() > 1 << 22:
                        continue
                    data = t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                else:
                    continue
            except (RuntimeError, TypeError, ValueError, MemoryError):
                continue
            taken.append((f"{name}[{i}]" if isinstance(value, list) else name, item, data))
    return taken


def _changed(taken: list[tuple[str, Any, bytes]]) -> str | None:
    for name, item, data in taken:
        again = _snapshot({name: item})
        if again and again[0][2] != data:
            return f"{name} was modified"
    return None


def _call(fn: Callable[..., Any], args: dict[str, Any], backend: str | None) -> Any:
    if backend is not None and "backend" not in args:
        return fn(**args, backend=backend)
    return fn(**args)


def _judge(
    spec: Spec, case: tuple[Mutation, ...], backend: str | None, oracle: Any
) -> dict[str, Any]:
    import inspect

    fn = spec.function()
    names = [*inspect.signature(fn).parameters, spec.name]
    try:
        args, _ = _build(spec, case)
    except Exception as exc:  # an awkwardness this library version cannot even express
        return {"verdict": "skipped", "detail": f"{type(exc).__name__}: {exc}"}
    taken = _snapshot(args)
    try:
        got = _call(fn, args, backend)
    except Exception as exc:  # every exception is judged
        why = _unclear(exc, names)
        if why is not None:
            return {"verdict": "unclear", "detail": why}
        # The reference answering the plain form is fine (a wrapper may refuse a layout, say);
        # kept so that refusals of what other backends take can be listed.
        return {
            "verdict": "refused",
            "detail": f"{type(exc).__name__}: {exc}",
            "reference_answered": oracle[0] == "answer",
        }
    changed = _changed(taken)
    if changed is not None:
        return {"verdict": "wrong", "detail": changed}
    kind, want = oracle
    if kind == "error":
        return {"verdict": "wrong", "detail": f"answered where the reference refuses ({want})"}
    why = _difference(_host(got), want)
    if why is not None:
        return {"verdict": "wrong", "detail": why}
    return {"verdict": "match", "detail": ""}


def _oracle(spec: Spec, case: tuple[Mutation, ...]) -> tuple[str, Any]:
    fn = spec.function()
    try:
        _, plain = _build(spec, case)
    except Exception as exc:  # _judge skips the input
        return "error", f"{type(exc).__name__}: {exc}"
    try:
        return "answer", _host(_call(fn, plain, "reference" if spec.has_backend else None))
    except Exception as exc:  # the reference's refusal, whatever it is, is compared against
        return "error", f"{type(exc).__name__}: {exc}"


def _backends(op: str) -> list[str | None]:
    spec = _SPECS[op]
    if not spec.has_backend:
        return [None]
    from airda.ops._registry import backend_status, registered_ops

    impls = registered_ops()[op].impls
    return [b for b in ("reference", "cpu", "triton") if b in impls and backend_status(b).usable]


def _units(cases: list[tuple[Mutation, ...]], op: str) -> list[tuple[int, str | None]]:
    """(case, backend) for every call to make; a case that sets the backend is one call."""
    units = []
    backends = _backends(op)
    for i, case in enumerate(cases):
        if any(m.param == "backend" for m in case):
            units.append((i, None))
        else:
            units += [(i, b) for b in backends]
    return units


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # not on this platform: rely on the sizes staying impossible
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _WORKER_MEMORY if hard == resource.RLIM_INFINITY else min(hard, _WORKER_MEMORY)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker(op: str, start: int, pairs: int, seed: int) -> None:
    import faulthandler
    import warnings

    warnings.simplefilter("ignore")  # warnings are not answers; the figures do not count them
    _limit_memory()
    spec = _SPECS[op]
    cases = cases_for(op, pairs, seed)
    units = _units(cases, op)
    oracles: dict[int, tuple[str, Any]] = {}
    out = sys.stdout
    out.write(f"{_MARK}units {len(units)}\n")
    for index in range(start, len(units)):
        case_index, backend = units[index]
        case = cases[case_index]
        where = {"index": index, "case": _label(case), "backend": backend or "default"}
        out.write(f"{_MARK}start {json.dumps(where)}\n")
        out.flush()
        faulthandler.dump_traceback_later(_UNIT_TIMEOUT, exit=True)
        if case_index not in oracles:
            oracles = {case_index: _oracle(spec, case)}
        record = _judge(spec, case, backend, oracles[case_index])
        faulthandler.cancel_dump_traceback_later()
        out.write(f"{_MARK}done {json.dumps({**where, **record})}\n")
        out.flush()


# ---- the driver -------------------------------------------------------------------------------


@dataclass
class Report:
    """What a fuzz run found: one record per input and backend tried, crashes included."""

    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, verdict: str) -> int:
        return sum(r["verdict"] == verdict for r in self.records)

    @property
    def inputs(self) -> int:
        return sum(r["verdict"] != "skipped" for r in self.records)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["verdict"] not in ("match", "refused", "skipped")]

    def table(self) -> str:
        """One line per op and backend: calls made, and how they ended."""
        verdicts = ("match", "refused", "wrong", "unclear", "crash", "hang")
        lines = [
            f"{'op':24s} {'backend':9s} {'inputs':>6s} " + " ".join(f"{v:>7s}" for v in verdicts)
        ]
        keys = sorted({(r["op"], r["backend"]) for r in self.records}, key=str)
        for op, backend in keys:
            mine = [r for r in self.records if (r["op"], r["backend"]) == (op, backend)]
            counts = [sum(r["verdict"] == v for r in mine) for v in verdicts]
            tried = sum(r["verdict"] != "skipped" for r in mine)
            lines.append(f"{op:24s} {backend:9s} {tried:6d} " + " ".join(f"{c:7d}" for c in counts))
        return "\n".join(lines)

    def summary(self) -> str:
        crashes = self.count("crash") + self.count("hang")
        return (
            f"{self.inputs} inputs, {crashes} crashes, {self.count('wrong')} silent wrong answers, "
            f"{self.count('unclear')} unclear errors ({self.count('match')} answered as the "
            f"reference, {self.count('refused')} refused clearly; {self.seconds:.1f} s)"
        )


def _run_op(op: str, env: dict[str, str], pairs: int, seed: int) -> list[dict[str, Any]]:
    """Every call for `op`, in as many workers as it takes to get past the crashes."""
    records: list[dict[str, Any]] = []
    start, total = 0, None
    while total is None or start < total:
        command = [sys.executable, "-m", "airda.ops._fuzz", "--worker", op]
        command += ["--start", str(start), "--pairs", str(pairs), "--seed", str(seed)]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        pending = None
        for line in proc.stdout.splitlines():
            if not line.startswith(_MARK):
                continue
            kind, _, rest = line[len(_MARK) :].partition(" ")
            if kind == "units":
                total = int(rest)
            elif kind == "start":
                pending = json.loads(rest)
            else:
                records.append({"op": op, **json.loads(rest)})
                pending = None
        if proc.returncode == 0 and pending is None:
            break
        if pending is None:  # died outside any call (at start-up): no input to blame
            raise RuntimeError(
                f"fuzz worker for {op} failed with code {proc.returncode}: {proc.stderr[-2000:]}"
            )
        verdict = "hang" if "Timeout" in proc.stderr else "crash"
        detail = f"exit code {proc.returncode}: {proc.stderr.strip()[-600:]}"
        records.append({"op": op, **pending, "verdict": verdict, "detail": detail})
        start = pending["index"] + 1
    return records


def run(
    ops: Sequence[str] | None = None, *, pairs: int = 0, seed: int = 0, jobs: int | None = None
) -> Report:
    """Fuzz `ops` (default: :func:`op_names`), with `pairs` extra inputs per op that change two
    arguments (drawn with `seed`), in worker subprocesses, `jobs` at a time (the CPU count)."""
    names = list(ops) if ops is not None else op_names()
    unknown = set(names) - set(_SPECS)
    if unknown:
        raise ValueError(f"no fuzz cases for {sorted(unknown)}; known: {', '.join(op_names())}")
    env = dict(os.environ)
    env.setdefault("TRITON_INTERPRET", "1")  # host data reaches Triton only on its interpreter
    env["PYTHONWARNINGS"] = "ignore"
    started = time.perf_counter()
    # Slowest first, so that the last worker to start is a short one.
    order = sorted(names, key=lambda op: -len(_SPECS[op].arrays) - len(_SPECS[op].tensor_lists))
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        done = dict(
            zip(order, pool.map(lambda op: _run_op(op, env, pairs, seed), order), strict=True)
        )
    report = Report([r for op in names for r in done[op]])
    report.seconds = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None, prog: str = "python -m airda.ops._fuzz") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ops", nargs="*", help="ops to fuzz (default: all)")
    parser.add_argument("--pairs", type=int, default=0, help="inputs per op with two changes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the two-change inputs")
    parser.add_argument("--jobs", type=int, default=None, help="workers at a time (CPU count)")
    parser.add_argument("--verbose", action="store_true", help="print every failing input")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.start, args.pairs, args.seed)
        return 0
    report = run(args.ops, pairs=args.pairs, seed=args.seed, jobs=args.jobs)
    print(report.table())
    failures = report.failures
    for r in failures if args.verbose else failures[:20]:
        print(f"  {r['verdict']:8s} {r['op']} [{r['backend']}] {r['case']}: {r['detail'][:300]}")
    if len(failures) > 20 and not args.verbose:
        print(f"  ... and {len(failures) - 20} more (--verbose)")
    print(report.summary())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

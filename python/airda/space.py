"""Search spaces: typed parameters, conditions and nesting, with one unit-cube encoding.

A :class:`Space` maps names to parameters (:class:`Float`, :class:`Int`, :class:`Categorical`,
:class:`Fixed`, or a nested :class:`Space`). A candidate is a plain ``dict`` of the *active*
parameters: a parameter with ``when={"parent": values}`` is active only when its parent is
active and takes one of those values. Nested spaces flatten to dotted names (``"adam.beta1"``).

Every parameter maps to one coordinate in [0, 1): :meth:`Space.decode` turns a point of the
unit cube into a candidate and :meth:`Space.encode` goes back. Uniform points decode to
uniform (or log-uniform) samples, quasi-random points to quasi-random candidates, and
mutations and distances work on the same coordinates.

Example:
    >>> import numpy as np
    >>> from airda.space import Categorical, Float, Int, Space
    >>> space = Space({
    ...     "lr": Float(1e-4, 1e-1, log=True),
    ...     "layers": Int(1, 4),
    ...     "optimizer": Categorical(["sgd", "adam"]),
    ...     "momentum": Float(0.0, 0.99, when={"optimizer": "sgd"}),
    ... })
    >>> c = space.sample(np.random.default_rng(0))
    >>> sorted(c) in (["layers", "lr", "momentum", "optimizer"], ["layers", "lr", "optimizer"])
    True
    >>> space.validate(c) == c
    True
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Categorical",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "Space",
    "SpaceError",
    "candidate_key",
]


class SpaceError(ValueError):
    """A candidate or a space definition is invalid; the message names the parameter."""


def _normalise_when(when: Mapping[str, Any] | None) -> dict[str, tuple[Any, ...]]:
    if not when:
        return {}
    out = {}
    for parent, values in when.items():
        if isinstance(values, (list, tuple, set, frozenset)):
            out[parent] = tuple(values)
        else:
            out[parent] = (values,)
    return out


@dataclass(frozen=True)
class Param:
    """Base of all parameter types. ``when`` maps parent names to the values that activate it."""

    when: dict[str, tuple[Any, ...]] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _normalise_when(self.when))

    # Subclasses implement these on a single value.
    kind: str = field(default="", init=False, repr=False)

    def to_unit(self, value: Any) -> float:
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        raise NotImplementedError

    def check(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def cardinality(self) -> float:
        raise NotImplementedError

    def values(self) -> list[Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _when_dict(self) -> dict[str, Any]:
        return {"when": {k: list(v) for k, v in self.when.items()}} if self.when else {}


def _require_number(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpaceError(f"parameter {name!r}: {what} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise SpaceError(f"parameter {name!r}: {what} is NaN")
    return value


@dataclass(frozen=True)
class Float(Param):
    """A real in [low, high]; ``log=True`` samples log-uniformly; ``step`` makes it discrete."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    kind: str = field(default="float", init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpaceError(f"Float bounds must be finite, got [{self.low}, {self.high}]")
        if self.low > self.high:
            raise SpaceError(f"Float needs low <= high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise SpaceError(f"log-scaled Float needs low > 0, got {self.low}")
        if self.step is not None:
            if self.log:
                raise SpaceError("Float cannot have both log=True and a step")
            if self.step <= 0:
                raise SpaceError(f"Float step must be > 0, got {self.step}")

    def _n_steps(self) -> int:
        assert self.step is not None
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    def to_unit(self, value: Any) -> float:
        if self.high == self.low:
            return 0.5
        if self.step is not None:
            n = self._n_steps()
            return (round((value - self.low) / self.step) + 0.5) / n
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.step is not None:
            n = self._n_steps()
            k = min(int(u * n), n - 1)
            return float(min(self.low + k * self.step, self.high))
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return float(min(max(v, self.low), self.high))

    def check(self, name: str, value: Any) -> float:
        v = _require_number(name, value, "value")
        if not self.low <= v <= self.high:
            raise SpaceError(f"parameter {name!r}: {v} is outside [{self.low}, {self.high}]")
        if self.step is not None:
            k = (v - self.low) / self.step
            if abs(k - round(k)) > 1e-6:
                raise SpaceError(
                    f"parameter {name!r}: {v} is not on the grid {self.low} + k*{self.step}"
                )
        return v

    def cardinality(self) -> float:
        if self.step is not None:
            return float(self._n_steps())
        return 1.0 if self.low == self.high else math.inf

    def values(self) -> list[Any]:
        if self.step is None:
            if self.low == self.high:
                return [float(self.low)]
            raise SpaceError("a continuous Float has no finite list of values")
        return [float(min(self.low + k * self.step, self.high)) for k in range(self._n_steps())]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        return d | self._when_dict()


@dataclass(frozen=True)
class Int(Param):
    """An integer in [low, high] on the grid low + k*step; ``log=True`` samples log-uniformly."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    kind: str = field(default="int", init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        for what, v in (("low", self.low), ("high", self.high), ("step", self.step)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise SpaceError(f"Int {what} must be an int, got {v!r}")
        if self.low > self.high:
            raise SpaceError(f"Int needs low <= high, got [{self.low}, {self.high}]")
        if self.step < 1:
            raise SpaceError(f"Int step must be >= 1, got {self.step}")
        if self.log and (self.low < 1 or self.step != 1):
            raise SpaceError("log-scaled Int needs low >= 1 and step 1")

    def _n(self) -> int:
        return (self.high - self.low) // self.step + 1

    def to_unit(self, value: Any) -> float:
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            return (math.log(value) - lo) / (hi - lo)
        return ((value - self.low) // self.step + 0.5) / self._n()

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            v = round(math.exp(lo + u * (hi - lo)))
            return min(max(v, self.low), self.high)
        n = self._n()
        return self.low + min(int(u * n), n - 1) * self.step

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SpaceError(f"parameter {name!r}: expected an int, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise SpaceError(f"parameter {name!r}: expected an int, got {value!r}")
        v = int(value)
        if not self.low <= v <= self.high:
            raise SpaceError(f"parameter {name!r}: {v} is outside [{self.low}, {self.high}]")
        if (v - self.low) % self.step:
            raise SpaceError(
                f"parameter {name!r}: {v} is not on the grid {self.low} + k*{self.step}"
            )
        return v

    def cardinality(self) -> float:
        return float(self._n())

    def values(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.step != 1:
            d["step"] = self.step
        if self.log:
            d["log"] = True
        return d | self._when_dict()


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@dataclass(frozen=True)
class Categorical(Param):
    """One of a list of choices (None, bool, int, float or str, so candidates stay JSON)."""

    choices: tuple[Any, ...]
    kind: str = field(default="categorical", init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise SpaceError("Categorical needs at least one choice")
        for c in self.choices:
            if not _jsonable(c) or (isinstance(c, float) and math.isnan(c)):
                raise SpaceError(
                    f"Categorical choices must be None, bool, int, float or str, got {c!r}"
                )
        if len({(type(c), c) for c in self.choices}) != len(self.choices):
            raise SpaceError(f"Categorical choices must be distinct, got {list(self.choices)}")

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if type(c) is type(value) and c == value:
                return i
        for i, c in enumerate(self.choices):  # 1 == 1.0 across int/float, but not True == 1
            if c == value and isinstance(c, bool) == isinstance(value, bool):
                return i
        raise KeyError(value)

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Any:
        n = len(self.choices)
        return self.choices[min(int(min(max(float(u), 0.0), 1.0) * n), n - 1)]

    def check(self, name: str, value: Any) -> Any:
        try:
            return self.choices[self.index(value)]
        except KeyError:
            raise SpaceError(
                f"parameter {name!r}: {value!r} is not one of {list(self.choices)}"
            ) from None

    def cardinality(self) -> float:
        return float(len(self.choices))

    def values(self) -> list[Any]:
        return list(self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)} | self._when_dict()


@dataclass(frozen=True)
class Fixed(Param):
    """A constant that is part of every candidate (where active)."""

    value: Any
    kind: str = field(default="fixed", init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _jsonable(self.value):
            raise SpaceError(
                f"Fixed values must be None, bool, int, float or str, got {self.value!r}"
            )

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def check(self, name: str, value: Any) -> Any:
        if value != self.value:
            raise SpaceError(f"parameter {name!r} is fixed to {self.value!r}, got {value!r}")
        return self.value

    def cardinality(self) -> float:
        return 1.0

    def values(self) -> list[Any]:
        return [self.value]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fixed", "value": self.value} | self._when_dict()


def _param_from_dict(d: Mapping[str, Any]) -> Param | Space:
    kind = d.get("type")
    when = d.get("when")
    if kind == "float":
        return Float(d["low"], d["high"], log=d.get("log", False), step=d.get("step"), when=when)
    if kind == "int":
        return Int(d["low"], d["high"], step=d.get("step", 1), log=d.get("log", False), when=when)
    if kind == "categorical":
        return Categorical(tuple(d["choices"]), when=when)
    if kind == "fixed":
        return Fixed(d["value"], when=when)
    if kind == "space":
        return Space.from_dict(d["params"], when=when)
    raise SpaceError(f"unknown parameter type {kind!r} in {dict(d)!r}")


def _coerce(name: str, spec: Any) -> Param | Space:
    """The dict form: a Param, a Space, a dict (nested space), a list (categorical) or a value."""
    if isinstance(spec, (Param, Space)):
        return spec
    if isinstance(spec, Mapping):
        return Space(spec)
    if isinstance(spec, (list, tuple)):
        return Categorical(tuple(spec))
    if _jsonable(spec):
        return Fixed(spec)
    raise SpaceError(f"parameter {name!r}: cannot make a parameter from {spec!r}")


class Space:
    """A search space: named parameters, conditions, nesting; see the module docstring."""

    def __init__(
        self,
        params: Mapping[str, Any],
        *,
        when: Mapping[str, Any] | None = None,
        _flat: bool = False,
    ):
        self.when = _normalise_when(when)
        flat: dict[str, Param] = {}
        for name, spec in params.items():
            # Stored spaces are flat: their nested names already carry dots.
            if not isinstance(name, str) or not name or ("." in name and not _flat):
                raise SpaceError(
                    f"parameter names must be non-empty strings without '.', got {name!r}"
                )
            item = _coerce(name, spec)
            if isinstance(item, Space):
                for sub_name, sub in item.params.items():
                    when_sub = dict(item.when)
                    # Conditions inside a nested space name siblings in that space.
                    for parent, vals in sub.when.items():
                        when_sub[parent if parent in params else f"{name}.{parent}"] = vals
                    flat[f"{name}.{sub_name}"] = _with_when(sub, when_sub)
            else:
                flat[name] = item
        self.params: dict[str, Param] = {}
        # Order parameters so that every parent comes before its children.
        pending = dict(flat)
        while pending:
            progressed = False
            for name, p in list(pending.items()):
                missing = [q for q in p.when if q not in flat]
                if missing:
                    raise SpaceError(
                        f"parameter {name!r} depends on unknown parameter(s) {missing}"
                    )
                if all(q in self.params for q in p.when):
                    self.params[name] = p
                    del pending[name]
                    progressed = True
            if not progressed:
                raise SpaceError(f"conditions form a cycle among {sorted(pending)}")
        for name, p in self.params.items():
            for parent, vals in p.when.items():
                parent_param = self.params[parent]
                for v in vals:
                    try:
                        parent_param.check(parent, v)
                    except SpaceError as exc:
                        raise SpaceError(
                            f"parameter {name!r} is active when {parent!r} is {v!r}, which "
                            f"{parent!r} can never take ({exc})"
                        ) from None
        self.names = list(self.params)
        self._index = {n: i for i, n in enumerate(self.names)}

    # ---- structure ---------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of coordinates of the unit-cube encoding (one per parameter)."""
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Space({', '.join(f'{n}={p!r}' for n, p in self.params.items())})"

    def is_active(self, name: str, candidate: Mapping[str, Any]) -> bool:
        p = self.params[name]
        for parent, vals in p.when.items():
            if parent not in candidate or not _value_in(candidate[parent], vals):
                return False
        return True

    # ---- validation and (de)serialisation ----------------------------------------------

    def validate(self, candidate: Mapping[str, Any]) -> dict[str, Any]:
        """Check a candidate; return it normalised (active parameters only, in space order)."""
        if not isinstance(candidate, Mapping):
            raise SpaceError(f"a candidate must be a dict, got {type(candidate).__name__}")
        unknown = [k for k in candidate if k not in self.params]
        if unknown:
            raise SpaceError(f"unknown parameter(s) {unknown}; the space has {self.names}")
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if not self.is_active(name, out):
                if name in candidate:
                    raise SpaceError(f"parameter {name!r} is inactive here (needs {dict(p.when)})")
                continue
            if name not in candidate:
                if isinstance(p, Fixed):
                    out[name] = p.value
                    continue
                raise SpaceError(f"parameter {name!r} is missing")
            out[name] = p.check(name, candidate[name])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {n: p.to_dict() for n, p in self.params.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, when: Mapping[str, Any] | None = None) -> Space:
        return cls(
            {
                n: _param_from_dict(v) if isinstance(v, Mapping) and "type" in v else v
                for n, v in d.items()
            },
            when=when,
            _flat=True,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> Space:
        return cls.from_dict(json.loads(text))

    # ---- unit-cube encoding -------------------------------------------------------------

    def encode(self, candidate: Mapping[str, Any]) -> np.ndarray:
        """Candidate -> point in [0, 1]^dim; inactive parameters are NaN."""
        x = np.full(self.dim, np.nan)
        for i, name in enumerate(self.names):
            if name in candidate:
                x[i] = self.params[name].to_unit(candidate[name])
        return x

    def decode(self, x: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Point in [0, 1]^dim -> candidate; coordinates of inactive parameters are ignored."""
        if len(x) != self.dim:
            raise SpaceError(f"expected {self.dim} coordinates, got {len(x)}")
        if isinstance(x, np.ndarray):
            x = x.tolist()  # Python floats: indexing an array element by element is slower
        out: dict[str, Any] = {}
        for (name, p), u in zip(self.params.items(), x, strict=True):
            if not p.when or self.is_active(name, out):
                out[name] = p.from_unit(0.5 if u is None or math.isnan(u) else u)
        return out

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random candidate: uniform (log-uniform where log) in every active parameter."""
        return self.decode(rng.random(self.dim))

    # ---- local moves ---------------------------------------------------------------------

    def mutate(
        self, candidate: Mapping[str, Any], rng: np.random.Generator, n: int = 1
    ) -> dict[str, Any]:
        """Change `n` active, non-constant parameters to a different value; parameters that
        become active are sampled. Returns the candidate unchanged if nothing can change."""
        x = self.encode(candidate)
        movable = [
            i
            for i, name in enumerate(self.names)
            if name in candidate and self.params[name].cardinality() > 1
        ]
        if not movable:
            return dict(candidate)
        fresh = rng.random(self.dim)
        x = np.where(np.isnan(x), fresh, x)
        for i in rng.choice(movable, size=min(n, len(movable)), replace=False):
            p = self.params[self.names[i]]
            current = candidate[self.names[i]]
            if isinstance(p, Categorical) or p.cardinality() < 16:
                # Discrete: a uniformly chosen different value.
                others = [v for v in p.values() if v != current]
                x[i] = p.to_unit(others[int(rng.integers(len(others)))])
            else:
                # Wide ranges: a Gaussian step in unit coordinates, retried until it moves.
                for _ in range(16):
                    u = float(np.clip(x[i] + rng.normal(0.0, 0.2), 0.0, 1.0))
                    if p.from_unit(u) != current:
                        break
                x[i] = u
        return self.decode(x)

    def neighbours(self, candidate: Mapping[str, Any], step: float = 0.1) -> list[dict[str, Any]]:
        """Candidates one move away: every other choice of a categorical (or small discrete)
        parameter, the next value either side of an int, +-`step` (unit scale) for a float."""
        base = self.encode(candidate)
        base = np.where(np.isnan(base), 0.5, base)
        seen = {candidate_key(candidate)}
        out = []
        for i, name in enumerate(self.names):
            if name not in candidate:
                continue
            p = self.params[name]
            current = candidate[name]
            if isinstance(p, Categorical) or (p.cardinality() <= 16 and not isinstance(p, Fixed)):
                targets = [p.to_unit(v) for v in p.values() if v != current]
            elif isinstance(p, Int):
                targets = [
                    p.to_unit(v)
                    for v in (current - p.step, current + p.step)
                    if p.low <= v <= p.high
                ]
            elif isinstance(p, Float):
                targets = [min(max(base[i] + d, 0.0), 1.0) for d in (-step, step)]
            else:
                targets = []
            for u in targets:
                x = base.copy()
                x[i] = u
                c = self.decode(x)
                key = candidate_key(c)
                if key not in seen:
                    seen.add(key)
                    out.append(c)
        return out

    # ---- finite spaces -------------------------------------------------------------------

    def size(self) -> float:
        """Number of distinct candidates (inactive parameters counted once); inf if continuous."""
        if any(p.cardinality() == math.inf for p in self.params.values()):
            return math.inf
        return float(sum(1 for _ in self.enumerate()))

    def enumerate(self) -> Iterator[dict[str, Any]]:
        """Every candidate of a finite space, in order (the first parameter varies slowest)."""
        if any(p.cardinality() == math.inf for p in self.params.values()):
            raise SpaceError("the space has continuous parameters: it cannot be enumerated")

        def rec(i: int, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(self.names):
                yield dict(partial)
                return
            name = self.names[i]
            if not self.is_active(name, partial):
                yield from rec(i + 1, partial)
                return
            for v in self.params[name].values():
                partial[name] = v
                yield from rec(i + 1, partial)
            del partial[name]

        yield from rec(0, {})

    def grid(self, resolution: int = 5) -> Iterator[dict[str, Any]]:
        """A grid over the space: finite parameters fully, floats at `resolution` points."""
        if resolution < 1:
            raise SpaceError(f"resolution must be >= 1, got {resolution}")
        levels = {}
        for name, p in self.params.items():
            if p.cardinality() == math.inf:
                levels[name] = [(k + 0.5) / resolution for k in range(resolution)]
            else:
                levels[name] = [p.to_unit(v) for v in p.values()]
        seen: set[str] = set()
        for combo in itertools.product(*(levels[n] for n in self.names)):
            c = self.decode(combo)
            key = candidate_key(c)
            if key not in seen:
                seen.add(key)
                yield c


def _value_in(value: Any, allowed: tuple[Any, ...]) -> bool:
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed)


def _with_when(p: Param, when: dict[str, tuple[Any, ...]]) -> Param:
    import dataclasses

    return dataclasses.replace(p, when=when)


def candidate_key(candidate: Mapping[str, Any]) -> str:
    """A canonical string of a candidate, for caches and duplicate detection."""
    return json.dumps(candidate, sort_keys=True, separators=(",", ":"))

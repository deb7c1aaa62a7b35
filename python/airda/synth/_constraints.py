"""Constraints that every synthetic row satisfies by construction, never by rejection.

Each constraint is a reversible reparameterisation of the model columns, applied by
:class:`~airda.synth._table.TableEncoder` before a synthesizer sees the data and undone after it
samples:

- :class:`Range`: ``low <= x <= high`` (``<`` with ``strict``): the model sees the logit of the
  scaled value, which maps back inside the interval for any real number;
- :class:`Positive`: ``x >= 0`` (``> 0`` with ``strict``): the model sees ``log(x + delta)``;
- :class:`Inequality`: ``low <= high``: the high column is modelled as ``low + gap`` with the log
  of the gap, so it can never fall below low;
- :class:`FixedCombinations`: the observed combinations of some discrete columns are one
  categorical model column, so only those combinations come back;
- :class:`Unique`: values are made distinct when decoding (identifiers are generated distinct).

Rounding (integers, decimals, datetime resolution) comes after the inverse transform; a last
projection step (:meth:`Constraint.enforce`) then puts back the few values that rounding moved
across a bound, so 100% of the rows satisfy every constraint. When two constraints would
reparameterise the same column, the second holds by that projection step only.

Example:
    >>> from airda.synth import Inequality, Metadata, Range
    >>> import pandas as pd
    >>> df = pd.DataFrame({"start": [1.0, 2.0, 4.0], "end": [2.0, 5.0, 4.5]})
    >>> md = Metadata.detect(df).add_constraint(Inequality("start", "end"))
    >>> md.add_constraint(Range("start", 0, 10)).constraints
    [Inequality('start', 'end'), Range('start', 0, 10)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from airda.synth._metadata import SynthDataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from airda.synth._metadata import Column, Metadata

__all__ = ["Constraint", "FixedCombinations", "Inequality", "Positive", "Range", "Unique"]

_NUMERIC = ("numerical", "integer", "datetime")
_EPS = 1e-6  # Range: the scaled value is kept in [eps, 1 - eps] before its logit


class Constraint:
    """Base class. A constraint names its columns, checks them against the metadata, tells which
    rows of a table satisfy it, and transforms the encoder's model frame forward and back.

    The model frame is a dict column -> 1-D array: float64 for numbers (datetimes as seconds
    since the epoch, NaN for missing) and int64 codes for categories; ``kinds`` maps each of
    its columns to ``"num"`` or ``"cat"`` and ``sizes`` gives a categorical column's number of
    codes.
    """

    kind: ClassVar[str] = ""
    _REGISTRY: ClassVar[dict[str, type[Constraint]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Constraint._REGISTRY[cls.__name__] = cls

    columns: tuple[str, ...] = ()

    # -- description
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with a ``type`` key."""
        raise NotImplementedError

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Constraint:
        """The constraint that :meth:`to_dict` wrote."""
        d = dict(d)
        cls = Constraint._REGISTRY.get(str(d.pop("type", "")))
        if cls is None:
            raise SynthDataError(
                f"unknown constraint type in {d!r} (one of {sorted(Constraint._REGISTRY)})"
            )
        try:
            return cls(**d)
        except TypeError as exc:
            raise SynthDataError(f"bad {cls.__name__} constraint {d!r}: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    # -- checks
    def check_metadata(self, md: Metadata) -> None:
        """Raise SynthDataError when a column is unknown or of a kind this constraint cannot
        hold."""
        for c in self.columns:
            if c not in md.columns:
                raise SynthDataError(f"{self!r}: column {c!r} is not in the metadata", c)

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        """A boolean per row of `df` (in its original format): does the row satisfy this?"""
        raise NotImplementedError

    # -- the encoder's hooks (model frame)
    def reads(self) -> tuple[str, ...]:
        """The model columns whose original values the forward transform reads."""
        return self.columns

    def writes(self) -> tuple[str, ...]:
        """The model columns the forward transform replaces (empty: projection only)."""
        return ()

    def fit(self, frame: dict[str, np.ndarray], md: Metadata) -> None:
        """Learn what the transform needs (scales) from the model frame of the training data."""

    def forward(
        self,
        orig: dict[str, np.ndarray],
        out: dict[str, np.ndarray],
        kinds: dict[str, str],
        sizes: dict[str, int],
    ) -> None:
        """Write the reparameterised columns into `out`, reading original values from `orig`.
        A frame holding only some of the columns (conditions) is transformed where it can be;
        where it cannot, SynthDataError."""

    def backward(self, frame: dict[str, np.ndarray], kinds: dict[str, str]) -> None:
        """Undo :meth:`forward` in place."""

    def enforce(self, frame: dict[str, np.ndarray], md: Metadata, step: dict[str, float]) -> None:
        """After rounding: move the values that rounding pushed across a bound back inside
        (`step` is each numeric column's resolution: 1 for integers, 10**-decimals, ...)."""


# ---------------------------------------------------------------------- helpers
def _numeric_values(df: pd.DataFrame, col: Column) -> np.ndarray:
    """A column of a table in its original format -> float64 (datetimes: seconds), NaN missing."""
    import pandas as pd

    s = df[col.name]
    if col.kind == "datetime":
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s, format=col.datetime_format or "mixed", errors="coerce")
        ns = s.astype("datetime64[ns]")
        out = ns.astype(np.int64).to_numpy().astype(np.float64) / 1e9
        out[ns.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)


def _bound(value: Any, col: Column) -> float:
    """A bound given by the user (number, or date for a datetime column) -> model units."""
    import pandas as pd

    if value is None:
        raise SynthDataError(f"column {col.name!r}: a bound is None", col.name)
    if col.kind == "datetime" and not isinstance(value, int | float):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.value / 1e9
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SynthDataError(f"column {col.name!r}: bound {value!r} is not a number",
                             col.name) from None  # fmt: skip


def _need_kind(c: Constraint, md: Metadata, name: str, kinds: tuple[str, ...]) -> None:
    kind = md.columns[name].kind
    if kind not in kinds:
        raise SynthDataError(
            f"{c!r}: column {name!r} is {kind}; this constraint needs {' or '.join(kinds)}",
            name,
        )


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


# ---------------------------------------------------------------------- Range
class Range(Constraint):
    """``low <= column <= high`` (strict: ``low < column < high``) for a numerical, integer or
    datetime column; bounds of a datetime column may be dates (``"2024-01-01"``).

    Modelled as ``logit((x - low) / (high - low))``, which any real number maps back into.
    """

    def __init__(self, column: str, low: Any, high: Any, strict: bool = False):
        self.column, self.low, self.high, self.strict = column, low, high, bool(strict)
        self.columns = (column,)
        self._lo = self._hi = None

    def __repr__(self) -> str:
        s = ", strict=True" if self.strict else ""
        return f"Range({self.column!r}, {self.low!r}, {self.high!r}{s})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Range", "column": self.column, "low": _json(self.low),
                "high": _json(self.high), "strict": self.strict}  # fmt: skip

    def check_metadata(self, md: Metadata) -> None:
        super().check_metadata(md)
        _need_kind(self, md, self.column, _NUMERIC)
        col = md.columns[self.column]
        lo, hi = _bound(self.low, col), _bound(self.high, col)
        if not lo < hi:
            raise SynthDataError(f"{self!r}: low must be below high", self.column)

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        col = md.columns[self.column]
        x = _numeric_values(df, col)
        lo, hi = _bound(self.low, col), _bound(self.high, col)
        ok = (x > lo) & (x < hi) if self.strict else (x >= lo) & (x <= hi)
        return ok | np.isnan(x)

    def writes(self) -> tuple[str, ...]:
        return (self.column,)

    def fit(self, frame: dict[str, np.ndarray], md: Metadata) -> None:
        col = md.columns[self.column]
        self._lo, self._hi = _bound(self.low, col), _bound(self.high, col)

    def forward(self, orig, out, kinds, sizes) -> None:
        if self.column not in orig:
            return
        u = (orig[self.column] - self._lo) / (self._hi - self._lo)
        u = np.clip(u, _EPS, 1 - _EPS)
        out[self.column] = np.log(u) - np.log1p(-u)

    def backward(self, frame, kinds) -> None:
        z = frame[self.column]
        u = 0.5 * (1 + np.tanh(0.5 * z))  # the logistic function without overflow
        frame[self.column] = self._lo + u * (self._hi - self._lo)

    def enforce(self, frame, md, step) -> None:
        x = frame[self.column]
        lo, hi = self._lo, self._hi
        if self.strict:
            d = step.get(self.column, 0.0)
            lo = lo + d if d else np.nextafter(lo, np.inf)
            hi = hi - d if d else np.nextafter(hi, -np.inf)
            if lo > hi:
                raise SynthDataError(f"{self!r}: no value of the column's resolution lies "
                                     "strictly inside the range", self.column)  # fmt: skip
        frame[self.column] = _clip_up(_clip_down(x, hi, step.get(self.column)), lo,
                                      step.get(self.column))  # fmt: skip


def _clip_up(x: np.ndarray, lo: float, step: float | None) -> np.ndarray:
    """max(x, lo), with lo moved up to the column's grid when it has one."""
    if step:
        lo = np.ceil(lo / step - 1e-9) * step
    return np.where(x < lo, lo, x)


def _clip_down(x: np.ndarray, hi: float, step: float | None) -> np.ndarray:
    if step:
        hi = np.floor(hi / step + 1e-9) * step
    return np.where(x > hi, hi, x)


# ---------------------------------------------------------------------- Positive
class Positive(Constraint):
    """``column >= 0`` (strict: ``> 0``) for a numerical, integer or datetime column.

    Modelled as ``log(x + delta)`` with a small ``delta`` (a thousandth of the median positive
    value) so that zeros are kept.
    """

    def __init__(self, column: str, strict: bool = False):
        self.column, self.strict = column, bool(strict)
        self.columns = (column,)
        self._delta = 1.0

    def __repr__(self) -> str:
        return f"Positive({self.column!r}{', strict=True' if self.strict else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Positive", "column": self.column, "strict": self.strict}

    def check_metadata(self, md: Metadata) -> None:
        super().check_metadata(md)
        _need_kind(self, md, self.column, _NUMERIC)

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        x = _numeric_values(df, md.columns[self.column])
        return ((x > 0) if self.strict else (x >= 0)) | np.isnan(x)

    def writes(self) -> tuple[str, ...]:
        return (self.column,)

    def fit(self, frame: dict[str, np.ndarray], md: Metadata) -> None:
        x = frame[self.column]
        pos = x[np.isfinite(x) & (x > 0)]
        self._delta = float(np.median(pos) * 1e-3) if len(pos) else 1.0
        if self.strict:
            self._delta = 0.0

    def forward(self, orig, out, kinds, sizes) -> None:
        if self.column not in orig:
            return
        x = orig[self.column]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log(np.maximum(x, 0.0) + self._delta)
        floor = np.nanmin(z[np.isfinite(z)]) if np.isfinite(z).any() else 0.0
        out[self.column] = np.where(np.isneginf(z), floor, z)

    def backward(self, frame, kinds) -> None:
        z = np.minimum(frame[self.column], 700.0)
        frame[self.column] = np.maximum(np.exp(z) - self._delta, 0.0)

    def enforce(self, frame, md, step) -> None:
        x = frame[self.column]
        d = step.get(self.column)
        if self.strict:
            lo = d if d else np.nextafter(0.0, 1.0)
            frame[self.column] = np.where(x < lo, lo, x)
        else:
            frame[self.column] = np.where(x < 0, 0.0, x)


# ---------------------------------------------------------------------- Inequality
class Inequality(Constraint):
    """``low <= high`` (strict: ``low < high``) between two numerical, integer or datetime
    columns (both of one family: numbers with numbers, datetimes with datetimes).

    The high column is modelled as ``log(high - low + delta)``: the sampled high is
    ``low + gap`` with a gap that cannot be negative.
    """

    def __init__(self, low: str, high: str, strict: bool = False):
        self.low, self.high, self.strict = low, high, bool(strict)
        self.columns = (low, high)
        self._delta = 1.0

    def __repr__(self) -> str:
        return f"Inequality({self.low!r}, {self.high!r}{', strict=True' if self.strict else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Inequality", "low": self.low, "high": self.high, "strict": self.strict}

    def check_metadata(self, md: Metadata) -> None:
        super().check_metadata(md)
        if self.low == self.high:
            raise SynthDataError(f"{self!r}: the two columns must differ", self.low)
        _need_kind(self, md, self.low, _NUMERIC)
        _need_kind(self, md, self.high, _NUMERIC)
        a, b = md.columns[self.low].kind, md.columns[self.high].kind
        if (a == "datetime") != (b == "datetime"):
            raise SynthDataError(f"{self!r}: cannot compare {a} column {self.low!r} with "
                                 f"{b} column {self.high!r}", self.high)  # fmt: skip

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        lo = _numeric_values(df, md.columns[self.low])
        hi = _numeric_values(df, md.columns[self.high])
        ok = (lo < hi) if self.strict else (lo <= hi)
        return ok | np.isnan(lo) | np.isnan(hi)

    def reads(self) -> tuple[str, ...]:
        return (self.low, self.high)

    def writes(self) -> tuple[str, ...]:
        return (self.high,)

    def fit(self, frame: dict[str, np.ndarray], md: Metadata) -> None:
        gap = frame[self.high] - frame[self.low]
        pos = gap[np.isfinite(gap) & (gap > 0)]
        self._delta = float(np.median(pos) * 1e-3) if len(pos) else 1.0

    def forward(self, orig, out, kinds, sizes) -> None:
        if self.high not in orig:
            return
        if self.low not in orig:
            raise SynthDataError(f"{self!r}: a condition on {self.high!r} needs a value for "
                                 f"{self.low!r} too", self.high)  # fmt: skip
        gap = np.maximum(orig[self.high] - orig[self.low], 0.0)
        out[self.high] = np.log(gap + self._delta)

    def backward(self, frame, kinds) -> None:
        z = np.minimum(frame[self.high], 700.0)
        frame[self.high] = frame[self.low] + np.maximum(np.exp(z) - self._delta, 0.0)

    def enforce(self, frame, md, step) -> None:
        lo, hi = frame[self.low], frame[self.high]
        if self.strict:
            d = step.get(self.high)
            floor = lo + d if d else np.nextafter(lo, np.inf)
            frame[self.high] = np.where(hi <= lo, floor, hi)
        else:
            frame[self.high] = np.where(hi < lo, lo, hi)


# ---------------------------------------------------------------------- FixedCombinations
class FixedCombinations(Constraint):
    """Only the combinations of these discrete columns (categorical, boolean or integer) that
    occur in the data come back: they are modelled as one categorical column."""

    def __init__(self, columns: list[str] | tuple[str, ...]):
        if isinstance(columns, str) or len(columns) < 2:
            raise SynthDataError(f"FixedCombinations needs at least two columns, got {columns!r}")
        self.columns = tuple(columns)
        if len(set(self.columns)) != len(self.columns):
            raise SynthDataError(f"FixedCombinations: a column appears twice in {columns!r}")
        self._table: np.ndarray | None = None

    @property
    def name(self) -> str:
        """The model column that stands for the combination."""
        return "fixed(" + ",".join(self.columns) + ")"

    def __repr__(self) -> str:
        return f"FixedCombinations({list(self.columns)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "FixedCombinations", "columns": list(self.columns)}

    def check_metadata(self, md: Metadata) -> None:
        super().check_metadata(md)
        for c in self.columns:
            _need_kind(self, md, c, ("categorical", "boolean", "integer"))

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        return np.ones(len(df), dtype=bool)  # any observed combination is allowed

    def writes(self) -> tuple[str, ...]:
        return self.columns

    @staticmethod
    def _stack(frame: dict[str, np.ndarray], cols: tuple[str, ...]) -> np.ndarray:
        m = np.stack([np.asarray(frame[c], dtype=np.float64) for c in cols], axis=1)
        return np.where(np.isnan(m), -np.inf, m)  # missing is a value of its own

    def fit(self, frame: dict[str, np.ndarray], md: Metadata) -> None:
        self._table = np.unique(self._stack(frame, self.columns), axis=0)

    def forward(self, orig, out, kinds, sizes) -> None:
        present = [c for c in self.columns if c in orig]
        if not present:
            return
        if len(present) < len(self.columns):
            miss = next(c for c in self.columns if c not in orig)
            raise SynthDataError(f"{self!r}: a condition on {present[0]!r} needs values for "
                                 f"every column of the combination ({miss!r} missing)",
                                 miss)  # fmt: skip
        rows = self._stack(orig, self.columns)
        assert self._table is not None
        idx = {tuple(r): i for i, r in enumerate(self._table)}
        codes = np.empty(len(rows), dtype=np.int64)
        for i, r in enumerate(map(tuple, rows)):
            code = idx.get(r)
            if code is None:
                raise SynthDataError(f"{self!r}: the combination {r} never occurs in the data",
                                     self.columns[0])  # fmt: skip
            codes[i] = code
        self._kinds = {c: kinds.get(c, "cat") for c in self.columns}
        for c in self.columns:
            out.pop(c, None)
            kinds.pop(c, None)
            sizes.pop(c, None)
        out[self.name] = codes
        kinds[self.name] = "cat"
        sizes[self.name] = len(self._table)

    def backward(self, frame, kinds) -> None:
        assert self._table is not None
        rows = self._table[frame.pop(self.name)]
        kinds.pop(self.name, None)
        for j, c in enumerate(self.columns):
            v = rows[:, j]
            if self._kinds.get(c) == "cat":
                frame[c] = v.astype(np.int64)
            else:
                frame[c] = np.where(np.isinf(v), np.nan, v)
            kinds[c] = self._kinds.get(c, "cat")


# ---------------------------------------------------------------------- Unique
class Unique(Constraint):
    """No two rows share a value of this column. Numbers are made distinct by moving
    duplicates to the nearest free value above (by the column's resolution); a categorical
    column is generated like an identifier."""

    def __init__(self, column: str):
        self.column = column
        self.columns = (column,)

    def __repr__(self) -> str:
        return f"Unique({self.column!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Unique", "column": self.column}

    def check_metadata(self, md: Metadata) -> None:
        super().check_metadata(md)
        _need_kind(self, md, self.column, (*_NUMERIC, "categorical", "id"))

    def is_satisfied(self, df: pd.DataFrame, md: Metadata) -> np.ndarray:
        s = df[self.column]
        dup = s.duplicated(keep="first") & s.notna()
        return ~dup.to_numpy()

    def enforce(self, frame, md, step) -> None:
        if self.column not in frame or md.columns[self.column].kind not in _NUMERIC:
            return
        x = frame[self.column].copy()
        ok = ~np.isnan(x)
        v = x[ok]
        order = np.argsort(v, kind="stable")
        s = v[order]
        d = step.get(self.column)
        if d:  # s_i - i d, made non-decreasing, plus i d: strictly increasing by >= d
            i = np.arange(len(s)) * d
            s = np.maximum.accumulate(s - i) + i
        else:
            while (dup := np.flatnonzero(s[1:] <= s[:-1])).size:
                s[dup + 1] = np.nextafter(s[dup], np.inf)
        v[order] = s
        x[ok] = v
        frame[self.column] = x

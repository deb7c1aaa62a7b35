"""What a table's columns are: kinds detected from a DataFrame, overridable, JSON-safe.

A :class:`Metadata` holds one :class:`Column` per column (its kind, missing fraction, categories,
range, datetime format and resolution) and the table's constraints. :meth:`Metadata.detect`
guesses it from a DataFrame; :meth:`Metadata.set` overrides a column; :meth:`Metadata.validate`
checks a table against it and raises :class:`SynthDataError` naming the column at fault.

Example:
    >>> import pandas as pd
    >>> from airda.synth import Metadata
    >>> df = pd.DataFrame({"age": [31, 45, 27], "city": ["Oslo", "Rome", "Oslo"]})
    >>> md = Metadata.detect(df)
    >>> md.columns["age"].kind, md.columns["city"].kind
    ('integer', 'categorical')
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from airda.synth._constraints import Constraint

__all__ = ["KINDS", "Column", "Metadata", "SynthDataError"]

KINDS = ("numerical", "integer", "categorical", "boolean", "datetime", "id")

# Datetime resolutions, coarsest first: a column whose values are all whole days comes back as
# whole days.
_UNITS = (("D", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9),
          ("ms", 10**6), ("us", 10**3), ("ns", 1))  # fmt: skip

# Names that mark an identifier column when its values are all distinct.
_ID_SUFFIXES = ("id", "_id", "-id", " id", "uuid", "_key", "key")


class SynthDataError(ValueError):
    """A table, metadata or condition that a synthesizer cannot use; the message names the
    column at fault (and :attr:`column` holds it, or None for the table as a whole)."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


@dataclass
class Column:
    """One column of a table.

    Attributes:
        name: the column's name.
        kind: one of ``"numerical"``, ``"integer"``, ``"categorical"``, ``"boolean"``,
            ``"datetime"``, ``"id"``.
        missing: the fraction of missing values (reproduced at this rate).
        categories: the observed values of a categorical or boolean column (JSON-safe scalars).
        low: the smallest value (numbers; datetimes as nanoseconds since the epoch).
        high: the largest value.
        constant: True when the column holds a single value (reproduced as it is).
        value: that single value for a constant column.
        datetime_format: a strftime format when the datetimes were strings (None: datetime64).
        unit: the datetimes' resolution (``"D"``, ``"h"``, ``"min"``, ``"s"``, ``"ms"``,
            ``"us"``, ``"ns"``); samples are rounded to it.
        tz: the time zone of tz-aware datetimes.
        decimals: numbers of a numerical column are rounded to this many decimals (None: none).
        dtype: the pandas dtype seen at detection (restored when sampling).
    """

    name: str
    kind: str
    missing: float = 0.0
    categories: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    constant: bool = False
    value: Any = None
    datetime_format: str | None = None
    unit: str | None = None
    tz: str | None = None
    decimals: int | None = None
    dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (defaults left out)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name not in out and v != f.default:
                out[f.name] = _json_safe(v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        """The column that :meth:`to_dict` wrote."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SynthDataError(
                f"column {d.get('name')!r}: unknown metadata keys {sorted(unknown)}", d.get("name")
            )
        col = cls(**d)
        if col.kind not in KINDS:
            raise SynthDataError(
                f"column {col.name!r}: unknown kind {col.kind!r} (one of {', '.join(KINDS)})",
                col.name,
            )
        return col


@dataclass
class Metadata:
    """The columns of a table (kind, missing rate, categories, range) and its constraints.

    Attributes:
        columns: name -> :class:`Column`, in the table's order.
        constraints: the constraints every sample satisfies (see :mod:`airda.synth`'s
            ``Range``, ``Inequality``, ``FixedCombinations``, ``Unique``, ``Positive``).
        target: the label column, if any (used by class-conditional synthesizers and metrics).
    """

    columns: dict[str, Column] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    target: str | None = None

    # ------------------------------------------------------------------ detection
    @classmethod
    def detect(cls, df: pd.DataFrame, *, target: str | None = None) -> Metadata:
        """Guess every column's kind, missing rate, categories and range from a DataFrame.

        Rules: bool dtype or only True/False -> boolean; datetime64, or strings that all parse
        as dates -> datetime; whole numbers -> integer (a target with at most 20 distinct
        values -> categorical); other numbers -> numerical; distinct integers or strings in a
        column named like ``id``/``*_id`` -> id; other strings -> categorical; one distinct value
        -> constant (kept as it is).

        Args:
            df: the table.
            target: the label column, if any.

        Raises:
            SynthDataError: an empty table, an all-missing column, a column mixing numbers and
                strings, or a `target` that is not a column.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise SynthDataError(f"expected a pandas DataFrame, got {type(df).__name__}")
        _check_table(df)
        if target is not None and target not in df.columns:
            raise SynthDataError(f"target column {target!r} is not in the table", target)
        md = cls(target=target)
        for name in df.columns:
            md.columns[name] = _detect_column(df[name], name, is_target=name == target)
        return md

    # ------------------------------------------------------------------ overrides
    def set(self, name: str, **fields: Any) -> Column:
        """Override a column's fields, e.g. ``md.set("zip", kind="categorical")``.

        Changing the kind of a detected column clears what no longer applies (categories for a
        number, a range for a category); the encoder re-derives them from the data when fitting.

        Raises:
            SynthDataError: an unknown column, field or kind.
        """
        if name not in self.columns:
            raise SynthDataError(f"no column {name!r} in the metadata", name)
        col = self.columns[name]
        names = {f.name for f in dataclasses.fields(Column)} - {"name"}
        unknown = set(fields) - names
        if unknown:
            raise SynthDataError(f"column {name!r}: unknown fields {sorted(unknown)}", name)
        kind = fields.get("kind", col.kind)
        if kind not in KINDS:
            raise SynthDataError(
                f"column {name!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})", name
            )
        if kind != col.kind:
            cleared = Column(name=name, kind=kind, missing=col.missing, dtype=col.dtype)
            if kind in ("numerical", "integer", "datetime") and col.kind in (
                "numerical",
                "integer",
                "datetime",
            ):
                cleared.low, cleared.high = col.low, col.high
            col = cleared
        col = dataclasses.replace(col, **fields)
        self.columns[name] = col
        return col

    def add_constraint(self, constraint: Constraint) -> Metadata:
        """Add a constraint after checking that its columns exist and suit it; returns self."""
        from airda.synth._constraints import Constraint

        if not isinstance(constraint, Constraint):
            raise SynthDataError(f"not a constraint: {constraint!r}")
        constraint.check_metadata(self)
        self.constraints.append(constraint)
        return self

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"columns": [...], "constraints": [...], "target": ...}``."""
        return {
            "columns": [c.to_dict() for c in self.columns.values()],
            "constraints": [c.to_dict() for c in self.constraints],
            "target": self.target,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metadata:
        """The metadata that :meth:`to_dict` wrote (or a hand-written JSON file of that shape).

        A column entry needs only ``name`` and ``kind``; the rest is filled in from the data
        when a synthesizer is fitted.
        """
        from airda.synth._constraints import Constraint

        if not isinstance(d, dict) or "columns" not in d:
            raise SynthDataError("metadata must be a dict with a 'columns' list")
        unknown = set(d) - {"columns", "constraints", "target"}
        if unknown:
            raise SynthDataError(f"unknown metadata keys {sorted(unknown)}")
        cols = d["columns"]
        if isinstance(cols, dict):  # {"name": {"kind": ...}} is accepted too
            cols = [{"name": k, **v} for k, v in cols.items()]
        md = cls(target=d.get("target"))
        for c in cols:
            col = Column.from_dict(dict(c))
            md.columns[col.name] = col
        for c in d.get("constraints", []):
            md.add_constraint(Constraint.from_dict(c))
        return md

    def copy(self) -> Metadata:
        """A deep copy."""
        return Metadata.from_dict(self.to_dict())

    # ------------------------------------------------------------------ validation
    def validate(self, df: pd.DataFrame) -> None:
        """Check a table against this metadata.

        Raises:
            SynthDataError: an empty table, a missing or extra column, an all-missing column,
                values that do not fit the column's kind (mixed numbers and strings, text in a
                numerical column, unparseable dates), or a constraint the data breaks.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise SynthDataError(f"expected a pandas DataFrame, got {type(df).__name__}")
        _check_table(df)
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise SynthDataError(f"column {missing[0]!r} of the metadata is not in the table",
                                 missing[0])  # fmt: skip
        extra = [c for c in df.columns if c not in self.columns]
        if extra:
            raise SynthDataError(f"column {extra[0]!r} is not in the metadata", extra[0])
        if self.target is not None and self.target not in self.columns:
            raise SynthDataError(f"target column {self.target!r} is not in the table", self.target)
        for name, col in self.columns.items():
            _check_values(df[name], col)
        for c in self.constraints:
            c.check_metadata(self)
            ok = c.is_satisfied(df, self)
            if not ok.all():
                bad = int((~ok).sum())
                raise SynthDataError(
                    f"{c!r}: {bad} of {len(df)} rows of the data break it (column "
                    f"{c.columns[0]!r})",
                    c.columns[0],
                )

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}: {c.kind}" for n, c in self.columns.items())
        extra = f", {len(self.constraints)} constraints" if self.constraints else ""
        tgt = f", target={self.target!r}" if self.target else ""
        return f"Metadata({kinds}{extra}{tgt})"


# ---------------------------------------------------------------------- helpers
def _json_safe(v: Any) -> Any:
    import numpy as np

    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _check_table(df: pd.DataFrame) -> None:
    if df.shape[1] == 0:
        raise SynthDataError("the table has no columns")
    if len(df) == 0:
        raise SynthDataError(f"the table is empty (0 rows; first column {df.columns[0]!r})",
                             str(df.columns[0]))  # fmt: skip
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise SynthDataError(f"column {dup[0]!r} appears twice", str(dup[0]))
    for name in df.columns:
        if not isinstance(name, str):
            raise SynthDataError(f"column names must be strings, got {name!r}", str(name))


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _value_types(s: pd.Series) -> tuple[bool, bool, bool, bool]:
    """(has numbers, has strings, has bools, has other) among the non-missing values of an
    object column."""
    vals = s.dropna()
    nums = strs = bools = other = False
    for v in vals.map(type).unique():
        if issubclass(v, bool) or v.__name__ == "bool_":
            bools = True
        elif issubclass(v, numbers.Number):
            nums = True
        elif issubclass(v, str):
            strs = True
        else:
            other = True
    return nums, strs, bools, other


def _mixed_error(name: str) -> SynthDataError:
    return SynthDataError(
        f"column {name!r} mixes numbers and strings; convert it to one type (or set its kind "
        "to 'categorical' after converting the numbers to strings)",
        name,
    )


def _datetime_unit(ns: Any) -> str:
    import numpy as np

    ns = np.asarray(ns, dtype=np.int64)
    for unit, step in _UNITS:
        if np.all(ns % step == 0):
            return unit
    return "ns"


def _parse_dates(s: pd.Series, fmt: str | None) -> pd.Series | None:
    """Strings -> datetime64 with `fmt`, or None when some do not parse."""
    import pandas as pd

    vals = s.dropna()
    try:
        parsed = pd.to_datetime(vals, format=fmt, errors="coerce")
    except (ValueError, TypeError):
        return None
    if parsed.isna().any():
        return None
    return parsed


def _guess_format(s: pd.Series) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    first = s.dropna().iloc[0]
    return guess_datetime_format(str(first))


def _detect_column(s: pd.Series, name: str, *, is_target: bool) -> Column:
    import numpy as np
    import pandas as pd

    n = len(s)
    isna = s.isna()
    n_missing = int(isna.sum())
    if n_missing == n:
        raise SynthDataError(f"column {name!r} has only missing values; drop it", name)
    missing = n_missing / n
    dtype = str(s.dtype)
    vals = s[~isna]
    nunique = int(vals.nunique())
    col = Column(name=name, kind="categorical", missing=missing, dtype=dtype)

    if pd.api.types.is_bool_dtype(s.dtype):
        col.kind = "boolean"
    elif isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        col.kind = "datetime"
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            col.tz = str(s.dtype.tz)
            vals = vals.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = vals.astype("datetime64[ns]").astype(np.int64).to_numpy()
        col.low, col.high, col.unit = float(ns.min()), float(ns.max()), _datetime_unit(ns)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        x = vals.to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise SynthDataError(f"column {name!r} holds infinite values", name)
        whole = bool(np.all(x == np.round(x)))
        if is_target and whole and nunique <= 20:
            col.kind = "categorical"
        elif whole:
            col.kind = "integer"
            if nunique == n and _looks_like_id(name):
                col.kind = "id"
        else:
            col.kind = "numerical"
            col.decimals = _decimals(x)
        if col.kind != "categorical":
            col.low, col.high = float(x.min()), float(x.max())
    else:
        nums, strs, bools, other = _value_types(vals)
        if nums and strs:
            raise _mixed_error(name)
        if nums and not (bools or other):  # numbers in an object column
            col = _detect_column(pd.to_numeric(s), name, is_target=is_target)
            col.dtype = dtype
            return col
        if bools and not (nums or strs or other):
            col.kind = "boolean"
        elif (nums or bools or other) and not strs:
            raise SynthDataError(
                f"column {name!r} holds numbers or objects in an object column; convert it to "
                "a numeric dtype (numbers mixed with booleans or other objects)",
                name,
            )
        elif strs:
            as_num = pd.to_numeric(vals, errors="coerce")
            share = float(as_num.notna().mean())
            if share == 1.0 and not other:  # numbers written as strings
                col = _detect_column(pd.to_numeric(s), name, is_target=is_target)
                col.dtype = dtype
                return col
            if share >= 0.9:  # a few stray strings in a column of numbers
                bad = vals[as_num.isna()].iloc[0]
                raise SynthDataError(
                    f"column {name!r} mixes numbers and strings ({share:.0%} numbers, e.g. "
                    f"{bad!r}); clean it, or give metadata that sets its kind",
                    name,
                )
            fmt = _guess_format(vals) if nunique > 1 or n > 1 else None
            parsed = _parse_dates(vals, fmt) if fmt else None
            if parsed is not None:
                col.kind, col.datetime_format = "datetime", fmt
                ns = parsed.astype("datetime64[ns]").astype(np.int64).to_numpy()
                col.low, col.high = float(ns.min()), float(ns.max())
                col.unit = _datetime_unit(ns)
            elif (
                nunique == n - n_missing
                and n - n_missing > 1
                and (_looks_like_id(name) or (nunique > 50 and not is_target))
            ):
                col.kind = "id"
    if col.kind in ("categorical", "boolean"):
        cats = sorted(vals.unique().tolist(), key=lambda v: (str(type(v)), v))
        col.categories = [_json_safe(v) for v in cats]
    if nunique == 1 and col.kind != "id":
        col.constant = True
        col.value = _json_safe(vals.iloc[0])
        if col.kind == "datetime":
            col.value = str(s[~isna].iloc[0])
    return col


def _looks_like_id(name: str) -> bool:
    low = name.lower()
    return (
        low == "id"
        or any(low.endswith(suf) for suf in _ID_SUFFIXES[1:] if suf != "key")
        or (low.endswith("key") and len(low) > 3)
    )


def _decimals(x: Any) -> int | None:
    """The fewest decimals (up to 6) that represent every value exactly, or None."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)[:5000]
    for d in range(7):
        if np.allclose(np.round(x, d), x, rtol=0, atol=1e-9 * max(1.0, float(np.abs(x).max()))):
            return d
    return None


def _check_values(s: pd.Series, col: Column) -> None:
    """Raise SynthDataError when `s` does not fit `col`'s kind."""
    import numpy as np
    import pandas as pd

    name = col.name
    vals = s.dropna()
    if len(vals) == 0:
        raise SynthDataError(f"column {name!r} has only missing values; drop it", name)
    if col.kind in ("numerical", "integer"):
        if pd.api.types.is_bool_dtype(s.dtype):
            return
        if not pd.api.types.is_numeric_dtype(s.dtype):
            nums, strs, _, _ = _value_types(vals)
            if nums and strs:
                raise _mixed_error(name)
            conv = pd.to_numeric(vals, errors="coerce")
            if conv.isna().any():
                bad = vals[conv.isna()].iloc[0]
                raise SynthDataError(f"column {name!r} is {col.kind} but holds {bad!r}", name)
            vals = conv
        x = vals.to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise SynthDataError(f"column {name!r} holds infinite values", name)
    elif col.kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.DatetimeTZDtype):
            return
        nums, strs, _, _ = _value_types(vals) if s.dtype == object else (False, True, 0, 0)
        if nums and strs:
            raise _mixed_error(name)
        if _parse_dates(vals.astype(str), col.datetime_format) is None:
            raise SynthDataError(
                f"column {name!r} is datetime but some values do not parse"
                + (f" with format {col.datetime_format!r}" if col.datetime_format else ""),
                name,
            )
    elif col.kind in ("categorical", "boolean", "id") and s.dtype == object:
        nums, strs, _, _ = _value_types(vals)
        if nums and strs:
            raise _mixed_error(name)
    if col.missing is not None and not (0.0 <= col.missing <= 1.0 and not math.isnan(col.missing)):
        raise SynthDataError(f"column {name!r}: missing must be a fraction in [0, 1]", name)

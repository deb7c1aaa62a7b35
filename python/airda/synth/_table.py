"""Tables to the arrays a synthesizer models, and back.

:class:`TableEncoder` turns a DataFrame into an :class:`Encoded`: continuous model columns
(``num``, float64, no NaN) and categorical codes (``cat``, int64). On the way it

- reads datetimes as seconds since the epoch (strings through their detected format),
- applies the constraints' reversible reparameterisations (logit for ``Range``, log for
  ``Positive``, log gap for ``Inequality``, one categorical column for ``FixedCombinations``),
- replaces the missing values of a numeric column by draws from its observed values and adds a
  categorical indicator column ``"<name>#missing"`` (missing categories are a code of their own),
- leaves identifiers and constant columns out (they are generated when decoding).

:meth:`TableEncoder.decode` undoes all of it: it rounds integers, decimals and datetimes to the
data's resolution, keeps numbers inside the observed range, holds every constraint, generates
distinct identifiers, and returns the original columns, order and dtypes.

Example:
    >>> import pandas as pd
    >>> from airda.synth import Metadata, TableEncoder
    >>> df = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["a", "b", "a"]})
    >>> enc = TableEncoder(Metadata.detect(df)).fit(df)
    >>> e = enc.encode(df)
    >>> e.num_names, e.cat_names, e.cat_sizes
    (['x'], ['c', 'x#missing'], [2, 2])
    >>> enc.decode(e).equals(df)
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airda.synth._constraints import Constraint, Unique, _numeric_values
from airda.synth._metadata import Column, Metadata, SynthDataError, _datetime_unit, _decimals

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Encoded", "TableEncoder"]

_UNIT_SECONDS = {"D": 86_400.0, "h": 3_600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6,
                 "ns": 1e-9}  # fmt: skip
_MISSING = "#missing"


@dataclass
class Encoded:
    """A table as a synthesizer models it.

    Attributes:
        num: continuous model columns, float64 ``(n, d_num)``, no NaN.
        cat: categorical codes, int64 ``(n, d_cat)``, each in ``[0, cat_sizes[j])``.
        num_names: the name of each continuous column (a table column, or the column a
            constraint reparameterised).
        cat_names: the name of each categorical column (``"<col>#missing"`` for a numeric
            column's missingness indicator, ``"fixed(a,b)"`` for a fixed combination).
        cat_sizes: the number of codes of each categorical column.
        num_integer: True where a continuous column holds whole numbers the decoder rounds
            (an integer column that no constraint transformed).
    """

    num: np.ndarray
    cat: np.ndarray
    num_names: list[str]
    cat_names: list[str]
    cat_sizes: list[int]
    num_integer: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.num.shape[0] if self.num.shape[1] or not self.cat.size else len(self.cat))


def _rows(num: np.ndarray, cat: np.ndarray) -> int:
    return int(num.shape[0]) if num.ndim == 2 else int(cat.shape[0])


class TableEncoder:
    """Encodes a table for a synthesizer and decodes samples back (see the module docstring).

    Args:
        metadata: the table's metadata; the encoder fills in what the data tells (categories,
            ranges, missing rates, resolution) in its own copy, :attr:`metadata`.
    """

    def __init__(self, metadata: Metadata):
        self.metadata = metadata.copy()
        self._fitted = False

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, *, validate: bool = True) -> TableEncoder:
        """Learn categories, ranges, missing rates and the constraints' scales; returns self
        (`validate=False`: the caller has validated `df` against the metadata).

        Raises:
            SynthDataError: the table does not fit the metadata (see ``Metadata.validate``).
        """
        md = self.metadata
        if validate:
            md.validate(df)
        n = len(df)
        unique_cols = {c.column for c in md.constraints if isinstance(c, Unique)}
        for name, col in md.columns.items():
            _complete_column(df[name], col, n)
            if name in unique_cols and col.kind == "categorical":
                col.kind, col.categories = "id", None
        self._order = list(df.columns)
        # model columns: "num" or "cat" before the constraints
        self._kinds: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        for name, col in md.columns.items():
            if col.kind == "id" or (col.constant and col.missing == 0):
                continue
            if col.kind in ("categorical", "boolean") or col.constant:
                self._kinds[name] = "cat"
                self._sizes[name] = len(col.categories or [col.value]) + (col.missing > 0)
            else:
                self._kinds[name] = "num"
        self._id_formats = {
            name: _id_format(df[name], col) for name, col in md.columns.items() if col.kind == "id"
        }
        frame = self._to_frame(df)
        # which constraints reparameterise (each model column at most once), in what order
        claimed: set[str] = set()
        self._active: list[Constraint] = []
        for c in md.constraints:
            w = set(c.writes())
            if w and not (w & claimed) and all(x in self._kinds for x in c.reads()):
                self._active.append(c)
                claimed |= w
        for c in md.constraints:
            c.fit(frame, md)
        self._backward_order = _topological(self._active)
        kinds, sizes = dict(self._kinds), dict(self._sizes)
        out = self._forward(frame, kinds, sizes)
        self._model_kinds, self._model_sizes = kinds, sizes
        self.num_names = [k for k in out if kinds[k] == "num"]
        self._has_missing = {k: bool(np.isnan(out[k]).any()) for k in self.num_names}
        self._fill = {}
        for k in self.num_names:
            obs = out[k][~np.isnan(out[k])]
            self._fill[k] = obs if len(obs) else np.zeros(1)
        self.cat_names = [k for k in out if kinds[k] == "cat"]
        self._base_cats = list(self.cat_names)
        self.cat_sizes = [sizes[k] for k in self.cat_names]
        for k in self.num_names:
            if self._has_missing[k]:
                self.cat_names.append(k + _MISSING)
                self.cat_sizes.append(2)
        self.num_integer = [
            k in md.columns and md.columns[k].kind == "integer" and k not in claimed
            for k in self.num_names
        ]
        self._step = {name: _step(col) for name, col in md.columns.items()}
        self._fitted = True
        return self

    def _to_frame(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model frame before the constraints: float64 numbers (datetimes in seconds, NaN
        missing) and int64 codes (missing: the last code)."""
        import pandas as pd

        md = self.metadata
        frame: dict[str, np.ndarray] = {}
        for name in df.columns:
            if name not in self._kinds:
                continue
            col = md.columns[name]
            if self._kinds[name] == "num":
                frame[name] = _numeric_values(df, col)
                continue
            cats = col.categories if col.categories is not None else [col.value]
            s = df[name]
            codes = pd.Index(_as_object(cats)).get_indexer(_as_object(s.to_numpy()))
            isna = s.isna().to_numpy()
            unseen = (codes < 0) & ~isna
            if unseen.any():
                bad = s[unseen].iloc[0]
                raise SynthDataError(
                    f"column {name!r}: value {bad!r} was not seen in the data "
                    f"(categories: {_preview(cats)})",
                    name,
                )
            if isna.any() and col.missing == 0:
                raise SynthDataError(
                    f"column {name!r}: missing values, but the data had none there", name
                )
            codes[isna] = len(cats)
            frame[name] = codes.astype(np.int64)
        return frame

    def _forward(
        self, frame: dict[str, np.ndarray], kinds: dict[str, str], sizes: dict[str, int]
    ) -> dict[str, np.ndarray]:
        out = dict(frame)
        for c in self._active:
            c.forward(frame, out, kinds, sizes)
        return out

    # ------------------------------------------------------------------ encode
    def encode(self, df: pd.DataFrame, *, validate: bool = True) -> Encoded:
        """The model arrays of a table that fits the metadata (deterministic)."""
        self._check()
        if validate:
            self.metadata.validate(df)
        kinds, sizes = dict(self._kinds), dict(self._sizes)
        out = self._forward(self._to_frame(df), kinds, sizes)
        n = len(df)
        rng = np.random.default_rng(0)
        num = np.empty((n, len(self.num_names)), dtype=np.float64)
        miss_cols = []
        for j, k in enumerate(self.num_names):
            x = out[k].astype(np.float64, copy=True)
            nan = np.isnan(x)
            if nan.any():
                x[nan] = rng.choice(self._fill[k], size=int(nan.sum()))
            num[:, j] = x
            if self._has_missing[k]:
                miss_cols.append(nan.astype(np.int64))
        cols = [out[k].astype(np.int64) for k in self._base_cats]
        cat = np.stack(cols + miss_cols, axis=1) if cols or miss_cols else np.zeros((n, 0), int)
        return Encoded(
            num=num,
            cat=cat.astype(np.int64),
            num_names=list(self.num_names),
            cat_names=list(self.cat_names),
            cat_sizes=list(self.cat_sizes),
            num_integer=list(self.num_integer),
        )

    def encode_conditions(
        self, cond: pd.DataFrame
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Encode conditions (a DataFrame of some columns, one row per sample) to
        ``({cat_index: codes}, {num_index: values})`` in the model's columns.

        Raises:
            SynthDataError: an unknown column, an identifier, a value never seen in a
                categorical column, a missing numeric value, a value a constraint forbids, or a
                condition that a constraint cannot take alone (``high`` of an ``Inequality``
                without ``low``, part of a ``FixedCombinations``).
        """
        import pandas as pd

        self._check()
        md = self.metadata
        n = len(cond)
        for name in cond.columns:
            if name not in md.columns:
                raise SynthDataError(f"condition on unknown column {name!r}", str(name))
            col = md.columns[name]
            if col.kind == "id":
                raise SynthDataError(f"cannot condition on the identifier column {name!r}", name)
            if any(isinstance(c, Unique) and c.column == name for c in md.constraints) and (
                n > 1 and cond[name].nunique(dropna=True) < cond[name].notna().sum()
            ):
                raise SynthDataError(f"column {name!r} is Unique: conditions repeat a value",
                                     name)  # fmt: skip
            if col.constant and col.missing == 0:
                bad = cond[name][cond[name] != col.value]
                if len(bad):
                    raise SynthDataError(
                        f"column {name!r} is constant ({col.value!r}); cannot take {bad.iloc[0]!r}",
                        name,
                    )
            if col.kind in ("numerical", "integer", "datetime"):
                vals = _numeric_values(cond.reset_index(drop=True), col)
                if np.isnan(vals).any():
                    if col.datetime_format:
                        what = f"dates in the column's format {col.datetime_format!r}"
                    else:
                        what = "dates" if col.kind == "datetime" else "numbers"
                    raise SynthDataError(
                        f"condition on {name!r}: values must be {what} (missing values "
                        "cannot be conditioned on)",
                        name,
                    )
                if col.kind == "integer" and np.any(vals != np.round(vals)):
                    raise SynthDataError(
                        f"condition on {name!r}: the column holds integers, got "
                        f"{vals[vals != np.round(vals)][0]!r}",
                        name,
                    )
        full = pd.DataFrame({c: cond[c].to_numpy() for c in cond.columns})
        for c in md.constraints:
            if all(x in full.columns for x in c.columns):
                ok = c.is_satisfied(full, md)
                if not ok.all():
                    raise SynthDataError(f"conditions break {c!r} (column {c.columns[-1]!r})",
                                         c.columns[-1])  # fmt: skip
        frame = self._to_frame(full)
        kinds, sizes = dict(self._kinds), dict(self._sizes)
        out = self._forward(frame, kinds, sizes)
        cond_cat: dict[int, np.ndarray] = {}
        cond_num: dict[int, np.ndarray] = {}
        for k, v in out.items():
            if k in self.num_names:
                j = self.num_names.index(k)
                cond_num[j] = np.asarray(v, dtype=np.float64)
                if self._has_missing[k]:
                    cond_cat[self.cat_names.index(k + _MISSING)] = np.zeros(n, dtype=np.int64)
            elif k in self.cat_names:
                cond_cat[self.cat_names.index(k)] = np.asarray(v, dtype=np.int64)
        return cond_cat, cond_num

    # ------------------------------------------------------------------ decode
    def decode(self, enc: Encoded, *, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """The table that `enc` stands for: original columns, order and dtypes, values rounded
        to the data's resolution and kept in its range, every constraint held, identifiers
        generated distinct. (`rng` is accepted for synthesizers that pass one; decoding is
        deterministic.)"""
        import pandas as pd

        self._check()
        md = self.metadata
        num = np.asarray(enc.num, dtype=np.float64)
        cat = np.asarray(enc.cat, dtype=np.int64)
        n = _rows(num, cat)
        if num.shape[1] != len(self.num_names) or cat.shape[1] != len(self.cat_names):
            raise ValueError(
                f"encoded arrays have {num.shape[1]} + {cat.shape[1]} columns; the encoder "
                f"expects {len(self.num_names)} + {len(self.cat_names)}"
            )
        frame: dict[str, np.ndarray] = {}
        kinds = dict(self._model_kinds)
        for j, k in enumerate(self.num_names):
            x = num[:, j].copy()
            if self._has_missing[k]:
                x[cat[:, self.cat_names.index(k + _MISSING)] == 1] = np.nan
            frame[k] = x
        for j, k in enumerate(self._base_cats):
            frame[k] = np.clip(cat[:, j], 0, self.cat_sizes[j] - 1)
        for c in self._backward_order:
            c.backward(frame, kinds)
        step = {}
        for name, col in md.columns.items():
            if name not in frame or kinds.get(name) != "num":
                continue
            x = frame[name]
            s = self._step.get(name)
            if s:
                x = np.round(x / s) * s
            if col.low is not None and col.high is not None:
                lo, hi = _model_bound(col.low, col), _model_bound(col.high, col)
                x = np.clip(x, lo, hi)
            frame[name] = x
            step[name] = s or 0.0
        for c in md.constraints:
            c.enforce(frame, md, step)
        out: dict[str, Any] = {}
        for name in self._order:
            col = md.columns[name]
            if col.kind == "id":
                out[name] = _generate_ids(n, col, self._id_formats[name])
            elif name not in frame:  # constant without missing values
                out[name] = _restore(np.full(n, 0, dtype=np.int64), col, "const")
            else:
                out[name] = _restore(frame[name], col, kinds.get(name, "cat"))
        return pd.DataFrame(out, columns=self._order)

    def _check(self) -> None:
        if not self._fitted:
            raise RuntimeError("TableEncoder is not fitted: call fit(df) first")


# ---------------------------------------------------------------------- helpers
def _preview(cats: list[Any], k: int = 8) -> str:
    head = ", ".join(repr(c) for c in cats[:k])
    return head + (f", ... ({len(cats)} in all)" if len(cats) > k else "")


def _as_object(values: Any) -> np.ndarray:
    """Values as an object array in which 1 and 1.0 and True compare as the data's values."""
    arr = np.asarray(values, dtype=object)
    return np.array([v.item() if isinstance(v, np.generic) else v for v in arr], dtype=object)


def _complete_column(s: pd.Series, col: Column, n: int) -> None:
    """Fill in from the data what a hand-written or overridden column lacks."""
    import pandas as pd

    vals = s.dropna()
    col.missing = float(s.isna().mean())
    if col.dtype is None:
        col.dtype = str(s.dtype)
    if col.kind in ("categorical", "boolean"):
        seen = sorted(vals.unique().tolist(), key=lambda v: (str(type(v)), v))
        if col.categories is None:
            col.categories = seen
        else:
            extra = [v for v in seen if v not in col.categories]
            if extra:
                raise SynthDataError(f"column {col.name!r}: value {extra[0]!r} is not among "
                                     "its categories", col.name)  # fmt: skip
        col.categories = [v.item() if isinstance(v, np.generic) else v for v in col.categories]
    elif col.kind in ("numerical", "integer", "datetime"):
        if col.kind == "datetime":
            x = _numeric_values(pd.DataFrame({col.name: s}), col)
            x = x[~np.isnan(x)]
            ns = np.round(x * 1e9).astype(np.int64)
            col.low, col.high = float(ns.min()), float(ns.max())
            if col.unit is None:
                col.unit = _datetime_unit(ns)
        else:
            x = pd.to_numeric(vals).to_numpy(dtype=np.float64)
            col.low, col.high = float(x.min()), float(x.max())
            if col.kind == "numerical" and col.decimals is None:
                col.decimals = _decimals(x)
    col.constant = col.kind != "id" and int(vals.nunique()) == 1
    if col.constant and col.value is None:
        v = vals.iloc[0]
        col.value = v.item() if isinstance(v, np.generic) else v
        if col.kind == "datetime":
            col.value = str(v)
    if col.constant and col.kind in ("categorical", "boolean"):
        col.categories = [col.value]


def _step(col: Column) -> float | None:
    if col.kind == "integer":
        return 1.0
    if col.kind == "numerical" and col.decimals is not None:
        return 10.0 ** (-col.decimals)
    if col.kind == "datetime":
        return _UNIT_SECONDS.get(col.unit or "ns", 1e-9)
    return None


def _model_bound(v: float, col: Column) -> float:
    return v / 1e9 if col.kind == "datetime" else v


def _topological(active: list[Constraint]) -> list[Constraint]:
    """Backward order: a constraint is undone after every one that writes a column it reads."""
    writer = {w: c for c in active for w in c.writes()}
    order: list[Constraint] = []
    state: dict[int, int] = {}

    def visit(c: Constraint) -> None:
        if state.get(id(c)) == 2:
            return
        if state.get(id(c)) == 1:
            raise SynthDataError(f"constraints form a cycle through {c!r}", c.columns[0])
        state[id(c)] = 1
        for r in c.reads():
            d = writer.get(r)
            if d is not None and d is not c:
                visit(d)
        state[id(c)] = 2
        order.append(c)

    for c in active:
        visit(c)
    return order


_ID_RE = re.compile(r"^(.*?)(\d+)$")


def _id_format(s: pd.Series, col: Column) -> dict[str, Any]:
    """How to generate identifiers like the column's: integers from its low value, or strings
    with a common prefix and a zero-padded number, or ``<name>_<i>``."""
    import pandas as pd

    vals = s.dropna()
    if pd.api.types.is_numeric_dtype(s.dtype):
        return {"type": "int", "start": int(vals.min()) if len(vals) else 0}
    strs = vals.astype(str)
    m = strs.str.extract(_ID_RE)
    if len(m) and m[0].notna().all() and m[0].nunique() == 1:
        width = int(m[1].str.len().min())
        padded = bool((m[1].str.len() == m[1].str.len().iloc[0]).all())
        return {"type": "str", "prefix": str(m[0].iloc[0]), "width": width if padded else 0,
                "start": int(m[1].astype("int64").min())}  # fmt: skip
    return {"type": "str", "prefix": f"{col.name}_", "width": 0, "start": 0}


def _generate_ids(n: int, col: Column, fmt: dict[str, Any]) -> Any:
    import pandas as pd

    i = np.arange(n, dtype=np.int64) + fmt.get("start", 0)
    if fmt["type"] == "int":
        return pd.Series(i).astype(col.dtype or "int64").to_numpy()
    w = fmt["width"]
    return np.array([f"{fmt['prefix']}{k:0{w}d}" for k in i.tolist()], dtype=object)


def _restore(x: np.ndarray, col: Column, kind: str) -> Any:
    """A model column (numbers, or codes) -> the column's values in its original dtype."""
    import pandas as pd

    if kind == "const":
        v = col.value
        if col.kind == "datetime":
            v = pd.Timestamp(v)
            if col.datetime_format:
                v = v.strftime(col.datetime_format)
        s = pd.Series([v] * len(x))
        return _astype(s, col)
    if kind == "cat":
        cats = col.categories if col.categories is not None else [col.value]
        if col.kind == "datetime":  # a constant datetime with missing values
            table = np.array([*cats, None], dtype=object)
            s = pd.Series(table[x])
            s = pd.to_datetime(s) if not col.datetime_format else s
            return _astype(s, col) if not col.datetime_format else s.where(s.notna(), np.nan)
        table = np.empty(len(cats) + 1, dtype=object)
        table[: len(cats)] = cats
        table[len(cats)] = np.nan
        s = pd.Series(table[x], dtype=object)
        return _astype(s, col)
    if col.kind == "datetime":
        isna = np.isnan(x)
        ns = np.where(isna, 0, np.round(x * 1e9)).astype(np.int64)
        t = pd.Series(ns.view("datetime64[ns]"))
        t[isna] = pd.NaT
        if col.tz:
            t = t.dt.tz_localize("UTC").dt.tz_convert(col.tz)
            # the original resolution (pandas 3 makes microseconds the default unit)
            return t.astype(col.dtype) if col.dtype and col.dtype.startswith("datetime64") else t
        if col.datetime_format:
            out = t.dt.strftime(col.datetime_format).astype(object)
            out[isna] = np.nan
            return out.to_numpy()
        return t.astype(col.dtype) if col.dtype and col.dtype.startswith("datetime64") else t
    if col.kind == "integer":
        return _astype(pd.Series(x), col)
    if col.decimals is not None:
        x = np.round(x, col.decimals)
    return _astype(pd.Series(x), col)


def _astype(s: pd.Series, col: Column) -> Any:
    import pandas as pd

    dtype = col.dtype
    if not dtype:
        return s.infer_objects().to_numpy()
    try:
        if dtype == "category":
            return pd.Categorical(s, categories=col.categories)
        if s.isna().any() and dtype.startswith(("int", "uint", "bool")):
            nullable = {"bool": "boolean"}.get(dtype, dtype.capitalize())
            return pd.Series(s.astype(nullable).to_numpy(dtype=object), dtype=object)
        if dtype == "object":  # a Series: pandas 3 would infer "str" from an array of strings
            return s.infer_objects().astype(object)
        # a Series, not an array: extension dtypes (pandas 3's "str", nullable numbers) survive
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s.infer_objects().to_numpy()

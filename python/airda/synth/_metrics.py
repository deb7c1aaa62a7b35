"""How good is a synthetic table? Fidelity, detection, utility and privacy metrics.

Every metric takes the real table, the synthetic one and optionally an :class:`airda.synth`
``Metadata`` (the column kinds; detected from the real table when not given):

- :func:`column_shapes`: per column, 1 - KS statistic (numbers, datetimes) or 1 - total
  variation distance (categories, booleans); computed as SDMetrics 0.32's ``ColumnShapes``.
- :func:`pair_trends`: per pair of columns, correlation similarity 1 - |r_real - r_synth| / 2
  (Pearson, both numerical) or contingency similarity 1 - TV of the 2-D frequency tables (the
  rest, numbers binned into SDMetrics' 10 equal-width bins); as SDMetrics' ``ColumnPairTrends``.
- :func:`detection`: how well a classifier tells real rows from synthetic ones
  (cross-validated ROC AUC; score 1 - 2 * max(AUC - 0.5, 0)).
- :func:`ml_utility`: a model trained on synthetic rows, tested on real ones (TSTR) against
  the same model trained on real rows (TRTR), the difference with a bootstrap interval.
- :func:`privacy`: distance to closest record (DCR) of synthetic rows to the real training
  rows against the DCR of a real holdout (rows the synthesizer never saw), and the
  nearest-neighbour distance ratio (NNDR), exact and streamed in chunks.

pandas, scipy-free NumPy and scikit-learn are imported inside the functions: importing
:mod:`airda.synth` stays light.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "CONTINUOUS",
    "DISCRETE",
    "SDMETRICS_THRESHOLDS",
    "Privacy",
    "TableEncoding",
    "Utility",
    "column_shapes",
    "detection",
    "ml_utility",
    "pair_trend_score",
    "pair_trends",
    "privacy",
]

CONTINUOUS = ("numerical", "integer", "datetime")
DISCRETE = ("categorical", "boolean")
# SDMetrics rounds numbers to this many decimals before its KS test (float noise is no shape).
_KS_DECIMALS = 14
# SDMetrics' ColumnPairTrends bins a number for a contingency table into np.histogram_bin_edges'
# default of 10 equal-width bins.
_PAIR_BINS = 10
# SDMetrics 0.32's QualityReport averages pair trends over related pairs only.
SDMETRICS_THRESHOLDS = {"correlation_threshold": 0.5, "association_threshold": 0.3}
_COPY_DISTANCE = 1e-8
_ONE_HOT_SCALE = 1.0 / math.sqrt(2.0)  # two different categories lie 1 apart, like 1 std


# ---- inputs ---------------------------------------------------------------------------------


def _check_frame(df: Any, name: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError(f"{name} is empty (0 rows): nothing to compare")
    if df.shape[1] == 0:
        raise ValueError(f"{name} has no columns: nothing to compare")
    if not df.columns.is_unique:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(f"{name} has duplicated column names: {', '.join(dup)}")
    return df


def common_columns(real: pd.DataFrame, synthetic: pd.DataFrame) -> list[str]:
    """The columns of `real` that `synthetic` also has, in real's order (ValueError if none)."""
    real = _check_frame(real, "real")
    synthetic = _check_frame(synthetic, "synthetic")
    cols = [c for c in real.columns if c in set(synthetic.columns)]
    if not cols:
        raise ValueError(
            "real and synthetic have no column in common (real: "
            f"{_names(real.columns)}; synthetic: {_names(synthetic.columns)})"
        )
    return cols


def _names(cols: Sequence[Any], limit: int = 8) -> str:
    names = [str(c) for c in cols]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _private_detect(s: pd.Series) -> str:
    """A column's kind when no airda.synth Metadata is at hand (used only as a fallback)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.DatetimeTZDtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s.dtype):
        x = s.dropna().to_numpy(dtype=np.float64)
        return "integer" if x.size and np.all(x == np.round(x)) else "numerical"
    vals = s.dropna()
    if vals.size and all(isinstance(v, (bool, np.bool_)) for v in vals.iloc[:1000]):
        return "boolean"
    if vals.size > 50 and vals.nunique() == vals.size and vals.map(type).eq(str).all():
        return "id"
    return "categorical"


def column_kinds(
    real: pd.DataFrame,
    columns: Sequence[str],
    metadata: Any = None,
    *,
    target: str | None = None,
) -> dict[str, str]:
    """The kind of each column: from `metadata` when given, else detected on the real table.

    Args:
        real: the real table.
        columns: the columns wanted.
        metadata: an ``airda.synth.Metadata`` (or anything with ``.columns[name].kind``), or a
            plain dict ``{name: kind}``; None to detect.
        target: the target column (detection treats a few-valued integer target as classes).

    Returns:
        ``{column: kind}`` with kinds among "numerical", "integer", "categorical", "boolean",
        "datetime", "id".
    """
    kinds: dict[str, str] = {}
    if metadata is not None:
        table = metadata if isinstance(metadata, dict) else getattr(metadata, "columns", None)
        if table is None:
            raise TypeError(
                f"metadata must be an airda.synth Metadata or a dict, got {type(metadata).__name__}"
            )
        for c in columns:
            entry = table.get(c)
            if entry is None:
                continue
            kinds[c] = entry if isinstance(entry, str) else entry.kind
    rest = [c for c in columns if c not in kinds]
    if rest:
        detected = _detect(real[rest], target if target in rest else None)
        kinds.update(detected)
    unknown = {c: k for c, k in kinds.items() if k not in CONTINUOUS + DISCRETE + ("id",)}
    if unknown:
        c, k = next(iter(unknown.items()))
        raise ValueError(f"column {c!r}: unknown kind {k!r}")
    return {c: kinds[c] for c in columns}


def _detect(df: pd.DataFrame, target: str | None) -> dict[str, str]:
    try:
        from airda.synth._metadata import Metadata, SynthDataError
    except ImportError:  # pragma: no cover - the metadata module not there yet
        return {c: _private_detect(df[c]) for c in df.columns}
    try:
        md = Metadata.detect(df, target=target)
        return {c: md.columns[c].kind for c in df.columns}
    except SynthDataError:
        # A report still describes a table the synthesizers refuse (e.g. an all-missing
        # column): fall back to a plain per-column guess rather than failing the whole report.
        return {c: _kind_or_private(df[c], c, target) for c in df.columns}


def _kind_or_private(s: pd.Series, name: str, target: str | None) -> str:
    from airda.synth._metadata import Metadata, SynthDataError

    try:
        return Metadata.detect(s.to_frame(name), target=target).columns[name].kind
    except SynthDataError:
        return _private_detect(s)


def _as_datetime(s: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pd.to_datetime(s, errors="coerce", format="mixed")
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def numbers(s: pd.Series, kind: str) -> np.ndarray:
    """A continuous column as float64 (datetimes as nanoseconds; missing and unparsable: NaN)."""
    import pandas as pd

    if kind == "datetime":
        d = _as_datetime(s)
        ns = d.astype("datetime64[ns]").to_numpy().astype(np.int64).astype(np.float64)
        ns[d.isna().to_numpy()] = np.nan
        return ns
    # a copy: under pandas 3's copy-on-write, to_numpy may return a read-only view
    out = np.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
    out[~np.isfinite(out)] = np.nan
    return out


def _codes(a: pd.Series, b: pd.Series, *, keep_missing: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Shared integer codes of two discrete columns (equal values, equal codes; 1 == 1.0).
    Missing values get their own code when keep_missing, else -1."""
    import pandas as pd

    both = pd.concat([a.astype(object), b.astype(object)], ignore_index=True)
    codes, uniques = pd.factorize(both, use_na_sentinel=not keep_missing)
    codes = np.asarray(codes, dtype=np.int64)
    return codes[: len(a)], codes[len(a) :], max(len(uniques), 1)


# ---- column shapes --------------------------------------------------------------------------


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic (NaN ignored; NaN if a side is empty).

    The same statistic as ``scipy.stats.ks_2samp``: the largest gap between the two empirical
    CDFs over every observed value, in O((n + m) log(n + m)).
    """
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(synthetic, dtype=np.float64)
    x = np.sort(np.round(x[~np.isnan(x)], _KS_DECIMALS))
    y = np.sort(np.round(y[~np.isnan(y)], _KS_DECIMALS))
    if x.size == 0 or y.size == 0:
        return math.nan
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / x.size
    cdf_y = np.searchsorted(y, grid, side="right") / y.size
    return float(1.0 - np.max(np.abs(cdf_x - cdf_y)))


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - the total variation distance of two discrete columns' frequencies (NaN ignored)."""
    a, b, k = _codes(real, synthetic, keep_missing=False)
    a, b = a[a >= 0], b[b >= 0]
    if a.size == 0 or b.size == 0:
        return math.nan
    p = np.bincount(a, minlength=k) / a.size
    q = np.bincount(b, minlength=k) / b.size
    return float(1.0 - 0.5 * np.abs(p - q).sum())


def column_shapes(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, metadata: Any = None
) -> tuple[float, pd.DataFrame]:
    """How alike each column's distribution is in the real and the synthetic table.

    Numerical, integer and datetime columns score 1 - KS statistic; categorical and boolean
    ones 1 - total variation distance; identifiers are skipped. Missing values are left out of
    both (their rate is a separate matter). The score is the mean over columns, as SDMetrics
    0.32's ``ColumnShapes`` property computes it.

    Args:
        real: the real table.
        synthetic: the synthetic table (its columns matched to real's by name).
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.

    Returns:
        ``(score, details)``: the mean score in [0, 1] (NaN when no column could be scored),
        and a DataFrame with one row per column: ``column``, ``kind``, ``metric``, ``score``.

    Example:
        >>> import pandas as pd
        >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": list("aabb")})
        >>> score, details = column_shapes(real, real.copy())
        >>> score, list(details["metric"])
        (1.0, ['KSComplement', 'TVComplement'])
    """
    import pandas as pd

    cols = common_columns(real, synthetic)
    kinds = column_kinds(real, cols, metadata)
    rows = []
    for c in cols:
        kind = kinds[c]
        if kind in CONTINUOUS:
            score = ks_complement(numbers(real[c], kind), numbers(synthetic[c], kind))
            metric = "KSComplement"
        elif kind in DISCRETE:
            score = tv_complement(real[c], synthetic[c])
            metric = "TVComplement"
        else:
            continue
        rows.append({"column": c, "kind": kind, "metric": metric, "score": score})
    details = pd.DataFrame(rows, columns=["column", "kind", "metric", "score"])
    return _mean(details["score"]), details


def _mean(values: Any) -> float:
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


# ---- pair trends ----------------------------------------------------------------------------


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    # Element-wise sums, not BLAS dots: a BLAS thread team on a loaded machine costs more
    # than the whole sum (70 ms against < 1 ms per pair of 100k rows on the shared 2-core box).
    den = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    if den == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float(np.sum(dx * dy)) / den))


def _binned(x: np.ndarray) -> np.ndarray | None:
    """SDMetrics' discretisation of a number for a contingency table: 10 equal-width bins
    from the column's own non-missing range, ``np.digitize`` (so the largest value and NaN
    fall in bin 11). None when the column has no value to bin."""
    ok = x[~np.isnan(x)]
    if ok.size == 0:
        return None
    edges = np.histogram_bin_edges(ok, bins=_PAIR_BINS)
    return np.digitize(x, bins=edges).astype(np.int64)


def _contingency(
    a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray
) -> tuple[float, float]:
    """1 - TV between the joint frequencies of (a1, a2) and (b1, b2) (codes >= 0), and the
    real pair's association (Cramer's V of its contingency table; NaN when one side has a
    single value)."""
    k2 = int(max(a2.max(initial=0), b2.max(initial=0))) + 1
    ja, jb = a1 * k2 + a2, b1 * k2 + b2
    k = (int(max(a1.max(initial=0), b1.max(initial=0))) + 1) * k2
    counts = np.bincount(ja, minlength=k)
    p = counts / ja.size
    q = np.bincount(jb, minlength=k) / jb.size
    score = float(1.0 - 0.5 * np.abs(p - q).sum())
    table = counts.reshape(-1, k2).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return score, math.nan
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return score, math.sqrt(chi2 / n / (min(table.shape) - 1))


def pair_trend_score(
    details: pd.DataFrame, *, correlation_threshold: float = 0.0, association_threshold: float = 0.0
) -> float:
    """The mean pair score over the pairs whose real relation clears the thresholds.

    With both thresholds 0 (the default) every pair counts, as in SDMetrics' ``ColumnPairTrends``
    property; SDMetrics 0.32's ``QualityReport`` counts only pairs with |r_real| > 0.5
    (numerical pairs) or real Cramer's V > 0.3 (the rest): :data:`SDMETRICS_THRESHOLDS`.

    Args:
        details: the details of :func:`pair_trends`.
        correlation_threshold: the smallest |Pearson r| of the real pair (exclusive) that counts.
        association_threshold: the smallest Cramer's V of the real pair (exclusive) that counts.
    """
    meets = _meets(details, correlation_threshold, association_threshold)
    return _mean(details["score"].to_numpy(dtype=np.float64)[meets])


def _meets(details: pd.DataFrame, corr: float, assoc: float) -> np.ndarray:
    is_corr = (details["metric"] == "CorrelationSimilarity").to_numpy()
    r = np.abs(details["real_correlation"].to_numpy(dtype=np.float64))
    v = details["real_association"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok_corr = (r > corr) if corr > 0 else np.ones(len(details), dtype=bool)
        ok_assoc = (v > assoc) if assoc > 0 else np.ones(len(details), dtype=bool)
    return np.where(is_corr, ok_corr, ok_assoc)


def pair_trends(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    metadata: Any = None,
    correlation_threshold: float = 0.0,
    association_threshold: float = 0.0,
) -> tuple[float, pd.DataFrame]:
    """How alike the relations between pairs of columns are in the real and synthetic table.

    Two continuous columns (numerical, integer, datetime) score the correlation similarity
    1 - |r_real - r_synth| / 2 with Pearson's r over the rows where both are present (NaN
    when a column is constant). Any other pair scores the contingency similarity: 1 - total
    variation distance between the two tables' joint frequencies, missing values counted as a
    category, and a continuous column binned as SDMetrics 0.32 bins it (10 equal-width bins of
    each table's own range). Identifier columns are skipped. The score is the mean over pairs
    (SDMetrics' ``ColumnPairTrends`` property); with thresholds, over the pairs related in the
    real table only (``**SDMETRICS_THRESHOLDS`` gives SDMetrics 0.32 ``QualityReport``'s score).

    Args:
        real: the real table.
        synthetic: the synthetic table.
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.
        correlation_threshold: count a numerical pair only when its real |r| exceeds this.
        association_threshold: count another pair only when its real Cramer's V exceeds this.

    Returns:
        ``(score, details)``: the mean score (NaN when no pair could be scored or counts) and
        a DataFrame with one row per pair: ``column_1``, ``column_2``, ``metric``, ``score``,
        ``real_correlation``, ``synthetic_correlation``, ``real_association`` (Cramer's V),
        ``meets_threshold``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> x = np.arange(20.0)
        >>> real = pd.DataFrame({"x": x, "y": 2 * x, "c": ["a", "b"] * 10})
        >>> score, details = pair_trends(real, real.copy())
        >>> score, list(details["metric"])
        (1.0, ['CorrelationSimilarity', 'ContingencySimilarity', 'ContingencySimilarity'])
    """
    import pandas as pd

    cols = common_columns(real, synthetic)
    kinds = column_kinds(real, cols, metadata)
    cols = [c for c in cols if kinds[c] != "id"]
    cont: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    binned: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}
    disc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c in cols:
        if kinds[c] in CONTINUOUS:
            a, b = numbers(real[c], kinds[c]), numbers(synthetic[c], kinds[c])
            cont[c] = (a, b)
            binned[c] = (_binned(a), _binned(b))
        else:
            a, b, _ = _codes(real[c], synthetic[c], keep_missing=True)
            disc[c] = (a, b)
    rows = []
    for i, c1 in enumerate(cols):
        for c2 in cols[i + 1 :]:
            r_real = r_synth = assoc = math.nan
            if c1 in cont and c2 in cont:
                metric = "CorrelationSimilarity"
                r_real = _pearson(*(v[0] for v in (cont[c1], cont[c2])))
                r_synth = _pearson(*(v[1] for v in (cont[c1], cont[c2])))
                score = 1.0 - abs(r_real - r_synth) / 2.0
            else:
                metric = "ContingencySimilarity"
                (a1, b1), (a2, b2) = (disc[c] if c in disc else binned[c] for c in (c1, c2))
                if a1 is None or b1 is None or a2 is None or b2 is None:
                    score = math.nan
                else:
                    score, assoc = _contingency(a1, a2, b1, b2)
            rows.append(
                {
                    "column_1": c1,
                    "column_2": c2,
                    "metric": metric,
                    "score": score,
                    "real_correlation": r_real,
                    "synthetic_correlation": r_synth,
                    "real_association": assoc,
                }
            )
    details = pd.DataFrame(
        rows,
        columns=[
            "column_1",
            "column_2",
            "metric",
            "score",
            "real_correlation",
            "synthetic_correlation",
            "real_association",
        ],
    )
    details["meets_threshold"] = _meets(details, correlation_threshold, association_threshold)
    return pair_trend_score(
        details,
        correlation_threshold=correlation_threshold,
        association_threshold=association_threshold,
    ), details


# ---- rows as numbers ------------------------------------------------------------------------


@dataclasses.dataclass
class TableEncoding:
    """Rows as numbers for distances and classifiers, fitted on one real table.

    Continuous columns are standardised with the real table's mean and standard deviation
    (missing values: 0, the mean, plus an indicator column); discrete columns are one-hot
    encoded and scaled by 1/sqrt(2), so that two different categories lie 1 apart, as do two
    numbers one standard deviation apart. Categories beyond the `max_categories` most frequent
    share one "other" column. Identifier columns are left out.

    Args:
        columns: the columns to encode, in order.
        kinds: ``{column: kind}``.
        max_categories: the most one-hot columns per discrete column.
    """

    columns: list[str]
    kinds: dict[str, str]
    max_categories: int = 50

    def fit(self, real: pd.DataFrame) -> TableEncoding:
        """Learn means, scales and categories from `real`."""
        import pandas as pd

        self._num: dict[str, tuple[float, float, bool]] = {}
        self._cat: dict[str, Any] = {}
        for c in self.columns:
            kind = self.kinds[c]
            if kind in CONTINUOUS:
                x = numbers(real[c], kind)
                ok = x[~np.isnan(x)]
                mu = float(ok.mean()) if ok.size else 0.0
                sd = float(ok.std()) if ok.size else 1.0
                self._num[c] = (mu, sd if sd > 0 else 1.0, bool(np.isnan(x).any()))
            elif kind in DISCRETE:
                counts = real[c].astype(object).value_counts(dropna=False)
                top = list(counts.index[: self.max_categories])
                self._cat[c] = (pd.Index(top), len(counts) > len(top))
        return self

    @property
    def width(self) -> int:
        """The number of encoded features."""
        n = sum(1 + int(m) for _, _, m in self._num.values())
        return n + sum(len(top) + int(other) for top, other in self._cat.values())

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """`df`'s rows as a float64 (n, width) array (C-contiguous)."""
        out = np.zeros((len(df), self.width), dtype=np.float64)
        j = 0
        for c in self.columns:
            if c in self._num:
                mu, sd, has_missing = self._num[c]
                x = (numbers(df[c], self.kinds[c]) - mu) / sd
                miss = np.isnan(x)
                out[:, j] = np.where(miss, 0.0, x)
                j += 1
                if has_missing:
                    out[:, j] = miss * 1.0
                    j += 1
            elif c in self._cat:
                top, other = self._cat[c]
                pos = top.get_indexer(df[c].astype(object))
                rows = np.flatnonzero(pos >= 0)
                out[rows, j + pos[rows]] = _ONE_HOT_SCALE
                if other:
                    out[pos < 0, j + len(top)] = _ONE_HOT_SCALE
                j += len(top) + int(other)
        return out


# ---- detection ------------------------------------------------------------------------------

DETECTORS = ("logistic", "gbm")


def _detector(name: str, seed: int) -> Any:
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=500)
    if name == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    raise ValueError(f"unknown detection model {name!r} (one of {', '.join(DETECTORS)})")


def _subsample(df: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    if n is None or len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), size=n, replace=False))]


def _one_thread() -> Any:
    """One OpenMP/BLAS thread for the detection fits. Their size is capped (`max_rows`), and
    a thread team on a busy machine waits more than it works: on the shared 2-core box (load
    10) gradient boosting on 13,000 x 200 took 16 s with threads against 1.3 s with one, and
    3 fits of 270 rows 16 s against 0.4 s."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def detection(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    metadata: Any = None,
    models: Sequence[str] = DETECTORS,
    folds: int = 3,
    max_rows: int | None = 10_000,
    seed: int = 0,
) -> tuple[float, pd.DataFrame]:
    """How well a classifier tells real rows from synthetic ones.

    Rows of both tables are encoded as :class:`TableEncoding` does (fitted on the real rows),
    labelled real/synthetic, and each model is scored by stratified k-fold cross-validated
    ROC AUC. The strongest detector counts: score = 1 - 2 * max(AUC - 0.5, 0), 1 when no model
    does better than chance, 0 when one separates the tables perfectly.

    Args:
        real: the real table.
        synthetic: the synthetic table.
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.
        models: "logistic" (logistic regression) and/or "gbm" (histogram gradient boosting).
        folds: cross-validation folds (at least 2).
        max_rows: at most this many rows of each table (a seeded random subset); None: all.
        seed: seed of the subsets, the folds and the models.

    Returns:
        ``(score, details)``: the detection score and one row per model: ``model``, ``auc``
        (mean over folds), ``auc_std``, ``score``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> real = pd.DataFrame({"x": rng.normal(size=200)})
        >>> fake = pd.DataFrame({"x": rng.normal(3.0, 1.0, size=200)})
        >>> score, details = detection(real, fake, models=["logistic"])
        >>> score < 0.2
        True
    """
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    if isinstance(models, str):
        models = [models]
    if not models:
        raise ValueError("models is empty: name at least one of " + ", ".join(DETECTORS))
    for m in models:
        if m not in DETECTORS:
            raise ValueError(f"unknown detection model {m!r} (one of {', '.join(DETECTORS)})")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    cols = common_columns(real, synthetic)
    kinds = column_kinds(real, cols, metadata)
    cols = [c for c in cols if kinds[c] != "id"]
    if not cols:
        raise ValueError("detection needs a column that is not an identifier")
    rng = np.random.default_rng(seed)
    r = _subsample(real, max_rows, rng)
    s = _subsample(synthetic, max_rows, rng)
    if min(len(r), len(s)) < folds:
        raise ValueError(
            f"detection with {folds} folds needs at least {folds} rows in each table "
            f"(real {len(r)}, synthetic {len(s)})"
        )
    enc = TableEncoding(cols, kinds).fit(r)
    x = np.vstack([enc.transform(r), enc.transform(s)])
    y = np.r_[np.zeros(len(r), dtype=np.int64), np.ones(len(s), dtype=np.int64)]
    rows = []
    for name in models:
        aucs = []
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for train, test in split.split(x, y):
            model = _detector(name, seed)
            with warnings.catch_warnings(), _one_thread():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[train], y[train])
                proba = model.predict_proba(x[test])[:, 1]
            aucs.append(roc_auc_score(y[test], proba))
        auc = float(np.mean(aucs))
        rows.append(
            {
                "model": name,
                "auc": auc,
                "auc_std": float(np.std(aucs)),
                "score": 1.0 - 2.0 * max(auc - 0.5, 0.0),
            }
        )
    details = pd.DataFrame(rows, columns=["model", "auc", "auc_std", "score"])
    return float(details["score"].min()), details


# ---- ML utility ------------------------------------------------------------------------------

UTILITY_METRICS = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("r2",),
}


@dataclasses.dataclass(frozen=True)
class Utility:
    """TSTR against TRTR for one target (see :func:`ml_utility`).

    Attributes:
        target: the target column; task: "classification" or "regression".
        metric: the metric of the interval ("accuracy", "f1", "roc_auc" or "r2").
        trtr: the metric of the model trained on real rows; tstr: trained on synthetic rows.
        difference: tstr - trtr (negative: the synthetic rows teach less).
        low, high: the difference's bootstrap interval over test rows; confidence: its level.
        interval: how the interval was formed (``airda.eval.bootstrap_ci``'s method).
        n_train_real, n_train_synthetic, n_test: rows used.
        test_source: "holdout" (rows the synthesizer never saw) or "split of real" (a split
            of the real table, which the synthesizer may have seen: TSTR is then optimistic).
        details: every metric of the task for TRTR and TSTR.
    """

    target: str
    task: str
    metric: str
    trtr: float
    tstr: float
    difference: float
    low: float
    high: float
    confidence: float
    interval: str
    n_train_real: int
    n_train_synthetic: int
    n_test: int
    test_source: str
    details: Any = dataclasses.field(default=None, repr=False, compare=False)


def _task_of(kind: str, y: pd.Series) -> str:
    if kind in DISCRETE:
        return "classification"
    if kind == "datetime":
        return "regression"
    return "regression" if y.dropna().nunique() > 20 or kind == "numerical" else "classification"


def _utility_model(model: Any, task: str, trees: int, seed: int) -> Any:
    from sklearn.base import clone

    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
        return cls(n_estimators=trees, random_state=seed, n_jobs=1)
    if isinstance(model, str):
        raise ValueError(f"unknown utility model {model!r}: 'random_forest' or an estimator")
    return clone(model)


def _r2_rows(y: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    sse = np.sum((y - pred) ** 2, axis=axis)
    sst = np.sum((y - np.mean(y, axis=axis, keepdims=True)) ** 2, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - sse / sst


def _auc_rows(y: np.ndarray, score: np.ndarray, axis: int = -1) -> np.ndarray:
    """Binary ROC AUC along `axis` (ties count half), vectorised over resamples."""
    y = np.moveaxis(np.asarray(y), axis, -1)
    score = np.moveaxis(np.asarray(score), axis, -1)
    order = np.argsort(score, axis=-1, kind="mergesort")
    s = np.take_along_axis(score, order, axis=-1)
    yy = np.take_along_axis(y, order, axis=-1)
    n = s.shape[-1]
    # mid-ranks of ties: rank = (first + last) / 2 + 1 for each run of equal scores
    idx = np.broadcast_to(np.arange(n), s.shape)
    new = np.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    first = np.maximum.accumulate(np.where(new, idx, 0), axis=-1)
    end = np.ones(s.shape, dtype=bool)
    end[..., :-1] = s[..., 1:] != s[..., :-1]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(end, idx, n), axis=-1), axis=-1), -1)
    ranks = (first + last) / 2.0 + 1.0
    pos = yy.sum(axis=-1)
    neg = n - pos
    rank_sum = np.sum(ranks * yy, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def _f1_rows(y: np.ndarray, pred: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """Macro F1 over the classes present in y or pred, vectorised over resamples."""
    y = np.moveaxis(np.asarray(y), axis, -1)
    pred = np.moveaxis(np.asarray(pred), axis, -1)
    total = np.zeros(y.shape[:-1])
    count = np.zeros(y.shape[:-1])
    for c in range(k):
        t, p = y == c, pred == c
        tp = np.sum(t & p, axis=-1)
        denom = t.sum(axis=-1) + p.sum(axis=-1)
        present = denom > 0
        total += np.where(present, 2.0 * tp / np.maximum(denom, 1), 0.0)
        count += present
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / count


def ml_utility(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    target: str,
    *,
    test: pd.DataFrame | None = None,
    metadata: Any = None,
    task: str | None = None,
    metric: str | None = None,
    model: Any = "random_forest",
    trees: int = 100,
    test_size: float = 0.3,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Utility:
    """Train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

    The same model (a random forest by default) is fitted once on the real training rows and
    once on the synthetic rows, and both are scored on the same real test rows. The test rows
    are `test` when given (a holdout the synthesizer never saw: the honest protocol), else a
    seeded stratified split of `real` made with :class:`airda.eval.Splits` (its test part
    unlocked here, read once); the real model then trains on the rest. The synthesizer may have
    seen those test rows, which flatters TSTR; the result says which protocol was used.

    The interval of the difference TSTR - TRTR comes from :func:`airda.eval.bootstrap_ci`,
    paired over test rows: both models are scored on the same rows, so the uncertainty that
    matters for this one fitted pair of models is the sampling of the test rows, and resampling
    rows jointly keeps the pairing. (:func:`airda.eval.compare` pairs repeated runs, which would
    need several fits of each model and measures seed noise instead.) Accuracy is a mean of
    per-row correctness (BCa interval of the mean paired difference); F1, ROC AUC and R^2 are
    not per-row means and are recomputed on every resample (BCa up to 2,000 test rows, the
    percentile interval above, where BCa's jackknife would cost O(n^2)).

    Args:
        real: the real training table (the table the synthesizer was fitted on).
        synthetic: the synthetic table; must hold `target`.
        target: the column to predict.
        test: real rows for testing, never seen by the synthesizer; None: split `real`.
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.
        task: "classification" or "regression"; None: categorical/boolean targets and integer
            targets with at most 20 values are classes, other numbers are regression.
        metric: the metric of the interval: "accuracy" (default for classes), "f1" (macro),
            "roc_auc" (two classes only) or "r2" (regression).
        model: "random_forest" or a scikit-learn estimator (cloned before each fit).
        trees: the random forest's trees.
        test_size: the share of `real` held out when `test` is None.
        confidence: the interval's level.
        n_resamples: bootstrap resamples.
        seed: seed of the split, the models and the resampling.

    Returns:
        A :class:`Utility`.
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    from airda.eval import Splits, bootstrap_ci

    real = _check_frame(real, "real")
    synthetic = _check_frame(synthetic, "synthetic")
    if target not in real.columns:
        raise ValueError(
            f"target {target!r} is not a column of real (columns: {_names(real.columns)})"
        )
    if target not in synthetic.columns:
        raise ValueError(
            f"target {target!r} is not a column of synthetic (columns: {_names(synthetic.columns)})"
        )
    if test is not None:
        test = _check_frame(test, "test")
        if target not in test.columns:
            raise ValueError(f"target {target!r} is not a column of the test table")
    cols = common_columns(real, synthetic)
    if test is not None:
        cols = [c for c in cols if c in set(test.columns)]
    kinds = column_kinds(real, cols, metadata, target=target)
    features = [c for c in cols if c != target and kinds[c] != "id"]
    if not features:
        raise ValueError(f"no feature column besides the target {target!r} to learn from")
    if task is None:
        task = _task_of(kinds[target], real[target])
    if task not in UTILITY_METRICS:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    metric = metric or UTILITY_METRICS[task][0]
    if metric not in UTILITY_METRICS[task]:
        raise ValueError(
            f"metric {metric!r} does not fit a {task} task (one of "
            f"{', '.join(UTILITY_METRICS[task])})"
        )

    real = real[real[target].notna()]
    synthetic = synthetic[synthetic[target].notna()]
    if test is None:
        if len(real) < 4:
            raise ValueError(f"real has {len(real)} rows with a target: too few to split")
        labels = None
        if task == "classification":
            labels = pd.factorize(real[target].astype(object))[0]
        splits = Splits(len(real), (1.0 - test_size, 0.0, test_size), seed=seed, stratify=labels)
        splits.finish_search()
        train_real, test_rows = real.iloc[splits.search], real.iloc[splits.test]
        source = "split of real"
    else:
        train_real, test_rows = real, test[test[target].notna()]
        source = "holdout"
    if len(test_rows) < 2 or len(train_real) < 2 or len(synthetic) < 2:
        raise ValueError(
            f"too few rows with a target (real train {len(train_real)}, synthetic "
            f"{len(synthetic)}, test {len(test_rows)})"
        )

    enc = TableEncoding(features, kinds).fit(train_real)
    x_real, x_syn, x_test = (enc.transform(d) for d in (train_real, synthetic, test_rows))
    if task == "classification":
        y_all, y_syn, k = _codes(
            pd.concat([train_real[target], test_rows[target]], ignore_index=True),
            synthetic[target],
            keep_missing=False,
        )
        y_real, y_test = y_all[: len(train_real)], y_all[len(train_real) :]
    else:
        y_real = numbers(train_real[target], kinds[target])
        y_syn = numbers(synthetic[target], kinds[target])
        y_test = numbers(test_rows[target], kinds[target])
        k = 0
    if metric == "roc_auc" and len(np.unique(y_test)) != 2:
        raise ValueError(
            f"metric 'roc_auc' needs exactly two classes in the test rows of {target!r}"
        )

    preds = {}
    probas = {}
    for name, x, y in (("trtr", x_real, y_real), ("tstr", x_syn, y_syn)):
        m = _utility_model(model, task, trees, seed)
        if task == "classification" and len(np.unique(y)) < 2:
            # One class in the training rows: every prediction is that class.
            preds[name] = np.full(len(y_test), y[0], dtype=np.int64)
            probas[name] = (y[0] == y_test.max()) * np.ones(len(y_test))
            continue
        m.fit(x, y)
        preds[name] = m.predict(x_test)
        if task == "classification":
            proba = m.predict_proba(x_test)
            positive = int(np.max(y_test)) if len(np.unique(y_test)) == 2 else -1
            where = np.flatnonzero(np.asarray(m.classes_) == positive)
            probas[name] = proba[:, where[0]] if where.size else np.zeros(len(y_test))

    rows = []
    if task == "classification":
        both = len(np.unique(y_test)) == 2
        for name in ("trtr", "tstr"):
            rows.append(
                {
                    "model": name.upper(),
                    "accuracy": accuracy_score(y_test, preds[name]),
                    "f1": f1_score(y_test, preds[name], average="macro"),
                    "roc_auc": roc_auc_score(y_test == np.max(y_test), probas[name])
                    if both
                    else math.nan,
                }
            )
    else:
        for name in ("trtr", "tstr"):
            rows.append({"model": name.upper(), "r2": r2_score(y_test, preds[name])})
    details = pd.DataFrame(rows)
    trtr = float(details.loc[0, metric])
    tstr = float(details.loc[1, metric])

    n = len(y_test)
    method = "bca" if n <= 2000 else "percentile"
    if metric == "accuracy":
        ci = bootstrap_ci(
            (
                (preds["tstr"] == y_test).astype(np.float64),
                (preds["trtr"] == y_test).astype(np.float64),
            ),
            "mean_difference",
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    else:
        yt = y_test.astype(np.float64)
        if metric == "r2":
            a, b = preds["tstr"].astype(np.float64), preds["trtr"].astype(np.float64)

            def stat(y, a, b, axis=-1):
                return _r2_rows(y, a, axis) - _r2_rows(y, b, axis)
        elif metric == "roc_auc":
            yt = (y_test == np.max(y_test)).astype(np.float64)
            a, b = probas["tstr"], probas["trtr"]

            def stat(y, a, b, axis=-1):
                return _auc_rows(y, a, axis) - _auc_rows(y, b, axis)
        else:
            a, b = preds["tstr"].astype(np.float64), preds["trtr"].astype(np.float64)

            def stat(y, a, b, axis=-1):
                return _f1_rows(y, a, k, axis) - _f1_rows(y, b, k, axis)

        try:
            ci = bootstrap_ci(
                (yt, a, b),
                stat,
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
                method=method,
            )
        except ValueError as exc:  # a resample with one class or constant target
            raise ValueError(
                f"the bootstrap interval of {metric} is undefined on these {n} test rows "
                f"({exc}); use more test rows or metric='accuracy'"
            ) from None
    return Utility(
        target=target,
        task=task,
        metric=metric,
        trtr=trtr,
        tstr=tstr,
        difference=tstr - trtr,
        low=ci.low,
        high=ci.high,
        confidence=confidence,
        interval=ci.method,
        n_train_real=len(train_real),
        n_train_synthetic=len(synthetic),
        n_test=n,
        test_source=source,
        details=details,
    )


# ---- privacy -----------------------------------------------------------------------------


def _block_topk(sq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest entries of each row of `sq` (unsorted), overwriting `sq`."""
    rows = np.arange(sq.shape[0])
    if k <= 4:  # a few argmin passes beat a partition of the whole block
        cols = np.empty((sq.shape[0], k), dtype=np.int64)
        vals = np.empty((sq.shape[0], k))
        for t in range(k):
            j = np.argmin(sq, axis=1)
            cols[:, t], vals[:, t] = j, sq[rows, j]
            sq[rows, j] = np.inf
        return vals, cols
    cols = np.argpartition(sq, k - 1, axis=1)[:, :k]
    return np.take_along_axis(sq, cols, axis=1), cols


def _knn_numpy(
    queries: np.ndarray, data: np.ndarray, k: int, chunk: int = 1024, block: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest (Euclidean) in chunks: at most chunk x block distances in memory."""
    nq = queries.shape[0]
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    # |q - x|^2 = [-2q, |q|^2, 1] . [x, 1, |x|^2]: one matrix product per block, no extra pass.
    qa = np.hstack([-2.0 * queries, np.einsum("ij,ij->i", queries, queries)[:, None]])
    qa = np.hstack([qa, np.ones((nq, 1))])
    xa = np.hstack([data, np.ones((data.shape[0], 1))])
    xa = np.hstack([xa, np.einsum("ij,ij->i", data, data)[:, None]])
    for q0 in range(0, nq, chunk):
        q = qa[q0 : q0 + chunk]
        bd, bi = best_d[q0 : q0 + chunk], best_i[q0 : q0 + chunk]
        for d0 in range(0, data.shape[0], block):
            d = xa[d0 : d0 + block]
            vals, cols = _block_topk(q @ d.T, min(k, d.shape[0]))
            cand_d = np.concatenate([bd, vals], axis=1)
            cand_i = np.concatenate([bi, cols + d0], axis=1)
            part = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            bd = np.take_along_axis(cand_d, part, axis=1)
            bi = np.take_along_axis(cand_i, part, axis=1)
        best_d[q0 : q0 + chunk], best_i[q0 : q0 + chunk] = bd, bi
    return np.sqrt(np.maximum(best_d, 0.0)), best_i


def knn(queries: np.ndarray, data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each query row among data rows, streamed.

    Uses ``airda.ops.knn_distances`` when the installed airda has it, else a chunked NumPy
    search. Either way the returned distances are recomputed from the row differences and
    sorted, so exact copies read as 0 (the Gram-matrix form leaves rounding noise of ~1e-7).
    """
    k = min(k, data.shape[0])
    try:
        from airda.ops import knn_distances  # type: ignore[attr-defined]
    except ImportError:
        knn_distances = None
    idx = None
    if knn_distances is not None:
        try:
            idx = np.asarray(knn_distances(queries, data, k)[1], dtype=np.int64)
        except (AttributeError, NotImplementedError, RuntimeError) as exc:
            # A backend chosen but not usable in this build (e.g. a compiled module older
            # than its Python side): the streamed NumPy search gives the same neighbours.
            from airda._logging import get_logger

            get_logger().debug("knn_distances failed (%s); NumPy fallback", exc)
    if idx is None:
        _, idx = _knn_numpy(queries, data, k)
    dist = np.empty(idx.shape, dtype=np.float64)
    for j in range(k):
        diff = queries - data[idx[:, j]]
        dist[:, j] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


@dataclasses.dataclass(frozen=True)
class Privacy:
    """Distances of synthetic rows to the real training rows (see :func:`privacy`).

    Attributes:
        dcr_synthetic: each synthetic row's distance to its closest training row.
        dcr_holdout: each holdout row's distance to its closest training row (None: no holdout).
        nndr_synthetic, nndr_holdout: nearest / second-nearest distance ratios.
        share_closer: share of synthetic rows closer than the holdout's 5th percentile of DCR
            (about 0.05 for a synthesizer that does not memorise; None without holdout).
        copies: share of synthetic rows that equal a training row (DCR < 1e-8).
        holdout_copies: the same share for the holdout rows (real duplicates happen).
        summary: a DataFrame, one row per table (synthetic, holdout) with p5/median/mean DCR,
            median NNDR and the copy share.
        warnings: plain-language warnings (memorisation signs).
    """

    dcr_synthetic: np.ndarray = dataclasses.field(repr=False)
    dcr_holdout: np.ndarray | None = dataclasses.field(repr=False)
    nndr_synthetic: np.ndarray = dataclasses.field(repr=False)
    nndr_holdout: np.ndarray | None = dataclasses.field(repr=False)
    share_closer: float | None
    copies: float
    holdout_copies: float | None
    summary: Any = dataclasses.field(repr=False)
    warnings: tuple[str, ...] = ()


def _nndr(d: np.ndarray) -> np.ndarray:
    if d.shape[1] < 2:
        return np.full(d.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = d[:, 0] / d[:, 1]
    return np.where(d[:, 1] == 0.0, 0.0, r)


def privacy(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    holdout: pd.DataFrame | None = None,
    metadata: Any = None,
    max_rows: int | None = None,
    tolerance: float = 0.10,
    seed: int = 0,
) -> Privacy:
    """Distance to closest record and nearest-neighbour distance ratio, against a holdout.

    Rows are encoded as :class:`TableEncoding` does (fitted on the real training rows:
    numbers standardised, categories one-hot scaled) and every synthetic row's Euclidean
    distance to its closest real training row (DCR) is found exactly, in streamed chunks
    (``airda.ops.knn_distances`` when present): no (n x m) matrix is held. The honest
    baseline is a real holdout, rows the synthesizer never saw: their DCR to the training rows
    is what "not memorised" looks like. A synthesizer that copies training rows has DCR ~0.
    NNDR (closest / second closest) near 0 means a row sits on one training row, not among many.

    Warnings are raised (in the result, not as Python warnings) when more than `tolerance` of
    the synthetic rows are closer to a training row than the holdout's 5th percentile (about
    0.05 is expected), or when exact copies of training rows exceed the holdout's own rate by
    more than 1 point (by more than 1% without a holdout).

    Args:
        real: the real rows the synthesizer was trained on.
        synthetic: the synthetic rows.
        holdout: real rows the synthesizer never saw (the baseline); None: no baseline.
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.
        max_rows: at most this many query rows (synthetic and holdout each, a seeded random
            subset); the training rows are always all used. None: every row.
        tolerance: the share of synthetic rows closer than the holdout's 5th percentile that
            raises a warning.
        seed: seed of the subsets.

    Returns:
        A :class:`Privacy`.
    """
    import pandas as pd

    cols = common_columns(real, synthetic)
    if holdout is not None:
        holdout = _check_frame(holdout, "holdout")
        missing = [c for c in cols if c not in holdout.columns]
        if missing:
            raise ValueError(f"holdout lacks the column(s) {_names(missing)}")
    kinds = column_kinds(real, cols, metadata)
    cols = [c for c in cols if kinds[c] != "id"]
    if not cols:
        raise ValueError("privacy needs a column that is not an identifier")
    rng = np.random.default_rng(seed)
    enc = TableEncoding(cols, kinds).fit(real)
    data = np.ascontiguousarray(enc.transform(real))
    k = 2 if len(real) >= 2 else 1
    syn = _subsample(synthetic, max_rows, rng)
    d_syn, _ = knn(np.ascontiguousarray(enc.transform(syn)), data, k)
    dcr_s, nndr_s = d_syn[:, 0], _nndr(d_syn)
    dcr_h = nndr_h = None
    share = hold_copies = None
    notes = []
    copies = float(np.mean(dcr_s < _COPY_DISTANCE))
    if holdout is not None:
        hold = _subsample(holdout, max_rows, rng)
        d_h, _ = knn(np.ascontiguousarray(enc.transform(hold)), data, k)
        dcr_h, nndr_h = d_h[:, 0], _nndr(d_h)
        p5 = float(np.quantile(dcr_h, 0.05))
        share = float(np.mean(dcr_s < p5))
        hold_copies = float(np.mean(dcr_h < _COPY_DISTANCE))
        if share > tolerance:
            notes.append(
                f"{share:.0%} of synthetic rows are closer to a training row than the closest "
                f"5% of real holdout rows (expected about 5%): the synthesizer may be "
                "memorising training rows"
            )
        if copies > hold_copies + 0.01:
            notes.append(
                f"{copies:.1%} of synthetic rows are exact copies of training rows "
                f"(holdout rows: {hold_copies:.1%})"
            )
    elif copies > 0.01:
        notes.append(
            f"{copies:.1%} of synthetic rows are exact copies of training rows (no holdout "
            "was given to tell how often real rows repeat)"
        )

    def row(name: str, dcr: np.ndarray, nndr: np.ndarray, cp: float) -> dict[str, Any]:
        return {
            "rows": name,
            "n": int(dcr.size),
            "dcr_p5": float(np.quantile(dcr, 0.05)),
            "dcr_median": float(np.median(dcr)),
            "dcr_mean": float(np.mean(dcr)),
            "nndr_median": float(np.nanmedian(nndr)) if np.any(~np.isnan(nndr)) else math.nan,
            "copies": cp,
        }

    rows = [row("synthetic", dcr_s, nndr_s, copies)]
    if dcr_h is not None:
        rows.append(row("holdout", dcr_h, nndr_h, hold_copies))
    summary = pd.DataFrame(rows)
    return Privacy(
        dcr_synthetic=dcr_s,
        dcr_holdout=dcr_h,
        nndr_synthetic=nndr_s,
        nndr_holdout=nndr_h,
        share_closer=share,
        copies=copies,
        holdout_copies=hold_copies,
        summary=summary,
        warnings=tuple(notes),
    )

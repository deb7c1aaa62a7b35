"""One quality report for a synthetic table: :func:`evaluate` runs the metrics of
:mod:`airda.synth._metrics` and gathers them in a :class:`QualityReport` (scores, detail tables,
warnings) that writes itself as Markdown or HTML with PNG plots.

matplotlib is imported only when plots are drawn (``pip install 'airda[report]'``); without it
the report keeps its tables and says so.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airda.synth import _metrics as M

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PARTS", "QualityReport", "evaluate"]

PARTS = ("shapes", "pairs", "detection", "utility", "privacy")
_MAX_ROWS_SHOWN = 30
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
    "text-align:left}th{background:#f3f3f3}img{max-width:100%}.warn{color:#a40000}"
)


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return "n/a" if not math.isfinite(float(v)) else format(float(v), spec)
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


class _Doc:
    """Markdown and HTML written side by side."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str, cls: str | None = None) -> None:
        self.md.append(text + "\n")
        attr = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{attr}>{html.escape(text)}</p>")

    def bullets(self, items: Sequence[str], cls: str | None = None) -> None:
        self.md.append("\n".join(f"- {t}" for t in items) + "\n")
        attr = f' class="{cls}"' if cls else ""
        lis = "".join(f"<li>{html.escape(t)}</li>" for t in items)
        self.html.append(f"<ul{attr}>{lis}</ul>")

    def table(self, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[_fmt(c).replace("|", "\\|") for c in r] for r in rows]
        self.md.append("| " + " | ".join(head) + " |")
        self.md.append("|" + "|".join("---" for _ in head) + "|")
        self.md.extend("| " + " | ".join(r) + " |" for r in cells)
        self.md.append("")
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows
        )
        self.html.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")

    def image(self, name: str, alt: str) -> None:
        self.md.append(f"![{alt}]({name})\n")
        self.html.append(f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>')


class QualityReport:
    """The fidelity, detection, utility and privacy of a synthetic table (see :func:`evaluate`).

    Attributes:
        scores: headline numbers by name: ``column_shapes``, ``pair_trends`` (every pair),
            ``pair_trends_related`` (pairs related in the real table, as SDMetrics 0.32's
            ``QualityReport`` averages them), ``quality`` (mean of column shapes and pair
            trends), ``detection`` and ``detection_auc``, ``utility_trtr``, ``utility_tstr``,
            ``utility_difference`` with ``utility_low``/``utility_high``, ``dcr_synthetic_p5``,
            ``dcr_synthetic_median``, ``dcr_holdout_p5``, ``dcr_holdout_median``,
            ``dcr_share_closer``, ``copies``, ``nndr_synthetic_median``,
            ``nndr_holdout_median`` (those of the parts that ran; scores in [0, 1] are
            better higher).
        details: DataFrames by part: ``column_shapes``, ``pair_trends``, ``detection``,
            ``utility``, ``privacy``.
        utility: the :class:`~airda.synth._metrics.Utility` (None if not run).
        privacy: the :class:`~airda.synth._metrics.Privacy` (None if not run).
        warnings: what looks wrong (memorised rows, an optimistic utility protocol).
        notes: what the reader should know (columns left out, subsets used).
        kinds: the kind of every compared column.
        n_real, n_synthetic, n_holdout: rows of each table.
        seconds: wall time of each part.
    """

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.details: dict[str, pd.DataFrame] = {}
        self.utility: M.Utility | None = None
        self.privacy: M.Privacy | None = None
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.kinds: dict[str, str] = {}
        self.n_real = self.n_synthetic = 0
        self.n_holdout: int | None = None
        self.seconds: dict[str, float] = {}
        self.target: str | None = None
        self._real: pd.DataFrame | None = None
        self._synthetic: pd.DataFrame | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.scores.items() if k in _HEADLINE)
        return f"QualityReport({shown})"

    # ---- the summary -------------------------------------------------------------------

    def summary(self) -> pd.DataFrame:
        """One row per headline metric: ``metric``, ``value``, ``meaning``."""
        import pandas as pd

        s = self.scores
        rows: list[tuple[str, str, str]] = []
        if "column_shapes" in s:
            rows.append(
                (
                    "column shapes",
                    _fmt(s["column_shapes"]),
                    "1 = every column's distribution matches (KS / TV complement)",
                )
            )
        if "pair_trends" in s:
            rows.append(
                (
                    "pair trends",
                    _fmt(s["pair_trends"]),
                    "1 = every pair's correlation / contingency table matches",
                )
            )
            rows.append(
                (
                    "pair trends, related pairs",
                    _fmt(s["pair_trends_related"]),
                    "pairs with |r| > 0.5 or Cramer's V > 0.3 in the real table (SDMetrics' rule)",
                )
            )
        if "quality" in s:
            rows.append(("quality", _fmt(s["quality"]), "mean of column shapes and pair trends"))
        if "detection" in s:
            rows.append(
                (
                    "detection",
                    _fmt(s["detection"]),
                    f"1 = a classifier cannot tell real from synthetic (best AUC "
                    f"{_fmt(s['detection_auc'])})",
                )
            )
        if self.utility is not None:
            u = self.utility
            rows.append(
                (
                    f"ML utility ({u.metric})",
                    f"{_fmt(u.tstr)} vs {_fmt(u.trtr)}",
                    f"trained on synthetic vs on real, tested on real ({u.test_source}); "
                    f"difference {u.difference:+.3f} ({u.confidence:.0%} CI {u.low:+.3f} to "
                    f"{u.high:+.3f})",
                )
            )
        if self.privacy is not None:
            p = self.privacy
            if p.share_closer is not None:
                value = f"{p.share_closer:.1%}"
                meaning = (
                    "synthetic rows closer to a training row than the closest 5% of holdout rows "
                    f"(about 5% expected); median DCR {_fmt(s['dcr_synthetic_median'])} vs "
                    f"holdout {_fmt(s['dcr_holdout_median'])}"
                )
            else:
                value = _fmt(s["dcr_synthetic_median"])
                meaning = "median distance of a synthetic row to its closest training row"
            rows.append(("privacy (DCR)", value, meaning))
            rows.append(
                ("exact copies", f"{p.copies:.1%}", "synthetic rows equal to a training row")
            )
        return pd.DataFrame(rows, columns=["metric", "value", "meaning"])

    # ---- documents ---------------------------------------------------------------------

    def _document(self, images: Sequence[tuple[str, str]] = (), plot_note: str | None = None):
        doc = _Doc()
        doc.heading("Synthetic data quality report", 1)
        sizes = f"real {self.n_real} rows, synthetic {self.n_synthetic} rows"
        if self.n_holdout is not None:
            sizes += f", holdout {self.n_holdout} rows"
        doc.para(f"{sizes}; {len(self.kinds)} columns compared.")
        doc.heading("Summary")
        doc.table(["metric", "value", "meaning"], self.summary().values.tolist())
        if self.warnings:
            doc.heading("Warnings")
            doc.bullets(self.warnings, cls="warn")
        if self.notes:
            doc.heading("Notes")
            doc.bullets(self.notes)
        d = self.details
        if "column_shapes" in d:
            doc.heading("Column shapes")
            t = d["column_shapes"].sort_values("score", na_position="first")
            doc.table(["column", "kind", "metric", "score"], t.values.tolist())
        if "pair_trends" in d:
            doc.heading("Pair trends")
            t = d["pair_trends"].sort_values("score", na_position="first")
            if len(t) > _MAX_ROWS_SHOWN:
                doc.para(f"The {_MAX_ROWS_SHOWN} lowest of {len(t)} pairs.")
                t = t.head(_MAX_ROWS_SHOWN)
            doc.table(
                ["column 1", "column 2", "metric", "score", "real r", "synthetic r", "real V"],
                t[
                    [
                        "column_1",
                        "column_2",
                        "metric",
                        "score",
                        "real_correlation",
                        "synthetic_correlation",
                        "real_association",
                    ]
                ].values.tolist(),
            )
        if "detection" in d:
            doc.heading("Detection")
            doc.para(
                "Cross-validated ROC AUC of classifiers telling real rows (0) from synthetic "
                "rows (1); 0.5 is chance. Score = 1 - 2 * max(AUC - 0.5, 0)."
            )
            doc.table(["model", "AUC", "AUC std", "score"], d["detection"].values.tolist())
        if self.utility is not None:
            u = self.utility
            doc.heading("ML utility")
            doc.para(
                f"Target {u.target!r} ({u.task}); the same model trained on {u.n_train_real} "
                f"real rows (TRTR) and on {u.n_train_synthetic} synthetic rows (TSTR), both "
                f"tested on {u.n_test} real rows ({u.test_source}). Difference TSTR - TRTR in "
                f"{u.metric}: {u.difference:+.4f}, {u.confidence:.0%} CI {u.low:+.4f} to "
                f"{u.high:+.4f} (bootstrap over test rows, {u.interval})."
            )
            doc.table(list(u.details.columns), u.details.values.tolist())
        if self.privacy is not None:
            doc.heading("Privacy")
            doc.para(
                "Distance to closest record (DCR): each row's Euclidean distance to its closest "
                "real training row (numbers standardised, categories one-hot); NNDR: closest / "
                "second closest. Holdout rows (real, never seen by the synthesizer) are the "
                "baseline."
            )
            t = self.privacy.summary
            doc.table(list(t.columns), t.values.tolist())
        if images or plot_note:
            doc.heading("Plots")
            if plot_note:
                doc.para(plot_note)
            for name, alt in images:
                doc.image(name, alt)
        return doc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: scores, warnings, notes, kinds, row counts, seconds, and each
        details table as a list of records (NaN and infinite values become None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, (bool, np.bool_)):
                return bool(v)
            if isinstance(v, (int, np.integer)):
                return int(v)
            if isinstance(v, (float, np.floating)):
                return float(v) if math.isfinite(float(v)) else None
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v if v is None or isinstance(v, str) else str(v)

        return clean(
            {
                "scores": self.scores,
                "warnings": self.warnings,
                "notes": self.notes,
                "kinds": self.kinds,
                "target": self.target,
                "n_real": self.n_real,
                "n_synthetic": self.n_synthetic,
                "n_holdout": self.n_holdout,
                "seconds": self.seconds,
                "details": {k: d.to_dict("records") for k, d in self.details.items()},
            }
        )

    def to_markdown(self) -> str:
        """The report as Markdown (no plots; :meth:`save` adds them)."""
        return "\n".join(self._document().md)

    def to_html(self) -> str:
        """The report as one HTML page (no plots; :meth:`save` adds them)."""
        return _html_page(self._document().html)

    def save(
        self, folder: str | Path, *, formats: Sequence[str] = ("md", "html"), plots: bool = True
    ) -> dict[str, Path]:
        """Write ``report.md`` and/or ``report.html`` and the PNG plots into `folder`.

        Plots: ``columns.png`` (each column's distribution, real vs synthetic, the worst
        first), ``correlations.png`` (real and synthetic correlation matrices and their
        difference) and ``dcr.png`` (DCR histograms, synthetic vs holdout).

        Args:
            folder: the output folder (created if missing).
            formats: "md" and/or "html".
            plots: False to skip the PNGs.

        Returns:
            The written files by kind ("markdown", "html", and each plot's file name).
        """
        bad = [f for f in formats if f not in ("md", "html")]
        if bad or not formats:
            raise ValueError(f"formats must be 'md' and/or 'html', got {list(formats)!r}")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        images: list[tuple[str, str]] = []
        note = None
        if plots:
            images, note = _plots(self, out)
        doc = self._document(images, note)
        written: dict[str, Path] = {}
        if "md" in formats:
            (out / "report.md").write_text("\n".join(doc.md) + "\n", encoding="utf-8")
            written["markdown"] = out / "report.md"
        if "html" in formats:
            (out / "report.html").write_text(_html_page(doc.html), encoding="utf-8")
            written["html"] = out / "report.html"
        for name, _ in images:
            written[name] = out / name
        return written


_HEADLINE = ("column_shapes", "pair_trends", "detection", "utility_difference", "dcr_share_closer")


def _html_page(parts: Sequence[str]) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>airda synthetic data report</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


# ---- plots ----------------------------------------------------------------------------------


def _plots(rep: QualityReport, out: Path) -> tuple[list[tuple[str, str]], str | None]:
    """Draw the PNGs; return (file name, caption) pairs, or a reason none were drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (pip install 'airda[report]'): no plots"
    images = []
    real, syn = rep._real, rep._synthetic
    shapes = rep.details.get("column_shapes")
    if real is not None and syn is not None and shapes is not None and len(shapes):
        cols = shapes.sort_values("score", na_position="first")["column"].tolist()[:12]
        ncol = min(3, len(cols))
        nrow = math.ceil(len(cols) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.8 * nrow), squeeze=False)
        for ax in axes.flat[len(cols) :]:
            ax.axis("off")
        for ax, c in zip(axes.flat, cols, strict=False):
            kind = rep.kinds[c]
            if kind in M.CONTINUOUS:
                a, b = M.numbers(real[c], kind), M.numbers(syn[c], kind)
                a, b = a[~np.isnan(a)], b[~np.isnan(b)]
                both = np.concatenate([a, b])
                if both.size and np.ptp(both) > 0:
                    edges = np.histogram_bin_edges(both, bins=30)
                    ax.hist(a, bins=edges, density=True, alpha=0.5, label="real")
                    ax.hist(b, bins=edges, density=True, alpha=0.5, label="synthetic")
            else:
                r = real[c].astype(object).value_counts(normalize=True, dropna=False)
                s = syn[c].astype(object).value_counts(normalize=True, dropna=False)
                top = list(r.index[:10])
                x = np.arange(len(top))
                ax.bar(x - 0.2, [r.get(v, 0.0) for v in top], 0.4, label="real")
                ax.bar(x + 0.2, [s.get(v, 0.0) for v in top], 0.4, label="synthetic")
                ax.set_xticks(x, [str(v)[:10] for v in top], rotation=45, fontsize=7)
            score = shapes.set_index("column")["score"].get(c)
            ax.set_title(f"{str(c)[:24]} ({_fmt(score, '.2f')})", fontsize=9)
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "columns.png", dpi=100)
        plt.close(fig)
        images.append(("columns.png", "column distributions, real vs synthetic, worst first"))
    pairs = rep.details.get("pair_trends")
    if pairs is not None and (pairs["metric"] == "CorrelationSimilarity").any():
        corr = pairs[pairs["metric"] == "CorrelationSimilarity"]
        names = list(dict.fromkeys(corr["column_1"].tolist() + corr["column_2"].tolist()))[:30]
        pos = {c: i for i, c in enumerate(names)}
        mats = [np.eye(len(names)) for _ in range(2)]
        for _, row in corr.iterrows():
            i, j = pos.get(row["column_1"]), pos.get(row["column_2"])
            if i is None or j is None:
                continue
            for m, key in zip(mats, ("real_correlation", "synthetic_correlation"), strict=False):
                m[i, j] = m[j, i] = row[key]
        diff = np.abs(mats[0] - mats[1])
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
        for ax, m, title, cmap, lim in zip(
            axes,
            (mats[0], mats[1], diff),
            ("real r", "synthetic r", "|difference|"),
            ("coolwarm", "coolwarm", "Reds"),
            ((-1, 1), (-1, 1), (0, 1)),
            strict=False,
        ):
            im = ax.imshow(m, cmap=cmap, vmin=lim[0], vmax=lim[1])
            ax.set_xticks(range(len(names)), [str(n)[:12] for n in names], rotation=90, fontsize=6)
            ax.set_yticks(range(len(names)), [str(n)[:12] for n in names], fontsize=6)
            ax.set_title(title)
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        fig.savefig(out / "correlations.png", dpi=100)
        plt.close(fig)
        images.append(("correlations.png", "Pearson correlations and their difference"))
    if rep.privacy is not None:
        p = rep.privacy
        fig, ax = plt.subplots(figsize=(6, 3.5))
        groups = [("synthetic", p.dcr_synthetic)]
        if p.dcr_holdout is not None:
            groups.append(("holdout (real, unseen)", p.dcr_holdout))
        top = max(float(np.quantile(g, 0.99)) for _, g in groups)
        edges = np.linspace(0.0, top if top > 0 else 1.0, 40)
        for label, g in groups:
            ax.hist(np.minimum(g, edges[-1]), bins=edges, density=True, alpha=0.5, label=label)
        if p.dcr_holdout is not None:
            ax.axvline(float(np.quantile(p.dcr_holdout, 0.05)), color="black", ls="--", lw=1)
        ax.set_xlabel("distance to closest training row")
        ax.set_title("DCR (dashed: holdout 5th percentile)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "dcr.png", dpi=100)
        plt.close(fig)
        images.append(("dcr.png", "distance to closest record, synthetic vs holdout"))
    return images, None


# ---- evaluate -------------------------------------------------------------------------------


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    metadata: Any = None,
    target: str | None = None,
    holdout: pd.DataFrame | None = None,
    parts: Sequence[str] | None = None,
    task: str | None = None,
    utility_metric: str | None = None,
    utility_model: Any = "random_forest",
    trees: int = 100,
    detection_models: Sequence[str] = M.DETECTORS,
    folds: int = 3,
    detection_rows: int | None = 10_000,
    privacy_rows: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    progress: bool | None = False,
) -> QualityReport:
    """Score a synthetic table against the real one it imitates, in one report.

    Runs column shapes, pair trends, detection, ML utility (when a `target` is given) and
    privacy (DCR/NNDR, against `holdout` when given); see :mod:`airda.synth._metrics` for each.
    `real` is the table the synthesizer was fitted on; `holdout` holds real rows it never saw
    (the honest test set for utility and the baseline for privacy).

    Args:
        real: the real (training) table.
        synthetic: the synthetic table; columns are matched to real's by name.
        metadata: an ``airda.synth.Metadata`` or ``{column: kind}``; None: detected on `real`.
        target: the column to predict for ML utility (None: no utility part).
        holdout: real rows the synthesizer never saw (None: utility splits `real`, privacy has
            no baseline).
        parts: which of "shapes", "pairs", "detection", "utility", "privacy" to run (default
            all; "utility" only with a target).
        task, utility_metric, utility_model, trees: passed to :func:`ml_utility` as ``task``,
            ``metric``, ``model``, ``trees``.
        detection_models, folds, detection_rows: passed to :func:`detection` as ``models``,
            ``folds``, ``max_rows``.
        privacy_rows: passed to :func:`privacy` as ``max_rows``.
        n_resamples: bootstrap resamples of the utility interval.
        seed: seed of every random choice (subsets, splits, folds, models, resampling).
        progress: True for a progress bar / log lines, None to follow the airda verbosity.

    Returns:
        A :class:`QualityReport`.

    Raises:
        TypeError, ValueError: tables that are not DataFrames, empty, with no column in common,
            an unknown target or part.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from airda.synth import evaluate
        >>> rng = np.random.default_rng(0)
        >>> real = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(list("ab"), 300)})
        >>> report = evaluate(real, real.sample(frac=1.0, random_state=1), parts=["shapes"])
        >>> report.scores["column_shapes"]
        1.0
    """
    from airda._logging import Progress

    cols = M.common_columns(real, synthetic)
    if parts is None:
        parts = [p for p in PARTS if p != "utility" or target is not None]
    parts = list(dict.fromkeys(parts))
    for p in parts:
        if p not in PARTS:
            raise ValueError(f"unknown part {p!r} (one of {', '.join(PARTS)})")
    if target is not None:
        for name, df in (("real", real), ("synthetic", synthetic)):
            if target not in df.columns:
                raise ValueError(
                    f"target {target!r} is not a column of {name} (columns: {M._names(df.columns)})"
                )
    if "utility" in parts and target is None:
        raise ValueError("the utility part needs a target column (target=...)")
    if holdout is not None:
        M._check_frame(holdout, "holdout")
        missing = [c for c in cols if c not in holdout.columns]
        if missing:
            raise ValueError(f"holdout lacks the column(s) {M._names(missing)}")

    rep = QualityReport()
    rep.target = target
    rep._real, rep._synthetic = real, synthetic
    rep.n_real, rep.n_synthetic = len(real), len(synthetic)
    rep.n_holdout = None if holdout is None else len(holdout)
    rep.kinds = M.column_kinds(real, cols, metadata, target=target)
    only = [c for c in real.columns if c not in set(cols)]
    extra = [c for c in synthetic.columns if c not in set(real.columns)]
    if only:
        rep.notes.append(f"columns only in real, not compared: {M._names(only)}")
    if extra:
        rep.notes.append(f"columns only in synthetic, not compared: {M._names(extra)}")
    ids = [c for c, k in rep.kinds.items() if k == "id"]
    if ids:
        rep.notes.append(f"identifier columns left out of every metric: {M._names(ids)}")
    kinds = rep.kinds
    with Progress(total=len(parts), desc="quality report", unit="part", enabled=progress) as bar:
        for part in parts:
            t0 = time.perf_counter()
            if part == "shapes":
                score, det = M.column_shapes(real, synthetic, metadata=kinds)
                rep.scores["column_shapes"] = score
                rep.details["column_shapes"] = det
            elif part == "pairs":
                score, det = M.pair_trends(real, synthetic, metadata=kinds)
                rep.scores["pair_trends"] = score
                rep.scores["pair_trends_related"] = M.pair_trend_score(
                    det, **M.SDMETRICS_THRESHOLDS
                )
                rep.details["pair_trends"] = det
            elif part == "detection":
                score, det = M.detection(
                    real,
                    synthetic,
                    metadata=kinds,
                    models=detection_models,
                    folds=folds,
                    max_rows=detection_rows,
                    seed=seed,
                )
                rep.scores["detection"] = score
                rep.scores["detection_auc"] = float(det["auc"].max())
                rep.details["detection"] = det
                if detection_rows is not None and max(len(real), len(synthetic)) > detection_rows:
                    rep.notes.append(
                        f"detection used a random {detection_rows} rows of each larger table"
                    )
            elif part == "utility":
                u = M.ml_utility(
                    real,
                    synthetic,
                    target,  # type: ignore[arg-type]
                    test=holdout,
                    metadata=kinds,
                    task=task,
                    metric=utility_metric,
                    model=utility_model,
                    trees=trees,
                    n_resamples=n_resamples,
                    seed=seed,
                )
                rep.utility = u
                rep.details["utility"] = u.details
                rep.scores.update(
                    utility_trtr=u.trtr,
                    utility_tstr=u.tstr,
                    utility_difference=u.difference,
                    utility_low=u.low,
                    utility_high=u.high,
                )
                if u.test_source != "holdout":
                    rep.warnings.append(
                        "ML utility was tested on a split of the real table, which the "
                        "synthesizer may have seen: TSTR is optimistic; pass a holdout"
                    )
            elif part == "privacy":
                p = M.privacy(
                    real,
                    synthetic,
                    holdout=holdout,
                    metadata=kinds,
                    max_rows=privacy_rows,
                    seed=seed,
                )
                rep.privacy = p
                rep.details["privacy"] = p.summary
                rep.warnings.extend(p.warnings)
                syn_row = p.summary.iloc[0]
                rep.scores.update(
                    dcr_synthetic_p5=float(syn_row["dcr_p5"]),
                    dcr_synthetic_median=float(syn_row["dcr_median"]),
                    nndr_synthetic_median=float(syn_row["nndr_median"]),
                    copies=p.copies,
                )
                if p.dcr_holdout is not None:
                    h = p.summary.iloc[1]
                    rep.scores.update(
                        dcr_holdout_p5=float(h["dcr_p5"]),
                        dcr_holdout_median=float(h["dcr_median"]),
                        nndr_holdout_median=float(h["nndr_median"]),
                        dcr_share_closer=float(p.share_closer),  # type: ignore[arg-type]
                    )
                else:
                    rep.notes.append(
                        "privacy has no holdout baseline: pass real rows the synthesizer never "
                        "saw to tell memorisation from closeness"
                    )
            rep.seconds[part] = time.perf_counter() - t0
            bar.update(1, part=part)
    if "column_shapes" in rep.scores and "pair_trends" in rep.scores:
        rep.scores["quality"] = float(
            np.nanmean([rep.scores["column_shapes"], rep.scores["pair_trends"]])
        )
    return rep

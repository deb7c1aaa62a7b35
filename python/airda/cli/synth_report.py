"""``airda synth report``: score a synthetic table against the real one (fidelity, detection,
ML utility, privacy) and write the report as Markdown/HTML with PNG plots.

`airda synth` itself lives in :mod:`airda.cli.synth`, which adds this action with
:func:`add_report_parser` and runs it with :func:`run_report`.

Example:
    $ airda synth report real.csv synthetic.csv --target label --holdout holdout.csv -o report
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_report_parser", "run_report"]


def add_report_parser(ssub: Any) -> argparse.ArgumentParser:
    """Add ``report`` to the actions of ``airda synth`` (argparse only: stays light)."""
    p = ssub.add_parser(
        "report",
        help="score a synthetic table against the real one; write Markdown/HTML with plots",
        description="Compare a synthetic table with the real table it imitates: column "
        "shapes (KS / total-variation complement), pair trends (correlation and contingency "
        "similarity; both as SDMetrics 0.32 computes them), detection (cross-validated AUC of "
        "classifiers telling real from synthetic), ML utility (train on synthetic, test on "
        "real, against train on real; with --target) and privacy (distance to closest record "
        "and nearest-neighbour distance ratio, against --holdout). Prints the summary and "
        "writes report.md / report.html and PNG plots.",
    )
    p.add_argument("real", help="the real table the synthesizer was fitted on (CSV)")
    p.add_argument("synthetic", help="the synthetic table (CSV)")
    p.add_argument("--target", help="column to predict for ML utility (default: no utility)")
    p.add_argument(
        "--holdout",
        help="real rows the synthesizer never saw (CSV): the utility test set and the privacy "
        "baseline",
    )
    p.add_argument(
        "-o", "--out", default="airda-synth-report", help="output folder (airda-synth-report)"
    )
    p.add_argument(
        "--format",
        choices=["md", "html", "both"],
        default="both",
        help="report file(s) to write (default: both)",
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.add_argument(
        "--parts",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help="comma-separated subset of shapes,pairs,detection,utility,privacy (default: all)",
    )
    p.add_argument("--task", choices=["classification", "regression"], help="utility task")
    p.add_argument("--metric", help="utility metric: accuracy, f1, roc_auc or r2")
    p.add_argument("--trees", type=int, default=100, help="random forest trees (100)")
    p.add_argument(
        "--detection",
        default="logistic,gbm",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help="detection models: logistic, gbm (default: both)",
    )
    p.add_argument(
        "--max-rows",
        type=int,
        help="at most this many synthetic/holdout rows in the privacy search (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    return p


def _read(path: str, what: str) -> Any:
    import pandas as pd

    if not Path(path).is_file():
        raise OSError(f"{what} table {path!r} does not exist")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} table {path!r} is empty") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{what} table {path!r} is not a readable CSV: {exc}") from None


def run_report(args: argparse.Namespace) -> int:
    """Run ``airda synth report``; return the exit code (0 done, 1 bad input)."""
    import json
    import math

    from airda.synth._report import evaluate

    if args.trees < 1:
        raise ValueError(f"--trees must be >= 1, got {args.trees}")
    if args.max_rows is not None and args.max_rows < 1:
        raise ValueError(f"--max-rows must be >= 1, got {args.max_rows}")
    real = _read(args.real, "real")
    synthetic = _read(args.synthetic, "synthetic")
    holdout = None if args.holdout is None else _read(args.holdout, "holdout")
    report = evaluate(
        real,
        synthetic,
        target=args.target,
        holdout=holdout,
        parts=args.parts,
        task=args.task,
        utility_metric=args.metric,
        trees=args.trees,
        detection_models=args.detection,
        privacy_rows=args.max_rows,
        seed=args.seed,
        progress=None,
    )
    formats = ("md", "html") if args.format == "both" else (args.format,)
    written = report.save(args.out, formats=formats, plots=not args.no_plots)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        scores = {k: (v if math.isfinite(v) else None) for k, v in report.scores.items()}
        print(json.dumps({"scores": scores, "files": {k: str(v) for k, v in written.items()}}))
    else:
        rows = report.summary().values.tolist()
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        for name, value, meaning in rows:
            print(f"{name:<{w0}}  {value:>{w1}}  {meaning}")
        width = max(len(kind) for kind in written)
        for kind, path in written.items():
            print(f"{kind:<{width}}  {path}")
    return 0

"""``airda report STUDY``: a study on one static HTML page (no network needed to view it).

Example:
    $ airda report sweep --storage studies.db                 # writes sweep-report.html
    $ airda report sweep --storage postgresql://me@db/s -o r.html
    $ airda report sweep --storage studies.db --png           # PNG images, no plotly
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

# Exit codes: written; a failure while writing; an unknown storage or study (nothing written).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    """Add ``airda report`` to the command line's subparsers."""
    p = sub.add_parser(
        "report",
        help="write a study's HTML report: plots, importance, the trial table",
        description="Write one static HTML file for the study STUDY of a storage: a summary "
        "(best trial, counts by state), the history, hyperparameter importance, parallel "
        "coordinates, slice and contour plots, intermediate values (if any), the Pareto "
        "front (2-3 objectives), a timeline and the trial table. Interactive plotly figures "
        "with plotly.js inline when plotly is installed (else PNG images); the file needs no "
        "network. Reads the storage only. Studies over 5,000 trials are plotted from a "
        "sample (the plots say so). Exit codes: 0 written, 1 a failure while writing, 2 an "
        "unknown storage or study.",
    )
    p.add_argument("study", metavar="STUDY", help="the study's name")
    p.add_argument(
        "--storage",
        metavar="URL",
        required=True,
        help="the storage: an SQLite file, sqlite:///path or postgresql://...",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="the HTML file (default: STUDY-report.html)"
    )
    p.add_argument(
        "--png", action="store_true", help="PNG images (matplotlib) instead of plotly figures"
    )
    p.add_argument(
        "--evaluator",
        choices=["fanova", "ped-anova"],
        default="fanova",
        help="hyperparameter importance evaluator (default: fanova)",
    )
    p.add_argument(
        "--max-trials",
        type=int,
        default=5000,
        metavar="N",
        help="plot a sample above N trials (default: 5000)",
    )


def run(args: argparse.Namespace) -> int:
    from airda.storage import StudyNotFoundError
    from airda.viz import load, write_report

    try:
        view = load(args.storage, args.study, max_trials=None)
    except StudyNotFoundError:
        print(f"airda report: error: no study {args.study!r} in {args.storage}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # any storage that cannot be read: a bad path, URL, server
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"airda report: error: storage {args.storage}: {text}", file=sys.stderr)
        return EXIT_USAGE
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in args.study)
    out = Path(args.output or f"{safe}-report.html")
    try:
        write_report(
            view,
            out,
            interactive=False if args.png else None,
            max_trials=args.max_trials,
            evaluator=args.evaluator,
        )
    except (ValueError, OSError, ImportError) as exc:
        print(f"airda report: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {out} ({len(view.trials):,} trials)")
    return EXIT_OK

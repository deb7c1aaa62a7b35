"""``airda synth tune``: search synthesizers and hyperparameters for utility under a privacy floor.

Example:
    $ airda synth tune data.csv --target label --n-trials 20 --storage studies.db --name t1
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_tune_parser", "run_tune"]


def add_tune_parser(ssub: Any) -> argparse.ArgumentParser:
    tune = ssub.add_parser(
        "tune",
        help="search synthesizers and hyperparameters: utility up, privacy kept",
        description="Split the table into search, validation and locked test rows; every trial "
        "fits a synthesizer (copula or TVAE, with its hyperparameters) on the search rows and "
        "is scored on utility (a random forest trained on its sample, tested on the validation "
        "rows) and privacy (median distance of its rows to the training rows over the "
        "validation rows' own). The winner is the best utility at or above the privacy floor; "
        "its model is then read once against the test rows. Models and samples are saved per "
        "trial beside the study. With --storage and --name a second run continues the study.",
    )
    tune.add_argument("data", help="the real table (CSV; .parquet or .json by suffix)")
    tune.add_argument("--target", required=True, help="the column the utility model predicts")
    tune.add_argument("--n-trials", type=int, default=20, help="trials to run (default: 20)")
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tune.add_argument(
        "--synthesizers",
        default="copula,tvae",
        help="comma-separated candidates (default: copula,tvae)",
    )
    tune.add_argument("--storage", help="study storage file or URL (default: in memory)")
    tune.add_argument("--name", help="study name (needed to continue a study)")
    tune.add_argument("--artifacts", help="folder of models and samples (default: by the storage)")
    tune.add_argument(
        "--privacy-floor",
        type=float,
        default=1.0,
        help="least ratio of median distance to training rows, synthetic over real holdout "
        "(default: 1.0)",
    )
    tune.add_argument(
        "--max-fit-seconds",
        type=float,
        default=120.0,
        help="a TVAE's training time limit (default: 120)",
    )
    tune.add_argument("--strategy", default="tpe", help="the study's strategy (default: tpe)")
    tune.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    tune.add_argument("-o", "--output", help="also write the winner's fresh sample to this file")
    tune.add_argument("--force", action="store_true", help="overwrite an existing output file")
    return tune


def run_tune(args: argparse.Namespace) -> int:
    from airda import synth
    from airda.cli.synth import _check_output, _read_table, _write_table

    if args.n_trials < 1:
        print("airda synth tune: error: --n-trials must be at least 1", file=sys.stderr)
        return 2
    if args.output:
        _check_output(args.output, args.force)
    data = _read_table(args.data)
    result = synth.tune(
        data,
        args.target,
        synthesizers=tuple(s.strip() for s in args.synthesizers.split(",") if s.strip()),
        n_trials=args.n_trials,
        timeout=args.timeout,
        strategy=args.strategy,
        storage=args.storage,
        name=args.name,
        artifacts=args.artifacts,
        privacy_floor=args.privacy_floor,
        max_fit_seconds=args.max_fit_seconds,
        seed=args.seed,
        show_progress=None,
    )
    print(result.summary())
    if args.output:
        sample = result.load_model().sample(len(data), seed=args.seed)
        _write_table(sample, args.output)
        print(f"wrote {len(sample)} rows to {args.output}")
    return 0

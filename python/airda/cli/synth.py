"""``airda synth``: fit a synthesizer to a table, sample synthetic rows from it.

Example:
    $ airda synth fit data.csv -o model.airda --target label       # Gaussian copula
    $ airda synth fit data.csv -o model.airda --synthesizer tvae --hp epochs=50
    $ airda synth sample model.airda -n 1000 -o synthetic.csv --condition label=yes
    $ airda synth report data.csv synthetic.csv --target label -o report

Exit codes: 0 done, 1 failure (one line on stderr: bad data, unreadable file, ...), 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

# Actions that live in their own modules: name -> (module, add-parser function, run function).
# An action whose module is not there (yet) is left out of `airda synth`.
_ACTIONS: dict[str, tuple[str, str, str]] = {
    "report": ("airda.cli.synth_report", "add_report_parser", "run_report"),
    "tune": ("airda.cli.synth_tune", "add_tune_parser", "run_tune"),
}


def _action_module(name: str) -> Any | None:
    module = _ACTIONS[name][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def add_parser(sub: Any) -> None:
    """Add ``synth`` with ``fit`` and ``sample`` (and the actions of :data:`_ACTIONS` whose
    modules exist) to the ``airda`` command line."""
    synth = sub.add_parser(
        "synth",
        help="synthetic tables: fit a synthesizer, sample rows, score them",
        description="Fit a synthesizer (Gaussian copula, TVAE) to a table, sample synthetic "
        "rows from it (conditioned on column values if asked), and score them.",
    )
    ssub = synth.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = ssub.add_parser(
        "fit",
        help="fit a synthesizer to a CSV table and save it to one file",
        description="Fit a synthesizer to a table (CSV, or Parquet/JSON by suffix) and save it "
        "to one file. Column kinds are detected (numerical, integer, categorical, boolean, "
        "datetime, id) unless --metadata gives them; constraints come from the metadata file "
        "(see docs/synth.md). The model file is a pickle: load only files you trust.",
    )
    fit.add_argument("data", help="the table to learn (CSV; .parquet or .json by suffix)")
    fit.add_argument("-o", "--output", required=True, help="the model file to write")
    fit.add_argument(
        "--synthesizer",
        default="copula",
        help="copula (Gaussian copula, default) or tvae (a variational autoencoder, torch)",
    )
    fit.add_argument("--metadata", help="a metadata JSON file (kinds, constraints, target)")
    fit.add_argument("--target", help="the label column (class-conditional modelling)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    fit.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hyperparameter of the synthesizer, e.g. epochs=100 (repeatable; values are "
        "read as JSON when they parse, else as strings)",
    )
    fit.add_argument("--save-metadata", metavar="PATH", help="also write the metadata as JSON")
    fit.add_argument("--force", action="store_true", help="overwrite an existing output file")

    sample = ssub.add_parser(
        "sample",
        help="sample synthetic rows from a fitted model",
        description="Sample rows from a model that `airda synth fit` wrote and write them as "
        "CSV (or Parquet/JSON by suffix; - for stdout). --condition fixes a column's value in "
        "every row; the other columns follow their distribution given it.",
    )
    sample.add_argument("model", help="the model file")
    sample.add_argument("-n", "--rows", type=int, required=True, help="how many rows")
    sample.add_argument(
        "-o", "--output", required=True, help="output file (.csv, .parquet, .json) or - for stdout"
    )
    sample.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="fix a column's value in every row (repeatable)",
    )
    sample.add_argument("--seed", type=int, help="seed of this draw (default: the model's)")
    sample.add_argument("--force", action="store_true", help="overwrite an existing output file")

    for name in _ACTIONS:  # report (engineer D's module), tune: added when present
        module = _action_module(name)
        if module is not None:
            getattr(module, _ACTIONS[name][1])(ssub)


def run(args: argparse.Namespace) -> int:
    """Run an ``airda synth`` action; return the exit code."""
    if args.action == "fit":
        return _run_fit(args)
    if args.action == "sample":
        return _run_sample(args)
    module = _action_module(args.action) if args.action in _ACTIONS else None
    if module is None:
        print(f"airda synth: error: unknown action {args.action!r}", file=sys.stderr)
        return 2
    return int(getattr(module, _ACTIONS[args.action][2])(args))


# ---------------------------------------------------------------------- files
def _read_table(path: str) -> Any:
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise OSError(f"table {path!r} does not exist")
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        if p.suffix == ".json":
            return pd.read_json(p)
        return pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise ValueError(f"table {path!r} is empty") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"table {path!r} is not a readable CSV: {exc}") from None
    except ImportError as exc:  # parquet without pyarrow
        raise ValueError(f"cannot read {path!r}: {exc}") from None


def _write_table(df: Any, path: str) -> None:
    if path == "-":
        df.to_csv(sys.stdout, index=False)
        return
    p = Path(path)
    if p.suffix == ".parquet":
        df.to_parquet(p, index=False)
    elif p.suffix == ".json":
        df.to_json(p, orient="records", date_format="iso")
    else:
        df.to_csv(p, index=False)


def _check_output(path: str, force: bool) -> None:
    if path != "-" and Path(path).exists() and not force:
        raise OSError(f"{path!r} exists; pass --force to overwrite it")
    if path != "-" and not Path(path).resolve().parent.is_dir():
        raise OSError(f"the folder of {path!r} does not exist")


def _parse_hp(items: list[str]) -> dict[str, Any]:
    hp: dict[str, Any] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError(f"--hp wants NAME=VALUE, got {item!r}")
        try:
            hp[name] = json.loads(value)
        except json.JSONDecodeError:
            hp[name] = value
    return hp


# ---------------------------------------------------------------------- fit
def _run_fit(args: argparse.Namespace) -> int:
    from airda import synth
    from airda._logging import get_logger

    log = get_logger("airda.synth")
    if args.synthesizer not in synth.SYNTHESIZERS:
        raise ValueError(
            f"unknown synthesizer {args.synthesizer!r} (one of {', '.join(synth.SYNTHESIZERS)})"
        )
    _check_output(args.output, args.force)
    hp = _parse_hp(args.hp)
    df = _read_table(args.data)
    if args.metadata:
        try:
            md = synth.Metadata.from_dict(json.loads(Path(args.metadata).read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"metadata {args.metadata!r} is not valid JSON: {exc}") from None
        if args.target:
            if args.target not in md.columns:
                raise synth.SynthDataError(f"target column {args.target!r} is not in the "
                                           "metadata", args.target)  # fmt: skip
            md.target = args.target
    else:
        md = synth.Metadata.detect(df, target=args.target)
    model = synth.make(args.synthesizer, seed=args.seed, **hp)
    log.info("fitting %s on %d rows x %d columns", type(model).__name__, *df.shape)
    t0 = time.perf_counter()
    model.fit(df, md)
    fit_s = time.perf_counter() - t0
    model.save(args.output)
    if args.save_metadata:
        Path(args.save_metadata).write_text(json.dumps(model.metadata.to_dict(), indent=2))
    print(
        f"fitted {type(model).__name__} on {df.shape[0]} rows x {df.shape[1]} columns in "
        f"{fit_s:.2f} s -> {args.output}"
    )
    return 0


# ---------------------------------------------------------------------- sample
def _condition_value(model: Any, column: str, text: str) -> Any:
    """A --condition value as the column's type: a category by its text, a number, a date."""
    from airda.synth import SynthDataError

    md = model.metadata
    if column not in md.columns:
        raise SynthDataError(f"condition on unknown column {column!r}", column)
    col = md.columns[column]
    if col.kind in ("categorical", "boolean"):
        cats = col.categories or []
        for c in cats:
            if str(c) == text:
                return c
        lowered = text.strip().lower()
        for c in cats:
            if isinstance(c, bool) and lowered in (str(c).lower(), str(int(c))):
                return c
        shown = ", ".join(str(c) for c in cats[:10]) + (", ..." if len(cats) > 10 else "")
        raise SynthDataError(
            f"condition {column}={text}: not a value of column {column!r} ({shown})", column
        )
    if col.kind in ("numerical", "integer"):
        try:
            value = float(text)
        except ValueError:
            raise SynthDataError(f"condition {column}={text}: column {column!r} is "
                                 f"{col.kind}", column) from None  # fmt: skip
        if col.kind == "integer":
            if value != int(value):
                raise SynthDataError(f"condition {column}={text}: column {column!r} holds "
                                     "integers", column)  # fmt: skip
            return int(value)
        return value
    return text  # datetimes are parsed by the encoder


def _run_sample(args: argparse.Namespace) -> int:
    from airda.synth import Synthesizer

    if args.rows < 1:
        raise ValueError(f"-n must be a positive number of rows, got {args.rows}")
    _check_output(args.output, args.force)
    path = Path(args.model)
    if not path.is_file():
        raise OSError(f"model {args.model!r} does not exist")
    model = Synthesizer.load(path)
    conditions: dict[str, Any] = {}
    for item in args.condition:
        column, eq, text = item.partition("=")
        if not eq or not column:
            print(f"airda synth: error: --condition wants COLUMN=VALUE, got {item!r}",
                  file=sys.stderr)  # fmt: skip
            return 2
        conditions[column] = _condition_value(model, column, text)
    t0 = time.perf_counter()
    df = model.sample(args.rows, conditions=conditions or None, seed=args.seed)
    took = time.perf_counter() - t0
    _write_table(df, args.output)
    if args.output != "-":
        print(f"sampled {len(df)} rows in {took:.2f} s -> {args.output}")
    return 0

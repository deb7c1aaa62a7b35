"""``airda eval report|compare``: a study's evaluation report; a verdict on two score files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from airda.cli.studies import open_storage

# The library's words for what `airda eval compare` spells as flags: its messages name the
# arguments of airda.eval.compare, and a command-line user should read the flag to pass.
_FLAG_NAMES = (
    (re.compile(r"\bpaired=False\b"), "--unpaired"),
    (re.compile(r"\bnan_policy='omit'"), "--omit-nan"),
    (re.compile(r"\btest='(\w+)'"), r"--test \1"),
    (re.compile(r"\bhigher_is_better=False\b"), "--lower-is-better"),
    (re.compile(r"\bn_resamples\b"), "--resamples"),
    (re.compile(r"^alpha\b"), "--alpha"),
)


def flag_words(message: str, candidate: str, baseline: str) -> str:
    """A message of :func:`airda.eval.compare` in the words of the command line."""
    for pattern, flag in _FLAG_NAMES:
        message = pattern.sub(flag, message)
    # compare() calls the second sample "baseline": say which file that is.
    return re.sub(r"\bbaseline\b", f"baseline ({baseline})", message, count=1)


def run_report(name: str, storage: str | None, out: str | None) -> int:
    import airda
    from airda.eval import write_report

    study = airda.load_study(name, storage=open_storage(storage))
    target = Path(out or f"airda-report-{study.name}")
    written = write_report(study, target)
    for kind, path in written.items():
        print(f"{kind:24s} {path}")
    return 0


def read_scores(path: str, column: str | None) -> list[float]:
    """Scores from a file: one number per line, or a CSV/TSV column (by name or 0-based index)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no scores")
    if column is None:
        try:
            return [float(ln) for ln in lines]
        except ValueError:
            raise ValueError(
                f"{path}: expected one number per line; for a table pass --column NAME"
            ) from None
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",\t;")
    except csv.Error:
        dialect = "excel"
    rows = list(csv.reader(lines, dialect))
    if column.isdigit():
        idx, body = int(column), rows
        if body and not _is_number(body[0][idx] if idx < len(body[0]) else ""):
            body = body[1:]
    else:
        if column not in rows[0]:
            raise ValueError(f"{path}: no column {column!r}; columns: {', '.join(rows[0])}")
        idx, body = rows[0].index(column), rows[1:]
    values = []
    for i, row in enumerate(body, start=1):
        if idx >= len(row):
            raise ValueError(f"{path}: row {i} has no column {column}")
        values.append(float(row[idx]) if row[idx].strip() else float("nan"))
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_compare(
    candidate: str,
    baseline: str,
    *,
    column: str | None,
    paired: bool,
    lower_is_better: bool,
    test: str,
    alpha: float,
    n_resamples: int,
    seed: int,
    omit_nan: bool,
    as_json: bool,
) -> int:
    from airda.eval import compare

    if n_resamples < 1:
        raise ValueError(f"--resamples must be >= 1, got {n_resamples}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"--alpha must be in (0, 1), got {alpha}")
    if not paired and test != "permutation":
        raise ValueError(
            f"--test {test} needs paired scores: drop --unpaired or use --test permutation"
        )
    try:
        result = compare(
            read_scores(candidate, column),
            read_scores(baseline, column),
            paired=paired,
            higher_is_better=not lower_is_better,
            test=test,
            alpha=alpha,
            n_resamples=n_resamples,
            seed=seed,
            nan_policy="omit" if omit_nan else "raise",
            name=Path(candidate).stem,
        )
    except (ValueError, TypeError) as exc:
        raise type(exc)(flag_words(str(exc), candidate, baseline)) from None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result)
        print(f"assumptions: {result.assumptions}")
        for note in result.notes:
            print(f"note: {flag_words(note, candidate, baseline)}")
    return 0

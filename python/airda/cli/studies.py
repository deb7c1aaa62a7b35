"""``airda studies list|show|export|delete``: look after the studies of a storage."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from airda._text import table

DEFAULT_STORAGE = "airda-studies.db"


def check_storage(url: str, what: str = "--storage") -> None:
    """A storage given as a directory is an error naming where it came from (`what`), not an
    SQLite error about a file it cannot open."""
    path = url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    elif "://" in url:
        return
    if path.endswith(("/", os.sep)) or Path(path).is_dir():
        raise ValueError(
            f"{what} {url!r} is a directory; give a file, e.g. {Path(path) / DEFAULT_STORAGE}"
        )


def open_storage(url: str | None, *, must_exist: bool = True) -> Any:
    from airda.storage import get_storage

    url = url or DEFAULT_STORAGE
    check_storage(url)
    if must_exist and "://" not in url and not Path(url).exists():
        raise ValueError(f"no storage file {url!r} (give one with --storage)")
    return get_storage(url)


def is_reused(trial: Any) -> bool:
    """The trial reused an earlier trial's result (same candidate): it was not evaluated."""
    return "cached_from" in trial.system_attrs


def run_list(storage: str | None) -> int:
    store = open_storage(storage)
    summaries = store.list_studies()
    if not summaries:
        print(f"no studies in {store.url}")
        return 0
    rows = []
    for s in summaries:
        st = s.states
        rows.append(
            [
                s.record.name,
                "/".join(d[:3] for d in s.record.directions),
                s.n_trials,
                st.get("complete", 0),
                st.get("pruned", 0),
                st.get("fail", 0),
                st.get("running", 0),
                s.best_values,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(s.record.created)),
            ]
        )
    print(
        table(
            [
                "study",
                "dir",
                "trials",
                "complete",
                "pruned",
                "failed",
                "running",
                "best",
                "created",
            ],
            rows,
        )
    )
    return 0


def print_best(study: Any) -> int:
    from airda.trial import TrialState

    trials = study.trials
    counts = {s.value: sum(t.state is s for t in trials) for s in TrialState}
    reused = sum(map(is_reused, trials))
    parts = [f"{n} {k}" for k, n in counts.items() if n]
    if reused:
        parts.append(f"{reused} of them reusing an earlier trial's result")
    infeasible = sum(t.state is TrialState.COMPLETE and not t.feasible for t in trials)
    if infeasible:
        parts.append(f"{infeasible} of them infeasible (violating a constraint)")
    print(f"{len(trials)} trials: " + ", ".join(parts))
    if len(study.directions) == 1:
        try:
            best = study.best_trial
        except ValueError:
            print("no feasible complete trial" if infeasible else "no complete trial")
            return 1
        print(f"best: trial {best.number}, value {best.value:.6g}")
        for k, v in best.params.items():
            print(f"  {k} = {v!r}")
        return 0
    front = study.pareto_front()
    print(f"Pareto front: {len(front)} trials")
    print(table(["trial", "values", "params"], [[t.number, t.values, t.params] for t in front]))
    return 0 if front else 1


def run_show(name: str, storage: str | None, top: int) -> int:
    import airda
    from airda.trial import TrialState

    study = airda.load_study(name, storage=open_storage(storage))
    print(f"study {study.name!r} in {study.storage.url}")
    print(f"directions: {', '.join(study.directions)}; strategy: {study.strategy.config()}")
    print(f"space: {', '.join(study.space.names) or '(define-by-run, empty)'}")
    code = print_best(study)
    trials = study.trials
    if len(study.directions) == 1 and top > 0:
        # Complete, evaluated trials only: a pruned trial's value is an intermediate one, and
        # a reused result would list the same candidate twice.
        # Feasible ones only, where the study has constraints.
        done = [
            t for t in trials if t.state is TrialState.COMPLETE and not is_reused(t) and t.feasible
        ]
        sign = 1 if study.directions[0] == "minimize" else -1
        done.sort(key=lambda t: (sign * t.values[0], t.number))
        print(f"\ntop {min(top, len(done))}:")
        print(
            table(
                ["trial", "value", "duration s", "params"],
                [[t.number, t.value, t.duration, t.params] for t in done[:top]],
            )
        )
    failed = [t for t in trials if t.error]
    if failed:
        print(f"\nfailed trials ({len(failed)}), last errors:")
        for t in failed[-5:]:
            print(f"  trial {t.number}: {t.error}")
    return code


def run_export(
    name: str, storage: str | None, output: str, *, fmt: str | None = None, force: bool = False
) -> int:
    import tempfile

    import airda

    to_stdout = output == "-"
    suffix = f".{fmt}" if fmt else (".csv" if to_stdout else Path(output).suffix)
    if suffix not in (".csv", ".json"):
        raise ValueError(f"-o {output!r}: give a .csv or .json file, or --format csv|json")
    if not to_stdout and Path(output).exists() and not force:
        raise ValueError(f"{output} exists; pass --force to overwrite it")
    study = airda.load_study(name, storage=open_storage(storage))
    if to_stdout:
        # Study.export writes files: write one aside and copy it out.
        with tempfile.TemporaryDirectory() as tmp:
            path = study.export(Path(tmp) / f"trials{suffix}")
            sys.stdout.write(path.read_text())
        print(f"wrote {len(study.trials)} trials to stdout", file=sys.stderr)
        return 0
    target = Path(output)
    if fmt and target.suffix != suffix:
        # Study.export picks the format by suffix: export beside, then move into place.
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            study.export(Path(tmp) / f"trials{suffix}").replace(target)
    else:
        study.export(target)
    print(f"wrote {len(study.trials)} trials to {target}")
    return 0


def run_delete(name: str, storage: str | None, yes: bool) -> int:
    store = open_storage(storage)
    store.get_study(name)  # not found -> error before asking
    if not yes:
        if not _interactive():
            raise ValueError(f"not deleting study {name!r}: no terminal to confirm on; pass --yes")
        try:
            answer = input(f"delete study {name!r} and all its trials from {store.url}? [y/N] ")
        except EOFError:  # Ctrl-D
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    store.delete_study(name)
    print(f"deleted study {name!r}")
    return 0


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False

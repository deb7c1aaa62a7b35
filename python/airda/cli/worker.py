"""``airda worker``: join a study shared through a storage (PostgreSQL across machines, or an
SQLite file on one) and run its trials until the study-wide budget is spent.

Start the same command on every machine; each joins the study (the first creates it) and the
study stops at exactly its total, counted across every worker (``optimize(max_trials=...)``).

Example:
    $ airda worker study.toml --storage postgresql://me@db/studies --study sweep
    $ airda worker study.toml --storage postgresql://me@db/studies --study sweep --workers 4
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

# Exit codes: done; a failure while running; a bad config, flag, storage or study (nothing
# ran); stopped by Ctrl-C; stopped by SIGTERM (128 + the signal, as a shell reports it).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def add_parser(sub: Any) -> None:
    """Add ``airda worker`` to the command line's subparsers."""
    p = sub.add_parser(
        "worker",
        help="join a shared study (PostgreSQL or SQLite) and run trials until its total is met",
        description="Join the study NAME in STORAGE (created from CONFIG if absent, loaded if "
        "present) and run trials until the study holds its total number of trials, counted "
        "across every worker on every machine and never exceeded: --max-trials, else CONFIG's "
        "[budget] n_trials (which for a worker is the study's total, not a number per "
        "worker). Run the same command on each machine. Ctrl-C or SIGTERM stops the worker; "
        "its running trial is recorded failed. Exit codes: 0 done, 1 a failure while running, "
        "2 a bad config, flag, storage or study (nothing ran), 130 Ctrl-C, 143 SIGTERM.",
    )
    p.add_argument("config", help="the study's TOML file (as for airda run)")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="the shared storage: postgresql://... or an SQLite file (default: "
        "CONFIG's [study] storage)",
    )
    p.add_argument(
        "--study", metavar="NAME", help="the study to join (default: CONFIG's [study] name)"
    )
    p.add_argument(
        "--max-trials",
        type=int,
        metavar="M",
        help="the study's total number of trials (default: CONFIG's [budget] n_trials)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        help="stop this worker after this many seconds (default: CONFIG's [budget] timeout)",
    )
    p.add_argument(
        "--copy-from",
        metavar="SRC",
        help="first copy the study, with its trials, from SRC (e.g. the laptop's SQLite "
        "file), unless --storage has it already; its trials count towards the total",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="local worker processes (default: CONFIG's [budget] workers, else 1)",
    )


class _StudyProgress:
    """Progress of the whole study (every worker's trials): its count of `total`, the
    study-wide rate and ETA, and the best value this worker has seen."""

    def __init__(self, study: Any, total: int | None, initial: int):
        from airda._logging import Progress

        self.study = study
        self.minimize = study.directions[0] == "minimize" if len(study.directions) == 1 else None
        self.best: float | None = None
        self.bar = Progress(total, desc=study.name, unit="trial", initial=initial)
        self._counted = 0.0

    def __call__(self, study: Any, frozen: Any) -> None:
        postfix = {}
        if self.minimize is not None and frozen.state.value == "complete" and frozen.values:
            value = float(frozen.values[0])
            better = min if self.minimize else max
            best = value if self.best is None else better(self.best, value)
            if best != self.best:
                self.best = postfix["best"] = best
        step = 0
        if time.monotonic() - self._counted >= 0.5:  # a count reads every trial: not each time
            self._counted = time.monotonic()
            step = max(len(study.trials) - self.bar.n, 0)  # every worker's, as the budget
        self.bar.update(step, **postfix)

    def close(self) -> None:
        self.bar.update(max(len(self.study.trials) - self.bar.n, 0))
        self.bar.close()


def _usage(message: str) -> int:
    print(f"airda worker: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _on_sigterm(signum: int, frame: Any) -> None:
    from airda.study import WorkerTerminated

    raise WorkerTerminated(f"the worker was stopped by signal {signum}")


def run(args: argparse.Namespace) -> int:
    from airda.cli.run import did_you_mean, load_run_config, space_size
    from airda.storage import StorageError, get_storage
    from airda.storage.base import StudyNotFoundError

    path = Path(args.config)
    try:
        cfg = load_run_config(
            path,
            storage=args.storage,
            name=args.study,
            n_trials=args.max_trials,
            workers=args.workers,
            timeout=args.timeout,
            trials_flag="--max-trials",
        )
    except (ValueError, TypeError) as exc:
        return _usage(str(exc))
    if cfg.name is None:
        return _usage(f"name the study to join: --study NAME (or [study] name in {path})")
    total, limit = cfg.n_trials, cfg.timeout
    if total is None and limit is None and (cfg.space is None or space_size(cfg.space) is None):
        return _usage(
            f"give the study's total (--max-trials, or [budget] n_trials in {path}) or "
            "--timeout: without either the workers never stop"
        )
    try:
        store = get_storage(cfg.storage)
    except (StorageError, ValueError, ImportError) as exc:
        return _usage(f"cannot open the storage: {exc}")
    try:
        existed = True
        try:
            store.get_study(cfg.name)
        except StudyNotFoundError:
            existed = False
        if args.copy_from and not existed:
            failed = _copy(cfg.name, args.copy_from, store)
            if failed is not None:
                return failed
            existed = True
        elif args.copy_from:
            print(f"study {cfg.name!r} is in {store.url} already: nothing copied", flush=True)
        if not existed and cfg.space is None:
            names = [s.record.name for s in store.list_studies()]
            listed = f"; its studies: {', '.join(names)}" if names else "; it holds none"
            return _usage(
                f"no study {cfg.name!r} in {store.url}{did_you_mean(cfg.name, names)}"
                f"{listed}. To create it, {path} needs a [space] (a define-by-run study "
                "is created first with airda run, or copied with --copy-from)"
            )
        cfg.storage = store
        # A stream of its own: workers that join from other processes or machines never
        # propose the same candidates (see create_study's `stream`).
        stream = random.SystemRandom().randrange(1, 2**31)
        try:
            study = cfg.create_study(stream=stream)
        except (ValueError, TypeError) as exc:
            return _usage(str(exc))
    except StorageError as exc:
        return _usage(f"the storage failed: {exc}")
    return _work(study, cfg, existed, total, limit)


def _copy(name: str, source: str, store: Any) -> int | None:
    """Copy study `name` from `source` into `store`; an exit code if that failed."""
    from airda.cli.studies import open_storage
    from airda.storage import StorageError
    from airda.storage.base import DuplicatedStudyError, StudyNotFoundError
    from airda.study._study import copy_study

    if "://" not in source and not Path(source).exists():
        return _usage(f"--copy-from {source}: no such file")
    try:
        src = open_storage(source)
        copy = copy_study(name, from_storage=src, to_storage=store)
    except DuplicatedStudyError:
        return None  # another worker copied it meanwhile: join it
    except StudyNotFoundError:
        return _usage(f"--copy-from {source}: no study {name!r} there")
    except (StorageError, ValueError) as exc:
        return _usage(f"--copy-from {source}: {exc}")
    print(f"copied study {name!r} ({len(copy.trials)} trials) from {src.url}", flush=True)
    return None


def _work(study: Any, cfg: Any, existed: bool, total: int | None, limit: float | None) -> int:
    from airda.cli.studies import print_best
    from airda.storage import StorageError
    from airda.study import WorkerTerminated

    before = len(study.trials)
    verb = "joined" if existed else "created"
    print(
        f"{verb} study {study.name!r} in {study.storage.url} ({before} trials); worker "
        f"{study.worker}{f' with {cfg.workers} processes' if cfg.workers > 1 else ''} runs "
        + (f"until the study holds {total} trials" if total is not None else "with no total")
        + (f", for at most {limit:g} s" if limit is not None else ""),
        flush=True,
    )
    if total is not None and before >= total:
        print(f"the study holds {before} of {total} trials already: nothing to do")
        return print_best(study)
    progress = _StudyProgress(study, total, before)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    code = EXIT_OK
    try:
        study.optimize(
            cfg.objective,
            max_trials=total,
            timeout=limit,
            n_workers=cfg.workers,
            callbacks=[progress],
            show_progress=False,  # ours: the study's count, rate and ETA
        )
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except WorkerTerminated:
        code = EXIT_TERMINATED
    except (StorageError, RuntimeError) as exc:
        print(f"airda worker: error: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    trials = study.trials
    held = len(trials)
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        why = "interrupted" if code == EXIT_INTERRUPTED else "stopped by SIGTERM"
        print(
            f"{why}: finished trials are saved, the running one recorded failed; the study "
            f"holds {held} trials",
            file=sys.stderr,
        )
        return code
    if cfg.workers == 1:
        ran = sum(t.worker == study.worker for t in trials[before:])
        print(f"this worker ran {ran} trials", end="; ")
    print(f"the study holds {held}" + (f" of {total}" if total is not None else ""))
    best = print_best(study)
    return code or best

"""The ``airda`` command line.

Example:
    $ airda info                          # versions, backends and why any is unusable
    $ airda demo                          # score a few torch models with NASWOT
    $ airda run examples/quickstart.toml  # run the study a file describes
    $ airda studies list                  # the studies of ./airda-studies.db
    $ airda eval compare new.txt old.txt  # is new better than old? effect, interval, verdict
    $ airda tune c kernel.c --entry f ... # the fastest correct variant of a C kernel
    $ airda -q run study.toml             # no per-trial lines, no progress (-v: debug)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

from airda._version import __version__

__all__ = ["main"]

# Commands that live in one module each, `airda.cli.<name>`, with `add_parser(sub)` (argparse
# only: building the parser stays light) and `run(args) -> int` (the exit code).
_COMMAND_MODULES: tuple[str, ...] = (
    "synth",
    "lm",
    "prompt",
    "evolve",
    "worker",
    "report",
    "dashboard",
)

_VERBOSITIES = ("debug", "info", "warning", "error", "critical")


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    """-v / -q / --verbosity, before or after the command (`airda -q run x.toml` and
    `airda run x.toml -q`); a subcommand's copy leaves the value alone when not given."""
    group = parser.add_argument_group("verbosity")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="say more: debug log lines (repeatable)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default,
        help="say less: no per-trial lines or progress; -qq: errors only",
    )
    group.add_argument(
        "--verbosity",
        choices=_VERBOSITIES,
        default=argparse.SUPPRESS if default is argparse.SUPPRESS else None,
        help="log level of the airda logger (default: info)",
    )


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below `parser`, at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _subparsers(child)


def _level(args: argparse.Namespace) -> int:
    from airda._logging import INFO, parse_level

    if getattr(args, "verbosity", None):
        return parse_level(args.verbosity)
    step = (getattr(args, "quiet", 0) or 0) - (getattr(args, "verbose", 0) or 0)
    return min(max(INFO + 10 * step, 10), 50)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airda",
        description="AI R&D automation: architecture, hyperparameter and kernel search.",
    )
    parser.add_argument("--version", action="version", version=f"airda {__version__}")
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="show versions, built backends and which can run here",
        description="Show versions, the compiled backends, which ops can run on which backend "
        "here, and why a backend cannot.",
    )
    info.add_argument("--json", action="store_true", help="print the report as JSON")

    demo = sub.add_parser(
        "demo",
        help="score a few torch models with the NASWOT zero-cost proxy",
        description="Build a few small CNNs, score each with NASWOT on a random batch, and "
        "print the scores and timings.",
    )
    demo.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--backend",
        choices=["cpu", "cuda", "triton", "reference"],
        default=None,
        help="force a backend for the sign-code ops (default: automatic)",
    )
    demo.add_argument("--device", default=None, help="torch device (default: cuda if available)")

    run = sub.add_parser(
        "run",
        help="run a study described in a TOML file",
        description="Run (or continue) the study a TOML file describes: [study] name, storage, "
        "direction, strategy, seed; [strategy.options]; [objective] function = "
        "'module:function'; [budget] n_trials, timeout, workers; [space] parameters. "
        "Unknown keys are errors. n_trials counts new evaluations; a finite space stops when "
        "every candidate was tried. See examples/quickstart.toml.",
    )
    run.add_argument("config", help="the TOML file")
    run.add_argument("--storage", help="override [study] storage (file path or URL)")
    run.add_argument("--name", help="override [study] name")
    run.add_argument("--n-trials", type=int, help="override [budget] n_trials")
    run.add_argument("--timeout", type=float, help="override [budget] timeout (seconds)")
    run.add_argument("--workers", type=int, help="override [budget] workers")

    studies = sub.add_parser(
        "studies",
        help="list, show, export or delete stored studies",
        description="Look after the studies of a storage (default: ./airda-studies.db).",
    )
    ssub = studies.add_subparsers(dest="action", metavar="ACTION", required=True)
    storage_help = "storage file or URL (default: airda-studies.db)"
    s_list = ssub.add_parser("list", help="one line per study", description="One line per study.")
    s_list.add_argument("--storage", help=storage_help)
    s_show = ssub.add_parser(
        "show",
        help="a study's best trials and failures",
        description="A study's settings, best trials and recent failures.",
    )
    s_show.add_argument("name")
    s_show.add_argument("--storage", help=storage_help)
    s_show.add_argument("--top", type=int, default=10, help="how many best trials (default 10)")
    s_export = ssub.add_parser(
        "export",
        help="write a study's trials to CSV or JSON",
        description="Write every trial to a .csv or .json file, or to stdout with -o -.",
    )
    s_export.add_argument("name")
    s_export.add_argument(
        "-o", "--output", required=True, help="output file (.csv or .json), or - for stdout"
    )
    s_export.add_argument(
        "--format",
        choices=["csv", "json"],
        help="output format (default: the file's suffix; csv for stdout)",
    )
    s_export.add_argument("--force", action="store_true", help="overwrite an existing file")
    s_export.add_argument("--storage", help=storage_help)
    s_delete = ssub.add_parser(
        "delete",
        help="delete a study and its trials",
        description="Delete a study and all its trials.",
    )
    s_delete.add_argument("name")
    s_delete.add_argument("--storage", help=storage_help)
    s_delete.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask for confirmation (required when stdin is not a terminal)",
    )

    ev = sub.add_parser(
        "eval",
        help="evaluation reports and significance verdicts",
        description="Tell a genuine improvement from noise: reports of a study's protocol and "
        "held-out re-evaluation, and verdicts on two sets of scores.",
    )
    esub = ev.add_subparsers(dest="action", metavar="ACTION", required=True)
    e_report = esub.add_parser(
        "report",
        help="write a study's evaluation report (Markdown, HTML, PNG plots)",
        description="Write report.md, report.html and PNG plots for a study: trials, protocol "
        "record (test-split reads), held-out re-evaluation with intervals and the winner's "
        "curse, attached comparisons.",
    )
    e_report.add_argument("name", help="the study")
    e_report.add_argument("--storage", help=storage_help)
    e_report.add_argument("-o", "--out", help="output folder (default: airda-report-NAME)")
    e_cmp = esub.add_parser(
        "compare",
        help="is a candidate better than a baseline? effect, interval, p-value, verdict",
        description="Compare two files of scores (one number per line, or a CSV column with "
        "--column); paired by line unless --unpaired.",
    )
    e_cmp.add_argument("candidate", help="the candidate's scores")
    e_cmp.add_argument("baseline", help="the baseline's scores")
    e_cmp.add_argument("--column", help="CSV/TSV column name or 0-based index")
    e_cmp.add_argument("--unpaired", action="store_true", help="independent runs, not paired")
    e_cmp.add_argument(
        "--lower-is-better", action="store_true", help="scores are losses, errors or latencies"
    )
    e_cmp.add_argument(
        "--test",
        choices=["permutation", "wilcoxon", "sign"],
        default="permutation",
        help="significance test (default: permutation)",
    )
    e_cmp.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    e_cmp.add_argument("--resamples", type=int, default=10_000, help="resamples (10000)")
    e_cmp.add_argument("--seed", type=int, default=0, help="resampling seed (0)")
    e_cmp.add_argument("--omit-nan", action="store_true", help="drop NaN scores (counted)")
    e_cmp.add_argument("--json", action="store_true", help="print the result as JSON")

    nas = sub.add_parser(
        "nas",
        help="architecture search on a tabular benchmark; zero-cost proxy scores",
        description="Neural architecture search: run strategies on a NAS-Bench-201-style table "
        "over many seeds, or score architectures with zero-cost proxies.",
    )
    nsub = nas.add_subparsers(dest="action", metavar="ACTION", required=True)
    n_search = nsub.add_parser(
        "search",
        help="run a strategy for several seeds on a benchmark table",
        description="Run a strategy for several seeds on a benchmark table, each with a query "
        "budget (equivalent cells cost no query), and print the architecture every seed "
        "returns with its metrics, and means with 95%% bootstrap intervals.",
    )
    n_search.add_argument("--space", default="nb201", choices=["nb201"], help="the space")
    n_search.add_argument(
        "--benchmark",
        help="the table (CSV with an arch column; default: the one `airda nas download nb201` "
        "put in the cache)",
    )
    n_search.add_argument("--metric", default="cifar10-val", help="column to optimise")
    n_search.add_argument(
        "--strategy",
        default="default",
        help="default (local search with exchanges and a parameter-count prior), random, rea, "
        "local, reinforce, predictor, halton, ... (default: default)",
    )
    n_search.add_argument("--budget", type=int, default=300, help="queries per seed (300)")
    n_search.add_argument("--seeds", type=int, default=20, help="number of seeds (20)")
    n_search.add_argument(
        "--report",
        action="append",
        default=[],
        help="another column to report for the returned architecture (default: the -test "
        "twin of --metric); repeatable",
    )
    n_search.add_argument(
        "--checkpoints",
        type=lambda s: [int(x) for x in s.split(",")],
        help="query counts to report at, e.g. 50,100,300 (default: every 50 and the budget)",
    )
    n_search.add_argument(
        "--warm-start",
        metavar="PROXY",
        help="evaluate first the best of a random pool by this zero-cost proxy",
    )
    n_search.add_argument("--warm-pool", type=int, default=200, help="warm-start pool (200)")
    n_search.add_argument("--warm-n", type=int, default=10, help="warm-start candidates (10)")
    n_search.add_argument(
        "--storage", help="keep every seed's study in this storage (default: in memory)"
    )
    n_search.add_argument("--name", help="study name prefix (default: nas-STRATEGY-METRIC)")
    n_search.add_argument("--json", action="store_true", help="print the results as JSON")
    n_score = nsub.add_parser(
        "score",
        help="score random architectures with zero-cost proxies",
        description="Build random architectures of the space, score each with zero-cost "
        "proxies, and give the rank correlation with a benchmark column when one is given.",
    )
    n_score.add_argument("--space", default="nb201", choices=["nb201"], help="the space")
    n_score.add_argument(
        "--proxies",
        default="synflow,naswot",
        type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
        help="comma-separated proxies (default: synflow,naswot)",
    )
    n_score.add_argument("--n", type=int, default=200, help="architectures to score (200)")
    n_score.add_argument("--seed", type=int, default=0, help="seed of the architectures (0)")
    n_score.add_argument("--batch-size", type=int, default=64, help="proxy batch size (64)")
    n_score.add_argument("--benchmark", help="a table to correlate the proxies with")
    n_score.add_argument("--metric", help="its column (default: the first metric)")
    n_score.add_argument("--json", action="store_true", help="print the results as JSON")
    from airda.cli.nas_download import add_download_parser

    add_download_parser(nsub)
    from airda.cli.tune import add_parser as add_tune_parser

    add_tune_parser(sub)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"airda.cli.{name}").add_parser(sub)
    for child in _subparsers(parser):
        _add_verbosity(child, argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 1 failure, 2 usage error, 130
    interrupted, 141 when the reader of stdout went away, as in ``airda ... | head``)."""
    try:
        try:
            return _main(argv)
        finally:
            # Flush while a closed pipe can still be caught, not at interpreter exit (where
            # Python would print "Exception ignored ... BrokenPipeError").
            sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


def _stdout_to_devnull() -> None:
    """What the Python docs advise after EPIPE: point stdout at devnull, so that the flush at
    exit writes nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if next((a for a in argv if not a.startswith("-")), None) == "tune":
        from airda.cli.tune import join_option_values

        argv = join_option_values(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from airda._logging import verbosity

    with verbosity(_level(args)):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command == "info":
            from airda.cli.info import run_info

            return run_info(as_json=args.json)
        if args.command == "demo":
            from airda.cli.demo import run_demo

            return run_demo(
                batch=args.batch, seed=args.seed, backend=args.backend, device=args.device
            )
        if args.command == "run":
            from pathlib import Path

            from airda.cli.run import run_config

            return run_config(
                Path(args.config),
                storage=args.storage,
                n_trials=args.n_trials,
                workers=args.workers,
                timeout=args.timeout,
                name=args.name,
            )
        if args.command == "studies":
            from airda.cli import studies

            if args.action == "list":
                return studies.run_list(args.storage)
            if args.action == "show":
                return studies.run_show(args.name, args.storage, args.top)
            if args.action == "export":
                return studies.run_export(
                    args.name, args.storage, args.output, fmt=args.format, force=args.force
                )
            if args.action == "delete":
                return studies.run_delete(args.name, args.storage, args.yes)
        if args.command == "nas":
            from airda.cli import nas as nas_cli

            if args.action == "download":
                from airda.cli.nas_download import run_download

                return run_download(args)
            if args.action == "search":
                return nas_cli.run_search(
                    space=args.space,
                    benchmark=args.benchmark,
                    metric=args.metric,
                    strategy=args.strategy,
                    budget=args.budget,
                    seeds=args.seeds,
                    report=args.report,
                    checkpoints=args.checkpoints,
                    warm_start=args.warm_start,
                    warm_pool=args.warm_pool,
                    warm_n=args.warm_n,
                    storage=args.storage,
                    name=args.name,
                    as_json=args.json,
                )
            return nas_cli.run_score(
                space=args.space,
                proxies=args.proxies,
                n=args.n,
                seed=args.seed,
                benchmark=args.benchmark,
                metric=args.metric,
                batch_size=args.batch_size,
                as_json=args.json,
            )
        if args.command == "eval":
            from airda.cli import eval as eval_cli

            if args.action == "report":
                return eval_cli.run_report(args.name, args.storage, args.out)
            return eval_cli.run_compare(
                args.candidate,
                args.baseline,
                column=args.column,
                paired=not args.unpaired,
                lower_is_better=args.lower_is_better,
                test=args.test,
                alpha=args.alpha,
                n_resamples=args.resamples,
                seed=args.seed,
                omit_nan=args.omit_nan,
                as_json=args.json,
            )
        if args.command == "tune":
            from airda.cli.tune import run_tune_c

            return run_tune_c(args)
        if args.command in _COMMAND_MODULES:
            return importlib.import_module(f"airda.cli.{args.command}").run(args)
    except KeyboardInterrupt:
        print("interrupted: finished trials are saved", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # an OSError, but not a failure of the command: main() ends quietly
    except (ValueError, TypeError, RuntimeError, KeyError, OSError) as exc:
        print(f"airda {args.command}: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

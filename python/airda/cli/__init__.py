"""The ``airda`` command line.

Example:
    $ airda info          # versions, compiled backends and why any is unusable
    $ airda demo          # score a few torch models with NASWOT
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airda._version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airda",
        description="AI R&D automation: architecture, hyperparameter and kernel search.",
    )
    parser.add_argument("--version", action="version", version=f"airda {__version__}")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 1 failure, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "info":
            from airda.cli.info import run_info

            return run_info(as_json=args.json)
        if args.command == "demo":
            from airda.cli.demo import run_demo

            return run_demo(
                batch=args.batch, seed=args.seed, backend=args.backend, device=args.device
            )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"airda {args.command}: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

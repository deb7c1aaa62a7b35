"""``airda evolve``: evolve a reference implementation towards the fastest correct program, with
a language model, the deterministic rewrites, or both.

Example:
    $ airda evolve spec.toml --budget 200 --no-lm          # the deterministic rewrites alone
    $ airda evolve spec.toml --lm smollm2 --budget 30      # the local model (and the rewrites)
    $ airda evolve spec.toml --endpoint http://127.0.0.1:8000/v1 --model NAME
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``airda evolve`` to the command line's subparsers."""
    p = sub.add_parser(
        "evolve",
        help="evolve a reference implementation (C, C++, Python, Triton) into a faster correct one",
        description="Evolve the reference program a spec.toml describes: proposers (a "
        "language model asked for SEARCH/REPLACE edits, and/or deterministic rewrites: "
        "tiling, unrolling, interchange, restrict, ...) write candidates; each is compiled, "
        "tested (quick, then full inputs) against the reference's outputs and timed in a "
        "sandbox; every candidate is a trial of a study, so a second run with the same "
        "--storage continues it. The report gives the winner's lineage (diffs from the "
        "reference) and its speed-up with a 95% interval. Exit codes: 0 done, 1 no correct "
        "candidate found (or a failure), 2 a bad spec or usage.",
        epilog="spec.toml keys: name, language (c, cpp, python, triton), source (a file, relative to "
        "the TOML), entry, args (C: ['float64[N]:zeros:out', 'float64[N]', 'int32=N']), "
        "quick_args, defines, metric (time or score), atol, rtol, flags, timeout, max_time_s, "
        "harness (a Python file) with inputs, quick_inputs, verify, score (names of its "
        "functions). See docs/evolve.md.",
    )
    p.add_argument("spec", help="the spec's TOML file")
    p.add_argument(
        "--budget", type=int, default=200, help="candidates to evaluate, stored ones included (200)"
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "--endpoint", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1"
    )
    model.add_argument(
        "--lm",
        help="a model airda.lm.load accepts: smollm2, tiny, a model folder, a .gguf file, a URL",
    )
    model.add_argument(
        "--no-lm", action="store_true", help="the deterministic rewrites alone (the default)"
    )
    p.add_argument("--model", help="the endpoint's model name (with --endpoint)")
    p.add_argument(
        "--lm-weight",
        type=float,
        default=0.5,
        help="with a model: the share of proposals asked of it, the rest from the rewrites; "
        "1 for the model alone (default 0.5)",
    )
    p.add_argument("--max-tokens", type=int, default=768, help="tokens per model reply (768)")
    p.add_argument(
        "--storage",
        default="airda-studies.db",
        help="the study's storage, file or URL (default airda-studies.db; ':memory:' for none)",
    )
    p.add_argument("--name", help="the study's name (default evolve-NAME-KEY)")
    p.add_argument("--islands", type=int, default=4, help="islands (4)")
    p.add_argument("--seed", type=int, default=0, help="seed (0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _proposers(args: argparse.Namespace) -> Any:
    from airda.codeopt.evolve import LMProposer, RewriteProposer

    if args.model and not args.endpoint:
        raise _Usage("--model goes with --endpoint (or give --lm URL?model=NAME)")
    spec = None
    if args.endpoint:
        spec = args.endpoint + (f"?model={args.model}" if args.model else "")
    elif args.lm:
        spec = args.lm
    if spec is None:
        return RewriteProposer()
    if not 0.0 < args.lm_weight <= 1.0:
        raise _Usage(f"--lm-weight must be in (0, 1], got {args.lm_weight}")
    lm = LMProposer(spec, max_tokens=args.max_tokens)
    if args.lm_weight >= 1.0:
        return lm
    return {lm: args.lm_weight, RewriteProposer(): 1.0 - args.lm_weight}


class _Usage(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    """Run ``airda evolve``; the exit code (0 done, 1 nothing correct found or a failure, 2 a
    bad spec or usage)."""
    from airda.codeopt.evolve import EvolveSpec, evolve

    if args.budget < 1:
        print("airda evolve: error: --budget must be >= 1", file=sys.stderr)
        return 2
    if args.islands < 1:
        print("airda evolve: error: --islands must be >= 1", file=sys.stderr)
        return 2
    try:
        spec = EvolveSpec.from_toml(args.spec)
        proposers = _proposers(args)
    except (ValueError, TypeError, _Usage) as exc:
        print(f"airda evolve: error: {exc}", file=sys.stderr)
        return 2
    storage = None if args.storage == ":memory:" else args.storage
    try:
        res = evolve(
            spec,
            budget=args.budget,
            proposers=proposers,
            storage=storage,
            study_name=args.name,
            islands=args.islands,
            seed=args.seed,
            show_progress=True,  # a bar on a terminal, log lines otherwise; -q silences it
        )
    except ValueError as exc:  # the reference fails, or the study holds another spec
        print(f"airda evolve: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        print(res.report())
    return 0 if res.counts["passed"] > 0 else 1

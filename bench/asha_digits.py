"""ASHA with a model-based sampler against random search without early stopping, on a real
training task: an MLP on scikit-learn's bundled digits (8x8 images, 10 classes).

Each seed splits the 1,797 digits into 1,000 training, 400 validation and 397 held-out images
and tunes learning rate, optimiser, weight decay, hidden width and batch size for a budget of
``--max-epochs`` epochs per trial:

- random search: ``--random-trials`` trials, every one trained to the full budget;
- ASHA (``min_resource=--min-resource``, default 1, ``reduction_factor=--eta``, default 3)
  with ``--sampler`` proposing the trials,
  started while one more full-budget trial would keep the epochs spent within a third of
  random search's (the table gives the epochs actually spent).

The table gives, per method, the best validation accuracy of a trial trained to the full
budget, the accuracy of that trial on the 397 held-out images (the maximum of many noisy
validation accuracies is biased upwards, more so the more full-budget trials a method has;
the held-out accuracy of the chosen trial is not), and the total epochs trained, as mean and
range over seeds.

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
    tr, va, te = order[:1000], order[1000:1400], order[1400:]
    t = torch.from_numpy
    return t(x[tr]), t(y[tr]), t(x[va]), t(y[va]), t(x[te]), t(y[te])


def make_objective(data, max_epochs: int, seed: int, epochs_spent: list[int]):
    import torch

    xtr, ytr, xva, yva, xte, yte = data

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
        with torch.no_grad():  # held out: read only for the table, never by the search
            test = (model(xte).argmax(1) == yte).float().mean().item()
        trial.set_user_attr("test_accuracy", test)
        return acc

    return objective


def best_full(study) -> float:
    done = study.get_trials([airda.TrialState.COMPLETE])
    return max(t.value for t in done) if done else float("nan")


def chosen_test(study) -> float:
    """Held-out accuracy of the trial the search returns (best validation accuracy at the
    full budget; ties to the earlier trial): free of the winner's curse of the maximum."""
    done = study.get_trials([airda.TrialState.COMPLETE])
    if not done:
        return float("nan")
    best = max(done, key=lambda t: (t.value, -t.number))
    return best.user_attrs["test_accuracy"]


def best_last(study) -> float:
    """Best value any trial (complete or stopped) reported at its last step: the accuracy of
    the best model a search leaves behind if every trial keeps its last checkpoint."""
    ends = [t.intermediate[max(t.intermediate)] for t in study.trials if t.intermediate]
    return max(ends) if ends else float("nan")


def run_random(seed: int, data, args) -> dict[str, float]:
    spent = [0]
    t0 = time.perf_counter()
    rand = airda.create_study(space=SPACE, direction="maximize", strategy="random", seed=seed)
    rand.optimize(make_objective(data, args.max_epochs, seed, spent), n_trials=args.random_trials)
    return {
        "acc": best_full(rand),
        "test": chosen_test(rand),
        "last": best_last(rand),
        "epochs": spent[0],
        "trials": len(rand.trials),
        "complete": len(rand.get_trials([airda.TrialState.COMPLETE])),
        "s": time.perf_counter() - t0,
    }


def run_asha(seed: int, data, args, sampler: str, budget: int) -> dict[str, float]:
    spent = [0]
    t0 = time.perf_counter()
    asha = airda.create_study(
        space=SPACE,
        direction="maximize",
        strategy=sampler,
        seed=seed,
        scheduler=ASHA(args.min_resource, args.max_epochs, args.eta),
    )
    objective = make_objective(data, args.max_epochs, seed, spent)
    # A trial may run the full budget: start one only while that cannot overshoot `budget`.
    while spent[0] + args.max_epochs <= budget:
        asha.optimize(objective, n_trials=1)
    return {
        "acc": best_full(asha),
        "test": chosen_test(asha),
        "last": best_last(asha),
        "epochs": spent[0],
        "trials": len(asha.trials),
        "complete": len(asha.get_trials([airda.TrialState.COMPLETE])),
        "s": time.perf_counter() - t0,
    }


def summary(values: list[float], fmt: str) -> str:
    return (
        f"{format(statistics.mean(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def row(name: str, runs: list[dict[str, float]]) -> str:
    col = {k: [r[k] for r in runs] for k in runs[0]}
    return (
        f"| {name} | {summary(col['acc'], '.4f')} | {summary(col['test'], '.4f')} | "
        f"{summary(col['last'], '.4f')} | "
        f"{summary(col['epochs'], '.0f')} | {summary(col['trials'], '.0f')} | "
        f"{summary(col['complete'], '.0f')} | {summary(col['s'], '.1f')} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--sampler", default="bohb", help="airda strategy name(s) for ASHA, comma-separated"
    )
    parser.add_argument("--random-trials", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--min-resource", type=int, default=1, help="ASHA's first rung")
    parser.add_argument("--eta", type=int, default=3, help="ASHA's reduction factor")
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    samplers = [x for x in args.sampler.split(",") if x]
    for sampler in samplers:
        if sampler not in STRATEGIES:
            parser.error(
                f"--sampler {sampler!r} is not a registered strategy in this airda "
                f"(registered: {', '.join(sorted(STRATEGIES))}); 'tpe' needs the TPE strategy"
            )
    try:
        import sklearn  # noqa: F401
        import torch
    except ImportError as exc:
        print(f"needs scikit-learn and torch (pip install airda[bench]): {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rand_runs: list[dict[str, float]] = []
    asha_runs: dict[str, list[dict[str, float]]] = {s: [] for s in samplers}
    for seed in range(args.seeds):
        data = load_data(seed)
        r = run_random(seed, data, args)
        rand_runs.append(r)
        line = (
            f"seed {seed}: random {r['acc']:.4f} (held-out {r['test']:.4f}) in {r['epochs']} "
            f"epochs ({r['s']:.1f} s)"
        )
        for sampler in samplers:
            a = run_asha(seed, data, args, sampler, r["epochs"] // 3)
            asha_runs[sampler].append(a)
            line += (
                f"; ASHA+{sampler} {a['acc']:.4f} (held-out {a['test']:.4f}, last-step best "
                f"{a['last']:.4f}) in "
                f"{a['epochs']} epochs, {a['trials']} trials, {a['complete']} full "
                f"({a['s']:.1f} s)"
            )
        print(line, flush=True)
    rungs = rung_steps(args.min_resource, args.max_epochs, args.eta)
    lines = [
        "| method | best val. accuracy (full budget) | its held-out accuracy "
        "| best last-step val. accuracy (any trial) "
        "| total epochs | trials | trials to full budget | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        row("random search, no early stop", rand_runs),
    ]
    for sampler in samplers:
        lines.append(row(f"ASHA (rungs {rungs}, eta {args.eta}) + {sampler}", asha_runs[sampler]))
    lines.append("")
    for sampler in samplers:
        diffs = [a["acc"] - r["acc"] for a, r in zip(asha_runs[sampler], rand_runs, strict=True)]
        ratio = statistics.mean(a["epochs"] for a in asha_runs[sampler]) / statistics.mean(
            r["epochs"] for r in rand_runs
        )
        tdiffs = [a["test"] - r["test"] for a, r in zip(asha_runs[sampler], rand_runs, strict=True)]
        lines.append(
            f"ASHA+{sampler} - random, per seed: validation mean {statistics.mean(diffs):+.4f} "
            f"(min {min(diffs):+.4f}, max {max(diffs):+.4f}), held-out mean "
            f"{statistics.mean(tdiffs):+.4f} (min {min(tdiffs):+.4f}, max {max(tdiffs):+.4f}); "
            f"epochs ratio {ratio:.3f}."
        )
    lines.append(
        f"{args.seeds} seeds. Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, one thread."
    )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

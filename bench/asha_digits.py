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

After the table, per sampler: the paired difference ASHA minus random search over the seeds
(mean, 95% BCa bootstrap and t intervals, Wilcoxon p-value, seeds better/worse/tied) for the
validation and the held-out column, and the epochs ratio.

Options (defaults in brackets): ``--seeds`` [5] from ``--seed-start`` [0]; ``--sampler``
[bohb]; ``--min-resource`` [1], ``--eta`` [3], ``--scheduler asha|hyperband`` [asha];
``--report acc|best|ema|loss`` [acc]: what the loop reports to the scheduler each epoch (the
validation accuracy, its best so far, its EMA with weight ``--ema-alpha`` [0.5] on the newest
epoch, or minus the validation loss); the trial's value stays the final-epoch validation
accuracy; ``--n-startup-trials`` / ``--gamma`` for tpe and bohb [the strategy's defaults];
``--curve-stats``: how well early epochs of random search's curves rank the final accuracy;
``--cache DIR``: store random search's (deterministic) results per seed and reuse them;
``--out`` (Markdown), ``--json`` (all runs with their learning curves).

Run: ``python bench/asha_digits.py [--seeds 5] [--sampler bohb|tpe|random|halton] [--out F]``
(needs scikit-learn and torch; one thread: ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import airda
from airda.schedulers import ASHA, Hyperband, rung_steps
from airda.space import Categorical, Float, Int
from airda.strategies import STRATEGIES, get_strategy

# Bump when the training loop changes, so --cache never returns results of an older loop.
CACHE_V = 1

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


def make_objective(data, args, seed: int, epochs_spent: list[int], report: str = "acc"):
    """The training loop. It reports ``report`` to the scheduler every epoch (``acc``: the
    validation accuracy; ``best``: the best validation accuracy so far; ``ema``: its
    exponential moving average with weight ``args.ema_alpha`` on the newest epoch; ``loss``:
    minus the validation cross-entropy) and returns the final-epoch validation accuracy, so the
    study's values, and the table's accuracy columns, do not depend on ``report``."""
    import torch

    xtr, ytr, xva, yva, xte, yte = data
    max_epochs = args.max_epochs
    alpha = args.ema_alpha

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
        accs: list[float] = []
        losses: list[float | None] = []
        smooth = 0.0
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
                out = model(xva)
                acc = (out.argmax(1) == yva).float().mean().item()
                vloss = torch.nn.functional.cross_entropy(out, yva).item()
            accs.append(acc)
            losses.append(vloss if math.isfinite(vloss) else None)
            trial.set_user_attr("val_accuracy", list(accs))
            trial.set_user_attr("val_loss", list(losses))
            if acc != acc:  # diverged to NaN: a failed trial, not a reported value
                raise FloatingPointError(f"validation accuracy is NaN at epoch {epoch}")
            if report == "acc":
                metric = acc
            elif report == "best":
                metric = max(accs)
            elif report == "ema":
                smooth = acc if epoch == 1 else alpha * acc + (1.0 - alpha) * smooth
                metric = smooth
            else:  # "loss": maximised as minus the cross-entropy
                if not math.isfinite(vloss):
                    raise FloatingPointError(
                        f"validation loss is {vloss} at epoch {epoch} (report='loss')"
                    )
                metric = -vloss
            trial.report(epoch, metric)
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


def curves(study) -> list[dict]:
    """Per trial: parameters, state, per-epoch validation accuracy and loss, held-out accuracy."""
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "params": dict(t.params),
            "val_accuracy": t.user_attrs.get("val_accuracy", []),
            "val_loss": t.user_attrs.get("val_loss", []),
            "test_accuracy": t.user_attrs.get("test_accuracy"),
        }
        for t in study.trials
    ]


def result(study, spent: int, t0: float) -> dict:
    return {
        "acc": best_full(study),
        "test": chosen_test(study),
        "last": best_last(study),
        "epochs": spent,
        "trials": len(study.trials),
        "complete": len(study.get_trials([airda.TrialState.COMPLETE])),
        "s": time.perf_counter() - t0,
        "curves": curves(study),
    }


def run_random(seed: int, data, args) -> dict:
    """Random search, every trial to the full budget. Deterministic for a seed, so with
    ``--cache DIR`` a result is stored and read back (the wall time is then the stored one)."""
    path = None
    if args.cache:
        path = os.path.join(
            args.cache, f"random-s{seed}-n{args.random_trials}-e{args.max_epochs}-v{CACHE_V}.json"
        )
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    spent = [0]
    t0 = time.perf_counter()
    rand = airda.create_study(space=SPACE, direction="maximize", strategy="random", seed=seed)
    rand.optimize(make_objective(data, args, seed, spent), n_trials=args.random_trials)
    out = result(rand, spent[0], t0)
    if path is not None:
        os.makedirs(args.cache, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(out, f)
        os.replace(path + ".tmp", path)
    return out


def make_scheduler(args):
    if args.scheduler == "hyperband":
        return Hyperband(args.min_resource, args.max_epochs, args.eta)
    return ASHA(args.min_resource, args.max_epochs, args.eta)


def sampler_options(args) -> dict:
    opts = {}
    if args.n_startup_trials is not None:
        opts["n_startup_trials"] = args.n_startup_trials
    if args.gamma is not None:
        opts["gamma"] = args.gamma
    return opts


def run_asha(seed: int, data, args, sampler: str, budget: int) -> dict:
    spent = [0]
    t0 = time.perf_counter()
    opts = sampler_options(args) if sampler in ("tpe", "bohb") else {}
    asha = airda.create_study(
        space=SPACE,
        direction="maximize",
        strategy=get_strategy(sampler, seed=seed, **opts),
        scheduler=make_scheduler(args),
    )
    objective = make_objective(data, args, seed, spent, report=args.report)
    # A trial may run the full budget: start one only while that cannot overshoot `budget`.
    while spent[0] + args.max_epochs <= budget:
        asha.optimize(objective, n_trials=1)
    return result(asha, spent[0], t0)


def summary(values: list[float], fmt: str) -> str:
    return (
        f"{format(statistics.mean(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def row(name: str, runs: list[dict]) -> str:
    col = {k: [r[k] for r in runs] for k in runs[0] if k != "curves"}
    return (
        f"| {name} | {summary(col['acc'], '.4f')} | {summary(col['test'], '.4f')} | "
        f"{summary(col['last'], '.4f')} | "
        f"{summary(col['epochs'], '.0f')} | {summary(col['trials'], '.0f')} | "
        f"{summary(col['complete'], '.0f')} | {summary(col['s'], '.1f')} |"
    )


def paired(name: str, a: list[float], b: list[float]) -> str:
    """Mean paired difference ``a - b`` in points with a 95% BCa bootstrap interval and a
    t interval, the Wilcoxon signed-rank p-value and the counts of seeds better/worse/tied."""
    import numpy as np

    from airda.eval import bootstrap_ci, wilcoxon

    d = 100.0 * (np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    n = len(d)
    wins, losses = int((d > 1e-9).sum()), int((d < -1e-9).sum())
    text = f"{name}: mean {d.mean():+.2f} points"
    if n >= 2 and d.std() > 0:
        from scipy.stats import t as student

        ci = bootstrap_ci(d, n_resamples=10_000, seed=0)
        half = student.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
        text += (
            f", 95% CI [{ci.low:+.2f}, {ci.high:+.2f}] (BCa bootstrap), "
            f"[{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] (t)"
        )
    if wins + losses > 0:
        text += f", Wilcoxon p = {wilcoxon(d).p_value:.3f}"
    return text + f"; {wins} seeds better, {losses} worse, {n - wins - losses} tied"


def curve_stats(rand_runs: list[dict], args) -> list[str]:
    """How well the early epochs of random search's full-budget learning curves rank the final
    validation accuracy, how noisy the curves are, and which hyperparameters the early
    rankings penalise."""
    import numpy as np

    from airda.eval import spearman

    E = args.max_epochs
    epochs = [e for e in (1, 2, 3, 5, 9, 18) if e < E]
    alpha = args.ema_alpha

    def metrics(c):
        acc = np.asarray(c["val_accuracy"], dtype=float)
        loss = np.asarray([np.inf if v is None else v for v in c["val_loss"]], dtype=float)
        ema = np.empty_like(acc)
        for i, v in enumerate(acc):
            ema[i] = v if i == 0 else alpha * v + (1 - alpha) * ema[i - 1]
        return {"acc": acc, "best": np.maximum.accumulate(acc), "ema": ema, "-loss": -loss}

    kinds = ("acc", "best", "ema", "-loss")
    rho = {(k, e): [] for k in kinds for e in epochs}
    kept = {(k, e): [] for k in kinds for e in epochs}
    drops, wiggle, final_vs_best = [], [], []
    params_rows = []
    for run in rand_runs:
        cs = [c for c in run["curves"] if c["state"] == "COMPLETE" and len(c["val_accuracy"]) == E]
        if len(cs) < 3:
            continue
        ms = [metrics(c) for c in cs]
        final = np.array([m["acc"][-1] for m in ms])
        top_final = set(np.argsort(-final, kind="stable")[: max(1, len(cs) // 10)])
        for k in kinds:
            for e in epochs:
                x = np.array([m[k][e - 1] for m in ms])
                x = np.where(np.isfinite(x), x, -1e9)
                with contextlib.suppress(ValueError):  # a constant column has no ranking
                    rho[(k, e)].append(spearman(x, final))
                # share of the final top 10% that the top 1/eta at epoch e keeps
                keep = set(np.argsort(-x, kind="stable")[: max(1, len(cs) // args.eta)])
                kept[(k, e)].append(len(keep & top_final) / len(top_final))
        for m in ms:
            a = m["acc"]
            tail = a[E // 3 :]
            drops.append(float(np.mean(np.diff(tail) < 0)))
            wiggle.append(float(np.std(tail[len(tail) // 2 :])))
            final_vs_best.append(float(a.max() - a[-1]))
        # rank shift early -> final (positive: better final rank than its epoch-1 rank)
        r1 = np.argsort(np.argsort(-np.array([m["acc"][0] for m in ms]), kind="stable"))
        r3 = np.argsort(np.argsort(-np.array([m["acc"][2] for m in ms]), kind="stable"))
        rf = np.argsort(np.argsort(-final, kind="stable"))
        n = len(cs)
        for c, a1, a3, af in zip(cs, r1, r3, rf, strict=True):
            p = c["params"]
            params_rows.append(
                (
                    math.log10(p["lr"]),
                    p["optimizer"] == "adam",
                    math.log10(p["weight_decay"]),
                    math.log2(p["hidden"]),
                    math.log2(p["batch_size"]),
                    (a1 - af) / n,
                    (a3 - af) / n,
                    float(c["val_accuracy"][-1]),
                    float(c["val_accuracy"][0]),
                )
            )
    out = [
        "",
        f"Learning curves of random search ({len(rand_runs)} seeds, complete trials): Spearman "
        "correlation, over configurations, of the metric at epoch e with the final validation "
        "accuracy (mean over seeds, min-max), and the share of each seed's final top 10% that "
        f"the top 1/{args.eta} at epoch e keeps:",
        "",
        "| metric at epoch e | " + " | ".join(f"e={e}" for e in epochs) + " |",
        "| --- | " + " | ".join("---" for _ in epochs) + " |",
    ]
    for k in kinds:
        cells = []
        for e in epochs:
            r = rho[(k, e)]
            cells.append(
                f"{np.mean(r):.2f} ({min(r):.2f}-{max(r):.2f}), keeps {np.mean(kept[(k, e)]):.2f}"
            )
        name = {"acc": "val. accuracy", "best": "best-so-far accuracy", "ema": f"EMA ({alpha})"}
        out.append(f"| {name.get(k, 'minus val. loss')} | " + " | ".join(cells) + " |")
    out += [
        "",
        f"Noise: over epochs {E // 3 + 1}-{E}, {100 * np.mean(drops):.0f}% of epoch-to-epoch "
        f"steps lower the validation accuracy; the std of a curve over its last "
        f"{len(range(E // 3, E)) - len(range(E // 3, E)) // 2} epochs is "
        f"{100 * np.mean(wiggle):.2f} points on average (median "
        f"{100 * np.median(wiggle):.2f}); the final accuracy is below the curve's best by "
        f"{100 * np.mean(final_vs_best):.2f} points on average.",
    ]
    if params_rows:
        arr = np.array(params_rows, dtype=float)
        names = ("log10 lr", "adam", "log10 weight decay", "log2 hidden", "log2 batch size")
        cells = []
        for j, nm in enumerate(names):
            cells.append(
                f"{nm}: {spearman(arr[:, j], arr[:, 5]):+.2f} / {spearman(arr[:, j], arr[:, 6]):+.2f}"
            )
        out.append(
            "Which configurations the early ranking underrates: Spearman, over all "
            f"{len(arr)} complete trials, of each hyperparameter with the rank gained from "
            "epoch 1 / epoch 3 to the final epoch (positive: larger values look worse early "
            "than they end): " + "; ".join(cells) + "."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument(
        "--sampler", default="bohb", help="airda strategy name(s) for ASHA, comma-separated"
    )
    parser.add_argument("--random-trials", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--min-resource", type=int, default=1, help="the first rung (default 1)")
    parser.add_argument("--eta", type=int, default=3, help="the reduction factor (default 3)")
    parser.add_argument(
        "--scheduler",
        choices=("asha", "hyperband"),
        default="asha",
        help="one ASHA bracket (default) or Hyperband's brackets",
    )
    parser.add_argument(
        "--report",
        choices=("acc", "best", "ema", "loss"),
        default="acc",
        help="what the loop reports to the scheduler each epoch: the validation accuracy "
        "(default), the best so far, its EMA, or minus the validation loss; the trial's value "
        "is always the final-epoch validation accuracy",
    )
    parser.add_argument(
        "--ema-alpha", type=float, default=0.5, help="EMA weight of the newest epoch (0.5)"
    )
    parser.add_argument(
        "--n-startup-trials",
        type=int,
        default=None,
        help="for tpe/bohb: random trials first (default: the strategy's own)",
    )
    parser.add_argument(
        "--gamma", type=float, default=None, help="for tpe/bohb: the good share (strategy's own)"
    )
    parser.add_argument(
        "--curve-stats",
        action="store_true",
        help="also print how early epochs of random search's curves rank the final accuracy",
    )
    parser.add_argument(
        "--cache", help="directory to store and reuse random search's (deterministic) results"
    )
    parser.add_argument("--out", help="also write the Markdown table here")
    parser.add_argument("--json", help="also write every run, with its learning curves, here")
    args = parser.parse_args(argv)
    samplers = [x for x in args.sampler.split(",") if x]
    for sampler in samplers:
        if sampler not in STRATEGIES:
            parser.error(
                f"--sampler {sampler!r} is not a registered strategy in this airda "
                f"(registered: {', '.join(sorted(STRATEGIES))}); 'tpe' needs the TPE strategy"
            )
    if not 0.0 < args.ema_alpha <= 1.0:
        parser.error(f"--ema-alpha must be in (0, 1], got {args.ema_alpha}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    try:
        import sklearn  # noqa: F401
        import torch
    except ImportError as exc:
        print(f"needs scikit-learn and torch (pip install airda[bench]): {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    rand_runs: list[dict] = []
    asha_runs: dict[str, list[dict]] = {s: [] for s in samplers}
    for seed in seeds:
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
    if args.scheduler == "hyperband":
        label = f"Hyperband (first rung {args.min_resource}, eta {args.eta})"
    else:
        label = f"ASHA (rungs {rung_steps(args.min_resource, args.max_epochs, args.eta)}, eta {args.eta})"
    extra = []
    if args.report != "acc":
        extra.append(
            f"reports {args.report}" + (f" {args.ema_alpha}" if args.report == "ema" else "")
        )
    extra += [f"{k} {v}" for k, v in sampler_options(args).items()]
    if extra:
        label += f" [{', '.join(extra)}]"
    lines = [
        "| method | best val. accuracy (full budget) | its held-out accuracy "
        "| best last-step val. accuracy (any trial) "
        "| total epochs | trials | trials to full budget | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        row("random search, no early stop", rand_runs),
    ]
    for sampler in samplers:
        lines.append(row(f"{label} + {sampler}", asha_runs[sampler]))
    lines.append("")
    for sampler in samplers:
        runs = asha_runs[sampler]
        ratio = statistics.mean(a["epochs"] for a in runs) / statistics.mean(
            r["epochs"] for r in rand_runs
        )
        lines.append(
            f"ASHA+{sampler} - random, paired over seeds {seeds.start}-{seeds.stop - 1} "
            f"(epochs ratio {ratio:.3f}, per seed {min(a['epochs'] / r['epochs'] for a, r in zip(runs, rand_runs, strict=True)):.3f}"
            f"-{max(a['epochs'] / r['epochs'] for a, r in zip(runs, rand_runs, strict=True)):.3f}):"
        )
        lines.append(
            "- "
            + paired(
                "best validation accuracy",
                [a["acc"] for a in runs],
                [r["acc"] for r in rand_runs],
            )
        )
        lines.append(
            "- "
            + paired(
                "held-out accuracy of the returned trial",
                [a["test"] for a in runs],
                [r["test"] for r in rand_runs],
            )
        )
    lines.append(
        f"{args.seeds} seeds ({seeds.start}-{seeds.stop - 1}). Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, one thread."
    )
    if args.curve_stats:
        lines += curve_stats(rand_runs, args)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "random": rand_runs, "asha": asha_runs}, f, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

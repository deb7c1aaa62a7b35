"""DARTS (first and second order) and GDAS on real data: MNIST-1D (1-D NB201 supernet) and
scikit-learn's digits (2-D NB201 supernet), with the architectures found retrained from scratch.

For each dataset and method:

1. the supernet ``NB201Supernet(dims, in_channels=1, num_classes=10, C=--C, N=--N)`` is built
   from the same seed, and the method searches for ``--epochs`` epochs, weights on the
   training split, alpha on the validation split (:mod:`airda.nas.differentiable`), reporting
   every epoch to a study trial (``--storage``: a file keeps the study; ``--checkpoint-dir``
   makes an interrupted run resume);
2. the derived architecture is extracted (``supernet.extract(arch)``), re-initialised, and
   trained from scratch for ``--retrain-epochs`` epochs on training + validation data (SGD,
   Nesterov momentum 0.9, lr 0.05 cosine to 0, weight decay 5e-4, batch 64);
3. its test accuracy (the untouched test split) and parameter count are reported, with the
   wall clock of the complete search (every epoch, including its validation passes).

The derived architecture is the argmax of alpha per edge, ``none`` included (NAS-Bench-201's
rule, rows ``darts1``, ``darts2``, ``gdas``); where excluding ``none`` (the DARTS paper's rule)
gives another cell, that one is retrained too (rows ``darts1-z`` ...), from the same search.

Baselines measured in the same run with the same retraining: a subnet drawn at random from the
space (seeded; ``--random-archs`` of them), and for MNIST-1D a plain 3-layer 1-D CNN of this script's own. The numbers
Greydanus (2020) reports for MNIST-1D (4,000 training / 1,000 test samples, the package's
default data): logistic regression 32%, MLP 68%, CNN 94%, GRU 91%, human expert 96%.

Run: ``python bench/nas_darts.py [--datasets mnist1d,digits] [--methods darts1,darts2,gdas]
[--epochs 10] [--retrain-epochs 40] [--json out.json]`` (one thread: ``OMP_NUM_THREADS=1``;
needs the ``mnist1d`` package and scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

GREYDANUS_MNIST1D = {
    "logistic regression": 0.32,
    "MLP": 0.68,
    "CNN": 0.94,
    "GRU": 0.91,
    "human expert": 0.96,
}


def load(name: str, seed: int):
    from airda.nas import data

    if name == "mnist1d":
        return data.mnist1d(seed)
    if name == "digits":
        return data.digits(seed)
    raise SystemExit(f"unknown dataset {name!r}: mnist1d or digits")


def reinitialise(model):
    """Fresh PyTorch default initialisation of every layer, fresh BN statistics."""
    for m in model.modules():
        if m is not model and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return model


def small_cnn(dims: int, num_classes: int, channels: int = 25):
    from torch import nn

    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    pool = nn.AdaptiveAvgPool1d if dims == 1 else nn.AdaptiveAvgPool2d
    return nn.Sequential(
        conv(1, channels, 5, stride=2, padding=2),
        nn.ReLU(),
        conv(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        conv(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


def accuracy(model, x, y, batch_size: int = 512) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(x)


def retrain(model, x, y, *, epochs: int, seed: int, batch_size: int = 64, lr: float = 0.05):
    """Train from scratch on (x, y); returns the wall clock in seconds."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 1, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:
                continue
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        sched.step()
    return time.perf_counter() - t0


def arch_string(arch) -> str:
    from airda.nas.nb201 import params_to_arch

    return params_to_arch(arch).to_string()


def run_dataset(args, ds_name, methods, wanted):
    """Search with every method on one dataset, retrain, and the baselines: result rows."""
    import numpy as np
    import torch

    import airda
    from airda.nas import count_params
    from airda.nas.supernet import NB201Supernet

    rows = []
    t0 = time.perf_counter()
    data = load(ds_name, args.data_seed)
    print(
        f"\n## {ds_name}: train {len(data.y_train)}, val {len(data.y_val)}, test "
        f"{len(data.y_test)} ({time.perf_counter() - t0:.1f} s to build)",
        flush=True,
    )
    x_full = torch.cat([data.x_train, data.x_val])
    y_full = torch.cat([data.y_train, data.y_val])
    study = airda.create_study(
        name=f"darts-{ds_name}-seed{args.seed}",
        storage=args.storage,
        direction="maximize",
        load_if_exists=True,
    )

    def supernet():
        torch.manual_seed(args.seed)
        return NB201Supernet(
            dims=data.dims, in_channels=1, num_classes=data.num_classes, C=args.C, N=args.N
        )

    def evaluate(name, model, arch, search_s, extra):
        torch.manual_seed(args.seed + 1)
        reinitialise(model)
        train_s = retrain(model, x_full, y_full, epochs=args.retrain_epochs, seed=args.seed)
        row = {
            "dataset": ds_name,
            "method": name,
            "arch": arch_string(arch) if arch else None,
            "params": count_params(model),
            "test_accuracy": accuracy(model, data.x_test, data.y_test),
            "search_seconds": search_s,
            "retrain_seconds": train_s,
            "load": os.getloadavg()[0],
            "alpha_lr": args.alpha_lr,
            **extra,
        }
        rows.append(row)
        print(
            f"{name:9s} test {row['test_accuracy']:.3f}  params {row['params']:>7d}  "
            f"search {search_s:7.1f} s  retrain {train_s:6.1f} s  load {row['load']:.2f}  "
            f"{row['arch'] or ''}",
            flush=True,
        )
        return row

    for m in wanted:
        net = supernet()
        trial = study.ask()
        trial.set_user_attr("method", m)
        ckpt = (
            os.path.join(args.checkpoint_dir, f"{ds_name}-{m}-seed{args.seed}.pt")
            if args.checkpoint_dir
            else None
        )
        t = time.perf_counter()
        res = methods[m](net).fit(
            data.x_train, data.y_train, data.x_val, data.y_val,
            epochs=args.epochs, trial=trial, checkpoint=ckpt,
        )  # fmt: skip
        wall = time.perf_counter() - t
        last = res.history[-1]
        if args.derive == "darts":
            arch = res.derive(exclude=("none",))
            evaluate(f"{m}-z", net.extract(arch), arch, res.seconds, {"derive": "exclude none"})
            study.tell(trial, last["val_accuracy"])
            continue
        row = evaluate(
            m,
            net.extract(res.arch),
            res.arch,
            res.seconds,
            {
                "search_wall_this_call": wall,
                "supernet_val_accuracy": last["val_accuracy"],
                "oneshot_arch_val_accuracy": last["arch_accuracy"],
                "alpha_softmax": np.round(res.probabilities, 3).tolist(),
                "epochs": args.epochs,
            },
        )
        trial.set_user_attr("test_accuracy", row["test_accuracy"])
        trial.set_user_attr("params", row["params"])
        study.tell(trial, last["val_accuracy"])
        # The DARTS paper's rule: the zero op is never selected.
        arch = res.derive(exclude=("none",))
        if arch != res.arch and args.derive == "both":
            evaluate(f"{m}-z", net.extract(arch), arch, res.seconds, {"derive": "exclude none"})
    if not args.no_baselines:
        rng = np.random.default_rng(args.seed)
        for k in range(args.random_archs):
            net = supernet()
            arch = net.sample(rng)
            evaluate("random" if k == 0 else f"random{k}", net.extract(arch), arch, 0.0, {})
        if data.dims == 1:
            torch.manual_seed(args.seed)
            evaluate("cnn", small_cnn(1, data.num_classes), None, 0.0, {})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="mnist1d,digits", help="comma list: mnist1d, digits")
    p.add_argument(
        "--methods", default="darts1,darts2,gdas", help="comma list: darts1, darts2, gdas"
    )
    p.add_argument("--epochs", type=int, default=10, help="search epochs (default 10)")
    p.add_argument("--retrain-epochs", type=int, default=40, help="retraining epochs (default 40)")
    p.add_argument("--C", type=int, default=16, help="supernet channels of the first stage")
    p.add_argument("--N", type=int, default=1, help="cells per stage")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--alpha-lr",
        type=float,
        default=3e-4,
        help="Adam lr of alpha (default 3e-4, DARTS' value for ~20k steps; short runs move "
        "alpha little, see docs/differentiable.md)",
    )
    p.add_argument("--seed", type=int, default=0, help="supernet init, search and retraining")
    p.add_argument(
        "--data-seed", type=int, default=42, help="MNIST-1D generator / split seed (paper: 42)"
    )
    p.add_argument("--storage", default=None, help="study storage (file); default in memory")
    p.add_argument("--checkpoint-dir", default=None, help="resume interrupted searches from here")
    p.add_argument("--no-baselines", action="store_true", help="skip the random-arch and CNN runs")
    p.add_argument(
        "--derive",
        choices=("both", "nb201", "darts"),
        default="both",
        help="cells retrained: argmax with none (nb201), without none (darts), or both",
    )
    p.add_argument(
        "--random-archs", type=int, default=1, help="random cells retrained as baselines (1)"
    )
    p.add_argument("--json", default=None, help="write every result to this JSON file")
    args = p.parse_args(argv)

    import torch

    from airda.nas.differentiable import DARTS, GDAS

    torch.set_num_threads(1)
    common = {"batch_size": args.batch_size, "seed": args.seed, "alpha_lr": args.alpha_lr}
    methods = {
        "darts1": lambda net: DARTS(net, order=1, **common),
        "darts2": lambda net: DARTS(net, order=2, **common),
        "gdas": lambda net: GDAS(net, **common),
    }
    wanted = [m for m in args.methods.split(",") if m]
    for m in wanted:
        if m not in methods:
            raise SystemExit(f"unknown method {m!r}: one of {sorted(methods)}")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; load average at start "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rows = []
    for ds_name in [d for d in args.datasets.split(",") if d]:
        rows += run_dataset(args, ds_name, methods, wanted)
    if "mnist1d" in args.datasets.split(","):
        print(
            "\nGreydanus 2020, MNIST-1D test accuracy: "
            + ", ".join(f"{k} {v:.0%}" for k, v in GREYDANUS_MNIST1D.items())
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

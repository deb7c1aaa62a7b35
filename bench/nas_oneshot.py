"""One-shot NAS on real data, offline: SPOS (or the sandwich rule, or ENAS) + evolution on
MNIST-1D (Greydanus 2020, built with the ``mnist1d`` package's generator) with the 1-D
supernets, and on scikit-learn's bundled digits with the 2-D supernets.

For every (dataset, supernet) pair asked for, the script

1. trains the supernet (``airda.nas.oneshot.train_supernet``; uniform single paths for
   ``--method spos``, the sandwich rule for ``sandwich``, a REINFORCE controller for ``enas``),
2. searches it (``--method spos|sandwich``: regularized evolution over ``supernet.space``
   for ``--trials`` subnets, each scored by validation accuracy with inherited weights after
   batch-norm recalibration; ``enas``: the best of the controller's samples),
3. retrains the architecture found **from scratch** (``supernet.extract(arch)``, re-initialised)
   with the same loop and budget as the hand-designed baselines (``--retrain-epochs``), and
   reports its test accuracy and parameter count,
4. with ``--random-archs K``, retrains K uniformly random subnets of the same space the same
   way (does the search beat picking at random?),
5. with ``--baselines``, trains the hand-designed baselines of the MNIST-1D paper (logistic
   regression, MLP, CNN, bidirectional GRU, the sizes of the paper's notebook) with that same
   loop and budget, and prints the accuracies the paper reports beside them.

The wall clock of the complete search (supernet training + search) is measured on this
machine, with the load average before and after (other jobs share the cores).

Run: ``python bench/nas_oneshot.py --dataset mnist1d --supernet nb201 --baselines``
(``--help`` for every option; one thread by default: ``OMP_NUM_THREADS=1``).
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

# Reported in the MNIST-1D README (github.com/greydanus/mnist1d), test accuracy, default
# dataset (4,000 training / 1,000 test examples), the paper's own training protocol.
PUBLISHED_MNIST1D = {
    "logistic regression": 0.32,
    "MLP": 0.68,
    "CNN": 0.94,
    "GRU": 0.91,
    "human expert": 0.96,
}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ---- hand-designed baselines (the MNIST-1D paper's sizes) --------------------------------


def baselines(dims: int, length: int, num_classes: int):
    """name -> constructor of the hand-designed baselines for inputs (N, 1, L) or (N, 1, H, W)."""
    import torch
    from torch import nn

    n_in = length if dims == 1 else length * length

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(n_in, num_classes)

        def forward(self, x):
            return self.linear(x.flatten(1))

    class MLP(nn.Module):  # two hidden layers of 100, the second residual
        def __init__(self, hidden=100):
            super().__init__()
            self.a, self.b = nn.Linear(n_in, hidden), nn.Linear(hidden, hidden)
            self.out = nn.Linear(hidden, num_classes)

        def forward(self, x):
            h = self.a(x.flatten(1)).relu()
            return self.out(h + self.b(h).relu())

    class CNN(nn.Module):  # three strided convolutions of 25 channels, a linear read-out
        def __init__(self, channels=25):
            super().__init__()
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            self.convs = nn.Sequential(
                conv(1, channels, 5, stride=2, padding=1),
                nn.ReLU(),
                conv(channels, channels, 3, stride=2, padding=1),
                nn.ReLU(),
                conv(channels, channels, 3, stride=2, padding=1),
                nn.ReLU(),
            )
            with torch.no_grad():
                flat = self.convs(torch.zeros(1, 1, *([length] * dims))).numel()
            self.linear = nn.Linear(flat, num_classes)

        def forward(self, x):
            return self.linear(self.convs(x).flatten(1))

    class GRU(nn.Module):  # bidirectional, 6 hidden units, a linear read-out of every step
        def __init__(self, hidden=6):
            super().__init__()
            feat = 1 if dims == 1 else length
            self.gru = nn.GRU(feat, hidden, batch_first=True, bidirectional=True)
            self.linear = nn.Linear(2 * hidden * length, num_classes)

        def forward(self, x):
            seq = x.reshape(x.shape[0], length, -1)  # 1-D: steps of 1 value; 2-D: image rows
            out, _ = self.gru(seq)
            return self.linear(out.flatten(1))

    return {"logistic regression": Linear, "MLP": MLP, "CNN": CNN, "GRU": GRU}


# ---- supernets ----------------------------------------------------------------------------


def build_supernet(kind: str, dims: int, args):
    from airda.nas.supernet import ElasticSupernet, NB201Supernet

    if kind == "nb201":
        return NB201Supernet(dims=dims, in_channels=1, num_classes=10, C=args.C, N=args.N)
    stages = ((16, 3, 1), (32, 3, 2), (64, 3, 2))
    return ElasticSupernet(
        dims=dims,
        in_channels=1,
        num_classes=10,
        stem=16,
        stages=stages,
        kernel_sizes=(3, 5, 7) if dims == 1 else (3, 5),
        expand_ratios=(2, 4, 6),
        depths=(1, 2, 3),
    )


def get_evaluator(name: str):
    from airda.nas.evaluate import evaluate_loop, evaluate_many

    return evaluate_loop if name == "loop" else evaluate_many


def run_one(dataset: str, kind: str, args, data) -> dict:
    import numpy as np
    import torch

    from airda.nas.cost import count_params
    from airda.nas.oneshot import TrainConfig, enas, retrain, spos

    dims = 1 if dataset == "mnist1d" else 2
    torch.manual_seed(args.seed)
    supernet = build_supernet(kind, dims, args)
    evaluator = get_evaluator(args.evaluator)
    train_cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.wd
    )
    name = f"{dataset}-{kind}-{args.method}-seed{args.seed}"
    ckpt = os.path.join(args.workdir, f"{name}.pt") if args.workdir else None
    storage = os.path.join(args.workdir, "studies.db") if args.workdir else None

    def progress(epoch, m):
        if args.verbose:
            print(
                f"  epoch {epoch}: train loss {m['train_loss']:.3f}, probe val acc "
                f"{m['val_accuracy']:.3f}, {m['seconds']:.1f} s",
                flush=True,
            )

    load0 = _load()
    t0 = time.perf_counter()
    if args.method == "enas":
        res = enas(
            supernet,
            data,
            train_cfg,
            controller_steps=args.controller_steps,
            derive=args.derive,
            storage=storage,
            name=name,
            checkpoint=ckpt,
            evaluator=evaluator,
            seed=args.seed,
            callback=progress,
        )
    else:
        res = spos(
            supernet,
            data,
            train_cfg,
            n_trials=args.trials,
            rule="sandwich" if args.method == "sandwich" else "uniform",
            distill=args.method == "sandwich" and args.distill,
            batch=args.batch,
            storage=storage,
            name=name,
            checkpoint=ckpt,
            evaluator=evaluator,
            seed=args.seed,
            callback=progress,
        )
    search_wall = time.perf_counter() - t0
    load1 = _load()
    sub = supernet.extract(res.arch)
    out = {
        "dataset": dataset,
        "supernet": kind,
        "supernet_config": supernet.config,
        "supernet_params": count_params(supernet),
        "method": args.method,
        "arch": res.arch,
        "val_accuracy_inherited": res.val_accuracy,
        "subnet_params": count_params(sub),
        "search_wall_s": search_wall,
        "train_wall_s": res.training.seconds,
        "select_wall_s": res.search_seconds,
        "trials": len(res.search.trials),
        "supernet_final_probe_val": res.training.history[-1]["val_accuracy"],
        "load_before": load0,
        "load_after": load1,
    }
    # inherited weights on the test set (recalibrated), for reference
    inherited = evaluator(supernet, [res.arch], data.x_test, data.y_test, calib=data.x_train[:512])[
        0
    ]
    out["test_accuracy_inherited"] = inherited["accuracy"]
    rcfg = TrainConfig(
        epochs=args.retrain_epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.wd
    )
    t1 = time.perf_counter()
    rt = retrain(supernet, res.arch, data, rcfg, from_scratch=True, seed=args.seed)
    out["retrain"] = {k: v for k, v in rt.items() if k != "arch"}
    out["retrain_wall_s"] = time.perf_counter() - t1
    # control: uniformly random subnets of the same space, retrained the same way
    rng = np.random.default_rng([args.seed, 12345])
    out["random_archs"] = []
    for _ in range(args.random_archs):
        arch = supernet.sample(rng)
        r = retrain(supernet, arch, data, rcfg, from_scratch=True, seed=args.seed)
        out["random_archs"].append(r)
        print(
            f"  random subnet retrained: test acc {r['test_accuracy']:.4f}, params {r['params']:,}",
            flush=True,
        )
    print(
        f"[{dataset} / {kind} / {args.method}] search {search_wall:.0f} s "
        f"(supernet {res.training.seconds:.0f} s, selection {res.search_seconds:.0f} s, "
        f"{out['trials']} trials), load {load0:.1f} -> {load1:.1f}\n"
        f"  arch {res.arch}\n"
        f"  val acc (inherited, BN recalibrated) {res.val_accuracy:.4f}, "
        f"test acc inherited {inherited['accuracy']:.4f}\n"
        f"  retrained from scratch ({args.retrain_epochs} epochs): test acc "
        f"{rt['test_accuracy']:.4f}, val {rt['val_accuracy']:.4f}, params {rt['params']:,}, "
        f"{out['retrain_wall_s']:.0f} s",
        flush=True,
    )
    return out


def run_baselines(dataset: str, args, data) -> list[dict]:
    import torch

    from airda.nas.oneshot import TrainConfig, train_model

    dims = 1 if dataset == "mnist1d" else 2
    length = data.x_train.shape[-1]
    cfg = TrainConfig(
        epochs=args.retrain_epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.wd
    )
    rows = []
    for name, cls in baselines(dims, length, 10).items():
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        r = train_model(cls(), data, cfg, seed=args.seed)
        r.update(name=name, dataset=dataset, wall_s=time.perf_counter() - t0)
        if dataset == "mnist1d":
            r["published"] = PUBLISHED_MNIST1D[name]
        rows.append(r)
        pub = f", published {r['published']:.0%}" if "published" in r else ""
        print(
            f"[{dataset} baseline] {name}: test acc {r['test_accuracy']:.4f}{pub}, "
            f"params {r['params']:,}, {r['wall_s']:.0f} s",
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", choices=["mnist1d", "digits", "both"], default="mnist1d")
    p.add_argument("--supernet", choices=["nb201", "elastic", "both"], default="both")
    p.add_argument("--method", choices=["spos", "sandwich", "enas"], default="spos")
    p.add_argument("--epochs", type=int, default=30, help="supernet training epochs")
    p.add_argument("--trials", type=int, default=150, help="subnets the evolution evaluates")
    p.add_argument("--batch", type=int, default=10, help="subnets evaluated together")
    p.add_argument("--retrain-epochs", type=int, default=40, help="also the baselines' epochs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--wd", type=float, default=4e-5)
    p.add_argument("--C", type=int, default=16, help="NB201 supernet: first-stage channels")
    p.add_argument("--N", type=int, default=3, help="NB201 supernet: cells per stage")
    p.add_argument("--distill", action="store_true", help="sandwich: in-place distillation")
    p.add_argument("--controller-steps", type=int, default=10, help="enas: per epoch")
    p.add_argument("--derive", type=int, default=20, help="enas: final samples")
    p.add_argument("--evaluator", choices=["loop", "many"], default="loop")
    p.add_argument("--baselines", action="store_true", help="train the hand-designed ones")
    p.add_argument(
        "--random-archs", type=int, default=0, help="also retrain this many random subnets"
    )
    p.add_argument("--no-search", action="store_true", help="only the baselines")
    p.add_argument("--workdir", default=None, help="checkpoints + SQLite studies (resumable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print every supernet epoch")
    p.add_argument("--out", default=None, help="write the results as JSON")
    args = p.parse_args(argv)

    import torch

    from airda.nas import data as nas_data

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    print(
        f"machine: {_cpu()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"load average {_load():.2f}; python {sys.version.split()[0]}, torch {torch.__version__}",
        flush=True,
    )
    datasets = ["mnist1d", "digits"] if args.dataset == "both" else [args.dataset]
    kinds = ["nb201", "elastic"] if args.supernet == "both" else [args.supernet]
    results: dict = {"args": vars(args), "machine": _cpu(), "runs": [], "baselines": []}
    for ds in datasets:
        t0 = time.perf_counter()
        data = nas_data.mnist1d(args.seed) if ds == "mnist1d" else nas_data.digits(args.seed)
        print(
            f"{ds}: train {tuple(data.x_train.shape)}, val {tuple(data.x_val.shape)}, "
            f"test {tuple(data.x_test.shape)} ({time.perf_counter() - t0:.1f} s to build)",
            flush=True,
        )
        if args.baselines:
            results["baselines"] += run_baselines(ds, args, data)
        if not args.no_search:
            for kind in kinds:
                results["runs"].append(run_one(ds, kind, args, data))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""evaluate_many against evaluate_loop (extract each subnet, recalibrate its batch norms, evaluate
it), in the same run, with results equal to within 1e-5.

Populations of P subnets of the NB201 supernet and of the elastic (Once-for-All style) space,
2-D, inputs 3x16x16, batch 256 (256 calibration inputs, 256 evaluation inputs), two kinds:
``random`` (uniform subnets) and ``evolution`` (as regularized evolution grows a population:
4 random parents, then each child is ``supernet.mutate`` of a random earlier member).

- ``pytest bench/test_evaluate_many.py``: P = 8 and 32, both supernets and populations; the
  ratios are printed at the end (bench/conftest.py). ``--benchmark-disable`` (the CI smoke run)
  runs each body once on tiny supernets, P = 4, batch 8.
- ``python bench/test_evaluate_many.py [--P 8,32,128] [--out FILE]``: the full grid as a
  Markdown table (wall and CPU seconds of each side, the trie's size); what docs/evaluate_many.md
  quotes.

evaluate_many runs 2-D supernets on channels-last activations on the CPU (its default); the
loop, like a user's own loop over extracted subnets, gets the inputs as they come (NCHW). So
that the gain from the layout is not mistaken for the gain from sharing, both the pytest run
and the grid also time the loop on channels-last inputs.

Single-threaded torch (the machine has 2 cores shared with other jobs).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import platform
import sys
import time
from typing import Any

import numpy as np
import pytest
import torch

from airda.nas.evaluate import _Trie, evaluate_loop, evaluate_many
from airda.nas.supernet import ElasticSupernet, NB201Supernet, Supernet

TOLERANCE = 1e-5
SHAPE = (3, 16, 16)
BATCH = 256


def make_supernet(kind: str, smoke: bool = False) -> Supernet:
    torch.manual_seed(0)
    if kind == "nb201":
        net = NB201Supernet(dims=2, C=4, N=1) if smoke else NB201Supernet(dims=2, C=8, N=2)
    else:
        stages = ((4, 2, 1), (8, 2, 2)) if smoke else ((16, 4, 1), (24, 4, 2), (32, 4, 2))
        net = ElasticSupernet(
            dims=2, stem=4 if smoke else 8, stages=stages, depths=(2, 3, 4)[: 1 if smoke else 3]
        )
    return net.eval()


def population(net: Supernet, size: int, kind: str, seed: int = 0) -> list[dict[str, Any]]:
    """`size` subnets: uniform, or grown by mutation from 4 random parents."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return [net.sample(rng) for _ in range(size)]
    pop = [net.sample(rng) for _ in range(min(4, size))]
    while len(pop) < size:
        pop.append(net.mutate(pop[int(rng.integers(len(pop)))], rng))
    return pop


def data(smoke: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = 8 if smoke else BATCH
    shape = (3, 8, 8) if smoke else SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((n, *shape), generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    calib = torch.randn((n, *shape), generator=gen)
    return x, y, calib


def max_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float:
    return max(
        max(abs(r["loss"] - s["loss"]), abs(r["accuracy"] - s["accuracy"]))
        for r, s in zip(a, b, strict=True)
    )


# ---- pytest-benchmark ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(request) -> bool:
    return bool(request.config.getoption("benchmark_disable"))


_LOOP_RESULTS: dict[tuple[str, str, int], list[dict[str, Any]]] = {}


@pytest.mark.parametrize("method", ["loop", "loop_cl", "many"])
@pytest.mark.parametrize("size", [8, 32])
@pytest.mark.parametrize("kind", ["evolution", "random"])
@pytest.mark.parametrize("space", ["elastic", "nb201"])
def test_evaluate_many(timed, smoke, space, kind, size, method):
    torch.set_num_threads(1)
    if smoke and size != 8:
        pytest.skip("the smoke run covers P = 4 only")
    net = make_supernet(space, smoke)
    archs = population(net, 4 if smoke else size, kind)
    x, y, calib = data(smoke)
    batch = 8 if smoke else BATCH
    group = f"evaluate {space} {kind} P={len(archs)} batch {batch} with BN recalibration"
    case = (space, kind, size)

    def run(fn):
        return fn(net, archs, x, y, calib=calib, batch_size=batch)

    if method == "loop":
        _LOOP_RESULTS[case] = timed(
            group, "evaluate_loop", run, evaluate_loop, rounds=1, warmup=0, baseline=True
        )
        return
    if method == "loop_cl":
        # the loop given channels-last inputs (2-D): the layout evaluate_many uses on CPU
        cl = torch.channels_last
        x, calib = x.contiguous(memory_format=cl), calib.contiguous(memory_format=cl)
        timed(group, "evaluate_loop, channels-last inputs", run, evaluate_loop, rounds=1, warmup=0)
        return
    many = timed(group, "evaluate_many", run, evaluate_many, rounds=1, warmup=0)
    loop = _LOOP_RESULTS.get(case) or run(evaluate_loop)
    assert max_difference(many, loop) <= TOLERANCE


# ---- the full grid ---------------------------------------------------------------------------


def _measure(fn, *args, **kwargs) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--P", default="8,32,128", help="population sizes")
    parser.add_argument("--spaces", default="elastic,nb201")
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(p) for p in args.P.split(",")]
    x, y, calib = data()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    calib_cl = calib.contiguous(memory_format=torch.channels_last)
    load = os.getloadavg()
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__} with 1 thread; load average at start {load[0]:.1f}",
        "",
        "| supernet | population | P | trie nodes / P x layers | loop wall s | many wall s | "
        "ratio (wall) | loop CPU s | many CPU s | ratio (CPU) | channels-last loop CPU s | "
        "ratio to it (CPU) | max diff |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    print("\n".join(lines), flush=True)
    for space in args.spaces.split(","):
        net = make_supernet(space)
        for kind in ("evolution", "random"):
            for size in sizes:
                archs = population(net, size, kind)
                trie = _Trie.build([net.path(a) for a in archs])
                many, w_many, c_many = _measure(
                    evaluate_many, net, archs, x, y, calib=calib, batch_size=BATCH
                )
                loop, w_loop, c_loop = _measure(
                    evaluate_loop, net, archs, x, y, calib=calib, batch_size=BATCH
                )
                _, _, c_cl = _measure(
                    evaluate_loop, net, archs, x_cl, y, calib=calib_cl, batch_size=BATCH
                )
                diff = max_difference(many, loop)
                line = (
                    f"| {space} | {kind} | {size} | {trie.nodes()} / {size * len(trie.levels)} | "
                    f"{w_loop:.1f} | {w_many:.1f} | {w_loop / w_many:.2f}x | {c_loop:.1f} | "
                    f"{c_many:.1f} | {c_loop / c_many:.2f}x | {c_cl:.1f} | {c_cl / c_many:.2f}x | "
                    f"{diff:.1e} |"
                )
                print(line, flush=True)
                lines.append(line)
                if diff > TOLERANCE:
                    print(f"results differ by {diff} > {TOLERANCE}", file=sys.stderr)
                    return 1
    load = os.getloadavg()
    lines.append("")
    lines.append(f"load average at the end {load[0]:.1f}")
    print(lines[-1])
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

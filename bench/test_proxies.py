"""Zero-cost proxy throughput on NAS-Bench-201 networks: all ten proxies with the passes shared
(one forward pass of the batch for snip, grad_norm, fisher, grasp, jacob_cov and naswot)
against the same proxies computed one at a time

- as NASLib does (the baseline, ``shared=False``): a forward and a backward pass per proxy,
  each backward computing every parameter's gradient as NASLib's ``loss.backward()`` does,
  grasp's gradient pass apart from its Hessian-vector pass, each proxy on a copy of the network
  collected afterwards (NASLib's measure wrapper: ``get_prunable_copy``, ``gc.collect()``);
- with each proxy's minimal passes (one single-proxy evaluator per proxy: its backward pass
  computes only what that proxy reads, grasp's g and H g from one forward pass), the
  cheapest one-at-a-time schedule, for comparison.

CPU, batch 64 of 32x32x3 random inputs, the CIFAR-10 network (C=16, N=5), 10 architectures
per round: a round's time / 10 is the time per architecture. Target: >= 2x the architectures
per second of NASLib's passes, with identical scores (asserted, bit for bit). With
``--benchmark-disable`` (the CI smoke run) every body runs once on 2 small networks (one cell
per stage) at batch 8.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch

from airda.nas import Arch, ZeroCostEvaluator, build_model, proxy_names

ARCHS = 10
BATCH = 64
SMOKE_ARCHS, SMOKE_BATCH, SMOKE_CELLS = 2, 8, 1
GROUP = f"zero-cost suite (10 proxies), {ARCHS} NB201 CIFAR-10 archs per round, CPU batch {BATCH}"


@pytest.fixture
def smoke(request) -> bool:
    return bool(request.config.getoption("benchmark_disable"))


@functools.cache
def networks(smoke: bool) -> tuple[torch.nn.Module, ...]:
    """Architectures drawn from the 15,625 with a fixed seed, each initialised from its own."""
    rng = random.Random(0)
    count, cells = (SMOKE_ARCHS, SMOKE_CELLS) if smoke else (ARCHS, 5)
    models = []
    for i in range(count):
        arch = Arch.from_index(rng.randrange(15625))
        torch.manual_seed(i)
        models.append(build_model(arch, num_classes=10, N=cells))
    return tuple(models)


def score_all(evaluator: ZeroCostEvaluator, models: tuple[torch.nn.Module, ...]) -> list[dict]:
    return [evaluator.score(m) for m in models]


def evaluator(smoke: bool, *, shared: bool) -> ZeroCostEvaluator:
    batch = SMOKE_BATCH if smoke else BATCH
    return ZeroCostEvaluator(proxy_names(), batch_size=batch, shared=shared)


@functools.cache
def shared_scores(smoke: bool) -> list[dict]:
    return score_all(evaluator(smoke, shared=True), networks(smoke))


def test_shared_passes(timed, smoke):
    models = networks(smoke)
    scores = timed(
        GROUP,
        "shared passes",
        score_all,
        evaluator(smoke, shared=True),
        models,
        rounds=2,
        warmup=0,
    )
    assert_same(scores, shared_scores(smoke))


def test_one_proxy_at_a_time_as_naslib(timed, smoke):
    models = networks(smoke)
    scores = timed(
        GROUP,
        "one at a time, NASLib's passes",
        score_all,
        evaluator(smoke, shared=False),
        models,
        rounds=2,
        warmup=0,
        baseline=True,
    )
    assert_same(scores, shared_scores(smoke))


def test_one_proxy_at_a_time_minimal(timed, smoke):
    models = networks(smoke)
    batch = SMOKE_BATCH if smoke else BATCH
    singles = [ZeroCostEvaluator(p, batch_size=batch) for p in proxy_names()]

    def score_singly(models):
        return [
            {p: e.score(m)[p] for p, e in zip(proxy_names(), singles, strict=True)} for m in models
        ]

    scores = timed(GROUP, "one at a time, minimal passes", score_singly, models, rounds=2, warmup=0)
    assert_same(scores, shared_scores(smoke))


def assert_same(got: list[dict], expected: list[dict]) -> None:
    """Identical scores, bit for bit (a NaN jacob_cov equals a NaN)."""
    assert [list(s) for s in got] == [list(s) for s in expected]
    np.testing.assert_array_equal(
        [list(s.values()) for s in got], [list(s.values()) for s in expected]
    )

"""Fused DARTS mixed operation, forward + backward, against the unfused PyTorch expression
``(softmax(alpha).view(-1, 1, 1, 1, 1) * ys).sum(0)`` under autograd, on the CPU: K = 5
candidates of shape S = (64, 16, 32, 32), float32 (a DARTS edge at batch 64). The fused entries
run :func:`airda.nas.mixed_op` (the autograd function on the op) with the C++ backend, and the
NumPy/torch reference backend for comparison. Each entry checks its gradients against the
baseline's before it is timed.

With ``--benchmark-disable`` (the CI smoke run) every body runs once on S = (2, 3, 4, 5).
"""

from __future__ import annotations

import pytest
import torch

from airda import ops
from airda.nas import mixed_op

K = 5
FULL_SHAPE = (64, 16, 32, 32)
SMOKE_SHAPE = (2, 3, 4, 5)


@pytest.fixture
def data(request):
    smoke = request.config.getoption("benchmark_disable")
    shape = SMOKE_SHAPE if smoke else FULL_SHAPE
    gen = torch.Generator().manual_seed(0)
    ys = torch.randn((K, *shape), generator=gen).requires_grad_()
    alpha = torch.randn(K, generator=gen).requires_grad_()
    g = torch.randn(shape, generator=gen)
    return ys, alpha, g, f"mixed_op fwd+bwd K={K} S={shape} float32"


def unfused(ys: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return (torch.softmax(alpha, 0).view(-1, *[1] * (ys.dim() - 1)) * ys).sum(0)


def fwd_bwd(fn, ys, alpha, g):
    return torch.autograd.grad(fn(ys, alpha), (ys, alpha), g)


def check(got, ys, alpha, g) -> None:
    want = fwd_bwd(unfused, ys, alpha, g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_unfused_torch(timed, data):
    ys, alpha, g, group = data
    timed(
        group, "torch unfused (autograd)", fwd_bwd, unfused, ys, alpha, g, rounds=15, baseline=True
    )


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_fused(timed, data, backend):
    status = ops.backend_status(backend)
    if not status.usable:
        pytest.skip(f"{backend} backend unavailable: {status.reason}")
    ys, alpha, g, group = data

    def fused(y, a):
        return mixed_op(y, a, backend=backend)

    check(fwd_bwd(fused, ys, alpha, g), ys, alpha, g)
    timed(group, f"airda mixed_op {backend}", fwd_bwd, fused, ys, alpha, g, rounds=15)

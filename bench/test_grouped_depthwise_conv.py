"""grouped_depthwise_conv (elastic depthwise convolutions of G subnets, batch norm and ReLU
folded) against what a loop does: per group, PyTorch's depthwise ``conv2d`` on the cropped
weight, then ``batch_norm`` (eval) and ``relu``. G = 8 groups of batch 64, 16x16, widths 48 to
96 of a 96-channel weight, kernel sizes 3/5/7 (an elastic stage of 8 subnets), float32, one
thread. Each entry is checked against the baseline before it is timed.

On this CPU PyTorch's oneDNN depthwise convolution is faster than the C++ kernel for kernel
sizes 5 and 7 (see docs/evaluate_many.md), which is why evaluate_many uses PyTorch's
convolutions on the CPU and the grouped kernel on the GPU (Triton, one launch for all groups).

With ``--benchmark-disable`` every body runs once on G = 3 small groups.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from airda import ops


@pytest.fixture
def case(request):
    torch.set_num_threads(1)
    smoke = request.config.getoption("benchmark_disable")
    gen = torch.Generator().manual_seed(0)
    batch, size, widths = (2, 5, (3, 5, 4)) if smoke else (64, 16, (48, 96, 72, 96, 48, 72, 96, 60))
    ks = [(3, 5, 7)[i % 3] for i in range(len(widths))]
    w = torch.randn(96, 7, 7, generator=gen)
    xs = [torch.randn(batch, c, size, size, generator=gen) for c in widths]
    means = [torch.randn(c, generator=gen) * 0.1 for c in widths]
    vars_ = [torch.rand(c, generator=gen) + 0.5 for c in widths]
    gamma, beta = torch.rand(96, generator=gen) + 0.5, torch.randn(96, generator=gen)
    scales = [gamma[: len(m)] / torch.sqrt(v + 1e-5) for m, v in zip(means, vars_, strict=True)]
    shifts = [beta[: len(m)] - m * s for m, s in zip(means, scales, strict=True)]
    group = f"grouped depthwise conv G={len(xs)} batch {batch} {size}x{size} + BN + ReLU"

    def loop():
        out = []
        for x, k, m, v in zip(xs, ks, means, vars_, strict=True):
            c, lo = x.shape[1], (7 - k) // 2
            h = F.conv2d(x, w[:c, lo : lo + k, lo : lo + k].unsqueeze(1), padding=k // 2, groups=c)
            out.append(F.relu(F.batch_norm(h, m, v, gamma[:c], beta[:c], False, 0.0, 1e-5)))
        return out

    def grouped(backend):
        return ops.grouped_depthwise_conv(
            xs, w, ks, scales=scales, shifts=shifts, activation="relu", backend=backend
        )

    return group, loop, grouped


def test_torch_loop(timed, case):
    group, loop, _ = case
    with torch.no_grad():
        timed(group, "torch conv2d+BN+ReLU per group", loop, rounds=5, baseline=True)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_grouped(timed, case, backend):
    status = ops.backend_status(backend)
    if not status.usable:
        pytest.skip(f"{backend} backend unavailable: {status.reason}")
    group, loop, grouped = case
    with torch.no_grad():
        for a, b in zip(grouped(backend), loop(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        timed(group, f"airda grouped {backend}", grouped, backend, rounds=5)

"""naswot_score of a CNN with 1,048,576 ReLU units per sample at batch 64, against the plain
forward pass it needs (target: within 1.3x) and against the paper's float-matmul hooks.

Both run under torch.no_grad() in training mode (batch statistics), as the paper scores.
"""

from __future__ import annotations

import torch
from torch import nn

from airda.nas import naswot_score

BATCH = 64
WIDTH, SIDE, DEPTH = 32, 64, 8  # 8 ReLUs x 32 x 64 x 64 = 1,048,576 units per sample


def make_model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    c_in = 3
    for _ in range(DEPTH):
        layers += [
            nn.Conv2d(c_in, WIDTH, 3, padding=1, bias=False),
            nn.BatchNorm2d(WIDTH),
            nn.ReLU(inplace=True),
        ]
        c_in = WIDTH
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, 10)]
    return nn.Sequential(*layers).train()


def make_batch() -> torch.Tensor:
    return torch.randn(BATCH, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def paper_naswot(model: nn.Module, x: torch.Tensor) -> float:
    k = torch.zeros(x.shape[0], x.shape[0])

    def hook(_m, args, _out):
        nonlocal k
        c = (args[0].reshape(args[0].shape[0], -1) > 0).float()
        k = k + c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        forward(model, x)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(k.double())[1])


GROUP = f"naswot CNN 1M ReLU units/sample, batch {BATCH}"


def test_forward_pass(timed):
    model, x = make_model(), make_batch()
    assert DEPTH * WIDTH * SIDE * SIDE == 1_048_576
    timed(GROUP, "plain forward pass", forward, model, x, baseline=True)


def test_naswot_score(timed):
    model, x = make_model(), make_batch()
    score = timed(GROUP, "airda naswot_score", naswot_score, model, x)
    assert score > 0


def test_paper_naswot(timed):
    model, x = make_model(), make_batch()
    timed(GROUP, "paper's float hooks", paper_naswot, model, x, rounds=3)

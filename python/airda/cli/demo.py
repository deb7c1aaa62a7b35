"""``airda demo``: score a few small torch models with the NASWOT zero-cost proxy."""

from __future__ import annotations

import time
from typing import Any

from airda.cli._env import use_triton_interpreter_without_gpu


def _models(torch: Any) -> dict[str, Any]:
    nn = torch.nn

    def conv_stack(widths: list[int], pool_every: int) -> Any:
        layers: list[Any] = []
        c_in = 3
        for i, c_out in enumerate(widths):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            if (i + 1) % pool_every == 0:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
        return nn.Sequential(*layers)

    return {
        "mlp-256": nn.Sequential(
            nn.Flatten(), nn.Linear(3 * 32 * 32, 256), nn.ReLU(), nn.Linear(256, 10)
        ),
        "cnn-2x16": conv_stack([16, 16], pool_every=2),
        "cnn-4x32": conv_stack([32, 32, 32, 32], pool_every=2),
        "cnn-6x64": conv_stack([64, 64, 64, 64, 64, 64], pool_every=2),
        "cnn-8x32": conv_stack([32] * 8, pool_every=3),
    }


def run_demo(
    batch: int = 64, seed: int = 0, backend: str | None = None, device: str | None = None
) -> int:
    if batch < 2:
        raise ValueError(f"--batch must be at least 2, got {batch}")
    use_triton_interpreter_without_gpu()
    import torch

    from airda.nas import naswot_score

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, device=dev)
    print(
        f"NASWOT scores of untrained models on a random {batch}x3x32x32 batch ({dev}, "
        f"backend {backend or 'auto'}, seed {seed}); higher predicts better accuracy after "
        "training"
    )
    print(f"{'model':<10} {'params':>9} {'ReLU units':>11} {'score':>10} {'ms':>8}")
    results = []
    for name, model in _models(torch).items():
        model = model.to(dev).train()
        units = _relu_units(torch, model, x[:1])
        start = time.perf_counter()
        score = naswot_score(model, x, backend=backend)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1e3
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:<10} {params:>9,} {units:>11,} {score:>10.2f} {ms:>8.1f}", flush=True)
        results.append((score, name))
    best = max(results)
    print(f"best by NASWOT: {best[1]} ({best[0]:.2f})")
    return 0


def _relu_units(torch: Any, model: Any, sample: Any) -> int:
    units = 0

    def count(_m: Any, _args: Any, out: Any) -> None:
        nonlocal units
        units += out[0].numel()

    hooks = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.ReLU)
    ]
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(sample)
            model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return units

"""Measured latency of a model on the current device, for hardware-aware (multi-objective) NAS.

The latency is the median of repeated timed forward passes after untimed warm-up passes, under
``torch.inference_mode()``; on CUDA each pass is timed with CUDA events after a synchronise, so
queued work is not counted against the next pass.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

__all__ = ["Latency", "measure_latency"]


@dataclasses.dataclass(frozen=True)
class Latency:
    """Forward-pass latency: ``median_ms`` (the figure to optimise) and its spread."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int
    device: str

    def __float__(self) -> float:
        return self.median_ms


def measure_latency(
    model: Any,
    inputs: Any,
    *,
    repeats: int = 30,
    warmup: int = 5,
    device: Any = None,
) -> Latency:
    """Median latency (ms) of ``model(inputs)`` over ``repeats`` timed passes.

    Args:
        model: a ``torch.nn.Module`` (moved to ``device`` and put in eval mode).
        inputs: a tensor or a tuple of positional tensors (moved to ``device``).
        repeats: timed passes (>= 1). warmup: untimed passes first (>= 0).
        device: torch device; default: the inputs' device.

    Example:
        >>> import torch
        >>> from airda.nas.latency import measure_latency
        >>> lat = measure_latency(torch.nn.Linear(64, 64), torch.randn(8, 64), repeats=5)
        >>> lat.median_ms > 0, lat.repeats
        (True, 5)
    """
    import torch

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    dev = torch.device(device) if device is not None else args[0].device
    model = model.to(dev).eval()
    args = tuple(a.to(dev) for a in args)
    cuda = dev.type == "cuda"
    times: list[float] = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize(dev)
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                model(*args)
                end.record()
                end.synchronize()
                elapsed = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                model(*args)
                elapsed = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                times.append(elapsed)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Latency(statistics.median(times), q[2] - q[0], min(times), repeats, str(dev))

"""Shared test utilities."""

from __future__ import annotations

import pytest

from airda.ops import backend_status

# Every compiled backend is checked against the reference.
COMPILED_BACKENDS = ("cpu", "cuda", "triton")


def require_backend(name: str) -> None:
    """Skip the calling test, with the reason, when backend `name` cannot run here."""
    status = backend_status(name)
    if not status.usable:
        pytest.skip(f"backend {name!r} cannot run here: {status.reason}")


def device_for(backend: str) -> str:
    """Where a backend's test data must live."""
    if backend == "cuda":
        return "cuda"
    if backend == "triton":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"

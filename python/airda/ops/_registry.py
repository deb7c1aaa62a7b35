"""The op registry: which backends each op has, which can run here, and which one a call gets.

Every op has a ``reference`` backend (NumPy, written for clarity) and may register ``cpu``
(``airda._C``), ``cuda`` (``airda._C`` built with CUDA) and ``triton`` (``airda.kernels``).
A call picks a backend from where its data lives; ``backend=`` or the ``AIRDA_BACKEND``
environment variable forces one, and a forced backend that cannot run raises
:class:`BackendUnavailableError` saying why.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airda._native import native, native_error
from airda.kernels import interpreting as triton_interpreting
from airda.ops._arrays import ArrayInfo

BACKENDS = ("cpu", "cuda", "triton", "reference")
# Automatic choice, fastest first, by where the data lives. Triton on the CPU interpreter is
# for testing only, so host data never picks it unless forced.
_AUTO_ORDER = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")}


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run here; the message says why."""


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can run on this machine; `reason` says why not, or how it runs."""

    usable: bool
    reason: str = ""

    def __str__(self) -> str:
        if self.usable:
            return f"usable ({self.reason})" if self.reason else "usable"
        return f"unavailable: {self.reason}"


def _torch_cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


@functools.cache
def backend_status(name: str) -> BackendStatus:
    """Probe backend `name` once per process."""
    if name == "reference":
        return BackendStatus(True)
    if name == "cpu":
        error = native_error()
        if error is not None:
            return BackendStatus(False, f"airda._C is not importable ({error})")
        return BackendStatus(True)
    if name == "cuda":
        error = native_error()
        if error is not None:
            return BackendStatus(False, f"airda._C is not importable ({error})")
        c = native()
        if not c.cuda_built():
            return BackendStatus(
                False, "airda._C was built without CUDA (no nvcc at build time, or AIRDA_CUDA=OFF)"
            )
        try:
            count = c.cuda_device_count()
        except RuntimeError as exc:
            return BackendStatus(False, f"built, but no usable GPU: {exc}")
        if count == 0:
            return BackendStatus(False, "built, but no CUDA device is present")
        reason = _torch_cuda_reason()
        return BackendStatus(reason is None, reason or "")
    if name == "triton":
        try:
            import triton  # noqa: F401
        except ImportError as exc:
            return BackendStatus(False, f"triton is not installed ({exc}); pip install triton")
        if triton_interpreting():
            return BackendStatus(True, "CPU interpreter, TRITON_INTERPRET=1")
        reason = _torch_cuda_reason()
        if reason is not None:
            return BackendStatus(
                False, f"{reason}; set TRITON_INTERPRET=1 to run the kernels on the CPU interpreter"
            )
        return BackendStatus(True)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")


def _placement_problem(backend: str, info: ArrayInfo) -> str | None:
    """Why `backend` cannot take data placed as `info`, or None."""
    if backend == "reference":
        return None
    if backend == "cpu":
        return None if info.device == "cpu" else "it runs on host data (move it with .cpu())"
    if backend == "cuda":
        return None if info.device == "cuda" else "it needs a CUDA tensor (move it with .cuda())"
    if backend == "triton":
        if info.device == "cuda" or (info.device == "cpu" and triton_interpreting()):
            return None
        return "it needs a CUDA tensor, or host data with TRITON_INTERPRET=1"
    return f"unknown backend {backend!r}"


@dataclass
class Op:
    """One operation: its reference and its registered backend implementations."""

    name: str
    impls: dict[str, Callable[..., Any]]

    def select(self, info: ArrayInfo, backend: str | None) -> Callable[..., Any]:
        """The implementation a call with data `info` runs, honouring a forced backend."""
        if info.device not in _AUTO_ORDER:
            raise ValueError(
                f"{self.name}: cannot take {info.where}; ops take host data or CUDA tensors"
            )
        forced = backend if backend is not None else (os.environ.get("AIRDA_BACKEND") or None)
        if forced is not None:
            if forced not in BACKENDS:
                raise ValueError(
                    f"unknown backend {forced!r} for {self.name}; expected one of "
                    f"{', '.join(BACKENDS)}"
                )
            if forced not in self.impls:
                raise BackendUnavailableError(f"{self.name} has no {forced!r} backend")
            status = backend_status(forced)
            if not status.usable:
                raise BackendUnavailableError(
                    f"{self.name}: backend {forced!r} is unavailable: {status.reason}"
                )
            problem = _placement_problem(forced, info)
            if problem is not None:
                raise ValueError(
                    f"{self.name}: backend {forced!r} cannot take {info.where}: {problem}"
                )
            return self.impls[forced]
        for name in _AUTO_ORDER[info.device]:
            if name in self.impls and backend_status(name).usable:
                return self.impls[name]
        return self.impls["reference"]


_REGISTRY: dict[str, Op] = {}


def register_op(name: str, impls: dict[str, Callable[..., Any]]) -> Op:
    if "reference" not in impls:
        raise ValueError(f"op {name!r} must register a reference implementation")
    unknown = set(impls) - set(BACKENDS)
    if unknown:
        raise ValueError(f"op {name!r} registers unknown backends {sorted(unknown)}")
    op = Op(name, dict(impls))
    _REGISTRY[name] = op
    return op


def registered_ops() -> dict[str, Op]:
    return dict(_REGISTRY)


def available() -> dict[str, dict[str, BackendStatus]]:
    """Every registered op x backend, with whether it can run here and why not.

    Example:
        >>> import airda.ops
        >>> str(airda.ops.available()["hamming_gram"]["reference"])
        'usable'
    """
    table: dict[str, dict[str, BackendStatus]] = {}
    for name, op in sorted(_REGISTRY.items()):
        row = {}
        for backend in BACKENDS:
            if backend in op.impls:
                row[backend] = backend_status(backend)
            else:
                row[backend] = BackendStatus(False, f"{name} has no {backend} implementation")
        table[name] = row
    return table

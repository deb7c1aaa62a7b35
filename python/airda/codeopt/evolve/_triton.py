"""Triton specs of code evolution: where the kernels run (a CUDA device, or Triton's interpreter
on the CPU), the spec's inputs as torch tensors there, and the candidate program as the sandbox
worker runs it (its module imported from a file, its entry called, Triton's errors named).

Nothing here imports torch or triton at module level: the search's process only decides the
device; the kernels run in the sandbox worker, whose environment has ``TRITON_INTERPRET=1``
when there is no GPU (set before triton is imported there).

Example:
    >>> from airda.codeopt.evolve._triton import jit_kernels
    >>> src = '''
    ... import triton
    ... import triton.language as tl
    ... @triton.jit
    ... def k(x_ptr, BLOCK: tl.constexpr):
    ...     pass
    ... def launch(x):
    ...     k[(1,)](x, BLOCK=16)
    ... '''
    >>> jit_kernels(src)
    ['k']
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "TritonBench",
    "TritonImport",
    "TritonKernelError",
    "TritonProgram",
    "device_tensor",
    "jit_kernels",
    "triton_device",
]

#: The prefix of a worker's error that says a kernel did not compile (or, under the
#: interpreter, could not be run as Triton): the cascade reports it at the compile stage.
KERNEL_ERROR = "TritonKernelError: "


def _interpret_env() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.cache
def triton_device() -> tuple[str, str]:
    """``("cuda", device name)`` when torch sees a CUDA device and ``TRITON_INTERPRET`` is not
    set here; else ``("cpu", "triton interpreter")``: the kernels run under Triton's
    interpreter, and their times are not GPU times."""
    if _interpret_env():
        return "cpu", "triton interpreter"
    try:
        import torch
    except ImportError:
        return "cpu", "triton interpreter"
    if not torch.cuda.is_available():
        return "cpu", "triton interpreter"
    return "cuda", str(torch.cuda.get_device_name())


def _is_jit(dec: ast.expr) -> bool:
    node = dec.func if isinstance(dec, ast.Call) else dec
    if isinstance(node, ast.Attribute):
        return node.attr == "jit"
    return isinstance(node, ast.Name) and node.id == "jit"


def jit_kernels(source: str | ast.Module) -> list[str]:
    """The names of the module's top-level ``@triton.jit`` functions (``@jit``,
    ``@triton.jit(...)`` too); ``[]`` when the source does not parse."""
    try:
        tree = ast.parse(source) if isinstance(source, str) else source
    except SyntaxError:
        return []
    return [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and any(_is_jit(d) for d in n.decorator_list)
    ]


# ---- inputs ---------------------------------------------------------------------------------
#: Bytes of guard band before and after every array argument, filled with :data:`CANARY`: a
#: kernel that writes a little past an argument (a wrong mask) writes there, where it is seen,
#: instead of into the worker's heap (interpreter) or another allocation (GPU).
GUARD_BYTES = 64 << 10
CANARY = 0xA5


def _to_tensor(array: np.ndarray, device: str) -> Any:
    """In the worker: the array as a torch tensor on `device` (unpickling a
    :func:`device_tensor` calls this), a view into the middle of a buffer with
    :data:`GUARD_BYTES` of :data:`CANARY` bytes each side."""
    import torch

    src = torch.from_numpy(np.array(array, copy=True))
    nbytes = src.numel() * src.element_size()
    buf = torch.full((2 * GUARD_BYTES + nbytes,), CANARY, dtype=torch.uint8, device=device)
    body = buf[GUARD_BYTES : GUARD_BYTES + nbytes].view(src.dtype).view(src.shape)
    body.copy_(src)
    return body


def guard_violations(args: Sequence[Any]) -> list[str]:
    """The array arguments (made by :func:`_to_tensor`) whose guard bands a call changed:
    ``"argument I (SHAPE DTYPE): N bytes before/after it"``."""
    out = []
    for i, t in enumerate(args):
        if not (hasattr(t, "untyped_storage") and hasattr(t, "storage_offset")):
            continue
        import torch

        size = t.element_size()
        start = t.storage_offset() * size
        end = start + t.numel() * size
        storage = t.untyped_storage()
        if start != GUARD_BYTES or storage.nbytes() != end + GUARD_BYTES:
            continue  # not one of ours
        full = torch.empty(0, dtype=torch.uint8, device=t.device).set_(storage)
        before = int((full[:start] != CANARY).sum())
        after = int((full[end:] != CANARY).sum())
        if before or after:
            where = " and ".join(
                f"{n} bytes changed {side} it"
                for n, side in ((before, "before"), (after, "after"))
                if n
            )
            shape = "x".join(str(d) for d in t.shape) or "scalar"
            out.append(f"argument {i} ({shape} {str(t.dtype).removeprefix('torch.')}): {where}")
    return out


class _DeviceTensor:
    """A NumPy array that unpickles as a torch tensor on a device (the search's process never
    imports torch for it)."""

    def __init__(self, array: np.ndarray, device: str):
        self.array = np.ascontiguousarray(array)
        self.device = device

    def __reduce__(self) -> tuple[Any, ...]:
        return (_to_tensor, (self.array, self.device))


def device_tensor(value: Any, device: str) -> Any:
    """An argument of a Triton spec as it should reach the entry in the worker: arrays (NumPy
    or torch) become torch tensors on `device`, NumPy scalars Python numbers, tuples and lists
    are converted item by item, anything else is passed as it is."""
    if isinstance(value, np.ndarray):
        return _DeviceTensor(value, device)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return _DeviceTensor(value.detach().cpu().numpy(), device)
    if isinstance(value, tuple | list):
        return type(value)(device_tensor(v, device) for v in value)
    return value


# ---- the program in the worker --------------------------------------------------------------
class TritonKernelError(RuntimeError):
    """A kernel that Triton could not compile (on a GPU) or run as Triton (interpreter)."""


_MODULES: dict[str, Any] = {}  # per worker: digest -> the imported candidate module


def _load_module(source: str) -> Any:
    """Import `source` from a file (Triton reads a kernel's source with :mod:`inspect`, so a
    string executed in memory would not do), once per worker."""
    import importlib.util

    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    module = _MODULES.get(digest)
    if module is not None:
        return module
    folder = tempfile.mkdtemp(prefix="airda-triton-")
    path = os.path.join(folder, "candidate.py")
    with open(path, "w") as f:
        f.write(source)
    name = f"airda_evolve_triton_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _MODULES[digest] = module
    return module


def _where(exc: BaseException) -> str:
    """`` (candidate.py line N: `code`)``: the deepest frame of the candidate's file in the
    exception's traceback (or its cause's), or ``""``."""
    for e in (exc, exc.__cause__):
        if e is None or e.__traceback__ is None:
            continue
        frames = [
            f
            for f in traceback.extract_tb(e.__traceback__)
            if os.path.basename(f.filename) == "candidate.py"
        ]
        if frames:
            f = frames[-1]
            return f" (candidate.py line {f.lineno}: `{(f.line or '').strip()}`)"
    return ""


def _kernel_message(exc: BaseException) -> str:
    """One readable line from a Triton compilation or interpreter error."""
    src = getattr(exc, "src", None)
    node = getattr(exc, "node", None)
    cause = exc.__cause__
    # a device function's error is wrapped once per call level: the innermost one says it
    while cause is not None and cause.__cause__ is not None and isinstance(cause, _kernel_errors()):
        cause = cause.__cause__
    if cause is not None:
        text = f"{type(cause).__name__}: {cause}"
    else:
        text = str(getattr(exc, "error_message", None) or exc)
    text = " ".join(text.split())
    # a CompilationError knows the kernel's line: its source and the node
    if src is not None and getattr(node, "lineno", None):
        lines = str(src).split("\n")
        if 0 < node.lineno <= len(lines):
            return f"{text} (kernel line `{lines[node.lineno - 1].strip()}`)"
    return f"{text}{_where(cause or exc)}"


def _kernel_errors() -> tuple[type[BaseException], ...]:
    out: list[type[BaseException]] = []
    try:
        from triton.compiler.errors import CompilationError

        out.append(CompilationError)
    except ImportError:  # pragma: no cover - another Triton layout
        pass
    try:
        from triton.runtime.errors import InterpreterError

        out.append(InterpreterError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(out)


class TritonProgram:
    """A candidate Triton module, picklable by value: called in the worker with the spec's
    arguments, it imports its source (first call), calls the entry, waits for the device, and
    returns the entry's result, or the arguments marked as outputs when the entry returns None.

    A kernel Triton cannot compile (or, interpreted, run) raises :class:`TritonKernelError`
    with Triton's message and the kernel's line; one that wrote into an argument's guard band
    (see :func:`guard_violations`) raises ``RuntimeError`` (`guard`: checked after each call;
    the copy that is timed, :meth:`timed`, does not check)."""

    def __init__(
        self,
        source: str,
        entry: str,
        outputs: Sequence[int] = (),
        device: str = "cpu",
        guard: bool = True,
    ):
        self.source = source
        self.entry = entry
        self.outputs = tuple(int(i) for i in outputs)
        self.device = device
        self.guard = guard
        self._fn: Any = None

    def timed(self) -> TritonProgram:
        """The same program without the guard-band check after each call."""
        return TritonProgram(self.source, self.entry, self.outputs, self.device, guard=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "entry", "outputs", "device", "guard")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fn = None

    def load(self) -> Any:
        """The entry function (the module is imported on the first call)."""
        if self._fn is None:
            fn = getattr(_load_module(self.source), self.entry, None)
            if not callable(fn):
                raise NameError(f"the module defines no function {self.entry!r}")
            self._fn = fn
        return self._fn

    def _sync(self) -> None:
        if self.device != "cpu":
            import torch

            torch.cuda.synchronize()

    def launch(self, *args: Any) -> Any:
        """Call the entry once and wait for the device; Triton's errors become
        :class:`TritonKernelError`."""
        fn = self.load()
        try:
            value = fn(*args)
            self._sync()
        except _kernel_errors() as exc:
            raise TritonKernelError(_kernel_message(exc)) from None
        return value

    def __call__(self, *args: Any) -> Any:
        value = self.launch(*args)
        bad = guard_violations(args) if self.guard else []
        if bad:
            raise RuntimeError(
                "out-of-bounds write: the kernel wrote outside "
                + "; ".join(bad)
                + " (a mask or a grid that does not cover the sizes?)"
            )
        if value is not None:
            return value
        if not self.outputs:
            raise ValueError(
                f"{self.entry} returned None: return the output tensor(s), or mark outputs "
                "with ':out' in args"
            )
        out = [args[i] for i in self.outputs]
        return out[0] if len(out) == 1 else tuple(out)


class TritonImport:
    """The compile stage in the worker: import the program's module and check its entry."""

    def __init__(self, program: TritonProgram):
        self.program = program

    def __call__(self, *args: Any) -> None:
        self.program.load()


class TritonBench:
    """GPU timing in the worker: per-call seconds of the entry on the spec's arguments by
    :func:`~airda.codeopt.triton_autotune.do_bench_gpu` (CUDA events, L2 flushed, CUDA-graph
    replay of short kernels); returns the list of samples."""

    def __init__(
        self,
        program: TritonProgram,
        rep_ms: float = 100.0,
        warmup_ms: float = 25.0,
        max_samples: int = 1000,
    ):
        self.program = program
        self.rep_ms = float(rep_ms)
        self.warmup_ms = float(warmup_ms)
        self.max_samples = int(max_samples)

    def __call__(self, *args: Any) -> list[float]:
        from airda.codeopt.triton_autotune import do_bench_gpu

        self.program.launch(*args)  # compile first, with Triton's errors named
        fn = self.program.load()
        return [
            float(s)
            for s in do_bench_gpu(
                lambda: fn(*args),
                rep_ms=self.rep_ms,
                warmup_ms=self.warmup_ms,
                max_samples=self.max_samples,
            )
        ]

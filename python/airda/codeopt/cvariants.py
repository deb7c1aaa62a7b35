"""C/C++ variants: argument descriptions, the generated trampoline, and parallel compilation
into a content-addressed cache of shared libraries.

The user's entry function keeps its ordinary C signature. Every variant is compiled with an
appended trampoline ``airda_call(void** a)`` that unpacks the argument array into that
signature, so the timing core calls every variant the same way.

Example:
    >>> from airda.codeopt import Arg, parse_arg
    >>> a = parse_arg("float32[N*N]:rand", {"N": 4})
    >>> a.ctype, a.shape, a.init, a.out
    ('float', (16,), 'rand', False)
    >>> parse_arg("float32[N*N]:zeros:out", {"N": 4}).out
    True
    >>> parse_arg("int32=N", {"N": 4}).value
    4
    >>> print(trampoline("scale", [Arg("float32", shape=(8,)), Arg("int32", value=8)]))
    #ifdef __cplusplus
    extern "C"
    #endif
    void airda_call(void** a) { scale((float*)a[0], *(int*)a[1]); }
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Arg",
    "CompileError",
    "cache_dir",
    "compile_variant",
    "compile_variants",
    "compiler_version",
    "parse_arg",
    "trampoline",
]

_CTYPES = {
    "float32": "float",
    "float64": "double",
    "int8": "signed char",
    "uint8": "unsigned char",
    "int16": "short",
    "uint16": "unsigned short",
    "int32": "int",
    "uint32": "unsigned int",
    "int64": "long long",
    "uint64": "unsigned long long",
}
_INITS = ("rand", "randn", "zeros", "ones", "arange")


class CompileError(RuntimeError):
    """A variant did not compile; the message holds the compiler's output (shortened)."""


@dataclass(frozen=True)
class Arg:
    """One argument of the entry function.

    Args:
        dtype: ``float32``, ``float64``, ``int8`` ... ``uint64``.
        shape: the array's shape (an array argument, passed as a pointer); None for a scalar.
        init: how an array is filled: ``rand`` (uniform [0, 1)), ``randn``, ``zeros``, ``ones``,
            ``arange`` (0, 1, 2, ...). Every variant and the reference see the same values,
            reset before every checked call.
        out: the array is an output, compared with the reference's by the correctness gate.
        value: a scalar argument's value (passed by value).
        name: a label for messages.
    """

    dtype: str
    shape: tuple[int, ...] | None = None
    init: str = "rand"
    out: bool = False
    value: int | float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in _CTYPES:
            raise ValueError(f"argument dtype must be one of {sorted(_CTYPES)}, got {self.dtype!r}")
        if self.shape is None:
            if self.value is None:
                raise ValueError(f"scalar argument {self.name or self.dtype!r} needs a value")
            if self.out:
                raise ValueError("a scalar argument cannot be an output (pass an array)")
        else:
            shape = tuple(int(s) for s in self.shape)
            if any(s < 0 for s in shape):
                raise ValueError(f"argument shape must be non-negative, got {shape}")
            object.__setattr__(self, "shape", shape)
            if self.init not in _INITS:
                raise ValueError(f"argument init must be one of {_INITS}, got {self.init!r}")

    @property
    def ctype(self) -> str:
        return _CTYPES[self.dtype]

    @property
    def is_array(self) -> bool:
        return self.shape is not None

    def describe(self) -> str:
        if self.shape is None:
            return f"{self.dtype}={self.value}"
        dims = "x".join(str(s) for s in self.shape)
        return f"{self.dtype}[{dims}]:{self.init}" + (":out" if self.out else "")

    def make(self, rng: np.random.Generator) -> Any:
        """The initial value: a C-contiguous array, or a NumPy scalar."""
        dt = np.dtype(self.dtype)
        if self.shape is None:
            return np.array(self.value, dtype=dt)
        n = int(np.prod(self.shape)) if self.shape else 1
        if self.init == "zeros":
            a = np.zeros(n, dt)
        elif self.init == "ones":
            a = np.ones(n, dt)
        elif self.init == "arange":
            a = np.arange(n).astype(dt)
        elif self.init == "randn":
            a = rng.standard_normal(n).astype(dt)
        elif dt.kind == "f":
            a = rng.random(n).astype(dt)
        else:
            a = rng.integers(0, 100, n).astype(dt)
        return np.ascontiguousarray(a.reshape(self.shape))


_ARRAY_RE = re.compile(r"^(\w+)\[([^\]]*)\](.*)$")
_SCALAR_RE = re.compile(r"^(\w+)=(.+)$")


def _eval_expr(expr: str, names: Mapping[str, Any]) -> int | float:
    """Evaluate an arithmetic expression over `names` (+ - * / // % ** and parentheses)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"unknown name {node.id!r} in {expr!r} (define it with --define)")
            v = names[node.id]
            return _eval_expr(str(v), {}) if isinstance(v, str) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops = {
                ast.Add: lambda: a + b,
                ast.Sub: lambda: a - b,
                ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b,
                ast.FloorDiv: lambda: a // b,
                ast.Mod: lambda: a % b,
                ast.Pow: lambda: a**b,
            }
            if type(node.op) in ops:
                return ops[type(node.op)]()
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(f"unsupported expression {expr!r}")

    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse expression {expr!r}") from None
    return ev(tree)


def parse_arg(text: str, defines: Mapping[str, Any] | None = None) -> Arg:
    """Parse an argument description.

    ``DTYPE[SHAPE]:INIT[:out]`` for an array (SHAPE: comma-separated expressions over the
    defines, e.g. ``N*N`` or ``M,K``; INIT one of rand, randn, zeros, ones, arange) and
    ``DTYPE=EXPR`` for a scalar passed by value.
    """
    names = dict(defines or {})
    text = text.strip()
    m = _ARRAY_RE.match(text)
    if m:
        dtype, dims, rest = m.groups()
        shape = tuple(int(_eval_expr(d, names)) for d in dims.split(",") if d.strip())
        parts = [p for p in rest.split(":") if p]
        init, out = "rand", False
        for p in parts:
            if p == "out":
                out = True
            elif p in _INITS:
                init = p
            else:
                raise ValueError(f"argument {text!r}: unknown option {p!r} (init or 'out')")
        return Arg(dtype, shape=shape, init=init, out=out, name=text)
    m = _SCALAR_RE.match(text)
    if m:
        dtype, expr = m.groups()
        value = _eval_expr(expr, names)
        if dtype in _CTYPES and not dtype.startswith("float"):
            value = int(value)
        return Arg(dtype, value=value, name=text)
    raise ValueError(
        f"cannot parse argument {text!r}: expected DTYPE[SHAPE]:INIT[:out] or DTYPE=VALUE"
    )


def trampoline(entry: str, args: Sequence[Arg]) -> str:
    """C source of ``airda_call(void** a)`` calling ``entry`` with the declared arguments."""
    if not re.fullmatch(r"[A-Za-z_]\w*", entry):
        raise ValueError(f"entry must be a C identifier, got {entry!r}")
    parts = [
        f"({a.ctype}*)a[{i}]" if a.is_array else f"*({a.ctype}*)a[{i}]" for i, a in enumerate(args)
    ]
    return (
        '#ifdef __cplusplus\nextern "C"\n#endif\n'
        f"void airda_call(void** a) {{ {entry}({', '.join(parts)}); }}"
    )


def cache_dir() -> Path:
    """Where compiled variants are kept: ``$AIRDA_CACHE_DIR/tune`` or ``~/.cache/airda/codeopt``."""
    root = os.environ.get("AIRDA_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = (base if root else base / "airda") / "tune"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _default_compiler(cpp: bool) -> str:
    return os.environ.get("CXX" if cpp else "CC", "c++" if cpp else "cc")


_VERSIONS: dict[str, str] = {}


def compiler_version(compiler: str) -> str:
    """First line of ``compiler --version`` (part of every cache key)."""
    if compiler not in _VERSIONS:
        try:
            out = subprocess.run(
                [*shlex.split(compiler), "--version"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CompileError(f"compiler {compiler!r} cannot run: {exc}") from None
        lines = (out.stdout or out.stderr).splitlines()
        _VERSIONS[compiler] = lines[0] if lines else ""
    return _VERSIONS[compiler]


def _flag_list(flags: str | Sequence[str]) -> list[str]:
    return shlex.split(flags) if isinstance(flags, str) else [str(f) for f in flags]


def _define_flags(defines: Mapping[str, Any]) -> list[str]:
    out = []
    for k, v in sorted(defines.items()):
        if not re.fullmatch(r"[A-Za-z_]\w*", str(k)):
            raise ValueError(f"define name must be a C identifier, got {k!r}")
        out.append(f"-D{k}={v}")
    return out


def compile_variant(
    source: str,
    entry: str,
    args: Sequence[Arg],
    *,
    defines: Mapping[str, Any] | None = None,
    flags: str | Sequence[str] = "-O2",
    cpp: bool = False,
    compiler: str | None = None,
    timeout: float = 120.0,
) -> Path:
    """Compile `source` (its text) with the trampoline into a shared library; return its path.

    The library is cached under :func:`cache_dir` by a hash of (source, trampoline, defines,
    flags, compiler and its version): compiling the same variant again costs nothing. Raises
    :class:`CompileError` with the compiler's message on failure.
    """
    cc = compiler or _default_compiler(cpp)
    flag_list = _flag_list(flags)
    define_list = _define_flags(defines or {})
    text = f"{source}\n\n/* generated by airda.codeopt */\n{trampoline(entry, args)}\n"
    key = hashlib.sha256(
        "\0".join([text, cc, compiler_version(cc), *define_list, "|", *flag_list]).encode()
    ).hexdigest()[:24]
    folder = cache_dir()
    lib = folder / f"{key}.so"
    if lib.exists():
        return lib
    suffix = ".cpp" if cpp else ".c"
    src = folder / f"{key}{suffix}"
    src.write_text(text)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".so.tmp")
    os.close(fd)
    cmd = [*shlex.split(cc), *flag_list, *define_list, "-shared", "-fPIC", str(src), "-o", tmp]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        Path(tmp).unlink(missing_ok=True)
        raise CompileError(f"compiler timed out after {timeout:g} s: {shlex.join(cmd)}") from None
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CompileError(f"compiler {cc!r} cannot run: {exc}") from None
    if out.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        msg = (out.stderr or out.stdout).strip()
        if len(msg) > 2000:
            msg = msg[:2000] + " ..."
        raise CompileError(f"compile failed ({' '.join(flag_list + define_list)}): {msg}")
    os.replace(tmp, lib)  # atomic: a concurrent compile of the same key is harmless
    return lib


def compile_variants(
    jobs: Sequence[Mapping[str, Any]], *, workers: int | None = None
) -> list[Path | CompileError]:
    """Compile several variants in parallel (a thread pool running the compiler).

    Each job is the keyword arguments of :func:`compile_variant`; the result for a job is its
    library path or the :class:`CompileError` it raised, in job order.
    """
    n = workers or max(1, min(len(jobs), os.cpu_count() or 1))

    def one(job: Mapping[str, Any]) -> Path | CompileError:
        try:
            return compile_variant(**job)
        except CompileError as exc:
            return exc

    if n == 1 or len(jobs) <= 1:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, jobs))

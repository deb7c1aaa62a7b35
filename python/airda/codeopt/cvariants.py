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
    extern "C" {
    #endif
    static unsigned long long* airda_beat_;
    void airda_set_beat(unsigned long long* p) { airda_beat_ = p; }
    void airda_call(void** a) {
        scale((float*)a[0], *(int*)a[1]);
        if (airda_beat_) ++*(volatile unsigned long long*)airda_beat_;
    }
    #ifdef __cplusplus
    }
    #endif
    >>> parse_arg("float32[2**40]")
    Traceback (most recent call last):
    ...
    ValueError: argument 'float32[2**40]' needs 4 TiB (1099511627776 float32 values); an argument may take at most 16 GiB
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_ARG_BYTES",
    "Arg",
    "CompileError",
    "cache_dir",
    "compile_variant",
    "compile_variants",
    "compiler_version",
    "first_compile_error",
    "name_compiled_copy",
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

#: The largest array argument, in bytes: the tuner builds it, and the worker keeps its initial
#: values and a working copy.
MAX_ARG_BYTES = 16 << 30
_MAX_DIM = 1 << 40


def _fmt_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


class CompileError(RuntimeError):
    """A variant did not compile; the message holds the compiler's full output."""


# A compiler message names the compiled copy of the kernel, <cache>/<24 hex digits>.c.
_COMPILED_COPY = re.compile(r"[^\s:'\"]*/[0-9a-f]{24}\.(?:c|cpp)\b")


def name_compiled_copy(message: str, name: str) -> str:
    """A compiler message with the compiled copy of the kernel (in the cache folder) called
    `name`: its lines are the kernel's, the trampoline comes after them."""
    return _COMPILED_COPY.sub(name, message)


def first_compile_error(message: str) -> str:
    """The compiler's first error line of a compile failure (the cache folder's path left out),
    or its first line."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for ln in lines:
        if re.search(r"\berror\b", ln, re.IGNORECASE) and not ln.startswith("compile failed"):
            return re.sub(r"^\S*/", "", ln)
    for ln in lines:
        if ln.startswith("compile failed") and ": " in ln:
            rest = ln.split("): ", 1)[-1].strip()
            if rest:
                return re.sub(r"^\S*/", "", rest)
    return lines[0] if lines else message


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
            info = np.iinfo(self.dtype) if np.dtype(self.dtype).kind in "iu" else None
            if info is not None and not info.min <= self.value <= info.max:
                raise ValueError(
                    f"scalar argument {self.name or self.dtype!r}: {self.value} does not fit "
                    f"{self.dtype} ({info.min}..{info.max})"
                )
        else:
            shape = tuple(int(s) for s in self.shape)
            if any(s < 0 for s in shape):
                raise ValueError(f"argument shape must be non-negative, got {shape}")
            object.__setattr__(self, "shape", shape)
            if self.init not in _INITS:
                raise ValueError(f"argument init must be one of {_INITS}, got {self.init!r}")
            n = math.prod(shape)
            nbytes = n * np.dtype(self.dtype).itemsize
            if nbytes > MAX_ARG_BYTES or any(s > _MAX_DIM for s in shape):
                label = self.name or f"{self.dtype}{list(shape)}"
                raise ValueError(
                    f"argument {label!r} needs {_fmt_bytes(nbytes)} ({n} {self.dtype} values); "
                    f"an argument may take at most {_fmt_bytes(MAX_ARG_BYTES)}"
                )

    @property
    def ctype(self) -> str:
        return _CTYPES[self.dtype]

    @property
    def is_array(self) -> bool:
        return self.shape is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the value (an array's elements, or one scalar)."""
        n = math.prod(self.shape) if self.shape is not None else 1
        return n * np.dtype(self.dtype).itemsize

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


# Bounds of the expression evaluator: a shape or a value is a small expression over the
# defines, never a computation (``10**10**10`` would run for ever, ``2**40`` elements fail
# later with an allocation error).
_MAX_EXPR = 256
_MAX_NODES = 64
_MAX_INT = 1 << 62


def _eval_expr(
    expr: str, names: Mapping[str, Any], *, integer: bool = False, _depth: int = 0
) -> int | float:
    """Evaluate an arithmetic expression over `names`, bounded: integers (and, unless
    `integer`, floats) combined by ``+ - * // **`` (and ``/ %`` unless `integer`) and
    parentheses; every operand and result within +-2**62."""
    text = str(expr).strip()
    if len(text) > _MAX_EXPR:
        raise ValueError(f"expression too long ({len(text)} characters, at most {_MAX_EXPR})")
    if _depth > 4:
        raise ValueError(f"expression {expr!r}: defines refer to each other too deeply")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ValueError(f"cannot parse expression {expr!r}") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise ValueError(f"expression {expr!r} is too complex")
    ops: dict[type, Any] = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: a // b,
        ast.Pow: _bounded_pow,
    }
    if not integer:
        ops[ast.Div] = lambda a, b: a / b
        ops[ast.Mod] = lambda a, b: a % b

    def check(v: Any) -> int | float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"unsupported value {v!r} in {expr!r}")
        if isinstance(v, float):
            if integer:
                raise ValueError(f"expression {expr!r}: a shape takes integers, got {v!r}")
            if not math.isfinite(v) or abs(v) > 1e300:
                raise ValueError(f"expression {expr!r}: value out of range")
        elif abs(v) > _MAX_INT:
            raise ValueError(f"expression {expr!r}: value too large (over 2**62)")
        return v

    def ev(node: ast.AST) -> int | float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return check(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"unknown name {node.id!r} in {expr!r} (define it with --define)")
            v = names[node.id]
            if isinstance(v, str):
                return _eval_expr(v, {}, integer=integer, _depth=_depth + 1)
            return check(v)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            a, b = ev(node.left), ev(node.right)
            try:
                return check(ops[type(node.op)](a, b))
            except ZeroDivisionError:
                raise ValueError(f"division by zero in {expr!r}") from None
            except OverflowError:
                raise ValueError(f"expression {expr!r}: value too large") from None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return check(-v if isinstance(node.op, ast.USub) else v)
        raise ValueError(f"unsupported expression {expr!r}")

    return ev(tree)


def _bounded_pow(a: int | float, b: int | float) -> int | float:
    """``a ** b`` refused before it is computed when the result would leave +-2**62."""
    if isinstance(a, int) and isinstance(b, int):
        if b < 0:
            raise ValueError(f"negative exponent in {a}**{b}")
        if abs(a) > 1 and (abs(a).bit_length() - 1) * b > 62:
            raise OverflowError
        return a**b
    if abs(b) > 4096:
        raise OverflowError
    r = float(a) ** float(b)
    if isinstance(r, complex):
        raise ValueError(f"{a}**{b} is not a real number")
    return r


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
        shape = tuple(int(_eval_expr(d, names, integer=True)) for d in dims.split(",") if d.strip())
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
    # The call counter (the sandbox's heartbeat: its timeout applies to each call) is a static
    # pointer set by the worker through airda_set_beat: a plain increment after the call, no
    # atomic, no lookup through the global offset table.
    return (
        '#ifdef __cplusplus\nextern "C" {\n#endif\n'
        "static unsigned long long* airda_beat_;\n"
        "void airda_set_beat(unsigned long long* p) { airda_beat_ = p; }\n"
        "void airda_call(void** a) {\n"
        f"    {entry}({', '.join(parts)});\n"
        "    if (airda_beat_) ++*(volatile unsigned long long*)airda_beat_;\n"
        "}\n"
        "#ifdef __cplusplus\n}\n#endif"
    )


def cache_dir() -> Path:
    """Where compiled variants are kept: ``$AIRDA_CACHE_DIR/tune``, else
    ``$XDG_CACHE_HOME/airda/tune``, else ``~/.cache/airda/tune``."""
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


_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def local_headers(text: str, folders: Sequence[str | os.PathLike[str]]) -> tuple[list[str], bool]:
    """The texts of the headers `text` includes with ``#include "..."`` (and those include),
    found in `folders`, and whether every one was found."""
    out, complete = [], True
    todo = [(text, [Path(f) for f in folders])]
    seen: set[Path] = set()
    while todo and len(seen) < 64:
        body, dirs = todo.pop()
        for name in _INCLUDE.findall(body):
            found = next((d / name for d in dirs if (d / name).is_file()), None)
            if found is None:
                complete = False
                continue
            found = found.resolve()
            if found in seen:
                continue
            seen.add(found)
            try:
                inner = found.read_text(errors="replace")
            except OSError:
                complete = False
                continue
            out.append(inner)
            todo.append((inner, [found.parent, *dirs]))
    return out, complete


def _define_flags(defines: Mapping[str, Any]) -> list[str]:
    out = []
    for k, v in sorted(defines.items()):
        if not re.fullmatch(r"[A-Za-z_]\w*", str(k)):
            raise ValueError(f"define name must be a C identifier, got {k!r}")
        out.append(f"-D{k}={v}")
    return out


# What a compile job writes goes to a private folder ``.build-<pid>-*`` inside the cache
# folder, renamed into place when done: a compile that is interrupted leaves no half-written
# library under a cache name, its folder is removed on the way out, and a folder left by a
# process that was killed outright is removed by the next compile.
_BUILD_PREFIX = ".build-"
_MAX_MESSAGE = 256 << 10
_SWEPT: set[Path] = set()


class _Batch:
    """The compilers one :func:`compile_variants` call runs: killed together when it is
    interrupted, and none started after that."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[str]] = set()
        self.stopped = False

    def kill(self) -> None:
        with self.lock:
            self.stopped = True
            procs = list(self.procs)
        for p in procs:
            with contextlib.suppress(OSError):
                p.kill()


_ALL = _Batch()  # compiles outside compile_variants (never stopped as a whole)
_LOCAL = threading.local()  # the batch of the calling thread


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale(folder: Path) -> None:
    """Remove build folders of processes that are gone, and the temporary files older versions
    of this module left (``*.so.tmp``) once they are ten minutes old."""
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for e in entries:
        if e.name.startswith(_BUILD_PREFIX):
            pid = e.name[len(_BUILD_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(e.path, ignore_errors=True)
        elif e.name.endswith(".so.tmp"):
            with contextlib.suppress(OSError):
                if now - e.stat().st_mtime > 600:
                    os.unlink(e.path)


def _run_compiler(cmd: list[str], timeout: float) -> tuple[int, str]:
    batch = getattr(_LOCAL, "batch", None) or _ALL
    with batch.lock:  # started and registered at once: an interruption sees every compiler
        if batch.stopped:
            raise CompileError("compile interrupted")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        batch.procs.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out or ""
    finally:
        if proc.poll() is None:  # timed out or interrupted: the compiler does not outlive us
            proc.kill()
            proc.wait()
        with batch.lock:
            batch.procs.discard(proc)


def _message(text: str) -> str:
    text = text.strip()
    if len(text) > _MAX_MESSAGE:
        more = len(text) - _MAX_MESSAGE
        text = text[:_MAX_MESSAGE] + f"\n... ({more} more characters of compiler output)"
    return text


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
    include_dirs: Sequence[str | os.PathLike[str]] = (),
) -> Path:
    """Compile `source` (its text) with the trampoline into a shared library; return its path.

    The library is cached under :func:`cache_dir` by a hash of (source, trampoline, defines,
    flags, compiler and its version): compiling the same variant again costs nothing. The
    source is kept beside it (``<hash>.c``), so the compiler's messages point at a file that
    exists. `include_dirs` are searched for ``#include "..."`` (the compiled copy of the source
    is not beside the original: pass the original's folder). Raises :class:`CompileError` with
    the compiler's whole message on failure.
    """
    cc = compiler or _default_compiler(cpp)
    flag_list = _flag_list(flags) + [f"-I{Path(d).resolve()}" for d in include_dirs]
    define_list = _define_flags(defines or {})
    text = f"{source}\n\n/* generated by airda.codeopt */\n{trampoline(entry, args)}\n"
    headers = local_headers(text, include_dirs)[0] if include_dirs else []
    key = hashlib.sha256(
        "\0".join(
            [text, *headers, cc, compiler_version(cc), *define_list, "|", *flag_list]
        ).encode()
    ).hexdigest()[:24]
    folder = cache_dir()
    lib = folder / f"{key}.so"
    if lib.exists():
        return lib
    _sweep_stale(folder)
    src = folder / f"{key}{'.cpp' if cpp else '.c'}"
    work = Path(tempfile.mkdtemp(prefix=f"{_BUILD_PREFIX}{os.getpid()}-", dir=folder))
    try:
        if not src.exists() or src.read_text() != text:
            staged = work / src.name
            staged.write_text(text)
            os.replace(staged, src)
        out = work / "variant.so"
        cmd = [*shlex.split(cc), *flag_list, *define_list, "-shared", "-fPIC", str(src), "-o"]
        try:
            rc, msg = _run_compiler([*cmd, str(out)], timeout)
        except subprocess.TimeoutExpired:
            raise CompileError(
                f"compiler timed out after {timeout:g} s: {shlex.join([*cmd, str(lib)])}"
            ) from None
        except OSError as exc:
            raise CompileError(f"compiler {cc!r} cannot run: {exc}") from None
        if rc != 0 or not out.exists():
            raise CompileError(
                f"compile failed ({' '.join(flag_list + define_list)}): {_message(msg)}"
            )
        os.replace(out, lib)  # atomic: a concurrent compile of the same key is harmless
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lib


def compile_variants(
    jobs: Sequence[Mapping[str, Any]], *, workers: int | None = None
) -> list[Path | CompileError]:
    """Compile several variants in parallel (a thread pool running the compiler).

    Each job is the keyword arguments of :func:`compile_variant`; the result for a job is its
    library path or the :class:`CompileError` it raised, in job order. Interrupted (Ctrl-C, or
    a SIGTERM the caller turned into an exception), it kills the compilers it started before
    the exception goes on, so that their build folders are removed.
    """
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    n = workers or max(1, min(len(jobs), os.cpu_count() or 1))

    def one(job: Mapping[str, Any]) -> Path | CompileError:
        try:
            return compile_variant(**job)
        except CompileError as exc:
            return exc

    if n == 1 or len(jobs) <= 1:
        return [one(j) for j in jobs]
    batch = _Batch()

    def bind() -> None:
        _LOCAL.batch = batch

    pool = ThreadPoolExecutor(n, initializer=bind)
    try:
        return list(pool.map(one, jobs))
    except BaseException:
        batch.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

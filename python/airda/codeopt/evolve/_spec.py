"""What an evolution searches: the reference implementation, how a candidate is checked, on
which inputs, and what is measured (:class:`EvolveSpec`, loadable from TOML).

Example:
    >>> from airda.codeopt.evolve import EvolveSpec
    >>> spec = EvolveSpec(
    ...     name="scale",
    ...     language="c",
    ...     source="void scale(double* y, const double* x, int n) {"
    ...            " for (int i = 0; i < n; ++i) y[i] = 2 * x[i]; }",
    ...     entry="scale",
    ...     args=["float64[64]:zeros:out", "float64[64]", "int32=64"],
    ... )
    >>> [a.describe() for a in spec.args]
    ['float64[64]:zeros:out', 'float64[64]:rand', 'int32=64']
    >>> spec.metric, spec.direction
    ('time', 'minimize')
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airda.codeopt.cvariants import Arg, parse_arg
from airda.codeopt.sandbox import Limits

__all__ = ["EvolveSpec"]

_LANGUAGES = ("c", "cpp", "python", "triton")
_METRICS = ("time", "score")


def _as_args(
    args: Sequence[Arg | str] | None, defines: Mapping[str, Any], what: str
) -> tuple[Arg, ...] | None:
    if args is None:
        return None
    if isinstance(args, str):
        raise TypeError(f"{what} must be a list of arguments, got a string")
    out = []
    for a in args:
        if isinstance(a, Arg):
            out.append(a)
        elif isinstance(a, str):
            try:
                out.append(parse_arg(a, defines))
            except ValueError as exc:
                raise ValueError(f"{what}: {exc}") from None
        else:
            raise TypeError(f"{what}: an argument is an Arg or its text, got {a!r}")
    return tuple(out)


@dataclass(frozen=True)
class EvolveSpec:
    """A reference implementation to evolve, its correctness check and its metric.

    Checked when made: a mistake is a ``ValueError`` before anything compiles.

    Attributes:
        name: a short name (the study's name starts with it).
        language: ``"c"``, ``"cpp"``, ``"python"`` or ``"triton"`` (a Python module of
            ``@triton.jit`` kernels and the launcher `entry`: torch tensors in, kernels
            launched; on a CUDA device when torch sees one, else under Triton's interpreter on
            the CPU, where times are interpreter times: see :attr:`interpreted`).
        source: the reference program's text (a path is read): the first parent of every
            candidate, the producer of the correct outputs and the baseline of the speed-up.
        entry: the function that is called (C: with `args`; Python: with the inputs).
        args: C/C++: the entry's arguments, :class:`~airda.codeopt.Arg` or their text
            (``"float64[N]:zeros:out"``, ``"int32=N"``, see :func:`~airda.codeopt.parse_arg`);
            at least one is an output, compared with the reference's. Triton: the same
            grammar (or `inputs`); arrays reach the launcher as torch tensors on the device,
            scalars as Python numbers; the outputs are what the launcher returns, or the
            ``:out`` tensors when it returns None.
        quick_args: C/C++/Triton: smaller arguments of the same types for the quick test that
            runs before the full one (odd sizes catch off-by-one edits early); None: no quick
            test.
        defines: names for the argument expressions, also passed as ``-D`` to the compiler.
        inputs / quick_inputs: Python (or Triton, instead of `args`): functions of no argument
            returning the tuple of the entry's arguments (full and quick); they run once, in
            this process. Triton: NumPy arrays and torch tensors among them reach the launcher
            as torch tensors on the device.
        metric: ``"time"`` (seconds per call, lower is better; the result is the speed-up
            over the reference with its interval) or ``"score"`` (``score(outputs)``, higher
            is better).
        score: the score function of ``metric="score"``: the candidate's outputs (a list:
            C's output arrays, or a Python entry's result) -> a finite number.
        verify: ``verify(outputs, expected) -> bool | str | None`` replacing the
            elementwise comparison (see :func:`~airda.codeopt.check_outputs`).
        atol / rtol: the elementwise tolerances of the correctness gate.
        flags: compiler flags of the reference and every candidate.
        compiler: the compiler command (default ``$CC`` / ``$CXX``).
        timeout: seconds one call may take before the candidate counts as hung.
        max_time_s: seconds of timing per candidate (the racing profiler's cap).
        final_time_s: seconds of the final side-by-side race of the winner and the reference.
        rel_ci: the target relative width of a timing interval.
        arg_seed: the seed of the random argument values.
        limits: the sandbox's resource limits.
        include_dirs: folders searched for ``#include "..."`` (a source file's folder).
        threads: C/C++: the threads a candidate may use (``OMP_NUM_THREADS`` in the sandbox;
            a candidate with ``#pragma omp`` is compiled with ``-fopenmp``). With more than
            one, the rewrites library also proposes ``#pragma omp parallel for`` on loops
            whose iterations are independent (or reduce into a scalar or an array); with 1
            (the default) every candidate runs on one core, like the reference.
    """

    name: str
    language: str
    source: str | os.PathLike[str]
    entry: str
    args: Sequence[Arg | str] = ()
    quick_args: Sequence[Arg | str] | None = None
    defines: Mapping[str, Any] = field(default_factory=dict)
    inputs: Callable[[], Sequence[Any]] | None = None
    quick_inputs: Callable[[], Sequence[Any]] | None = None
    metric: str = "time"
    score: Callable[[list[Any]], float] | None = None
    verify: Callable[[Sequence[Any], Sequence[Any]], Any] | None = None
    atol: float = 1e-6
    rtol: float = 1e-6
    flags: str = "-O2"
    compiler: str | None = None
    timeout: float = 10.0
    max_time_s: float = 0.2
    final_time_s: float = 1.0
    rel_ci: float = 0.02
    arg_seed: int = 0
    limits: Limits | None = None
    include_dirs: Sequence[str] = ()
    threads: int = 1

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if not isinstance(self.name, str) or not re.fullmatch(r"[\w.-]+", self.name):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        if self.language not in _LANGUAGES:
            raise ValueError(f"language must be one of {_LANGUAGES}, got {self.language!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {self.metric!r}")
        if self.metric == "score" and not callable(self.score):
            raise ValueError("metric 'score' needs a score function (score=...)")
        if self.metric == "time" and self.score is not None:
            raise ValueError("score= is given but metric is 'time': set metric='score'")
        source = self.source
        if isinstance(source, os.PathLike):
            path = Path(source)
            try:
                put("source", path.read_text())
            except OSError as exc:
                raise ValueError(f"cannot read the source {path}: {exc}") from None
            put("include_dirs", (*tuple(self.include_dirs), str(path.parent)))
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError("source is empty: give the reference implementation's text")
        if not re.fullmatch(r"[A-Za-z_]\w*", str(self.entry)):
            raise ValueError(f"entry must be an identifier, got {self.entry!r}")
        if not re.search(rf"\b{re.escape(self.entry)}\s*\(", self.source):
            raise ValueError(f"the source does not define or call {self.entry!r}")
        put("defines", dict(self.defines or {}))
        put("include_dirs", tuple(str(d) for d in self.include_dirs))
        for name in ("timeout", "max_time_s", "final_time_s"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not (v > 0 and math.isfinite(v))
            ):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        t = self.threads
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"threads must be an int >= 1, got {t!r}")
        if t > 1 and self.language in ("python", "triton"):
            raise ValueError(
                f"threads is for C/C++ specs (OpenMP); a {self.language} spec runs as it is"
            )
        for name in ("atol", "rtol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if self.language == "python":
            self._check_python()
        elif self.language == "triton":
            self._check_triton()
        else:
            self._check_compiled()

    def _check_compiled(self, outputs_required: bool = True) -> None:
        if self.inputs is not None or self.quick_inputs is not None:
            raise ValueError("inputs / quick_inputs are for Python specs; C/C++ take args")
        args = _as_args(self.args, self.defines, "args") or ()
        if not args:
            raise ValueError("args is empty: describe the entry function's arguments")
        if outputs_required and not any(a.out for a in args):
            raise ValueError("no argument is marked as an output (':out')")
        object.__setattr__(self, "args", args)
        quick = _as_args(self.quick_args, self.defines, "quick_args")
        if quick is not None:
            kinds = [(a.dtype, a.is_array, a.out) for a in args]
            if [(a.dtype, a.is_array, a.out) for a in quick] != kinds:
                raise ValueError(
                    "quick_args must have the same dtypes, array/scalar kinds and outputs as "
                    f"args: {[a.describe() for a in quick]} vs {[a.describe() for a in args]}"
                )
        object.__setattr__(self, "quick_args", quick)

    def _check_python(self) -> None:
        import ast

        if self.args:
            raise ValueError("args are for C/C++ specs; a Python spec takes inputs=")
        if not callable(self.inputs):
            raise ValueError("a Python spec needs inputs: a function returning the arguments")
        if self.quick_inputs is not None and not callable(self.quick_inputs):
            raise ValueError("quick_inputs must be a function returning the arguments")
        try:
            tree = ast.parse(self.source)
        except SyntaxError as exc:
            raise ValueError(f"the Python source does not parse: {exc}") from None
        if not any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == self.entry
            for n in tree.body
        ):
            raise ValueError(f"the Python source has no top-level function {self.entry!r}")
        object.__setattr__(self, "args", ())

    def _check_triton(self) -> None:
        import ast

        from airda.codeopt.evolve._triton import jit_kernels

        try:
            tree = ast.parse(self.source)
        except SyntaxError as exc:
            raise ValueError(f"the Triton source does not parse: {exc}") from None
        if not any(isinstance(n, ast.FunctionDef) and n.name == self.entry for n in tree.body):
            raise ValueError(
                f"the Triton source has no top-level function {self.entry!r} (the launcher)"
            )
        if not jit_kernels(tree):
            raise ValueError("the Triton source defines no @triton.jit kernel")
        if self.args and self.inputs is not None:
            raise ValueError("a Triton spec takes args or inputs=, not both")
        if self.inputs is None:
            if self.quick_inputs is not None:
                raise ValueError("quick_inputs goes with inputs=; with args, give quick_args")
            self._check_compiled(outputs_required=False)
            return
        if not callable(self.inputs):
            raise ValueError("inputs must be a function returning the arguments")
        if self.quick_inputs is not None and not callable(self.quick_inputs):
            raise ValueError("quick_inputs must be a function returning the arguments")
        if self.quick_args is not None:
            raise ValueError("quick_args goes with args; with inputs=, give quick_inputs")
        object.__setattr__(self, "args", ())

    @property
    def interpreted(self) -> bool:
        """Whether the candidates run under Triton's interpreter on the CPU (a Triton spec on a
        machine where torch sees no CUDA device, or with ``TRITON_INTERPRET=1`` set): their
        times are interpreter times, meaningless as GPU times. False for other languages."""
        if self.language != "triton":
            return False
        from airda.codeopt.evolve._triton import triton_device

        return triton_device()[0] == "cpu"

    @property
    def direction(self) -> str:
        """``"minimize"`` (seconds) or ``"maximize"`` (a score)."""
        return "minimize" if self.metric == "time" else "maximize"

    @property
    def cpp(self) -> bool:
        return self.language == "cpp"

    def key(self) -> str:
        """A digest of what decides a result: the reference, the arguments, the gate, the
        metric, the compiler and the CPU (Triton: the GPU, or the interpreter). A study of
        another key answers another question."""
        from airda.codeopt.cvariants import _default_compiler, compiler_version
        from airda.codeopt.tuner import cpu_model

        doc: dict[str, Any] = {
            "language": self.language,
            "source": self.source,
            "entry": self.entry,
            "args": [a.describe() for a in self.args],
            "quick": None if self.quick_args is None else [a.describe() for a in self.quick_args],
            "defines": {k: str(v) for k, v in sorted(self.defines.items())},
            "metric": self.metric,
            "gate": [self.atol, self.rtol, self.verify is not None],
            "flags": self.flags,
            "arg_seed": self.arg_seed,
            "cpu": cpu_model(),
        }
        if self.threads != 1:  # keys of one-thread specs stay what they were
            doc["threads"] = self.threads
        if self.language == "triton":
            from airda.codeopt.evolve._triton import triton_device

            doc.pop("flags")
            doc["device"] = list(triton_device())
        elif self.language != "python":
            cc = self.compiler or _default_compiler(self.cpp)
            doc["compiler"] = [cc, compiler_version(cc)]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> EvolveSpec:
        """Read a spec from a TOML file; paths in it are relative to the file.

        Keys: ``name``, ``language``, ``source`` (a file), ``entry``, ``args``,
        ``quick_args``, ``defines``, ``metric``, ``atol``, ``rtol``, ``flags``, ``compiler``,
        ``timeout``, ``max_time_s``, ``final_time_s``, ``rel_ci``, ``arg_seed``, ``threads``, and
        ``harness`` (a Python file) with the names in it of ``inputs``, ``quick_inputs``,
        ``verify`` and ``score``. Unknown keys are errors. A ``.py`` source is Python unless
        ``language = "triton"`` says it is a Triton module (kernels and their launcher).
        """
        import tomllib

        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
        known = {
            "name", "language", "source", "entry", "args", "quick_args", "defines", "metric",
            "atol", "rtol", "flags", "compiler", "timeout", "max_time_s", "final_time_s",
            "rel_ci", "arg_seed", "threads", "harness", "inputs", "quick_inputs", "verify", "score",
        }  # fmt: skip
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
        for key in ("name", "source", "entry"):
            if key not in doc:
                raise ValueError(f"{path}: missing key {key!r}")
        base = path.parent
        src = base / str(doc.pop("source"))
        if not src.is_file():
            raise ValueError(f"{path}: source file {src} not found")
        language = doc.pop("language", None)
        if language is None:
            language = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp"}.get(
                src.suffix, "c"
            )
        harness = doc.pop("harness", None)
        funcs = {k: doc.pop(k) for k in ("inputs", "quick_inputs", "verify", "score") if k in doc}
        if funcs and harness is None:
            raise ValueError(f"{path}: {sorted(funcs)} name functions of a harness file: "
                             "add harness = 'harness.py'")  # fmt: skip
        loaded: dict[str, Any] = {}
        if harness is not None:
            module = _load_harness(base / str(harness))
            for key, name in funcs.items():
                fn = getattr(module, str(name), None)
                if not callable(fn):
                    raise ValueError(f"{path}: {key} = {name!r}: no such function in {harness}")
                loaded[key] = fn
        try:
            return cls(source=src, language=str(language), **doc, **loaded)
        except TypeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _load_harness(file: Path) -> Any:
    if not file.is_file():
        raise ValueError(f"harness file {file} not found")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"airda_evolve_harness_{digest}", file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ValueError(f"harness {file} failed to load: {type(exc).__name__}: {exc}") from None
    return module

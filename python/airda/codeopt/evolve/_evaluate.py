"""Cascaded evaluation of a candidate program: compile -> quick test -> full test -> timing
(or score), each stage able to reject it with a recorded reason; everything it runs runs in
the codeopt :class:`~airda.codeopt.Sandbox` (per-call timeouts, resource limits, no orphans).

Also :func:`profile_hint`, the cheap description of where a program's time likely goes that
the language model's prompt shows: static (the deepest loop nest of the entry function), not a
measurement.

Example:
    >>> from airda.codeopt.evolve import EvolveSpec
    >>> from airda.codeopt.evolve._evaluate import Evaluator
    >>> src = "void f(double* y, int n) { for (int i = 0; i < n; ++i) y[i] = i; }"
    >>> spec = EvolveSpec("f", "c", src, "f", ["float64[8]:zeros:out", "int32=8"],
    ...                   max_time_s=0.01)
    >>> with Evaluator(spec) as ev:
    ...     ref = ev.reference()
    ...     bad = ev.evaluate(src.replace("= i", "= i + 1"))
    ...     crash = ev.evaluate(src.replace("y[i] = i", "*(volatile int*)0 = 1"))
    >>> ref.ok, ref.stage
    (True, 'done')
    >>> bad.stage, bad.error.split(":")[0]
    ('full', 'wrong output 0')
    >>> crash.stage, "SIGSEGV" in crash.error
    ('full', True)
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda.codeopt.cvariants import (
    CompileError,
    compile_variant,
    first_compile_error,
    name_compiled_copy,
)
from airda.codeopt.evolve._spec import EvolveSpec
from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import Profile, summarize
from airda.codeopt.sandbox import Limits, Sandbox, VariantFailed

__all__ = ["Evaluator", "Outcome", "SourceFunction", "profile_hint"]

#: The stages of the cascade, in order; a candidate's ``stage`` is the last one it entered.
log = logging.getLogger("airda.codeopt.evolve")

STAGES = ("parse", "compile", "quick", "full", "timing", "score", "done")


@dataclass
class Outcome:
    """What the cascade found: `ok` (passed every stage), the `stage` it reached (``done``
    when ok), the `error` that stopped it, its `value` (seconds per call, or the score) and
    the timing summary in `attrs`."""

    ok: bool
    stage: str
    error: str | None = None
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


class SourceFunction:
    """A Python function defined by source text, picklable by value: the sandbox worker
    compiles the text on the first call (its module-level code runs there, not here)."""

    def __init__(self, source: str, name: str):
        self.source = source
        self.name = name
        self._fn: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source, self.name, self._fn = state["source"], state["name"], None

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            namespace: dict[str, Any] = {"__name__": "airda_evolve_candidate"}
            exec(compile(self.source, "<candidate>", "exec"), namespace)
            fn = namespace.get(self.name)
            if not callable(fn):
                raise NameError(f"the program defines no function {self.name!r}")
            self._fn = fn
        return self._fn(*args)


def _as_outputs(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def _profile(raw: dict[str, Any], rel_ci: float) -> Profile:
    p = summarize(raw["samples"], inner=int(raw["inner"]), rel_ci=rel_ci)
    return dataclasses.replace(
        p, measured_s=float(raw["measured_s"]), converged=bool(raw["converged"])
    )


def openmp_flags(code: str, flags: str) -> str:
    """`flags`, with ``-fopenmp`` added when `code` has an OpenMP pragma (without it GCC
    ignores ``#pragma omp`` and the candidate would be timed as something it is not)."""
    if re.search(r"^\s*#\s*pragma\s+omp\b", code, re.M) and "-fopenmp" not in flags.split():
        return f"{flags} -fopenmp"
    return flags


def _triton_inputs(spec: EvolveSpec, quick: bool, device: str) -> tuple[Any, ...] | None:
    """The arguments of a Triton spec's launcher, as they travel to the worker (arrays become
    torch tensors on `device` there): from `args` (seeded, as the C sandbox makes them) or
    from the `inputs` functions."""
    from airda.codeopt.evolve._triton import device_tensor

    if spec.inputs is not None:
        fn = spec.quick_inputs if quick else spec.inputs
        return None if fn is None else tuple(device_tensor(v, device) for v in fn())
    args = spec.quick_args if quick else spec.args
    if args is None:
        return None
    rng = np.random.default_rng(spec.arg_seed)
    out: list[Any] = []
    for a in args:
        value = a.make(rng)
        out.append(device_tensor(value, device) if a.is_array else value.item())
    return tuple(out)


class Evaluator:
    """The cascade for one spec: its sandboxes (a full one, a quick one when the spec has quick
    arguments or inputs), the reference's outputs, and the final race. A context manager: the
    sandboxes' workers end with it.

    A Triton spec runs its candidates in Python workers (like a Python spec) whose environment
    has ``TRITON_INTERPRET=1`` when no GPU is usable (`interpreted`); on a GPU they are timed
    with :func:`~airda.codeopt.triton_autotune.do_bench_gpu`."""

    def __init__(self, spec: EvolveSpec):
        self.spec = spec
        self.triton = spec.language == "triton"
        self.python = spec.language == "python" or self.triton
        self.device, self.device_name = "cpu", ""
        self.interpreted = False
        self.expected: list[Any] | None = None
        self.quick_expected: list[Any] | None = None
        self.ref_profile: dict[str, Any] | None = None
        self._libs: dict[str, Any] = {}
        self._line_profiles: dict[str, str | None] = {}
        if self.triton:
            self._start_triton()
        elif self.python:
            inputs = tuple(spec.inputs())  # type: ignore[misc]
            quick = tuple(spec.quick_inputs()) if spec.quick_inputs is not None else None
            limits = spec.limits if spec.limits is not None else Limits(memory=None)
            self.box = Sandbox(py_args=inputs, timeout=spec.timeout, limits=limits)
            self.qbox = (
                None
                if quick is None
                else Sandbox(py_args=quick, timeout=spec.timeout, limits=limits)
            )
        else:
            # Every candidate runs with the spec's threads (one by default), the reference too.
            env = {"OMP_NUM_THREADS": str(spec.threads)}
            self.box = Sandbox(
                list(spec.args),
                seed=spec.arg_seed,
                timeout=spec.timeout,
                limits=spec.limits,
                env=env,
            )
            self.qbox = (
                None
                if spec.quick_args is None
                else Sandbox(
                    list(spec.quick_args),
                    seed=spec.arg_seed,
                    timeout=spec.timeout,
                    limits=spec.limits,
                    env=env,
                )
            )
        self.box.start()
        if self.qbox is not None:
            self.qbox.start()

    def _start_triton(self) -> None:
        import importlib.util

        from airda.codeopt.cvariants import cache_dir
        from airda.codeopt.evolve._triton import triton_device

        spec = self.spec
        missing = [m for m in ("torch", "triton") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"a Triton spec needs {' and '.join(missing)} installed (pip install torch triton)"
            )
        self.device, self.device_name = triton_device()
        self.interpreted = self.device == "cpu"
        # set in the worker's environment, so before triton is imported there
        env = {"TRITON_INTERPRET": "1"} if self.interpreted else {}
        if not self.interpreted:  # compiled kernels kept across workers
            env["TRITON_CACHE_DIR"] = os.environ.get(
                "TRITON_CACHE_DIR", str(cache_dir() / "triton")
            )
        limits = spec.limits if spec.limits is not None else Limits(memory=None)
        full = _triton_inputs(spec, False, self.device)
        quick = _triton_inputs(spec, True, self.device)
        self.box = Sandbox(py_args=full, timeout=spec.timeout, limits=limits, env=env)
        self.qbox = (
            None
            if quick is None
            else Sandbox(py_args=quick, timeout=spec.timeout, limits=limits, env=env)
        )

    def _program(self, code: str) -> Any:
        from airda.codeopt.evolve._triton import TritonProgram

        outputs = [i for i, a in enumerate(self.spec.args) if a.out]
        return TritonProgram(code, self.spec.entry, outputs, self.device)

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.box.close()
        if self.qbox is not None:
            self.qbox.close()

    # ---- stages ----------------------------------------------------------------------------
    def _compile(self, code: str) -> Any:
        """A compiled library (C/C++) or a :class:`SourceFunction` (Python); raises
        :class:`CompileError` with one line saying why."""
        spec = self.spec
        if self.python:
            try:
                tree = ast.parse(code)
            except SyntaxError as exc:
                raise CompileError(f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
            if not any(
                isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == spec.entry
                for n in tree.body
            ):
                raise CompileError(f"no top-level function {spec.entry!r}")
            if self.triton:
                return self._import_triton(code, tree)
            return SourceFunction(code, spec.entry)
        try:
            return compile_variant(
                code,
                spec.entry,
                spec.args,
                defines=spec.defines,
                flags=openmp_flags(code, spec.flags),
                cpp=spec.cpp,
                compiler=spec.compiler,
                include_dirs=spec.include_dirs,
                timeout=60.0,
            )
        except (CompileError, ValueError) as exc:
            name = f"candidate.{'cpp' if spec.cpp else 'c'}"
            raise CompileError(first_compile_error(name_compiled_copy(str(exc), name))) from None

    def _import_triton(self, code: str, tree: ast.Module) -> Any:
        """The compile stage of a Triton program: it defines a kernel, and its module imports
        in the worker (Triton compiles a kernel at its first launch: see :meth:`_run`)."""
        from airda.codeopt.evolve._triton import TritonImport, jit_kernels

        if not jit_kernels(tree):
            raise CompileError("no @triton.jit kernel in the program")
        prog = self._program(code)
        box = self.qbox if self.qbox is not None else self.box
        try:
            box.run_callable("imp-" + _digest(code), TritonImport(prog))
        except VariantFailed as exc:
            if exc.kind != "error":  # it crashed or hung importing: not a compile error
                raise
            raise CompileError(f"importing the module: {exc.reason}") from None
        return prog

    def _run(self, box: Sandbox, key: str, prog: Any) -> list[Any]:
        if self.triton:
            from airda.codeopt.evolve._triton import KERNEL_ERROR

            try:
                return _as_outputs(box.run_callable(key, prog))
            except VariantFailed as exc:
                if exc.reason.startswith(KERNEL_ERROR):  # Triton compiles at the first launch
                    raise CompileError(f"triton: {exc.reason[len(KERNEL_ERROR) :]}") from None
                raise
        if self.python:
            return _as_outputs(box.run_callable(key, prog))
        return box.run(key, prog)

    def _check(self, outputs: list[Any], expected: list[Any] | None) -> str | None:
        spec = self.spec
        if expected is None and spec.verify is None:
            return None
        return check_outputs(
            outputs, expected or [], atol=spec.atol, rtol=spec.rtol, verify=spec.verify
        )

    def _time(self, key: str, prog: Any) -> dict[str, Any]:
        spec = self.spec
        if self.triton and not self.interpreted:
            samples = self._gpu_samples(key, prog, rep_ms=1e3 * spec.max_time_s)
            attrs = summarize(samples, rel_ci=spec.rel_ci).to_attrs()
            attrs["device"] = self.device_name
            return attrs
        if self.python:
            if self.triton:  # the launches alone, not the guard-band checks
                key, prog = "time-" + key, prog.timed()
            return self.box.time_callable(
                key, prog, {"max_time_s": spec.max_time_s, "rel_ci": spec.rel_ci}
            )["attrs"]
        opts = {
            "warmup": 2,
            "inner": 0,
            "min_sample_s": 5e-5,
            "min_samples": 10,
            "max_samples": 100_000,
            "rel_ci": spec.rel_ci,
            "confidence": 0.95,
            "max_time_s": spec.max_time_s,
            "flush": False,
            "flush_bytes": 0,
            "clock": 0,
        }
        return _profile(self.box.profile(key, prog, opts), spec.rel_ci).to_attrs()

    def _gpu_samples(
        self,
        key: str,
        prog: Any,
        *,
        rep_ms: float,
        warmup_ms: float = 25.0,
        max_samples: int = 1000,
    ) -> list[float]:
        """Per-call seconds of a Triton program on the GPU, by
        :func:`~airda.codeopt.triton_autotune.do_bench_gpu` in the worker."""
        from airda.codeopt.evolve._triton import TritonBench

        bench = TritonBench(prog, rep_ms=rep_ms, warmup_ms=warmup_ms, max_samples=max_samples)
        # one request is one call for the heartbeat: room for the warm-up, the repetitions
        # and a first compile
        timeout = self.spec.timeout + 2e-3 * (rep_ms + warmup_ms) + 60.0
        raw = self.box.run_callable(f"bench-{key}-{rep_ms:g}-{max_samples}", bench, timeout=timeout)
        samples = [float(x) for x in raw] if isinstance(raw, list | tuple) else []
        if not samples or not all(math.isfinite(x) and x >= 0 for x in samples):
            raise VariantFailed(f"the GPU timing gave no usable samples: {raw!r:.200}", "error")
        return samples

    def _score(self, outputs: list[Any]) -> float:
        assert self.spec.score is not None
        try:
            value = float(self.spec.score(outputs))
        except Exception as exc:
            raise VariantFailed(f"score failed: {type(exc).__name__}: {exc}", "error") from None
        if not math.isfinite(value):
            raise VariantFailed(f"score is not finite: {value}", "error")
        return value

    def evaluate(self, code: str, *, reference: bool = False) -> Outcome:
        """Run the cascade on a program; never raises for what the program does."""
        key = ("ref-" if reference else "cand-") + _digest(code)
        stage = "compile"
        try:
            prog = self._compile(code)
            self._libs[key] = prog
            if self.qbox is not None:
                stage = "quick"
                outs = self._run(self.qbox, key, prog)
                if reference:
                    self.quick_expected = [np.array(o, copy=True) for o in outs]
                problem = self._check(outs, self.quick_expected)
                if problem is not None:
                    return Outcome(False, stage, problem)
            stage = "full"
            outs = self._run(self.box, key, prog)
            if reference:
                self.expected = [np.array(o, copy=True) for o in outs]
            problem = self._check(outs, self.expected)
            if problem is not None:
                return Outcome(False, stage, problem)
            if self.spec.metric == "score":
                stage = "score"
                value = self._score(outs)
                return Outcome(True, "done", None, value, {"score": value})
            stage = "timing"
            attrs = self._time(key, prog)
            if self.interpreted:  # never to be read as a GPU time
                attrs["interpreted"] = True
            median = float(attrs["median_s"])
            if not (math.isfinite(median) and median > 0):
                return Outcome(False, stage, f"non-finite time {median}")
            return Outcome(True, "done", None, median, attrs)
        except CompileError as exc:
            if self.interpreted and stage != "compile":
                self._recycle()  # the interpreter ran part of the kernel
            return Outcome(False, "compile", f"compile error: {exc}")
        except VariantFailed as exc:
            if self.triton:
                self._recycle()
            return Outcome(False, stage, exc.reason)
        except Exception as exc:  # a user verify/score, or anything else about this program
            return Outcome(False, stage, f"{type(exc).__name__}: {exc}")

    def _recycle(self) -> None:
        """Fresh workers after a Triton program failed while running: a kernel that wrote out
        of bounds may have damaged the worker's heap (interpreter) or its CUDA context (an
        illegal address ends it), and the next program must not pay for it."""
        self.box.close()
        if self.qbox is not None:
            self.qbox.close()
        self.box.start()
        if self.qbox is not None:
            self.qbox.start()

    def line_profile(self, code: str, seconds: float = 0.3) -> str | None:
        """A measured profile line of a compiled program (the share of samples of its hottest
        source lines and of the library functions it calls: see :mod:`airda.codeopt.lineprof`),
        or None when it cannot be had (the program fails, no sampler). Cached per program."""
        digest = _digest(code)
        if digest in self._line_profiles:
            return self._line_profiles[digest]
        from airda.codeopt.lineprof import format_line_profile, map_samples, python_profile

        spec = self.spec
        line = None
        if self.triton:  # a CPU sample of a launcher says nothing of where a kernel's time goes
            self._line_profiles[digest] = None
            return None
        try:
            if self.python:
                prog = SourceFunction(code, spec.entry)
                raw = self.box.line_profile_callable(f"lp-{digest}", prog, seconds)
                line = format_line_profile(python_profile(raw, code))
                self._line_profiles[digest] = line
                return line
            lib = compile_variant(
                code,
                spec.entry,
                spec.args,
                defines=spec.defines,
                flags=f"{openmp_flags(code, spec.flags)} -g",
                cpp=spec.cpp,
                compiler=spec.compiler,
                include_dirs=spec.include_dirs,
                timeout=60.0,
            )
            raw = self.box.line_profile(f"lp-{digest}", lib, seconds)
            line = format_line_profile(map_samples(raw, lib, code))
        except Exception as exc:  # a profile is a hint: never a reason to stop
            log.debug("no line profile: %s", exc)
        self._line_profiles[digest] = line
        return line

    def reference(self) -> Outcome:
        """The reference through the cascade: its outputs become the correct answer. A
        reference that fails raises ``ValueError`` (nothing can be checked against it)."""
        spec = self.spec
        self.expected = self.quick_expected = None
        out = self.evaluate(spec.source, reference=True)  # type: ignore[arg-type]
        if not out.ok:
            raise ValueError(f"the reference fails at stage {out.stage!r}: {out.error}")
        self.ref_profile = out.attrs
        return out

    # ---- the final race ---------------------------------------------------------------------
    def final_speedup(self, code: str) -> dict[str, Any]:
        """The speed-up of `code` over the reference, from samples taken side by side
        (interleaved rounds in one worker) for up to ``final_time_s``: the median of the paired
        ratios (reference / candidate) and its distribution-free 95 % interval."""
        from airda.codeopt.profiler import median_ci_rank

        spec = self.spec
        ref_key = "ref-" + _digest(spec.source)  # type: ignore[arg-type]
        win_key = "cand-" + _digest(code)
        ref = self._libs.get(ref_key) or self._compile(spec.source)  # type: ignore[arg-type]
        win = self._libs.get(win_key) or self._compile(code)
        if self.triton:  # the launches alone, not the guard-band checks
            ref_key, win_key = "time-" + ref_key, "time-" + win_key
            ref, win = ref.timed(), win.timed()
        a: list[float] = []
        b: list[float] = []
        spent = 0.0
        inner: dict[str, int] = {}
        rounds = 0
        # at least MIN_FINAL_ROUNDS rounds whatever the time (a loaded machine may spend the
        # whole budget in one), so that the median's interval exists
        gpu = self.triton and not self.interpreted
        while rounds < MIN_FINAL_ROUNDS or (spent < spec.final_time_s and rounds < 200):
            rounds += 1
            if gpu:
                # a GPU sample is microseconds: the round's wall time is what the budget counts
                for key, prog, dest in ((ref_key, ref, a), (win_key, win, b)):
                    t0 = time.perf_counter()
                    dest.extend(
                        self._gpu_samples(key, prog, rep_ms=5.0, warmup_ms=2.0, max_samples=5)
                    )
                    spent += time.perf_counter() - t0
            elif self.python:
                for key, prog, dest in ((ref_key, ref, a), (win_key, win, b)):
                    raw = self.box.sample_callable(key, prog, 5, inner.get(key, 0))
                    inner[key] = int(raw["inner"])
                    dest.extend(float(x) for x in raw["samples"])
                    spent += float(raw["measured_s"])
            else:
                raws = self.box.rounds(
                    [(ref_key, ref, inner.get(ref_key, 0)), (win_key, win, inner.get(win_key, 0))],
                    {"n_samples": 5, "flush": False, "min_sample_s": 5e-5, "clock": 0},
                )
                for key, raw, dest in ((ref_key, raws[0], a), (win_key, raws[1], b)):
                    inner[key] = int(raw["inner"])
                    dest.extend(float(x) for x in raw["samples"])
                    spent += float(raw["measured_s"])
        ra, rb = np.asarray(a), np.asarray(b)
        n = min(ra.size, rb.size)
        ratios = np.sort(ra[:n] / rb[:n])
        ratios = ratios[np.isfinite(ratios)]
        k = median_ci_rank(ratios.size, 0.95)
        # no interval (too few finite ratios) is None, not NaN: the result is stored as JSON
        lo, hi = (float(ratios[k - 1]), float(ratios[ratios.size - k])) if k >= 1 else (None, None)
        out = {
            # the median of the paired ratios: the point its interval is about
            "speedup": float(np.median(ratios)) if ratios.size else None,
            "ci": [lo, hi],
            "reference_s": float(np.median(ra)),
            "best_s": float(np.median(rb)),
            "samples": int(n),
            "measured_s": spent,
        }
        if self.triton:
            # interpreted: CPU times of Triton's interpreter, never to be read as a GPU speed-up
            out.update(interpreted=self.interpreted, device=self.device_name)
        return out


#: Side-by-side rounds of the final race however short ``final_time_s`` is (5 pairs a round).
MIN_FINAL_ROUNDS = 4


# ---- the prompt's profile hint ------------------------------------------------------------
def _c_loops(code: str, entry: str) -> list[tuple[int, int, int]]:
    """(first line, last line, depth) of every loop nest of `entry`'s body (1-based lines)."""
    from airda.codeopt.evolve._edit import _c_functions, _mask_c, _match_brace

    funcs = _c_functions(code)
    if entry not in funcs:
        return []
    start, end = funcs[entry]
    masked = _mask_c(code)
    out = []
    pos = masked.index("{", start) + 1
    body = masked[:end]

    def line(i: int) -> int:
        return code.count("\n", 0, i) + 1

    def nest_end(i: int) -> int:
        """The end of the statement a loop header at `i` governs."""
        j = body.index("(", i)
        depth = 0
        for k in range(j, len(body)):
            if body[k] == "(":
                depth += 1
            elif body[k] == ")":
                depth -= 1
                if depth == 0:
                    break
        rest = k + 1
        while rest < len(body) and body[rest].isspace():
            rest += 1
        if rest < len(body) and body[rest] == "{":
            close = _match_brace(body, rest)
            return close if close is not None else len(body)
        if re.match(r"(for|while)\b", body[rest:]):
            return nest_end(rest)
        semi = body.find(";", rest)
        return semi if semi >= 0 else len(body)

    loop = re.compile(r"\b(for|while)\s*\(")
    i = pos
    while True:
        m = loop.search(body, i)
        if m is None:
            break
        stop = nest_end(m.start())
        depth = 1 + _max_depth(body[m.end() : stop], loop)
        out.append((line(m.start()), line(stop), depth))
        i = stop + 1
    return out


def _max_depth(text: str, loop: re.Pattern[str]) -> int:
    """How deep loops nest in `text` (a loop's header and body), by braces: a loop closed by
    its brace leaves the stack; an unbraced loop inside another counts as nested (a guess)."""
    best = 0
    stack: list[int] = []  # the brace level at each open loop's header
    level = 0
    for m in re.finditer(r"\b(?:for|while)\s*\(|[{}]", text):
        tok = m.group(0)
        if tok == "{":
            level += 1
        elif tok == "}":
            level -= 1
            while stack and stack[-1] >= level:
                stack.pop()
        else:
            stack.append(level)
            best = max(best, len(stack))
    return best


def _py_loops(code: str, entry: str) -> list[tuple[int, int, int]]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if fn is None:
        return []

    def depth(node: ast.AST) -> int:
        inner = [depth(c) for c in ast.iter_child_nodes(node)]
        own = 1 if isinstance(node, ast.For | ast.While | ast.comprehension) else 0
        return own + max(inner, default=0)

    return [
        (n.lineno, n.end_lineno or n.lineno, depth(n))
        for n in fn.body
        if isinstance(n, ast.For | ast.While)
    ]


def profile_hint(code: str, language: str, entry: str, seconds: float | None = None) -> str:
    """A line for the prompt on where the time likely goes: the program's measured time per
    call (when given) and its deepest top-level loop nest of `entry`, by static nesting depth
    (a guess from the structure, not a measured line profile); for Triton, the kernel
    launches with their block sizes and launch options.

    Example:
        >>> src = '''void mm(double* c, const double* a, const double* b, int n) {
        ...     for (int i = 0; i < n; ++i) c[i] = 0;
        ...     for (int i = 0; i < n; ++i)
        ...         for (int j = 0; j < n; ++j)
        ...             for (int k = 0; k < n; ++k) c[i*n+j] += a[i*n+k] * b[k*n+j];
        ... }'''
        >>> profile_hint(src, "c", "mm", 2e-3)
        'time per call 2 ms; the deepest loop nest (depth 3, lines 3-5) most likely dominates'
    """
    parts = []
    if seconds is not None and math.isfinite(seconds):
        from airda.codeopt.search import format_seconds

        parts.append(f"time per call {format_seconds(seconds)}")
    if language == "triton":
        from airda.codeopt.evolve._rewrites_triton import launches

        found = launches(code)
        parts.append(
            "launches " + "; ".join(x.describe() for x in found)
            if found
            else "no kernel launch found"
        )
        return "; ".join(parts)
    loops = _py_loops(code, entry) if language == "python" else _c_loops(code, entry)
    if loops:
        first, last, d = max(loops, key=lambda t: (t[2], t[1] - t[0]))
        parts.append(
            f"the deepest loop nest (depth {d}, lines {first}-{last}) most likely dominates"
        )
    return "; ".join(parts) if parts else "no loops found"

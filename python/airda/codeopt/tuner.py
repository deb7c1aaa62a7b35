"""Tuning compiled C/C++ variants: a space over ``-D`` parameters and compiler flags searched
by any core strategy, every candidate compiled (in parallel), checked against the reference and
timed in the sandbox worker, every result stored in the study.

A :class:`CVariantSpec` says what is tuned (the kernel, its arguments, the space, the
reference and gate, how variants are compiled, run and timed); :func:`tune_c` searches it with
:func:`~airda.codeopt.search_variants`. The study's name is derived from a key over everything
that decides a result (source, reference, arguments, space, compiler and its version, the CPU):
a second run with the same key and storage continues the stored study and answers from it
instead of measuring again.

Example:
    >>> from airda.codeopt import Arg, CVariantSpec, tune_c
    >>> src = '''
    ... void axpy(float* y, const float* x, int n) {
    ...     for (int i = 0; i < n; i += UNROLL)
    ...         for (int u = 0; u < UNROLL && i + u < n; ++u) y[i + u] += 2.0f * x[i + u];
    ... }'''
    >>> args = [Arg("float32", (256,), "zeros", out=True), Arg("float32", (256,)),
    ...         Arg("int32", value=256)]
    >>> spec = CVariantSpec(src, "axpy", args, params={"UNROLL": [1, 2, 4]},
    ...                     flags=["-O1", "-O2"], reference=src.replace("UNROLL", "1"),
    ...                     max_time_s=0.01)
    >>> res = tune_c(spec, budget=6, strategy="grid")
    >>> res.n_complete, res.n_failed, sorted(res.best_params)
    (6, 0, ['UNROLL', 'flags'])
    >>> res.speedup > 0
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airda.codeopt.cvariants import (
    Arg,
    CompileError,
    _default_compiler,
    compile_variant,
    compile_variants,
    compiler_version,
    local_headers,
    name_compiled_copy,
)
from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import Profile, clock_id, summarize
from airda.codeopt.sandbox import Limits, Sandbox, VariantFailed
from airda.codeopt.search import (
    TuneResult,
    check_budget,
    result_row,
    search_variants,
    tune_result,
)

__all__ = ["CVariantSpec", "TuneResult", "cpu_model", "tune_c"]


def cpu_model() -> str:
    """The CPU's model name (part of the cache key: timings do not carry across machines)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class _Source:
    """A kernel or reference as it is compiled."""

    text: str
    cpp: bool
    name: str  # in compiler messages
    include_dirs: tuple[str, ...]  # a file's folder: the compiled copy is not beside it


def _read_source(src: str | os.PathLike[str], cpp: bool | None, default_cpp: bool) -> _Source:
    if isinstance(src, os.PathLike):
        path = Path(src)
        is_cpp = path.suffix in (".cpp", ".cc", ".cxx", ".C")
        cpp = bool(cpp if cpp is not None else is_cpp)
        return _Source(path.read_text(), cpp, path.name, (str(path.parent),))
    cpp = bool(cpp if cpp is not None else default_cpp)
    return _Source(str(src), cpp, f"kernel.{'cpp' if cpp else 'c'}", ())


@dataclass(frozen=True)
class CVariantSpec:
    """The variants of a C/C++ kernel: what is compiled, how each is checked and timed.

    Checked when made: a mistake is an error before anything compiles.

    Attributes:
        source: the kernel's source text, or a path (``.cpp``/``.cc`` compile as C++; headers
            beside it are found).
        entry: the function to call; its arguments are `args`, in order.
        args: :class:`~airda.codeopt.Arg` descriptions (arrays by pointer, scalars by value);
            at least one is an output.
        params: ``-D`` parameters to tune, each with its candidate values.
        flags: compiler flag sets to choose from (each a string, e.g. ``"-O3 -march=native"``);
            searched as the parameter ``flags``.
        defines: fixed ``-D`` values for every variant and the reference.
        reference: the reference source (text or path): its outputs are the correct answer and
            its time the baseline of the speed-up. `reference_entry` defaults to `entry`;
            `reference_flags` are its compiler flags.
        expected: the correct outputs, when there is no reference source.
        verify / atol / rtol: the correctness gate (see :func:`~airda.codeopt.check_outputs`).
        cpp: compile as C++ (default: from the source's suffix, else C).
        compiler: the compiler command (default ``$CC``/``$CXX``, ``cc``/``c++``).
        arg_seed: the seed of the arguments' random values.
        jobs: compiler processes in parallel (default: the CPU count).
        variant_timeout: seconds one call of a variant may take before it counts as hung (a
            measurement of many calls may take longer).
        max_time_s / rel_ci / flush: the profiler's cap, target CI width, cache flush.
        race: stop a variant's measurement as soon as its interval lies clearly behind the
            `final_race`-th best so far (it is recorded with that rough estimate, marked
            ``raced_out``) or, with a final race, clearly ahead of it (a finalist, measured
            again in the final race); when the whole budget fits the final race, every variant
            is a finalist after its first samples.
        final_race: after the search, race this many fastest variants and the reference
            against each other in interleaved rounds, compared pair by pair, for up to
            `max_time_s` of measurement (so a drift of the machine's speed during the search
            does not pick the winner); the winner and the reference's time are stored on the
            study. 0 or 1: off (the reference is then timed alone).
        clock: ``"wall"`` or ``"cpu"`` (the worker thread's CPU time: steadier on a loaded
            machine, for single-threaded kernels).
        limits / env: the sandbox's resource limits (:class:`~airda.codeopt.Limits`) and the
            environment variables passed to the variants beyond the allow-list (names, or
            ``"NAME=VALUE"``, or a mapping); see :class:`~airda.codeopt.Sandbox`.

    Example:
        >>> from airda.codeopt import Arg, CVariantSpec
        >>> spec = CVariantSpec("void f(float* y) { y[0] = U; }", "f",
        ...                     [Arg("float32", (1,), "zeros", out=True)],
        ...                     params={"U": [1, 2]}, flags=["-O1", "-O2"])
        >>> spec.space().size()
        4.0
        >>> CVariantSpec("void f(float* y) { y[0] = U; }", "f", spec.args, params={"V": [1]})
        Traceback (most recent call last):
        ...
        ValueError: parameter 'V' does not appear in the kernel source: a typo? Tuning it would compile the same variant several times
    """

    source: str | os.PathLike[str]
    entry: str
    args: Sequence[Arg]
    params: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    flags: Sequence[str] = ("-O2",)
    defines: Mapping[str, Any] = field(default_factory=dict)
    reference: str | os.PathLike[str] | None = None
    reference_entry: str | None = None
    reference_flags: str = "-O2"
    expected: Sequence[Any] | None = None
    verify: Callable[[Sequence[Any], Sequence[Any]], Any] | None = None
    atol: float = 1e-5
    rtol: float = 1e-4
    cpp: bool | None = None
    compiler: str | None = None
    arg_seed: int = 0
    jobs: int | None = None
    variant_timeout: float = 10.0
    max_time_s: float = 0.5
    rel_ci: float = 0.02
    flush: bool = False
    race: bool = True
    final_race: int = 4
    clock: str = "wall"
    limits: Limits | None = None
    env: Mapping[str, str] | Sequence[str] | None = None
    _kernel: _Source = field(init=False, repr=False, compare=False)
    _reference: _Source | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen, so that a spec cannot change under a running search: the given values are
        # put in their immutable forms here, once.
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("args", tuple(self.args))
        put("flags", (self.flags,) if isinstance(self.flags, str) else tuple(self.flags))
        put("params", {k: tuple(v) for k, v in (self.params or {}).items()})
        put("defines", dict(self.defines or {}))
        if self.expected is not None:
            put("expected", tuple(self.expected))
        if not any(a.out for a in self.args):
            raise ValueError("no argument is marked as an output (out=True / ':out')")
        if not self.flags:
            raise ValueError("flags is empty: give at least one flag set (e.g. '-O2')")
        for k, v in self.params.items():
            if not v:
                raise ValueError(f"parameter {k!r} has no values")
        if "flags" in self.params:
            raise ValueError("'flags' is reserved for the compiler flag sets")
        jobs = self.jobs
        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
            raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
        for name in ("variant_timeout", "max_time_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        clock_id(self.clock)
        kernel = _read_source(self.source, self.cpp, False)
        put("_kernel", kernel)
        put(
            "_reference",
            None if self.reference is None else _read_source(self.reference, None, kernel.cpp),
        )
        _check_params_used(list(self.params), kernel)

    def space(self) -> Any:
        """The searched space: one categorical per parameter, and ``flags``."""
        from airda.space import Categorical, Space

        space = {k: Categorical(list(v)) for k, v in self.params.items()}
        return Space(space | {"flags": Categorical(list(self.flags))})

    def tuning_key(self) -> str:
        """A digest of everything that decides a result: the kernel and its local headers,
        the arguments, the space, the reference and gate, the compiler and its version, the
        CPU, the timing options. A study tuned with another key answers another question."""
        k = self._kernel
        ref = self._reference
        cc = self.compiler or _default_compiler(k.cpp)
        doc = {
            "source": k.text,
            "headers": local_headers(k.text, k.include_dirs)[0],
            "entry": self.entry,
            "cpp": k.cpp,
            "args": [a.describe() for a in self.args],
            "arg_seed": self.arg_seed,
            "defines": {n: str(v) for n, v in sorted(self.defines.items())},
            "space": self.space().to_dict(),
            "reference": ref.text if ref is not None else None,
            "reference_entry": self.reference_entry,
            "reference_flags": self.reference_flags,
            "gate": [self.atol, self.rtol, self.verify is not None, self.expected is not None],
            "compiler": [cc, compiler_version(cc)],
            "cpu": cpu_model(),
            "flush": self.flush,
            "clock": self.clock,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def _compile_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The :func:`~airda.codeopt.compile_variant` arguments of one variant."""
        return {
            "source": self._kernel.text,
            "entry": self.entry,
            "args": self.args,
            "defines": self.defines | {k: v for k, v in params.items() if k != "flags"},
            "flags": params["flags"],
            "cpp": self._kernel.cpp,
            "compiler": self.compiler,
            "include_dirs": self._kernel.include_dirs,
        }

    def _reference_job(self) -> dict[str, Any]:
        ref = self._reference
        assert ref is not None
        return {
            "source": ref.text,
            "entry": self.reference_entry or self.entry,
            "args": self.args,
            "defines": self.defines,
            "flags": self.reference_flags,
            "cpp": ref.cpp,
            "compiler": self.compiler,
            "include_dirs": ref.include_dirs,
        }


_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(CVariantSpec) if f.init)


def _check_params_used(names: Sequence[str], kernel: _Source) -> None:
    """A tuned macro the source never mentions only multiplies identical variants: most
    likely a typo. An error, or a warning when a local header could not be read."""
    headers, complete = local_headers(kernel.text, kernel.include_dirs)
    texts = [kernel.text, *headers]
    unused = [
        n
        for n in names
        if not any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", t) for t in texts)
    ]
    if not unused:
        return
    what = ", ".join(repr(n) for n in unused)
    msg = (
        f"parameter {what} does not appear in the kernel source"
        + ("" if complete else " (nor in the local headers that could be read)")
        + ": a typo? Tuning it would compile the same variant several times"
    )
    if complete:
        raise ValueError(msg)
    # the caller of CVariantSpec(...) (this, __post_init__, the generated __init__ between)
    warnings.warn(msg, UserWarning, stacklevel=4)


def tune_c(
    source: CVariantSpec | str | os.PathLike[str],
    entry: str | None = None,
    args: Sequence[Arg] | None = None,
    *,
    budget: int | None = None,
    timeout: float | None = None,
    strategy: str | Any = "random",
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> TuneResult:
    """Search the variants of a C/C++ kernel for the fastest correct one.

    ``tune_c(spec, ...)`` with a :class:`CVariantSpec`; or ``tune_c(source, entry, args,
    **options)``, which makes the spec of those (`options`: the spec's other fields, e.g.
    ``params=``, ``flags=``, ``reference=``, ``max_time_s=``).

    Args:
        source: the spec (or the kernel's source, with `entry` and `args`).
        budget: distinct variants to evaluate in the study (stored ones count), None for all.
        timeout: seconds for this run (checked between batches of variants).
        strategy: any core strategy name (``random``, ``grid``, ``rea``, ``local``, ...) or one.
        seed: the strategy's seed.
        storage / study_name: where trials are kept (None: in memory); the name defaults to
            one derived from the tuning key, so a second run resumes / answers from storage.
        progress: called with each finished row (for a progress display).

    The study holds one trial per variant: a candidate the strategy proposes again is answered
    from the study without a new trial, whether it passed or failed. Variants are compiled in
    batches of `jobs`, checked against the reference, timed (raced) in the sandbox; after the
    search the fastest race each other and the reference (see :class:`CVariantSpec`).

    Example:
        >>> from airda.codeopt import Arg, tune_c
        >>> src = "void f(float* y, int n) { for (int i = 0; i < n; ++i) y[i] = i * U; }"
        >>> res = tune_c(src, "f", [Arg("float32", (64,), "zeros", out=True),
        ...                         Arg("int32", value=64)],
        ...              params={"U": [1, 2]}, expected=[[float(i) for i in range(64)]],
        ...              max_time_s=0.01)
        >>> res.best_params["U"], res.n_failed
        (1, 1)
    """
    if isinstance(source, CVariantSpec):
        if entry is not None or args is not None or options:
            raise TypeError("tune_c(spec) takes the search options only; the rest is the spec's")
        spec = source
    else:
        unknown = sorted(set(options) - _SPEC_FIELDS)
        if unknown:
            raise TypeError(f"tune_c() got unexpected keyword arguments {unknown}")
        if entry is None or args is None:
            raise TypeError("tune_c(source, entry, args, ...) needs entry and args")
        spec = CVariantSpec(source, entry, args, **options)
    check_budget(budget)
    study = _open_study(spec, strategy, seed, storage, study_name)
    size = study.space.size()
    target = size if budget is None else min(budget, size)
    with _Variants(spec, study, all_finalists=target <= spec.final_race) as variants:
        evaluated = search_variants(
            study,
            variants.evaluate,
            budget=budget,
            batch=variants.n_jobs,
            prepare=variants.compile,
            timeout=timeout,
            progress=None if progress is None else (lambda t: progress(result_row(t))),
        )
        reference = variants.finish()
    return tune_result(study, reference, evaluated)


def _open_study(
    spec: CVariantSpec, strategy: Any, seed: int, storage: Any, study_name: str | None
) -> Any:
    from airda.study import create_study

    key = spec.tuning_key()
    name = study_name or f"tune-{spec.entry}-{key}"
    study = create_study(
        name,
        storage=storage,
        space=spec.space(),
        strategy=strategy,
        seed=seed,
        load_if_exists=True,
        user_attrs={"tune_key": key, "kind": "tune-c", "entry": spec.entry},
    )
    stored_key = study.user_attrs.get("tune_key")
    if stored_key != key:
        raise ValueError(
            f"study {name!r} was tuned with another kernel, arguments or space "
            f"(key {stored_key} != {key}); choose another study name"
        )
    return study


@contextlib.contextmanager
def _reference_errors() -> Iterator[None]:
    """A reference that does not compile or run ends the tuning: there is no answer to check
    variants against."""
    try:
        yield
    except CompileError as exc:
        raise ValueError(f"the reference does not compile: {exc}") from None
    except VariantFailed as exc:
        raise ValueError(f"the reference failed: {exc.reason}") from None


class _Variants:
    """The compiled variants of one spec in one sandbox: compiled a batch at a time,
    evaluated one at a time against the reference's outputs, the fastest raced at the end."""

    def __init__(self, spec: CVariantSpec, study: Any, *, all_finalists: bool):
        self.spec = spec
        self.study = study
        self.all_finalists = all_finalists
        self.k_final = spec.final_race if spec.final_race > 1 else 1
        self.n_jobs = spec.jobs or os.cpu_count() or 1
        self.expected = list(spec.expected) if spec.expected is not None else None
        self.ref_lib: Path | CompileError | None = None
        self.profile_opts = {
            "warmup": 2,
            "inner": 0,
            "min_sample_s": 5e-5,
            "min_samples": 10,
            "max_samples": 100_000,
            "rel_ci": spec.rel_ci,
            "confidence": 0.95,
            "max_time_s": spec.max_time_s,
            "flush": spec.flush,
            "flush_bytes": 0,
            "clock": clock_id(spec.clock),
        }
        self.box = Sandbox(
            list(spec.args),
            seed=spec.arg_seed,
            timeout=spec.variant_timeout,
            limits=spec.limits,
            env=spec.env,
        )
        self.box.start()  # the worker's interpreter starts while the first variants compile

    def __enter__(self) -> _Variants:
        return self

    def __exit__(self, *exc: object) -> None:
        self.box.close()

    # ---- the reference -------------------------------------------------------------------
    def reference_library(self) -> Path:
        if self.ref_lib is None:
            try:
                self.ref_lib = compile_variant(**self.spec._reference_job())
            except CompileError as exc:
                self.ref_lib = exc
        if isinstance(self.ref_lib, CompileError):
            raise self.ref_lib
        return self.ref_lib

    def reference_outputs(self) -> list[Any] | None:
        """The correct outputs: `expected`, or the reference's (run once)."""
        if self.expected is None and self.spec.reference is not None:
            self.expected = self.box.run("reference", self.reference_library())
        return self.expected

    # ---- the search's two steps ----------------------------------------------------------
    def compile(self, batch: list[dict[str, Any]]) -> list[Path | CompileError]:
        jobs = [self.spec._compile_job(p) for p in batch]
        # The reference compiles beside the first variants (its output is the answer).
        with_ref = (
            self.spec.reference is not None and self.expected is None and self.ref_lib is None
        )
        if with_ref:
            jobs.append(self.spec._reference_job())
        libs = compile_variants(jobs, workers=self.n_jobs + with_ref)
        if with_ref:
            self.ref_lib = libs.pop()
            with _reference_errors():
                self.reference_outputs()
        return libs

    def evaluate(self, trial: Any, lib: Path | CompileError) -> float:
        spec = self.spec
        if isinstance(lib, CompileError):
            raise VariantFailed(name_compiled_copy(str(lib), spec._kernel.name), "compile")
        with _reference_errors():
            expected = self.reference_outputs()
        outputs = self.box.run(lib.stem, lib)
        if expected is not None or spec.verify is not None:
            problem = check_outputs(
                outputs, expected or [], atol=spec.atol, rtol=spec.rtol, verify=spec.verify
            )
            if problem is not None:
                raise VariantFailed(problem, "wrong")
        raw = self.box.profile(lib.stem, lib, self._race_options())
        p = _summary(raw, spec.rel_ci)
        for k, v in p.to_attrs().items():
            trial.set_user_attr(k, v)
        stopped = int(raw.get("stopped", 0))
        if stopped > 0:
            trial.set_user_attr("raced_out", True)
        elif stopped < 0:
            trial.set_user_attr("finalist", True)
        if not math.isfinite(p.median):
            raise VariantFailed("non-finite time", "timing")
        return p.median

    def _race_options(self) -> dict[str, Any]:
        """Racing within the search, in the same measurement: stop as soon as the median's
        interval lies clearly behind the k-th best so far (it cannot reach the final race of the
        k fastest; k = 1 without a final race), or - with a final race, which measures its
        finalists again side by side - clearly ahead of it (it is a finalist). When the whole
        budget is at most k variants, every variant is a finalist: its first samples suffice."""
        opts = dict(self.profile_opts)
        if not self.spec.race:
            return opts
        k = self.k_final
        ranked = _ranked(self.study)
        if k > 1 and self.all_finalists:
            opts["stop_below"] = math.inf
        elif len(ranked) >= k:
            opts["stop_above"] = ranked[k - 1]["ci_high_s"] * 1.02
            if k > 1:
                opts["stop_below"] = ranked[k - 1]["ci_low_s"]
        return opts

    # ---- after the search ----------------------------------------------------------------
    def finish(self) -> dict[str, Any] | None:
        """The reference's time, stored on the study (a second run does not measure it again):
        raced beside the finalists, or - without a final race - timed alone."""
        spec, study = self.spec, self.study
        summary = study.user_attrs.get("reference")
        if spec.final_race > 1:
            raced = self._final_race()
            if raced is not None:
                summary = raced
                study.set_user_attr("reference", summary)
        if spec.reference is not None and summary is None:
            with _reference_errors():
                self.reference_outputs()
                raw = self.box.profile("reference", self.reference_library(), self.profile_opts)
            summary = _summary(raw, spec.rel_ci).to_attrs()
            study.set_user_attr("reference", summary)
        return summary

    def _raceable_reference(self) -> Path | None:
        if self.spec.reference is None:
            return None
        with contextlib.suppress(CompileError, VariantFailed):
            self.reference_outputs()  # a resumed run: compiled and checked once more
            return self.reference_library()
        return None

    def _final_race(self) -> dict[str, Any] | None:
        """Race the `final_race` fastest variants, and the reference when there is one, in
        interleaved rounds: the winner and its speed-up over the reference come from
        measurements taken side by side, not minutes apart (a machine's speed drifts). Every
        round is one request to the worker. Returns the reference's summary when it raced."""
        from airda.codeopt.racing import race
        from airda.trial import TrialState

        spec, study, box = self.spec, self.study, self.box
        done = [
            t
            for t in study.trials
            if t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs
        ]
        top = sorted(done, key=lambda t: (t.values[0], t.number))[: spec.final_race]
        if not top:
            return None
        numbers = [t.number for t in top]
        stored = study.user_attrs.get("final_race")
        if stored and sorted(stored.get("numbers", [])) == sorted(numbers):
            return None  # already raced these (a second run answered from storage)
        libs: dict[Any, tuple[str, Path]] = {}
        for t in top:
            lib = compile_variant(**spec._compile_job(t.params))
            libs[t.number] = (lib.stem, lib)
        reference = self._raceable_reference()
        if reference is not None:
            libs["reference"] = ("reference", reference)
        if len(libs) < 2:
            return None
        inner: dict[Any, int] = {}
        cid = clock_id(spec.clock)

        def one_round(alive: Sequence[Any], n: int) -> dict[Any, tuple[list[float], float]]:
            raws = box.rounds(
                [(libs[a][0], libs[a][1], inner.get(a, 0)) for a in alive],
                {"n_samples": n, "flush": spec.flush, "min_sample_s": 5e-5, "clock": cid},
            )
            out = {}
            for a, raw in zip(alive, raws, strict=True):
                inner[a] = int(raw["inner"])
                out[a] = (raw["samples"], float(raw["measured_s"]))
            return out

        try:
            # until one is left, or every interval is as narrow as the search's (`rel_ci`):
            # those left cannot be told apart at the precision asked for
            res = race(
                {a: None for a in libs},
                round_samples=5,
                rel_ci=spec.rel_ci,
                max_time_s=max(spec.max_time_s, 0.05),
                draw_round=one_round,
                interleaved=not spec.flush,  # with a cache flush the worker samples in blocks
            )
        except VariantFailed:
            return None  # a variant that passed before failed now: keep the search's ranking
        variants = {n: p for n, p in res.profiles.items() if n != "reference"}
        # the fastest variant left in the race (the reference may be faster than every variant)
        alive = [n for n in variants if n not in res.eliminated] or list(variants)
        winner = min(alive, key=lambda n: (variants[n].median, n))
        record: dict[str, Any] = {
            "numbers": numbers,
            "winner": int(winner),
            "medians": {str(n): p.median for n, p in variants.items()},
            "ci": {str(n): [p.ci_low, p.ci_high] for n, p in variants.items()},
            "rounds": res.rounds,
            "measured_s": res.measured_s,
        }
        ref_attrs = None
        if "reference" in res.profiles:
            ref = res.profiles["reference"]
            record["reference"] = {"median_s": ref.median, "ci": [ref.ci_low, ref.ci_high]}
            ref_attrs = ref.to_attrs()
        study.set_user_attr("final_race", record)
        return ref_attrs


def _summary(raw: Mapping[str, Any], rel_ci: float) -> Profile:
    p = summarize(raw["samples"], inner=int(raw["inner"]), rel_ci=rel_ci)
    return dataclasses.replace(
        p, measured_s=float(raw["measured_s"]), converged=bool(raw["converged"])
    )


def _ranked(study: Any) -> list[dict[str, Any]]:
    """The measured variants' summaries (this study's own, not answered from storage), fastest
    first."""
    from airda.trial import TrialState

    rows = [
        t.user_attrs
        for t in study.trials
        if t.state is TrialState.COMPLETE
        and "cached_from" not in t.user_attrs
        and "ci_high_s" in t.user_attrs
    ]
    return sorted(rows, key=lambda a: a["median_s"])

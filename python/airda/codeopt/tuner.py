"""Tuning compiled C/C++ variants: a space over ``-D`` parameters and compiler flags searched
by any core strategy, every candidate compiled (in parallel), checked against the reference and
timed in the sandbox worker, every result stored in the study.

The study's name is derived from a key over everything that decides a result (source,
reference, arguments, space, compiler and its version, the CPU): a second run with the same key
and storage continues the stored study and answers from it instead of measuring again.

Example:
    >>> from airda.codeopt import Arg, tune_c
    >>> src = '''
    ... void axpy(float* y, const float* x, int n) {
    ...     for (int i = 0; i < n; i += UNROLL)
    ...         for (int u = 0; u < UNROLL && i + u < n; ++u) y[i + u] += 2.0f * x[i + u];
    ... }'''
    >>> args = [Arg("float32", (256,), "zeros", out=True), Arg("float32", (256,)),
    ...         Arg("int32", value=256)]
    >>> res = tune_c(src, "axpy", args, params={"UNROLL": [1, 2, 4]}, flags=["-O1", "-O2"],
    ...              reference=src.replace("UNROLL", "1"), budget=6, strategy="grid",
    ...              max_time_s=0.01)
    >>> res.n_complete, res.n_failed, sorted(res.best_params)
    (6, 0, ['UNROLL', 'flags'])
    >>> res.speedup > 0
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airda.codeopt.cvariants import (
    Arg,
    CompileError,
    compile_variant,
    compile_variants,
    compiler_version,
    local_headers,
)
from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import Profile, clock_id, summarize
from airda.codeopt.sandbox import Limits, Sandbox, VariantFailed

__all__ = ["TuneResult", "cpu_model", "tune_c"]


def cpu_model() -> str:
    """The CPU's model name (part of the cache key: timings do not carry across machines)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class TuneResult:
    """What a tuning run found.

    Attributes:
        study: the study holding every trial (value = median seconds per call).
        best_params: the fastest correct variant's parameters (None if none passed).
        best: its measurement summary (median_s, ci_low_s, ci_high_s, cv, ...), or None.
        reference: the reference's measurement summary, or None without a reference.
        speedup: reference median / best median, or None.
        evaluated: variants measured in this run (the rest were answered from storage).
    """

    study: Any
    best_params: dict[str, Any] | None
    best: dict[str, Any] | None
    reference: dict[str, Any] | None
    speedup: float | None
    evaluated: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_complete(self) -> int:
        return sum(1 for r in self.rows if r["state"] == "complete")

    @property
    def n_failed(self) -> int:
        return sum(1 for r in self.rows if r["state"] == "fail")

    def table(self, top: int | None = 20) -> str:
        """A plain-text table of the variants, fastest first, failures last."""
        ref = self.reference["median_s"] if self.reference else None
        done = sorted(
            (r for r in self.rows if r["state"] == "complete"), key=lambda r: r["median_s"]
        )
        failed = [r for r in self.rows if r["state"] != "complete"]
        lines = []
        names = sorted({k for r in self.rows for k in r["params"]})
        head = ["#", *names, "median", "95% CI", "CV", "speed-up", "note"]
        body = []
        for r in (done[:top] if top else done) + failed:
            p = r["params"]
            if r["state"] == "complete":
                note = "raced out" if r.get("raced_out") else ("noisy" if r.get("noisy") else "")
                if r.get("cached"):
                    note = (note + " cached").strip()
                body.append(
                    [
                        str(r["number"]),
                        *[str(p.get(n, "")) for n in names],
                        _fmt_s(r["median_s"]),
                        f"{_fmt_s(r['ci_low_s'])}..{_fmt_s(r['ci_high_s'])}",
                        f"{r['cv']:.1%}",
                        f"{ref / r['median_s']:.2f}x" if ref and r["median_s"] > 0 else "",
                        note,
                    ]
                )
            else:
                err = r.get("error") or r["state"]
                if r.get("failure") == "compile":
                    err = "compile: " + first_compile_error(err)
                err = err.replace("\n", " ")
                body.append(
                    [
                        str(r["number"]),
                        *[str(p.get(n, "")) for n in names],
                        "-",
                        "-",
                        "-",
                        "-",
                        "FAILED: " + (err[:70] + "..." if len(err) > 70 else err),
                    ]
                )
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
        ]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
        for b in body:
            lines.append("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip())
        return "\n".join(lines)


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g} us"
    return f"{s * 1e9:.3g} ns"


def _read_source(src: str | os.PathLike[str]) -> tuple[str, bool | None]:
    if isinstance(src, os.PathLike):
        path = Path(src)
        return path.read_text(), path.suffix in (".cpp", ".cc", ".cxx", ".C")
    return str(src), None


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


# A compiler message names the compiled copy of the kernel, <cache>/<24 hex digits>.c.
_CACHED_SOURCE = re.compile(r"[^\s:'\"]*/[0-9a-f]{24}\.(?:c|cpp)\b")


def _check_params_used(names: Sequence[str], text: str, path: Path | None) -> None:
    """A tuned macro the source never mentions only multiplies identical variants: most
    likely a typo. An error, or a warning when a local header could not be read."""
    headers, complete = local_headers(text, [path.parent] if path is not None else [])
    texts = [text, *headers]
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
    warnings.warn(msg, UserWarning, stacklevel=3)


def tune_c(
    source: str | os.PathLike[str],
    entry: str,
    args: Sequence[Arg],
    *,
    params: Mapping[str, Sequence[Any]] | None = None,
    flags: Sequence[str] = ("-O2",),
    defines: Mapping[str, Any] | None = None,
    reference: str | os.PathLike[str] | None = None,
    reference_entry: str | None = None,
    reference_flags: str = "-O2",
    expected: Sequence[Any] | None = None,
    verify: Callable[[Sequence[Any], Sequence[Any]], Any] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    budget: int | None = None,
    timeout: float | None = None,
    strategy: str | Any = "random",
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
    cpp: bool | None = None,
    compiler: str | None = None,
    jobs: int | None = None,
    variant_timeout: float = 10.0,
    max_time_s: float = 0.5,
    rel_ci: float = 0.02,
    flush: bool = False,
    race: bool = True,
    final_race: int = 4,
    clock: str = "wall",
    arg_seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
    limits: Limits | None = None,
    env: Mapping[str, str] | Sequence[str] | None = None,
) -> TuneResult:
    """Search the variants of a C/C++ kernel for the fastest correct one.

    Args:
        source: the kernel's source text, or a path (``.cpp``/``.cc`` compile as C++).
        entry: the function to call; its arguments are `args`, in order.
        args: :class:`Arg` descriptions (arrays by pointer, scalars by value).
        params: ``-D`` parameters to tune, each with its candidate values.
        flags: compiler flag sets to choose from (each a string, e.g. ``"-O3 -march=native"``).
        defines: fixed ``-D`` values for every variant and the reference.
        reference: the reference source (text or path): its outputs are the correct answer and
            its time the baseline of the speed-up. `reference_entry` defaults to `entry`.
        expected: the correct outputs, when there is no reference source.
        verify / atol / rtol: the correctness gate (see :func:`check_outputs`).
        budget: distinct variants to evaluate in the study (stored ones count), None for all.
        timeout: seconds for this run (checked between variants).
        strategy: any core strategy name (``random``, ``grid``, ``rea``, ``local``, ...) or one.
        storage / study_name: where trials are kept (None: in memory); the name defaults to
            one derived from the tuning key, so a second run resumes / answers from storage.
        jobs: compiler processes in parallel (default: the CPU count).
        variant_timeout: seconds one call of a variant may take before it counts as hung (a
            measurement of many calls may take longer).
        max_time_s / rel_ci / flush: the profiler's cap, target CI width, cache flush.
        final_race: after the search, race this many fastest variants and the reference
            against each other in interleaved rounds, compared pair by pair, for up to
            `max_time_s` of measurement (so a drift of the machine's speed during the search
            does not pick the winner); the winner and the reference's time are stored on the
            study. 0 or 1: off (the reference is then timed alone).
        clock: ``"wall"`` or ``"cpu"`` (the worker thread's CPU time: steadier on a loaded
            machine, for single-threaded kernels).
        race: stop a variant's measurement as soon as its interval lies clearly behind the
            `final_race`-th best so far (it is recorded with that rough estimate, marked
            ``raced_out``) or, with a final race, clearly ahead of it (a finalist, measured
            again in the final race); when the whole budget fits the final race, every variant
            is a finalist after its first samples.
        progress: called with each finished row (for a progress display).
        limits / env: the sandbox's resource limits (:class:`~airda.codeopt.Limits`) and the
            environment variables passed to the variants beyond the allow-list (names, or
            ``"NAME=VALUE"``, or a mapping); see :class:`~airda.codeopt.Sandbox`.

    The study holds one trial per variant: a candidate the strategy proposes again is answered
    from the study without a new trial, whether it passed or failed.
    """
    from airda.space import Categorical, Space
    from airda.strategies import StrategyExhausted
    from airda.study import create_study
    from airda.trial import TrialState

    text, is_cpp = _read_source(source)
    cpp = bool(cpp if cpp is not None else is_cpp)
    ref_text, ref_cpp = (None, None) if reference is None else _read_source(reference)
    ref_cpp = bool(ref_cpp if ref_cpp is not None else cpp)
    args = list(args)
    if not any(a.out for a in args):
        raise ValueError("no argument is marked as an output (out=True / ':out')")
    if not flags:
        raise ValueError("flags is empty: give at least one flag set (e.g. '-O2')")
    params = {k: list(v) for k, v in (params or {}).items()}
    for k, v in params.items():
        if not v:
            raise ValueError(f"parameter {k!r} has no values")
    if "flags" in params:
        raise ValueError("'flags' is reserved for the compiler flag sets")
    fixed = dict(defines or {})
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1 evaluations, got {budget}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    for name, value in (("variant_timeout", variant_timeout), ("max_time_s", max_time_s)):
        if isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    _check_params_used(
        list(params), text, Path(source) if isinstance(source, os.PathLike) else None
    )
    n_jobs = jobs or os.cpu_count() or 1
    label = (
        Path(source).name if isinstance(source, os.PathLike) else f"kernel.{'cpp' if cpp else 'c'}"
    )
    # A kernel given as a file may include headers beside it: its folder is searched (the
    # compiled copy lives in the cache folder).
    includes = [str(Path(source).parent)] if isinstance(source, os.PathLike) else []
    ref_includes = [str(Path(reference).parent)] if isinstance(reference, os.PathLike) else []
    space_params: dict[str, Any] = {k: Categorical(v) for k, v in params.items()}
    space_params["flags"] = Categorical(list(flags))
    space = Space(space_params)

    cc = compiler or os.environ.get("CXX" if cpp else "CC", "c++" if cpp else "cc")
    key_doc = {
        "source": text,
        "headers": local_headers(text, includes)[0],
        "entry": entry,
        "cpp": cpp,
        "args": [a.describe() for a in args],
        "arg_seed": arg_seed,
        "defines": {k: str(v) for k, v in sorted(fixed.items())},
        "space": space.to_dict(),
        "reference": ref_text,
        "reference_entry": reference_entry,
        "reference_flags": reference_flags,
        "gate": [atol, rtol, verify is not None, expected is not None],
        "compiler": [cc, compiler_version(cc)],
        "cpu": cpu_model(),
        "flush": flush,
        "clock": clock,
    }
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:16]
    name = study_name or f"tune-{entry}-{key}"
    study = create_study(
        name,
        storage=storage,
        space=space,
        strategy=strategy,
        seed=seed,
        load_if_exists=True,
        user_attrs={"tune_key": key, "kind": "tune-c", "entry": entry},
    )
    stored_key = study.user_attrs.get("tune_key")
    if stored_key != key:
        raise ValueError(
            f"study {name!r} was tuned with another kernel, arguments or space "
            f"(key {stored_key} != {key}); choose another study name"
        )
    size = int(space.size())
    target = size if budget is None else min(budget, size)
    box = Sandbox(args, seed=arg_seed, timeout=variant_timeout, limits=limits, env=env)
    box.start()  # the worker's interpreter starts while the first variants compile
    profile_opts = {
        "warmup": 2,
        "inner": 0,
        "min_sample_s": 5e-5,
        "min_samples": 10,
        "max_samples": 100_000,
        "rel_ci": rel_ci,
        "confidence": 0.95,
        "max_time_s": max_time_s,
        "flush": flush,
        "flush_bytes": 0,
        "clock": clock_id(clock),
    }
    state: dict[str, Any] = {"expected": list(expected) if expected is not None else None}
    deadline = None if timeout is None else time.monotonic() + timeout
    evaluated = 0
    k_final = final_race if final_race > 1 else 1

    def ref_job() -> dict[str, Any]:
        return {
            "source": ref_text,
            "entry": reference_entry or entry,
            "args": args,
            "defines": fixed,
            "flags": reference_flags,
            "cpp": ref_cpp,
            "compiler": compiler,
            "include_dirs": ref_includes,
        }

    def reference_outputs() -> list[Any] | None:
        if state["expected"] is None and ref_text is not None:
            lib = state.get("ref_lib")
            if lib is None:
                lib = compile_variant(**ref_job())
            if isinstance(lib, CompileError):
                raise lib
            state["ref_lib"] = lib
            state["expected"] = box.run("reference", lib)
        return state["expected"]

    try:
        # The reference's time is stored on the study (a second run does not re-measure it).
        # It is measured in the final race, beside the finalists, or alone after the search
        # when there is no final race.
        ref_summary = study.user_attrs.get("reference")
        done_keys = _finished_keys(study)
        misses = 0
        exhausted = False
        while len(done_keys) < target and not exhausted:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if misses > 20 * target:
                break  # the strategy keeps proposing variants already measured
            want = min(n_jobs, target - len(done_keys))
            # Candidates are asked from the strategy, and a trial is created only for a new
            # one, right before it is evaluated: a candidate proposed again is not stored
            # again (one trial per variant), and a failing reference stores nothing.
            batch: list[dict[str, Any]] = []
            keys: set[str] = set()
            while len(batch) < want and misses <= 20 * target:
                try:
                    params_ = _propose(study)
                except StrategyExhausted:
                    exhausted = True
                    break
                ck = _ckey(params_)
                if ck in done_keys or ck in keys:
                    misses += 1
                    continue
                batch.append(params_)
                keys.add(ck)
            if not batch:
                continue
            misses = 0
            compile_jobs = [
                {
                    "source": text,
                    "entry": entry,
                    "args": args,
                    "defines": fixed | {k: v for k, v in p.items() if k != "flags"},
                    "flags": p["flags"],
                    "cpp": cpp,
                    "compiler": compiler,
                    "include_dirs": includes,
                }
                for p in batch
            ]
            # The reference compiles beside the first variants (its output is the answer).
            with_ref = ref_text is not None and state["expected"] is None and "ref_lib" not in state
            if with_ref:
                compile_jobs.append(ref_job())
            libs = compile_variants(compile_jobs, workers=n_jobs + with_ref)
            if with_ref:
                state["ref_lib"] = libs.pop()
                try:
                    reference_outputs()
                except CompileError as exc:
                    raise ValueError(f"the reference does not compile: {exc}") from None
                except VariantFailed as exc:
                    raise ValueError(f"the reference failed: {exc.reason}") from None
            for params_, lib in zip(batch, libs, strict=True):
                trial = study.ask(fixed=params_)
                try:
                    frozen = _evaluate(
                        study,
                        box,
                        trial,
                        lib,
                        reference_outputs,
                        profile_opts,
                        rel_ci,
                        race,
                        k_final,
                        target <= k_final,
                        verify,
                        atol,
                        rtol,
                        label,
                    )
                except BaseException:
                    # Interrupted (Ctrl-C, a SIGTERM, an error of the reference): this trial
                    # stands for no measurement; a later run measures the variant again.
                    with contextlib.suppress(Exception):
                        trial.set_user_attr("interrupted", True)
                        study.tell(trial, state=TrialState.FAIL, error="interrupted")
                    raise
                evaluated += 1
                done_keys[_ckey(params_)] = frozen
                if progress is not None:
                    progress(_row(frozen))

        def reference_lib() -> Path | None:
            if ref_text is not None and not isinstance(state.get("ref_lib"), Path):
                with contextlib.suppress(CompileError, VariantFailed):
                    reference_outputs()  # a resumed run: compile it once more
            lib = state.get("ref_lib")
            return lib if isinstance(lib, Path) else None

        if final_race > 1:
            raced_ref = _final_race(
                study,
                box,
                final_race,
                max_time_s,
                rel_ci,
                clock,
                reference_lib,
                lambda p: compile_variant(
                    text,
                    entry,
                    args,
                    defines=fixed | {k: v for k, v in p.items() if k != "flags"},
                    flags=p["flags"],
                    cpp=cpp,
                    compiler=compiler,
                    include_dirs=includes,
                ),
                flush,
            )
            if raced_ref is not None:
                ref_summary = raced_ref
                study.set_user_attr("reference", ref_summary)
        if ref_text is not None and ref_summary is None:
            # No final race (or it did not time the reference): time it alone.
            try:
                reference_outputs()
                lib = reference_lib()
                if lib is None:
                    raise CompileError("the reference did not compile")
                raw = box.profile("reference", lib, profile_opts)
            except CompileError as exc:
                raise ValueError(f"the reference does not compile: {exc}") from None
            except VariantFailed as exc:
                raise ValueError(f"the reference failed: {exc.reason}") from None
            ref_summary = _summary(raw, rel_ci).to_attrs()
            study.set_user_attr("reference", ref_summary)
    finally:
        box.close()
    return _result(study, ref_summary, evaluated)


def _final_race(
    study: Any,
    box: Sandbox,
    k: int,
    max_time_s: float,
    rel_ci: float,
    clock: str,
    reference_lib: Callable[[], Path | None],
    library: Callable[[Mapping[str, Any]], Path],
    flush: bool = False,
) -> dict[str, Any] | None:
    """Race the `k` fastest variants, and the reference when there is one, in interleaved
    rounds: the winner and its speed-up over the reference come from measurements taken side
    by side, not minutes apart (a machine's speed drifts). Every round is one request to the
    worker. Returns the reference's summary when it raced."""
    from airda.codeopt.racing import race
    from airda.trial import TrialState

    done = [
        t
        for t in study.trials
        if t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs
    ]
    top = sorted(done, key=lambda t: (t.values[0], t.number))[:k]
    if not top:
        return None
    numbers = [t.number for t in top]
    stored = study.user_attrs.get("final_race")
    if stored and sorted(stored.get("numbers", [])) == sorted(numbers):
        return None  # already raced these (a second run answered from storage)
    libs: dict[Any, tuple[str, Path]] = {}
    for t in top:
        lib = library(t.params)
        libs[t.number] = (lib.stem, lib)
    reference = reference_lib()
    if reference is not None:
        libs["reference"] = ("reference", reference)
    if len(libs) < 2:
        return None
    inner: dict[Any, int] = {}
    cid = clock_id(clock)

    def one_round(alive: Sequence[Any], n: int) -> dict[Any, tuple[list[float], float]]:
        raws = box.rounds(
            [(libs[a][0], libs[a][1], inner.get(a, 0)) for a in alive],
            {"n_samples": n, "flush": flush, "min_sample_s": 5e-5, "clock": cid},
        )
        out = {}
        for a, raw in zip(alive, raws, strict=True):
            inner[a] = int(raw["inner"])
            out[a] = (raw["samples"], float(raw["measured_s"]))
        return out

    try:
        # until one is left, or every interval is as narrow as the search's (`rel_ci`): those
        # left cannot be told apart at the precision asked for
        res = race(
            {a: None for a in libs},
            round_samples=5,
            rel_ci=rel_ci,
            max_time_s=max(max_time_s, 0.05),
            draw_round=one_round,
            interleaved=not flush,  # with a cache flush the worker samples in blocks
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


def _ckey(params: Mapping[str, Any]) -> str:
    from airda.space import candidate_key

    return candidate_key(dict(params))


def _propose(study: Any) -> dict[str, Any]:
    """The strategy's next candidate, without creating a trial (the study's history told to
    the strategy first)."""
    _ = study.trials  # catch up with the storage: finished trials are told to the strategy
    return dict(study.strategy.ask(1)[0])


def _counts(t: Any) -> bool:
    """Whether a stored trial stands for a variant's result (not a copy answered from storage
    by an older version, not an interrupted evaluation)."""
    return "cached_from" not in t.user_attrs and not t.user_attrs.get("interrupted")


def _finished_keys(study: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in study.trials:
        if t.state.finished and _counts(t):
            out.setdefault(_ckey(t.params), t)
    return out


def _summary(raw: Mapping[str, Any], rel_ci: float) -> Profile:
    import dataclasses

    p = summarize(raw["samples"], inner=int(raw["inner"]), rel_ci=rel_ci)
    return dataclasses.replace(
        p, measured_s=float(raw["measured_s"]), converged=bool(raw["converged"])
    )


def _best_attrs(study: Any) -> dict[str, Any] | None:
    try:
        best = study.best_trial
    except ValueError:
        return None
    return dict(best.user_attrs)


def _evaluate(
    study: Any,
    box: Sandbox,
    trial: Any,
    lib: Path | CompileError,
    reference_outputs: Callable[[], Any],
    opts: dict[str, Any],
    rel_ci: float,
    race: bool,
    k_final: int,
    all_finalists: bool,
    verify: Any,
    atol: float,
    rtol: float,
    label: str = "kernel.c",
) -> Any:
    from airda.trial import TrialState

    def fail(kind: str, reason: str) -> Any:
        trial.set_user_attr("failure", kind)
        return study.tell(trial, state=TrialState.FAIL, error=reason)

    if isinstance(lib, CompileError):
        # the compiled copy's lines are the kernel's (the trampoline comes after them)
        return fail("compile", _CACHED_SOURCE.sub(label, str(lib)))
    vkey = lib.stem
    try:
        expected = reference_outputs()
    except CompileError as exc:
        raise ValueError(f"the reference does not compile: {exc}") from None
    except VariantFailed as exc:
        raise ValueError(f"the reference failed: {exc.reason}") from None
    try:
        outputs = box.run(vkey, lib)
    except VariantFailed as exc:
        return fail(exc.kind, exc.reason)
    if expected is not None or verify is not None:
        problem = check_outputs(outputs, expected or [], atol=atol, rtol=rtol, verify=verify)
        if problem is not None:
            return fail("wrong", problem)
    opts = dict(opts)
    if race:
        # Racing within the search, in the same measurement: stop as soon as the median's
        # interval lies clearly behind the k-th best so far (it cannot reach the final race of
        # the k fastest; k = 1 without a final race), or - with a final race, which measures its
        # finalists again side by side - clearly ahead of it (it is a finalist). When the whole
        # budget is at most k variants, every variant is a finalist: its first samples suffice.
        ranked = _ranked(study)
        if k_final > 1 and all_finalists:
            opts["stop_below"] = math.inf
        elif len(ranked) >= k_final:
            kth = ranked[k_final - 1]
            opts["stop_above"] = kth["ci_high_s"] * 1.02
            if k_final > 1:
                opts["stop_below"] = kth["ci_low_s"]
    try:
        raw = box.profile(vkey, lib, opts)
    except VariantFailed as exc:
        return fail(exc.kind, exc.reason)
    p = _summary(raw, rel_ci)
    for k, v in p.to_attrs().items():
        trial.set_user_attr(k, v)
    stopped = int(raw.get("stopped", 0))
    if stopped > 0:
        trial.set_user_attr("raced_out", True)
    elif stopped < 0:
        trial.set_user_attr("finalist", True)
    if not math.isfinite(p.median):
        return fail("timing", "non-finite time")
    return study.tell(trial, p.median)


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


def _row(t: Any) -> dict[str, Any]:
    a = t.user_attrs
    return {
        "number": t.number,
        "params": dict(t.params),
        "state": t.state.value,
        "median_s": a.get("median_s", t.values[0] if t.values else None),
        "ci_low_s": a.get("ci_low_s"),
        "ci_high_s": a.get("ci_high_s"),
        "cv": a.get("cv"),
        "noisy": a.get("noisy"),
        "raced_out": a.get("raced_out", False),
        "cached": "cached_from" in a,
        "error": t.error,
        "failure": a.get("failure"),
    }


def _result(study: Any, ref: dict[str, Any] | None, evaluated: int) -> TuneResult:
    rows = [_row(t) for t in study.trials if t.state.finished and _counts(t)]
    final = study.user_attrs.get("final_race")
    try:
        best = study.best_trial
        if final and final.get("winner") is not None:
            best = next((t for t in study.trials if t.number == final["winner"]), best)
        best_params, best_attrs = dict(best.params), dict(best.user_attrs)
        if final and str(best.number) in final.get("medians", {}):
            # The interleaved final race measured the finalists side by side: its numbers.
            best_attrs["median_s"] = final["medians"][str(best.number)]
            best_attrs["ci_low_s"], best_attrs["ci_high_s"] = final["ci"][str(best.number)]
            best_attrs["final_race"] = True
    except ValueError:
        best_params, best_attrs = None, None
    raced = final.get("reference") if final else None
    if raced and ref and best_attrs is not None and best_attrs.get("final_race"):
        # the reference raced beside the finalists: the speed-up from the same rounds
        ref = dict(ref)
        ref["median_s"] = raced["median_s"]
        ref["ci_low_s"], ref["ci_high_s"] = raced["ci"]
        ref["final_race"] = True
    speedup = None
    if ref and best_attrs and best_attrs.get("median_s"):
        speedup = ref["median_s"] / best_attrs["median_s"]
    return TuneResult(study, best_params, best_attrs, ref, speedup, evaluated, rows)


def _print_progress(row: Mapping[str, Any]) -> None:  # pragma: no cover - terminal only
    if sys.stderr.isatty():
        print(f"\rvariant {row['number']}: {row['state']}", end="", file=sys.stderr, flush=True)

"""The one search loop of code optimisation, and what it returns.

Compiled C/C++ variants (:func:`~airda.codeopt.tune_c`), Python callables
(:func:`~airda.codeopt.tune_python`) and Triton configs (:func:`~airda.codeopt.autotune`) are
searched by :func:`search_variants`: the study's strategy proposes, a candidate with a stored
result is skipped, the new ones are prepared as a batch (compiled in parallel), then each is
evaluated in a trial of its own and told.

Not :meth:`Study.optimize <airda.study.Study.optimize>`: it starts a trial before the objective
sees the candidate, so a repeated proposal would be stored again (as a copy of the earlier
result), and a batch could not be compiled before its trials start.

Example:
    >>> import airda
    >>> from airda.codeopt import VariantFailed, search_variants
    >>> from airda.codeopt.search import tune_result
    >>> costs = {"a": 3.0, "b": 1.0, "c": None}
    >>> def evaluate(trial, prepared):
    ...     cost = costs[trial.params["variant"]]
    ...     if cost is None:
    ...         raise VariantFailed("wrong output", "wrong")
    ...     return cost
    >>> space = {"variant": airda.space.Categorical(list(costs))}
    >>> study = airda.create_study(space=space, strategy="grid")
    >>> search_variants(study, evaluate)  # variants evaluated now
    3
    >>> res = tune_result(study, None, 3)
    >>> res.best_params, res.n_failed, len(study.trials)
    ({'variant': 'b'}, 1, 3)
    >>> search_variants(study, evaluate)  # every variant has its result
    0
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from airda.codeopt.cvariants import first_compile_error
from airda.codeopt.sandbox import VariantFailed

__all__ = [
    "TuneResult",
    "check_budget",
    "format_seconds",
    "result_row",
    "search_variants",
    "stored_variants",
    "tune_result",
    "variant_errors",
]

# Proposals of variants already evaluated, in a row, per variant of the target, after which a
# strategy counts as one that only repeats itself.
_MAX_MISSES_PER_TARGET = 20


def search_variants(
    study: Any,
    evaluate: Callable[[Any, Any], float],
    *,
    budget: int | None = None,
    batch: int = 1,
    prepare: Callable[[list[dict[str, Any]]], Sequence[Any]] | None = None,
    timeout: float | None = None,
    progress: Callable[[Any], None] | None = None,
) -> int:
    """Evaluate the distinct variants the study's strategy proposes, one trial each.

    The search stops when `budget` variants of the study have a result (those stored before
    count; None: every variant of the finite space), the strategy is exhausted or only
    proposes variants evaluated before, or `timeout` seconds have passed (checked between
    batches).

    Args:
        study: the study; its space is the variants' space, its strategy proposes.
        evaluate: ``evaluate(trial, prepared)`` measures one variant and returns the value to
            minimise (it may set user attributes on the trial first). Raising
            :class:`~airda.codeopt.VariantFailed` records the variant as failed, with the
            reason as the error and the kind as the ``failure`` attribute. Any other exception
            marks the trial ``interrupted`` (it stands for no result: a later search measures
            the variant again) and propagates.
        budget: distinct variants with a result in the study at the end.
        batch: new variants asked and prepared together.
        prepare: turns a batch of new candidates into what `evaluate` gets for each, in
            order (e.g. compiles them in parallel), before any of their trials starts: an
            exception there stores nothing. None: `evaluate` gets None.
        timeout: seconds for this search.
        progress: called with each finished trial.

    Returns:
        The number of variants evaluated (the rest were answered from storage).

    A candidate proposed again is answered by its stored trial, passed or failed, without a
    new one; each trial records the strategy's ask it stands for, so a resumed search goes on
    from where it stopped.
    """
    from airda.space import candidate_key
    from airda.strategies import StrategyExhausted

    check_budget(budget)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    size = study.space.size()
    if budget is None and math.isinf(size):
        raise ValueError("the space has continuous parameters: give a budget")
    target = size if budget is None else min(budget, size)
    max_misses = _MAX_MISSES_PER_TARGET * target
    deadline = None if timeout is None else time.monotonic() + timeout
    done = stored_variants(study)
    evaluated = misses = 0
    exhausted = False
    while len(done) < target and not exhausted and misses <= max_misses:
        if deadline is not None and time.monotonic() >= deadline:
            break
        want = min(batch, int(target - len(done)))
        fresh: dict[str, tuple[int, dict[str, Any]]] = {}
        while len(fresh) < want and misses <= max_misses:
            try:
                asked = study.ask_candidates(want - len(fresh))
            except StrategyExhausted:
                exhausted = True
                break
            for index, params in asked:
                key = candidate_key(params)
                if key in done or key in fresh:
                    misses += 1
                else:
                    fresh[key] = (index, params)
        if not fresh:
            continue
        misses = 0
        candidates = [params for _, params in fresh.values()]
        prepared = list(prepare(candidates)) if prepare is not None else [None] * len(fresh)
        for (key, (index, params)), item in zip(fresh.items(), prepared, strict=True):
            frozen = _evaluate(study, study.ask(fixed=params, ask_index=index), evaluate, item)
            evaluated += 1
            done[key] = frozen
            if progress is not None:
                progress(frozen)
    return evaluated


def check_budget(budget: int | None) -> None:
    """A budget is None (the whole space) or a number of variants >= 1."""
    if budget is not None and (isinstance(budget, bool) or budget < 1):
        raise ValueError(f"budget must be >= 1 evaluations, got {budget}")


def _evaluate(study: Any, trial: Any, evaluate: Callable[[Any, Any], float], item: Any) -> Any:
    from airda.trial import TrialState

    try:
        value = evaluate(trial, item)
    except VariantFailed as exc:
        trial.set_user_attr("failure", exc.kind)
        return study.tell(trial, state=TrialState.FAIL, error=exc.reason)
    except BaseException:
        # Interrupted (Ctrl-C, a SIGTERM, an error of the reference): this trial stands for
        # no measurement; a later search measures the variant again.
        with contextlib.suppress(Exception):
            trial.set_user_attr("interrupted", True)
            study.tell(trial, state=TrialState.FAIL, error="interrupted")
        raise
    return study.tell(trial, value)


@contextlib.contextmanager
def variant_errors() -> Iterator[None]:
    """An exception inside fails the variant (a :class:`~airda.codeopt.VariantFailed` of kind
    ``"error"`` naming it), not the search: for code run in this process."""
    try:
        yield
    except VariantFailed:
        raise
    except Exception as exc:
        raise VariantFailed(f"{type(exc).__name__}: {exc}", "error") from None


def _counts(t: Any) -> bool:
    """Whether a stored trial stands for a variant's result (not a copy answered from storage
    by an older version, not an interrupted evaluation)."""
    return "cached_from" not in t.user_attrs and not t.user_attrs.get("interrupted")


def stored_variants(study: Any) -> dict[str, Any]:
    """Candidate key -> the finished trial that holds the variant's result (the first, when an
    older version stored several)."""
    from airda.space import candidate_key

    out: dict[str, Any] = {}
    for t in study.trials:
        if t.state.finished and _counts(t):
            out.setdefault(candidate_key(t.params), t)
    return out


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
        rows: one per variant (see :func:`result_row`).
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
        names = sorted({k for r in self.rows for k in r["params"]})
        head = ["#", *names, "median", "95% CI", "CV", "speed-up", "note"]
        body = []
        for r in (done[:top] if top else done) + failed:
            cells = [str(r["number"]), *[str(r["params"].get(n, "")) for n in names]]
            if r["state"] == "complete":
                note = "raced out" if r.get("raced_out") else ("noisy" if r.get("noisy") else "")
                if r.get("cached"):
                    note = (note + " cached").strip()
                cells += [
                    format_seconds(r["median_s"]),
                    f"{format_seconds(r['ci_low_s'])}..{format_seconds(r['ci_high_s'])}",
                    f"{r['cv']:.1%}",
                    f"{ref / r['median_s']:.2f}x" if ref and r["median_s"] > 0 else "",
                    note,
                ]
            else:
                err = r.get("error") or r["state"]
                if r.get("failure") == "compile":
                    err = "compile: " + first_compile_error(err)
                err = err.replace("\n", " ")
                cells += ["-"] * 4 + ["FAILED: " + (err[:70] + "..." if len(err) > 70 else err)]
            body.append(cells)
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
        ]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [head, *body]
        )


def format_seconds(s: float) -> str:
    """``0.00123`` -> ``'1.23 ms'``: three significant digits in s, ms, us or ns."""
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g} us"
    return f"{s * 1e9:.3g} ns"


def result_row(t: Any) -> dict[str, Any]:
    """A finished trial as a row of :attr:`TuneResult.rows`: number, params, state, median_s,
    ci_low_s, ci_high_s, cv, noisy, raced_out, cached, error, failure."""
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


def tune_result(study: Any, reference: dict[str, Any] | None, evaluated: int) -> TuneResult:
    """The result of a search stored in `study`: its variants, the best (the winner of a final
    race stored on the study, else the fastest), and the speed-up over `reference` (a
    measurement summary, or None)."""
    rows = [result_row(t) for t in study.trials if t.state.finished and _counts(t)]
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
    if raced and reference and best_attrs is not None and best_attrs.get("final_race"):
        # the reference raced beside the finalists: the speed-up from the same rounds
        reference = dict(reference)
        reference["median_s"] = raced["median_s"]
        reference["ci_low_s"], reference["ci_high_s"] = raced["ci"]
        reference["final_race"] = True
    speedup = None
    if reference and best_attrs and best_attrs.get("median_s"):
        speedup = reference["median_s"] / best_attrs["median_s"]
    return TuneResult(study, best_params, best_attrs, reference, speedup, evaluated, rows)

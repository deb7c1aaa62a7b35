"""Python callables as variants: alternative implementations of one function (NumPy, PyTorch,
``torch.compile`` modes, ...), checked against a reference and timed with the call overhead
subtracted, searched and stored like the compiled variants.

Example:
    >>> import numpy as np
    >>> from airda.codeopt import tune_python
    >>> x = np.arange(10_000, dtype=np.float64)
    >>> variants = {
    ...     "loop": lambda v: sum(float(a) * a for a in v),
    ...     "dot": lambda v: float(v @ v),
    ...     "wrong": lambda v: float(v @ v) * 1.01,
    ... }
    >>> res = tune_python(variants, (x,), reference=lambda v: float(np.sum(v * v)),
    ...                   max_time_s=0.02)
    >>> res.best_params["variant"], res.n_failed
    ('dot', 1)
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import time_callable
from airda.codeopt.tuner import TuneResult, _result

__all__ = ["tune_python"]


def _as_outputs(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _source_id(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(type(fn)))


def tune_python(
    variants: Mapping[str, Callable[..., Any]],
    args: Sequence[Any] = (),
    *,
    reference: Callable[..., Any] | None = None,
    expected: Any = None,
    verify: Callable[[Sequence[Any], Sequence[Any]], Any] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    strategy: str | Any = "grid",
    budget: int | None = None,
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
    max_time_s: float = 0.5,
    rel_ci: float = 0.02,
    sync: Callable[[], Any] | None = None,
) -> TuneResult:
    """Find the fastest correct callable among `variants` (name -> callable of `args`).

    Every variant is called once on a copy of `args` and its result compared with the
    reference's (`reference(*args)` or `expected`) by :func:`check_outputs`; a variant that
    raises or disagrees is recorded as failed with the reason. The correct ones are timed by
    :func:`time_callable` (overhead subtracted). The study's value is the median seconds.
    """
    from airda.space import Categorical
    from airda.strategies import StrategyExhausted
    from airda.study import create_study
    from airda.trial import TrialState

    if not variants:
        raise ValueError("variants is empty")
    for name, fn in variants.items():
        if not callable(fn):
            raise TypeError(f"variant {name!r} is not callable")
    args = tuple(args)
    key_doc = {k: _source_id(v) for k, v in sorted(variants.items())}
    key_doc["__reference__"] = _source_id(reference) if reference is not None else ""
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:16]
    study = create_study(
        study_name or f"tune-py-{key}",
        storage=storage,
        space={"variant": Categorical(list(variants))},
        strategy=strategy,
        seed=seed,
        load_if_exists=True,
        user_attrs={"tune_key": key, "kind": "tune-python"},
    )
    ref_summary = study.user_attrs.get("reference")
    want: list[Any] | None = None
    if reference is not None:
        want = _as_outputs(reference(*copy.deepcopy(args)))
        if ref_summary is None:
            ref_summary = time_callable(
                reference, *args, max_time_s=max_time_s, rel_ci=rel_ci, sync=sync
            ).to_attrs()
            study.set_user_attr("reference", ref_summary)
    elif expected is not None:
        want = _as_outputs(expected)
    done = {t.params["variant"] for t in study.trials if t.state.finished}
    target = len(variants) if budget is None else min(budget, len(variants))
    evaluated = 0
    misses = 0
    while len(done) < target and misses <= 20 * target:
        try:
            trial = study.ask()
        except StrategyExhausted:
            break
        name = trial.params["variant"]
        if name in done:
            misses += 1
            study.tell(trial, state=TrialState.FAIL, error=f"duplicate of variant {name!r}")
            continue
        done.add(name)
        evaluated += 1
        fn = variants[name]
        try:
            got = _as_outputs(fn(*copy.deepcopy(args)))
        except Exception as exc:
            trial.set_user_attr("failure", "error")
            study.tell(trial, state=TrialState.FAIL, error=f"{type(exc).__name__}: {exc}")
            continue
        if want is not None or verify is not None:
            problem = check_outputs(got, want or [], atol=atol, rtol=rtol, verify=verify)
            if problem is not None:
                trial.set_user_attr("failure", "wrong")
                study.tell(trial, state=TrialState.FAIL, error=problem)
                continue
        try:
            p = time_callable(fn, *args, max_time_s=max_time_s, rel_ci=rel_ci, sync=sync)
        except Exception as exc:
            trial.set_user_attr("failure", "error")
            study.tell(trial, state=TrialState.FAIL, error=f"{type(exc).__name__}: {exc}")
            continue
        for k, v in p.to_attrs().items():
            trial.set_user_attr(k, v)
        study.tell(trial, p.median)
    res = _result(study, ref_summary, evaluated)
    res.rows = [r for r in res.rows if not (r["error"] or "").startswith("duplicate of")]
    return res

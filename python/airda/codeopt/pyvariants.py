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
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import time_callable
from airda.codeopt.sandbox import Limits, VariantFailed
from airda.codeopt.search import TuneResult, search_variants, tune_result, variant_errors

__all__ = ["tune_python"]


_REF = "__reference__"


def _as_outputs(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _can_send(objs: Sequence[Any]) -> bool:
    """Whether every object pickles by reference to importable modules (a function defined
    in ``__main__`` pickles here but cannot be loaded by the worker)."""
    for obj in objs:
        if obj is None:
            continue
        try:
            blob = pickle.dumps(obj, protocol=5)
        except Exception:
            return False
        if b"__main__" in blob:
            return False
    return True


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
    sandbox: bool | None = None,
    variant_timeout: float = 10.0,
    limits: Limits | None = None,
    env: Mapping[str, str] | Sequence[str] | None = None,
) -> TuneResult:
    """Find the fastest correct callable among `variants` (name -> callable of `args`).

    Every variant is called once on a copy of `args` and its result compared with the
    reference's (`reference(*args)` or `expected`) by :func:`check_outputs`; a variant that
    raises or disagrees is recorded as failed with the reason. The correct ones are timed by
    :func:`time_callable` (overhead subtracted). The study's value is the median seconds.

    Sandboxed, the variants (and the reference) are called and timed in a
    :class:`~airda.codeopt.Sandbox` worker process, like compiled variants: a variant that
    crashes the interpreter (a segfault in an extension), hangs (no result within
    `variant_timeout` seconds: the worker is killed) or raises is recorded as failed with the
    reason, and the search goes on in a fresh worker. That needs the callables, `args` and
    `sync` to pickle by reference: module-level functions of an importable module, not
    lambdas, closures or functions defined in ``__main__``.

    `sandbox`: None (the default) sandboxes when everything can be sent to the worker and
    runs in this process otherwise (the study's ``sandboxed`` attribute says which); True
    always sandboxes (a variant that cannot be sent is recorded as failed; a reference or
    `args` that cannot is an error); False always runs in this process. The worker's timings
    agree with in-process ones (``bench/tune_table.py --only python_sandbox``).

    `limits` and `env`: the sandbox's resource limits and the environment variables passed
    beyond its allow-list (see :class:`~airda.codeopt.Sandbox`). The default limits leave the
    address space unlimited: GPU runtimes (CUDA) reserve far more virtual memory than they use.
    A sandboxed variant's result comes back as data (numbers, strings, lists, tuples, dicts,
    NumPy arrays; a PyTorch tensor as a NumPy array), never unpickled here; processes it starts
    may live on (a compile pool) and are killed with the worker.

    The study holds one trial per variant: a variant the strategy proposes again is not
    stored again.
    """
    from airda.space import Categorical
    from airda.study import create_study

    if not variants:
        raise ValueError("variants is empty")
    for name, fn in variants.items():
        if not callable(fn):
            raise TypeError(f"variant {name!r} is not callable")
    args = tuple(args)
    if variant_timeout <= 0:
        raise ValueError(f"variant_timeout must be > 0 seconds, got {variant_timeout}")
    key_doc = {k: _source_id(v) for k, v in sorted(variants.items())}
    key_doc["__reference__"] = _source_id(reference) if reference is not None else ""
    if sandbox is None:
        sandbox = _can_send([*variants.values(), reference, sync, args])
    if sandbox:  # another process, another measurement: not answered by in-process results
        key_doc["__sandbox__"] = "1"
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:16]
    study = create_study(
        study_name or f"tune-py-{key}",
        storage=storage,
        space={"variant": Categorical(list(variants))},
        strategy=strategy,
        seed=seed,
        load_if_exists=True,
        user_attrs={"tune_key": key, "kind": "tune-python", "sandboxed": bool(sandbox)},
    )
    box = None
    if sandbox:
        from airda.codeopt.sandbox import Sandbox

        try:
            pickle.dumps(args, protocol=5)
        except Exception as exc:
            raise ValueError(
                f"args cannot be sent to the sandbox ({type(exc).__name__}: {exc})"
            ) from None
        box = Sandbox(
            py_args=args,
            timeout=variant_timeout,
            limits=limits if limits is not None else Limits(memory=None),
            env=env,
        )
        box.start()
    timing = {"max_time_s": max_time_s, "rel_ci": rel_ci, "sync": sync}

    def call(name: str, fn: Callable[..., Any]) -> list[Any]:
        if box is None:
            return _as_outputs(fn(*copy.deepcopy(args)))
        return _as_outputs(box.run_callable(name, fn))

    def measure(name: str, fn: Callable[..., Any]) -> dict[str, Any]:
        if box is None:
            return time_callable(fn, *args, **timing).to_attrs()
        return box.time_callable(name, fn, timing)["attrs"]

    want: list[Any] | None = None  # the correct outputs, once the reference has run

    def evaluate(trial: Any, _: Any) -> float:
        name = trial.params["variant"]
        fn = variants[name]
        with variant_errors():  # crashed, hung or raised (in the sandbox, or here)
            got = call(name, fn)
        if want is not None or verify is not None:
            problem = check_outputs(got, want or [], atol=atol, rtol=rtol, verify=verify)
            if problem is not None:
                raise VariantFailed(problem, "wrong")
        with variant_errors():
            attrs = measure(name, fn)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return attrs["median_s"]

    try:
        ref_summary = study.user_attrs.get("reference")
        if reference is not None:
            try:
                want = call(_REF, reference)
                if ref_summary is None:
                    ref_summary = measure(_REF, reference)
                    study.set_user_attr("reference", ref_summary)
            except VariantFailed as exc:
                raise ValueError(f"the reference failed in the sandbox: {exc.reason}") from None
        elif expected is not None:
            want = _as_outputs(expected)
        evaluated = search_variants(study, evaluate, budget=budget)
    finally:
        if box is not None:
            box.close()
    res = tune_result(study, ref_summary, evaluated)
    # studies of older versions stored a failed trial per repeated proposal
    res.rows = [r for r in res.rows if not (r["error"] or "").startswith("duplicate of")]
    return res

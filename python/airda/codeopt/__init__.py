"""Code optimisation: time code variants soundly, check them against a reference, and search
their space with any core strategy.

- :mod:`~airda.codeopt.profiler`: the compiled timing core and its statistics; Python callables.
- :mod:`~airda.codeopt.cvariants` / :mod:`~airda.codeopt.sandbox`: C/C++ variants compiled in parallel
  and run in a worker process that may crash or hang without harming the search.
- :mod:`~airda.codeopt.gate`: the correctness gate.
- :mod:`~airda.codeopt.racing`: successive elimination over a set of variants.
- :func:`tune_c` (a :class:`CVariantSpec`), :func:`tune_python`, :func:`autotune`: the searches,
  stored in a study, all through one loop, :func:`search_variants`.

Example:
    >>> import numpy as np
    >>> from airda.codeopt import summarize
    >>> summarize([1.0, 1.0, 1.0, 1.0]).median
    1.0
"""

import importlib
from typing import Any

# Names -> their modules, imported on first use: the sandbox worker (``python -m
# airda.codeopt._worker``) imports this package, and must start fast.
_LAZY = {
    "Arg": "cvariants",
    "CompileError": "cvariants",
    "compile_variant": "cvariants",
    "compile_variants": "cvariants",
    "parse_arg": "cvariants",
    "trampoline": "cvariants",
    "check_outputs": "gate",
    "NOISE_CV": "profiler",
    "Profile": "profiler",
    "median_ci_rank": "profiler",
    "profile_address": "profiler",
    "summarize": "profiler",
    "time_callable": "profiler",
    "tune_python": "pyvariants",
    "RaceResult": "racing",
    "callable_sampler": "racing",
    "fixed_protocol": "racing",
    "race": "racing",
    "sandbox_sampler": "racing",
    "Limits": "sandbox",
    "Sandbox": "sandbox",
    "VariantFailed": "sandbox",
    "Autotuner": "triton_autotune",
    "autotune": "triton_autotune",
    "TuneResult": "search",
    "search_variants": "search",
    "CVariantSpec": "tuner",
    "tune_c": "tuner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.codeopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.codeopt.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "NOISE_CV",
    "Arg",
    "Autotuner",
    "CVariantSpec",
    "CompileError",
    "Limits",
    "Profile",
    "RaceResult",
    "Sandbox",
    "TuneResult",
    "VariantFailed",
    "autotune",
    "callable_sampler",
    "check_outputs",
    "compile_variant",
    "compile_variants",
    "fixed_protocol",
    "median_ci_rank",
    "parse_arg",
    "profile_address",
    "race",
    "sandbox_sampler",
    "search_variants",
    "summarize",
    "time_callable",
    "trampoline",
    "tune_c",
    "tune_python",
]

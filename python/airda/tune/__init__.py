"""Code optimisation: time code variants soundly, check them against a reference, and search
their space with any core strategy.

- :mod:`~airda.tune.profiler`: the compiled timing core and its statistics; Python callables.
- :mod:`~airda.tune.cvariants` / :mod:`~airda.tune.sandbox`: C/C++ variants compiled in parallel
  and run in a worker process that may crash or hang without harming the search.
- :mod:`~airda.tune.gate`: the correctness gate.
- :mod:`~airda.tune.racing`: successive elimination over a set of variants.
- :func:`tune_c`, :func:`tune_python`: the searches, stored in a study.

Example:
    >>> import numpy as np
    >>> from airda.tune import summarize
    >>> summarize([1.0, 1.0, 1.0, 1.0]).median
    1.0
"""

from airda.tune.cvariants import (
    Arg,
    CompileError,
    compile_variant,
    compile_variants,
    parse_arg,
    trampoline,
)
from airda.tune.gate import check_outputs
from airda.tune.profiler import (
    NOISE_CV,
    Profile,
    median_ci_rank,
    profile_address,
    summarize,
    time_callable,
)
from airda.tune.pyvariants import tune_python
from airda.tune.racing import RaceResult, fixed_protocol, race, sandbox_sampler
from airda.tune.sandbox import Sandbox, VariantFailed
from airda.tune.triton_autotune import Autotuner, autotune
from airda.tune.tuner import TuneResult, tune_c

__all__ = [
    "NOISE_CV",
    "Arg",
    "Autotuner",
    "CompileError",
    "Profile",
    "RaceResult",
    "Sandbox",
    "TuneResult",
    "VariantFailed",
    "autotune",
    "check_outputs",
    "compile_variant",
    "compile_variants",
    "fixed_protocol",
    "median_ci_rank",
    "parse_arg",
    "profile_address",
    "race",
    "sandbox_sampler",
    "summarize",
    "time_callable",
    "trampoline",
    "tune_c",
    "tune_python",
]

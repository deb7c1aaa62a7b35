"""Code optimisation: time code variants soundly, check them against a reference, and search
their space with any core strategy.

- :mod:`~airda.codeopt.profiler`: the compiled timing core and its statistics; Python callables.
- :mod:`~airda.codeopt.cvariants` / :mod:`~airda.codeopt.sandbox`: C/C++ variants compiled in parallel
  and run in a worker process that may crash or hang without harming the search.
- :mod:`~airda.codeopt.gate`: the correctness gate.
- :mod:`~airda.codeopt.racing`: successive elimination over a set of variants.
- :func:`tune_c`, :func:`tune_python`: the searches, stored in a study.

Example:
    >>> import numpy as np
    >>> from airda.codeopt import summarize
    >>> summarize([1.0, 1.0, 1.0, 1.0]).median
    1.0
"""

from airda.codeopt.cvariants import (
    Arg,
    CompileError,
    compile_variant,
    compile_variants,
    parse_arg,
    trampoline,
)
from airda.codeopt.gate import check_outputs
from airda.codeopt.profiler import (
    NOISE_CV,
    Profile,
    median_ci_rank,
    profile_address,
    summarize,
    time_callable,
)
from airda.codeopt.pyvariants import tune_python
from airda.codeopt.racing import RaceResult, fixed_protocol, race, sandbox_sampler
from airda.codeopt.sandbox import Sandbox, VariantFailed
from airda.codeopt.triton_autotune import Autotuner, autotune
from airda.codeopt.tuner import TuneResult, tune_c

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

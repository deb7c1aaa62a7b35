"""Kernels and a scripted proposer for the evolve tests (importable by the subprocess of the
resume test)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from airda.codeopt.evolve import Context, EvolveSpec, Program, Proposal

# An O(n^2) prefix sum (each y[i] summed afresh, in the same order as a running sum: the
# results are bit-identical) and candidates: faster, wrong, crashing, hanging, not compiling.
REFERENCE = """void psum(double* y, const double* x, int n) {
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int k = 0; k <= i; ++k) s += x[k];
        y[i] = s;
    }
}
"""
FAST = """void psum(double* y, const double* x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) {
        s += x[i];
        y[i] = s;
    }
}
"""
WRONG = FAST.replace("s += x[i];\n        y[i] = s;", "y[i] = s;\n        s += x[i];")
CRASH = FAST.replace("y[i] = s;", "y[i] = s;\n        if (i == n - 1) *(volatile int*)0 = 1;")
HANG = FAST.replace("double s = 0.0;", "double s = 0.0;\n    for (volatile int spin = 1; spin;) {}")
BROKEN = FAST.replace("s += x[i];", "s += x[i]")
# correct, but a call with n == 3 (the quick test) sleeps: a run killed meanwhile is mid-evaluation
SLOW_QUICK = "#include <unistd.h>\n" + FAST.replace(
    "double s = 0.0;", "double s = 0.0;\n    if (n == 3) usleep(1500000);  /* SLOW */"
)
HALF = REFERENCE.replace("double s = 0.0;", "double s = 0.0 * 1.0;")  # as slow, correct


def psum_spec(**options) -> EvolveSpec:
    opts = {
        "quick_args": ["float64[3]:zeros:out", "float64[3]", "int32=3"],
        "max_time_s": 0.02,
        "final_time_s": 0.05,
        "timeout": 1.0,
        "atol": 0.0,
        "rtol": 0.0,
    }
    opts.update(options)
    return EvolveSpec(
        "psum",
        "c",
        REFERENCE,
        "psum",
        ["float64[400]:zeros:out", "float64[400]", "int32=400"],
        **opts,
    )


class ScriptedProposer:
    """Proposes the scripted programs in order, each once (the first one not evaluated yet):
    a real proposer, deterministic, for the loop's tests."""

    def __init__(self, programs: Sequence[tuple[str, str]], name: str = "scripted"):
        self.programs = list(programs)
        self.name = name
        self.calls = 0

    def propose(
        self, parent: Program, context: Context, n: int, rng: random.Random
    ) -> list[Proposal]:
        self.calls += 1
        out = []
        for desc, code in self.programs:
            if not context.known(code):
                out.append(Proposal(code, desc, self.name, desc.split()[0]))
                if len(out) >= n:
                    break
        return out


SCRIPT = [
    ("wrong order", WRONG),
    ("crash at the end", CRASH),
    ("slow quick test", SLOW_QUICK),
    ("does not compile", BROKEN),
    ("running sum", FAST),
    ("hang", HANG),
    ("same speed", HALF),
]

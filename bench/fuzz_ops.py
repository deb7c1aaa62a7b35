"""Fuzz every op of airda.ops on every backend usable here, and print the figures.

Each op takes a small valid input with one argument (or, with ``--pairs``, two) replaced by
something awkward: another dtype (non-native byte order included), a non-contiguous, unaligned or
read-only copy, a torch tensor (strided, sparse, on the meta device, requiring grad), an empty
axis, NaN and infinities, a huge virtual shape, a huge or negative count, a list, None or a string.
Every call must answer what the reference answers for the same values in plain form, or refuse
with a clear error naming an argument; it must not crash, hang or write to its inputs. Calls run
in worker subprocesses (see :mod:`airda.ops._fuzz`), so a crash is counted and attributed.

Run: ``python bench/fuzz_ops.py [--pairs 2000] [--seed 1] [--ops hamming_gram ...] [--verbose]``;
the last line reads ``N inputs, C crashes, W silent wrong answers, U unclear errors (...)``.
Exit status 1 when any call crashed, hung, answered wrong or refused unclearly.
"""

from __future__ import annotations

import os
import platform
import sys

from airda.ops._fuzz import main

if __name__ == "__main__":
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    sys.exit(main(sys.argv[1:], prog="python bench/fuzz_ops.py"))

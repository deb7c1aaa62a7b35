"""Module-level Python variants for the sandbox tests (a sandboxed variant must be importable
by the worker process: pickled by reference)."""

from __future__ import annotations

import ctypes
import time

import numpy as np


def reference(x):
    return np.cumsum(x)


def fast(x):
    return np.cumsum(x)


def slow(x):
    # the same answer through a Python loop over the elements: far slower
    out = np.empty_like(x)
    s = 0.0
    for i, v in enumerate(x.tolist()):
        s += v
        out[i] = s
    return out


def segfault(x):
    return ctypes.string_at(0)  # reads address 0: SIGSEGV in the worker


def hang(x):
    while True:  # never returns: killed at the variant timeout
        time.sleep(0.01)


def raises(x):
    raise RuntimeError("kaboom")


def wrong(x):
    return np.cumsum(x) + 1.0

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


def environment(x):
    import os

    return {"env": dict(os.environ), "cwd": os.getcwd()}


def slow_call(x):
    time.sleep(0.3)  # the point: a call slower than a measurement's share of the timeout
    return np.cumsum(x)


PWNED: list[int] = []


def _pwned():
    import os

    PWNED.append(os.getpid())
    return "pwned"


class Evil:
    """Unpickling it calls _pwned: a result the tuner must never unpickle."""

    def __reduce__(self):
        return (_pwned, ())


def evil(x):
    return Evil()


def fork_returns(x):
    import os

    os.fork()  # both processes return from here: only the worker may go on
    return np.cumsum(x)

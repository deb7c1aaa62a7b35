"""The sandbox worker: a child process that loads variants' shared libraries, runs them and
times them, so that a variant that crashes or hangs takes only this process down.

Protocol (see airda.codeopt.sandbox): length-prefixed pickles; requests on stdin, replies on the
file descriptor that was stdout at start. The variant code's own stdout goes to stderr so it
cannot corrupt the replies.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys
import traceback
from typing import Any

import numpy as np

_HEADER = struct.Struct("<Q")


def read_message(fd: int) -> Any:
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    (n,) = _HEADER.unpack(head)
    body = _read_exact(fd, n)
    if body is None:
        return None
    return pickle.loads(body)


def write_message(fd: int, obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = _HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        b = os.read(fd, n)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


class _State:
    def __init__(self) -> None:
        self.specs: list[Any] = []
        self.initial: list[Any] = []
        self.live: list[Any] = []
        self.ptrs: Any = None
        self.libs: dict[str, Any] = {}

    def setup(self, specs: list[Any], seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.specs = list(specs)
        self.initial = [a.make(rng) for a in self.specs]
        self.live = [np.array(a, copy=True) for a in self.initial]
        self.ptrs = (ctypes.c_void_p * max(len(self.live), 1))()
        for i, a in enumerate(self.live):
            self.ptrs[i] = a.ctypes.data

    def reset(self) -> None:
        for live, init in zip(self.live, self.initial, strict=True):
            np.copyto(live, init)

    def fn(self, key: str, path: str | None) -> int:
        if key not in self.libs:
            if path is None:
                raise KeyError(f"variant {key} is not loaded")
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
            self.libs[key] = lib
        return ctypes.cast(self.libs[key].airda_call, ctypes.c_void_p).value or 0

    def outputs(self) -> list[np.ndarray]:
        return [np.array(a, copy=True) for a, s in zip(self.live, self.specs, strict=True) if s.out]

    def args_address(self) -> int:
        return ctypes.addressof(self.ptrs)


def _handle(state: _State, req: dict[str, Any]) -> Any:
    op = req["op"]
    if op == "ping":
        return "pong"
    if op == "setup":
        state.setup(req["specs"], req["seed"])
        return None
    if op == "run":
        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn)(state.args_address())
        return state.outputs()
    if op in ("profile", "sample"):
        from airda._native import native

        fn = state.fn(req["key"], req.get("path"))
        if req.get("reset", True):
            state.reset()
        opts = req["options"]
        if op == "profile":
            return native().profile_variant(fn, state.args_address(), **opts)
        clock = int(opts.get("clock", 0))
        inner = opts.get("inner") or native().calibrate_inner(
            fn, state.args_address(), opts.get("min_sample_s", 5e-5), clock
        )
        return native().sample_variant(
            fn,
            state.args_address(),
            opts["n_samples"],
            inner,
            opts.get("flush", False),
            opts.get("flush_bytes", 0),
            clock,
        )
    if op == "crash":  # for the sandbox's own tests
        os.abort()
    raise ValueError(f"unknown request {op!r}")


def main() -> int:
    out_fd = os.dup(1)
    os.dup2(2, 1)  # the variants' printf goes to stderr, not into the replies
    sys.stdout = sys.stderr
    in_fd = 0
    state = _State()
    while True:
        req = read_message(in_fd)
        if req is None or req.get("op") == "exit":
            return 0
        try:
            reply = {"ok": True, "value": _handle(state, req)}
        except Exception as exc:
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        write_message(out_fd, reply)


if __name__ == "__main__":
    sys.exit(main())

"""The sandbox worker: a child process that loads variants' shared libraries (or Python
callables), runs them and times them, so that a variant that crashes or hangs takes only this
process down.

Protocol (see airda.codeopt.sandbox): length-prefixed pickles; requests on stdin, replies on the
file descriptor that was stdout at start. The variant code's own stdout goes to stderr so it
cannot corrupt the replies.

For compiled variants the worker imports neither NumPy nor the rest of airda: the parent sends
the arguments' initial bytes, the worker keeps them in 64-byte aligned buffers and sends the
outputs' bytes back, so the worker starts in a few tens of milliseconds (while the first
variants compile). Python variants import what they need when they are unpickled.
"""

from __future__ import annotations

import copy
import ctypes
import os
import pickle
import struct
import sys
import traceback
from typing import Any

_HEADER = struct.Struct("<Q")
_ALIGN = 64


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
        self.initial: list[bytes] = []
        self.out: list[bool] = []
        self.raw: list[Any] = []  # keeps the buffers alive
        self.addrs: list[int] = []
        self.ptrs: Any = None
        self.libs: dict[str, Any] = {}
        self.py_args: tuple[Any, ...] = ()
        self.py_fns: dict[str, Any] = {}

    def setup(self, buffers: list[tuple[bytes, bool]]) -> None:
        """The compiled entry's arguments: each one's initial bytes and whether it is an output."""
        self.initial = [bytes(b) for b, _ in buffers]
        self.out = [bool(o) for _, o in buffers]
        self.raw, self.addrs = [], []
        for b in self.initial:
            raw = ctypes.create_string_buffer(len(b) + _ALIGN)
            self.raw.append(raw)
            self.addrs.append((ctypes.addressof(raw) + _ALIGN - 1) & ~(_ALIGN - 1))
        self.ptrs = (ctypes.c_void_p * max(len(self.addrs), 1))(*self.addrs)
        self.reset()

    def reset(self) -> None:
        for addr, init in zip(self.addrs, self.initial, strict=True):
            if init:
                ctypes.memmove(addr, init, len(init))

    def fn(self, key: str, path: str | None) -> int:
        if key not in self.libs:
            if path is None:
                raise KeyError(f"variant {key} is not loaded")
            self.libs[key] = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        return ctypes.cast(self.libs[key].airda_call, ctypes.c_void_p).value or 0

    def outputs(self) -> list[bytes]:
        return [
            ctypes.string_at(a, len(b))
            for a, b, o in zip(self.addrs, self.initial, self.out, strict=True)
            if o
        ]

    def args_address(self) -> int:
        return ctypes.addressof(self.ptrs)

    def py_fn(self, key: str, blob: bytes | None) -> Any:
        if key not in self.py_fns:
            if blob is None:
                raise KeyError(f"variant {key} is not loaded")
            try:
                self.py_fns[key] = pickle.loads(blob)
            except Exception as exc:
                raise RuntimeError(
                    f"cannot load the callable in the sandbox ({type(exc).__name__}: {exc}); "
                    "sandboxed variants must be importable module-level functions"
                ) from None
        return self.py_fns[key]


def _sample(state: _State, fn: int, opts: dict[str, Any], inner: int) -> dict[str, Any]:
    from airda._native import native

    clock = int(opts.get("clock", 0))
    if not inner:
        inner = native().calibrate_inner(
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


def _handle(state: _State, req: dict[str, Any]) -> Any:
    op = req["op"]
    if op == "ping":
        return "pong"
    if op == "setup":
        state.setup(req.get("buffers", []))
        if req.get("sys_path"):
            sys.path[:] = list(req["sys_path"])
        if req.get("py_args") is not None:
            state.py_args = tuple(pickle.loads(req["py_args"]))
        return None
    if op == "run":
        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn)(state.args_address())
        return state.outputs()
    if op == "profile":
        from airda._native import native

        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        return native().profile_variant(fn, state.args_address(), **req["options"])
    if op == "sample":
        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        opts = req["options"]
        return _sample(state, fn, opts, int(opts.get("inner") or 0))
    if op == "rounds":
        # One racing round over several variants in one request, interleaved sample by sample
        # (variant 1, 2, ..., 1, 2, ...): a drift of the machine's speed within the round hits
        # every variant alike, and the round costs one message instead of one per variant.
        from airda._native import native

        opts = req["options"]
        fns = [state.fn(v["key"], v.get("path")) for v in req["variants"]]
        state.reset()
        clock = int(opts.get("clock", 0))
        inner = [
            int(v.get("inner") or 0)
            or native().calibrate_inner(
                fn, state.args_address(), opts.get("min_sample_s", 5e-5), clock
            )
            for v, fn in zip(req["variants"], fns, strict=True)
        ]
        if opts.get("flush"):  # the flush buffer is allocated per call: whole blocks
            return [_sample(state, fn, opts, i) for fn, i in zip(fns, inner, strict=True)]
        out = [{"samples": [], "inner": i, "measured_s": 0.0} for i in inner]
        for _ in range(int(opts["n_samples"])):
            for fn, i, res in zip(fns, inner, out, strict=True):
                raw = native().sample_variant(fn, state.args_address(), 1, i, False, 0, clock)
                res["samples"].extend(raw["samples"])
                res["measured_s"] += raw["measured_s"]
        return out
    if op == "pyload":
        state.py_fn(req["key"], req.get("fn"))
        return None
    if op == "pyrun":
        fn = state.py_fn(req["key"], req.get("fn"))
        return pickle.dumps(fn(*copy.deepcopy(state.py_args)), protocol=pickle.HIGHEST_PROTOCOL)
    if op == "pyprofile":
        from airda.codeopt.profiler import time_callable

        fn = state.py_fn(req["key"], req.get("fn"))
        opts = dict(req["options"])
        if opts.get("sync") is not None:
            opts["sync"] = pickle.loads(opts["sync"])
        p = time_callable(fn, *state.py_args, **opts)
        return {"attrs": p.to_attrs(), "samples": [float(s) for s in p.samples]}
    if op == "pysample":
        from airda.codeopt.profiler import calibrate_callable, sample_callable

        fn = state.py_fn(req["key"], req.get("fn"))
        inner = int(req.get("inner") or 0)
        sample_s = 0.0
        if not inner:
            fn(*state.py_args)  # warm-up
            inner, sample_s = calibrate_callable(
                fn, state.py_args, float(req.get("min_sample_s", 2e-3))
            )
        samples, spent = sample_callable(fn, state.py_args, int(req["n_samples"]), inner)
        return {"samples": samples, "inner": inner, "measured_s": spent, "sample_s": sample_s}
    if op == "crash":  # for the sandbox's own tests
        os.abort()
    raise ValueError(f"unknown request {op!r}")


def main() -> int:
    out_fd = os.dup(1)
    os.dup2(2, 1)  # the variants' printf goes to stderr, not into the replies
    sys.stdout = sys.stderr
    in_fd = 0
    state = _State()
    try:  # the timing core, loaded while the parent compiles the first variants
        from airda._native import native

        native()
    except ImportError:
        pass  # reported by the first request that needs it
    while True:
        req = read_message(in_fd)
        if req is None or req.get("op") == "exit":
            break
        try:
            reply = {"ok": True, "value": _handle(state, req)}
        except Exception as exc:
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        try:
            write_message(out_fd, reply)
        except Exception as exc:  # a result that does not pickle
            write_message(
                out_fd,
                {"ok": False, "error": f"cannot send the result: {type(exc).__name__}: {exc}"},
            )
    sys.stderr.flush()
    # Skip the interpreter's teardown (module finalizers, a variant's atexit handlers): the
    # parent waits for this exit.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

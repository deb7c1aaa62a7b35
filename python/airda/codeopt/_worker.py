"""The sandbox worker: a child process that loads variants' shared libraries (or Python
callables), runs them and times them, so that a variant that crashes, hangs or misbehaves takes
only this process down.

``python -m airda.codeopt._worker CONFIG`` starts a small **supervisor**, which forks the
**worker** and outlives it:

- the supervisor runs in its own session (the tuner starts it so), asks for a parent-death
  signal (``PR_SET_PDEATHSIG``) and becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``):
  every process a variant starts, daemonised (``setsid``) or not, stays its descendant. When
  the worker exits, crashes or is killed, and when the tuner dies, the supervisor kills and
  reaps every descendant, reports the worker's exit status on its status pipe and removes the
  sandbox's temporary folder;
- the worker runs in its own process group (the tuner kills it as a group on a timeout), with
  resource limits (address space, CPU time per request, file size, processes, no core files),
  is a subreaper too (a compiled variant that leaves a process behind is a failed request: the
  processes are killed), and talks to the tuner on two descriptors moved to high numbers, so a
  variant that writes to descriptors 3, 4, ... cannot reach them by accident.

Protocol (both directions): frames of a fixed header (magic, sequence number, JSON length,
blob length), a JSON document and raw bytes. Values are JSON with tagged objects for what JSON
lacks (tuples, dicts with any keys, non-finite floats, bytes, NumPy arrays as dtype, shape and
raw bytes); see :func:`encode` / :func:`decode`. The tuner never unpickles what the worker
sends. (The tuner pickles Python callables and their arguments to the worker: the worker trusts
the tuner, not the other way round.)

A shared page carries a heartbeat: every compiled call increments a counter (the generated
trampoline does, see :mod:`airda.codeopt.cvariants`), every Python sample does too, so the
tuner's timeout applies to each call, not to a whole measurement.

For compiled variants the worker imports neither NumPy nor the rest of airda: the parent sends
the arguments' initial bytes, the worker keeps them in 64-byte aligned buffers and sends the
outputs' bytes back, so the worker starts in a few tens of milliseconds (while the first
variants compile). Python variants import what they need when they are unpickled.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import math
import mmap
import os
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

# ---- frames ------------------------------------------------------------------------------

MAGIC = b"ADB1"
FRAME = struct.Struct("<4sIIQ")  # magic, sequence, JSON bytes, blob bytes
MAX_JSON = 64 << 20
# The status pipe: the supervisor's fixed-size records (atomic: shorter than PIPE_BUF).
STATUS = struct.Struct("<4sqq")
# The heartbeat page: u64 calls, u64 "this request's calls are not counted" flag.
BEAT_BYTES = 4096
_ALIGN = 64
_MAX_DEPTH = 64
# NumPy dtype kinds a reply may carry: numbers and booleans, never objects or structures.
_ARRAY_KINDS = "biufc"


class ProtocolError(ValueError):
    """Bytes on a sandbox channel that are not a well-formed frame or value."""


def encode(value: Any, blobs: list[Any], depth: int = 0) -> Any:
    """`value` as a JSON-able document; raw buffers are appended to `blobs` and referenced.

    Supported: None, bool, int, float (NaN and infinities too), complex, str, bytes, lists,
    tuples, dicts, NumPy arrays and scalars of numeric or boolean dtype, and objects NumPy can
    turn into such an array (a PyTorch tensor: detached and copied to the CPU first)."""
    if depth > _MAX_DEPTH:
        raise TypeError("the value is nested too deeply")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$": "f", "v": repr(value)}
    if isinstance(value, complex):
        return {"$": "c", "v": [encode(value.real, blobs), encode(value.imag, blobs)]}
    if isinstance(value, bytes | bytearray | memoryview):
        blobs.append(bytes(value))
        return {"$": "b", "b": len(blobs) - 1}
    if isinstance(value, array.array) and value.typecode == "d":
        blobs.append(value.tobytes())
        return {"$": "fa", "b": len(blobs) - 1}
    if isinstance(value, list):
        if len(value) > 64 and all(type(v) is float for v in value):
            # samples: raw doubles, not a long JSON text
            blobs.append(array.array("d", value).tobytes())
            return {"$": "fa", "b": len(blobs) - 1}
        return [encode(v, blobs, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"$": "t", "v": [encode(v, blobs, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {
            "$": "d",
            "v": [
                [encode(k, blobs, depth + 1), encode(v, blobs, depth + 1)] for k, v in value.items()
            ],
        }
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
            return _encode_array(np.asarray(value), blobs, scalar=True)
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # a PyTorch tensor
            value = value.detach().cpu()
        if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            arr = np.asarray(value)
            if arr.dtype.kind in _ARRAY_KINDS:
                return _encode_array(arr, blobs, scalar=False)
    raise TypeError(
        f"cannot send a {type(value).__module__}.{type(value).__qualname__} back from the "
        "sandbox (numbers, strings, bytes, lists, tuples, dicts and numeric arrays can)"
    )


def _encode_array(arr: Any, blobs: list[Any], scalar: bool) -> dict[str, Any]:
    import numpy as np

    arr = np.ascontiguousarray(arr)
    blobs.append(arr.tobytes())
    return {
        "$": "a",
        "b": len(blobs) - 1,
        "dt": arr.dtype.str,
        "sh": list(arr.shape),
        "sc": scalar,
    }


def decode(doc: Any, blobs: list[memoryview], depth: int = 0) -> Any:
    """The value :func:`encode` described; raises :class:`ProtocolError` on anything else."""
    if depth > _MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if doc is None or isinstance(doc, bool | int | float | str):
        return doc
    if isinstance(doc, list):
        return [decode(v, blobs, depth + 1) for v in doc]
    if not isinstance(doc, dict) or not isinstance(doc.get("$"), str):
        raise ProtocolError("untagged object")
    tag = doc["$"]
    if tag == "t":
        return tuple(decode(v, blobs, depth + 1) for v in _list(doc.get("v")))
    if tag == "d":
        out = {}
        for pair in _list(doc.get("v")):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProtocolError("bad dict item")
            key = decode(pair[0], blobs, depth + 1)
            try:
                out[key] = decode(pair[1], blobs, depth + 1)
            except TypeError:
                raise ProtocolError("unhashable dict key") from None
        return out
    if tag == "f":
        if doc.get("v") not in ("nan", "inf", "-inf"):
            raise ProtocolError("bad float")
        return float(doc["v"])
    if tag == "c":
        v = _list(doc.get("v"))
        if len(v) != 2:
            raise ProtocolError("bad complex")
        re_, im = (decode(x, blobs, depth + 1) for x in v)
        if not isinstance(re_, float | int) or not isinstance(im, float | int):
            raise ProtocolError("bad complex")
        return complex(re_, im)
    if tag == "b":
        return bytes(_blob(doc, blobs))
    if tag == "fa":
        raw = _blob(doc, blobs)
        if len(raw) % 8:
            raise ProtocolError("bad double array")
        out_d = array.array("d")
        out_d.frombytes(raw)
        return out_d.tolist()
    if tag == "a":
        return _decode_array(doc, blobs)
    raise ProtocolError(f"unknown tag {tag!r}")


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ProtocolError("expected a list")
    return v


def _blob(doc: dict[str, Any], blobs: list[memoryview]) -> memoryview:
    i = doc.get("b")
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(blobs):
        raise ProtocolError("bad blob reference")
    return blobs[i]


def _decode_array(doc: dict[str, Any], blobs: list[memoryview]) -> Any:
    import numpy as np

    raw = _blob(doc, blobs)
    dt, shape = doc.get("dt"), doc.get("sh")
    if not isinstance(dt, str) or len(dt) > 8:
        raise ProtocolError("bad dtype")
    try:
        dtype = np.dtype(dt)
    except TypeError:
        raise ProtocolError("bad dtype") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError(f"dtype {dt!r} is not a plain numeric type")
    if not isinstance(shape, list) or len(shape) > 32:
        raise ProtocolError("bad shape")
    n = 1
    for s in shape:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ProtocolError("bad shape")
        n *= s
    if n * dtype.itemsize != len(raw):
        raise ProtocolError("array size does not match its bytes")
    arr = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    return arr[()] if doc.get("sc") else arr


def frame(seq: int, value: Any) -> list[bytes]:
    """The byte strings of one frame carrying `value` (to be written in order)."""
    blobs: list[Any] = []
    body = {"v": encode(value, blobs)}
    body["n"] = [len(b) for b in blobs]
    text = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if len(text) > MAX_JSON:
        raise ValueError(f"message too large ({len(text)} bytes of JSON)")
    total = sum(body["n"])
    return [FRAME.pack(MAGIC, seq & 0xFFFFFFFF, len(text), total), text, *blobs]


def parse_header(head: bytes, max_blob: int) -> tuple[int, int, int]:
    """(sequence, JSON bytes, blob bytes) of a frame header, validated."""
    magic, seq, n_json, n_blob = FRAME.unpack(head)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}")
    if n_json > MAX_JSON:
        raise ProtocolError(f"frame JSON too large ({n_json} bytes)")
    if n_blob > max_blob:
        raise ProtocolError(f"frame payload too large ({n_blob} bytes)")
    return seq, n_json, n_blob


def parse_body(text: bytes, blob: memoryview) -> Any:
    """The value of a frame whose header was parsed: its JSON text and its blob bytes."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("frame JSON does not parse") from None
    if not isinstance(body, dict) or not isinstance(body.get("n"), list):
        raise ProtocolError("bad frame body")
    blobs, at = [], 0
    for n in body["n"]:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or at + n > len(blob):
            raise ProtocolError("bad blob lengths")
        blobs.append(blob[at : at + n])
        at += n
    if at != len(blob):
        raise ProtocolError("bad blob lengths")
    try:
        return decode(body.get("v"), blobs)
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None


def write_all(fd: int, parts: list[bytes]) -> None:
    for part in parts:
        view = memoryview(part)
        while view:
            n = os.write(fd, view)
            view = view[n:]


def read_exact(fd: int, n: int) -> bytearray | None:
    """`n` bytes from a blocking descriptor, None at end of file."""
    buf = bytearray(n)
    view = memoryview(buf)
    while view:
        k = os.readv(fd, [view])
        if not k:
            return None
        view = view[k:]
    return buf


def read_frame(fd: int, max_blob: int = 1 << 62) -> tuple[int, Any] | None:
    """One frame from a blocking descriptor: (sequence, value), None at end of file."""
    head = read_exact(fd, FRAME.size)
    if head is None:
        return None
    seq, n_json, n_blob = parse_header(bytes(head), max_blob)
    text = read_exact(fd, n_json)
    blob = read_exact(fd, n_blob)
    if text is None or blob is None:
        return None
    return seq, parse_body(bytes(text), memoryview(blob))


# ---- processes ---------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38


def _prctl(option: int, value: int) -> bool:
    """prctl(2) through ctypes (Linux); False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from /proc."""
    out = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) >= 2:
            out[int(name)] = (int(rest[1]), rest[0].decode())
    return out


def descendants(root: int) -> dict[int, str]:
    """pid -> state of every descendant of `root` (zombies included)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out[child] = table[child][1]
                todo.append(child)
    return out


def _reap(record: dict[int, int] | None = None) -> int:
    """Reap every child that has exited; their statuses go to `record`. The count."""
    n = 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        except InterruptedError:
            continue
        if pid == 0:
            return n
        n += 1
        if record is not None:
            record[pid] = status


def kill_descendants(record: dict[int, int] | None = None, patience: float = 10.0) -> int:
    """Kill (SIGKILL) and reap every descendant of this process; how many there were.

    This process is a subreaper, so an orphan of any generation is its child and the walk
    from here finds it; the walk repeats until nothing is left (a process may fork while its
    parent is being killed)."""
    me = os.getpid()
    seen: set[int] = set()
    deadline = time.monotonic() + patience
    while True:
        _reap(record)
        left = descendants(me)
        if not left:
            _reap(record)
            return len(seen)
        seen.update(left)
        for pid, state in left.items():
            if state != "Z":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return len(seen)  # a process in uninterruptible sleep: given up on
        time.sleep(0.001)  # the kernel delivers the kills


# ---- the worker's state ------------------------------------------------------------------


class _State:
    def __init__(self, beat: Any) -> None:
        self.initial: list[bytes] = []
        self.out: list[bool] = []
        self.raw: list[Any] = []  # keeps the buffers alive
        self.addrs: list[int] = []
        self.ptrs: Any = None
        self.libs: dict[str, Any] = {}
        self.tracked: dict[str, bool] = {}  # whether a library counts its calls
        self.py_args: tuple[Any, ...] = ()
        self.py_fns: dict[str, Any] = {}
        self.beat = beat  # ctypes u64 array over the shared page: [calls, untracked]
        self.beat_address = ctypes.addressof(beat) if beat is not None else 0

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
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
            _guard()  # a library constructor that forked
            self.libs[key] = lib
            try:
                setter = lib.airda_set_beat
            except AttributeError:
                self.tracked[key] = False  # built elsewhere: its calls are not counted
            else:
                setter.argtypes = [ctypes.c_void_p]
                setter.restype = None
                setter(self.beat_address or None)
                self.tracked[key] = True
        if not self.tracked[key] and self.beat is not None:
            self.beat[1] = 1
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
        import pickle

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

    def tick(self) -> None:
        """One more call (or sample) done: the tuner's per-call timeout restarts."""
        if self.beat is not None:
            self.beat[0] += 1


_PID = 0  # the worker's pid: a forked copy of it that returns from a variant must not go on


def _guard() -> None:
    """End a process forked by variant code that came back into the worker: only the worker
    itself may read requests and send replies."""
    if os.getpid() != _PID:
        os._exit(0)


def _sample(state: _State, fn: int, opts: dict[str, Any], inner: int) -> dict[str, Any]:
    from airda._native import native

    clock = int(opts.get("clock", 0))
    if not inner:
        inner = native().calibrate_inner(
            fn, state.args_address(), opts.get("min_sample_s", 5e-5), clock
        )
        _guard()
    out = native().sample_variant(
        fn,
        state.args_address(),
        opts["n_samples"],
        inner,
        opts.get("flush", False),
        opts.get("flush_bytes", 0),
        clock,
    )
    _guard()
    return out


# The requests that run compiled code: a process it leaves behind fails the request.
_COMPILED = frozenset({"run", "profile", "sample", "rounds", "lineprof"})


def _handle(state: _State, req: dict[str, Any]) -> Any:
    op = req["op"]
    if op == "ping":
        return "pong"
    if op == "setup":
        import pickle

        state.setup([(bytes(b), bool(o)) for b, o in req.get("buffers", [])])
        if req.get("sys_path"):
            sys.path[:] = [str(p) for p in req["sys_path"]]
        if req.get("py_args") is not None:
            state.py_args = tuple(pickle.loads(req["py_args"]))
        return None
    if op == "run":
        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn)(state.args_address())
        _guard()
        state.tick()
        return state.outputs()
    if op == "profile":
        from airda._native import native

        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        out = native().profile_variant(fn, state.args_address(), **req["options"])
        _guard()
        return out
    if op == "sample":
        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        opts = req["options"]
        return _sample(state, fn, opts, int(opts.get("inner") or 0))
    if op == "rounds":
        return _rounds(state, req)
    if op == "lineprof":
        from airda.codeopt.lineprof import sample_in_process

        fn = state.fn(req["key"], req.get("path"))
        state.reset()
        out = sample_in_process(req["sampler"], fn, state.args_address(), float(req["seconds"]))
        _guard()
        return out
    if op == "pyload":
        state.py_fn(req["key"], req.get("fn"))
        _guard()  # an import that forked
        return None
    if op == "pylineprof":
        import copy

        from airda.codeopt.lineprof import sample_python

        fn = state.py_fn(req["key"], req.get("fn"))
        out = sample_python(
            fn, lambda: copy.deepcopy(state.py_args), float(req["seconds"]), beat=state.tick
        )
        _guard()
        return out
    if op == "pyrun":
        import copy

        fn = state.py_fn(req["key"], req.get("fn"))
        value = fn(*copy.deepcopy(state.py_args))
        _guard()
        state.tick()
        return value
    if op == "pyprofile":
        import pickle

        from airda.codeopt.profiler import time_callable

        fn = state.py_fn(req["key"], req.get("fn"))
        opts = dict(req["options"])
        if opts.get("sync") is not None:
            opts["sync"] = pickle.loads(opts["sync"])
        p = time_callable(fn, *state.py_args, beat=state.tick, **opts)
        _guard()
        return {"attrs": p.to_attrs(), "samples": [float(s) for s in p.samples]}
    if op == "pysample":
        from airda.codeopt.profiler import calibrate_callable, sample_callable

        fn = state.py_fn(req["key"], req.get("fn"))
        inner = int(req.get("inner") or 0)
        sample_s = 0.0
        if not inner:
            fn(*state.py_args)  # warm-up
            _guard()
            state.tick()
            inner, sample_s = calibrate_callable(
                fn, state.py_args, float(req.get("min_sample_s", 2e-3)), beat=state.tick
            )
        samples, spent = sample_callable(
            fn, state.py_args, int(req["n_samples"]), inner, beat=state.tick
        )
        _guard()
        return {"samples": samples, "inner": inner, "measured_s": spent, "sample_s": sample_s}
    if op == "crash":  # for the sandbox's own tests
        os.abort()
    raise ValueError(f"unknown request {op!r}")


def _rounds(state: _State, req: dict[str, Any]) -> list[dict[str, Any]]:
    # One racing round over several variants in one request, interleaved sample by sample
    # (variant 1, 2, ..., 1, 2, ...): a drift of the machine's speed within the round hits
    # every variant alike, and the round costs one message instead of one per variant.
    from airda._native import native

    opts = req["options"]
    fns = [state.fn(v["key"], v.get("path")) for v in req["variants"]]
    state.reset()
    clock = int(opts.get("clock", 0))
    inner = []
    for v, fn in zip(req["variants"], fns, strict=True):
        i = int(v.get("inner") or 0)
        if not i:
            i = native().calibrate_inner(
                fn, state.args_address(), opts.get("min_sample_s", 5e-5), clock
            )
            _guard()
        inner.append(i)
    if opts.get("flush"):  # the flush buffer is allocated per call: whole blocks
        return [_sample(state, fn, opts, i) for fn, i in zip(fns, inner, strict=True)]
    out: list[dict[str, Any]] = [{"samples": [], "inner": i, "measured_s": 0.0} for i in inner]
    for _ in range(int(opts["n_samples"])):
        for fn, i, res in zip(fns, inner, out, strict=True):
            raw = native().sample_variant(fn, state.args_address(), 1, i, False, 0, clock)
            _guard()
            res["samples"].extend(raw["samples"])
            res["measured_s"] += raw["measured_s"]
    return out


# ---- limits ------------------------------------------------------------------------------


def _user_tasks() -> int:
    """Processes and threads of this real user now (what RLIMIT_NPROC counts)."""
    uid, n = os.getuid(), 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                text = f.read()
        except OSError:
            continue
        real = threads = None
        for line in text.splitlines():
            if line.startswith("Uid:"):
                real = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if real == uid:
            n += threads or 1
    return n


def _apply_limits(limits: dict[str, Any]) -> None:
    """The worker's resource limits (hard = soft: the variant cannot raise them again). The
    CPU-time limit is set per request (see :func:`_cpu_budget`)."""
    import resource

    def cap(res: int, value: int) -> None:
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY and value > hard:
            value = hard  # cannot be raised above what the tuner already had
        resource.setrlimit(res, (value, value))

    cap(resource.RLIMIT_CORE, 0)  # a crash is reported, not dumped (dumps take seconds)
    if limits.get("memory"):
        cap(resource.RLIMIT_AS, int(limits["memory"]))
    if limits.get("file_size"):
        cap(resource.RLIMIT_FSIZE, int(limits["file_size"]))
    if limits.get("processes") and hasattr(resource, "RLIMIT_NPROC"):
        # RLIMIT_NPROC counts every process and thread of the user, not only this one's
        # children: the limit is what the user runs now plus the allowance. (The kernel does
        # not enforce it for root.)
        base = _user_tasks() if os.geteuid() != 0 and os.path.isdir("/proc") else 0
        cap(resource.RLIMIT_NPROC, base + int(limits["processes"]))


def _cpu_budget(seconds: float | None) -> None:
    """This request may use `seconds` of CPU time more than the worker has used so far: the
    soft limit moves (SIGXCPU ends the worker when it is reached), the hard one stays."""
    if not seconds:
        return
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    want = math.ceil(spent + seconds)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (want, hard))


# ---- the two processes -------------------------------------------------------------------


def _high_fd(fd: int) -> int:
    """`fd` moved to a high descriptor number (close-on-exec), the original closed."""
    import fcntl
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 200 if soft == resource.RLIM_INFINITY else max(10, min(200, soft - 16))
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return new


def _map_beat(fd: int) -> Any:
    """The heartbeat page mapped and its descriptor closed (Python's mmap would keep a copy of
    the descriptor, one a variant could write to)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        addr = libc.mmap(None, BEAT_BYTES, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
    except (OSError, AttributeError):
        addr = None
    if addr in (None, ctypes.c_void_p(-1).value):
        page = mmap.mmap(fd, BEAT_BYTES)  # keeps a descriptor, but works
        os.close(fd)
        return (ctypes.c_uint64 * 2).from_buffer(page)
    os.close(fd)
    return (ctypes.c_uint64 * 2).from_address(addr)


def _worker(cfg: dict[str, Any]) -> None:
    """The worker's loop (in the forked child)."""
    global _PID
    _PID = os.getpid()
    req_fd, rep_fd = _high_fd(cfg["req"]), _high_fd(cfg["rep"])
    beat = None
    if cfg.get("beat") is not None:
        beat = _map_beat(cfg["beat"])
    limits = cfg.get("limits") or {}
    _apply_limits(limits)
    strict = bool(cfg.get("strict", True))
    state = _State(beat)
    try:  # the timing core, loaded while the parent compiles the first variants
        from airda._native import native

        native()
    except ImportError:
        pass  # reported by the first request that needs it
    while True:
        try:
            got = read_frame(req_fd)
        except ProtocolError:
            break
        if got is None:
            break
        seq, req = got
        if not isinstance(req, dict) or req.get("op") == "exit":
            break
        if beat is not None:
            beat[1] = 0
        _cpu_budget(limits.get("cpu_time"))
        try:
            reply = {"ok": True, "value": _handle(state, req)}
        except Exception as exc:
            _guard()
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        _guard()
        if strict and req.get("op") in _COMPILED:
            left = _leftovers()
            if left:
                reply = {
                    "ok": False,
                    "kind": "processes",
                    "error": f"the variant left {left} process{'es' if left > 1 else ''} "
                    "running (killed)",
                }
        try:
            parts = frame(seq, reply)
        except (TypeError, ValueError) as exc:  # a result that cannot be sent
            parts = frame(seq, {"ok": False, "error": f"cannot send the result: {exc}"})
        sys.stdout.flush()
        sys.stderr.flush()
        write_all(rep_fd, parts)
    kill_descendants()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown (module finalizers, a variant's atexit handlers): the
    # parent waits for this exit.
    os._exit(0)


def _leftovers() -> int:
    """Processes the request left behind (killed and reaped now); 0 without any child."""
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return 0  # no child, so no descendant (orphans are reparented to this subreaper)
    return kill_descendants() + (1 if pid else 0)


def _supervise(cfg: dict[str, Any]) -> None:
    """Fork the worker, wait for it, then kill and reap whatever it left and report."""
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    ppid = int(cfg["ppid"])
    # SIGUSR1 when the thread that started us exits: the tuner died (or only that thread did:
    # then the parent is unchanged and the signal is ignored, see below).
    _prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1)
    if os.getppid() != ppid:  # the tuner died before we could ask for the signal
        if cfg.get("remove_home"):
            import shutil

            shutil.rmtree(os.getcwd(), ignore_errors=True)
        os._exit(1)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    status_fd = cfg["status"]
    home = os.getcwd()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for sig in (signal.SIGTERM, signal.SIGXFSZ, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGXFSZ: the limit kills
            os.setpgid(0, 0)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != me:
                os._exit(1)  # the supervisor is already gone
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)
            # a setuid program the variant runs gains nothing (a sandbox's usual first step)
            _prctl(_PR_SET_NO_NEW_PRIVS, 1)
            os.close(status_fd)
            _worker(cfg)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here: the tuner may kill the group before the child sets it
    for fd in (cfg["req"], cfg["rep"], cfg.get("beat")):
        if fd is not None:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.write(status_fd, STATUS.pack(b"HELO", pid, 0))
    statuses: dict[int, int] = {}
    stop = False
    while pid not in statuses:
        got = _wait_signal(watched, 1.0)
        if got in (None, signal.SIGUSR1) and os.getppid() != ppid:
            stop = True  # the tuner died
        elif got == signal.SIGTERM:
            stop = True
        if stop:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap(statuses)
    killed = kill_descendants(statuses)
    with contextlib.suppress(OSError):
        os.write(status_fd, STATUS.pack(b"EXIT", statuses[pid], killed))
    os.chdir("/")
    if cfg.get("remove_home"):
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    os._exit(0)


def _wait_signal(signals: set[int], timeout: float) -> int | None:
    if hasattr(signal, "sigtimedwait"):
        info = signal.sigtimedwait(signals, timeout)
        return None if info is None else info.si_signo
    pending = signal.sigpending() & signals  # no sigtimedwait (macOS): poll
    if not pending:
        time.sleep(min(timeout, 0.01))
        pending = signal.sigpending() & signals
    for sig in pending:
        signal.sigwait({sig})
        return sig
    return signal.SIGCHLD  # a child may have exited: look


def main(argv: list[str] | None = None) -> int:
    cfg = json.loads((argv if argv is not None else sys.argv[1:])[0])
    _supervise(cfg)
    return 0


def beat_counter(page: Any) -> Callable[[], tuple[int, int]]:
    """A reader of the heartbeat page: (calls so far, whether this request's calls are
    uncounted)."""
    words = struct.Struct("<QQ")

    def read() -> tuple[int, int]:
        return words.unpack_from(page, 0)

    return read


if __name__ == "__main__":
    sys.exit(main())

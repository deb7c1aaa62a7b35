"""A sandboxed worker process that runs and times variants, so that a variant that segfaults,
aborts, hangs, forks, floods its output or writes where it should not is recorded as failed
with its reason and the tuning goes on.

What the sandbox does (within what Linux allows an unprivileged process; no namespaces):

- the worker runs under a supervisor in its own session and process group, killed as a group
  on a timeout, a protocol error and when the tuner exits or dies (``PR_SET_PDEATHSIG``); the
  supervisor is a child subreaper, so a process a variant starts, daemonised or not, is killed
  with it. A compiled variant that leaves a process behind fails;
- resource limits (:class:`Limits`): address space, CPU time per request, file size, processes,
  no core files; the variant's stdout and stderr are captured up to a cap (the tail is kept);
- an environment allow-list (``PATH``, ``LANG``, ``LC_*``, ``OMP_*``, ...; nothing else unless
  asked for with `env`) and a temporary working directory, also ``HOME`` and ``TMPDIR``,
  removed afterwards;
- frames of JSON and raw bytes, not pickle, on descriptors the variant does not know: junk on
  the channel fails that variant (``kind == "protocol"``) and the next request gets a fresh
  worker;
- the timeout applies to each call (a heartbeat counts calls), not to a whole measurement.

Example:
    >>> from airda.codeopt import Sandbox, Arg
    >>> with Sandbox([Arg("float32", shape=(4,), init="zeros", out=True)]) as box:
    ...     box.ping()
    'pong'
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import mmap
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airda.codeopt import _worker as W
from airda.codeopt.cvariants import Arg

__all__ = ["Limits", "Sandbox", "VariantFailed", "physical_memory", "sandbox_env"]


class VariantFailed(RuntimeError):
    """A variant crashed, hung, broke a limit or raised in the worker; `reason` says which and
    how, `kind` is ``"crash"``, ``"timeout"``, ``"limit"``, ``"processes"`` (it left processes
    running), ``"protocol"`` (junk on the sandbox's channel) or ``"error"``; `output` is the
    tail of what it printed."""

    def __init__(self, reason: str, kind: str = "error", output: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.output = output


def physical_memory() -> int | None:
    """Bytes of physical memory, None where unknown."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _default_processes() -> int:
    return max(256, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Limits:
    """Resource limits of a sandbox worker (None: no limit).

    Attributes:
        memory: address space in bytes (``RLIMIT_AS``); default the machine's physical memory,
            so a runaway allocation fails in the variant instead of swapping the machine. GPU
            runtimes reserve huge virtual ranges: Python variants using CUDA need None.
        cpu_time: CPU seconds per request (``RLIMIT_CPU``, moved before every request; every
            thread counts, and every process a variant starts gets as much); 300 by default.
        file_size: the largest file a variant may write (``RLIMIT_FSIZE``), 64 MiB.
        processes: processes and threads the worker may add to what the user runs
            (``RLIMIT_NPROC``; the kernel does not apply it to root); ``max(256, 4 x CPUs)``.
        output: bytes of the variant's stdout and stderr kept per request (the tail), 1 MiB.
    """

    memory: int | None = field(default_factory=physical_memory)
    cpu_time: float | None = 300.0
    file_size: int | None = 64 << 20
    processes: int | None = field(default_factory=_default_processes)
    output: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("memory", "file_size", "processes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"limit {name} must be a positive integer or None, got {v!r}")
        c = self.cpu_time
        if c is not None and (isinstance(c, bool) or not (c > 0 and math.isfinite(c))):
            raise ValueError(f"limit cpu_time must be a positive number of seconds, got {c!r}")
        if isinstance(self.output, bool) or not isinstance(self.output, int) or self.output < 0:
            raise ValueError(f"limit output must be a non-negative integer, got {self.output!r}")

    def to_worker(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("output")
        return d


# The environment a variant sees: what locates programs and libraries, the locale, and the
# threading and device settings of numerical libraries; nothing else (a token, a password, a
# cloud credential in the tuner's environment stays there) unless `env` asks for it.
_ENV_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "LD_LIBRARY_PATH",
        "PYTHONHOME",
        "CUDA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
    }
)
_ENV_PREFIXES = ("LC_", "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "BLIS_", "NUMEXPR_")


def sandbox_env(
    home: str, env: Mapping[str, str] | Sequence[str] | None = None, token: str = ""
) -> dict[str, str]:
    """The worker's environment: the allow-listed variables of this one, ``HOME`` and
    ``TMPDIR`` set to the sandbox's folder, and `env`: names to pass through from this
    environment (``"NAME"``; ``"NAME=VALUE"`` sets a value) or a mapping of values."""
    out = {k: v for k, v in os.environ.items() if k in _ENV_NAMES or k.startswith(_ENV_PREFIXES)}
    import airda

    root = str(Path(airda.__file__).resolve().parent.parent)
    out.update(HOME=home, TMPDIR=home, PYTHONPATH=root, AIRDA_SANDBOX=token)
    if env is None:
        return out
    if isinstance(env, Mapping):
        items = [(str(k), str(v)) for k, v in env.items()]
    else:
        items = []
        for e in env:
            name, eq, value = str(e).partition("=")
            if eq:
                items.append((name, value))
            elif name in os.environ:
                items.append((name, os.environ[name]))
    for name, value in items:
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"bad environment variable name or value: {name!r}")
        out[name] = value
    return out


_SIGNAL_NOTES = {
    "SIGXCPU": ("limit", "CPU time limit exceeded"),
    "SIGXFSZ": ("limit", "file size limit exceeded"),
}


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class _Capture:
    """The tail of a stream, at most `cap` bytes kept."""

    def __init__(self, cap: int):
        self.cap = cap
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if not self.cap:
            return
        self.chunks.append(data)
        self.size += len(data)
        while self.chunks and self.size - len(self.chunks[0]) >= self.cap:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        data = b"".join(self.chunks)[-self.cap :] if self.cap else b""
        out = data.decode(errors="replace")
        dropped = self.total - len(data)
        return f"[... {dropped} bytes dropped]\n{out}" if dropped else out

    def last_line(self) -> str:
        data = b"".join(self.chunks)[-4096:].decode(errors="replace").strip()
        return data.splitlines()[-1] if data else ""


class _Reader:
    """One reply frame, assembled from what arrives, its header checked first."""

    def __init__(self, max_blob: int):
        self.max_blob = max_blob
        self.buf = bytearray()
        self.size: int | None = None
        self.head: tuple[int, int, int] | None = None

    def feed(self, data: bytes) -> bool:
        self.buf += data
        if self.head is None and len(self.buf) >= W.FRAME.size:
            self.head = W.parse_header(bytes(self.buf[: W.FRAME.size]), self.max_blob)
            self.size = W.FRAME.size + self.head[1] + self.head[2]
        if self.size is not None and len(self.buf) > self.size:
            raise W.ProtocolError("bytes after the reply")
        return self.size is not None and len(self.buf) == self.size

    def value(self) -> tuple[int, Any]:
        assert self.head is not None
        seq, n_json, _ = self.head
        view = memoryview(self.buf)
        text = bytes(view[W.FRAME.size : W.FRAME.size + n_json])
        return seq, W.parse_body(text, view[W.FRAME.size + n_json :])


class _Died(Exception):
    def __init__(self, status: int | None):
        self.status = status


class Sandbox:
    """Runs variants in a sandboxed child process (``python -m airda.codeopt._worker``).

    Args:
        args: the compiled entry function's arguments; they are built (seeded) once here and
            sent to the worker as bytes, and every array is reset to its initial values before
            each checked run.
        seed: seed of the random argument values.
        timeout: seconds a single call may take before the worker is killed (a hang); a
            measurement of many calls may take longer as long as every call returns in time.
        py_args: the arguments of Python callable variants (:meth:`run_callable`,
            :meth:`time_callable`); they must pickle.
        limits: the worker's resource limits (default :class:`Limits`\\ ()).
        env: environment variables to pass to the variants beyond the allow-list: names
            (their values here), ``"NAME=VALUE"`` strings or a mapping.

    A crash, a timeout, a broken limit or junk on the channel raises :class:`VariantFailed`;
    the next request starts a fresh worker.
    """

    def __init__(
        self,
        args: Sequence[Arg] = (),
        *,
        seed: int = 0,
        timeout: float = 10.0,
        py_args: Sequence[Any] | None = None,
        limits: Limits | None = None,
        env: Mapping[str, str] | Sequence[str] | None = None,
    ):
        import pickle

        if isinstance(timeout, bool) or not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.args = list(args)
        self.seed = seed
        self.timeout = float(timeout)
        self.limits = limits if limits is not None else Limits()
        self.env = env
        sandbox_env("", env)  # check the names now
        self._proc: subprocess.Popen[bytes] | None = None
        self._fds: dict[str, int] = {}
        self._page: mmap.mmap | None = None
        self._home: str | None = None
        self._token = ""
        self._worker_pid: int | None = None
        self._status_buf = b""
        self._exit: int | None = None
        self._inflight = False  # a request was sent and its reply not read (interrupted)
        self._seq = 0
        self._loaded: set[str] = set()
        self._setup_pending = False
        self._buffers: list[tuple[bytes, bool]] | None = None
        self._outs: list[tuple[Any, tuple[int, ...]]] = []
        self._py_args = None if py_args is None else pickle.dumps(tuple(py_args), protocol=5)
        self._blobs: dict[str, bytes] = {}
        self._sample_s: dict[str, float] = {}
        self._capture = _Capture(self.limits.output)
        self.restarts = 0

    @property
    def last_output(self) -> str:
        """What the variants printed during the last request (stdout and stderr, the tail)."""
        return self._capture.text()

    def _setup_request(self) -> dict[str, Any]:
        if self._buffers is None:
            import numpy as np

            rng = np.random.default_rng(self.seed)
            try:
                arrays = [a.make(rng) for a in self.args]
            except MemoryError:
                need = sum(a.nbytes for a in self.args)
                raise ValueError(
                    f"cannot allocate the arguments ({need} bytes): choose smaller shapes"
                ) from None
            self._buffers = [(a.tobytes(), s.out) for a, s in zip(arrays, self.args, strict=True)]
            self._outs = [
                (a.dtype, a.shape) for a, s in zip(arrays, self.args, strict=True) if s.out
            ]
        req: dict[str, Any] = {"op": "setup", "buffers": [list(b) for b in self._buffers]}
        if self._py_args is not None:
            req["py_args"] = self._py_args
            # absolute: the worker's working directory is its own ('' means the tuner's)
            req["sys_path"] = [os.path.abspath(p or os.curdir) for p in sys.path]
        return req

    # ---- process --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker now without waiting for it: its interpreter starts while the
        caller does other work (compiles the first variants). Requests start it otherwise."""
        if self._proc is None:
            self._spawn()

    def _spawn(self) -> None:
        home = tempfile.mkdtemp(prefix="airda-sandbox-")
        token = secrets.token_hex(8)
        pipes = {name: os.pipe() for name in ("req", "rep", "status", "out")}
        beat_fd = _beat_fd()
        child_ends = {
            "req": pipes["req"][0],
            "rep": pipes["rep"][1],
            "status": pipes["status"][1],
            "beat": beat_fd,
        }
        cfg = {
            **child_ends,
            "ppid": os.getpid(),
            "limits": self.limits.to_worker(),
            "remove_home": True,
        }
        try:
            self._page = mmap.mmap(beat_fd, W.BEAT_BYTES)
            proc = subprocess.Popen(
                [sys.executable, "-m", "airda.codeopt._worker", json.dumps(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=pipes["out"][1],
                stderr=pipes["out"][1],
                pass_fds=tuple(child_ends.values()),
                cwd=home,
                env=sandbox_env(home, self.env, token),
                start_new_session=True,
            )
        except BaseException:
            for r, w in pipes.values():
                os.close(r)
                os.close(w)
            os.close(beat_fd)
            shutil.rmtree(home, ignore_errors=True)
            raise
        for fd in (*child_ends.values(), pipes["out"][1]):
            os.close(fd)
        self._fds = {
            "req": pipes["req"][1],
            "rep": pipes["rep"][0],
            "status": pipes["status"][0],
            "out": pipes["out"][0],
        }
        for fd in self._fds.values():
            os.set_blocking(fd, False)
        self._proc = proc
        self._home = home
        self._token = token
        self._worker_pid = None
        self._status_buf = b""
        self._exit = None
        self._loaded = set()
        self._setup_pending = True

    def _beats(self) -> tuple[int, int]:
        assert self._page is not None
        return W.beat_counter(self._page)()

    def _read_status(self) -> None:
        """Take the supervisor's records: the worker's pid, then its exit status."""
        fd = self._fds.get("status")
        if fd is None:
            return
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                break
            if not data:
                if self._exit is None:
                    self._exit = -1  # the supervisor itself is gone
                break
            self._status_buf += data
        while len(self._status_buf) >= W.STATUS.size:
            tag, a, _ = W.STATUS.unpack(self._status_buf[: W.STATUS.size])
            self._status_buf = self._status_buf[W.STATUS.size :]
            if tag == b"HELO":
                self._worker_pid = a
            elif tag == b"EXIT":
                self._exit = a

    def _drain_output(self, budget: int = 8 << 20) -> None:
        fd = self._fds.get("out")
        if fd is None:
            return
        while budget > 0:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                return
            self._capture.add(data)
            budget -= len(data)

    def _stop(self, kill: bool) -> None:
        """End the worker (asked to exit, or killed with its process group), wait for the
        supervisor to kill and reap what is left, and free the channel."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if kill:
                self._read_status()
                if self._worker_pid is not None and self._exit is None:
                    for fn in (os.killpg, os.kill):
                        with contextlib.suppress(OSError):
                            fn(self._worker_pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)  # the supervisor kills the rest
            deadline = time.monotonic() + 5.0
            while proc.poll() is None and time.monotonic() < deadline:
                fds = [self._fds["out"], self._fds["status"]]
                ready, _, _ = select.select(fds, [], [], 0.05)
                if self._fds["out"] in ready:
                    self._drain_output()
                if self._fds["status"] in ready:
                    self._read_status()
            if proc.poll() is None:  # pragma: no cover - a supervisor that does not react
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self._read_status()
            self._drain_output()
        finally:
            if self._exit is None or self._exit == -1:
                # the supervisor did not report that it cleaned up: kill what carries our mark
                _sweep(self._token)
            self._inflight = False
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = {}
            if self._page is not None:
                self._page.close()
                self._page = None
            if self._home is not None:
                shutil.rmtree(self._home, ignore_errors=True)
                self._home = None

    def close(self) -> None:
        """Stop the worker (and every process it started)."""
        if self._proc is None:
            return
        asked = False
        # A request that was interrupted (Ctrl-C, an exception) may still run: no asking then.
        if self._proc.poll() is None and self._exit is None and not self._inflight:
            with contextlib.suppress(OSError):
                W.write_all(self._fds["req"], W.frame(0, {"op": "exit"}))
                asked = True
        self._stop(kill=not asked)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def _failed(self, what: str, kind: str) -> VariantFailed:
        self._stop(kill=True)
        self.restarts += 1
        tail = self._capture.last_line()
        return VariantFailed(
            what + (f" (output: {tail})" if tail else ""), kind, self._capture.text()
        )

    def _death(self) -> VariantFailed:
        self._stop(kill=False)
        status = self._exit
        if status is None or status == -1:
            how, kind = "the sandbox's supervisor died", "crash"
        else:
            rc = os.waitstatus_to_exitcode(status)
            if rc < 0:
                name = _signal_name(rc)
                kind, note = _SIGNAL_NOTES.get(name, ("crash", ""))
                how = f"crashed with {name}" + (f" ({note})" if note else "")
            else:
                how, kind = f"worker exited with code {rc}", "crash"
        self.restarts += 1
        tail = self._capture.last_line()
        return VariantFailed(
            how + (f" (output: {tail})" if tail else ""), kind, self._capture.text()
        )

    def _healthy(self) -> None:
        """Before a request: a worker that died idle, or stray bytes on the reply channel (a
        variant's process wrote there after the last reply), mean a fresh worker."""
        if self._proc is None:
            return
        self._read_status()
        stray = False
        with contextlib.suppress(BlockingIOError):
            stray = bool(os.read(self._fds["rep"], 1 << 16))
        if self._exit is not None or stray:
            self._stop(kill=True)
            self.restarts += 1

    def _request(
        self,
        req: dict[str, Any],
        timeout: float,
        *,
        per_call: bool = False,
        fallback: float | None = None,
        max_reply: int = 1 << 40,
    ) -> Any:
        """Send `req` and wait for its reply. With `per_call`, `timeout` applies to each call
        of the variant (the heartbeat), else to the whole request; a request whose library does
        not count its calls gets `fallback` seconds in all."""
        self._healthy()
        if self._proc is None:
            self._spawn()
        if self._setup_pending:  # the first request to a new worker: set it up first
            self._setup_pending = False
            self._request(self._setup_request(), timeout=60.0)
        self._drain_output()
        self._capture = _Capture(self.limits.output)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        parts = [memoryview(p).cast("B") for p in W.frame(seq, req)]
        reader = _Reader(max_reply)
        self._inflight = True
        start = last = time.monotonic()
        # The kernel does not apply RLIMIT_NPROC to root: count the worker's processes here.
        watch = self.limits.processes if os.geteuid() == 0 else None
        next_count = start + 0.1
        beats = self._beats()[0]
        fds = self._fds
        try:
            while True:
                now = time.monotonic()
                b, untracked = self._beats()
                if b != beats:
                    beats, last = b, now
                if per_call and not untracked:
                    left = timeout - (now - last)
                else:
                    left = (fallback if per_call and fallback else timeout) - (now - start)
                if left <= 0:
                    what = (
                        f"timeout: a call ran over {timeout:g} s (killed)"
                        if per_call and not untracked
                        else f"timeout: no result after {timeout:g} s (killed)"
                    )
                    raise self._failed(what, "timeout")
                want = [fds["req"]] if parts else []
                ready, writable, _ = select.select(
                    [fds["rep"], fds["status"], fds["out"]],
                    want,
                    [],
                    min(left, 0.05) if per_call else left,
                )
                if writable:
                    try:
                        while parts:
                            n = os.write(fds["req"], parts[0])
                            parts[0] = parts[0][n:]
                            if not parts[0]:
                                parts.pop(0)
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:
                        parts = []  # the worker is gone: its status tells how
                if fds["out"] in ready:
                    self._drain_output()
                if fds["rep"] in ready:
                    data = self._read_rep()
                    if data is None:
                        raise _Died(None)
                    if data and reader.feed(data):
                        got_seq, reply = reader.value()
                        if got_seq != seq:
                            raise W.ProtocolError(f"reply to request {got_seq}, not {seq}")
                        break
                if fds["status"] in ready:
                    self._read_status()
                    if self._exit is not None:
                        raise _Died(self._exit)
                if watch and now >= next_count and self._worker_pid:
                    next_count = now + 0.1
                    if len(W.descendants(self._worker_pid)) > watch:
                        raise self._failed(
                            f"the variant started more than {watch} processes (killed)", "limit"
                        )
        except _Died:
            raise self._death() from None
        except W.ProtocolError as exc:
            raise self._failed(
                f"protocol error: {exc} (the variant wrote to the sandbox's channel?)", "protocol"
            ) from None
        self._inflight = False
        self._drain_output()
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise self._failed("protocol error: a reply without a status", "protocol")
        if not reply["ok"]:
            raise VariantFailed(
                str(reply.get("error")), str(reply.get("kind", "error")), self._capture.text()
            )
        return reply.get("value")

    def _read_rep(self) -> bytes | None:
        try:
            data = os.read(self._fds["rep"], 1 << 20)
        except BlockingIOError:
            return b""
        return data or None

    def _variant(self, key: str, path: str | os.PathLike[str]) -> dict[str, Any]:
        # The path always travels: a restarted worker loads the library again.
        return {"key": key, "path": str(Path(path))}

    def _out_bytes(self) -> int:
        return sum(int(np_dt.itemsize) * int(_prod(shape)) for np_dt, shape in self._outs)

    # ---- requests -------------------------------------------------------------------------
    def ping(self) -> str:
        return self._request({"op": "ping"}, timeout=60.0)

    def run(
        self, key: str, path: str | os.PathLike[str], timeout: float | None = None
    ) -> list[Any]:
        """Reset the arguments, call the variant once, return its output arrays."""
        import numpy as np

        req = {"op": "run", **self._variant(key, path)}
        t = timeout or self.timeout
        out = self._request(
            req, t, per_call=True, fallback=t, max_reply=self._reply_cap(self._out_bytes())
        )
        sizes = [int(dt.itemsize) * int(_prod(shape)) for dt, shape in self._outs]
        if (
            not isinstance(out, list)
            or [len(b) if isinstance(b, bytes) else -1 for b in out] != sizes
        ):
            raise self._failed("protocol error: outputs of the wrong size", "protocol")
        self._loaded.add(key)
        return [
            np.frombuffer(bytearray(b), dtype=dt).reshape(shape)
            for b, (dt, shape) in zip(out, self._outs, strict=True)
        ]

    @staticmethod
    def _reply_cap(extra: int = 0) -> int:
        return extra + (64 << 20)

    def profile(
        self, key: str, path: str | os.PathLike[str], options: dict[str, Any]
    ) -> dict[str, Any]:
        """The timing core's adaptive measurement (see profile_address) in the worker."""
        req = {"op": "profile", "options": options, **self._variant(key, path)}
        fallback = self.timeout + 2.0 * float(options.get("max_time_s", 1.0)) + 5.0
        out = self._request(
            req, self.timeout, per_call=True, fallback=fallback, max_reply=self._reply_cap()
        )
        self._loaded.add(key)
        return _checked_dict(self, out)

    def sample(
        self, key: str, path: str | os.PathLike[str], options: dict[str, Any]
    ) -> dict[str, Any]:
        """Exactly ``options['n_samples']`` samples (a racing round) in the worker."""
        req = {"op": "sample", "options": options, **self._variant(key, path)}
        fallback = self.timeout * max(1, int(options.get("n_samples", 1))) + 5.0
        out = self._request(
            req, self.timeout, per_call=True, fallback=fallback, max_reply=self._reply_cap()
        )
        self._loaded.add(key)
        return _checked_dict(self, out)

    def line_profile(
        self, key: str, path: str | os.PathLike[str], seconds: float = 0.3
    ) -> dict[str, Any]:
        """A sampling profile of the variant, run in a loop for about `seconds`: see
        :func:`airda.codeopt.lineprof.sample_in_process` (map it to lines with
        :func:`~airda.codeopt.lineprof.map_samples`)."""
        from airda.codeopt.lineprof import sampler_library

        req = {
            "op": "lineprof",
            "sampler": str(sampler_library()),
            "seconds": float(seconds),
            **self._variant(key, path),
        }
        out = self._request(
            req, self.timeout, per_call=True, fallback=self.timeout + float(seconds) + 5.0
        )
        self._loaded.add(key)
        return _checked_dict(self, out)

    def rounds(
        self, variants: Sequence[tuple[str, str | os.PathLike[str], int]], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """One racing round in one request: ``options['n_samples']`` samples of each
        ``(key, path, inner)`` variant in turn (``inner`` 0: calibrated), a list of
        :meth:`sample` results in the same order."""
        req = {
            "op": "rounds",
            "options": options,
            "variants": [{**self._variant(k, p), "inner": int(i)} for k, p, i in variants],
        }
        n = max(1, int(options.get("n_samples", 1)))
        fallback = self.timeout * n * max(1, len(variants)) + 5.0
        out = self._request(
            req, self.timeout, per_call=True, fallback=fallback, max_reply=self._reply_cap()
        )
        if not isinstance(out, list) or len(out) != len(variants):
            raise self._failed("protocol error: a round of the wrong size", "protocol")
        return [_checked_dict(self, o) for o in out]

    # ---- Python callables -------------------------------------------------------------------
    def _callable(self, key: str, fn: Any) -> dict[str, Any]:
        import pickle

        if key not in self._blobs:
            try:
                self._blobs[key] = pickle.dumps(fn, protocol=5)
            except Exception as exc:
                raise VariantFailed(
                    f"cannot send {key!r} to the sandbox ({type(exc).__name__}: {exc}); "
                    "sandboxed variants must be importable module-level functions",
                    "error",
                ) from None
        return {"key": key, "fn": self._blobs[key]}

    def _load_callable(self, key: str, fn: Any) -> dict[str, Any]:
        # Unpickling imports the callable's module (NumPy, PyTorch, ...): that is not the
        # variant's run time, so it has its own generous limit.
        req = self._callable(key, fn)
        if self._proc is None or key not in self._loaded:
            self._request({"op": "pyload", **req}, timeout=max(60.0, self.timeout))
            self._loaded.add(key)
        return req

    def run_callable(self, key: str, fn: Any, timeout: float | None = None) -> Any:
        """Call the Python callable `fn` once on a copy of `py_args` in the worker; its result
        (sent back as numbers, strings, lists, tuples, dicts and NumPy arrays: a PyTorch tensor
        comes back as a NumPy array)."""
        req = self._load_callable(key, fn)
        t = timeout or self.timeout
        return self._request({"op": "pyrun", **req}, t, per_call=True, fallback=t)

    def line_profile_callable(self, key: str, fn: Any, seconds: float = 0.3) -> dict[str, Any]:
        """A sampling profile of the Python callable `fn` (source compiled with the file name
        ``<candidate>``) called in a loop for about `seconds`: see
        :func:`airda.codeopt.lineprof.sample_python`."""
        req = self._load_callable(key, fn)
        t = self.timeout
        out = self._request(
            {"op": "pylineprof", "seconds": float(seconds), **req},
            t,
            per_call=True,
            fallback=t + float(seconds) + 5.0,
        )
        return _checked_dict(self, out)

    def sample_callable(
        self, key: str, fn: Any, n_samples: int, inner: int = 0, min_sample_s: float = 2e-3
    ) -> dict[str, Any]:
        """`n_samples` samples of `fn` on `py_args` in the worker (a racing round), overhead
        subtracted: a dict with ``samples`` (seconds per call), ``inner`` (calibrated when 0)
        and ``measured_s``."""
        req = self._load_callable(key, fn)
        if not inner:  # calibrate first
            req.update(n_samples=0, inner=0, min_sample_s=min_sample_s)
            cal = _checked_dict(
                self,
                self._request(
                    {"op": "pysample", **req},
                    self.timeout,
                    per_call=True,
                    fallback=self.timeout + 10 * min_sample_s,
                ),
            )
            inner = int(cal["inner"])
            self._sample_s[key] = float(cal["sample_s"])
        req.update(n_samples=int(n_samples), inner=int(inner), min_sample_s=min_sample_s)
        fallback = self.timeout + 4.0 * int(n_samples) * self._sample_s.get(key, self.timeout)
        return _checked_dict(
            self,
            self._request(
                {"op": "pysample", **req}, self.timeout, per_call=True, fallback=fallback
            ),
        )

    def time_callable(self, key: str, fn: Any, options: dict[str, Any]) -> dict[str, Any]:
        """:func:`~airda.codeopt.time_callable` of `fn` on `py_args` in the worker: a dict with
        the profile's ``attrs`` and its ``samples``."""
        import pickle

        opts = dict(options)
        if opts.get("sync") is not None:
            opts["sync"] = pickle.dumps(opts["sync"], protocol=5)
        fallback = self.timeout + 2.0 * float(opts.get("max_time_s", 1.0)) + 5.0
        req = self._load_callable(key, fn)
        out = self._request(
            {"op": "pyprofile", "options": opts, **req},
            self.timeout,
            per_call=True,
            fallback=fallback,
        )
        out = _checked_dict(self, out)
        if not isinstance(out.get("attrs"), dict):
            raise self._failed("protocol error: a profile without attributes", "protocol")
        return out


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _checked_dict(box: Sandbox, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise box._failed("protocol error: a malformed measurement", "protocol")
    return value


def _beat_fd() -> int:
    """A descriptor of a zeroed shared page (the heartbeat), inheritable by the worker."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("airda-beat")  # close-on-exec: only the worker gets it (pass_fds)
    else:  # pragma: no cover - no memfd (macOS)
        fd, path = tempfile.mkstemp(prefix="airda-beat-")
        os.unlink(path)
    os.ftruncate(fd, W.BEAT_BYTES)
    return fd


def _sweep(token: str) -> int:
    """Kill every process whose environment carries this sandbox's token: the last resort
    after a supervisor was killed before it could clean up (Linux)."""
    if not token or not os.path.isdir("/proc"):
        return 0
    mark = f"AIRDA_SANDBOX={token}".encode()
    n = 0
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if mark in env.split(b"\0"):
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
                n += 1
    return n

"""A persistent worker process that runs and times compiled variants, so that a variant that
segfaults, aborts or hangs is recorded as failed with its reason and the tuning goes on.

Example:
    >>> from airda.codeopt import Sandbox, Arg
    >>> with Sandbox([Arg("float32", shape=(4,), init="zeros", out=True)]) as box:
    ...     box.ping()
    'pong'
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airda.codeopt._worker import _HEADER
from airda.codeopt.cvariants import Arg

__all__ = ["Sandbox", "VariantFailed"]


class VariantFailed(RuntimeError):
    """A variant crashed, hung or raised in the worker; `reason` says which and how."""

    def __init__(self, reason: str, kind: str = "error"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # "crash", "timeout" or "error"


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class Sandbox:
    """Runs variants in a child process (``python -m airda.codeopt._worker``).

    Args:
        args: the compiled entry function's arguments; they are built (seeded) once here and
            sent to the worker as bytes, and every array is reset to its initial values before
            each checked run.
        seed: seed of the random argument values.
        timeout: seconds a single run may take before the worker is killed (a hang).
        py_args: the arguments of Python callable variants (:meth:`run_callable`,
            :meth:`time_callable`); they must pickle.

    A crash or a timeout raises :class:`VariantFailed`; the next request starts a fresh worker.
    """

    def __init__(
        self,
        args: Sequence[Arg] = (),
        *,
        seed: int = 0,
        timeout: float = 10.0,
        py_args: Sequence[Any] | None = None,
    ):
        import pickle

        self.args = list(args)
        self.seed = seed
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._loaded: set[str] = set()
        self._stderr: Any = None
        self._setup_pending = False
        self._buffers: list[tuple[bytes, bool]] | None = None
        self._outs: list[tuple[Any, tuple[int, ...]]] = []
        self._py_args = None if py_args is None else pickle.dumps(tuple(py_args), protocol=5)
        self._blobs: dict[str, bytes] = {}
        self._sample_s: dict[str, float] = {}
        self.restarts = 0

    def _setup_request(self) -> dict[str, Any]:
        if self._buffers is None:
            import numpy as np

            rng = np.random.default_rng(self.seed)
            arrays = [a.make(rng) for a in self.args]
            self._buffers = [(a.tobytes(), s.out) for a, s in zip(arrays, self.args, strict=True)]
            self._outs = [
                (a.dtype, a.shape) for a, s in zip(arrays, self.args, strict=True) if s.out
            ]
        req: dict[str, Any] = {"op": "setup", "buffers": self._buffers}
        if self._py_args is not None:
            req["py_args"] = self._py_args
            req["sys_path"] = list(sys.path)
        return req

    # ---- process --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker now without waiting for it: its interpreter starts while the
        caller does other work (compiles the first variants). Requests start it otherwise."""
        if self._proc is None:
            self._spawn()

    def _spawn(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        env = dict(os.environ)  # the variant's threading (OMP_NUM_THREADS, ...) is the caller's
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "airda.codeopt._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self._loaded = set()
        self._setup_pending = True

    def close(self) -> None:
        """Stop the worker."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                from airda.codeopt._worker import write_message

                assert proc.stdin is not None
                write_message(proc.stdin.fileno(), {"op": "exit"})
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout) if proc is not None else ():
            if stream is not None:
                stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 400))
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return text.splitlines()[-1] if text else ""

    def _died(self, what: str, kind: str) -> VariantFailed:
        tail = self._stderr_tail()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.restarts += 1
        return VariantFailed(what + (f" (stderr: {tail})" if tail else ""), kind)

    def _read(self, fd: int, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
            b = os.read(fd, n)
            if not b:
                raise EOFError
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _request(self, req: dict[str, Any], timeout: float) -> Any:
        import pickle

        from airda.codeopt._worker import write_message

        if self._proc is None:
            self._spawn()
        if self._setup_pending:  # the first request to a new worker: set it up first
            self._setup_pending = False
            self._request(self._setup_request(), timeout=60.0)
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            write_message(proc.stdin.fileno(), req)
            head = self._read(proc.stdout.fileno(), _HEADER.size, deadline)
            body = self._read(proc.stdout.fileno(), _HEADER.unpack(head)[0], deadline)
        except TimeoutError:
            raise self._died(
                f"timeout: no result after {timeout:g} s (killed)", "timeout"
            ) from None
        except (EOFError, BrokenPipeError, OSError):
            rc = proc.wait()
            how = f"crashed with {_signal_name(rc)}" if rc < 0 else f"worker exited with code {rc}"
            raise self._died(how, "crash") from None
        reply = pickle.loads(body)
        if not reply["ok"]:
            raise VariantFailed(reply["error"], "error")
        return reply["value"]

    def _variant(self, key: str, path: str | os.PathLike[str]) -> dict[str, Any]:
        # The path always travels: a restarted worker loads the library again.
        return {"key": key, "path": str(Path(path))}

    # ---- requests -------------------------------------------------------------------------
    def ping(self) -> str:
        return self._request({"op": "ping"}, timeout=60.0)

    def run(
        self, key: str, path: str | os.PathLike[str], timeout: float | None = None
    ) -> list[Any]:
        """Reset the arguments, call the variant once, return its output arrays."""
        import numpy as np

        req = {"op": "run", **self._variant(key, path)}
        out = self._request(req, timeout or self.timeout)
        self._loaded.add(key)
        return [
            np.frombuffer(bytearray(b), dtype=dt).reshape(shape)
            for b, (dt, shape) in zip(out, self._outs, strict=True)
        ]

    def profile(
        self, key: str, path: str | os.PathLike[str], options: dict[str, Any]
    ) -> dict[str, Any]:
        """The timing core's adaptive measurement (see profile_address) in the worker."""
        req = {"op": "profile", "options": options, **self._variant(key, path)}
        limit = self.timeout + 2.0 * float(options.get("max_time_s", 1.0)) + 5.0
        out = self._request(req, limit)
        self._loaded.add(key)
        return out

    def sample(
        self, key: str, path: str | os.PathLike[str], options: dict[str, Any]
    ) -> dict[str, Any]:
        """Exactly ``options['n_samples']`` samples (a racing round) in the worker."""
        req = {"op": "sample", "options": options, **self._variant(key, path)}
        out = self._request(req, self.timeout * max(1, int(options.get("n_samples", 1))) + 5.0)
        self._loaded.add(key)
        return out

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
        return self._request(req, self.timeout * n * max(1, len(variants)) + 5.0)

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
        """Call the Python callable `fn` once on a copy of `py_args` in the worker; its result."""
        import pickle

        req = self._load_callable(key, fn)
        blob = self._request({"op": "pyrun", **req}, timeout or self.timeout)
        return pickle.loads(blob)

    def sample_callable(
        self, key: str, fn: Any, n_samples: int, inner: int = 0, min_sample_s: float = 2e-3
    ) -> dict[str, Any]:
        """`n_samples` samples of `fn` on `py_args` in the worker (a racing round), overhead
        subtracted: a dict with ``samples`` (seconds per call), ``inner`` (calibrated when 0)
        and ``measured_s``."""
        req = self._load_callable(key, fn)
        if not inner:  # calibrate first (one call: a hang shows within the variant timeout)
            req.update(n_samples=0, inner=0, min_sample_s=min_sample_s)
            cal = self._request({"op": "pysample", **req}, self.timeout + 10 * min_sample_s)
            inner = int(cal["inner"])
            self._sample_s[key] = float(cal["sample_s"])
        req.update(n_samples=int(n_samples), inner=int(inner), min_sample_s=min_sample_s)
        # a sample lasts about what it did at calibration: a hang shows within the timeout
        limit = self.timeout + 4.0 * int(n_samples) * self._sample_s.get(key, self.timeout)
        return self._request({"op": "pysample", **req}, limit)

    def time_callable(self, key: str, fn: Any, options: dict[str, Any]) -> dict[str, Any]:
        """:func:`~airda.codeopt.time_callable` of `fn` on `py_args` in the worker: a dict with
        the profile's ``attrs`` and its ``samples``."""
        import pickle

        opts = dict(options)
        if opts.get("sync") is not None:
            opts["sync"] = pickle.dumps(opts["sync"], protocol=5)
        limit = self.timeout + 2.0 * float(opts.get("max_time_s", 1.0)) + 5.0
        req = self._load_callable(key, fn)
        return self._request({"op": "pyprofile", "options": opts, **req}, limit)

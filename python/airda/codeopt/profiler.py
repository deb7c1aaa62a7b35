"""Timing code variants: the compiled timing core for C symbols, a calibrated loop for Python
callables, and the statistics both report (median, its distribution-free confidence interval,
coefficient of variation, a noise warning).

The median's interval comes from binomial order statistics (no normality assumed): with ``n``
samples the interval ``[x_(k), x_(n+1-k)]`` covers the true median with probability at least
the requested confidence, ``k`` from :func:`median_ci_rank`.

Example:
    >>> import numpy as np
    >>> from airda.codeopt import summarize
    >>> p = summarize(np.arange(1.0, 101.0))
    >>> p.median, p.ci_low, p.ci_high
    (50.5, 40.0, 61.0)
    >>> round(p.cv, 3), p.noisy
    (0.572, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "NOISE_CV",
    "Profile",
    "median_ci_rank",
    "profile_address",
    "summarize",
    "time_callable",
]

#: Coefficient of variation above which a measurement is flagged as noisy.
NOISE_CV = 0.05


def median_ci_rank(n: int, confidence: float = 0.95) -> int:
    """Largest ``k`` with ``P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2``.

    The median's interval is ``[x_(k), x_(n+1-k)]`` (1-based order statistics); 0 when ``n``
    is too small for the confidence (e.g. ``n < 6`` at 95%).

    >>> median_ci_rank(10), median_ci_rank(100), median_ci_rank(5)
    (2, 40, 0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n < 1:
        return 0
    tail = 0.5 * (1.0 - confidence)
    log_half_n = n * math.log(0.5)
    lg = math.lgamma(n + 1.0)
    cdf, k = 0.0, 0
    for i in range(n // 2 + 1):
        nxt = cdf + math.exp(lg - math.lgamma(i + 1.0) - math.lgamma(n - i + 1.0) + log_half_n)
        if nxt > tail:
            break
        cdf, k = nxt, i + 1
    return k


@dataclass(frozen=True)
class Profile:
    """A measurement: seconds per call.

    Attributes:
        median: the median of the samples (seconds per call).
        ci_low / ci_high: the median's distribution-free confidence interval (NaN-free; equal to
            the sample range when there are too few samples for the confidence).
        cv: coefficient of variation of the samples (std / mean).
        n_samples / inner: samples taken, calls per sample.
        measured_s: time spent in timed calls.
        converged: whether the interval reached the requested relative width.
        overhead: per-call overhead subtracted (Python callables), 0 otherwise.
    """

    median: float
    ci_low: float
    ci_high: float
    cv: float
    n_samples: int
    inner: int = 1
    measured_s: float = 0.0
    converged: bool = False
    confidence: float = 0.95
    overhead: float = 0.0
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    @property
    def rel_width(self) -> float:
        """(ci_high - ci_low) / median."""
        return (self.ci_high - self.ci_low) / self.median if self.median > 0 else math.inf

    @property
    def noisy(self) -> bool:
        """True when the coefficient of variation exceeds :data:`NOISE_CV`."""
        return bool(self.cv > NOISE_CV)

    @property
    def warning(self) -> str | None:
        """A sentence on why the number may not be trusted, or None."""
        if self.noisy:
            return (
                f"noisy measurement: CV {self.cv:.1%} > {NOISE_CV:.0%} "
                "(a loaded machine, frequency scaling or a too short sample)"
            )
        if not self.converged and self.n_samples:
            return f"the median's CI ({self.rel_width:.1%} wide) did not reach the requested width"
        return None

    def to_attrs(self) -> dict[str, Any]:
        """The JSON-able summary stored on a trial."""
        return {
            "median_s": self.median,
            "ci_low_s": self.ci_low,
            "ci_high_s": self.ci_high,
            "cv": self.cv,
            "n_samples": self.n_samples,
            "inner": self.inner,
            "measured_s": self.measured_s,
            "converged": self.converged,
            "overhead_s": self.overhead,
            "noisy": self.noisy,
        }


def summarize(
    samples: Any,
    *,
    confidence: float = 0.95,
    inner: int = 1,
    measured_s: float | None = None,
    rel_ci: float | None = None,
    overhead: float = 0.0,
) -> Profile:
    """Statistics of per-call times (seconds).

    ``converged`` is whether the interval is within `rel_ci` of the median (False if not given).
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no samples to summarize")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    s = np.sort(x)
    n = s.size
    med = float(np.median(s))
    k = median_ci_rank(n, confidence)
    lo, hi = (float(s[k - 1]), float(s[n - k])) if k >= 1 else (float(s[0]), float(s[-1]))
    mean = float(s.mean())
    cv = float(s.std() / mean) if mean > 0 else 0.0
    width = (hi - lo) / med if med > 0 else math.inf
    return Profile(
        median=med,
        ci_low=lo,
        ci_high=hi,
        cv=cv,
        n_samples=int(n),
        inner=int(inner),
        measured_s=float(x.sum() * inner) if measured_s is None else float(measured_s),
        converged=bool(k >= 1 and rel_ci is not None and width <= rel_ci),
        confidence=confidence,
        overhead=overhead,
        samples=x,
    )


def profile_address(
    fn: int,
    args: int,
    *,
    warmup: int = 3,
    inner: int = 0,
    min_sample_s: float = 5e-5,
    min_samples: int = 10,
    max_samples: int = 100_000,
    rel_ci: float = 0.01,
    confidence: float = 0.95,
    max_time_s: float = 1.0,
    flush: bool = False,
    flush_bytes: int = 0,
    clock: str = "wall",
) -> Profile:
    """Time ``fn(args)``: `fn` the address of a ``void (*)(void**)`` function, `args` the address
    of its ``void*`` array, in the compiled loop with the GIL released.

    Measures until the median's interval is within `rel_ci` (relative) or `max_time_s` of timed
    calls is spent (after at least `min_samples`). `inner` = 0 calibrates the calls per sample so
    a sample lasts `min_sample_s`. `flush` writes over a buffer twice the last-level cache before
    each sample (not timed). `clock` is ``"wall"`` (steady clock) or ``"cpu"`` (the thread's
    CPU time: leaves out preemption, steadier on a loaded machine; single-threaded code only).
    """
    from airda._native import native

    raw = native().profile_variant(
        int(fn),
        int(args),
        warmup,
        inner,
        min_sample_s,
        min_samples,
        max_samples,
        rel_ci,
        confidence,
        max_time_s,
        flush,
        flush_bytes,
        clock_id(clock),
    )
    p = summarize(raw["samples"], confidence=confidence, inner=raw["inner"], rel_ci=rel_ci)
    return _replace(p, measured_s=raw["measured_s"], converged=raw["converged"])


def clock_id(clock: str | int) -> int:
    """0 for ``"wall"``, 1 for ``"cpu"`` (the compiled core's clock numbers)."""
    ids = {"wall": 0, "cpu": 1, 0: 0, 1: 1}
    if clock not in ids:
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    return ids[clock]


def _replace(p: Profile, **changes: Any) -> Profile:
    import dataclasses

    return dataclasses.replace(p, **changes)


def _loop_seconds(fn: Callable[..., Any], args: tuple[Any, ...], inner: int) -> float:
    clock = time.perf_counter
    r = range(inner)
    t0 = clock()
    for _ in r:
        fn(*args)
    return clock() - t0


def _noop(*args: Any) -> None:
    return None


def calibrate_callable(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    min_sample_s: float,
    beat: Callable[[], Any] | None = None,
) -> tuple[int, float]:
    """Calls of ``fn(*args)`` per sample so that a sample lasts at least `min_sample_s`, and
    the seconds the last such sample took. `beat` is called after every loop (a sandbox's
    heartbeat: its timeout applies to each sample, not to the whole measurement)."""
    inner = 1
    while True:
        t = _loop_seconds(fn, args, inner)
        if beat is not None:
            beat()
        if t >= min_sample_s or inner >= 1 << 24:
            return inner, t
        inner = max(inner * 2, int(inner * 1.2 * min_sample_s / t) if t > 0 else inner * 2)


def sample_callable(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    n: int,
    inner: int,
    beat: Callable[[], Any] | None = None,
) -> tuple[list[float], float]:
    """`n` samples of `inner` calls of ``fn(*args)`` each: per-call seconds with the cost of the
    same loop around a no-op subtracted (measured beside each sample), and the time spent.
    `beat` is called after every sample."""
    out, spent = [], 0.0
    for _ in range(n):
        over = _loop_seconds(_noop, args, inner)
        t = _loop_seconds(fn, args, inner)
        if beat is not None:
            beat()
        spent += t
        out.append(max(t - over, 0.0) / inner)
    return out, spent


def time_callable(
    fn: Callable[..., Any],
    *args: Any,
    warmup: int = 2,
    min_sample_s: float = 2e-3,
    min_samples: int = 10,
    max_samples: int = 10_000,
    rel_ci: float = 0.02,
    confidence: float = 0.95,
    max_time_s: float = 1.0,
    subtract_overhead: bool = True,
    sync: Callable[[], Any] | None = None,
    beat: Callable[[], Any] | None = None,
) -> Profile:
    """Time a Python callable ``fn(*args)``, with the cost of the loop and call calibrated on a
    no-op callable and subtracted (so a fast NumPy call is not credited with Python overhead).

    `sync` is called after every sample (e.g. ``torch.cuda.synchronize``); `beat` after every
    warm-up call and sample, outside the timed loops (a sandbox's per-call heartbeat).

    >>> from airda.codeopt import time_callable
    >>> p = time_callable(sum, range(1000), max_time_s=0.05)
    >>> p.median > 0 and p.ci_low <= p.median <= p.ci_high
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    for _ in range(max(warmup, 0)):
        fn(*args)
        if beat is not None:
            beat()
    inner, _ = calibrate_callable(fn, args, min_sample_s, beat)
    # The same loop around a no-op taking the same arguments, measured between the samples
    # (so it sees the same machine state): its median per-call cost is subtracted.
    over: list[float] = []
    raw: list[float] = []
    spent = 0.0
    converged = False
    next_check = min_samples
    while len(raw) < max_samples:
        if subtract_overhead:
            over.append(_loop_seconds(_noop, args, inner) / inner)
        t = _loop_seconds(fn, args, inner)
        if sync is not None:
            sync()
        if beat is not None:
            beat()
        spent += t
        raw.append(t / inner)
        n = len(raw)
        if n >= next_check:
            next_check = n + max(1, n // 8)
            overhead = float(np.median(over)) if over else 0.0
            samples = [max(r - overhead, 0.0) for r in raw]
            if summarize(samples, confidence=confidence, rel_ci=rel_ci).converged:
                converged = True
                break
        if n >= min_samples and spent >= max_time_s:
            break
    overhead = float(np.median(over)) if over else 0.0
    samples = [max(r - overhead, 0.0) for r in raw]
    p = summarize(samples, confidence=confidence, inner=inner, measured_s=spent, overhead=overhead)
    return _replace(p, converged=converged)

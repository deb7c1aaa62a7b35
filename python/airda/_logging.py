"""The ``airda`` logger, its verbosity, the per-trial log line, and progress for long jobs.

Like Optuna, airda logs to stderr through its own handler on the ``"airda"`` logger, at INFO by
default, so a study prints one line per finished trial::

    [I 2026-01-02 10:00:00,123] trial 12 finished with value: 0.123 and parameters: {'x': 1.5}.
    Best is trial 7 with value: 0.1.

:func:`set_verbosity` (or ``AIRDA_VERBOSITY=warning`` in the environment, read at import and
by worker processes) changes how much is said. Long jobs show a :class:`Progress`: a bar with
rate and ETA on a terminal, and periodic log lines otherwise (CI logs, ``nohup``, pipes).

This module imports only the standard library; tqdm (the terminal bar) loads when a bar is
first drawn, so ``import airda`` stays light.

Example:
    >>> import airda._logging as alog
    >>> with alog.verbosity(alog.WARNING):  # no per-trial lines inside the block
    ...     alog.get_verbosity() == alog.WARNING
    True
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "INFO",
    "WARNING",
    "Progress",
    "TrialProgress",
    "disable_default_handler",
    "disable_propagation",
    "enable_default_handler",
    "enable_propagation",
    "get_logger",
    "get_verbosity",
    "log_trial_finished",
    "parse_level",
    "set_verbosity",
    "verbosity",
]

CRITICAL = logging.CRITICAL
ERROR = logging.ERROR
WARNING = logging.WARNING
INFO = logging.INFO
DEBUG = logging.DEBUG

ENV_VERBOSITY = "AIRDA_VERBOSITY"
ENV_PROGRESS_INTERVAL = "AIRDA_PROGRESS_INTERVAL"  # seconds between progress log lines
DEFAULT_PROGRESS_INTERVAL = 30.0
_ROOT = "airda"
_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "critical": CRITICAL}

_lock = threading.RLock()
_default_handler: logging.Handler | None = None
_active_terminal_bars = 0  # bars drawn on a terminal now: log lines go around them


def parse_level(level: int | str) -> int:
    """``"warning"``, ``"WARNING"``, ``"30"`` or ``30`` -> 30; ValueError names the choices."""
    if isinstance(level, bool):
        raise ValueError(f"verbosity must be a level name or number, got {level!r}")
    if isinstance(level, int):
        return level
    text = str(level).strip().lower()
    if text in _LEVELS:
        return _LEVELS[text]
    if text.lstrip("-").isdigit():
        return int(text)
    raise ValueError(f"unknown verbosity {level!r}; use one of {', '.join(_LEVELS)} or a number")


class _Formatter(logging.Formatter):
    """Optuna's line shape: ``[I 2026-01-02 10:00:00,123] message``."""

    def __init__(self) -> None:
        super().__init__("[%(levelinitial)s %(asctime)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.levelinitial = record.levelname[:1]
        return super().format(record)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment, not the one at import: pytest's capture, a
    redirected stderr and ``contextlib.redirect_stderr`` all see airda's lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        # StreamHandler.__init__ and setStream assign a stream: the live sys.stderr wins.
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if _active_terminal_bars:
            try:
                from tqdm import tqdm

                # Through tqdm, the line lands above the bar instead of inside it.
                tqdm.write(self.format(record), file=sys.stderr)
            except Exception:
                self.handleError(record)
            return
        super().emit(record)


def _configure() -> logging.Logger:
    global _default_handler
    logger = logging.getLogger(_ROOT)
    with _lock:
        if _default_handler is not None:
            return logger
        _default_handler = _StderrHandler()
        _default_handler.setFormatter(_Formatter())
        logger.addHandler(_default_handler)
        env = os.environ.get(ENV_VERBOSITY, "").strip()
        if env:
            try:
                logger.setLevel(parse_level(env))
            except ValueError:
                logger.setLevel(INFO)
                logger.warning("ignoring %s=%r: not a level name or number", ENV_VERBOSITY, env)
        elif logger.level == logging.NOTSET:
            logger.setLevel(INFO)
        # Our handler prints; propagating too would print every line twice for a user who
        # configured the root logger (enable_propagation() and disable_default_handler() for
        # those who want their own handlers).
        logger.propagate = False
    return logger


def get_logger(name: str = _ROOT) -> logging.Logger:
    """The ``airda`` logger or one of its children (``"airda.nas"``), configured."""
    _configure()
    return logging.getLogger(name)


def set_verbosity(level: int | str) -> None:
    """Set the level of the ``airda`` logger: ``DEBUG``, ``INFO`` (default), ``WARNING`` (no
    per-trial lines, no progress), ``ERROR``, or their names.

    The level is also put in ``AIRDA_VERBOSITY`` so that worker processes started after this
    call (``optimize(n_workers=4)``) log at the same level.
    """
    value = parse_level(level)
    _configure().setLevel(value)
    os.environ[ENV_VERBOSITY] = logging.getLevelName(value)


def get_verbosity() -> int:
    """The effective level of the ``airda`` logger."""
    return _configure().getEffectiveLevel()


@contextlib.contextmanager
def verbosity(level: int | str) -> Iterator[None]:
    """Use `level` inside the block; the previous level (and environment) come back after."""
    logger = _configure()
    before = logger.level
    env = os.environ.get(ENV_VERBOSITY)
    set_verbosity(level)
    try:
        yield
    finally:
        logger.setLevel(before)
        if env is None:
            os.environ.pop(ENV_VERBOSITY, None)
        else:
            os.environ[ENV_VERBOSITY] = env


def disable_default_handler() -> None:
    """Stop airda's stderr handler (keep your own handlers on the ``airda`` logger)."""
    logger = _configure()
    assert _default_handler is not None
    logger.removeHandler(_default_handler)


def enable_default_handler() -> None:
    """Bring airda's stderr handler back."""
    logger = _configure()
    assert _default_handler is not None
    if _default_handler not in logger.handlers:
        logger.addHandler(_default_handler)


def enable_propagation() -> None:
    """Pass airda's records on to the root logger's handlers too (pytest's caplog needs it)."""
    _configure().propagate = True


def disable_propagation() -> None:
    """Keep airda's records to its own handlers (the default)."""
    _configure().propagate = False


_log = _configure()


# ---- the per-trial line --------------------------------------------------------------------


@dataclass
class _Best:
    number: int | None = None
    value: float | None = None
    signed: float = math.inf
    last: int = -1  # the number of the last trial this process logged

    def fold(self, number: int, value: float, minimize: bool) -> None:
        signed = value if minimize else -value
        if signed < self.signed or (
            signed == self.signed and (self.number is None or number < self.number)
        ):
            self.number, self.value, self.signed = number, value, signed


_best_lock = threading.Lock()
_bests: weakref.WeakKeyDictionary[Any, _Best] = weakref.WeakKeyDictionary()


def _best_after(study: Any, frozen: Any) -> _Best:
    """The study's best trial once `frozen` is in, without scanning every trial each time.

    A serial loop logs trials n, n+1, n+2: each is folded into the running best. A gap in the
    numbers (the first trial logged, a resumed study, other workers' trials) rescans the study.
    """
    minimize = study.directions[0] == "minimize"
    with _best_lock:
        best = _bests.get(study)
        if best is None or frozen.number != best.last + 1:
            best = _Best()
            for t in study.trials:
                if t.state.value == "complete" and t.values and t.feasible:
                    best.fold(t.number, float(t.values[0]), minimize)
            _bests[study] = best
        if frozen.values and frozen.feasible:
            best.fold(frozen.number, float(frozen.values[0]), minimize)
        best.last = frozen.number
        return best


def log_trial_finished(study: Any, frozen: Any) -> None:
    """Log a finished trial the way Optuna does, at INFO on the ``airda`` logger.

    ``trial 12 finished with value: 0.123 and parameters: {...}. Best is trial 7 with value:
    0.1.``; an infeasible trial (constraints) says so and the best is the best feasible one;
    several objectives give ``values: [...]`` and no best; a pruned trial gives its step;
    a trial that reused an earlier trial's result says so. Failed trials are left to the
    study's own warning (which carries the error). Costs nothing when INFO is off.
    """
    if not _log.isEnabledFor(INFO):
        return
    state = frozen.state.value
    number = frozen.number
    if state == "pruned":
        step = max(frozen.intermediate) if frozen.intermediate else None
        where = "" if step is None else f" at step {step} with value: {frozen.intermediate[step]!r}"
        _log.info("trial %d pruned%s.", number, where)
        return
    if state != "complete" or not frozen.values:
        return
    params = dict(frozen.params)
    cached = frozen.system_attrs.get("cached_from")
    if cached is not None:
        how = f"reused the result of trial {cached} (same parameters):"
    else:
        how = "finished with"
    if len(study.directions) > 1:
        _log.info(
            "trial %d %s values: %r and parameters: %r.", number, how, list(frozen.values), params
        )
        return
    best = _best_after(study, frozen)
    infeasible = "" if frozen.feasible else f" (infeasible: violation {frozen.violation:.6g})"
    if best.number is None:
        _log.info(
            "trial %d %s value: %r%s and parameters: %r. No trial is feasible yet.",
            number,
            how,
            frozen.values[0],
            infeasible,
            params,
        )
        return
    _log.info(
        "trial %d %s value: %r%s and parameters: %r. Best is trial %d with value: %r.",
        number,
        how,
        frozen.values[0],
        infeasible,
        params,
        best.number,
        best.value,
    )


# ---- progress ------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """1:02:03, 2:03 or 0:05, like tqdm's intervals."""
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


class Progress:
    """Progress of a long job: a tqdm bar with rate and ETA on a terminal; otherwise a log line
    on the ``airda`` logger every `log_interval` seconds and one at the end.

    Silent below INFO verbosity (``airda -q``, :func:`set_verbosity` ``(WARNING)``) or with
    ``enabled=False``. Thread-safe.

    Args:
        total: the number of steps, or None when unknown (no ETA).
        desc: what is running, e.g. ``"scoring"`` or the study's name.
        unit: one step, e.g. ``"trial"``, ``"epoch"``, ``"variant"``.
        initial: steps already done (a resumed run): the rate counts only new ones.
        stream: where a bar is drawn (default ``sys.stderr``); a bar only when it is a terminal.
        log_interval: seconds between log lines when not on a terminal (default:
            ``AIRDA_PROGRESS_INTERVAL`` from the environment, else 30).
        enabled: False for none; None (default) follows the verbosity.
        clock: seconds, monotonic (tests pass a fake one).

    Example:
        >>> from airda._logging import Progress
        >>> with Progress(total=3, desc="scoring", unit="arch") as bar:
        ...     for score in (0.1, 0.5, 0.3):
        ...         bar.update(1, last=score)
        >>> bar.n
        3
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        initial: int = 0,
        stream: TextIO | None = None,
        log_interval: float | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.initial = initial
        self.postfix: dict[str, Any] = {}
        self.log_interval = _interval() if log_interval is None else float(log_interval)
        self._clock = clock
        self._start = self._last_log = clock()
        self._lines = 0
        self._lock = threading.Lock()
        self._closed = False
        self._bar: Any = None
        self.enabled = _log.isEnabledFor(INFO) if enabled is None else bool(enabled)
        stream = sys.stderr if stream is None else stream
        tqdm = _tqdm() if self.enabled and _isatty(stream) else None
        self.terminal = tqdm is not None
        if tqdm is not None:
            global _active_terminal_bars
            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=stream,
                dynamic_ncols=True,
                mininterval=0.2,
            )
            with _lock:
                _active_terminal_bars += 1

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Count `n` more steps; keyword arguments are shown beside the count (best=..)."""
        with self._lock:
            if self._closed:
                return
            self.n += n
            self.postfix.update(postfix)
            if self._bar is not None:
                if postfix:
                    self._bar.set_postfix({k: _fmt(v) for k, v in self.postfix.items()}, False)
                self._bar.update(n)
                return
            if not self.enabled:
                return
            now = self._clock()
            if now - self._last_log >= self.log_interval:
                self._last_log = now
                self._lines += 1
                _log.info("%s", self.line(now))

    def set_postfix(self, **postfix: Any) -> None:
        """Change what is shown beside the count without counting a step."""
        self.update(0, **postfix)

    def line(self, now: float | None = None) -> str:
        """``desc: 12/40 trials (30%), 2.5 trials/s, elapsed 0:04, ETA 0:11, best=0.1``."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else math.nan
        units = self.unit + ("" if self.unit.endswith("s") else "s")
        parts = []
        if self.total:
            parts.append(f"{self.n}/{self.total} {units} ({100.0 * self.n / self.total:.0f}%)")
        else:
            parts.append(f"{self.n} {units}")
        if math.isfinite(rate) and rate > 0:
            parts.append(f"{rate:.3g} {units}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"elapsed {_duration(elapsed)}")
        if self.total and math.isfinite(rate) and rate > 0 and self.n < self.total:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        parts += [f"{k}={_fmt(v)}" for k, v in self.postfix.items()]
        return f"{self.desc + ': ' if self.desc else ''}{', '.join(parts)}"

    def close(self) -> None:
        """End the display: the bar stays on screen; a log that had progress lines gets a last
        one. Safe to call twice."""
        global _active_terminal_bars
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is not None:
                self._bar.close()
                with _lock:
                    _active_terminal_bars -= 1
            elif self.enabled and self._lines:
                _log.info("%s (done)", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _tqdm() -> Any:
    """tqdm's bar class, or None without tqdm (a broken install): then log lines instead."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _interval() -> float:
    text = os.environ.get(ENV_PROGRESS_INTERVAL, "").strip()
    if not text:
        return DEFAULT_PROGRESS_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:  # NaN too
        _log.warning("ignoring %s=%r: not a number of seconds", ENV_PROGRESS_INTERVAL, text)
        return DEFAULT_PROGRESS_INTERVAL
    return value


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


class TrialProgress:
    """A study's progress: trials done of `total`, the best value, pruned / failed counts.

    The interface of the executors' progress (``TrialProgress(study, n_trials, enabled)``,
    ``update(frozen)``, ``close()``), and a callback for ``study.optimize(callbacks=[...])``.
    A trial that reused an earlier result is counted apart (``reused=``): it was not evaluated.
    """

    def __init__(self, study: Any, total: int | None, enabled: bool | None = True, **kw: Any):
        self.directions = tuple(study.directions)
        self._lock = threading.Lock()
        self._best: float | None = None
        self._counts: dict[str, int] = {}
        if enabled is not False and len(self.directions) == 1:
            with contextlib.suppress(ValueError):  # no complete trial yet
                self._best = float(study.best_value)
        self.bar = Progress(
            total, desc=study.name, unit="trial", enabled=None if enabled else False, **kw
        )
        if self._best is not None:
            self.bar.set_postfix(best=self._best)  # a resumed study's best so far

    def update(self, frozen: Any) -> None:
        with self._lock:
            postfix: dict[str, Any] = {}
            step = 1
            state = frozen.state.value
            if "cached_from" in frozen.system_attrs:
                step = 0
                postfix["reused"] = self._count("reused")
            elif state in ("pruned", "fail"):
                postfix[state if state == "pruned" else "failed"] = self._count(state)
            if (
                state == "complete"
                and frozen.values
                and len(self.directions) == 1
                and frozen.feasible
            ):
                value = float(frozen.values[0])
                better = min if self.directions[0] == "minimize" else max
                best = value if self._best is None else better(self._best, value)
                if best != self._best:
                    self._best = postfix["best"] = best
        self.bar.update(step, **postfix)

    def _count(self, key: str) -> int:
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    def __call__(self, study: Any, frozen: Any) -> None:
        self.update(frozen)

    def close(self) -> None:
        self.bar.close()

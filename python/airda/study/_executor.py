"""Executors run a study's ask/evaluate/tell loop: in this process (serial), in threads, or in
local worker processes that share the study through its storage. A cluster executor (Ray)
implements the same :class:`Executor` interface."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airda._logging import TrialProgress as _Progress
from airda._logging import log_trial_finished
from airda.storage.base import MaxTrialsReached, current_worker
from airda.strategies import StrategyExhausted

if TYPE_CHECKING:
    from airda.study._study import Study

__all__ = ["Executor", "ProcessExecutor", "SerialExecutor", "ThreadExecutor", "get_executor"]

HEARTBEAT_INTERVAL = 10.0
# Consecutive proposals of already evaluated candidates after which a loop gives up.
MAX_REPEATS = 1000

log = logging.getLogger("airda")


class _LocalCounter:
    """The part of multiprocessing.Value that _Budget uses, for loops in one process."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock


class _Budget:
    """Trials left and the deadline, shared by the loops of one optimize call; and the
    study-wide `max_trials`, which the storage enforces when each trial is created (the
    loops pass it to :meth:`Study.ask`)."""

    def __init__(
        self,
        n_trials: int | None,
        timeout: float | None,
        counter: Any = None,
        max_trials: int | None = None,
        stop: Any = None,
    ):
        self.n_trials = n_trials
        self.stop = stop  # an Event: set by Study.stop(), no trial is taken after it
        self.max_trials = max_trials
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._counter = counter if counter is not None else _LocalCounter()

    def take(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        with self._counter.get_lock():
            if self.n_trials is not None and self._counter.value >= self.n_trials:
                return False
            self._counter.value += 1
            return True

    def refund(self) -> None:
        """Give back a trial that did not evaluate anything (a reused result)."""
        with self._counter.get_lock():
            self._counter.value -= 1

    @property
    def used(self) -> int:
        return int(self._counter.value)


class _Heartbeat:
    """Beats for the running trials of this process, so other workers see it alive."""

    def __init__(self, study: Study, interval: float = HEARTBEAT_INTERVAL):
        self.study = study
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="airda-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        if self.study.storage.url != "memory://":
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            ids = [
                t.trial_id
                for t in list(self.study._trials.values())
                if t.state.value == "running" and t.worker == self.study.worker
            ]
            # A missed beat is harmless; the next one retries.
            with contextlib.suppress(Exception):
                self.study.storage.heartbeat(ids)


def _loop(
    study: Study,
    objective: Callable,
    budget: _Budget,
    catch: tuple,
    callbacks: Sequence[Callable],
    progress: _Progress | None,
) -> None:
    repeats = 0
    while budget.take():
        try:
            frozen = study._run_one(objective, catch, budget.max_trials)
        except StrategyExhausted as exc:
            log.info("study %r: %s", study.name, exc)
            budget.refund()
            break
        except MaxTrialsReached:
            log.debug("study %r holds max_trials=%s trials", study.name, budget.max_trials)
            budget.refund()
            break
        if frozen.system_attrs.get("cached_from") is not None:
            # A candidate evaluated before: its result was reused, so the budget of
            # evaluations is not spent; a strategy that only repeats itself is stopped.
            budget.refund()
            repeats += 1
            if repeats >= MAX_REPEATS:
                log.warning(
                    "study %r: the strategy proposed %d evaluated candidates in a row; stopping",
                    study.name,
                    repeats,
                )
                break
        else:
            repeats = 0
        log_trial_finished(study, frozen)
        for cb in callbacks:
            cb(study, frozen)
        if progress is not None:
            progress.update(frozen)


def _progress_total(study: Study, n_trials: int | None, max_trials: int | None) -> int | None:
    """Trials this run is expected to add: for the progress line's ETA."""
    if max_trials is None:
        return n_trials
    left = max(max_trials - len(study.trials), 0)
    return left if n_trials is None else min(n_trials, left)


class Executor:
    """Runs ``study``'s loop until the budget is spent.

    `max_trials` (the study-wide budget) is passed only when the caller set it; an executor
    hands it to :class:`_Budget`, whose loops pass it to :meth:`Study.ask`.
    """

    def run(
        self,
        study: Study,
        objective: Callable,
        *,
        n_trials: int | None,
        timeout: float | None,
        catch: tuple,
        callbacks: tuple,
        show_progress: bool,
        max_trials: int | None = None,
    ) -> None:
        raise NotImplementedError


class SerialExecutor(Executor):
    """In this process, one trial at a time (the default)."""

    def run(
        self,
        study,
        objective,
        *,
        n_trials,
        timeout,
        catch,
        callbacks,
        show_progress,
        max_trials=None,
    ):
        study.fail_stale_trials()
        progress = _Progress(study, _progress_total(study, n_trials, max_trials), show_progress)
        budget = _Budget(n_trials, timeout, max_trials=max_trials, stop=study._stop)
        try:
            with _Heartbeat(study):
                _loop(study, objective, budget, catch, callbacks, progress)
        finally:
            progress.close()


class ThreadExecutor(Executor):
    """`n_workers` threads in this process: for objectives that release the GIL (GPU work,
    subprocesses, I/O). Works with in-memory studies."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers

    def run(
        self,
        study,
        objective,
        *,
        n_trials,
        timeout,
        catch,
        callbacks,
        show_progress,
        max_trials=None,
    ):
        study.fail_stale_trials()
        budget = _Budget(n_trials, timeout, max_trials=max_trials, stop=study._stop)
        progress = _Progress(study, _progress_total(study, n_trials, max_trials), show_progress)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                _loop(study, objective, budget, catch, callbacks, progress)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=work, name=f"airda-worker-{i}") for i in range(self.n_workers)
        ]
        with _Heartbeat(study):
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        progress.close()
        if errors:
            raise errors[0]


class WorkerTerminated(BaseException):
    """Raised in a worker process when it is told to stop (SIGTERM, or its parent died); the
    running trial is recorded as failed with this reason before the worker exits."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise WorkerTerminated(
        f"the worker was stopped by signal {signum} (its driver was stopped, or ended)"
    )


def _die_with_parent(parent: int) -> None:
    """Stop this worker when the process that started it dies, even by SIGKILL: workers that
    ran on would take trials from a budget nobody watches."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != parent:  # died before the request took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:  # elsewhere, poll for the parent
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="airda-parent-watch", daemon=True).start()


def _worker_main(
    parent: int,
    storage: Any,
    name: str,
    strategy_config: dict,
    objective: Callable,
    counter: Any,
    n_trials: int | None,
    deadline_in: float | None,
    catch: tuple,
    stream: int,
    n_streams: int,
    scheduler: Any,
    cache: bool,
    max_trials: int | None = None,
    stop: Any = None,
) -> None:
    from airda.strategies import get_strategy
    from airda.study._study import Study

    record = None
    try:
        _die_with_parent(parent)
        record = storage.get_study(name)
        study = Study(
            storage,
            record,
            get_strategy(strategy_config),
            scheduler,
            cache=cache,
            stream=stream,
            n_streams=n_streams,
        )
        if stop is not None:
            study._stop = stop  # study.stop() in the objective stops every worker
        budget = _Budget(n_trials, deadline_in, counter, max_trials, stop)
        with _Heartbeat(study):
            _loop(study, objective, budget, catch, (), None)
    except WorkerTerminated:
        # Told to stop between two trials (while asking, say): a trial it created and never
        # started is failed here, not left running until its heartbeat goes stale.
        if record is not None:
            me = current_worker()
            with contextlib.suppress(Exception):
                storage.fail_stale_trials(record.study_id, is_dead=lambda w, *_: w == me)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it
        sys.exit(128 + signal.SIGINT)


class ProcessExecutor(Executor):
    """`n_workers` local processes sharing the study through its storage (an SQLite file or a
    PostgreSQL database).

    Each worker rebuilds the strategy with its own random stream, so workers never propose the
    same random candidates. The objective must be picklable: a module-level function.
    """

    def __init__(self, n_workers: int, start_method: str = "spawn"):
        self.n_workers = n_workers
        self.start_method = start_method

    def run(
        self,
        study,
        objective,
        *,
        n_trials,
        timeout,
        catch,
        callbacks,
        show_progress,
        max_trials=None,
    ):
        if study.storage.url == "memory://":
            raise ValueError(
                "worker processes cannot share an in-memory study: use a storage file "
                "(storage='study.db') or executor='thread'"
            )
        try:
            pickle.dumps(objective)
        except Exception as exc:
            raise TypeError(
                "with n_workers > 1 the objective runs in other processes and must be "
                f"picklable (a module-level function, not a lambda or closure): {exc}"
            ) from None
        main = sys.modules.get("__main__")
        if getattr(objective, "__module__", None) == "__main__" and not getattr(
            main, "__file__", None
        ):
            # It pickles by name, but the workers cannot import an interactive session or
            # `python -c` code: they would all die with an AttributeError of their own.
            raise TypeError(
                "with n_workers > 1 the objective runs in other processes, which import it by "
                "name; it was defined in an interactive session (or python -c), which they "
                "cannot import: define it in a .py file and import it, or use executor='thread'"
            )
        study.fail_stale_trials()
        ctx = mp.get_context(self.start_method)
        counter = ctx.Value("q", 0, lock=True)
        stop = ctx.Event()
        config = study.strategy.config()
        # Streams of their own within this driver's: drivers sharing the study from other
        # processes or machines (each with a distinct stream) never propose the same ones.
        n_streams = study._n_streams * self.n_workers
        first_stream = study._stream * self.n_workers
        before = study.trials
        seen = {t.number for t in before if t.state.finished}
        procs = [
            ctx.Process(
                target=_worker_main,
                args=(
                    os.getpid(),
                    study.storage,
                    study.name,
                    config,
                    objective,
                    counter,
                    n_trials,
                    timeout,
                    catch,
                    first_stream + i,
                    n_streams,
                    study.scheduler,
                    study.cache,
                    max_trials,
                    stop,
                ),
                name=f"airda-worker-{i}",
            )
            for i in range(self.n_workers)
        ]
        progress = _Progress(study, _progress_total(study, n_trials, max_trials), show_progress)
        for p in procs:
            p.start()
        try:
            while any(p.is_alive() for p in procs):
                for p in procs:
                    p.join(timeout=0.2)
                if show_progress or callbacks:
                    # Trials finished since the start (by this driver's workers, or by other
                    # drivers of a shared study), each reported once.
                    for t in study.trials:
                        if t.state.finished and t.number not in seen:
                            seen.add(t.number)
                            for cb in callbacks:
                                cb(study, t)
                            progress.update(t)
                if study._stop.is_set():
                    stop.set()  # a callback called study.stop(): the workers ask no more
        except (KeyboardInterrupt, WorkerTerminated):
            # Ctrl-C, or this driver was told to stop (SIGTERM): the workers record their
            # running trials as failed before they exit.
            for p in procs:
                p.terminate()
            for p in procs:
                p.join()
            # Only this driver's workers: a shared study's other drivers run on.
            mine = {f"{socket.gethostname()}:{p.pid}" for p in procs}
            study.storage.fail_stale_trials(
                study.study_id, is_dead=lambda worker, *_: worker in mine
            )
            raise
        finally:
            progress.close()
        study.fail_stale_trials()
        bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        study._sync()
        if bad:
            raise RuntimeError(
                f"{len(bad)} worker process(es) died (exit codes {bad}); "
                "their running trials were marked failed"
            )


def get_executor(executor: Executor | str | None, n_workers: int = 1) -> Executor:
    """An executor from an instance or a name: ``"serial"``, ``"thread"``, ``"process"``,
    ``"ray"`` (:class:`~airda.study.RayExecutor` on the cluster ``ray.init()`` finds)."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an int >= 1, got {n_workers!r}")
    if isinstance(executor, Executor):
        return executor
    if executor is None:
        executor = "serial" if n_workers == 1 else "process"
    if executor == "serial":
        if n_workers != 1:
            raise ValueError("the serial executor runs one worker")
        return SerialExecutor()
    if executor == "thread":
        return ThreadExecutor(n_workers)
    if executor == "process":
        return ProcessExecutor(n_workers)
    if executor == "ray":
        from airda.study._ray import RayExecutor

        # n_workers caps the trials running at once (1, the default, means "as many as the
        # cluster's resources allow": a Ray user sizes runs by resources, not by a count).
        return RayExecutor(max_concurrent=None if n_workers == 1 else n_workers)
    raise ValueError(
        f"unknown executor {executor!r}; use 'serial', 'thread', 'process' or 'ray' "
        "(or an Executor instance, e.g. RayExecutor(address=...))"
    )

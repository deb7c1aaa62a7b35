"""Trials on a Ray cluster: :class:`RayExecutor`.

The study's storage is the state, not the driver. The driver asks (the RUNNING trial is
stored with its parameters), then hands the trial's id to a Ray actor; the actor opens the
study's storage itself, evaluates the objective on a live :class:`~airda.study.Trial`, beats
the trial's heartbeat while it runs and records the result (complete, pruned, or failed with
its traceback) in the storage. The driver only waits, then syncs the study, so the strategy
hears of the result, and feeds callbacks and progress.

Actors, not tasks: a Ray task shares the fate of the driver that submitted it (it is killed
when its driver exits), a detached actor does not. The actors are detached and named after
the study, so a driver started again (``load_study`` and ``optimize``) finds them: a trial still running is
waited for, a trial asked but never handed over is handed over, and none is lost or run
twice. A trial whose actor died (its node lost, its process killed) is recorded as failed
with the node and the worker in the reason, and its parameters run again as a new trial up
to ``max_retries`` times.

Ray is imported when a RayExecutor runs, not with ``airda``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airda._logging import TrialProgress as _Progress
from airda._logging import log_trial_finished
from airda.storage.base import MaxTrialsReached, StorageError
from airda.strategies import StrategyExhausted
from airda.study._executor import HEARTBEAT_INTERVAL, MAX_REPEATS, Executor, _Heartbeat
from airda.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    pass

__all__ = ["RayExecutor"]

log = logging.getLogger("airda")

NAMESPACE = "airda"
_RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory", "resources")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "RayExecutor needs Ray: pip install 'airda-lab[ray]' (from a checkout: "
            "pip install '.[ray]'; the package is airda[ray] in a requirements file "
            "that names it airda)"
        ) from None
    return ray


# ---- the actor side ----------------------------------------------------------------------


class _TrialRunner:
    """A Ray actor that evaluates trials of one study (one at a time).

    ``run_trial`` and ``join`` run in the default concurrency group (one thread), ``info`` and
    ``current`` in the "control" group, so a driver can ask what it runs while it runs.
    """

    def __init__(
        self,
        storage: Any,
        study_name: str,
        strategy_config: dict,
        scheduler: Any,
        cache: bool,
        heartbeat_interval: float,
        idle_timeout: float | None,
    ):
        from airda.strategies import get_strategy
        from airda.study._study import Study

        self.study = Study(
            storage, storage.get_study(study_name), get_strategy(strategy_config), scheduler,
            cache=cache,
        )  # fmt: skip
        self.interval = heartbeat_interval
        self.current_id: int | None = None
        self.last_used = time.monotonic()
        if idle_timeout is not None:
            # A detached actor nobody uses (its driver died and was not started again) ends
            # itself; trials asked for it but never run then go stale and are failed.
            threading.Thread(target=self._exit_when_idle, args=(idle_timeout,), daemon=True).start()

    def _exit_when_idle(self, idle_timeout: float) -> None:
        while True:
            time.sleep(min(idle_timeout, 5.0))
            if self.current_id is None and time.monotonic() - self.last_used > idle_timeout:
                os._exit(0)

    def info(self) -> tuple[str, str]:
        import ray

        return self.study.worker, ray.get_runtime_context().get_node_id()

    def current(self) -> int | None:
        return self.current_id

    def join(self) -> None:
        """Returns once the trial running now (if any) has ended."""
        self.last_used = time.monotonic()

    def run_trial(self, trial_id: int, number: int, objective: Callable, catch: tuple) -> str:
        from airda.study._trial import Trial

        self.last_used = time.monotonic()
        study = self.study
        study._sync()
        frozen = study._trials.get(number)
        if (
            frozen is None
            or frozen.trial_id != trial_id
            or frozen.state is not TrialState.RUNNING
            or frozen.worker != study.worker
        ):
            return "skipped"  # ended meanwhile (cancelled, failed as stale, run already)
        self.current_id = trial_id
        try:
            with _Heartbeat(study, self.interval):
                return study._evaluate(Trial(study, frozen), objective, catch).state.value
        finally:
            self.current_id = None
            self.last_used = time.monotonic()


# ---- the driver side ---------------------------------------------------------------------


@dataclass
class _Slot:
    """One actor and what the driver knows of it."""

    name: str
    handle: Any
    ready: Any = None  # the ref of info() until the actor has started
    worker: str = ""
    node_id: str = ""
    ref: Any = None  # the ref of the call in flight
    trial: FrozenTrial | None = None  # the trial of that call
    counted: bool = True  # whether the trial in flight came from this call's budget
    orphans: list[FrozenTrial] = field(default_factory=list)  # asked, never handed over
    since: float = field(default_factory=time.monotonic)


def _one_line(exc: BaseException, limit: int = 600) -> str:
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RayExecutor(Executor):
    """Trials as Ray actors on a cluster, with resources per trial.

    The study must live in a storage every node can reach: an SQLite file on a shared disk
    (or on the one machine of a local cluster) or a PostgreSQL database. The objective is
    shipped with Ray's cloudpickle, so lambdas and closures are fine.

    Args:
        address: the cluster: None (``ray.init()``'s default: a running local cluster or a new
            one), ``"auto"``, ``"host:port"`` or ``"ray://host:10001"``. Ray is started or
            connected only when it is not initialised yet, and shut down at the end only if
            this executor started it.
        resources_per_trial: what one trial holds while it runs: ``num_cpus`` (default 1),
            ``num_gpus``, ``memory`` (bytes) and ``resources`` (custom resources, a dict).
        max_concurrent: trials run at once; default what the cluster's resources hold.
        max_retries: a trial whose worker died (node lost, process killed) is recorded as
            failed; its parameters run again as a new trial up to this many times. A retry
            does not take a trial of ``n_trials``.
        heartbeat_interval: seconds between a running trial's heartbeats.
        idle_timeout: seconds after which an actor that nobody uses ends itself (after its
            driver died and was not started again); None keeps it.
        init_kwargs: more arguments for ``ray.init`` (``runtime_env``, ``num_cpus``, ...).

    Example:
        >>> import airda
        >>> from airda.study import RayExecutor
        >>> executor = RayExecutor(address="auto", resources_per_trial={"num_gpus": 1})
        >>> executor.resources_per_trial
        {'num_cpus': 1, 'num_gpus': 1}
    """

    def __init__(
        self,
        address: str | None = None,
        resources_per_trial: Mapping[str, Any] | None = None,
        max_concurrent: int | None = None,
        max_retries: int = 0,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        idle_timeout: float | None = 600.0,
        init_kwargs: Mapping[str, Any] | None = None,
    ):
        res = {"num_cpus": 1, **dict(resources_per_trial or {})}
        unknown = sorted(set(res) - set(_RESOURCE_KEYS))
        if unknown:
            raise ValueError(
                f"resources_per_trial takes {list(_RESOURCE_KEYS)}, got {unknown} "
                "(custom resources go in 'resources': {'resources': {'name': amount}})"
            )
        for key in ("num_cpus", "num_gpus", "memory"):
            v = res.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"resources_per_trial[{key!r}] must be a number >= 0, got {v!r}")
        custom = res.get("resources")
        if custom is not None:
            if not isinstance(custom, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and v >= 0
                for k, v in custom.items()
            ):
                raise ValueError(
                    "resources_per_trial['resources'] must map resource names to amounts >= 0, "
                    f"got {custom!r}"
                )
            res["resources"] = dict(custom)
        if max_concurrent is not None and (
            isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):  # fmt: skip
            raise ValueError(f"max_concurrent must be an int >= 1, got {max_concurrent!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0, got {heartbeat_interval!r}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds or None, got {idle_timeout!r}")
        self.address = address
        self.resources_per_trial = res
        self.max_concurrent = max_concurrent
        self.max_retries = max_retries
        self.heartbeat_interval = float(heartbeat_interval)
        self.idle_timeout = idle_timeout
        self.init_kwargs = dict(init_kwargs or {})

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, resources_per_trial="
            f"{self.resources_per_trial!r}, max_concurrent={self.max_concurrent!r}, "
            f"max_retries={self.max_retries!r})"
        )

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
                "Ray workers cannot reach an in-memory study: use a storage every node can "
                "reach (storage='study.db' for a local cluster, a postgresql:// URL for many "
                "machines)"
            )
        ray = _import_ray()
        try:
            from ray import cloudpickle

            cloudpickle.dumps(objective)
        except Exception as exc:
            raise TypeError(
                f"the objective runs on Ray workers and must be picklable by cloudpickle: {exc}"
            ) from None
        started = False
        if not ray.is_initialized():
            ray.init(**{"address": self.address, **self.init_kwargs})
            started = True
        try:
            driver = _Driver(self, ray, study, objective, n_trials, timeout, catch, callbacks)
            driver.max_trials = max_trials
            driver.run(show_progress)
        finally:
            if started:
                ray.shutdown()


class _Driver:
    """One optimize call on Ray: slots of actors, the trial in flight on each."""

    def __init__(self, executor, ray, study, objective, n_trials, timeout, catch, callbacks):
        self.ex = executor
        self.ray = ray
        self.study = study
        self.objective = objective
        self.n_trials = n_trials
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.used = 0
        self.max_trials: int | None = None
        self.catch = catch
        self.callbacks = callbacks
        self.slots: list[_Slot] = []
        self.stop_asking = False
        self.repeats = 0
        self.failed_starts = 0
        self.progress: _Progress | None = None
        self.actor_cls: Any = None
        self.objective_ref: Any = None
        key = hashlib.sha1(f"{study.storage.url}\0{study.name}".encode()).hexdigest()[:12]
        self.prefix = f"airda-{key}-"

    # ---- budget --------------------------------------------------------------------------
    def _budget_left(self) -> bool:
        if self.stop_asking or self.study._stop.is_set():
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if (
            self.max_trials is not None
            and len(self.study._trials) >= self.max_trials
            and not self.study._waiting
        ):
            return False  # known spent (the storage decides the racy cases when asked)
        return self.n_trials is None or self.used < self.n_trials

    # ---- slots ---------------------------------------------------------------------------
    def _n_slots(self) -> int:
        if self.ex.max_concurrent is not None:
            n = self.ex.max_concurrent
        else:
            total = self.ray.cluster_resources()
            res = self.ex.resources_per_trial
            need = {"CPU": res.get("num_cpus") or 0, "GPU": res.get("num_gpus") or 0}
            need["memory"] = res.get("memory") or 0
            need.update(res.get("resources") or {})
            caps = [math.floor(total.get(k, 0.0) / v + 1e-9) for k, v in need.items() if v > 0]
            n = min(caps) if caps else max(1, int(total.get("CPU", 1)))
            if n < 1:
                raise ValueError(
                    f"no trial fits the Ray cluster now: a trial needs {need}, the cluster has "
                    f"{ {k: total.get(k, 0.0) for k in need} }; give max_concurrent to wait for "
                    "resources that an autoscaler adds"
                )
        if self.n_trials is not None:
            n = min(n, max(self.n_trials, 1))
        if self.max_trials is not None:
            n = min(n, max(self.max_trials - len(self.study.trials), 1))
        return n

    def _options(self, name: str) -> dict[str, Any]:
        res = self.ex.resources_per_trial
        opts: dict[str, Any] = {
            "name": name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "max_restarts": 0,
            "max_task_retries": 0,
            "num_cpus": res.get("num_cpus", 1),
        }
        for key in ("num_gpus", "memory", "resources"):
            if res.get(key):
                opts[key] = res[key]
        return opts

    def _new_slot(self) -> _Slot:
        name = f"{self.prefix}{uuid.uuid4().hex[:8]}"
        if self.actor_cls is None:
            self.actor_cls = self.ray.remote(concurrency_groups={"control": 1})(_TrialRunner)
        handle = self.actor_cls.options(**self._options(name)).remote(
            self.study.storage,
            self.study.name,
            self.study.strategy.config(),
            self.study.scheduler,
            self.study.cache,
            self.ex.heartbeat_interval,
            self.ex.idle_timeout,
        )
        slot = _Slot(name=name, handle=handle)
        slot.ready = handle.info.options(concurrency_group="control").remote()
        return slot

    def _kill(self, slot: _Slot) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(slot.handle, no_restart=True)
        if slot in self.slots:
            self.slots.remove(slot)

    def _adopt(self) -> None:
        """Take over the actors a previous driver of this study left running."""
        ray = self.ray
        try:
            named = ray.util.list_named_actors(all_namespaces=True)
        except Exception:
            return
        names = [
            a["name"]
            for a in named
            if a.get("namespace") == NAMESPACE and a["name"].startswith(self.prefix)
        ]
        if not names:
            return
        by_worker: dict[str, list[tuple[int, str, float | None]]] = {}
        for row in self.study.storage.running_trials(self.study.study_id):
            by_worker.setdefault(row[1], []).append(row)
        self.study._sync()
        by_id = {t.trial_id: t for t in self.study._trials.values()}
        for name in names:
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
                ctl = handle.info.options(concurrency_group="control")
                worker, node_id = ray.get(ctl.remote(), timeout=30)
                current = ray.get(
                    handle.current.options(concurrency_group="control").remote(), timeout=30
                )
            except Exception as exc:  # dead or unreachable: its trials go stale
                log.info("study %r: Ray actor %s not adopted: %s", self.study.name, name, exc)
                continue
            slot = _Slot(name=name, handle=handle, worker=worker, node_id=node_id)
            rows = by_worker.get(worker, [])
            for trial_id, _, _ in rows:
                t = by_id.get(trial_id)
                if t is None:
                    continue
                if trial_id == current:
                    slot.trial, slot.counted = t, False
                    slot.ref = handle.join.remote()
                else:
                    slot.orphans.append(t)
            self.slots.append(slot)
            log.info(
                "study %r: adopted Ray actor %s (running %s, %d asked but not started)",
                self.study.name,
                name,
                None if slot.trial is None else slot.trial.number,
                len(slot.orphans),
            )

    # ---- asking --------------------------------------------------------------------------
    def _ask(self, slot: _Slot) -> Any:
        """Start a trial for the actor of `slot`: stored RUNNING with that actor as its worker,
        so the trial's liveness is the actor's (a driver that dies leaves it running)."""
        study = self.study
        if study._exhausted() and not study._waiting:
            raise StrategyExhausted(
                f"every candidate of the finite space ({study._space_size}) has been evaluated"
            )
        with study._lock:
            saved = study.worker
            study.worker = slot.worker
            try:
                if self.max_trials is None:
                    return study.ask()
                return study.ask(max_trials=self.max_trials)
            finally:
                study.worker = saved

    def _reuse(self, trial: Any) -> FrozenTrial | None:
        """A candidate evaluated before gets its result, as in one process."""
        return self.study._reuse_result(trial)

    def _submit(self, slot: _Slot, trial: FrozenTrial, counted: bool) -> None:
        slot.trial, slot.counted = trial, counted
        slot.ref = slot.handle.run_trial.remote(
            trial.trial_id, trial.number, self.objective_ref, self.catch
        )

    def _fill(self, slot: _Slot) -> None:
        """Give an idle, started actor its next trial."""
        while slot.ref is None:
            if slot.orphans:
                self._submit(slot, slot.orphans.pop(0), counted=False)
                return
            if not self._budget_left():
                return
            self.used += 1
            try:
                trial = self._ask(slot)
            except (StrategyExhausted, MaxTrialsReached) as exc:
                log.info("study %r: %s", self.study.name, exc)
                self.used -= 1
                self.stop_asking = True
                return
            frozen = self._reuse(trial)
            if frozen is None:
                self.repeats = 0
                self._submit(slot, trial._frozen, counted=True)
                return
            # A reused result is not an evaluation: the budget is not spent, and a strategy
            # that only repeats itself is stopped.
            self.used -= 1
            self.repeats += 1
            self._finished(frozen)
            if self.repeats >= MAX_REPEATS:
                log.warning(
                    "study %r: the strategy proposed %d evaluated candidates in a row; stopping",
                    self.study.name,
                    self.repeats,
                )
                self.stop_asking = True

    # ---- results -------------------------------------------------------------------------
    def _finished(self, frozen: FrozenTrial) -> None:
        log_trial_finished(self.study, frozen)
        for cb in self.callbacks:
            cb(self.study, frozen)
        if self.progress is not None:
            self.progress.update(frozen)

    def _record(self, trial: FrozenTrial) -> FrozenTrial | None:
        """The trial as stored now, after the strategy heard of it; None if still running."""
        self.study._sync()
        frozen = self.study._trials.get(trial.number, trial)
        return frozen if frozen.state.finished else None

    def _lost(self, slot: _Slot, exc: BaseException) -> None:
        """The actor of `slot` died with its trial: fail it with the reason, retry it."""
        trial = slot.trial
        self._kill(slot)
        if trial is None:
            return
        reason = (
            f"RayWorkerDied: the Ray worker running trial {trial.number} died "
            f"(node {slot.node_id or '?'}, worker {slot.worker or '?'}, actor {slot.name}): "
            f"{type(exc).__name__}: {_one_line(exc)}"
        )
        try:
            frozen = self.study.storage.finish_trial(
                trial.trial_id, TrialState.FAIL, error=reason, traceback=str(exc)
            )
        except StorageError:  # it recorded its end before it died
            frozen = self._record(trial)
            if frozen is not None:
                self._finished(frozen)
            return
        log.warning("trial %d failed: %s", frozen.number, reason)
        attempt = int(frozen.system_attrs.get("retry", 0))
        if attempt < self.ex.max_retries:
            self.study.storage.create_trial(
                self.study.study_id,
                dict(frozen.params),
                state=TrialState.WAITING,
                system_attrs={"requeued_from": frozen.number, "retry": attempt + 1},
            )
            if slot.counted:
                self.used -= 1  # the retry takes the failed trial's place in the budget
            log.info(
                "trial %d: its parameters run again (retry %d of %d)",
                frozen.number,
                attempt + 1,
                self.ex.max_retries,
            )
        frozen = self._record(trial)
        if frozen is not None:
            self._finished(frozen)

    def _done(self, slot: _Slot, ref: Any) -> None:
        ray = self.ray
        trial = slot.trial
        slot.ref = None
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # The objective raised outside `catch` (the actor recorded the failure), or the
            # actor could not write: either way the run stops, as it would in one process.
            slot.trial = None
            if trial is not None:
                with contextlib.suppress(StorageError):
                    self.study.storage.finish_trial(
                        trial.trial_id,
                        TrialState.FAIL,
                        error=f"{type(exc.cause).__name__}: {exc.cause}",
                        traceback=str(exc),
                    )
                frozen = self._record(trial)
                if frozen is not None:
                    self._finished(frozen)
            raise exc.as_instanceof_cause() from None
        except ray.exceptions.RayError as exc:
            self._lost(slot, exc)
            return
        slot.trial = None
        self.failed_starts = 0
        if trial is not None:
            frozen = self._record(trial)
            if frozen is not None:
                self._finished(frozen)

    def _started(self, slot: _Slot) -> None:
        try:
            slot.worker, slot.node_id = self.ray.get(slot.ready)
        except self.ray.exceptions.RayError as exc:
            self.failed_starts += 1
            self._kill(slot)
            if self.failed_starts >= 3:
                raise RuntimeError(
                    f"a Ray worker for study {self.study.name!r} could not start "
                    f"{self.failed_starts} times in a row (is airda installed on every node, "
                    f"and the storage {self.study.storage.url!r} reachable from them?): "
                    f"{_one_line(exc, 2000)}"
                ) from None
            log.warning("a Ray worker could not start, starting another: %s", _one_line(exc))
            return
        slot.ready = None
        log.debug(
            "study %r: Ray actor %s started on node %s", self.study.name, slot.name, slot.node_id
        )

    def _cancel(self, reason: str) -> None:
        """Stop every trial in flight: cancel its Ray call, kill its actor, record it failed."""
        for slot in list(self.slots):
            if slot.ref is not None:
                with contextlib.suppress(Exception):
                    self.ray.cancel(slot.ref)
            self._kill(slot)
            for t in ([slot.trial] if slot.trial is not None else []) + slot.orphans:
                with contextlib.suppress(StorageError):
                    self.study.storage.finish_trial(
                        t.trial_id, TrialState.FAIL, error=f"cancelled: {reason}"
                    )

    # ---- the loop ------------------------------------------------------------------------
    def run(self, show_progress: bool) -> None:
        study = self.study
        ray = self.ray
        study.fail_stale_trials(requeue=self.ex.max_retries > 0)
        self.objective_ref = ray.put(self.objective)
        self.progress = _Progress(study, self.n_trials, show_progress)
        try:
            self._adopt()
            n_slots = self._n_slots()
            waiting_since = time.monotonic()
            while True:
                busy = [s for s in self.slots if s.ref is not None]
                want = n_slots if self._budget_left() else 0
                while len(self.slots) < want:
                    self.slots.append(self._new_slot())
                for slot in list(self.slots):
                    if slot.ready is None and slot.ref is None:
                        if slot.orphans or self._budget_left():
                            self._fill(slot)
                        elif not slot.orphans:
                            self._kill(slot)  # nothing left for it
                busy = [s for s in self.slots if s.ref is not None]
                starting = [s for s in self.slots if s.ready is not None]
                if not busy and (not starting or not self._budget_left()):
                    break
                refs = {s.ref: s for s in busy} | {s.ready: s for s in starting}
                done, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
                if not done:
                    if not busy and time.monotonic() - waiting_since > 60:
                        log.warning(
                            "study %r: waiting for Ray to place a trial worker with %s "
                            "(the cluster has %s free)",
                            study.name,
                            self.ex.resources_per_trial,
                            ray.available_resources(),
                        )
                        waiting_since = time.monotonic()
                    continue
                for ref in done:
                    slot = refs[ref]
                    if ref is slot.ready:
                        self._started(slot)
                    else:
                        self._done(slot, ref)
                waiting_since = time.monotonic()
        except BaseException as exc:
            self._cancel(f"the driver stopped ({type(exc).__name__})")
            raise
        finally:
            for slot in list(self.slots):
                if slot.ref is None and not slot.orphans:
                    self._kill(slot)
            self.progress.close()
        study.fail_stale_trials(requeue=self.ex.max_retries > 0)
        study._sync()

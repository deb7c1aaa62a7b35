"""The storage interface every backend implements (in memory, SQLite, PostgreSQL).

A storage holds studies and their trials. Writes are short and atomic; trial numbers are
assigned inside the storage, so several workers never share a number. Readers sync
incrementally: every write bumps a per-study sequence number, and :meth:`Storage.get_trials`
returns only the trials changed since the sequence number the caller last saw.
"""

from __future__ import annotations

import abc
import json
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airda.trial import FrozenTrial, TrialState

__all__ = [
    "DuplicatedStudyError",
    "MaxTrialsReached",
    "ReadOnlyStorageError",
    "Storage",
    "StorageError",
    "StudyNotFoundError",
    "StudyRecord",
    "StudySummary",
    "current_worker",
    "worker_is_dead",
]


class StorageError(RuntimeError):
    """The storage cannot be used (corrupt or foreign file, newer schema, ...)."""


class ReadOnlyStorageError(StorageError, PermissionError):
    """A write to a storage opened read-only (``read_only=True``, or a file this process may not
    write). Nothing was written. It is a :class:`PermissionError` too."""


class DuplicatedStudyError(StorageError):
    """A study of that name exists already (use ``load_if_exists=True`` to load it)."""


class MaxTrialsReached(StorageError):
    """The study holds its study-wide number of trials already (``create_trial(...,
    max_trials=M)``): no trial was created, and no trial number was used up."""


class StudyNotFoundError(StorageError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class StudyRecord:
    study_id: int
    name: str
    directions: tuple[str, ...]
    space: dict[str, Any] | None = None
    strategy: dict[str, Any] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


@dataclass(frozen=True)
class StudySummary:
    record: StudyRecord
    n_trials: int
    states: dict[str, int]
    best_values: tuple[float, ...] | None


def check_json(value: Any) -> None:
    """Attributes are stored as JSON in every backend: refuse, before any write, what a file
    could not hold (so that an in-memory study behaves as its SQLite copy would)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"attribute values must be JSON (numbers, strings, lists, dicts): {exc}"
        ) from None


def current_worker() -> str:
    """Identity of this process as a trial's worker: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_dead(worker: str, heartbeat: float | None, grace: float, now: float) -> bool:
    """A running trial's worker is dead if it is a process of this host that no longer exists,
    or if its last heartbeat is older than `grace` seconds."""
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # exists, owned by someone else
        else:
            if _zombie(int(pid)):
                return True  # exited, not yet reaped (an orphan waits for its new parent)
    return heartbeat is not None and now - heartbeat > grace


def _zombie(pid: int) -> bool:
    """Whether process `pid` has exited and awaits reaping (Linux: /proc; elsewhere False)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Storage(abc.ABC):
    """Durable home of studies and trials. Methods are atomic and safe across workers."""

    url: str = ""

    # ---- studies -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_study(
        self,
        name: str,
        directions: Sequence[str],
        space: dict[str, Any] | None,
        strategy: dict[str, Any] | None,
        user_attrs: dict[str, Any],
    ) -> StudyRecord:
        """Create a study; raise DuplicatedStudyError if the name is taken."""

    @abc.abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """Raise StudyNotFoundError if absent."""

    @abc.abstractmethod
    def list_studies(self) -> list[StudySummary]: ...

    @abc.abstractmethod
    def delete_study(self, name: str) -> None: ...

    @abc.abstractmethod
    def set_study_space(self, study_id: int, space: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None: ...

    # ---- trials --------------------------------------------------------------------------
    @abc.abstractmethod
    def create_trial(
        self,
        study_id: int,
        params: dict[str, Any] | None,
        *,
        state: TrialState = TrialState.RUNNING,
        worker: str = "",
        system_attrs: dict[str, Any] | None = None,
        claim_waiting: bool = False,
        max_trials: int | None = None,
    ) -> FrozenTrial | None:
        """Atomically: claim the oldest WAITING trial (if `claim_waiting`) and mark it RUNNING
        for `worker`; otherwise insert a trial with the next number and the given params
        (with `claim_waiting` and params None: return None when nothing waits).

        With `max_trials`, a new trial whose number would be ``max_trials`` or more is not
        inserted: :class:`MaxTrialsReached` is raised, decided in the same transaction that
        assigns the number, so workers on any number of machines never overshoot. A waiting
        trial is claimed regardless (it is in the study already)."""

    @abc.abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        values: Sequence[float] | None = None,
        params: dict[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
        system_attrs: dict[str, Any] | None = None,
    ) -> FrozenTrial:
        """Record the end of a RUNNING trial; raise StorageError if it is not running."""

    def import_trials(self, study_id: int, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """Copy finished or waiting trials (of another storage's study) into study
        `study_id`, in one transaction, with the study's next numbers in the order given:
        states, values, parameters, reported values, attributes, errors, times and workers are
        kept. A RUNNING trial is refused (ValueError): its result is not known yet."""
        raise NotImplementedError(f"{type(self).__name__} cannot import trials")

    @abc.abstractmethod
    def set_intermediate(self, trial_id: int, step: int, value: float) -> None: ...

    @abc.abstractmethod
    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None: ...

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Record a system attribute of a trial (checkpoint paths, scheduler notes)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not store system attributes of running trials"
        )

    @abc.abstractmethod
    def heartbeat(self, trial_ids: Sequence[int]) -> None: ...

    @abc.abstractmethod
    def get_trials(self, study_id: int, since_seq: int = 0) -> tuple[list[FrozenTrial], int]:
        """Trials written after `since_seq`, and the sequence number to pass next time."""

    @abc.abstractmethod
    def running_trials(self, study_id: int) -> list[tuple[int, str, float | None]]:
        """(trial_id, worker, last heartbeat) of every RUNNING trial."""

    # ---- shared behaviour ----------------------------------------------------------------
    def fail_stale_trials(
        self,
        study_id: int,
        *,
        grace: float = 60.0,
        requeue: bool = False,
        is_dead: Callable[[str, float | None, float, float], bool] = worker_is_dead,
    ) -> list[int]:
        """Mark RUNNING trials whose worker died as FAIL (optionally enqueue their params
        again); return their numbers."""
        now = time.time()
        failed = []
        for trial_id, worker, beat in self.running_trials(study_id):
            if not is_dead(worker, beat, grace, now):
                continue
            last = "never" if beat is None else f"{now - beat:.1f} s ago"
            try:
                t = self.finish_trial(
                    trial_id,
                    TrialState.FAIL,
                    error=f"WorkerDied: worker {worker} stopped (last heartbeat {last})",
                )
            except StorageError:
                continue  # finished meanwhile
            failed.append(t.number)
            if requeue:
                self.create_trial(
                    study_id,
                    t.params,
                    state=TrialState.WAITING,
                    system_attrs={"requeued_from": t.number},
                )
        return failed

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections; the storage may be used again afterwards."""


def check_importable(trials: Sequence[FrozenTrial]) -> None:
    for t in trials:
        if t.state is TrialState.RUNNING:
            raise ValueError(
                f"trial {t.number} is running: only finished or waiting trials are copied"
            )
        check_json(t.params)
        check_json(t.user_attrs)
        check_json(t.system_attrs)


def best_of(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> tuple[float, ...] | None:
    done = [
        t for t in trials if t.state is TrialState.COMPLETE and t.values is not None and t.feasible
    ]
    if not done or len(directions) != 1:
        return None
    sign = 1.0 if directions[0] == "minimize" else -1.0
    best = min(done, key=lambda t: sign * t.values[0] if t.values else math.inf)
    return best.values

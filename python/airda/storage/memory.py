"""In-memory storage: the fastest backend, for one process (threads included)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from airda.storage.base import (
    DuplicatedStudyError,
    MaxTrialsReached,
    Storage,
    StorageError,
    StudyNotFoundError,
    StudyRecord,
    StudySummary,
    best_of,
    check_importable,
    check_json,
)
from airda.trial import FrozenTrial, TrialState

__all__ = ["InMemoryStorage"]


class InMemoryStorage(Storage):
    """Studies in this process's memory; gone when it exits."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, StudyRecord] = {}
        self._by_id: dict[int, StudyRecord] = {}
        self._trials: dict[int, list[FrozenTrial]] = {}  # study_id -> trials by number
        self._where: dict[int, tuple[int, int]] = {}  # trial_id -> (study_id, number)
        # Per study, the trial number written by each write: the sequence number of a write is
        # its position in this log, so a reader catches up with a slice.
        self._log: dict[int, list[int]] = {}
        self._heartbeats: dict[int, float] = {}
        self._next_study = 0
        self._next_trial = 0

    # ---- studies -------------------------------------------------------------------------
    def create_study(self, name, directions, space, strategy, user_attrs):
        with self._lock:
            if name in self._studies:
                raise DuplicatedStudyError(f"a study named {name!r} exists already")
            rec = StudyRecord(
                self._next_study,
                name,
                tuple(directions),
                space,
                strategy,
                dict(user_attrs),
                time.time(),
            )
            self._next_study += 1
            self._studies[name] = rec
            self._by_id[rec.study_id] = rec
            self._trials[rec.study_id] = []
            self._log[rec.study_id] = []
            return rec

    def get_study(self, name):
        with self._lock:
            try:
                return self._studies[name]
            except KeyError:
                raise StudyNotFoundError(f"no study named {name!r} in {self.url}") from None

    def list_studies(self):
        with self._lock:
            out = []
            for rec in self._studies.values():
                trials = self._trials[rec.study_id]
                states = Counter(t.state.value for t in trials)
                out.append(
                    StudySummary(rec, len(trials), dict(states), best_of(trials, rec.directions))
                )
            return out

    def delete_study(self, name):
        with self._lock:
            rec = self.get_study(name)
            del self._studies[name]
            del self._by_id[rec.study_id]
            self._log.pop(rec.study_id)
            for t in self._trials.pop(rec.study_id):
                self._where.pop(t.trial_id, None)
                self._heartbeats.pop(t.trial_id, None)

    def _replace_study(self, study_id: int, **changes: Any) -> None:
        rec = dataclasses.replace(self._by_id[study_id], **changes)
        self._by_id[study_id] = rec
        self._studies[rec.name] = rec

    def set_study_space(self, study_id, space):
        with self._lock:
            self._replace_study(study_id, space=space)

    def set_study_user_attr(self, study_id, key, value):
        check_json(value)
        with self._lock:
            attrs = dict(self._by_id[study_id].user_attrs)
            attrs[key] = value
            self._replace_study(study_id, user_attrs=attrs)

    # ---- trials --------------------------------------------------------------------------
    def _put(self, study_id: int, trial: FrozenTrial) -> FrozenTrial:
        trials = self._trials[study_id]
        if trial.number == len(trials):
            trials.append(trial)
        else:
            trials[trial.number] = trial
        self._log[study_id].append(trial.number)
        return trial

    def _get(self, trial_id: int) -> tuple[int, FrozenTrial]:
        try:
            study_id, number = self._where[trial_id]
        except KeyError:
            raise StorageError(f"no trial with id {trial_id}") from None
        return study_id, self._trials[study_id][number]

    def create_trial(
        self,
        study_id,
        params,
        *,
        state=TrialState.RUNNING,
        worker="",
        system_attrs=None,
        claim_waiting=False,
        max_trials=None,
    ):
        now = time.time()
        with self._lock:
            if study_id not in self._trials:
                raise StudyNotFoundError(f"no study with id {study_id}")
            if claim_waiting:
                for t in self._trials[study_id]:
                    if t.state is TrialState.WAITING:
                        claimed = dataclasses.replace(
                            t, state=TrialState.RUNNING, worker=worker, datetime_start=now
                        )
                        self._heartbeats[t.trial_id] = now
                        return self._put(study_id, claimed)
                if params is None:
                    return None
            number = len(self._trials[study_id])
            if max_trials is not None and number >= max_trials:
                raise MaxTrialsReached(
                    f"study id {study_id} has reached its limit of {max_trials} trials"
                )
            trial = FrozenTrial(
                number=number,
                state=state,
                params=dict(params or {}),
                system_attrs=dict(system_attrs or {}),
                datetime_start=now if state is TrialState.RUNNING else None,
                worker=worker if state is TrialState.RUNNING else "",
                trial_id=self._next_trial,
            )
            self._next_trial += 1
            self._where[trial.trial_id] = (study_id, number)
            if state is TrialState.RUNNING:
                self._heartbeats[trial.trial_id] = now
            return self._put(study_id, trial)

    def import_trials(self, study_id, trials):
        check_importable(trials)
        out = []
        with self._lock:
            if study_id not in self._trials:
                raise StudyNotFoundError(f"no study with id {study_id}")
            for t in trials:
                copy = dataclasses.replace(
                    t, number=len(self._trials[study_id]), trial_id=self._next_trial
                )
                self._next_trial += 1
                self._where[copy.trial_id] = (study_id, copy.number)
                out.append(self._put(study_id, copy))
        return out

    def finish_trial(
        self,
        trial_id,
        state,
        *,
        values=None,
        params=None,
        error=None,
        traceback=None,
        system_attrs=None,
    ):
        with self._lock:
            study_id, t = self._get(trial_id)
            if t.state is not TrialState.RUNNING:
                raise StorageError(f"trial {t.number} is {t.state.value}, not running")
            attrs = dict(t.system_attrs) | dict(system_attrs or {})
            done = dataclasses.replace(
                t,
                state=state,
                values=tuple(values) if values is not None else None,
                params=dict(params) if params is not None else t.params,
                error=error,
                traceback=traceback,
                system_attrs=attrs,
                datetime_complete=time.time(),
            )
            self._heartbeats.pop(trial_id, None)
            return self._put(study_id, done)

    def set_intermediate(self, trial_id, step, value):
        with self._lock:
            study_id, t = self._get(trial_id)
            self._put(study_id, dataclasses.replace(t, intermediate=t.intermediate | {step: value}))

    def set_trial_system_attr(self, trial_id, key, value):
        check_json(value)
        with self._lock:
            study_id, t = self._get(trial_id)
            self._put(study_id, dataclasses.replace(t, system_attrs=t.system_attrs | {key: value}))

    def set_trial_user_attr(self, trial_id, key, value):
        check_json(value)
        with self._lock:
            study_id, t = self._get(trial_id)
            self._put(study_id, dataclasses.replace(t, user_attrs=t.user_attrs | {key: value}))

    def heartbeat(self, trial_ids: Sequence[int]) -> None:
        now = time.time()
        with self._lock:
            for tid in trial_ids:
                if tid in self._heartbeats:
                    self._heartbeats[tid] = now

    def get_trials(self, study_id, since_seq=0):
        with self._lock:
            if study_id not in self._trials:
                raise StudyNotFoundError(f"no study with id {study_id}")
            trials = self._trials[study_id]
            log = self._log[study_id]
            if since_seq <= 0:
                return list(trials), len(log)
            changed = sorted(set(log[since_seq:]))
            return [trials[n] for n in changed], len(log)

    def running_trials(self, study_id):
        with self._lock:
            return [
                (t.trial_id, t.worker, self._heartbeats.get(t.trial_id))
                for t in self._trials.get(study_id, [])
                if t.state is TrialState.RUNNING
            ]

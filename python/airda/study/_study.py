"""Studies: a space, an objective and a strategy, with every trial recorded in a storage.

``optimize`` is only a loop over :meth:`Study.ask`, the objective and :meth:`Study.tell`; any
driver (a user's own loop, worker processes, the CLI) uses the same three steps.
"""

from __future__ import annotations

import csv
import inspect
import json
import logging
import math
import os
import sys
import threading
import time
import traceback as tb_module
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from airda.space import Param, Space, SpaceError, candidate_key
from airda.storage import Storage, StudyRecord, get_storage
from airda.storage.base import DuplicatedStudyError, MaxTrialsReached, current_worker
from airda.strategies import Strategy, StrategyExhausted, get_strategy
from airda.study._trial import Trial
from airda.trial import (
    CONSTRAINT_NAMES_KEY,
    CONSTRAINTS_KEY,
    FrozenTrial,
    TrialPruned,
    TrialState,
    check_constraints,
    check_values,
    frozen_to_mapping,
)

__all__ = ["Study", "copy_study", "create_study", "load_study"]

log = logging.getLogger("airda")

Objective = Callable[[Trial], Any]


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _directions(direction: str | None, directions: Sequence[str] | None) -> tuple[str, ...]:
    if direction is not None and directions is not None:
        raise ValueError("give direction or directions, not both")
    dirs = tuple(directions) if directions is not None else (direction or "minimize",)
    if not dirs:
        raise ValueError("directions is empty")
    for d in dirs:
        if d not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {d!r}")
    return dirs


# Optuna's keyword names that airda spells otherwise: what a user porting a script types.
_OPTUNA_HINTS = {
    "sampler": "strategy (a name such as 'tpe', 'gp', 'cmaes' or a Strategy instance)",
    "pruner": "scheduler (see airda.schedulers)",
    "gc_after_trial": "nothing: pass callbacks=[lambda study, trial: gc.collect()]",
}


_OPTUNA_STUDY_NAMES = {
    "enqueue_trial": "enqueue(params)",
    "trials_dataframe": "to_dataframe()",
    "best_trials": "pareto_front()",
    "study_name": "name",
    "sampler": "strategy",
    "pruner": "scheduler",
    "add_trial": "tell(ask(fixed=params), value)",
}


def _optuna_aliases(
    given: dict[str, Any],
    extra: dict[str, Any],
    where: str,
    renames: Mapping[str, str],
    allowed: Sequence[str],
) -> dict[str, Any]:
    """`given` (airda's keyword values) with Optuna's spellings in `extra` (``renames``: its
    name -> airda's) folded in; any other unknown keyword is a TypeError that says what airda
    calls it."""
    out = dict(given)
    for key, value in extra.items():
        if key in renames:
            ours = renames[key]
            if out.get(ours) is not None and out[ours] != value:
                raise TypeError(f"{where}() got {ours}={out[ours]!r} and {key}={value!r}: give one")
            out[ours] = value
            continue
        if key in _OPTUNA_HINTS:
            hint = f"; airda calls it {_OPTUNA_HINTS[key]}"
        else:
            import difflib

            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]}=?" if close else ""
        raise TypeError(f"{where}() got an unexpected keyword argument {key!r}{hint}")
    return out


def _as_space(space: Space | Mapping[str, Any] | None) -> Space:
    if space is None:
        return Space({})
    if isinstance(space, Space):
        return space
    if isinstance(space, Mapping):
        return Space(space)
    raise TypeError(f"space must be a Space or a dict, got {type(space).__name__}")


class Study:
    """A search: create with :func:`create_study` or :func:`load_study`, not directly."""

    def __init__(
        self,
        storage: Storage,
        record: StudyRecord,
        strategy: Strategy,
        scheduler: Any = None,
        *,
        cache: bool = True,
        stream: int = 0,
        n_streams: int = 1,
    ):
        self._storage = storage
        self._record = record
        self.name = record.name
        self.directions = record.directions
        self.space = Space.from_dict(record.space) if record.space else Space({})
        self._dynamic = not record.space
        self.strategy = strategy
        self.scheduler = scheduler
        self.cache = cache
        self.worker = current_worker()
        self._lock = threading.RLock()
        self._stop: Any = threading.Event()  # set by stop(); cleared by optimize()
        self._stream = stream
        self._n_streams = n_streams
        self._reset_cache()

    # ---- history -------------------------------------------------------------------------
    def _reset_cache(self) -> None:
        self.strategy.setup(self.space, self.directions, self._stream, self._n_streams)
        self._trials: dict[int, FrozenTrial] = {}
        self._told: set[int] = set()
        self._seq = 0
        self._complete_by_key: dict[str, FrozenTrial] = {}
        self._unkeyed: list[FrozenTrial] = []  # complete trials not yet in _complete_by_key
        self._waiting: set[int] = set()  # numbers of enqueued trials not yet started
        # A finite space is done when every candidate has a finished trial (only when results
        # are reused: without the cache a repeat is a deliberate re-evaluation).
        self._space_size = self._finite_size()
        self._finished_keys: set[str] = set()

    def _rebind_strategy(self) -> None:
        """Define-by-run: the objective suggested new parameters, so the strategy is bound to
        the grown space and told the history again (in number order, as a resumed study is),
        and proposes every known parameter from the next ask on. Without this a model-based
        strategy would never see a parameter and every suggestion would be drawn at random."""
        self.strategy.setup(self.space, self.directions, self._stream, self._n_streams)
        known = sorted(self._trials.values(), key=lambda t: t.number)
        for t in known:
            self.strategy.note(t)
        for t in known:
            if t.number in self._told:
                self.strategy.tell(t)

    def _sync(self) -> None:
        """Catch up with the storage: new trials are noted, newly finished ones told."""
        with self._lock:
            changed, self._seq = self._storage.get_trials(self._record.study_id, self._seq)
            finished = []
            for t in changed:
                if t.number not in self._trials:
                    self.strategy.note(t)
                self._trials[t.number] = t
                if t.state is TrialState.WAITING:
                    self._waiting.add(t.number)
                else:
                    self._waiting.discard(t.number)
                if t.state.finished and t.number not in self._told:
                    finished.append(t)
            # By number: a resumed study replays its history in the order a serial run told it.
            finished.sort(key=lambda t: t.number)
            for t in finished:
                self._told.add(t.number)
                if self._space_size is not None:
                    self._finished_keys.add(candidate_key(t.params))
                if t.state is TrialState.COMPLETE and self.cache and not self._dynamic:
                    self._unkeyed.append(t)  # keyed when looked up (ask/tell never does)
                self.strategy.tell(t)

    @property
    def study_id(self) -> int:
        return self._record.study_id

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, by number."""
        self._sync()
        return [self._trials[n] for n in sorted(self._trials)]

    def get_trials(
        self, states: Iterable[TrialState] | None = None, *, deepcopy: bool = True
    ) -> list[FrozenTrial]:
        """The trials in these states (all when None), by number. `deepcopy` is accepted for
        Optuna's signature and changes nothing: a FrozenTrial is immutable."""
        if isinstance(states, bool):  # Optuna's first positional argument is deepcopy
            raise TypeError("get_trials(states=...): airda's first argument is the states")
        wanted = set(states) if states is not None else None
        return [t for t in self.trials if wanted is None or t.state in wanted]

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._storage.get_study(self.name).user_attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self._storage.set_study_user_attr(self.study_id, key, value)

    # ---- results -------------------------------------------------------------------------
    def _signed(self, t: FrozenTrial) -> tuple[float, ...]:
        assert t.values is not None
        return tuple(
            v if d == "minimize" else -v for v, d in zip(t.values, self.directions, strict=True)
        )

    @property
    def best_trial(self) -> FrozenTrial:
        """The best complete trial (single objective) among those that satisfy their
        constraints (see :meth:`Trial.set_constraints`); ValueError if there is none."""
        if len(self.directions) != 1:
            raise ValueError("the study has several objectives: use pareto_front()")
        done = self.get_trials([TrialState.COMPLETE])
        if not done:
            raise ValueError(f"study {self.name!r} has no complete trial yet")
        feasible = [t for t in done if t.feasible]
        if not feasible:
            raise ValueError(
                f"study {self.name!r} has no feasible trial yet: each of its {len(done)} "
                "complete trial(s) violates a constraint"
            )
        return min(feasible, key=lambda t: (self._signed(t)[0], t.number))

    @property
    def best_value(self) -> float:
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    def pareto_front(self) -> list[FrozenTrial]:
        """The complete trials no other complete trial dominates, by number; with
        constraints, the feasible trials no other feasible one dominates."""
        done = [t for t in self.get_trials([TrialState.COMPLETE]) if t.feasible]
        if not done:
            return []
        from airda.ops.non_dominated_rank import non_dominated_rank

        ranks = non_dominated_rank(np.array([self._signed(t) for t in done], dtype=np.float64))
        return [t for t, r in zip(done, ranks, strict=True) if r == 0]

    # ---- ask / tell ----------------------------------------------------------------------
    def ask(
        self,
        fixed: Mapping[str, Any] | None = None,
        *,
        ask_index: int | None = None,
        max_trials: int | None = None,
    ) -> Trial:
        """Start a trial: an enqueued candidate if one waits, else the strategy's next one.

        Args:
            fixed: start a trial of these parameters instead. In a define-by-run study
                (no space given) the caller manages these values: a suggestion of one of
                them returns it and does not add the parameter to the study's space.
            ask_index: with `fixed`, the index :meth:`ask_candidates` gave it: the trial is
                recorded as that ask of the strategy (not as a fixed candidate), so a resumed
                study's strategy continues after it.
            max_trials: start no new trial once the study holds this many (every worker's,
                on every machine, decided atomically by the storage); an enqueued trial is
                still taken.

        Raises StrategyExhausted when a finite strategy has nothing left, and
        :class:`~airda.storage.base.MaxTrialsReached` when the study holds `max_trials`.

        Example:
            >>> import airda
            >>> from airda.space import Float
            >>> study = airda.create_study("demo", space={"x": Float(0, 1)}, seed=0)
            >>> study.tell(study.ask(max_trials=1), 0.5).number
            0
            >>> study.ask(max_trials=1)
            Traceback (most recent call last):
            ...
            airda.storage.base.MaxTrialsReached: study 'demo' holds 1 trials (max_trials=1)
        """
        self._sync()
        if max_trials is not None:
            _check_count("max_trials", max_trials)
            if len(self._trials) >= max_trials and not (fixed is None and self._waiting):
                # Known spent without a write (and before the strategy is asked, so that no
                # candidate is drawn and dropped); the storage decides the racy cases.
                raise MaxTrialsReached(
                    f"study {self.name!r} holds {len(self._trials)} trials "
                    f"(max_trials={max_trials})"
                )
        frozen = None
        if ask_index is not None:
            if fixed is None:
                raise ValueError("ask_index goes with fixed (a candidate of ask_candidates)")
            if (
                isinstance(ask_index, bool)
                or not isinstance(ask_index, int)
                or not 0 <= ask_index < self.strategy.n_asked
            ):
                raise ValueError(
                    f"ask_index must be one ask_candidates gave (0 to "
                    f"{self.strategy.n_asked - 1}), got {ask_index!r}"
                )
        if fixed is None and self._waiting:
            frozen = self._storage.create_trial(
                self.study_id, None, worker=self.worker, claim_waiting=True
            )
        if frozen is None:
            if fixed is not None:
                params = self.space.validate(fixed) if len(self.space) else dict(fixed)
                attrs: dict[str, Any] = (
                    {"fixed": True}
                    if ask_index is None
                    else {"ask_index": ask_index, "stream": self._stream}
                )
            else:
                with self._lock:
                    if self._dynamic and self.strategy.space is not self.space:
                        self._rebind_strategy()
                    index = self.strategy.n_asked
                    params = self.strategy.ask(1)[0] if len(self.space) else {}
                attrs = {"ask_index": index, "stream": self._stream}
            frozen = self._storage.create_trial(
                self.study_id,
                params,
                worker=self.worker,
                system_attrs=attrs,
                max_trials=max_trials,
            )
            assert frozen is not None
        with self._lock:
            if frozen.number not in self._trials:
                self.strategy.note(frozen)
            self._trials[frozen.number] = frozen
            self._waiting.discard(frozen.number)
        return Trial(self, frozen)

    def ask_candidates(self, n: int = 1) -> list[tuple[int, dict[str, Any]]]:
        """The strategy's next `n` candidates with their ask indices, without starting trials.

        For a driver that filters or prepares candidates before it evaluates them (one that
        skips candidates evaluated before, or compiles a batch in parallel): it starts the trial
        of a candidate it keeps with ``ask(fixed=params, ask_index=index)``; a candidate it
        drops stores nothing. Enqueued candidates are not among them (:meth:`ask` takes those).
        A finite strategy may return fewer than `n` near its end.

        Raises StrategyExhausted when a finite strategy has nothing left.

        Example:
            >>> import airda
            >>> from airda.space import Int
            >>> study = airda.create_study(space={"a": Int(0, 9)}, strategy="grid")
            >>> [(i, p["a"]) for i, p in study.ask_candidates(3)]
            [(0, 0), (1, 1), (2, 2)]
            >>> trial = study.ask(fixed={"a": 2}, ask_index=2)  # 0 and 1 are dropped
            >>> study.tell(trial, 0.5).system_attrs["ask_index"]
            2
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if not len(self.space):
            raise ValueError("ask_candidates needs a space (this study is define-by-run)")
        self._sync()  # the strategy hears of finished trials first
        with self._lock:
            first = self.strategy.n_asked
            asked = self.strategy.ask(n)
        # A strategy's i-th candidate of one call is its ask number n_asked + i.
        return [(first + i, dict(params)) for i, params in enumerate(asked)]

    def tell(
        self,
        trial: Trial | int,
        values: Any = None,
        *,
        state: TrialState | None = None,
        error: str | None = None,
        traceback: str | None = None,
        constraints: Any = None,
    ) -> FrozenTrial:
        """Finish a trial with its values (complete), or as pruned / failed.

        Values that are not finite numbers fail the trial instead, with the reason recorded.
        `constraints`: the trial's constraint values, each ``<= 0`` when satisfied (or set in
        the objective with :meth:`Trial.set_constraints`); stored with a complete result.
        """
        live = trial if isinstance(trial, Trial) else None
        names = None
        if constraints is not None:
            constraints = check_constraints(constraints)
            self._check_constraints(constraints)
        elif live is not None and live.constraints is not None:
            constraints = live.constraints
            if live._named:
                names = sorted(live._named)
                try:
                    self._check_constraints(constraints, names)
                except ValueError as exc:  # the objective's constraints: its trial fails
                    if state in (None, TrialState.COMPLETE):
                        state, error, constraints = TrialState.FAIL, f"ValueError: {exc}", None
        trial_id = live.trial_id if live is not None else self._trial_by_number(trial).trial_id
        params = self._final_params(live) if live is not None else None
        checked = None
        if state is None:
            state = TrialState.COMPLETE
        if state is TrialState.COMPLETE:
            try:
                checked = check_values(values, len(self.directions))
            except Exception as exc:  # whatever the objective returned, the trial ends
                state, error = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        elif state is TrialState.PRUNED and live is not None and live.intermediate:
            last = live.intermediate[max(live.intermediate)]
            checked = (last,) if len(self.directions) == 1 else None
        elif state not in (TrialState.PRUNED, TrialState.FAIL):
            raise ValueError(f"a trial ends complete, pruned or failed, not {state.value}")
        extra = None
        if constraints is not None and state is TrialState.COMPLETE:
            extra = {CONSTRAINTS_KEY: list(constraints)}
            if names is not None:
                extra[CONSTRAINT_NAMES_KEY] = names
        frozen = self._storage.finish_trial(
            trial_id,
            state,
            values=checked,
            params=params,
            error=error,
            traceback=traceback,
            system_attrs=extra,
        )
        with self._lock:
            self._trials[frozen.number] = frozen
        return frozen

    def get_trial(self, number: int) -> FrozenTrial:
        """The record of trial `number`, as stored now; ValueError if there is none."""
        return self._trial_by_number(number)

    def _trial_by_number(self, number: int) -> FrozenTrial:
        self._sync()
        if number not in self._trials:
            raise ValueError(f"study {self.name!r} has no trial {number}")
        return self._trials[number]

    def _final_params(self, live: Trial) -> dict[str, Any] | None:
        # Define-by-run: keep what the objective suggested (a branch not taken stays out).
        params = (
            {k: v for k, v in live.params.items() if k in live.accessed}
            if self._dynamic
            else live.params
        )
        return None if params == live._frozen.params else dict(params)

    def enqueue(self, params: Mapping[str, Any]) -> FrozenTrial:
        """Queue a known candidate: the next ask takes it before asking the strategy.

        In a define-by-run study (no space given) a queued parameter joins the study's space
        when the objective first suggests it; a queued value outside the bounds it is
        suggested with fails that trial with the reason (``SpaceError``)."""
        checked = self.space.validate(params) if len(self.space) else dict(params)
        frozen = self._storage.create_trial(
            self.study_id, checked, state=TrialState.WAITING, system_attrs={"enqueued": True}
        )
        assert frozen is not None
        return frozen

    # ---- define-by-run -------------------------------------------------------------------
    def _check_suggested(self, name: str, param: Param) -> None:
        """A parameter suggested again must be the one suggested before."""
        known = self.space.params.get(name)
        if known is not None and known.to_dict() != param.to_dict():
            raise SpaceError(
                f"parameter {name!r} was suggested as {param.to_dict()}, "
                f"earlier as {known.to_dict()}"
            )

    def _given_suggested(self, name: str, param: Param, value: Any) -> Any:
        """A define-by-run suggestion of a value the trial already holds (the strategy's, or an
        enqueued one): the parameter must be the one suggested before, and a parameter seen
        first here joins the study's space, its value checked against it."""
        if name in self.space:
            self._check_suggested(name, param)
            return value
        checked = param.check(name, value)
        self._add_param(name, param)
        return checked

    def _add_param(self, name: str, param: Param) -> None:
        with self._lock:
            if name in self.space:  # another thread added it meanwhile
                self._check_suggested(name, param)
                return
            self.space = Space(dict(self.space.params) | {name: param})
            self._storage.set_study_space(self.study_id, self.space.to_dict())

    def _suggest_new(self, trial: Trial, name: str, param: Param) -> Any:
        if name in self.space:
            self._check_suggested(name, param)
        else:
            if not self._dynamic:
                raise SpaceError(
                    f"parameter {name!r} is not in the study's space {self.space.names}"
                )
            self._add_param(name, param)
        rng = np.random.default_rng([self.strategy.seed, trial.number, len(trial.params)])
        return param.from_unit(float(rng.random()))

    # ---- pruning -------------------------------------------------------------------------
    def _should_prune(self, trial: Trial) -> bool:
        if self.scheduler is None:
            return False
        if not trial.intermediate:
            if getattr(self.scheduler, "requires_report", False):
                raise ValueError(
                    f"trial {trial.number}: {type(self.scheduler).__name__} decides on a budget; "
                    "call trial.report(step=<resource spent>, value) before trial.should_prune()"
                )
            return False
        self._sync()
        from airda.schedulers import TrialHistory

        with self._lock:
            history = TrialHistory(self.directions, tuple(self._trials.values()))
        return bool(self.scheduler.should_prune(history, trial))

    # ---- the loop ------------------------------------------------------------------------
    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        *,
        max_trials: int | None = None,
        timeout: float | None = None,
        n_workers: int = 1,
        executor: Any = None,
        catch: tuple[type[BaseException], ...] = (Exception,),
        callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
        show_progress: bool | None = None,
        **optuna_names: Any,
    ) -> None:
        """Run trials until `n_trials` more have run, the study holds `max_trials`, `timeout`
        seconds have passed, or the strategy is exhausted.

        `n_trials` counts the evaluations of this call (each driver its own; a reused result
        is not one). `max_trials` is a budget of the whole study: every trial it holds counts,
        whoever ran it (complete, pruned, failed, running, reused), on every machine, and the
        storage refuses the trial that would exceed it, so that any number of drivers sharing
        the study (``airda worker`` on many machines) stop at exactly `max_trials`. Enqueued
        trials are run whatever the budget: they are in the study already.

        An exception of a type in `catch` fails its trial (recorded with its traceback) and
        the study goes on; others propagate after the trial is recorded as failed. Ctrl-C
        records the running trial as failed and raises KeyboardInterrupt; every finished
        trial is already stored.

        Optuna's spellings ``show_progress_bar=`` and ``n_jobs=`` are accepted for
        `show_progress` and `n_workers` (``n_jobs`` runs threads, as Optuna's does).
        """
        if optuna_names:
            given = {"show_progress": show_progress, "n_workers": n_workers}
            given["n_workers"] = None if n_workers == 1 else n_workers
            folded = _optuna_aliases(
                given,
                optuna_names,
                "optimize",
                {"show_progress_bar": "show_progress", "n_jobs": "n_workers"},
                _OPTIMIZE_ARGS,
            )
            show_progress = folded["show_progress"]
            n_workers = 1 if folded["n_workers"] is None else folded["n_workers"]
            if "n_jobs" in optuna_names and executor is None:
                executor = "thread"  # Optuna's n_jobs are threads
        if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 0):
            raise ValueError(f"n_trials must be a non-negative int, got {n_trials!r}")
        if max_trials is not None:
            _check_count("max_trials", max_trials)
        if n_trials is None and timeout is None and max_trials is None:
            raise ValueError("give n_trials or timeout (or max_trials), or the study never ends")
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        from airda.study._executor import get_executor

        runner = get_executor(executor, n_workers)
        self._stop.clear()
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        # Passed only when set: an executor written before max_trials existed still runs.
        extra = {} if max_trials is None else {"max_trials": max_trials}
        runner.run(
            self,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=tuple(catch),
            callbacks=tuple(callbacks),
            show_progress=show_progress,
            **extra,
        )

    def _check_constraints(
        self, values: tuple[float, ...], names: Sequence[str] | None = None
    ) -> None:
        """Constraint values a trial may give: the strategy must use them and their count
        (and names, where named) must match the study's earlier trials."""
        if not getattr(self.strategy, "supports_constraints", False):
            raise TypeError(
                f"strategy {self.strategy.name!r} does not take constraints into account: use "
                "'auto' (the default), 'tpe', 'gp', 'cmaes', 'nsga2', 'rea', 'local' or a "
                "non-adaptive one ('random', 'halton', 'grid')"
            )
        with self._lock:
            for t in self._trials.values():
                c = t.system_attrs.get(CONSTRAINTS_KEY)
                if c is not None and len(c) != len(values):
                    raise ValueError(
                        f"{len(values)} constraint value(s) given; trial {t.number} of this "
                        f"study gave {len(c)}"
                    )
                if c is not None:
                    theirs = t.system_attrs.get(CONSTRAINT_NAMES_KEY)
                    if names is not None and theirs is not None and list(theirs) != list(names):
                        raise ValueError(
                            f"constraints named {list(names)}; trial {t.number} of this study "
                            f"named {list(theirs)}"
                        )
                    return

    def __getattr__(self, name: str) -> Any:
        # Only reached for a missing attribute: Optuna's names get airda's in the message.
        ours = _OPTUNA_STUDY_NAMES.get(name)
        hint = f"; airda calls it {ours}" if ours else ""
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}{hint}")

    def stop(self) -> None:
        """End the running :meth:`optimize` call once the trials running now finish: no trial
        is asked after this. Call it from a callback or the objective (``trial.study.stop()``),
        e.g. when a target value is reached; with worker processes it stops every worker of
        this call.

        Example:
            >>> import airda
            >>> from airda.space import Float
            >>> study = airda.create_study(space={"x": Float(0.0, 1.0)}, seed=0)
            >>> def enough(study, trial):
            ...     if len(study.trials) == 5:
            ...         study.stop()
            >>> study.optimize(lambda t: t["x"], n_trials=100, callbacks=[enough])
            >>> len(study.trials)
            5
        """
        self._stop.set()

    def _finite_size(self) -> int | None:
        if (
            self._dynamic
            or not self.cache
            or not len(self.space)
            or getattr(self.strategy, "proposes_repeats", False)
        ):
            return None
        bound = math.prod(p.cardinality() for p in self.space.params.values())
        # Counting a conditional space walks it; past a million candidates nobody exhausts it.
        return int(self.space.size()) if bound <= 1e6 else None

    def _exhausted(self) -> bool:
        """Every candidate of a finite space has a finished trial."""
        if self._space_size is None:
            return False
        self._sync()
        return len(self._finished_keys) >= self._space_size

    def _run_one(
        self,
        objective: Objective,
        catch: tuple[type[BaseException], ...],
        max_trials: int | None = None,
    ) -> FrozenTrial:
        if self._exhausted() and not self._waiting:
            raise StrategyExhausted(
                f"every candidate of the finite space ({self._space_size}) has been evaluated"
            )
        trial = self.ask(max_trials=max_trials)
        reused = self._reuse_result(trial)
        if reused is not None:
            return reused
        return self._evaluate(trial, objective, catch)

    def _reuse_result(self, trial: Any) -> FrozenTrial | None:
        """Finish `trial` (asked, running) with the result of the same candidate evaluated
        before, when the study reuses results; None when there is none to reuse."""
        if not self.cache or self._dynamic or getattr(self.strategy, "proposes_repeats", 0):
            return None
        with self._lock:
            for t in self._unkeyed:
                self._complete_by_key.setdefault(candidate_key(t.params), t)
            self._unkeyed.clear()
            cached = self._complete_by_key.get(candidate_key(trial.params))
        if cached is None or cached.number == trial.number:
            return None
        # The strategy proposed a candidate already evaluated: reuse its result.
        frozen = self._storage.finish_trial(
            trial.trial_id,
            TrialState.COMPLETE,
            values=cached.values,
            system_attrs={"cached_from": cached.number}
            | (
                {CONSTRAINTS_KEY: cached.system_attrs[CONSTRAINTS_KEY]}
                if CONSTRAINTS_KEY in cached.system_attrs
                else {}
            ),
        )
        with self._lock:
            self._trials[frozen.number] = frozen
        return frozen

    def _evaluate(
        self, trial: Trial, objective: Objective, catch: tuple[type[BaseException], ...]
    ) -> FrozenTrial:
        """Run `objective` on a started trial and record how it ended: pruned, failed with
        its traceback (re-raised unless its type is in `catch`), or told its values. The one
        place every executor (in this process, a worker process, a Ray actor) ends a trial."""
        try:
            result = objective(trial)
        except TrialPruned:
            return self.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            self.tell(
                trial,
                state=TrialState.FAIL,
                error="KeyboardInterrupt: interrupted",
                traceback=tb_module.format_exc(),
            )
            raise
        except catch as exc:
            frozen = self.tell(
                trial,
                state=TrialState.FAIL,
                error=f"{type(exc).__name__}: {exc}",
                traceback=tb_module.format_exc(),
            )
            log.warning("trial %d failed: %s", frozen.number, frozen.error)
            return frozen
        except BaseException as exc:
            self.tell(
                trial,
                state=TrialState.FAIL,
                error=f"{type(exc).__name__}: {exc}",
                traceback=tb_module.format_exc(),
            )
            raise
        frozen = self.tell(trial, result)
        if frozen.state is TrialState.FAIL:
            log.warning("trial %d failed: %s", frozen.number, frozen.error)
        return frozen

    # ---- maintenance ---------------------------------------------------------------------
    def fail_stale_trials(self, *, grace: float = 60.0, requeue: bool = False) -> list[int]:
        """Mark running trials whose worker died as failed; return their numbers."""
        failed = self._storage.fail_stale_trials(self.study_id, grace=grace, requeue=requeue)
        if failed:
            log.warning("study %r: trials %s of dead workers marked failed", self.name, failed)
        return failed

    # ---- export --------------------------------------------------------------------------
    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        trials = self.trials
        n_constraints = max((len(t.constraints or ()) for t in trials), default=0)
        for t in trials:
            row: dict[str, Any] = {"number": t.number, "state": t.state.value}
            if len(self.directions) == 1:
                row["value"] = t.values[0] if t.values else None
            else:
                for i in range(len(self.directions)):
                    row[f"values_{i}"] = t.values[i] if t.values else None
            if n_constraints:  # a constrained study: each value (<= 0 satisfied), feasibility
                c = t.constraints
                for i in range(n_constraints):
                    row[f"constraints_{i}"] = c[i] if c is not None and i < len(c) else None
                row["feasible"] = t.feasible if t.state is TrialState.COMPLETE else None
            for k, v in t.params.items():
                row[f"params_{k}"] = v
            for k, v in t.user_attrs.items():
                row[f"user_attrs_{k}"] = v
            row["datetime_start"] = t.datetime_start
            row["datetime_complete"] = t.datetime_complete
            row["duration"] = t.duration
            row["worker"] = t.worker
            row["error"] = t.error
            rows.append(row)
        return rows

    def to_dataframe(self) -> Any:
        """One row per trial (pandas DataFrame): number, state, value(s), params_*, times."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame(self._rows())

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write every trial to `path`: .csv (one row per trial) or .json (full records)."""
        path = Path(path)
        if path.suffix == ".json":
            doc = {
                "study": self.name,
                "directions": list(self.directions),
                "space": self.space.to_dict(),
                "strategy": self.strategy.config(),
                "trials": [frozen_to_mapping(t) for t in self.trials],
            }
            path.write_text(json.dumps(doc, indent=1))
        elif path.suffix == ".csv":
            rows = self._rows()
            fields: list[str] = []
            for r in rows:
                fields += [k for k in r if k not in fields]
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        else:
            raise ValueError(f"export writes .csv or .json files, got {path.name!r}")
        return path

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self._storage.url!r})"


def create_study(
    name: str | None = None,
    *,
    storage: Storage | str | os.PathLike[str] | None = None,
    space: Space | Mapping[str, Any] | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    strategy: Strategy | str | None = None,
    seed: int | None = None,
    scheduler: Any = None,
    load_if_exists: bool = False,
    user_attrs: Mapping[str, Any] | None = None,
    cache: bool = True,
    stream: int = 0,
    **optuna_names: Any,
) -> Study:
    """Create a study (or load it, with `load_if_exists`).

    Args:
        name: unique within the storage; a random one when omitted (``study_name=``, Optuna's
            spelling, is accepted too).
        storage: None (in memory), a file path or ``sqlite:///path`` URL, or a Storage.
        space: a :class:`~airda.space.Space` or its dict form; None for define-by-run
            (``trial.suggest_*`` in the objective).
        direction / directions: ``"minimize"`` (default) or ``"maximize"``, one per objective.
        strategy: a name (``"auto"``, ``"tpe"``, ``"gp"``, ``"cmaes"``, ``"random"``, ...: see
            :mod:`airda.strategies`) or an instance; default ``"auto"`` (GP BO, then CMA-ES or
            TPE; TPE for conditional spaces, MOTPE for several objectives).
        seed: the strategy's seed, for reproducible studies.
        scheduler: decides early stops (see :mod:`airda.schedulers`).
        cache: reuse the result of a candidate evaluated before instead of running it again.
        stream: this driver's random stream of the strategy. Drivers that share a study from
            separate processes (``airda worker`` on several machines) each take a distinct
            one, so that they never propose the same candidates; 0 for a single driver.
    """
    name = _optuna_aliases(
        {"name": name}, optuna_names, "create_study", {"study_name": "name"}, _CREATE_ARGS
    )["name"]
    _check_count("stream", stream)
    store = get_storage(storage)
    dirs = _directions(direction, directions)
    space_obj = _as_space(space)
    strat = get_strategy(strategy, seed=seed) if not isinstance(strategy, Strategy) else strategy
    if len(dirs) > 1 and not strat.supports_multi_objective:
        raise ValueError(f"strategy {strat.name!r} supports one objective; got {len(dirs)}")
    if name is None:
        name = f"study-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    try:
        record = store.create_study(
            name,
            dirs,
            space_obj.to_dict() if len(space_obj) else None,
            strat.config(),
            dict(user_attrs or {}),
        )
    except DuplicatedStudyError:
        if not load_if_exists:
            raise
        _check_same_settings(
            store.get_study(name),
            dirs if direction is not None or directions is not None else None,
            space_obj if space is not None and len(space_obj) else None,
        )
        return load_study(
            name,
            storage=store,
            strategy=strategy,
            seed=seed,
            scheduler=scheduler,
            cache=cache,
            stream=stream,
        )
    return Study(store, record, strat, scheduler, cache=cache, stream=stream)


def _check_same_settings(
    record: StudyRecord, directions: tuple[str, ...] | None, space: Space | None
) -> None:
    """`load_if_exists` loads the study it names only if what the caller gave matches it:
    a stored study searched with another space or direction would silently give answers to
    a question the caller did not ask."""
    where = f"study {record.name!r} exists with"
    if directions is not None and directions != record.directions:
        if len(directions) != len(record.directions):
            raise ValueError(
                f"{where} {len(record.directions)} objective(s) {list(record.directions)}; "
                f"this call gives {len(directions)}: {list(directions)}"
            )
        raise ValueError(
            f"{where} directions {list(record.directions)}; this call gives {list(directions)}"
        )
    if space is None:
        return
    stored = record.space or {}
    given = space.to_dict()
    if stored == given:
        return
    diffs = []
    for key in sorted(set(stored) | set(given), key=lambda k: (k not in given, k)):
        if key not in stored:
            diffs.append(f"{key!r} is new (not in the stored space)")
        elif key not in given:
            diffs.append(f"{key!r} is missing (the stored space has {stored[key]})")
        elif stored[key] != given[key]:
            diffs.append(f"{key!r} is {given[key]}, stored as {stored[key]}")
    raise ValueError(
        f"{where} another space: {'; '.join(diffs)}. Use another study name, or load it "
        "with load_study (the stored space is used)"
    )


def load_study(
    name: str | None = None,
    *,
    storage: Storage | str | os.PathLike[str],
    strategy: Strategy | str | None = None,
    seed: int | None = None,
    scheduler: Any = None,
    cache: bool = True,
    stream: int = 0,
    **optuna_names: Any,
) -> Study:
    """Load a study by name; the strategy is rebuilt from the stored config (or the one given)
    and replays the history, so the search continues where it stopped. `stream`: as for
    :func:`create_study`; ``study_name=`` is accepted for `name`."""
    name = _optuna_aliases(
        {"name": name}, optuna_names, "load_study", {"study_name": "name"}, _LOAD_ARGS
    )["name"]
    if name is None:
        raise TypeError("load_study() needs the study's name")
    _check_count("stream", stream)
    store = get_storage(storage)
    record = store.get_study(name)
    if strategy is None:
        strat = get_strategy(record.strategy or "random", seed=seed)
    else:
        strat = get_strategy(strategy, seed=seed)
    study = Study(store, record, strat, scheduler, cache=cache, stream=stream)
    if not getattr(store, "read_only", False):
        # Running trials of workers that died (a killed process, a lost machine) are failed
        # here, so the history the strategy replays holds no trial that never ends.
        study.fail_stale_trials()
    study._sync()
    return study


_OPTIMIZE_ARGS = tuple(inspect.signature(Study.optimize).parameters)[1:-1]
_CREATE_ARGS = tuple(inspect.signature(create_study).parameters)[:-1]
_LOAD_ARGS = tuple(inspect.signature(load_study).parameters)[:-1]


def copy_study(
    name: str,
    *,
    from_storage: Storage | str | os.PathLike[str],
    to_storage: Storage | str | os.PathLike[str],
    to_name: str | None = None,
) -> Study:
    """Copy a study, its settings and every trial, into another storage (a laptop's SQLite
    file into the PostgreSQL server a cluster shares, say), and return the copy, loaded.

    Trials keep their numbers, states, values, parameters, reported values, attributes,
    errors, times and workers; they are written in one transaction. A trial still running in
    the source is copied as failed (its result is not known); waiting trials stay waiting.

    Raises DuplicatedStudyError if `to_storage` has a study of that name already.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.storage import InMemoryStorage
        >>> laptop = airda.create_study("sweep", space={"x": Float(0, 1)}, seed=0)
        >>> laptop.optimize(lambda t: t["x"], n_trials=5)
        >>> copy = copy_study("sweep", from_storage=laptop.storage, to_storage=InMemoryStorage())
        >>> [t.number for t in copy.trials], copy.best_value == laptop.best_value
        ([0, 1, 2, 3, 4], True)
    """
    import dataclasses

    source = get_storage(from_storage)
    target = get_storage(to_storage)
    record = source.get_study(name)
    trials, _ = source.get_trials(record.study_id)
    now = time.time()
    trials = [
        t
        if t.state is not TrialState.RUNNING
        else dataclasses.replace(
            t,
            state=TrialState.FAIL,
            error="NotFinished: the trial was running when its study was copied",
            datetime_complete=now,
        )
        for t in sorted(trials, key=lambda t: t.number)
    ]
    copy = target.create_study(
        to_name or record.name,
        record.directions,
        record.space,
        record.strategy,
        dict(record.user_attrs),
    )
    try:
        target.import_trials(copy.study_id, trials)
    except BaseException:
        # No half-copied study is left behind.
        target.delete_study(copy.name)
        raise
    return load_study(copy.name, storage=target)

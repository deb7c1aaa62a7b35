"""A study-wide budget, ``optimize(max_trials=M)``: every driver, in any executor, on any
storage, stops when the study holds exactly M trials."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator

import pytest

import airda
from airda.space import Float
from airda.storage import InMemoryStorage, Storage
from airda.storage.base import MaxTrialsReached
from airda.testing.pytest_storages import STORAGE_FACTORIES
from airda.trial import TrialState
from tests import objectives

SPACE = {"x": Float(-3.0, 3.0)}


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
def storage(request, tmp_path) -> Iterator[Storage]:
    store = STORAGE_FACTORIES[request.param](tmp_path)
    yield store
    store.close()
    if type(store).__name__ == "PostgresStorage":
        from airda.testing._postgres import drop_schema

        drop_schema(store)


def _numbers(study) -> list[int]:
    return [t.number for t in study.trials]


def test_serial_stops_at_the_study_total(storage):
    study = airda.create_study("s", storage=storage, space=SPACE, seed=0)
    study.optimize(objectives.quadratic, max_trials=7)
    assert _numbers(study) == list(range(7))
    study.optimize(objectives.quadratic, max_trials=7)  # spent: nothing more
    assert len(study.trials) == 7
    # n_trials and max_trials together: whichever ends first.
    study.optimize(objectives.quadratic, n_trials=2, max_trials=20)
    assert len(study.trials) == 9
    study.optimize(objectives.quadratic, n_trials=50, max_trials=12)
    assert _numbers(study) == list(range(12))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_failed_and_pruned_trials_count():
    def objective(trial):
        if trial.number % 3 == 0:
            raise RuntimeError("boom")
        if trial.number % 3 == 1:
            raise airda.TrialPruned()
        return trial["x"]

    study = airda.create_study(space=SPACE, seed=0)
    study.optimize(objective, max_trials=9)
    states = [t.state for t in study.trials]
    assert len(states) == 9
    assert states.count(TrialState.FAIL) == 3
    assert states.count(TrialState.PRUNED) == 3


def test_threads_stop_at_exactly_the_total(storage):
    study = airda.create_study("s", storage=storage, space=SPACE, seed=0)
    study.optimize(objectives.quadratic, max_trials=25, n_workers=4, executor="thread")
    assert _numbers(study) == list(range(25))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_worker_processes_stop_at_exactly_the_total(tmp_path):
    # random search: each worker's stream is its own (the default's GP may give two workers
    # asking at once the same boundary point)
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=0, strategy="random")
    study.optimize(objectives.quadratic, n_trials=3)
    study.optimize(objectives.quadratic, max_trials=30, n_workers=3)
    trials = study.trials
    assert [t.number for t in trials] == list(range(30))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.params["x"] for t in trials}) == 30  # distinct streams, no repeats


def _driver(storage: Storage, stream: int, max_trials: int) -> None:
    study = airda.load_study("shared", storage=storage, stream=stream)
    study.optimize(objectives.quadratic, max_trials=max_trials)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_independent_drivers_share_one_total(tmp_path, backend):
    """Separate processes, each its own driver (as on separate machines): the total is exact
    and the numbers consecutive, and distinct streams propose distinct candidates. Random
    search: the default's GP is deterministic given the history, so two drivers asking at the
    same moment (neither sees the other's running trial yet) may both pick the same boundary
    point; what differs by stream is its random part."""
    store = STORAGE_FACTORIES[backend](tmp_path)
    try:
        airda.create_study("shared", storage=store, space=SPACE, seed=0, strategy="random")
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_driver, args=(store, 1 + i, 40)) for i in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [p.exitcode for p in procs] == [0, 0, 0]
        trials = airda.load_study("shared", storage=store).trials
        assert [t.number for t in trials] == list(range(40))
        assert all(t.state is TrialState.COMPLETE for t in trials)
        assert len({t.params["x"] for t in trials}) == 40
    finally:
        store.close()
        if backend == "postgres":
            from airda.testing._postgres import drop_schema

            drop_schema(store)


def test_enqueued_trials_run_beyond_the_total():
    study = airda.create_study(space=SPACE, seed=0)
    study.optimize(objectives.quadratic, max_trials=3)
    study.enqueue({"x": 1.0})
    study.enqueue({"x": 2.0})
    study.optimize(objectives.quadratic, max_trials=3)
    trials = study.trials
    assert len(trials) == 5
    assert [t.params["x"] for t in trials[3:]] == [1.0, 2.0]
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_ask_refuses_without_drawing_a_candidate():
    study = airda.create_study(space=SPACE, seed=0)
    study.tell(study.ask(max_trials=2), 1.0)
    study.tell(study.ask(max_trials=2), 2.0)
    asked = study.strategy.n_asked
    with pytest.raises(MaxTrialsReached, match="max_trials=2"):
        study.ask(max_trials=2)
    assert study.strategy.n_asked == asked  # no candidate drawn and dropped
    assert len(study.trials) == 2


def test_storage_refuses_when_another_driver_took_the_last_trial():
    """The local view is stale (another driver created a trial since): the storage decides."""
    store = InMemoryStorage()
    a = airda.create_study("s", storage=store, space=SPACE, seed=0)
    b = airda.load_study("s", storage=store, stream=1)
    a.tell(a.ask(), 0.0)
    b_trial = b.ask(max_trials=2)
    with pytest.raises(MaxTrialsReached):
        a._storage.create_trial(a.study_id, {"x": 0.0}, max_trials=2)
    b.tell(b_trial, 1.0)
    assert len(a.trials) == 2


def test_bad_values_are_refused():
    study = airda.create_study(space=SPACE)
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="max_trials"):
            study.optimize(objectives.quadratic, max_trials=bad)
    with pytest.raises(ValueError, match=r"n_trials or timeout \(or max_trials\)"):
        study.optimize(objectives.quadratic)
    with pytest.raises(ValueError, match="stream"):
        airda.create_study(space=SPACE, stream=-1)


def test_streams_of_a_loaded_study_differ(tmp_path):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE, seed=3)
    one = airda.load_study("s", storage=path, stream=1)
    two = airda.load_study("s", storage=path, stream=2)
    same = airda.load_study("s", storage=path, stream=1)
    x1, x2, x1b = (s.ask()["x"] for s in (one, two, same))
    assert x1 != x2
    # The same stream, asked again after the first trial exists, continues after it.
    assert x1b != x1

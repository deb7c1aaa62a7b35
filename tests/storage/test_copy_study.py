"""copy_study: a laptop's study, with its trials, into another storage (SQLite to SQLite, and
to PostgreSQL where a throwaway server can be started); the copy continues the search."""

from __future__ import annotations

import pytest

import airda
from airda.space import Float
from airda.storage.base import DuplicatedStudyError
from airda.study._study import copy_study
from airda.testing.pytest_storages import STORAGE_FACTORIES
from airda.trial import TrialState

SPACE = {"x": Float(-3.0, 3.0)}


def _laptop(path) -> airda.Study:
    study = airda.create_study("sweep", storage=path, space=SPACE, seed=0, user_attrs={"a": 1})

    def objective(trial):
        if trial.number == 3:
            raise RuntimeError("boom")
        if trial.number == 4:
            trial.report(1, 5.0)
            raise airda.TrialPruned()
        return (trial["x"] - 1.0) ** 2

    study.optimize(objective, n_trials=8)
    study.enqueue({"x": 0.5})
    study.enqueue({"x": 0.25})
    study.ask()  # takes x=0.5 and leaves it running, as a laptop shut mid-trial would
    return study


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "memory"])
def test_copy_keeps_everything_and_continues(tmp_path, backend):
    laptop = _laptop(tmp_path / "laptop.db")
    target = STORAGE_FACTORIES[backend](tmp_path / "target")
    try:
        copy = copy_study("sweep", from_storage=laptop.storage, to_storage=target)
        src, dst = laptop.trials, copy.trials
        assert [t.number for t in dst] == [t.number for t in src] == list(range(10))
        for a, b in zip(src, dst, strict=True):
            if a.state is TrialState.RUNNING:
                assert b.state is TrialState.FAIL
                assert "running when its study was copied" in b.error
                continue
            assert (b.state, b.values, b.params, b.intermediate, b.error, b.worker) == (
                a.state,
                a.values,
                a.params,
                a.intermediate,
                a.error,
                a.worker,
            )
            assert b.system_attrs == a.system_attrs
            assert b.datetime_start == pytest.approx(a.datetime_start) or a.datetime_start is None
        assert copy.user_attrs == {"a": 1}
        assert copy.best_value == laptop.best_value
        assert copy.directions == laptop.directions
        assert copy.space.to_dict() == laptop.space.to_dict()
        with pytest.raises(DuplicatedStudyError):
            copy_study("sweep", from_storage=laptop.storage, to_storage=target)
        # The copy goes on: the enqueued trial first, then new ones, to a study-wide total.
        copy.optimize(lambda t: (t["x"] - 1.0) ** 2, max_trials=14)
        trials = copy.trials
        assert [t.number for t in trials] == list(range(14))
        assert trials[9].state is TrialState.COMPLETE  # the waiting one, claimed
        assert trials[9].params == {"x": 0.25}
        assert trials[8].params == {"x": 0.5}
        assert len(laptop.trials) == 10  # the source is untouched
    finally:
        target.close()
        if backend == "postgres":
            from airda.testing._postgres import drop_schema

            drop_schema(target)

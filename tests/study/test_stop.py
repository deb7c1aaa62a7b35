"""``Study.stop()`` from a callback or the objective ends optimize once the running trials
finish (Optuna's ``study.stop()``)."""

from __future__ import annotations

import pytest

import airda
from airda.space import Float
from airda.trial import TrialState
from tests import objectives

SPACE = {"x": Float(-2.0, 2.0)}


def _stop_at(n):
    def callback(study, trial):
        if len(study.trials) >= n:
            study.stop()

    return callback


@pytest.mark.parametrize("n_workers", [1, 3])
def test_a_callback_stops_optimize(n_workers):
    study = airda.create_study(space=SPACE, seed=0, strategy="random")
    study.optimize(
        objectives.quadratic,
        n_trials=200,
        n_workers=n_workers,
        executor="thread" if n_workers > 1 else None,
        callbacks=[_stop_at(6)],
    )
    # Each thread finishes the trial it is running; none asks another.
    assert 6 <= len(study.trials) <= 6 + n_workers - 1
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_a_stopped_study_runs_again_when_optimize_is_called_again():
    study = airda.create_study(space=SPACE, seed=0, strategy="random")
    study.optimize(objectives.quadratic, n_trials=50, callbacks=[_stop_at(3)])
    assert len(study.trials) == 3
    study.optimize(objectives.quadratic, n_trials=4)
    assert len(study.trials) == 7


def test_the_objective_stops_every_worker_process(tmp_path):
    study = airda.create_study(space=SPACE, storage=tmp_path / "s.db", seed=0, strategy="random")
    study.optimize(objectives.stop_at_trial_5, n_trials=200, n_workers=2, executor="process")
    trials = study.trials
    # Trial 5's worker stops both; the other worker ends the trial it has (a few at most).
    assert 6 <= len(trials) <= 9, len(trials)
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_a_callback_stops_worker_processes(tmp_path):
    study = airda.create_study(space=SPACE, storage=tmp_path / "s.db", seed=0, strategy="random")
    study.optimize(
        objectives.slow_quadratic,
        n_trials=400,
        n_workers=2,
        executor="process",
        callbacks=[_stop_at(4)],
    )
    # The driver polls every 0.2 s; trials take 0.05 s: stopped long before 400.
    assert 4 <= len(study.trials) < 60, len(study.trials)

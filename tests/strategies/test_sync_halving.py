"""Synchronous successive halving and Hyperband over checkpointed segments: the schedule of
Li et al. (2018), exact promotions, continuation from checkpoints, failures, restarts."""

from __future__ import annotations

import pytest

import airda
from airda.hpo import Session
from airda.space import Categorical, Float
from airda.strategies import SyncHyperband, SyncSuccessiveHalving, get_strategy
from airda.trial import TrialState

SPACE = {"lr": Float(0.01, 0.5, log=True), "opt": Categorical(("sgd", "adam"))}


def make_train(root, fail_numbers=()):
    """A "training" loop: loss *= (1 - lr) per epoch, "adam" a bit faster; the state carries
    the epochs it has seen, so a continuation that skipped or repeated epochs shows."""

    def train(trial):
        s = Session(trial, checkpoint_dir=root)
        state = s.load_checkpoint() or {"loss": 1.0, "epochs": []}
        if trial.number in fail_numbers:
            raise RuntimeError("diverged")
        rate = trial["lr"] * (1.2 if trial["opt"] == "adam" else 1.0)
        for step in s.steps:
            state["loss"] *= 1.0 - rate
            state["epochs"].append(step)
            s.report(step, state["loss"])
        trial.set_user_attr("epochs", list(state["epochs"]))
        s.save_checkpoint(state)
        return state["loss"]

    return train


def test_schedule_is_the_hyperband_table():
    """Li et al. (2018), Table 1: R = 81, eta = 3."""
    hb = SyncHyperband(min_resource=1, max_resource=81, reduction_factor=3)
    assert hb.ladder == [1, 3, 9, 27, 81]
    widths = {}
    for (b, _i), (_, width, budget) in hb._rungs.items():
        widths.setdefault(b, []).append((width, budget))
    assert widths == {
        0: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        1: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        3: [(8, 27), (2, 81)],
        4: [(5, 81)],
    }
    assert hb.n_trials_per_cycle == sum(w for rows in widths.values() for w, _ in rows)


def test_promotions_are_the_top_of_the_complete_rung(tmp_path):
    sh = SyncSuccessiveHalving(min_resource=1, max_resource=27, reduction_factor=3, seed=3)
    study = airda.create_study(space=SPACE, strategy=sh)
    study.optimize(make_train(tmp_path), n_trials=sh.n_trials_per_cycle)
    trials = study.trials
    assert [sh.budget_of(t) for t in trials] == [1] * 27 + [3] * 9 + [9] * 3 + [27]
    start = 0
    for width, next_width in ((27, 9), (9, 3), (3, 1)):
        rung = trials[start : start + width]
        promoted = trials[start + width : start + width + next_width]
        ranked = sorted(rung, key=lambda t: (t.value, t.number))
        assert [sh.parent_of(t) for t in promoted] == [t.number for t in ranked[:next_width]]
        assert [t.params for t in promoted] == [t.params for t in ranked[:next_width]]
        start += width
    # the winner trained epochs 1..27 exactly once, across four segments
    top = trials[-1]
    assert top.user_attrs["epochs"] == list(range(1, 28))
    assert sorted(top.intermediate) == list(range(10, 28))
    assert sh.best_trial(study).number == top.number
    assert all("cached_from" not in t.system_attrs for t in trials)


def test_total_epochs_and_next_cycle(tmp_path):
    hb = SyncHyperband(min_resource=1, max_resource=9, reduction_factor=3, seed=0)
    study = airda.create_study(space=SPACE, strategy=hb)
    n = hb.n_trials_per_cycle
    study.optimize(make_train(tmp_path), n_trials=n + 3)
    trained = [len(t.intermediate) for t in study.trials]
    assert trained == [hb.budget_of(t) - hb.start_of(t) for t in study.trials]
    assert sum(trained[:n]) == 9 * 1 + 3 * 2 + 1 * 6 + 5 * 3 + 1 * 6 + 3 * 9
    # the next cycle starts new configurations at the smallest budget
    assert [hb.rung_of(t) for t in study.trials[n:]] == [(2, 0)] * 3
    assert all(hb.parent_of(t) is None for t in study.trials[n:])


def test_failed_segments_rank_last_and_free_places_start_fresh(tmp_path):
    sh = SyncSuccessiveHalving(
        min_resource=1, max_resource=9, reduction_factor=3, n_configs=3, seed=1
    )
    assert sh.n_trials_per_cycle == 3 + 1 + 1
    study = airda.create_study(space=SPACE, strategy=sh)
    # every first-rung segment but one fails: the survivor is promoted
    study.optimize(make_train(tmp_path, fail_numbers=(0, 2)), n_trials=3)
    study.optimize(make_train(tmp_path), n_trials=2)
    t = study.trials
    assert [x.state for x in t[:3]] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.FAIL]
    assert sh.parent_of(t[3]) == 1
    assert t[3].params == t[1].params
    assert sh.parent_of(t[4]) == 3
    # no first-rung segment completes: the second rung trains a new configuration from scratch
    sh2 = SyncSuccessiveHalving(min_resource=1, max_resource=9, n_configs=3, seed=1)
    study2 = airda.create_study(space=SPACE, strategy=sh2)
    study2.optimize(make_train(tmp_path / "b", fail_numbers=(0, 1, 2)), n_trials=4)
    fresh = study2.trials[3]
    assert sh2.parent_of(fresh) is None
    assert sh2.start_of(fresh) == 0
    assert fresh.user_attrs["epochs"] == [1, 2, 3]


def test_missing_checkpoint_fails_the_segment_and_the_study_goes_on(tmp_path):
    sh = SyncSuccessiveHalving(min_resource=1, max_resource=3, n_configs=3, seed=2)
    study = airda.create_study(space=SPACE, strategy=sh)

    def no_save(trial):
        s = Session(trial, checkpoint_dir=tmp_path)
        s.load_checkpoint()
        for step in s.steps:
            s.report(step, trial["lr"])
        return trial["lr"]

    study.optimize(no_save, n_trials=5)
    assert [t.state for t in study.trials[:3]] == [TrialState.COMPLETE] * 3
    assert study.trials[3].state is TrialState.FAIL
    assert "saved none" in study.trials[3].error
    assert study.trials[4].state is TrialState.COMPLETE  # the next cycle


def test_decisions_survive_a_restart(tmp_path):
    def run(db, splits):
        for i, n in enumerate(splits):
            hb = SyncHyperband(min_resource=1, max_resource=9, reduction_factor=3, seed=4)
            if i == 0:
                study = airda.create_study("h", storage=db, space=SPACE, strategy=hb)
            else:
                study = airda.load_study("h", storage=db, strategy=hb)
            study.optimize(make_train(tmp_path / db.stem), n_trials=n)
            study.storage.close()
        return [
            (t.params, t.system_attrs.get("hyperband_parent"), t.intermediate, t.values)
            for t in study.trials
        ]

    # splits inside a rung, at a rung boundary, and inside the next bracket
    assert run(tmp_path / "a.db", [25]) == run(tmp_path / "b.db", [5, 4, 6, 10])


def test_options_names_and_errors():
    assert isinstance(get_strategy("sync_hyperband"), SyncHyperband)
    sh = get_strategy("sync_halving", min_resource=2, max_resource=8, reduction_factor=2)
    assert isinstance(sh, SyncSuccessiveHalving)
    assert sh.ladder == [2, 4, 8]
    assert sh.n_trials_per_cycle == 4 + 2 + 1
    assert sh.options() == {
        "min_resource": 2,
        "max_resource": 8,
        "reduction_factor": 2,
        "n_configs": None,
    }
    with pytest.raises(ValueError, match="reduction_factor"):
        SyncHyperband(reduction_factor=1)
    with pytest.raises(ValueError, match="max_resource"):
        SyncHyperband(min_resource=10, max_resource=5)
    with pytest.raises(ValueError, match="n_configs"):
        SyncSuccessiveHalving(n_configs=0)
    with pytest.raises(ValueError, match="one objective"):
        airda.create_study(directions=["minimize"] * 2, strategy="sync_hyperband")
    hb = SyncHyperband(max_resource=9)
    with pytest.raises(ValueError, match="no trial has completed"):
        hb.best_trial(airda.create_study(space=SPACE, strategy=hb))

"""Population-based training: exploit / explore with real checkpoint files, failed restores,
restart survival; the Session integration with a pruning scheduler."""

from __future__ import annotations

import math

import pytest

import airda
from airda.hpo import Session
from airda.schedulers import ASHA
from airda.space import Categorical, Float
from airda.strategies import PopulationBasedTraining
from airda.trial import TrialState

SPACE = {"lr": Float(0.01, 1.0, log=True), "opt": Categorical(("sgd", "adam"))}


def make_train(root):
    def train(trial):
        s = Session(trial, checkpoint_dir=root)
        state = s.load_checkpoint()
        if state is None:
            state = {"w": 0.0, "saved_by": None}
        trial.set_user_attr("loaded_from", state["saved_by"])
        trial.set_user_attr("w_start", state["w"])
        for step in s.steps:
            state["w"] += trial["lr"]
            s.report(step, -state["w"])
        state["saved_by"] = trial.number
        s.save_checkpoint(state)
        return -state["w"]

    return train


def test_exploit_and_explore_with_checkpoint_files(tmp_path):
    pbt = PopulationBasedTraining(
        population_size=4, perturbation_interval=2, resample_probability=0.0, seed=5
    )
    study = airda.create_study(space=SPACE, strategy=pbt)
    study.optimize(make_train(tmp_path), n_trials=8)
    gen0, gen1 = study.trials[:4], study.trials[4:]
    for t in gen0:
        assert t.system_attrs["pbt_parent"] is None
        assert t.user_attrs["loaded_from"] is None
        assert (tmp_path / study.name / f"trial-{t.number}" / "checkpoint.pt").is_file()
        assert t.system_attrs["checkpoint_step"] == 2
    # minimise -w: the largest lr is best, the smallest worst (quantile 0.25 of 4 -> 1 each)
    best = min(gen0, key=lambda t: t.value)
    worst = max(gen0, key=lambda t: t.value)
    for t in gen1:
        member = pbt.member_of(t)
        own = gen0[member]
        parent = t.system_attrs["pbt_parent"]
        assert t.user_attrs["loaded_from"] == parent  # the state really came from the parent
        assert t.system_attrs["restored_from"] == parent
        assert min(t.intermediate) == 3  # continues the parent's steps
        if own is worst:
            assert parent == best.number
            assert t.user_attrs["w_start"] == pytest.approx(-best.value)
            ratio = t.params["lr"] / best.params["lr"]
            assert min(abs(ratio - 0.8), abs(ratio - 1.2)) < 1e-9 or t.params["lr"] == 1.0
            assert t.params["opt"] == best.params["opt"]
        else:
            assert parent == own.number
            assert t.params == own.params


def test_resampling_draws_from_the_space(tmp_path):
    pbt = PopulationBasedTraining(
        population_size=4, perturbation_interval=1, resample_probability=1.0, seed=2
    )
    study = airda.create_study(space=SPACE, strategy=pbt)
    study.optimize(make_train(tmp_path), n_trials=8)
    gen0 = study.trials[:4]
    worst = max(gen0, key=lambda t: t.value)
    child = study.trials[4 + pbt.member_of(worst)]
    best = min(gen0, key=lambda t: t.value)
    assert child.system_attrs["pbt_parent"] == best.number
    assert child.params["lr"] != best.params["lr"]  # drawn afresh (probability 1)
    study.space.validate(child.params)


def test_failed_restore_fails_the_trial_and_the_study_goes_on(tmp_path):
    pbt = PopulationBasedTraining(
        population_size=4, perturbation_interval=2, resample_probability=0.0, seed=5
    )
    study = airda.create_study(space=SPACE, strategy=pbt)
    train = make_train(tmp_path)
    study.optimize(train, n_trials=4)
    ranked = sorted(study.trials, key=lambda t: t.value)
    victim = ranked[1]  # continues from its own checkpoint; not a donor
    (tmp_path / study.name / f"trial-{victim.number}" / "checkpoint.pt").write_bytes(b"junk")
    study.optimize(train, n_trials=8)
    t = study.trials[4 + pbt.member_of(victim)]
    assert t.state is TrialState.FAIL
    assert "CheckpointError" in t.error
    assert f"cannot restore trial {victim.number}'s checkpoint" in t.error
    others = [x for x in study.trials[4:8] if x.number != t.number]
    assert all(x.state is TrialState.COMPLETE for x in others)
    # next generation: the failed member exploits a top member
    nxt = study.trials[8 + pbt.member_of(victim)]
    top = min(study.trials[4:8], key=lambda x: x.value if x.value is not None else math.inf)
    assert nxt.system_attrs["pbt_parent"] == top.number
    assert nxt.state is TrialState.COMPLETE


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    pbt = PopulationBasedTraining(population_size=2, perturbation_interval=1, seed=0)
    study = airda.create_study(space=SPACE, strategy=pbt)

    def no_save(trial):
        s = Session(trial, checkpoint_dir=tmp_path)
        s.load_checkpoint()
        s.report(s.steps[0], trial["lr"])
        return trial["lr"]

    study.optimize(no_save, n_trials=4)
    assert [t.state for t in study.trials[:2]] == [TrialState.COMPLETE] * 2
    assert all(t.state is TrialState.FAIL for t in study.trials[2:])
    assert "saved none" in study.trials[2].error


def test_pbt_decisions_survive_a_restart(tmp_path):
    def run(db, splits):
        done = 0
        for i, n in enumerate(splits):
            pbt = PopulationBasedTraining(population_size=4, perturbation_interval=2, seed=9)
            if i == 0:
                study = airda.create_study("p", storage=db, space=SPACE, strategy=pbt)
            else:
                study = airda.load_study("p", storage=db, strategy=pbt)
            study.optimize(make_train(tmp_path / db.stem), n_trials=n)
            study.storage.close()
            done += n
        return [
            (t.params, t.system_attrs.get("pbt_parent"), t.intermediate, t.values)
            for t in study.trials
        ]

    assert run(tmp_path / "a.db", [16]) == run(tmp_path / "b.db", [6, 10])


def test_pbt_runs_every_segment_even_when_params_repeat(tmp_path):
    pbt = PopulationBasedTraining(population_size=2, perturbation_interval=1, seed=1)
    study = airda.create_study(space=SPACE, strategy=pbt)
    study.optimize(make_train(tmp_path), n_trials=6)
    assert all("cached_from" not in t.system_attrs for t in study.trials)
    assert [max(t.intermediate) for t in study.trials] == [1, 1, 2, 2, 3, 3]


def test_pbt_options_are_checked():
    with pytest.raises(ValueError, match="population_size"):
        PopulationBasedTraining(population_size=1)
    with pytest.raises(ValueError, match="perturbation_interval"):
        PopulationBasedTraining(perturbation_interval=0)
    with pytest.raises(ValueError, match="quantile"):
        PopulationBasedTraining(quantile=0.7)
    with pytest.raises(ValueError, match="perturb_factors"):
        PopulationBasedTraining(perturb_factors=(0.0,))
    with pytest.raises(ValueError, match="one objective"):
        airda.create_study(directions=["minimize"] * 2, strategy="pbt")


def test_session_with_a_pruning_scheduler(tmp_path):
    def objective(trial):
        s = Session(trial, checkpoint_dir=tmp_path)
        assert s.load_checkpoint() is None
        with pytest.raises(ValueError, match="needs a segment strategy"):
            _ = s.steps
        for epoch in range(1, 10):
            s.report(epoch, trial["lr"] + 1 / epoch)
            if s.should_stop():
                raise airda.TrialPruned()
        return trial["lr"]

    study = airda.create_study(space=SPACE, scheduler=ASHA(1, 9, 3), seed=0)
    study.optimize(objective, n_trials=10)
    assert any(t.state is TrialState.PRUNED for t in study.trials)
    assert all(t.state is not TrialState.FAIL for t in study.trials)

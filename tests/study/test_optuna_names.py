"""A script ported from Optuna: its keyword names are accepted or answered with airda's."""

from __future__ import annotations

import re

import pytest

import airda
from airda.space import Float


def test_study_name_is_accepted_by_create_and_load(tmp_path):
    db = tmp_path / "s.db"
    study = airda.create_study(study_name="s", storage=db, space={"x": Float(0.0, 1.0)}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=3)
    again = airda.load_study(study_name="s", storage=db)
    assert again.name == "s"
    assert len(again.trials) == 3
    same = airda.create_study(study_name="s", storage=db, load_if_exists=True)
    assert len(same.trials) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": object()}, "airda calls it strategy"),
        ({"pruner": object()}, "airda calls it scheduler"),
        ({"directon": "maximize"}, re.escape("did you mean direction=?")),
        ({"name": "a", "study_name": "b"}, "give one"),
        ({"frobnicate": 1}, "unexpected keyword argument 'frobnicate'$"),
    ],
)
def test_unknown_keywords_say_what_airda_calls_them(kwargs, message):
    with pytest.raises(TypeError, match=message):
        airda.create_study(**kwargs)


def test_load_study_without_a_name_is_a_clear_error():
    with pytest.raises(TypeError, match="needs the study's name"):
        airda.load_study(storage=":memory:")
    with pytest.raises(TypeError, match="airda calls it strategy"):
        airda.load_study("x", storage=":memory:", sampler=None)


def test_optimize_takes_optunas_spellings():
    study = airda.create_study(space={"x": Float(0.0, 1.0)}, seed=0, strategy="random")
    study.optimize(lambda t: t["x"], n_trials=4, show_progress_bar=False, n_jobs=2)
    assert len(study.trials) == 4
    with pytest.raises(TypeError, match="give one"):
        study.optimize(lambda t: t["x"], n_trials=1, n_workers=3, n_jobs=2)
    with pytest.raises(TypeError, match=re.escape("callbacks=[lambda study, trial: gc.collect()]")):
        study.optimize(lambda t: t["x"], n_trials=1, gc_after_trial=True)
    with pytest.raises(TypeError, match=re.escape("did you mean timeout=?")):
        study.optimize(lambda t: t["x"], n_trials=1, timout=3)


def test_optunas_study_attributes_name_airdas():
    study = airda.create_study(space={"x": Float(0.0, 1.0)})
    with pytest.raises(AttributeError, match="airda calls it enqueue"):
        study.enqueue_trial({"x": 0.5})
    with pytest.raises(AttributeError, match="airda calls it to_dataframe"):
        study.trials_dataframe()
    with pytest.raises(AttributeError, match=r"no attribute 'nothing_like_it'$"):
        study.nothing_like_it  # noqa: B018


def test_report_in_optunas_order_says_so():
    study = airda.create_study(space={"x": Float(0.0, 1.0)})
    trial = study.ask()
    with pytest.raises(ValueError, match="Optuna's is report\\(value, step\\)"):
        trial.report(0.5, 3)


def test_get_trials_takes_optunas_deepcopy_keyword():
    study = airda.create_study(space={"x": Float(0.0, 1.0)}, seed=0, strategy="random")
    study.optimize(lambda t: t["x"], n_trials=2)
    assert len(study.get_trials(deepcopy=False, states=[airda.TrialState.COMPLETE])) == 2
    with pytest.raises(TypeError, match="first argument is the states"):
        study.get_trials(False)


def test_optunas_modules_name_airdas():
    with pytest.raises(AttributeError, match=r"airda's is airda.strategies"):
        _ = airda.samplers
    with pytest.raises(AttributeError, match=r"airda's is airda.schedulers"):
        _ = airda.pruners
    with pytest.raises(AttributeError, match=r"no attribute 'nothing'$"):
        _ = airda.nothing

"""airda.integrations.mlflow: runs per trial in a local file store, read back with
``mlflow.search_runs``."""

from __future__ import annotations

import doctest

import pytest

mlflow = pytest.importorskip("mlflow", reason="pip install 'airda-lab[mlflow]'")

import airda  # noqa: E402
from airda.integrations import mlflow as integ  # noqa: E402
from airda.integrations.mlflow import MLflowCallback  # noqa: E402
from airda.schedulers import MedianStopping  # noqa: E402
from airda.space import Categorical, Float  # noqa: E402
from airda.trial import TrialState  # noqa: E402


@pytest.fixture
def uri(tmp_path, monkeypatch):
    # MLflow 3 keeps plain-folder stores behind this switch (SQLite needs a ~8 s migration).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # for search_runs and start_run in the tests
    yield uri
    mlflow.set_tracking_uri(before)


def _objective(trial):
    trial.set_user_attr("note", "tiny")
    if trial["opt"] == "fail":
        raise RuntimeError("diverged")
    for step in range(3):
        trial.report(step, trial["x"] ** 2 + 3 - step)
        if trial.should_prune():
            raise airda.TrialPruned()
    return trial["x"] ** 2


def _study(name, points):
    study = airda.create_study(
        name,
        space={"x": Float(-2, 2), "opt": Categorical(("adam", "sgd", "fail"))},
        seed=0,
        scheduler=MedianStopping(n_startup_trials=2),
    )
    for x, opt in points:
        study.enqueue({"x": x, "opt": opt})
    return study


def _runs(experiment):
    runs = mlflow.search_runs(experiment_names=[experiment])
    return runs.sort_values("start_time").reset_index(drop=True)


def test_one_run_per_trial_with_params_metrics_tags(uri):
    study = _study("quad", [(0.5, "adam"), (1.0, "sgd"), (1.9, "adam"), (0.1, "fail")])
    study.optimize(_objective, n_trials=4, callbacks=[MLflowCallback(uri, metric_name="loss")])
    trials = study.trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    runs = _runs("quad")
    assert len(runs) == 4
    assert list(runs["tags.mlflow.runName"]) == ["0", "1", "2", "3"]
    assert list(runs["tags.number"]) == ["0", "1", "2", "3"]
    assert list(runs["tags.state"]) == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert list(runs["status"]) == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    assert set(runs["tags.study_name"]) == {"quad"}
    assert set(runs["tags.direction"]) == {"minimize"}
    assert set(runs["tags.note"]) == {"tiny"}
    assert runs["tags.error"][3] == "RuntimeError: diverged"
    for i, t in enumerate(trials):
        assert float(runs["params.x"][i]) == pytest.approx(t.params["x"])
        assert runs["params.opt"][i] == t.params["opt"]
        # Times are the trial's own, in milliseconds.
        assert runs["start_time"][i].timestamp() == pytest.approx(t.datetime_start, abs=1e-3)
    for i in range(3):  # complete and pruned trials have a value (pruned: their last report)
        assert runs["metrics.loss"][i] == pytest.approx(trials[i].value)
    assert runs["metrics.loss"].isna()[3]
    client = mlflow.MlflowClient(uri)
    for i, t in enumerate(trials[:3]):
        history = client.get_metric_history(runs["run_id"][i], "intermediate_value")
        got = sorted((m.step, m.value) for m in history)
        assert got == [(s, pytest.approx(v)) for s, v in sorted(t.intermediate.items())]
    assert len(trials[2].intermediate) == 1  # pruned at its first step


def test_nested_under_a_parent_run_per_study(uri):
    cb = MLflowCallback(uri, experiment="exp", nest_trials=True)
    study = _study("nested", [(0.5, "adam"), (1.0, "sgd"), (0.2, "adam")])
    study.optimize(_objective, n_trials=2, callbacks=[cb])
    # A second callback (a resumed driver) finds the same parent by its tag.
    study.optimize(
        _objective, n_trials=1, callbacks=[MLflowCallback(uri, experiment="exp", nest_trials=True)]
    )
    runs = _runs("exp")
    parent = runs[runs["tags.airda.parent"] == "true"]
    children = runs[runs["tags.airda.parent"] != "true"]
    assert len(parent) == 1
    assert len(children) == 3
    assert parent["tags.mlflow.runName"].item() == "nested"
    assert set(children["tags.mlflow.parentRunId"]) == {parent["run_id"].item()}
    assert parent["metrics.best_value"].item() == pytest.approx(study.best_value)
    assert parent["status"].item() == "FINISHED"


def test_nested_under_the_active_run(uri):
    mlflow.set_experiment("outer")
    study = _study("inner", [(0.5, "adam"), (1.0, "sgd")])
    with mlflow.start_run(run_name="sweep") as outer:
        cb = MLflowCallback(uri, experiment="outer", nest_trials=True)
        study.optimize(_objective, n_trials=2, callbacks=[cb])
    runs = _runs("outer")
    children = runs[runs["run_id"] != outer.info.run_id]
    assert len(children) == 2
    assert set(children["tags.mlflow.parentRunId"]) == {outer.info.run_id}


def test_multi_objective_and_states(uri):
    study = airda.create_study(
        "mo", space={"x": Float(0, 1)}, directions=["minimize", "maximize"], strategy="nsga2"
    )
    cb = MLflowCallback(uri, metric_name=["error", "speed"], states=[TrialState.COMPLETE])
    study.optimize(lambda t: (t["x"], 1 - t["x"]), n_trials=2, callbacks=[cb])
    runs = _runs("mo")
    assert list(runs["metrics.error"]) == pytest.approx([t.values[0] for t in study.trials])
    assert list(runs["metrics.speed"]) == pytest.approx([t.values[1] for t in study.trials])
    assert set(runs["tags.direction"]) == {'["minimize", "maximize"]'}
    with pytest.raises(ValueError, match="1 names; the study has 2 objectives"):
        MLflowCallback(uri, metric_name=["one"])(study, study.trials[0])
    with pytest.raises(TypeError, match="metric_name"):
        MLflowCallback(uri, metric_name=[])


def test_long_values_are_cut_to_mlflow_limits():
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    text = integ._text("x" * (MAX_PARAM_VAL_LENGTH + 10), MAX_PARAM_VAL_LENGTH)
    assert len(text) == MAX_PARAM_VAL_LENGTH
    assert text.endswith("...")
    assert integ._text({"b": 1, "a": [2]}, 100) == '{"a": [2], "b": 1}'


def test_docstring_example(uri):
    result = doctest.testmod(integ, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

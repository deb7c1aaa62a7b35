"""airda.integrations.tensorboard: event files per trial, read back with TensorBoard's reader."""

from __future__ import annotations

import doctest

import pytest

pytest.importorskip("tensorboard", reason="pip install 'airda-lab[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

import airda
from airda.integrations import tensorboard as integ
from airda.integrations.tensorboard import TensorBoardCallback, read_hparams
from airda.schedulers import MedianStopping
from airda.space import Categorical, Float
from airda.trial import TrialState


def _objective(trial):
    if trial["opt"] == "fail":
        raise RuntimeError("diverged")
    for step in range(3):
        trial.report(step, trial["x"] ** 2 + 3 - step)
        if trial.should_prune():
            raise airda.TrialPruned()
    return trial["x"] ** 2


def _study(points):
    study = airda.create_study(
        space={"x": Float(-2, 2), "opt": Categorical(("adam", "sgd", "fail"))},
        seed=0,
        scheduler=MedianStopping(n_startup_trials=2),
    )
    for x, opt in points:
        study.enqueue({"x": x, "opt": opt})
    return study


def _scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [(e.step, pytest.approx(e.value)) for e in acc.Scalars(tag)]


def test_one_run_per_trial_with_hparams_metric_and_curve(tmp_path):
    cb = TensorBoardCallback(tmp_path, metric_name="loss")
    study = _study([(0.5, "adam"), (1.0, "sgd"), (1.9, "adam"), (0.1, "fail")])
    study.optimize(_objective, n_trials=4, callbacks=[cb])
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]

    # Failed trials are left out by default; complete and pruned ones each have a run folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial-0", "trial-1", "trial-2"]
    for t in study.trials[:3]:
        run = tmp_path / f"trial-{t.number}"
        info = read_hparams(run)
        assert info["trial_id"] == f"trial-{t.number}"
        assert info["hparams"] == {"x": pytest.approx(t.params["x"]), "opt": t.params["opt"]}
        assert info["status"] == "STATUS_SUCCESS"
        # The value at step = trial number (Optuna's convention) and the learning curve.
        assert _scalars(run, "loss") == [(t.number, t.value)]
        assert _scalars(run, "intermediate_value") == sorted(t.intermediate.items())
        acc = EventAccumulator(str(run))
        acc.Reload()
        tags = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        assert set(tags) == {metadata.SESSION_START_INFO_TAG, metadata.SESSION_END_INFO_TAG}
    # The pruned trial stopped at its first step; its value is that step's.
    assert _scalars(tmp_path / "trial-2", "intermediate_value") == [(0, 1.9**2 + 3)]


def test_failed_trials_when_asked_and_define_by_run(tmp_path):
    cb = TensorBoardCallback(tmp_path, states=list(TrialState))
    study = airda.create_study(seed=0)

    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if trial.number == 1:
            raise ValueError("bad")
        if kind == "a":
            return trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        return float(trial.suggest_int("depth", 1, 4))

    study.optimize(objective, n_trials=4, callbacks=[cb])
    for t in study.trials:
        info = read_hparams(tmp_path / f"trial-{t.number}")
        assert set(info["hparams"]) == set(t.params)
        want = "STATUS_FAILURE" if t.state is TrialState.FAIL else "STATUS_SUCCESS"
        assert info["status"] == want
    acc = EventAccumulator(str(tmp_path / "trial-1"))
    acc.Reload()
    assert acc.Tags()["scalars"] == []  # a failed trial has no value


def test_multi_objective_names(tmp_path):
    study = airda.create_study(
        space={"x": Float(0, 1)}, directions=["minimize", "maximize"], strategy="nsga2", seed=0
    )
    cb = TensorBoardCallback(tmp_path, metric_name=["error", "speed"])
    study.optimize(lambda t: (t["x"], 1 - t["x"]), n_trials=2, callbacks=[cb])
    t = study.trials[0]
    assert _scalars(tmp_path / "trial-0", "error") == [(0, t.values[0])]
    assert _scalars(tmp_path / "trial-0", "speed") == [(0, t.values[1])]
    numbered = TensorBoardCallback(tmp_path / "n")
    study.optimize(lambda t: (t["x"], 1 - t["x"]), n_trials=1, callbacks=[numbered])
    acc = EventAccumulator(str(tmp_path / "n" / "trial-2"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["value_0", "value_1"]
    wrong = TensorBoardCallback(tmp_path / "w", metric_name=["only_one"])
    with pytest.raises(ValueError, match="1 names; the study has 2 objectives"):
        wrong(study, t)


def test_non_scalar_params_are_json_text(tmp_path):
    assert integ._hparam_value([1, 2]) == "[1, 2]"
    assert integ._hparam_value(None) == "null"
    assert integ._hparam_value(True) is True
    with pytest.raises(TypeError, match="metric_name"):
        TensorBoardCallback(tmp_path, metric_name=[])


def test_docstring_example():
    result = doctest.testmod(integ, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def _hparams_dashboard(log_dir):
    """What TensorBoard's HParams dashboard receives: its plugin's own routes, served in-process
    over the event files (as ``tensorboard --logdir`` would, without the web server)."""
    import json

    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from tensorboard.plugins.scalar import scalars_plugin
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(log_dir))
    mux.Reload()
    plugins = {}
    ctx = base_plugin.TBContext(
        logdir=str(log_dir),
        multiplexer=mux,
        data_provider=data_provider.MultiplexerDataProvider(mux, str(log_dir)),
        plugin_name_to_instance=plugins,
    )
    plugins["scalars"] = scalars_plugin.ScalarsPlugin(ctx)
    routes = hparams_plugin.HParamsPlugin(ctx).get_plugin_apps()

    def post(route, body):
        response = Client(routes[route], Response).post(
            "/", data=json.dumps(body), headers={"X-XSRF-Protected": "1"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return json.loads(response.get_data())

    experiment = post("/experiment", {"experimentName": ""})
    statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
    groups = post(
        "/session_groups",
        {"experimentName": "", "allowedStatuses": statuses, "startIndex": 0, "sliceSize": 100},
    )
    return experiment, groups["sessionGroups"]


# TensorBoard's plugin utilities import html5lib's sanitizer, which html5lib deprecates.
@pytest.mark.filterwarnings("ignore:html5lib's sanitizer is deprecated:DeprecationWarning")
def test_the_hparams_dashboard_shows_one_row_per_trial(tmp_path):
    # A define-by-run study: trials ask different parameters, and the table holds them all.
    study = airda.create_study(seed=0, scheduler=MedianStopping(n_startup_trials=2))

    def objective(trial):
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.99)
        for step in range(3):
            trial.report(step, lr + 1 / (step + 1))
            if trial.should_prune():
                raise airda.TrialPruned()
        return lr

    study.optimize(objective, n_trials=6, callbacks=[TensorBoardCallback(tmp_path, "loss")])
    experiment, groups = _hparams_dashboard(tmp_path)
    columns = {h["name"]: h for h in experiment["hparamInfos"]}
    assert set(columns) == {"optimizer", "lr", "momentum"}
    assert sorted(columns["optimizer"]["domainDiscrete"]) == ["adam", "sgd"]
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == {"loss", "intermediate_value"}
    rows = {g["name"]: g for g in groups}
    assert set(rows) == {f"trial-{t.number}" for t in study.trials}
    for t in study.trials:
        row = rows[f"trial-{t.number}"]
        assert row["hparams"] == pytest.approx(t.params)
        (session,) = row["sessions"]
        assert session["status"] == "STATUS_SUCCESS"
        assert session["startTimeSecs"] == pytest.approx(t.datetime_start)
        assert session["endTimeSecs"] == pytest.approx(t.datetime_complete)
        metrics = {m["name"]["tag"]: m["value"] for m in row["metricValues"]}
        assert metrics["loss"] == pytest.approx(t.value, rel=1e-6)
        last_step = max(t.intermediate)
        assert metrics["intermediate_value"] == pytest.approx(t.intermediate[last_step], rel=1e-6)

"""Studies: ask/tell, optimize, failures, define-by-run, pruning, caching, export."""

from __future__ import annotations

import csv
import json
import math

import pytest

import airda
from airda.schedulers import MedianStopping
from airda.space import Categorical, Float, Int, SpaceError
from airda.storage import DuplicatedStudyError, StudyNotFoundError
from airda.strategies import StrategyExhausted
from airda.trial import TrialState

SPACE = {"x": Float(-2.0, 2.0), "k": Categorical(["a", "b"])}


def test_manual_ask_tell():
    study = airda.create_study(space=SPACE, seed=0)
    trial = study.ask()
    assert trial.number == 0
    assert set(trial.params) == {"x", "k"}
    frozen = study.tell(trial, trial["x"] ** 2)
    assert frozen.state is TrialState.COMPLETE
    assert frozen.value == pytest.approx(trial["x"] ** 2)
    t2 = study.ask()
    study.tell(t2.number, state=TrialState.PRUNED)
    t3 = study.ask()
    study.tell(t3, state=TrialState.FAIL, error="gave up")
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    assert study.trials[2].error == "gave up"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf, "text", None, [1, 2]])
def test_non_finite_or_malformed_values_fail_the_trial(bad):
    study = airda.create_study(space=SPACE)
    t = study.ask()
    frozen = study.tell(t, bad)
    assert frozen.state is TrialState.FAIL
    assert frozen.values is None
    assert "ValueError" in frozen.error


def test_exceptions_fail_the_trial_with_traceback_and_the_study_goes_on():
    def objective(trial):
        if trial.number == 2:
            raise ZeroDivisionError("division by zero in user code")
        return trial["x"]

    study = airda.create_study(space=SPACE, seed=1)
    study.optimize(objective, n_trials=5)
    t = study.trials[2]
    assert t.state is TrialState.FAIL
    assert t.error == "ZeroDivisionError: division by zero in user code"
    assert "ZeroDivisionError" in t.traceback
    assert "objective" in t.traceback
    assert sum(t.state is TrialState.COMPLETE for t in study.trials) == 4


def test_uncaught_exception_types_propagate_after_recording():
    def objective(trial):
        raise KeyError("boom")

    study = airda.create_study(space=SPACE)
    with pytest.raises(KeyError):
        study.optimize(objective, n_trials=3, catch=(ValueError,))
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_keyboard_interrupt_keeps_finished_trials(tmp_path):
    def objective(trial):
        if trial.number == 3:
            raise KeyboardInterrupt
        return trial["x"]

    path = tmp_path / "s.db"
    study = airda.create_study("ctrl-c", storage=path, space=SPACE)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=10)
    trials = airda.load_study("ctrl-c", storage=path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert "interrupted" in trials[3].error


def test_enqueue_runs_known_candidates_first():
    study = airda.create_study(space=SPACE, seed=2)
    study.enqueue({"x": 0.5, "k": "b"})
    study.enqueue({"x": -1.0, "k": "a"})
    study.optimize(lambda t: t["x"] ** 2, n_trials=4)
    params = [t.params for t in study.trials]
    assert params[0] == {"x": 0.5, "k": "b"}
    assert params[1] == {"x": -1.0, "k": "a"}
    with pytest.raises(ValueError, match="outside"):
        study.enqueue({"x": 9.0, "k": "a"})


def test_duplicates_are_not_evaluated_twice():
    calls = []

    def objective(trial):
        calls.append(dict(trial.params))
        return sum(trial.params.values())

    space = {"a": Int(0, 1), "b": Int(0, 1)}
    study = airda.create_study(space=space, strategy="random", seed=3)
    study.optimize(objective, n_trials=30)
    assert len(calls) == 4  # only four distinct candidates exist
    cached = [t for t in study.trials if "cached_from" in t.system_attrs]
    assert cached
    assert all(t.state is TrialState.COMPLETE for t in cached)
    # Every candidate evaluated: the study stops instead of repeating them for 30 trials.
    assert len(study.trials) == 4 + len(cached) < 30


def test_reused_results_do_not_spend_the_budget():
    calls = []

    def objective(trial):
        calls.append(dict(trial.params))
        return trial["a"]

    study = airda.create_study(space={"a": Int(0, 5)}, strategy="random", seed=0)
    study.optimize(objective, n_trials=5)
    assert len(calls) == 5
    assert len({c["a"] for c in calls}) == 5
    assert len(study.trials) > 5  # some proposals repeated an evaluated candidate


def test_a_strategy_that_only_repeats_itself_is_stopped(caplog, capsys):
    study = airda.create_study(space={"a": Int(0, 3), "x": Float(0, 1)}, strategy="random", seed=0)
    study.enqueue({"a": 0, "x": 0.5})
    study.optimize(lambda t: 1.0, n_trials=1)

    class Stuck(type(study.strategy)):
        def ask(self, n):
            return [{"a": 0, "x": 0.5}] * n

    study.strategy.__class__ = Stuck
    with caplog.at_level("WARNING", logger="airda"):
        study.optimize(lambda t: 1.0, n_trials=5)
    # the warning reaches the airda handler on stderr, or the root logger when it propagates
    assert "in a row" in caplog.text + capsys.readouterr().err
    assert len(study.trials) == 1 + 1000


def test_grid_exhaustion_ends_optimize():
    study = airda.create_study(
        space={"a": Int(0, 2), "b": Categorical(["x", "y"])}, strategy="grid"
    )
    study.optimize(lambda t: t["a"], n_trials=100)
    assert len(study.trials) == 6
    with pytest.raises(StrategyExhausted):
        study.ask()


def test_define_by_run():
    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if kind == "a":
            return x * x + trial.suggest_int("y", 1, 5)
        return x * x

    study = airda.create_study(seed=4)
    study.optimize(objective, n_trials=40)
    assert study.space.names == ["x", "kind", "y"]
    for t in study.get_trials([TrialState.COMPLETE]):
        assert ("y" in t.params) == (t.params["kind"] == "a")
    with pytest.raises(ValueError, match="suggested as"):
        study.ask().suggest_float("x", 0, 1)


def test_median_stopping_prunes_bad_trials():
    def objective(trial):
        for step in range(8):
            trial.report(step, trial["x"] * (8 - step))
            if trial.should_prune():
                raise airda.TrialPruned
        return trial["x"]

    study = airda.create_study(space={"x": Float(0, 1)}, scheduler=MedianStopping(), seed=5)
    study.optimize(objective, n_trials=40)
    pruned = study.get_trials([TrialState.PRUNED])
    complete = study.get_trials([TrialState.COMPLETE])
    assert pruned
    assert complete
    assert all(t.intermediate for t in pruned)
    assert study.best_value <= min(t.params["x"] for t in pruned)


def test_report_rejects_bad_steps_and_nan():
    study = airda.create_study(space=SPACE)
    t = study.ask()
    with pytest.raises(ValueError, match="step"):
        t.report(-1, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        t.report(0, float("nan"))


def test_best_trial_and_maximize():
    study = airda.create_study(space=SPACE, direction="maximize", seed=6)
    with pytest.raises(ValueError, match="no complete trial"):
        _ = study.best_trial
    study.optimize(lambda t: t["x"], n_trials=30)
    assert study.best_value == max(t.value for t in study.trials)
    assert study.best_params["x"] == study.best_value


def test_create_load_and_errors(tmp_path):
    path = tmp_path / "s.db"
    airda.create_study("a", storage=path, space=SPACE)
    with pytest.raises(DuplicatedStudyError):
        airda.create_study("a", storage=path, space=SPACE)
    again = airda.create_study("a", storage=f"sqlite:///{path}", space=SPACE, load_if_exists=True)
    assert again.space.names == ["x", "k"]
    with pytest.raises(StudyNotFoundError, match="no study named 'b'"):
        airda.load_study("b", storage=path)
    with pytest.raises(ValueError, match="direction"):
        airda.create_study(space=SPACE, direction="up")
    with pytest.raises(ValueError, match="unknown strategy"):
        airda.create_study(space=SPACE, strategy="magic")
    with pytest.raises(ValueError, match="n_trials or timeout"):
        airda.create_study(space=SPACE).optimize(lambda t: 0.0)


def test_timeout_stops_the_loop():
    study = airda.create_study(space=SPACE)
    study.optimize(lambda t: t["x"], timeout=0.05)
    assert len(study.trials) >= 1


def test_callbacks_see_every_trial():
    seen = []
    study = airda.create_study(space=SPACE)
    study.optimize(lambda t: t["x"], n_trials=5, callbacks=[lambda s, t: seen.append(t.number)])
    assert seen == [0, 1, 2, 3, 4]


def test_export_csv_and_json(tmp_path):
    study = airda.create_study("exp", space=SPACE, seed=7)
    study.optimize(lambda t: t["x"] if t.number != 1 else float("nan"), n_trials=4)
    csv_path = study.export(tmp_path / "t.csv")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["complete", "fail", "complete", "complete"]
    assert {"params_x", "params_k", "value", "duration"} <= set(rows[0])
    doc = json.loads(study.export(tmp_path / "t.json").read_text())
    assert doc["study"] == "exp"
    assert len(doc["trials"]) == 4
    assert doc["strategy"]["name"] == "auto"
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        study.export(tmp_path / "t.xlsx")


def test_to_dataframe():
    pd = pytest.importorskip("pandas", reason="pandas is not installed (optional)")
    study = airda.create_study(space=SPACE)
    study.optimize(lambda t: t["x"], n_trials=3)
    df = study.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df["number"]) == [0, 1, 2]


def test_multi_objective_pareto_front():
    study = airda.create_study(
        space={"x": Float(0, 1)}, directions=["minimize", "minimize"], seed=8
    )
    study.optimize(lambda t: (t["x"], (1 - t["x"]) ** 2), n_trials=20)
    front = study.pareto_front()
    assert len(front) == 20  # every point is a trade-off
    with pytest.raises(ValueError, match="pareto_front"):
        _ = study.best_trial


def test_strategies_find_good_solutions():
    space = {f"x{i}": Categorical([0, 1, 2, 3]) for i in range(6)}
    results = {}
    for name in ("rea", "local", "random"):
        study = airda.create_study(space=space, strategy=name, seed=11)
        study.optimize(lambda t: sum(t.params.values()), n_trials=200)
        results[name] = study.best_value
    assert results["rea"] <= 2
    assert results["local"] == 0


def test_ask_candidates_lets_a_driver_skip_candidates_and_resume_after_them(tmp_path):
    # A driver that drops some proposals (already evaluated, say) stores a trial only for
    # those it keeps; each records its ask, so a resumed study proposes new candidates
    # instead of replaying the ones asked before.
    path = tmp_path / "s.db"
    space = {"x": Float(0.0, 1.0)}
    study = airda.create_study("c", storage=path, space=space, strategy="random", seed=4)
    asked = study.ask_candidates(3)
    assert [i for i, _ in asked] == [0, 1, 2]
    assert study.trials == []  # asking stores nothing
    for index, params in (asked[0], asked[2]):
        study.tell(study.ask(fixed=params, ask_index=index), params["x"])
    assert [t.system_attrs["ask_index"] for t in study.trials] == [0, 2]
    assert "fixed" not in study.trials[0].system_attrs
    resumed = airda.load_study("c", storage=path)
    (index, params), *_ = resumed.ask_candidates(1)
    assert index == 3
    assert params not in [p for _, p in asked]
    fresh = airda.create_study(space=space, strategy="random", seed=4)
    assert [p for _, p in fresh.ask_candidates(4)][3] == params  # the same search, continued


def test_ask_candidates_and_ask_index_are_checked():
    study = airda.create_study(space={"a": Int(0, 2)}, strategy="grid")
    assert [p["a"] for _, p in study.ask_candidates(5)] == [0, 1, 2]  # the grid's end
    with pytest.raises(StrategyExhausted):
        study.ask_candidates(1)
    with pytest.raises(ValueError, match="ask_index"):
        study.ask(fixed={"a": 0}, ask_index=3)  # never asked
    with pytest.raises(ValueError, match="goes with fixed"):
        study.ask(ask_index=0)
    with pytest.raises(ValueError, match="n must be"):
        study.ask_candidates(0)
    with pytest.raises(ValueError, match="needs a space"):
        airda.create_study().ask_candidates(1)
    assert study.trials == []


def test_define_by_run_parameters_reach_the_strategy():
    """Parameters first suggested by the objective join the strategy's space: from the next
    ask on the strategy proposes them (a model-based one then models them), instead of every
    suggestion being drawn at random."""
    import logging

    logging.getLogger("airda").setLevel(logging.WARNING)

    def objective(t):
        x = t.suggest_float("x", -5, 5)
        y = t.suggest_float("y", -5, 5)
        return (x - 1) ** 2 + (y + 2) ** 2

    study = airda.create_study(strategy="tpe", seed=0)
    study.optimize(objective, n_trials=1)
    assert set(study.ask().params) == {"x", "y"}  # proposed by TPE, before the objective runs
    tpe, rnd = [], []
    for seed in range(4):
        for name, out in (("tpe", tpe), ("random", rnd)):
            s = airda.create_study(strategy=name, seed=seed)
            s.optimize(objective, n_trials=50)
            out.append(s.best_value)
    assert sum(tpe) < sum(rnd) / 3, (tpe, rnd)


def test_enqueued_parameter_of_a_define_by_run_study_joins_its_space():
    """A define-by-run study: a parameter whose first values came from enqueued trials joins the
    space when suggested, so a later suggestion with other bounds is refused; an enqueued value
    outside the bounds it is suggested with fails its trial with the reason."""
    study = airda.create_study(strategy="random", seed=0)
    study.enqueue({"x": 0.25})
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert study.space.names == ["x"]
    assert study.trials[0].params == {"x": 0.25}
    with pytest.raises(SpaceError, match="earlier as"):
        study.ask().suggest_float("x", 0.0, 2.0)
    other = airda.create_study(strategy="random", seed=0)
    other.enqueue({"y": 7.0})
    other.optimize(lambda t: t.suggest_float("y", 0.0, 1.0), n_trials=1, catch=(SpaceError,))
    (t,) = other.trials
    assert t.state is TrialState.FAIL
    assert "outside [0.0, 1.0]" in t.error
    assert "y" not in other.space

"""Constrained optimisation: ``trial.set_constraints`` / ``tell(constraints=)``, feasibility in
the best trial and the Pareto front, and every strategy that learns preferring feasible
candidates (Optuna's convention: a constraint value <= 0 is satisfied)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

import airda
from airda.space import Categorical, Float, Int
from airda.storage import SQLiteStorage, Storage
from airda.testing.pytest_storages import STORAGE_FACTORIES
from airda.trial import FrozenTrial, TrialState

SPACE = {"x": Float(0.0, 2.0), "y": Float(0.0, 2.0)}


def disk(t):
    """min (x-1)^2 + (y-1)^2 subject to x + y <= 1: the optimum (0.5, 0.5), value 0.5,
    on the constraint's boundary (the unconstrained optimum (1, 1) is infeasible)."""
    x, y = t["x"], t["y"]
    t.set_constraints([x + y - 1.0])
    return (x - 1.0) ** 2 + (y - 1.0) ** 2


def test_constraints_are_stored_with_the_result_and_decide_the_best(tmp_path):
    study = airda.create_study(space=SPACE, storage=tmp_path / "c.db", strategy="random", seed=0)
    study.optimize(disk, n_trials=30)
    trials = study.trials
    assert all(len(t.constraints) == 1 for t in trials)
    assert {t.feasible for t in trials} == {True, False}
    for t in trials:
        c = t.constraints[0]
        assert t.violation == max(c, 0.0)
        assert t.feasible == (c <= 0.0)
    best = study.best_trial
    assert best.feasible
    assert best.value == min(t.value for t in trials if t.feasible)
    # An infeasible trial with a smaller value exists, and is not the best.
    assert min(t.value for t in trials) < best.value
    again = airda.load_study(study.name, storage=tmp_path / "c.db")
    assert [t.constraints for t in again.trials] == [t.constraints for t in trials]
    assert again.best_trial.number == best.number


def test_ask_tell_takes_constraints():
    study = airda.create_study(space=SPACE, strategy="tpe", seed=0)
    a = study.ask()
    study.tell(a, 1.0, constraints=[0.5, -1.0])
    b = study.ask()
    study.tell(b, 3.0, constraints=np.array([-0.1, 0.0]))
    assert study.get_trial(a.number).violation == 0.5
    assert study.get_trial(b.number).feasible
    assert study.best_value == 3.0
    with pytest.raises(ValueError, match="gave 2"):
        study.tell(study.ask(), 1.0, constraints=[1.0])


def test_no_feasible_trial_is_a_clear_error_and_the_front_is_feasible_only():
    study = airda.create_study(space=SPACE, strategy="random", seed=0)
    study.tell(study.ask(), 1.0, constraints=[1.0])
    with pytest.raises(ValueError, match="no feasible trial yet"):
        _ = study.best_trial
    mo = airda.create_study(space=SPACE, directions=["minimize", "minimize"], strategy="nsga2")
    mo.tell(mo.ask(), (0.0, 0.0), constraints=[1.0])  # dominates everything, but infeasible
    mo.tell(mo.ask(), (1.0, 2.0), constraints=[0.0])
    mo.tell(mo.ask(), (2.0, 1.0), constraints=[-3.0])
    assert [t.values for t in mo.pareto_front()] == [(1.0, 2.0), (2.0, 1.0)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([float("nan")], "finite number"),
        ([float("inf")], "finite number"),
        ([], "non-empty"),
        (["0.5"], "must be a number"),
        ([True], "must be a number"),
        ({"a": 1.0}, "non-empty sequence"),
    ],
)
def test_bad_constraint_values_are_refused(bad, message):
    study = airda.create_study(space=SPACE, strategy="random", seed=0)
    trial = study.ask()
    with pytest.raises(ValueError, match=message):
        trial.set_constraints(bad)
    with pytest.raises(ValueError, match=message):
        study.tell(trial, 1.0, constraints=bad)


def test_a_bad_constraint_in_the_objective_fails_that_trial_only():
    def objective(t):
        t.set_constraints([float("nan")] if t.number == 1 else [t["x"] - 1.0])
        return t["x"]

    study = airda.create_study(space=SPACE, strategy="random", seed=0)
    study.optimize(objective, n_trials=4)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert "finite number" in study.trials[1].error


def test_a_strategy_that_ignores_constraints_refuses_them():
    space = {"a": Categorical(["p", "q", "r"]), "b": Categorical(["u", "v"])}
    study = airda.create_study(space=space, strategy="reinforce", seed=0)
    with pytest.raises(TypeError, match="does not take constraints into account"):
        study.ask().set_constraints([0.0])


def test_a_reused_result_keeps_its_constraints():
    study = airda.create_study(space={"n": Int(0, 9)}, strategy="random", seed=0)

    def objective(t):
        t.set_constraints([t["n"] - 0.5])
        return float(t["n"])

    study.enqueue({"n": 3})
    study.optimize(objective, n_trials=1)
    study.enqueue({"n": 3})  # evaluated already: its result is reused
    study.optimize(objective, n_trials=1)
    source, reused = study.trials[:2]  # (a reused result is not an evaluation: one more ran)
    assert reused.system_attrs["cached_from"] == source.number
    assert reused.constraints == source.constraints == (2.5,)
    assert not reused.feasible


@pytest.mark.parametrize(
    ("strategy", "n_trials", "bound"),
    [
        ("auto", 40, 0.52),
        ("gp", 40, 0.52),
        ("tpe", 150, 0.6),
        ("cmaes", 300, 0.52),
        ("rea", 300, 0.7),
        ("nsga2", 300, 0.7),
    ],
)
def test_learning_strategies_find_the_constrained_optimum(strategy, n_trials, bound):
    # Random search's best after as many trials, for scale: 0.52-0.6 at 300 (two seeds).
    bests = []
    for seed in range(2):
        study = airda.create_study(space=SPACE, strategy=strategy, seed=seed)
        study.optimize(disk, n_trials=n_trials)
        assert study.best_trial.feasible
        bests.append(study.best_value)
    assert max(bests) < bound, bests


def test_local_search_prefers_a_feasible_centre():
    space = {"i": Int(0, 20), "j": Int(0, 20)}

    def objective(t):
        t.set_constraints([t["i"] + t["j"] - 10])
        return (t["i"] - 15) ** 2 + (t["j"] - 15) ** 2

    study = airda.create_study(space=space, strategy="local", seed=0)
    study.optimize(objective, n_trials=150)
    # (5, 5) is the feasible point nearest (15, 15) (value 200); (4, 6) and (6, 4), at 202,
    # are local optima of one-step moves along the boundary.
    assert study.best_value <= 202


def test_tpe_splits_feasible_first_then_by_violation():
    from airda.strategies.tpe import TPE

    tpe = TPE(seed=0, n_startup_trials=1)
    tpe.setup(airda.space.Space(SPACE), ("minimize",))
    rows = []
    # values 0..5; trials 0, 1, 2 infeasible (violations 3, 1, 2), 3, 4, 5 feasible.
    for number, (value, c) in enumerate([(0, 3), (1, 1), (2, 2), (5, 0), (4, 0), (3, -1)]):
        t = FrozenTrial(
            number=number,
            state=TrialState.COMPLETE,
            params={"x": 0.1 * number, "y": 0.1},
            values=(float(value),),
            system_attrs={"constraints": [float(c)], "ask_index": number},
        )
        tpe.note(t)
        tpe.tell(t)
        rows.append(tpe._row_of[number])
    done = np.array(rows)
    order = list(tpe._best_complete(done, 6))
    feasible = [rows[5], rows[4], rows[3]]  # by value 3, 4, 5
    assert set(order[:3]) == set(feasible)
    assert order[3:] == [rows[1], rows[2], rows[0]]  # by violation 1, 2, 3
    assert set(tpe._best_complete(done, 2)) == {rows[5], rows[4]}


def test_nsga2_fronts_follow_constrained_domination():
    from airda.strategies.nsga2 import NSGA2

    values = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [0.5, 0.5]])
    viol = np.array([2.0, 0.0, 0.0, 0.0, 1.0])
    ranks, _ = NSGA2._fronts(values, viol)
    assert ranks.tolist() == [3, 0, 0, 1, 2]


def test_the_probability_of_feasibility_has_the_right_gradient():
    from airda.strategies.gp import _GP, _default_theta, _Kernel

    rng = np.random.default_rng(0)
    x = rng.random((12, 2))
    y = np.sin(3 * x[:, 0]) + x[:, 1]
    gp = _GP(_Kernel(np.array([True, True]), np.array([False, False])), x, y, _default_theta(2))
    xs = rng.random((4, 2))
    value, grad = gp.log_pof_grad(xs, 0.3)
    assert np.allclose(value, gp.log_pof(xs, 0.3))
    eps = 1e-6
    for j in range(2):
        step = np.zeros_like(xs)
        step[:, j] = eps
        fd = (gp.log_pof(xs + step, 0.3) - gp.log_pof(xs - step, 0.3)) / (2 * eps)
        assert np.allclose(grad[:, j], fd, rtol=1e-4, atol=1e-6)


def test_a_constrained_study_resumes_exactly(tmp_path):
    storage = tmp_path / "r.db"
    whole = airda.create_study(space=SPACE, seed=3)  # auto
    whole.optimize(disk, n_trials=24)
    first = airda.create_study("r", space=SPACE, storage=storage, seed=3)
    first.optimize(disk, n_trials=14)
    second = airda.load_study("r", storage=SQLiteStorage(storage))
    second.optimize(disk, n_trials=10)
    assert [t.params for t in second.trials] == [t.params for t in whole.trials]


def test_infeasible_first_trials_lead_the_gp_to_the_feasible_region():
    # The feasible region is a small corner: x > 1.8 and y > 1.8 (1% of the box).
    def corner(t):
        t.set_constraints([1.8 - t["x"], 1.8 - t["y"]])
        return t["x"] + t["y"]

    study = airda.create_study(space=SPACE, strategy="gp", seed=0)
    study.optimize(corner, n_trials=25)
    assert math.isclose(study.best_value, 3.6, abs_tol=0.05)


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
def storage(request, tmp_path) -> Iterator[Storage]:
    store = STORAGE_FACTORIES[request.param](tmp_path)
    yield store
    store.close()
    if type(store).__name__ == "PostgresStorage":
        from airda.testing._postgres import drop_schema

        drop_schema(store)


def test_every_storage_summarises_the_best_feasible_value(storage):
    study = airda.create_study("c", storage=storage, space=SPACE, strategy="random", seed=0)
    for value, c in [(0.0, [1.0, -1.0]), (2.0, [0.0, -2.0]), (1.0, [-1.0, 0.5]), (3.0, [-1, -1])]:
        study.tell(study.ask(), value, constraints=c)
    summary = next(s for s in storage.list_studies() if s.record.name == "c")
    assert summary.best_values == (2.0,)
    assert study.best_value == 2.0


def test_the_log_line_and_the_history_plot_show_feasible_bests(capsys):
    pytest.importorskip("matplotlib")
    from airda.viz import plot_history

    results = [(5.0, [1.0]), (4.0, [0.0]), (1.0, [2.0]), (3.0, [-1.0])]

    def objective(t):
        value, c = results[t.number]
        t.set_constraints(c)
        return value

    study = airda.create_study(space=SPACE, strategy="random", seed=0)
    from airda import _logging as alog

    capsys.readouterr()
    with alog.verbosity(alog.INFO):  # whatever an earlier test left
        study.optimize(objective, n_trials=4)
    lines = [line for line in capsys.readouterr().err.splitlines() if "finished" in line]
    assert "infeasible: violation 1" in lines[0]
    assert "No trial is feasible yet" in lines[0]
    assert lines[1].endswith("Best is trial 1 with value: 4.0.")
    assert "infeasible: violation 2" in lines[2]
    assert lines[2].endswith("Best is trial 1 with value: 4.0.")
    assert lines[3].endswith("Best is trial 3 with value: 3.0.")
    ax = plot_history(study).axes[0]
    best_line = [line for line in ax.get_lines() if len(line.get_ydata()) == 4][-1]
    ydata = np.asarray(best_line.get_ydata(), dtype=float)
    assert np.isnan(ydata[0])
    assert ydata[1:].tolist() == [4.0, 4.0, 3.0]


def test_named_constraints_as_optuna_5_gives_them():
    def objective(t):
        t.set_constraint("sum", t["x"] + t["y"] - 1.0)
        t.set_constraint("a_floor", 0.1 - t["x"])
        return (t["x"] - 1.0) ** 2 + (t["y"] - 1.0) ** 2

    study = airda.create_study(space=SPACE, strategy="tpe", seed=0)
    study.optimize(objective, n_trials=30)
    first = study.trials[0]
    assert first.system_attrs["constraint_names"] == ["a_floor", "sum"]
    assert first.constraints == (0.1 - first.params["x"], first.params["x"] + first.params["y"] - 1)
    assert study.best_trial.feasible

    def other_names(t):
        t.set_constraint("sum", 0.0)
        t.set_constraint("b", 0.0)
        return 1.0

    study.optimize(other_names, n_trials=1)
    last = study.trials[-1]
    assert last.state is TrialState.FAIL
    assert "named ['a_floor', 'sum']" in last.error

    trial = study.ask()
    trial.set_constraint("sum", 0.0)
    with pytest.raises(ValueError, match="given by name"):
        trial.set_constraints([0.0, 0.0])
    with pytest.raises(ValueError, match="finite number"):
        trial.set_constraint("x", float("nan"))


@pytest.mark.parametrize("strategy", ["auto", "nsga2"])
def test_multi_objective_search_keeps_to_the_feasible_region(strategy):
    """Tanaka's problem (TNK): minimise (x, y) in [0, pi]^2 outside a wavy unit circle and
    inside a disc around (0.5, 0.5); about 8% of the box is feasible."""

    def tnk(t):
        x, y = t["x"], t["y"]
        wave = 1.0 + 0.1 * math.cos(16.0 * math.atan2(x, y))
        t.set_constraints([wave - x * x - y * y, (x - 0.5) ** 2 + (y - 0.5) ** 2 - 0.5])
        return x, y

    space = {"x": Float(0.0, math.pi), "y": Float(0.0, math.pi)}
    study = airda.create_study(
        space=space, directions=["minimize", "minimize"], strategy=strategy, seed=0
    )
    study.optimize(tnk, n_trials=300)
    front = study.pareto_front()
    # Random search, seeds 0 and 1: fronts of 3 and 7 trials, 3% and 7% of trials 150-299
    # feasible; MOTPE (auto) 20 and 15, 23% and 17%; NSGA-II 7 and 12, 34% and 39%.
    assert len(front) >= 7
    assert all(t.feasible for t in front)
    late = study.trials[150:]
    assert sum(t.feasible for t in late) / len(late) >= 0.15


def test_studies_show_lists_feasible_trials(tmp_path, capsys):
    from airda.cli import main

    db = tmp_path / "c.db"
    study = airda.create_study("c", storage=db, space=SPACE, strategy="random", seed=0)
    for value, c in [(0.1, 1.0), (0.5, -1.0), (0.3, 0.0)]:
        study.tell(study.ask(), value, constraints=[c])
    capsys.readouterr()
    assert main(["studies", "show", "c", "--storage", str(db)]) == 0
    out = capsys.readouterr().out
    assert "3 complete, 1 of them infeasible (violating a constraint)" in out
    assert "best: trial 2, value 0.3" in out
    assert "top 2:" in out


def test_the_export_has_the_constraints(tmp_path):
    pytest.importorskip("pandas")
    study = airda.create_study(space=SPACE, strategy="random", seed=0)
    study.tell(study.ask(), 1.0, constraints=[0.5, -1.0])
    study.tell(study.ask(), 2.0, constraints=[0.0, -1.0])
    df = study.to_dataframe()
    assert df["constraints_0"].tolist() == [0.5, 0.0]
    assert df["feasible"].tolist() == [False, True]

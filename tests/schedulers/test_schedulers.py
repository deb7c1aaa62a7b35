"""Successive halving, ASHA and Hyperband: decisions against hand-computed examples, bracket
assignment, restart survival, and the errors for a study without a budget."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import airda
from airda.schedulers import ASHA, Hyperband, MedianStopping, SuccessiveHalving, rung_steps
from airda.space import Float
from airda.trial import TrialState


def run_curve(study, value_at, max_step, params=None):
    """Run one trial reporting value_at(step) at steps 1..max_step; return the last step run
    and the final state."""
    trial = study.ask(params or {})
    for step in range(1, max_step + 1):
        trial.report(step, value_at(step))
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return step, TrialState.PRUNED
    study.tell(trial, value_at(max_step))
    return max_step, TrialState.COMPLETE


def constant(v):
    return lambda step: v


def test_rung_steps():
    assert rung_steps(1, 27, 3) == [1, 3, 9]
    assert rung_steps(1, 28, 3) == [1, 3, 9, 27]
    assert rung_steps(5, 5, 2) == []
    assert rung_steps(2, 9, 2) == [2, 4, 8]


def test_asha_hand_computed_minimize():
    study = airda.create_study(scheduler=ASHA(1, 27, 3))
    # trial 0 is alone at every rung: continues to the end.
    assert run_curve(study, constant(5.0), 27) == (27, TrialState.COMPLETE)
    # trial 1 is better than trial 0 at every rung (keep max(1, 2 // 3) = 1): continues.
    assert run_curve(study, constant(4.0), 27) == (27, TrialState.COMPLETE)
    # trial 2 ranks 3rd of 3 at rung 1 (keep 1): stopped at step 1.
    assert run_curve(study, constant(6.0), 27) == (1, TrialState.PRUNED)
    # trial 3 ranks 2nd of 4 at rung 1 (keep 1): stopped.
    assert run_curve(study, constant(4.5), 27) == (1, TrialState.PRUNED)
    # trial 4: 3rd of 5 at rung 1 (keep 1): stopped.
    assert run_curve(study, constant(4.2), 27) == (1, TrialState.PRUNED)
    # trial 5: 2nd of 6 at rung 1 (keep 6 // 3 = 2) -> continues; at rung 3 it is 2nd of 3
    # (values 5, 4, 4.1; keep 1) -> stopped at step 3.
    assert run_curve(study, constant(4.1), 27) == (3, TrialState.PRUNED)
    # trial 6: best everywhere.
    assert run_curve(study, constant(1.0), 27) == (27, TrialState.COMPLETE)


def test_asha_uses_value_at_the_rung_not_the_last_step():
    study = airda.create_study(scheduler=ASHA(2, 8, 2))  # rungs 2, 4
    run_curve(study, constant(1.0), 8)
    # Bad at rung 2 (value 9 at step 2), good afterwards: stopped at step 2.
    curve = {1: 0.0, 2: 9.0, 3: 0.0, 4: 0.0}
    assert run_curve(study, lambda s: curve.get(s, 0.0), 8) == (2, TrialState.PRUNED)


def test_asha_ties_go_to_the_earlier_trial_and_maximize():
    study = airda.create_study(scheduler=ASHA(1, 9, 3), direction="maximize")
    assert run_curve(study, constant(0.5), 9) == (9, TrialState.COMPLETE)
    # same value: the earlier trial ranks first, this one is 2nd of 2 (keep 1).
    assert run_curve(study, constant(0.5), 9) == (1, TrialState.PRUNED)
    # higher is better when maximising.
    assert run_curve(study, constant(0.9), 9) == (9, TrialState.COMPLETE)
    # inf ranks last when minimising; -inf last when maximising.
    assert run_curve(study, constant(-math.inf), 9)[1] is TrialState.PRUNED


def test_asha_sparse_reports_meet_every_rung():
    study = airda.create_study(scheduler=ASHA(3, 27, 3))  # rungs 3, 9
    trial = study.ask({})
    for step in (2, 4, 10):  # reaches rung 3 at step 4 and rung 9 at step 10
        trial.report(step, 1.0)
        assert not trial.should_prune()
    study.tell(trial, 1.0)
    t2 = study.ask({})
    t2.report(2, 0.0)
    assert not t2.should_prune()  # not at a rung yet
    t2.report(5, 2.0)  # first step >= 3 is 5: worse than trial 0 at rung 3
    assert t2.should_prune()


def test_successive_halving_compares_within_the_cohort():
    sh = SuccessiveHalving(1, 9, 3, n_trials_per_bracket=3)
    assert sh.rungs_of(None, 0) == [1, 3]
    study = airda.create_study(scheduler=sh)
    assert run_curve(study, constant(1.0), 9) == (9, TrialState.COMPLETE)
    assert run_curve(study, constant(2.0), 9) == (1, TrialState.PRUNED)
    assert run_curve(study, constant(0.5), 9) == (9, TrialState.COMPLETE)
    # trial 3 opens a new cohort: worse than everything before, yet alone in its cohort.
    assert run_curve(study, constant(7.0), 9) == (9, TrialState.COMPLETE)
    # ASHA would have stopped it.
    asha = airda.create_study(scheduler=ASHA(1, 9, 3))
    for v in (1.0, 2.0, 0.5):
        run_curve(asha, constant(v), 9)
    assert run_curve(asha, constant(7.0), 9) == (1, TrialState.PRUNED)


def test_successive_halving_quota_bounds_promotions():
    # n = 9, eta = 3: at most 9 // 3 = 3 trials ahead at rung 1, 9 // 9 = 1 at rung 3.
    sh = SuccessiveHalving(1, 27, 3, n_trials_per_bracket=9)
    study = airda.create_study(scheduler=sh)
    last = [run_curve(study, constant(10.0 - i), 27)[0] for i in range(9)]
    # improving values: each newcomer is the best so far and continues to the end.
    assert last == [27] * 9
    assert sh._keep(9, 0) == 3
    assert sh._keep(9, 1) == 1
    assert sh._keep(2, 0) == 1


def test_hyperband_bracket_assignment():
    hb = Hyperband(1, 27, 3)
    assert hb.n_brackets == 4
    assert hb.bracket_sizes == [27, 12, 6, 4]  # ceil(4/4*27), ceil(4/3*9), ceil(4/2*3), 4
    bounds = [27, 39, 45, 49]
    for n in range(200):
        h = zlib.crc32(str(n).encode()) % 49
        assert hb.bracket_of(n) == next(b for b, top in enumerate(bounds) if h < top)
    assert [hb.bracket_rungs(b) for b in range(4)] == [[1, 3, 9], [3, 9], [9], []]
    # the paper's table for R = 81, eta = 3: n = 81, 34, 15, 8, 5
    assert Hyperband(1, 81, 3).bracket_sizes == [81, 34, 15, 8, 5]


def test_hyperband_compares_within_a_bracket():
    hb = Hyperband(1, 27, 3)
    study = airda.create_study(scheduler=hb)
    by_bracket = {}
    for n in range(12):
        b = hb.bracket_of(n)
        # each trial is worse than all earlier ones: only the first of its bracket survives
        # (and trials of the last bracket, which has no rung).
        last, state = run_curve(study, constant(float(n)), 27)
        first = b not in by_bracket
        by_bracket.setdefault(b, n)
        if first or b == 3:
            assert state is TrialState.COMPLETE, (n, b)
        else:
            assert (state, last) == (TrialState.PRUNED, hb.bracket_rungs(b)[0]), (n, b)


def objective_factory(max_step):
    def objective(trial):
        x = trial["x"]
        for step in range(1, max_step + 1):
            loss = (x - 0.3) ** 2 + 1.0 / step + 0.01 * math.sin(7 * x * step)
            trial.report(step, loss)
            if trial.should_prune():
                raise airda.TrialPruned()
        return loss

    return objective


@pytest.mark.parametrize(
    ("make", "strategy"),
    [
        (lambda: ASHA(1, 27, 3), "random"),
        (lambda: SuccessiveHalving(1, 27, 3, n_trials_per_bracket=9), "random"),
        (lambda: Hyperband(1, 27, 3), "random"),
        (lambda: Hyperband(1, 27, 3), "bohb"),
    ],
    ids=["asha", "sh", "hyperband", "hyperband-bohb"],
)
def test_decisions_survive_a_restart(tmp_path, make, strategy):
    space = {"x": Float(0, 1)}
    objective = objective_factory(27)

    def record(study):
        return [(t.params, t.state, t.intermediate, t.values) for t in study.trials]

    def create(db):
        return airda.create_study(
            "s", storage=db, space=space, scheduler=make(), strategy=strategy, seed=3
        )

    one = create(tmp_path / "a.db")
    one.optimize(objective, n_trials=24)
    two = create(tmp_path / "b.db")
    two.optimize(objective, n_trials=11)
    two.storage.close()
    again = airda.load_study("s", storage=tmp_path / "b.db", scheduler=make())
    again.optimize(objective, n_trials=13)
    assert record(again) == record(one)
    assert sum(t.state is TrialState.PRUNED for t in one.trials) > 5


def test_missing_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="max_resource is required"):
        ASHA(min_resource=1)
    with pytest.raises(ValueError, match="max_resource is required"):
        Hyperband()
    with pytest.raises(ValueError, match="reduction_factor"):
        ASHA(1, 9, reduction_factor=1)
    with pytest.raises(ValueError, match="must be >= min_resource"):
        SuccessiveHalving(10, 9)
    study = airda.create_study(scheduler=ASHA(1, 9))
    trial = study.ask({})
    with pytest.raises(ValueError, match=r"trial 0: ASHA decides on a budget.*trial.report"):
        trial.should_prune()
    trial.report(10, 1.0)
    with pytest.raises(ValueError, match="trial 0 reported step 10, beyond max_resource=9"):
        trial.should_prune()
    # The median rule keeps its old behaviour: no report, no decision.
    study = airda.create_study(scheduler=MedianStopping())
    assert not study.ask({}).should_prune()


def test_nan_report_fails_the_trial_and_the_study_goes_on():
    def objective(trial):
        trial.report(1, float("nan") if trial.number == 1 else 1.0)
        if trial.should_prune():
            raise airda.TrialPruned()
        return 1.0

    study = airda.create_study(scheduler=ASHA(1, 3))
    study.optimize(objective, n_trials=3)
    states = [t.state for t in study.trials]
    assert states[1] is TrialState.FAIL
    assert "NaN" in study.trials[1].error
    assert states[0] is TrialState.COMPLETE
    assert len(states) == 3


def test_multi_objective_is_refused():
    study = airda.create_study(directions=["minimize", "minimize"], scheduler=ASHA(1, 9))
    trial = study.ask({})
    trial.report(1, 1.0)
    with pytest.raises(ValueError, match="one objective"):
        trial.should_prune()


def _told(strategy, number, params, curve, state=TrialState.COMPLETE):
    from airda.trial import FrozenTrial

    last = max(curve)
    strategy.tell(
        FrozenTrial(
            number=number,
            state=state,
            params=params,
            values=(curve[last],) if state is TrialState.COMPLETE else None,
            intermediate=dict(curve),
        )
    )


def test_bohb_models_the_largest_budget_with_enough_points():
    from airda.space import Space
    from airda.strategies import BOHB

    bohb = BOHB(random_fraction=0.0, seed=0)
    bohb.setup(Space({"x": Float(0, 1)}), ("minimize",))
    assert bohb.model_budget() is None  # no data: proposals are random
    assert 0 <= bohb.ask(1)[0]["x"] <= 1
    for i in range(10):  # 10 points at budget 1
        _told(bohb, i, {"x": i / 9}, {1: (i / 9 - 0.7) ** 2}, TrialState.PRUNED)
    assert bohb.model_budget() == 1
    for i in range(3):  # dim 1 -> 2 points a density, 4 observations needed
        _told(bohb, 10 + i, {"x": i / 2}, {1: 1.0, 3: (i / 2 - 0.7) ** 2})
    assert bohb.model_budget() == 1
    _told(bohb, 13, {"x": 0.7}, {1: 0.0, 3: 0.0})
    assert bohb.model_budget() == 3


def test_bohb_proposals_concentrate_where_the_good_points_are():
    from airda.space import Space
    from airda.strategies import BOHB

    bohb = BOHB(random_fraction=0.0, seed=1)
    bohb.setup(Space({"x": Float(0, 1), "y": Float(0, 1)}), ("maximize",))
    rng = np.random.default_rng(0)
    for i in range(60):
        x, y = rng.random(2)
        _told(bohb, i, {"x": x, "y": y}, {9: -((x - 0.2) ** 2) - (y - 0.8) ** 2})
    asks = bohb.ask(20)
    dist = [math.hypot(a["x"] - 0.2, a["y"] - 0.8) for a in asks]
    # The 9 best of the 60 points lie 0.10 to 0.21 from the optimum; uniform draws ~0.45.
    assert np.median(dist) < 0.25
    uniform = rng.random((200, 2))
    assert np.median(dist) < 0.6 * np.median(np.hypot(uniform[:, 0] - 0.2, uniform[:, 1] - 0.8))
    with pytest.raises(ValueError, match="top_n_percent"):
        BOHB(top_n_percent=0)


def test_bohb_density_is_the_untruncated_kde_through_ops_parzen():
    # BOHB scores with ops.parzen; its kernels are plain (untruncated) Gaussians, averaged.
    from airda.strategies.bohb import _log_kde

    rng = np.random.default_rng(3)
    for d, n in ((1, 1), (3, 7), (6, 25)):
        centres, points = rng.random((n, d)), rng.random((40, d))
        bw = np.maximum(rng.random(d) * 0.3, 1e-3)
        z = (points[:, None, :] - centres[None, :, :]) / bw
        direct = np.log(
            np.mean(np.exp(-0.5 * (z**2).sum(2)), axis=1) / np.prod(bw) / (2 * np.pi) ** (d / 2)
        )
        np.testing.assert_allclose(_log_kde(points, centres, bw), direct, rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: ASHA(1, 27, 3), lambda: Hyperband(1, 27, 3)])
def test_a_reloaded_study_judges_a_running_trial_the_same(tmp_path, make):
    from airda.schedulers import TrialHistory
    from airda.study import Trial

    space = {"x": Float(0, 1)}
    db = tmp_path / "s.db"
    one = airda.create_study("s", storage=db, space=space, scheduler=make(), seed=1)
    one.optimize(objective_factory(27), n_trials=20)
    decisions = {}
    for x in (0.05, 0.3, 0.9):
        trial = one.ask({"x": x})
        for step in range(1, 10):
            trial.report(step, (x - 0.3) ** 2 + 1.0 / step)
            decisions[(trial.number, step)] = trial.should_prune()
        # a second process loads the study mid-run and judges the running trial from storage
        two = airda.load_study("s", storage=db, scheduler=make())
        frozen = two.get_trial(trial.number)
        for step in range(1, 10):
            live = Trial(two, frozen)
            live.intermediate = {s: v for s, v in frozen.intermediate.items() if s <= step}
            history = TrialHistory(two.directions, two.trials)
            assert two.scheduler.should_prune(history, live) == decisions[(trial.number, step)]
    assert any(decisions.values())
    assert not all(decisions.values())

"""OptunaSampler: airda strategies driving real Optuna studies (skipped without optuna)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install optuna)")

from airda.hpo import OptunaSampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def mixed(t):
    c = t.suggest_categorical("c", ["a", "b", None, 3])
    x = t.suggest_float("x", 1e-3, 10.0, log=True)
    n = t.suggest_int("n", 0, 20, step=2)
    k = t.suggest_int("k", 1, 64, log=True)
    s = t.suggest_float("s", 0.0, 1.0, step=0.1)
    value = math.log10(x) ** 2 + abs(n - 8) / 4 + (c != "b") + s + abs(math.log2(k) - 3) / 3
    if c == "a":  # define-by-run: a branch with its own parameter
        value += t.suggest_float("extra", 0.0, 1.0)
    return value


def run(sampler, objective=mixed, n_trials=50, **kw):
    study = optuna.create_study(sampler=sampler, **kw)
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


@pytest.mark.parametrize("strategy", ["tpe", "random", "rea", "halton"])
def test_strategies_drive_an_optuna_study(strategy):
    study = run(OptunaSampler(strategy, seed=0))
    assert len(study.trials) == 50
    for t in study.trials:
        for name, value in t.params.items():
            assert t.distributions[name]._contains(t.distributions[name].to_internal_repr(value))
    assert study.best_value < 3.0


def test_relative_params_come_from_the_strategy():
    sampler = OptunaSampler("tpe", seed=1, n_startup_trials=5)
    run(sampler, n_trials=30)
    strategy = sampler.strategy
    assert strategy is not None
    assert sorted(strategy.space.names) == ["c", "k", "n", "s", "x"]  # "extra" is conditional
    assert strategy._n_finished >= 25  # the study's finished trials were told


def test_tpe_beats_random_sampling_in_optuna():
    def sphere(t):
        return sum((t.suggest_float(f"x{i}", -3, 3) - 1) ** 2 for i in range(3))

    wins = 0
    for seed in range(8):
        ours = run(OptunaSampler("tpe", seed=seed), sphere, n_trials=60).best_value
        rnd = run(optuna.samplers.RandomSampler(seed=seed), sphere, n_trials=60).best_value
        wins += ours < rnd
    assert wins >= 7  # 7 or more of 8 by chance: probability 0.035


def test_seeded_studies_repeat():
    a = run(OptunaSampler("tpe", seed=3), n_trials=30)
    b = run(OptunaSampler("tpe", seed=3), n_trials=30)
    c = run(OptunaSampler("tpe", seed=4), n_trials=30)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_pruned_and_failed_trials_are_told():
    def objective(t):
        value = mixed(t)
        t.report(1, value)
        if t.number % 5 == 3:
            raise optuna.TrialPruned
        if t.number % 5 == 4:
            raise RuntimeError("boom")
        if t.number % 7 == 6:
            return float("nan")
        return value

    sampler = OptunaSampler("tpe", seed=2, n_startup_trials=5)
    study = run(sampler, objective, n_trials=40)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.PRUNED in states
    assert optuna.trial.TrialState.FAIL in states
    assert study.best_value < 3.0


def test_multi_objective_with_motpe():
    def two(t):
        x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
        return x, (1 - x) + y

    study = run(OptunaSampler("motpe", seed=0), two, n_trials=40, directions=["minimize"] * 2)
    assert len(study.best_trials) >= 3


def test_constant_liar_sees_running_trials():
    sampler = OptunaSampler("tpe", seed=0, n_startup_trials=3)
    study = run(sampler, lambda t: (t.suggest_float("x", 0, 1) - 0.5) ** 2, n_trials=10)
    running = [study.ask() for _ in range(4)]
    xs = [t.suggest_float("x", 0, 1) for t in running]
    assert len(set(xs)) == 4
    assert int((sampler.strategy._tier[: sampler.strategy._n] == 2).sum()) >= 3


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown strategy"):
        OptunaSampler("nope")
    with pytest.raises(ValueError, match="gamma"):
        OptunaSampler("tpe", gamma=2.0)
    from airda.hpo import TPE

    with pytest.raises(ValueError, match="by name"):
        OptunaSampler(TPE())


def test_clear_import_error_without_optuna():
    probe = (
        "import sys; sys.modules['optuna'] = None\n"
        "from airda.hpo import OptunaSampler\n"
        "try:\n    OptunaSampler('tpe')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "pip install optuna" in out.stdout


def test_no_warnings_from_the_sampler():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(OptunaSampler("tpe", seed=0), n_trials=15)


def test_module_docstring_example_runs():
    import doctest

    import airda.hpo.optuna_sampler as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0

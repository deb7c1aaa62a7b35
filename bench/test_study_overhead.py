"""Per-trial overhead of the study loop: random search, a trivial objective, in memory and on
SQLite, against Optuna (RandomSampler; in-memory and RDB SQLite storage) in the same run.
Targets: airda SQLite <= 1/5 of Optuna SQLite; airda in-memory <= 1/2 of Optuna in-memory."""

from __future__ import annotations

import itertools
import logging

import pytest

import airda
from airda.space import Categorical, Float, Int

SIZES = (1_000, 10_000)
_names = itertools.count()


def airda_objective(trial):
    return trial["x"] + trial["y"] + (trial["c"] == "b")


def airda_run(n: int, storage) -> None:
    space = {"x": Float(-1.0, 1.0), "y": Int(0, 10), "c": Categorical(["a", "b", "c"])}
    study = airda.create_study(
        f"bench-{next(_names)}",
        storage=storage,
        space=space,
        strategy="random",
        seed=0,
        cache=False,
    )
    study.optimize(airda_objective, n_trials=n, show_progress=False)
    assert len(study.trials) == n


def optuna_objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    y = trial.suggest_int("y", 0, 10)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return x + y + (c == "b")


def optuna_run(n: int, storage) -> None:
    import optuna

    study = optuna.create_study(
        study_name=f"bench-{next(_names)}",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(optuna_objective, n_trials=n)
    assert len(study.trials) == n


@pytest.fixture(scope="module")
def optuna():
    optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install optuna)")
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def rounds(n: int) -> int:
    return 3 if n <= 1_000 else 1


@pytest.mark.parametrize("n", SIZES)
def test_airda_in_memory(timed, n):
    timed(
        f"study loop {n} trials, in memory", "airda in-memory", airda_run, n, None, rounds=rounds(n)
    )


@pytest.mark.parametrize("n", SIZES)
def test_optuna_in_memory(timed, optuna, n):
    timed(
        f"study loop {n} trials, in memory",
        "optuna in-memory",
        optuna_run,
        n,
        None,
        rounds=rounds(n),
        baseline=True,
    )


@pytest.mark.parametrize("n", SIZES)
def test_airda_sqlite(timed, tmp_path, n):
    timed(
        f"study loop {n} trials, SQLite",
        "airda SQLite",
        airda_run,
        n,
        str(tmp_path / "airda.db"),
        rounds=rounds(n),
    )


@pytest.mark.parametrize("n", SIZES)
def test_optuna_sqlite(timed, optuna, tmp_path, n):
    timed(
        f"study loop {n} trials, SQLite",
        "optuna SQLite (RDB)",
        optuna_run,
        n,
        f"sqlite:///{tmp_path / 'optuna.db'}",
        rounds=rounds(n),
        baseline=True,
    )

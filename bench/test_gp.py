"""GP Bayesian optimisation: one ask with 200 completed trials (Hartmann-6), airda's
GaussianProcessSearch (NumPy/SciPy) against Optuna's GPSampler (torch), in the same run.

The histories start as the same 200 random points. Each round is ten asks (hyperparameter fit
and acquisition optimisation), each followed by a tell, so that a round includes airda's
periodic full hyperparameter fit (every 10 results) and the time per round is the amortised
cost of ten trials; the untimed warm-up round pays the one-off costs (imports, airda's chain
of full fits over the initial history). Optuna's GPSampler is the baseline. Target: airda at
least 3x faster.
"""

from __future__ import annotations

import numpy as np
import pytest

import airda
from airda.hpo.functions import get_function
from airda.strategies.gp import GaussianProcessSearch

N_HISTORY = 200
ASKS_PER_ROUND = 10


def history() -> tuple[object, np.ndarray, np.ndarray]:
    f = get_function("hartmann6")
    x = np.random.default_rng(0).random((N_HISTORY, 6))
    return f, x, f(x)


def optuna_ask():
    optuna = pytest.importorskip(
        "optuna", reason="optuna is not installed (pip install airda[bench])"
    )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    f, x, y = history()
    names = [f"x{i}" for i in range(6)]
    dists = {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in names}
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
    for row, value in zip(x, y, strict=True):
        study.add_trial(
            optuna.trial.create_trial(
                params=dict(zip(names, map(float, row), strict=True)),
                distributions=dists,
                value=float(value),
            )
        )

    def ask() -> None:
        for _ in range(ASKS_PER_ROUND):
            trial = study.ask(dists)
            study.tell(trial, f.objective(trial.params))

    return ask


def airda_ask():
    f, x, y = history()
    names = [f"x{i}" for i in range(6)]
    study = airda.create_study(space=f.space(), strategy=GaussianProcessSearch(seed=0))
    for row, value in zip(x, y, strict=True):
        trial = study.ask(fixed=dict(zip(names, map(float, row), strict=True)))
        study.tell(trial, float(value))

    def ask() -> None:
        for _ in range(ASKS_PER_ROUND):
            trial = study.ask()
            study.tell(trial, f.objective(trial.params))

    return ask


@pytest.mark.parametrize("entry", ["optuna GPSampler", "airda gp"])
def test_gp_ask_at_200_trials(timed, entry: str) -> None:
    ask = optuna_ask() if entry.startswith("optuna") else airda_ask()
    timed("gp 10 asks @200 trials", entry, ask, rounds=3, baseline=entry.startswith("optuna"))

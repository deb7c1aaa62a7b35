"""REINFORCE, the predictor-guided strategy and zero-cost warm starting, beyond conformance;
the package's layout: the lazy name registry, the layer rule, the deprecated old paths."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import airda
import airda.strategies
from airda.space import Categorical, Float
from airda.strategies import (
    _ALIASES,
    STRATEGIES,
    PredictorGuided,
    Reinforce,
    Strategy,
    WarmStart,
    get_strategy,
)

SPACE = {f"x{i}": Categorical([0, 1, 2, 3, 4]) for i in range(6)}


def bowl(trial):
    return float(sum((v - 2) ** 2 for v in trial.params.values()))


def test_reinforce_policy_concentrates_on_the_best_choices():
    strategy = Reinforce(learning_rate=0.05, seed=0)
    study = airda.create_study(space=SPACE, strategy=strategy)
    study.optimize(bowl, n_trials=300)
    probs = strategy.probabilities()
    assert all(int(np.argmax(p)) == 2 for p in probs.values())
    assert study.best_value == 0.0


def test_reinforce_bins_continuous_ranges_and_respects_conditions():
    space = {
        "opt": Categorical(["sgd", "adam"]),
        "momentum": Float(0.0, 0.9, when={"opt": "sgd"}),
        "lr": Float(1e-4, 1e-1, log=True),
    }
    strategy = Reinforce(bins=8, seed=1)
    study = airda.create_study(space=space, strategy=strategy)
    study.optimize(lambda t: abs(np.log10(t["lr"]) + 2), n_trials=40)
    lrs = {t.params["lr"] for t in study.trials}
    assert len(lrs) <= 8
    assert all(("momentum" in t.params) == (t.params["opt"] == "sgd") for t in study.trials)
    with pytest.raises(ValueError, match="bins"):
        Reinforce(bins=1)
    with pytest.raises(ValueError, match="one objective"):
        airda.create_study(space=SPACE, strategy="reinforce", directions=["minimize"] * 2)


def test_predictor_finds_the_optimum_faster_than_random():
    found = {"predictor": [], "random": []}
    for seed in range(3):
        for name in found:
            study = airda.create_study(space=SPACE, strategy=get_strategy(name, seed=seed))
            study.optimize(bowl, n_trials=40)
            found[name].append(study.best_value)
    assert np.mean(found["predictor"]) < np.mean(found["random"])
    assert min(found["predictor"]) == 0.0


def test_predictor_never_repeats_and_takes_an_encoder():
    calls = []

    def encoder(params):
        calls.append(1)
        return [float(v) for v in params.values()]

    strategy = PredictorGuided(n_initial=5, pool=50, encoder=encoder, seed=0)
    study = airda.create_study(space=SPACE, strategy=strategy)
    study.optimize(bowl, n_trials=30)
    keys = [tuple(t.params.values()) for t in study.trials]
    assert len(set(keys)) == len(keys)
    assert calls
    with pytest.raises(ValueError, match="pool"):
        PredictorGuided(pool=0)


def test_warm_start_evaluates_the_best_scored_first_then_delegates(tmp_path):
    scored = []

    def proxy(pool):
        scored.append(len(pool))
        return [-sum(p.values()) for p in pool]

    def make():
        return WarmStart("rea", proxy, pool=300, n_warm=6, seed=3)

    study = airda.create_study("ws", storage=str(tmp_path / "a.db"), space=SPACE, strategy=make())
    study.optimize(bowl, n_trials=6)
    warm = [sum(t.params.values()) for t in study.trials]
    assert warm == sorted(warm)  # best proxy score first
    assert scored == [300]
    study.optimize(bowl, n_trials=10)
    assert len(study.trials) == 16
    # a fresh process continues identically (the pool is a function of the seed)
    whole = airda.create_study(space=SPACE, strategy=make())
    whole.optimize(bowl, n_trials=16)
    assert [t.params for t in whole.trials] == [t.params for t in study.trials]
    with pytest.raises(ValueError, match="n_warm"):
        WarmStart("random", proxy, pool=5, n_warm=10)
    with pytest.raises(TypeError, match="callable"):
        WarmStart("random", "not a function")


# ---- the package's layout ---------------------------------------------------------------

STRATEGIES_DIR = Path(airda.strategies.__file__).parent
# Packages above the strategy layer (and its sibling, the schedulers).
HIGHER = (
    "airda.hpo",
    "airda.study",
    "airda.executor",
    "airda.schedulers",
    "airda.nas",
    "airda.codeopt",
    "airda.eval",
    "airda.cli",
    "airda.testing",
    "airda.examples",
)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_import_airda_strategies_loads_no_algorithm():
    probe = "import sys, airda.strategies; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = out.stdout.split()
    assert [m for m in loaded if m.startswith("airda.strategies.")] == ["airda.strategies.base"]
    assert not [m for m in loaded if m.startswith(("airda.ops", "scipy", *HIGHER))]


def test_registry_names_every_class_and_loads_it_on_lookup():
    names = sorted(STRATEGIES)
    assert len(names) >= 16
    for name in names:
        cls = STRATEGIES[name]
        assert issubclass(cls, Strategy)
        assert cls.name == name
        assert getattr(airda.strategies, cls.__name__) is cls  # airda.strategies.TPE, ...
    for alias, name in _ALIASES.items():
        assert type(get_strategy(alias, seed=0)) is STRATEGIES[name]
    with pytest.raises(AttributeError, match="NoSuchStrategy"):
        _ = airda.strategies.NoSuchStrategy


def test_a_plug_in_registers_a_class_or_a_lazy_path(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "mine", "airda.strategies.simple:RandomSearch")
    assert "mine" in STRATEGIES
    assert "mine" in sorted(STRATEGIES)
    assert type(get_strategy("mine", seed=0)).__name__ == "RandomSearch"
    monkeypatch.setitem(STRATEGIES, "broken", "airda.strategies.simple")
    with pytest.raises(ValueError, match="module:Class"):
        get_strategy("broken")


def test_the_docstring_table_lists_every_name_and_alias():
    doc = airda.strategies.__doc__
    for name in STRATEGIES:
        assert f"``{name}``" in doc
        assert f":class:`{STRATEGIES[name].__name__}`" in doc
    for alias in _ALIASES:
        assert f"``{alias}``" in doc


@pytest.mark.parametrize("path", sorted(STRATEGIES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_strategy_modules_import_only_the_interface_and_lower_layers(path):
    own_ok = {"airda.strategies", "airda.strategies.base", "airda.strategies.segments"}
    for module in _imports(path):
        assert not module.startswith(HIGHER), f"{path.name} imports {module}"
        # auto.py is the one composer: it runs the other strategies by design
        if module.startswith("airda.strategies.") and path.name not in ("__init__.py", "auto.py"):
            leaf = module.rsplit(".", 1)[1]
            assert module in own_ok or leaf.startswith("_"), f"{path.name} imports {module}"


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("tpe", "tpe", ["TPE", "MOTPE", "_default_weights"]),
        ("gp", "gp", ["GaussianProcessSearch", "log_h"]),
        ("cmaes", "cmaes", ["CmaEs", "_norm_cdf"]),
        ("nsga2", "nsga2", ["NSGA2"]),
    ],
)
def test_old_hpo_paths_still_work_with_a_warning(monkeypatch, old, new, names):
    import airda.hpo

    monkeypatch.delitem(sys.modules, f"airda.hpo.{old}", raising=False)
    # vars(), not delattr: hasattr would import the shim through airda.hpo.__getattr__
    monkeypatch.delitem(vars(airda.hpo), old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"airda.strategies.{new}"):
        shim = importlib.import_module(f"airda.hpo.{old}")
    target = importlib.import_module(f"airda.strategies.{new}")
    for name in names:
        assert getattr(shim, name) is getattr(target, name)
    assert not hasattr(shim, "__path__")
    # the domain package keeps its exports, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert airda.hpo.TPE is airda.strategies.TPE
        assert airda.hpo.GaussianProcessSearch is airda.strategies.GaussianProcessSearch


def test_schedulers_no_longer_export_strategies():
    import airda.schedulers

    assert "BOHB" not in airda.schedulers.__all__
    assert "PopulationBasedTraining" not in airda.schedulers.__all__
    for name in ("BOHB", "PopulationBasedTraining"):
        with pytest.warns(DeprecationWarning, match="airda.strategies"):
            assert getattr(airda.schedulers, name) is getattr(airda.strategies, name)
    with pytest.raises(AttributeError):
        _ = airda.schedulers.NoSuchThing

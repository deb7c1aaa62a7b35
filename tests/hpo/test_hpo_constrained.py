"""bench/hpo_constrained.py runs end to end in its --quick mode, streams and merges its runs,
and its problems are what they claim (the published optima are feasible and reached)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests import bench_scripts


def load():
    return bench_scripts.load("hpo_constrained")


def test_quick_run_and_merge(tmp_path, capsys) -> None:
    bench = load()
    runs = tmp_path / "runs.jsonl"
    assert bench.main(["--quick", "--runs", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "Median regret after 20 trials" in text
    assert "| auto vs tpe | 20 | all | 2 |" in text
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(rows) == 4  # 2 problems x 1 seed x 2 samplers
    for r in rows:
        assert 0.0 <= r["regret"]["20"] <= r["regret"]["10"]
    assert bench.main(["--merge", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


# Published optima and where they are reached.
KNOWN = {
    "rosenbrock-disk-2": [1.0, 1.0],
    "rosenbrock-cubic-2": [1.0, 1.0],
    "mishra-bird-2": [-3.1302468, -1.5821422],
    "gomez-levy-2": [0.089842, -0.712656],
    "simionescu-2": [0.84852813, -0.84852813],
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_published_optima_are_feasible_and_reached(name) -> None:
    bench = load()
    p = next(q for q in bench.problems() if q.name == name)
    x = np.array(KNOWN[name])
    assert max(p.cx(x)) <= 1e-5
    assert math.isclose(p.fx(x), p.optimum, abs_tol=1e-5)
    # and the unconstrained optimum is not feasible (the constraints matter) where known
    if name.startswith("rosenbrock"):
        assert p.fx(x) == 0.0


def test_reference_optimum_of_the_spring_matches_the_literature() -> None:
    bench = load()
    p = next(q for q in bench.problems() if q.name == "spring-3")
    assert math.isclose(bench.reference_optimum(p, starts=60), 0.0126652, rel_tol=1e-4)


def test_optuna_peers_take_constraints() -> None:
    pytest.importorskip("optuna", reason="optuna is not installed (the peer compared against)")
    bench = load()
    p = next(q for q in bench.problems() if q.name == "rosenbrock-disk-2")
    r = bench.run("optuna-tpe", p, seed=0, n=15, optimum=0.0)
    assert r["regrets"].shape == (15,)
    assert (r["regrets"] >= 0).all()

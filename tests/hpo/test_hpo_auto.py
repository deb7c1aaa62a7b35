"""bench/hpo_auto.py runs end to end in its --quick mode, streams its runs and merges them."""

from __future__ import annotations

import json

import pytest

from tests import bench_scripts


def load():
    return bench_scripts.load("hpo_auto")


def test_quick_run_and_merge(tmp_path, capsys) -> None:
    bench = load()
    runs = tmp_path / "runs.jsonl"
    assert bench.main(["--quick", "--runs", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "Median regret after 20 trials" in text
    assert "| auto vs random | 20 | all | 6 |" in text
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(rows) == 12  # 3 problems x 2 seeds x 2 samplers
    assert {r["group"] for r in rows} == {"dim<=5", "mixed", "conditional"}
    for r in rows:
        assert r["regret"]["20"] <= r["regret"]["10"]
        assert r["regret"]["20"] >= 0.0
    assert bench.main(["--merge", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


def test_optuna_peers_and_define_by_run() -> None:
    """Optuna asks the same space (conditions by define-by-run) and its runs are recorded."""
    pytest.importorskip("optuna", reason="optuna is not installed (the peer compared against)")
    bench = load()
    problems, _ = bench.suite(["quick"])
    cond = next(p for p in problems if p.group == "conditional")
    r = bench.run("optuna-tpe", cond, seed=0, n=12)
    assert r["regrets"].shape == (12,)
    assert (r["regrets"] >= 0).all()
    mixed = next(p for p in problems if p.group == "mixed")
    assert bench.run("optuna-tpe", mixed, seed=0, n=5)["regrets"][-1] >= 0


def test_timing_table(capsys) -> None:
    bench = load()
    assert bench.main(["--suite", "quick", "--timing", "5,12"]) == 0
    text = capsys.readouterr().out
    assert "| 12 | gp |" in text

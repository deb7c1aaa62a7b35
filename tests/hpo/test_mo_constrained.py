"""bench/mo_constrained.py runs end to end in its --quick mode, streams and merges its runs;
its problems' constraints cut the box as published."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests import bench_scripts


def load():
    return bench_scripts.load("mo_constrained")


def test_quick_run_and_merge(tmp_path, capsys) -> None:
    bench = load()
    runs = tmp_path / "runs.jsonl"
    assert bench.main(["--quick", "--runs", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "Median 1 - HV/HV* after 60 trials" in text
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(rows) == 4  # 2 problems x 1 seed x 2 samplers
    for r in rows:
        assert 0.0 <= r["hv"]["30"] <= r["hv"]["60"]
    assert bench.main(["--merge", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


@pytest.mark.parametrize(
    ("name", "share"),
    [("bnh", (0.9, 1.0)), ("tnk", (0.05, 0.12)), ("srn", (0.1, 0.3)), ("osy", (0.0, 0.1))],
)
def test_feasible_shares_of_the_box(name, share) -> None:
    bench = load()
    p = next(q for q in bench.PROBLEMS if q.name == name)
    rng = np.random.default_rng(0)
    lo = np.array([b[0] for b in p.bounds])
    hi = np.array([b[1] for b in p.bounds])
    xs = lo + rng.random((4000, len(lo))) * (hi - lo)
    feasible = np.mean([max(p.c(x)) <= 0 for x in xs])
    assert share[0] <= feasible <= share[1], feasible


def test_the_hypervolume_of_a_known_front() -> None:
    bench = load()
    assert bench.hypervolume([(0.0, 1.0), (1.0, 0.0), (3.0, 3.0)], (2.0, 2.0)) == 3.0
    assert bench.hypervolume([], (1.0, 1.0)) == 0.0

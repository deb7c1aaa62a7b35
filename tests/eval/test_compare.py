"""compare / compare_many: verdicts, corrections, notes, bad input; the CLI's compare."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import airda
from airda import eval as ae
from airda.cli import main
from airda.space import Float

BASE = [0.80, 0.81, 0.79, 0.80, 0.82, 0.81, 0.80, 0.79, 0.81, 0.80]


def test_clear_improvement_is_better_and_its_reverse_worse():
    new = [b + 0.02 + 0.001 * i for i, b in enumerate(BASE)]
    c = ae.compare(new, BASE, n_resamples=2000)
    assert c.verdict == "better"
    assert c.effect == pytest.approx(np.mean(new) - np.mean(BASE))
    assert c.low > 0
    assert c.p_value < 0.01
    assert c.probability_of_improvement > 0.8
    assert "paired permutation test (exact, 1024 arrangements)" in str(c)
    assert ae.compare(BASE, new, n_resamples=2000).verdict == "worse"
    # for losses, lower is better: the larger scores are worse
    assert ae.compare(new, BASE, higher_is_better=False, n_resamples=2000).verdict == "worse"


def test_noise_is_no_detectable_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(0.8, 0.01, 30)
    b = a + rng.normal(0.0, 0.01, 30)
    c = ae.compare(b, a, n_resamples=2000)
    assert c.verdict == "no detectable difference"
    assert c.low < 0 < c.high


@pytest.mark.parametrize("test", ["wilcoxon", "sign"])
def test_other_paired_tests(test):
    new = [b + 0.02 for b in BASE]
    c = ae.compare(new, BASE, test=test, n_resamples=2000)
    assert c.verdict == "better"
    assert test.split()[0].lower() in c.test.lower()


def test_large_samples_and_few_resamples():
    rng = np.random.default_rng(3)
    a = rng.normal(0.8, 0.05, 5000)
    b = a - 0.01 + rng.normal(0, 0.01, 5000)
    c = ae.compare(a, b, n_resamples=300)
    assert c.verdict == "better"
    assert "300 random sign flips" in c.test
    u = ae.compare(a[:300], b[:400], paired=False, n_resamples=300)
    assert u.n_baseline == 400
    few = ae.compare(a[:50], b[:50], n_resamples=20)
    assert any("raise n_resamples" in note for note in few.notes)  # 2/21 > 0.05


def test_too_few_runs_say_so():
    c = ae.compare([0.9, 0.91, 0.92, 0.93], [0.8, 0.8, 0.8, 0.8], n_resamples=500)
    assert c.verdict == "no detectable difference"
    assert any("smallest attainable p-value is 0.125" in note for note in c.notes)
    with pytest.raises(ValueError, match="at least 3"):
        ae.compare([1.0, 2.0], [0.0, 1.0])


def test_unpaired_and_bad_input():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.1, 12), rng.normal(0.8, 0.1, 9)
    c = ae.compare(a, b, paired=False, n_resamples=2000)
    assert c.verdict == "better"
    assert not c.paired
    assert "n = 12 vs 9" in str(c)
    with pytest.raises(ValueError, match="paired=False"):
        ae.compare(a, b)
    with pytest.raises(ValueError, match="needs paired"):
        ae.compare(a, b, paired=False, test="wilcoxon")
    with pytest.raises(ValueError, match="NaN"):
        ae.compare([1, 2, math.nan, 4], [0, 1, 2, 3])
    r = ae.compare([1, 2, math.nan, 4, 5], [0, 1, 2, 3, 4], nan_policy="omit", n_resamples=500)
    assert r.n_excluded == 1
    assert r.n_candidate == 4
    assert any("excluded" in note for note in r.notes)


def test_compare_many_adjusts_for_multiplicity_and_attaches(tmp_path):
    rng = np.random.default_rng(2)
    runs = {f"c{i}": [b + rng.normal(0.004, 0.01) for b in BASE] for i in range(4)}
    runs["good"] = [b + 0.03 for b in BASE]
    out = ae.compare_many(runs, BASE, n_resamples=2000)
    assert out["good"].verdict == "better"
    for c in out.values():
        assert c.p_adjusted >= c.p_value
        assert c.n_comparisons == 5
    assert "holm-adjusted over 5" in str(out["good"])
    raw = np.array([c.p_value for c in out.values()])
    assert [c.p_adjusted for c in out.values()] == pytest.approx(ae.holm(raw).tolist())
    study = airda.create_study(
        "cmp", storage=str(tmp_path / "c.db"), space={"x": Float(0, 1)}, seed=0
    )
    out["good"].attach(study)
    stored = airda.load_study("cmp", storage=str(tmp_path / "c.db")).user_attrs
    assert stored["airda.eval.comparisons"]["good"]["verdict"] == "better"
    json.dumps(out["good"].to_dict())
    with pytest.raises(TypeError, match="unknown option"):
        ae.compare_many(runs, BASE, colour="red")
    with pytest.raises(ValueError, match="correction"):
        ae.compare_many(runs, BASE, correction="sidak")


def test_cli_compare(tmp_path, capsys):
    new = tmp_path / "new.txt"
    old = tmp_path / "old.csv"
    new.write_text("\n".join(str(b + 0.02) for b in BASE))
    old.write_text("run,acc\n" + "\n".join(f"{i},{b}" for i, b in enumerate(BASE)))
    (tmp_path / "new.csv").write_text(
        "run,acc\n" + "\n".join(f"{i},{b + 0.02}" for i, b in enumerate(BASE))
    )
    assert main(["eval", "compare", str(tmp_path / "new.csv"), str(old), "--column", "acc"]) == 0
    out = capsys.readouterr().out
    assert "new: better" in out
    assert "assumptions:" in out
    assert main(["eval", "compare", str(new), str(old), "--column", "acc"]) == 1
    assert "no column 'acc'" in capsys.readouterr().err
    code = main(["eval", "compare", str(tmp_path / "new.csv"), str(old), "--column", "1", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "better"

"""Final re-evaluation of a study's winners, the winner's curse, reports and `airda eval report`."""

from __future__ import annotations

import math

import pytest

import airda
from airda import eval as ae
from airda.cli import main
from airda.space import Float


def _searched(tmp_path, n_trials=30):
    study = airda.create_study(
        "search",
        storage=str(tmp_path / "s.db"),
        space={"x": Float(0, 1)},
        direction="maximize",
        strategy="random",
        seed=0,
    )
    # validation score: the true score plus a fixed per-candidate noise that the search exploits
    study.optimize(lambda t: _true(t["x"]) + _noise(t["x"]), n_trials=n_trials)
    return study


def _true(x):
    return 1.0 - (x - 0.4) ** 2


def _noise(x):
    return 0.05 * math.sin(997.0 * x)


def _held_out(params, seed):
    # a fresh draw of the noise per seed: no candidate keeps its lucky validation draw
    return _true(params["x"]) + 0.002 * math.sin(31.0 * seed + 7.0 * params["x"])


def test_locked_until_the_search_is_finished(tmp_path):
    study = _searched(tmp_path, 5)
    with pytest.raises(ae.LockedSplitError, match="finish_search"):
        ae.reevaluate(study, _held_out)
    # another split name is not the locked test split
    r = ae.reevaluate(study, _held_out, split="validation-2", seeds=3, n_resamples=200)
    assert r.split == "validation-2"
    assert ae.test_reads(study) == []


def test_winners_curse_is_measured_and_recorded(tmp_path):
    study = _searched(tmp_path)
    ae.finish_search(study)
    r = ae.reevaluate(study, _held_out, top_k=3, seeds=8, baseline={"x": 0.95}, n_resamples=1000)
    assert len(r.candidates) == 3
    values = [c.search_value for c in r.candidates]
    assert values == sorted(values, reverse=True)
    # the winners were chosen on lucky noise: held-out, they lose it (positive optimism)
    assert r.mean_optimism > 0
    for c in r.candidates:
        assert c.optimism == pytest.approx(c.search_value - c.mean)
        assert len(c.scores) == 8
        assert c.low <= c.mean <= c.high
        assert c.comparison.verdict == "better"
        assert c.comparison.n_comparisons == 3
    assert r.baseline.name == "baseline"
    assert "trial" in str(r)
    assert "mean optimism" in str(r)
    stored = airda.load_study("search", storage=str(tmp_path / "s.db")).user_attrs
    assert stored["airda.eval.reevaluation"]["mean_optimism"] == pytest.approx(r.mean_optimism)
    assert ae.test_reads(study)[0]["what"] == "reevaluate top-3 x 8 seeds"


def test_failing_evaluations_are_recorded_not_fatal(tmp_path):
    study = _searched(tmp_path, 10)
    ae.finish_search(study)
    seeds = [1, 2, 3, 4, 5, 6]

    def flaky(params, seed):
        if seed == 2:
            raise RuntimeError("out of memory")
        if seed == 3:
            return math.nan
        return _held_out(params, seed)

    r = ae.reevaluate(study, flaky, top_k=1, seeds=seeds, baseline=[0.5] * 6, n_resamples=300)
    (c,) = r.candidates
    assert [f["seed"] for f in c.failures] == [2, 3]
    assert "RuntimeError: out of memory" in c.failures[0]["error"]
    assert "Traceback" in c.failures[0]["traceback"]
    assert math.isnan(c.scores[1])
    assert c.comparison.n_excluded == 2
    assert c.comparison.n_candidate == 4
    few = ae.reevaluate(study, flaky, top_k=1, seeds=[1, 2, 3, 4], baseline=[0.5] * 4)
    assert few.candidates[0].comparison is None
    assert "2 seed(s) where both evaluations succeeded" in few.candidates[0].notes[0]
    with pytest.raises(ValueError, match="one score per seed"):
        ae.reevaluate(study, _held_out, seeds=seeds, baseline=[0.5, 0.5])
    with pytest.raises(TypeError, match="evaluate"):
        ae.reevaluate(study, "not a function")


def test_report_files_and_cli(tmp_path, capsys):
    study = _searched(tmp_path, 12)
    ae.finish_search(study)
    ae.reevaluate(study, _held_out, top_k=2, seeds=4, baseline={"x": 0.9}, n_resamples=500)
    study.optimize(lambda t: _true(t["x"]), n_trials=2)  # searching on after the test read
    written = ae.write_report(study, tmp_path / "rep")
    md = written["markdown"].read_text()
    assert "Held-out re-evaluation" in md
    assert "Winner's curse" in md
    assert "WARNING: 2 trial(s) ran after the test split was first read" in md
    assert "<table>" in written["html"].read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in md
    else:
        for name in ("history.png", "scores.png", "validation_vs_heldout.png"):
            assert (tmp_path / "rep" / name).read_bytes()[:4] == b"\x89PNG"
            assert f"]({name})" in md
    out = tmp_path / "cli"
    assert (
        main(["eval", "report", "search", "--storage", str(tmp_path / "s.db"), "-o", str(out)]) == 0
    )
    assert (out / "report.html").exists()
    assert main(["eval", "report", "nope", "--storage", str(tmp_path / "s.db")]) == 1
    assert "nope" in capsys.readouterr().err


def test_minimised_optimism_is_explained_with_its_own_sign(tmp_path):
    """A minimised study's optimism is held-out minus search: the text must not call it
    "search minus held-out" (which would flip its sign)."""
    study = airda.create_study(
        "loss", storage=str(tmp_path / "m.db"), space={"x": Float(0, 1)}, seed=0
    )
    study.optimize(lambda t: -_true(t["x"]) - _noise(t["x"]), n_trials=30)
    ae.finish_search(study)
    r = ae.reevaluate(study, lambda p, s: -_held_out(p, s), top_k=2, seeds=4, n_resamples=200)
    assert r.direction == "minimize"
    assert r.mean_optimism > 0  # the lucky low losses come back higher
    for c in r.candidates:
        assert c.optimism == pytest.approx(c.mean - c.search_value)
    text = str(r)
    assert "search minus held-out" not in text
    assert f"mean optimism {r.mean_optimism:+.4g} (held-out mean minus search value" in text
    md = ae.write_report(study, tmp_path / "rep")["markdown"].read_text()
    assert "held-out mean minus search value: positive means" in md
    maximised = _searched(tmp_path, 12)
    ae.finish_search(maximised)
    r = ae.reevaluate(maximised, _held_out, top_k=1, seeds=3, n_resamples=200)
    assert "(search value minus held-out mean: positive means" in str(r)


def test_report_of_a_study_without_splits_does_not_speak_of_a_locked_split(tmp_path):
    study = _searched(tmp_path, 5)
    md = ae.write_report(study, tmp_path / "rep")["markdown"].read_text()
    assert "still locked" not in md
    assert "No data splits are recorded for this study" in md
    ae.Splits(20, seed=0, study=study)  # now the study has a test split, still locked
    md = ae.write_report(study, tmp_path / "rep")["markdown"].read_text()
    assert "the test split is still locked" in md

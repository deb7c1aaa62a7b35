"""airda.synth.tune: the study that picks a synthesizer under a privacy floor, and its CLI."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

import airda  # noqa: E402
from airda import synth  # noqa: E402
from airda.cli import main  # noqa: E402
from airda.eval import test_reads  # noqa: E402


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": x + 0.3 * rng.normal(size=n),
            "c": rng.choice(["a", "b", "c"], size=n),
            "label": np.where(x + 0.2 * rng.normal(size=n) > 0, "pos", "neg"),
        }
    )


def test_tune_picks_a_winner_reads_the_test_rows_once_and_keeps_artifacts(tmp_path):
    df = _table()
    result = synth.tune(
        df,
        "label",
        synthesizers=("copula",),
        n_trials=3,
        storage=tmp_path / "s.db",
        name="t",
        trees=10,
    )
    study = result.study
    assert len(study.trials) == 3
    assert result.synthesizer == "copula"
    assert result.model_path.is_file()
    assert result.sample_path.is_file()
    # artefacts live beside the storage file, one folder per trial
    assert result.model_path.parent.parent == tmp_path / "s-artifacts" / "t"
    assert result.feasible == (result.privacy_ratio >= 1.0)
    assert 0.0 <= result.test_utility.tstr <= 1.0
    assert result.test_utility.low <= result.test_utility.difference <= result.test_utility.high
    assert len(test_reads(study)) == 1
    for t in study.trials:
        assert {"model_path", "sample_path", "fit_seconds"} <= set(t.user_attrs)
    model = result.load_model()
    assert list(model.sample(5).columns) == list(df.columns)
    assert "TSTR" in result.summary()


def test_a_second_call_continues_the_study_on_the_same_split(tmp_path):
    df = _table()
    kw = dict(synthesizers=("copula",), storage=tmp_path / "s.db", name="t", trees=10)
    synth.tune(df, "label", n_trials=2, **kw)
    again = synth.tune(df, "label", n_trials=1, **kw)
    assert len(again.study.trials) == 3
    stored = airda.load_study("t", storage=tmp_path / "s.db")
    assert len(stored.trials) == 3
    # another split of the same study is refused: the test rows stay what they were
    with pytest.raises(ValueError, match="splits must not change"):
        synth.tune(df, "label", n_trials=1, fractions=(0.5, 0.3, 0.2), **kw)


def test_an_unreachable_privacy_floor_returns_the_most_private_trial(tmp_path):
    result = synth.tune(
        _table(),
        "label",
        synthesizers=("copula",),
        n_trials=3,
        artifacts=tmp_path,
        privacy_floor=1e9,
        trees=10,
    )
    assert not result.feasible
    ratios = [t.values[1] for t in result.study.trials]
    assert result.privacy_ratio == max(ratios)


def test_tvae_trials_respect_the_time_limit(tmp_path):
    result = synth.tune(
        _table(80),
        "label",
        synthesizers=("tvae",),
        n_trials=1,
        artifacts=tmp_path,
        max_fit_seconds=1.0,
        trees=10,
    )
    assert result.synthesizer == "tvae"
    assert result.study.trials[0].user_attrs["fit_seconds"] < 15.0


def test_bad_input_is_refused_with_the_reason(tmp_path):
    df = _table()
    with pytest.raises(ValueError, match="target column 'nope'"):
        synth.tune(df, "nope", artifacts=tmp_path)
    with pytest.raises(TypeError, match="DataFrame"):
        synth.tune(df.to_numpy(), "label", artifacts=tmp_path)
    with pytest.raises(ValueError, match="synthesizers"):
        synth.tune(df, "label", synthesizers=("gan",), artifacts=tmp_path)
    with pytest.raises(ValueError, match="too few"):
        synth.tune(df.head(4), "label", artifacts=tmp_path)


def test_cli_tune_prints_the_winner_and_writes_a_sample(tmp_path, capsys):
    path = tmp_path / "data.csv"
    _table().to_csv(path, index=False)
    out = tmp_path / "synthetic.csv"
    code = main(
        [
            "synth",
            "tune",
            str(path),
            "--target",
            "label",
            "--synthesizers",
            "copula",
            "--n-trials",
            "2",
            "--artifacts",
            str(tmp_path / "art"),
            "-o",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "TSTR" in captured.out
    assert "best: trial" in captured.out
    assert len(pd.read_csv(out)) == 120
    assert main(["synth", "tune", str(path), "--target", "label", "--n-trials", "0"]) == 2
    assert main(["synth", "tune", str(tmp_path / "missing.csv"), "--target", "label"]) == 1

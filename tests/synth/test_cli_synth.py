"""``airda synth fit`` and ``airda synth sample``: files, conditions, exit codes 0/1/2."""

from __future__ import annotations

import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth needs the synth extra (pandas)")
pytest.importorskip("scipy", reason="the Gaussian copula needs the synth extra (scipy)")

from airda.cli import main  # noqa: E402


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x.round(3),
            "k": rng.integers(0, 5, n),
            "label": np.where(x > 0, "yes", "no"),
            "day": pd.date_range("2024-01-01", periods=n).strftime("%Y-%m-%d"),
            "flag": rng.random(n) < 0.5,
        }
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return path


def test_fit_then_sample_with_conditions(data, tmp_path, capsys):
    model = tmp_path / "m.airda"
    meta = tmp_path / "md.json"
    assert main(["synth", "fit", str(data), "-o", str(model), "--target", "label",
                 "--save-metadata", str(meta), "--seed", "3"]) == 0  # fmt: skip
    assert "fitted GaussianCopula on 80 rows x 5 columns" in capsys.readouterr().out
    assert json.loads(meta.read_text())["target"] == "label"
    out = tmp_path / "s.csv"
    argv = ["synth", "sample", str(model), "-n", "40", "-o", str(out), "--seed", "1",
            "--condition", "label=yes", "--condition", "flag=true", "--condition", "k=2"]  # fmt: skip
    assert main(argv) == 0
    s = pd.read_csv(out)
    assert len(s) == 40
    assert list(s.columns) == ["x", "k", "label", "day", "flag"]
    assert (s.label == "yes").all()
    assert s.flag.all()
    assert (s.k == 2).all()
    assert main([*argv, "--force"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), s)  # same seed, same rows


def test_fit_with_metadata_file_and_hyperparameters(data, tmp_path, capsys):
    meta = tmp_path / "md.json"
    meta.write_text(json.dumps({
        "columns": [{"name": "x", "kind": "numerical"}, {"name": "k", "kind": "categorical"},
                    {"name": "label", "kind": "categorical"}, {"name": "day", "kind": "datetime"},
                    {"name": "flag", "kind": "boolean"}],
        "constraints": [{"type": "Range", "column": "x", "low": -5, "high": 5}],
    }))  # fmt: skip
    model = tmp_path / "m.airda"
    argv = ["synth", "fit", str(data), "-o", str(model), "--metadata", str(meta),
            "--hp", "marginals=empirical", "--hp", "shrinkage=0.1"]  # fmt: skip
    assert main(argv) == 0
    assert main(["synth", "sample", str(model), "-n", "5", "-o", "-"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-6] == "x,k,label,day,flag"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["synth", "fit", "missing.csv", "-o", "m.airda"], 1, "does not exist"),
        (["synth", "fit", "{data}", "-o", "m.airda", "--synthesizer", "gan"], 1, "unknown"),
        (["synth", "fit", "{data}", "-o", "m.airda", "--target", "nope"], 1, "'nope'"),
        (["synth", "fit", "{data}", "-o", "m.airda", "--hp", "depth=3"], 1, "depth"),
        (["synth", "fit", "{data}", "-o", "m.airda", "--hp", "=3"], 1, "NAME=VALUE"),
        (["synth", "sample", "missing.airda", "-n", "3", "-o", "-"], 1, "does not exist"),
        (["synth", "sample", "{data}", "-n", "3", "-o", "-"], 1, "not an airda synthesizer"),
        (["synth", "sample", "{model}", "-n", "0", "-o", "-"], 1, "positive"),
        (["synth", "sample", "{model}", "-n", "3", "-o", "-", "--condition", "k"], 2, "COLUMN"),
        (
            ["synth", "sample", "{model}", "-n", "3", "-o", "-", "--condition", "label=maybe"],
            1,
            "'label'",
        ),
        (["synth", "sample", "{model}", "-n", "3", "-o", "-", "--condition", "zz=1"], 1, "'zz'"),
        (["synth", "sample", "{model}", "-n", "3", "-o", "-", "--condition", "k=x"], 1, "'k'"),
        (["synth", "sample", "{model}", "-o", "-"], 2, "-n"),
        (["synth"], 2, "ACTION"),
    ],
)
def test_errors_and_exit_codes(data, tmp_path, capsys, monkeypatch, argv, code, message):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "ok.airda"
    assert main(["synth", "fit", str(data), "-o", str(model)]) == 0
    capsys.readouterr()
    argv = [a.format(data=data, model=model) for a in argv]
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse usage errors
        got = exc.code
    assert got == code
    err = capsys.readouterr().err
    assert message in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1


def test_output_exists_needs_force(data, tmp_path, capsys):
    model = tmp_path / "m.airda"
    model.write_text("keep me")
    assert main(["synth", "fit", str(data), "-o", str(model)]) == 1
    assert "--force" in capsys.readouterr().err
    assert model.read_text() == "keep me"


def test_help_lists_actions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "fit" in out
    assert "sample" in out

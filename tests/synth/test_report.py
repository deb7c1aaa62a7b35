"""airda.synth's quality report: evaluate() on tiny tables, Markdown/HTML/PNG output, the
``airda synth report`` action, and clear errors on bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth's report needs pandas (the synth extra)")
pytest.importorskip("sklearn", reason="detection and utility need scikit-learn (the synth extra)")

from airda.synth._report import QualityReport, evaluate  # noqa: E402

FAST = {"trees": 5, "detection_models": ["logistic"], "n_resamples": 200}


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "z": x + rng.normal(0.0, 0.3, n),
            "c": np.where(x > 0, "hi", rng.choice(["lo", "mid"], n)),
            "label": (x + 0.5 * rng.normal(size=n) > 0).astype(int),
        }
    )
    df.loc[rng.random(n) < 0.1, "z"] = np.nan
    df.loc[rng.random(n) < 0.1, "c"] = None
    return df


@pytest.fixture(scope="module")
def copied() -> QualityReport:
    real = _table(240)
    train, hold = real.iloc[:160], real.iloc[160:]
    return evaluate(
        train, train.sample(frac=1.0, random_state=3), target="label", holdout=hold, **FAST
    )


def test_a_copying_synthesizer_is_perfect_on_fidelity_and_warned_on_privacy(copied):
    s = copied.scores
    assert s["column_shapes"] == 1.0
    assert s["pair_trends"] == 1.0
    assert s["quality"] == 1.0
    # The rows are shuffled, so the forest differs a little; the interval covers no change.
    assert abs(s["utility_difference"]) < 0.05
    assert s["utility_low"] <= 0.0 <= s["utility_high"]
    assert s["copies"] == 1.0
    assert s["dcr_share_closer"] == 1.0
    assert s["dcr_synthetic_median"] == 0.0 < s["dcr_holdout_median"]
    assert any("memorising" in w for w in copied.warnings)
    assert copied.utility.test_source == "holdout"
    assert set(copied.details) == {
        "column_shapes",
        "pair_trends",
        "detection",
        "utility",
        "privacy",
    }
    assert copied.kinds["label"] == "categorical"


def test_markdown_and_html_hold_every_section(copied):
    md = copied.to_markdown()
    for heading in ("## Summary", "## Warnings", "## Column shapes", "## Pair trends"):
        assert heading in md
    for heading in ("## Detection", "## ML utility", "## Privacy"):
        assert heading in md
    assert "| column shapes | 1.000 |" in md
    page = copied.to_html()
    assert page.startswith("<!doctype html>")
    assert "<h2>Privacy</h2>" in page
    assert 'class="warn"' in page
    summary = copied.summary()
    assert list(summary.columns) == ["metric", "value", "meaning"]
    assert "privacy (DCR)" in set(summary["metric"])
    assert "column_shapes=1.000" in repr(copied)
    record = json.loads(json.dumps(copied.to_dict(), allow_nan=False))
    assert record["scores"]["column_shapes"] == 1.0
    assert record["details"]["privacy"][0]["rows"] == "synthetic"


def test_save_writes_reports_and_plots(copied, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG plots need matplotlib (the report extra)")
    written = copied.save(tmp_path / "out")
    assert set(written) == {"markdown", "html", "columns.png", "correlations.png", "dcr.png"}
    for path in written.values():
        assert path.stat().st_size > 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "![distance to closest record, synthetic vs holdout](dcr.png)" in md
    only_html = copied.save(tmp_path / "h", formats=["html"], plots=False)
    assert set(only_html) == {"html"}
    with pytest.raises(ValueError, match="formats must be"):
        copied.save(tmp_path / "x", formats=["pdf"])


def test_independent_noise_scores_low_pair_trends_and_utility():
    real = _table(300)
    rng = np.random.default_rng(1)
    noise = pd.DataFrame({c: real[c].to_numpy()[rng.permutation(300)] for c in real.columns})
    rep = evaluate(real, noise, target="label", parts=["shapes", "pairs", "utility"], **FAST)
    assert rep.scores["column_shapes"] == 1.0
    assert rep.scores["pair_trends"] < 0.85
    assert rep.scores["utility_high"] < 0.0
    assert any("split of the real table" in w for w in rep.warnings)
    assert "detection" not in rep.scores


def test_missing_values_extra_columns_and_no_target():
    real = _table(120)
    syn = _table(120, seed=5).drop(columns=["z"]).assign(extra=1.0)
    rep = evaluate(real, syn, **FAST)
    assert rep.utility is None
    assert "utility_tstr" not in rep.scores
    assert all(np.isfinite(rep.scores[k]) for k in ("column_shapes", "pair_trends", "detection"))
    assert any("only in real" in n and "z" in n for n in rep.notes)
    assert any("only in synthetic" in n and "extra" in n for n in rep.notes)
    assert any("no holdout baseline" in n for n in rep.notes)


def test_bad_input_gets_clear_errors():
    real = _table(30)
    with pytest.raises(ValueError, match="no column in common"):
        evaluate(real, pd.DataFrame({"q": [1.0]}))
    with pytest.raises(ValueError, match=r"real is empty \(0 rows\)"):
        evaluate(real.iloc[:0], real)
    with pytest.raises(ValueError, match="target 'price' is not a column of real"):
        evaluate(real, real, target="price")
    with pytest.raises(ValueError, match="unknown part 'speed'"):
        evaluate(real, real, parts=["speed"])
    with pytest.raises(ValueError, match="the utility part needs a target"):
        evaluate(real, real, parts=["utility"])
    with pytest.raises(ValueError, match="holdout lacks the column"):
        evaluate(real, real, holdout=real[["x"]])


def _cli(argv: list[str]) -> argparse.Namespace:
    from airda.cli.synth_report import add_report_parser

    parser = argparse.ArgumentParser(prog="airda synth")
    add_report_parser(parser.add_subparsers(dest="action"))
    return parser.parse_args(argv)


def test_report_action_prints_the_summary_and_writes_the_report(tmp_path, capsys):
    from airda.cli.synth_report import run_report

    real = _table(200)
    real.iloc[:140].to_csv(tmp_path / "real.csv", index=False)
    real.iloc[140:].to_csv(tmp_path / "hold.csv", index=False)
    real.iloc[:140].to_csv(tmp_path / "syn.csv", index=False)
    out = tmp_path / "rep"
    args = _cli(
        [
            "report",
            str(tmp_path / "real.csv"),
            str(tmp_path / "syn.csv"),
            "--target",
            "label",
            "--holdout",
            str(tmp_path / "hold.csv"),
            "-o",
            str(out),
            "--format",
            "md",
            "--no-plots",
            "--trees",
            "5",
            "--detection",
            "logistic",
        ]
    )
    assert run_report(args) == 0
    captured = capsys.readouterr()
    assert "column shapes" in captured.out
    assert "ML utility (accuracy)" in captured.out
    assert "warning:" in captured.err
    assert (out / "report.md").is_file()
    assert not (out / "report.html").exists()
    args = _cli(["report", str(tmp_path / "real.csv"), str(tmp_path / "syn.csv")])
    args.parts, args.json, args.out = ["shapes", "pairs"], True, str(tmp_path / "j")
    assert run_report(args) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["column_shapes"] == 1.0


def test_report_action_errors_on_missing_and_empty_files(tmp_path):
    from airda.cli.synth_report import run_report

    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(OSError, match=r"real table .* does not exist"):
        run_report(_cli(["report", str(tmp_path / "nope.csv"), str(tmp_path / "empty.csv")]))
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"synthetic table .* is empty"):
        run_report(_cli(["report", str(tmp_path / "ok.csv"), str(tmp_path / "empty.csv")]))


def test_airda_synth_report_runs_from_the_command_line(tmp_path, capsys):
    from airda.cli import main

    real = _table(120)
    real.to_csv(tmp_path / "real.csv", index=False)
    real.sample(frac=1.0, random_state=0).to_csv(tmp_path / "syn.csv", index=False)
    out = tmp_path / "rep"
    argv = ["synth", "report", str(tmp_path / "real.csv"), str(tmp_path / "syn.csv")]
    argv += ["-o", str(out), "--parts", "shapes,pairs,privacy", "--no-plots", "-q"]
    assert main(argv) == 0
    assert "column shapes" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    assert main(["synth", "report", str(tmp_path / "real.csv"), str(tmp_path / "no.csv")]) == 1
    assert "synthetic table" in capsys.readouterr().err

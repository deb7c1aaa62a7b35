"""airda.viz.report_html from Python: a large study is plotted from a sample and its table
capped, both said on the page; a study with nothing complete still gets a page that says why
each plot is missing."""

from __future__ import annotations

import numpy as np
import pytest

import airda
from airda import viz
from airda.space import Float
from airda.trial import FrozenTrial, TrialState

pytest.importorskip("matplotlib")


def _records(n: int) -> list[FrozenTrial]:
    rng = np.random.default_rng(0)
    x = rng.random((n, 2))
    return [
        FrozenTrial(
            i,
            TrialState.FAIL if i % 9 == 0 else TrialState.COMPLETE,
            {"a": float(x[i, 0]), "b": float(x[i, 1])},
            values=None if i % 9 == 0 else (float(x[i, 0] ** 2 + 0.1 * x[i, 1]),),
            datetime_start=float(i),
            datetime_complete=i + 0.5,
        )
        for i in range(n)
    ]


def test_large_study_is_sampled_and_the_table_capped():
    page = viz.report_html(
        _records(2000),
        "big",
        interactive=False,
        max_trials=300,
        max_rows=100,
        evaluator="ped-anova",
    )
    assert "<h1>Study big</h1>" in page
    assert "<th class='l'>trials</th><td class='l'>2,000</td>" in page
    assert "100 of 2,000 trials: the 50 best (by objective 0) and the 50 latest." in page
    assert page.count("<tr><td>") == 100
    # The sample is in the plots' titles; PNGs carry them as pixels, so check the HTML backend.
    pytest.importorskip("plotly")
    page = viz.report_html(
        _records(2000), "big", interactive=True, max_trials=300, evaluator="ped-anova"
    )
    assert page.count("(300 of 2,000 trials shown)") >= 5


def test_a_study_with_nothing_complete_says_why():
    study = airda.create_study("quiet", space={"x": Float(0, 1)})
    page = viz.report_html(study, interactive=False)
    assert "plot_history needs at least 1 complete trial(s), the study has 0" in page
    assert "importance needs at least 2 complete trials" in page
    assert "<h2>Trials</h2>" in page


def test_write_report(tmp_path):
    study = airda.create_study("w", space={"x": Float(0, 1)}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=5)
    out = viz.write_report(study, tmp_path / "w.html", interactive=False)
    assert out.read_text().count("<tr><td>") == 5

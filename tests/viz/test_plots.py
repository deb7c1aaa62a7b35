"""airda.viz on small real studies: every plot has the expected axes, labels and number of
points in matplotlib, is a self-contained page (no script from the network) in HTML, reads a
study from a storage without writing to it, samples studies above 5,000 trials (and says so),
and refuses what it cannot draw with a clear error. ``import airda`` loads neither library."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import airda
from airda import viz
from airda.schedulers import MedianStopping
from airda.space import Categorical, Float, Int
from airda.trial import FrozenTrial, TrialPruned, TrialState
from airda.viz import _data

pytest.importorskip("matplotlib")

SPACE = {
    "lr": Float(1e-4, 1.0, log=True),
    "layers": Int(1, 6),
    "act": Categorical(["relu", "tanh", "gelu"]),
    "drop": Float(0.0, 0.5),
}


def _objective(trial):
    base = 100 * (trial["lr"] - 0.01) ** 2 + 0.1 * trial["layers"]
    base += {"relu": 0.0, "tanh": 0.5, "gelu": 0.2}[trial["act"]]
    for step in range(6):
        trial.report(step, base + 1.0 / (step + 1))
        if trial.should_prune():
            raise TrialPruned()
    if trial["drop"] > 0.45:
        raise RuntimeError("diverged")
    return base


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("viz") / "studies.db"
    study = airda.create_study(
        "demo", storage=path, space=SPACE, seed=0, scheduler=MedianStopping()
    )
    study.optimize(_objective, n_trials=30)
    mo = airda.create_study(
        "mo",
        storage=path,
        space={"x": Float(0, 1), "y": Float(0, 1)},
        directions=["minimize", "maximize"],
        seed=0,
    )
    mo.optimize(lambda t: (t["x"], 1 - (1 - t["x"]) ** 2 - 0.5 * t["y"]), n_trials=25)
    return path


@pytest.fixture(scope="module")
def study(study_db):
    return airda.load_study("demo", storage=study_db)


@pytest.fixture(scope="module")
def mo(study_db):
    return airda.load_study("mo", storage=study_db)


def _complete(study):
    return [t for t in study.trials if t.state is TrialState.COMPLETE]


def _n_offsets(collection) -> int:
    return len(collection.get_offsets())


def test_the_fixture_has_every_state(study):
    states = {t.state for t in study.trials}
    assert {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL} <= states


def test_history(study):
    fig = viz.plot_history(study)
    ax = fig.axes[0]
    assert ax.get_title() == "History of demo"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("trial", "value (minimize)")
    done = _complete(study)
    assert _n_offsets(ax.collections[0]) == len(done)
    best = ax.get_lines()[0].get_ydata()
    assert best[-1] == pytest.approx(study.best_value)
    assert np.all(np.diff(best) <= 0)  # best so far never gets worse


def test_parallel_coordinates(study):
    fig = viz.plot_parallel_coordinates(study)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["lr", "layers", "act", "drop", "value"]
    assert len(ax.collections[0].get_segments()) == len(_complete(study))
    fig = viz.plot_parallel_coordinates(study, params=["act"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["act", "value"]


def test_slice(study):
    fig = viz.plot_slice(study)
    panels = fig.axes[:4]
    assert [a.get_xlabel() for a in panels] == ["lr", "layers", "act", "drop"]
    assert panels[0].get_xscale() == "log"
    assert [t.get_text() for t in panels[2].get_xticklabels()] == ["relu", "tanh", "gelu"]
    for a in panels:
        assert _n_offsets(a.collections[0]) == len(_complete(study))


def test_contour(study):
    fig = viz.plot_contour(study, params=["lr", "drop"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == ("lr", "drop", "log")
    scatter = [c for c in ax.collections if len(c.get_offsets()) == len(_complete(study))]
    assert scatter  # the trials drawn over the interpolated surface
    with pytest.raises(ValueError, match="two distinct parameters"):
        viz.plot_contour(study, params=["lr"])


def test_importance(study):
    fig = viz.plot_importance(study)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(names) == sorted(SPACE)
    widths = [p.get_width() for p in ax.patches]
    assert sum(widths) == pytest.approx(1.0)
    assert widths == sorted(widths)  # largest on top
    assert "fANOVA" in ax.get_title()
    fig = viz.plot_importance(study, evaluator="ped-anova")
    assert "PED-ANOVA" in fig.axes[0].get_title()


def test_intermediate_values_mark_pruned_trials(study):
    fig = viz.plot_intermediate_values(study)
    ax = fig.axes[0]
    reported = [t for t in study.trials if t.intermediate]
    *curves, marks = ax.collections
    assert sum(len(c.get_segments()) for c in curves) == len(reported)
    assert [c.get_label() for c in curves] == ["complete", "pruned", "fail"]
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert _n_offsets(marks) == len(pruned)
    assert ax.get_xlabel() == "step"


def test_pareto_front_2d(mo):
    fig = viz.plot_pareto_front(mo)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "objective 0 (minimize)"
    assert ax.get_ylabel() == "objective 1 (maximize)"
    rest, front = ax.collections
    assert _n_offsets(front) == len(mo.pareto_front())
    assert _n_offsets(rest) + _n_offsets(front) == len(_complete(mo))


def test_pareto_front_3d():
    study = airda.create_study(space={"x": Float(0, 1)}, directions=["minimize"] * 3, seed=0)
    study.optimize(lambda t: (t["x"], 1 - t["x"], (t["x"] - 0.5) ** 2), n_trials=12)
    fig = viz.plot_pareto_front(study)
    assert fig.axes[0].name == "3d"
    assert fig.axes[0].get_zlabel() == "objective 2 (minimize)"


def test_timeline(study):
    fig = viz.plot_timeline(study)
    ax = fig.axes[0]
    assert sum(len(c.get_segments()) for c in ax.collections) == len(study.trials)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"complete", "pruned", "fail"} <= set(legend)


def test_png(study, tmp_path):
    path = tmp_path / "history.png"
    viz.plot_history(study).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PLOTS = [
    "plot_history",
    "plot_parallel_coordinates",
    "plot_slice",
    "plot_contour",
    "plot_importance",
    "plot_intermediate_values",
    "plot_timeline",
]


@pytest.mark.parametrize("plot", PLOTS)
def test_html_is_self_contained(study_db, plot):
    pytest.importorskip("plotly")
    before = os.path.getmtime(study_db), study_db.stat().st_size
    page = getattr(viz, plot)(study_db, name="demo", backend="html")
    assert page.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in page
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*['\"]?https?:", page, re.I)
    assert (os.path.getmtime(study_db), study_db.stat().st_size) == before  # read only


def test_html_pareto_and_plotly_figure(mo):
    pytest.importorskip("plotly")
    page = viz.plot_pareto_front(mo, backend="html")
    assert "Pareto front of mo" in page
    fig = viz.plot_history(mo, objective=1, backend="plotly")
    assert len(fig.data[0].x) == len(_complete(mo))
    assert fig.layout.yaxis.title.text == "objective 1 (maximize)"


def test_from_storage_url_and_trials(study_db, study):
    url = f"sqlite:///{study_db}"
    fig = viz.plot_history(url, name="demo")
    assert _n_offsets(fig.axes[0].collections[0]) == len(_complete(study))
    fig = viz.plot_history(study.trials, name="listed")
    assert fig.axes[0].get_title() == "History of listed"


def test_errors(study, mo, study_db, tmp_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        viz.plot_history(study, backend="svg")
    with pytest.raises(ValueError, match=r"objective must be in 0\.\.0"):
        viz.plot_history(study, objective=1)
    with pytest.raises(ValueError, match="2 or 3 objectives"):
        viz.plot_pareto_front(study)
    with pytest.raises(ValueError, match="unknown parameter"):
        viz.plot_slice(study, params=["nope"])
    with pytest.raises(ValueError, match="give the study's name"):
        viz.plot_history(study_db)
    with pytest.raises(ValueError, match="no storage file"):
        viz.plot_history(tmp_path / "missing.db", name="demo")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(KeyError, match="no study named 'nope'"):
        viz.plot_history(study_db, name="nope")
    with pytest.raises(TypeError, match="expected a Study"):
        viz.plot_history(3.5)
    quiet = airda.create_study(space={"x": Float(0, 1)}, seed=0)
    quiet.optimize(lambda t: t["x"], n_trials=3)
    with pytest.raises(ValueError, match=r"no trial of study .* reported intermediate values"):
        viz.plot_intermediate_values(quiet)
    empty = airda.create_study(space={"x": Float(0, 1)})
    with pytest.raises(ValueError, match="needs at least 1 complete trial"):
        viz.plot_history(empty)


# ---- downsampling ----------------------------------------------------------------------------


def _records(n: int, *, n_obj: int = 1, fail_every: int = 10) -> list[FrozenTrial]:
    """Trial records written directly (no objective runs): a 6,000-trial study in
    milliseconds."""
    rng = np.random.default_rng(0)
    x = rng.random((n, 2))
    out = []
    for i in range(n):
        params = {"a": float(x[i, 0]), "b": float(x[i, 1])}
        if i % fail_every == 0:
            out.append(FrozenTrial(i, TrialState.FAIL, params, datetime_start=float(i)))
            continue
        values = (
            (float(x[i, 0]),)
            if n_obj == 1
            else (float(x[i, 0]), float(1 - x[i, 0] ** 0.5 + x[i, 1]))
        )
        out.append(
            FrozenTrial(
                i,
                TrialState.COMPLETE,
                params,
                values=values,
                datetime_start=float(i),
                datetime_complete=i + 0.5,
            )
        )
    return out


def test_downsampling_kicks_in_above_the_threshold():
    trials = _records(6000)
    fig = viz.plot_history(trials, name="big")
    ax = fig.axes[0]
    assert ax.get_title() == "History of big (5,000 of 6,000 trials shown)"
    shown = _n_offsets(ax.collections[0])
    assert shown == 5000 - sum(t.state is TrialState.FAIL for t in _data.load(trials).trials)
    best = min(t.values[0] for t in trials if t.values)
    assert ax.get_lines()[0].get_ydata()[-1] == best  # the best trial is always kept
    # At the threshold nothing is sampled.
    fig = viz.plot_history(trials[:5000], name="edge")
    assert fig.axes[0].get_title() == "History of edge"
    # max_trials=None draws everything.
    fig = viz.plot_history(trials, name="all", max_trials=None)
    assert _n_offsets(fig.axes[0].collections[0]) == 5400


def test_downsample_keeps_the_best_the_front_and_each_state():
    trials = _records(3000)
    view = _data.load(trials, "s", max_trials=1000)
    assert len(view.trials) <= 1000
    assert view.n_total == 3000
    assert view.note == " (1,000 of 3,000 trials shown)"
    done = sorted((t for t in trials if t.values), key=lambda t: t.values[0])
    kept = {t.number for t in view.trials}
    assert {t.number for t in done[:100]} <= kept  # the best tenth of the budget
    fails = sum(t.state is TrialState.FAIL for t in view.trials)
    assert 0.05 < fails / len(view.trials) < 0.15  # the failed share (10%) is kept
    numbers = [t.number for t in view.trials]
    assert numbers == sorted(numbers)
    assert max(numbers) > 2900
    mo = _records(3000, n_obj=2)
    view = _data.load(mo, "m", max_trials=500)
    from airda.ops.non_dominated_rank import non_dominated_rank

    done = [t for t in mo if t.values]
    ranks = non_dominated_rank(np.array([t.values for t in done]))
    front = {t.number for t, r in zip(done, ranks, strict=True) if r == 0}
    assert front <= {t.number for t in view.trials}
    with pytest.raises(ValueError, match="max_trials must be an int >= 10"):
        _data.load(trials, "s", max_trials=3)


def test_import_airda_loads_no_plotting_library():
    code = (
        "import sys, airda, airda.viz\n"
        "bad = [m for m in ('matplotlib', 'plotly') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

"""``airda report STUDY --storage URL``, run as a user runs it (a subprocess) on an SQLite
study: one static HTML file with every section, nothing fetched from the network; unknown
studies and storages are one-line errors with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import airda
from airda.schedulers import MedianStopping
from airda.space import Categorical, Float
from airda.trial import TrialPruned

pytest.importorskip("matplotlib")


def _objective(trial):
    value = (trial["x"] - 0.3) ** 2 + (0.5 if trial["kind"] == "b" else 0.0)
    for step in range(4):
        trial.report(step, value + 1.0 / (step + 1))
        if trial.should_prune():
            raise TrialPruned()
    return value


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "studies.db"
    study = airda.create_study(
        "sweep",
        storage=path,
        space={"x": Float(0, 1), "kind": Categorical(["a", "b"])},
        seed=0,
        scheduler=MedianStopping(),
    )
    study.optimize(_objective, n_trials=24)
    mo = airda.create_study(
        "front", storage=path, space={"x": Float(0, 1)}, directions=["minimize"] * 2, seed=0
    )
    mo.optimize(lambda t: (t["x"], (1 - t["x"]) ** 2), n_trials=12)
    return path


def _airda(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airda.cli", "report", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _no_network(page: str) -> None:
    assert not re.search(r"<(script|img|link)[^>]*\b(src|href)\s*=\s*['\"]?https?:", page, re.I)


def test_report_has_every_section(storage, tmp_path):
    out = tmp_path / "r.html"
    r = _airda("sweep", "--storage", str(storage), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out} (24 trials)"
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for section in (
        "<h1>Study sweep</h1>",
        "best trial",
        "<h2>History</h2>",
        "<h2>Hyperparameter importance</h2>",
        "<h2>Parallel coordinates</h2>",
        "<h2>Slices</h2>",
        "<h2>Intermediate values</h2>",
        "<h2>Trials</h2>",
    ):
        assert section in page
    assert "Pareto front" not in page
    _no_network(page)
    study = airda.load_study("sweep", storage=storage)
    assert page.count("<tr><td>") == len(study.trials)  # one table row per trial
    for state in ("complete", "pruned"):
        n = sum(t.state.value == state for t in study.trials)
        assert f"<th class='l'>{state}</th><td class='l'>{n}</td>" in page


def test_interactive_report_inlines_plotly(storage, tmp_path):
    pytest.importorskip("plotly")
    out = tmp_path / "i.html"
    assert _airda("sweep", "--storage", f"sqlite:///{storage}", "-o", str(out)).returncode == 0
    page = out.read_text()
    assert "Plotly.newPlot" in page
    assert page.count("Plotly.newPlot") >= 6
    _no_network(page)


def test_png_report_of_a_multi_objective_study(storage, tmp_path):
    r = _airda("front", "--storage", str(storage), "--png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "front-report.html").read_text()
    assert "<h2>Pareto front</h2>" in page
    assert "Plotly" not in page
    assert page.count("src='data:image/png;base64,") >= 5
    _no_network(page)


def test_unknown_study_or_storage_exit_2(storage, tmp_path):
    r = _airda("nope", "--storage", str(storage), "-o", str(tmp_path / "x.html"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"airda report: error: no study 'nope' in {storage}"
    assert not (tmp_path / "x.html").exists()
    missing = tmp_path / "missing.db"
    r = _airda("sweep", "--storage", str(missing))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "no storage file" in r.stderr
    assert not missing.exists()
    r = _airda("sweep", "--storage", "ftp://host/db")
    assert r.returncode == 2
    assert "unknown storage URL scheme" in r.stderr


def test_help():
    r = _airda("--help")
    assert r.returncode == 0
    assert "--storage URL" in r.stdout
    assert "-o FILE" in r.stdout

"""The dashboard on a constrained study: the best is the best feasible trial, in the list, the
summary and the best-trial view; the trial table marks infeasible trials; the first (light)
read of the history knows the constraints."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

import airda
from airda.dashboard import DashboardServer
from airda.space import Float

pytest.importorskip("plotly")

# (value, constraint): the smallest values violate their constraint.
RESULTS = [(0.5, 1.0), (3.0, -1.0), (0.1, 2.0), (2.0, 0.0), (4.0, -0.5)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dashc") / "c.db")
    study = airda.create_study("c", storage=path, space={"x": Float(0, 1)}, strategy="random")
    for value, c in RESULTS:
        study.tell(study.ask(), value, constraints=[c])
    srv = DashboardServer(path, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _json(srv, path):
    with urllib.request.urlopen(srv.url + path.lstrip("/"), timeout=30) as r:
        return json.loads(r.read())


def _ready(srv) -> dict:
    deadline = time.monotonic() + 30
    while not (summary := _json(srv, "/api/studies/c"))["loading"]["ready"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)  # waiting for the server's loader thread
    return summary


def test_the_best_is_the_best_feasible_trial(server):
    (listed,) = _json(server, "/api/studies")["studies"]
    assert listed["best"] == [2.0]
    summary = _ready(server)
    assert summary["best"]["number"] == 3
    assert summary["best"]["values"] == [2.0]
    trials = _json(server, "/api/studies/c/trials?sort=value&limit=10")["trials"]
    assert [t["feasible"] for t in trials] == [False, False, True, True, True]
    assert trials[0]["constraints"] == [2.0]


def test_the_light_read_carries_the_constraints(server):
    cache = server.cache("c")
    cache.light_ready.wait(30)
    view = cache.light_view()
    assert [t.feasible for t in view.trials] == [c <= 0 for _, c in RESULTS]


def test_the_csv_export_has_the_constraints(server):
    import csv
    import io

    _ready(server)
    with urllib.request.urlopen(server.url + "api/studies/c/trials.csv", timeout=30) as r:
        rows = list(csv.DictReader(io.StringIO(r.read().decode())))
    assert [float(row["constraint_0"]) for row in rows] == [c for _, c in RESULTS]
    assert [row["feasible"] for row in rows] == [str(c <= 0) for _, c in RESULTS]

"""airda.viz's plots of architecture searches: the NB201 cell graph (an SVG with one labelled
edge per cell edge), which studies count as architecture searches, which attributes are costs,
and the accuracy/cost front (its non-dominated set checked against a brute-force one, in
matplotlib, plotly and HTML)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import airda
from airda import viz
from airda.nas import Arch, arch_to_params, nb201_space
from airda.nas.nb201 import EDGE_NAMES, OPS
from airda.space import Categorical, Float, Int
from airda.trial import FrozenTrial, TrialState

ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"


def _trial(number, value, params=None, attrs=None):
    return FrozenTrial(number, TrialState.COMPLETE, params or {}, (value,), user_attrs=attrs or {})


# ---- the cell graph ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["string", "arch", "params", "trial", "trial-attr"])
def test_cell_svg_has_six_edges_labelled_by_op(form):
    arch = Arch.from_string(ARCH)
    given = {
        "string": ARCH,
        "arch": arch,
        "params": arch_to_params(arch),
        "trial": _trial(0, 1.0, arch_to_params(arch)),
        "trial-attr": _trial(0, 1.0, {"seed": 1}, {"arch": ARCH}),
    }[form]
    svg = viz.cell_svg(given)
    assert svg.startswith("<svg") and svg.endswith("</svg>")  # noqa: PT018
    edges = re.findall(r'<g class="cell-edge" data-edge="(\d->\d)" data-op="(\w+)">', svg)
    assert dict(edges) == arch.to_params()
    labels = re.findall(r'paint-order="stroke">(\w+)</text>', svg)
    assert sorted(labels) == sorted(arch.ops)
    assert svg.count('class="cell-node"') == 4
    # "none" (no connection) is dashed; the others are not.
    none = re.findall(r'data-op="none"><path [^>]*stroke-dasharray', svg)
    assert len(none) == arch.ops.count("none") == 2
    assert svg.count("stroke-dasharray") == 2


def test_cell_svg_escapes_its_title_and_refuses_what_is_not_nb201():
    assert "&lt;b&gt;" in viz.cell_svg(ARCH, title="<b>")
    with pytest.raises(ValueError, match="malformed NB201 arch string"):
        viz.cell_svg("|conv~0|")
    with pytest.raises(ValueError, match="no NB201 architecture"):
        viz.cell_svg(_trial(0, 1.0, {"lr": 0.1}))


# ---- what a NAS study is --------------------------------------------------------------------


def test_cost_attributes_are_numeric_and_named_by_a_cost_word():
    trials = [
        _trial(0, 1.0, {}, {"params": 1.0, "n_params": 2, "flops_m": 3.0, "latency_ms": 4.0}),
        _trial(1, 1.0, {}, {"macs": 5, "paramsx": 1.0, "latency": "slow", "flag": True}),
        _trial(2, 1.0, {}, {"size": 3.0, "gpu_latency": 2.5, "nan_flops": float("nan")}),
    ]
    assert viz.cost_attributes(trials) == [
        "params",
        "n_params",
        "flops_m",
        "latency_ms",
        "macs",
        "gpu_latency",
    ]


def test_nas_kind():
    space = nb201_space()
    study = airda.create_study(space=space, direction="maximize", seed=0)
    study.optimize(lambda t: float(sum(v == "nor_conv_3x3" for v in t.params.values())), n_trials=4)
    assert viz.nas_kind(viz.load(study)) == "nb201"
    empty = airda.create_study(space=space, seed=0)
    assert viz.nas_kind(viz.load(empty)) == "nb201"  # by its space alone
    by_attr = [_trial(i, 1.0, {"seed": i}, {"arch": ARCH}) for i in range(3)]
    assert viz.nas_kind(viz.load(by_attr)) == "nb201"
    choices = [_trial(0, 1.0, {"depth": 2}, {"latency_ms": 1.0})]
    assert viz.nas_kind(viz.load(choices)) == "choices"
    plain = airda.create_study(space={"x": Float(0, 1)}, seed=0)
    plain.optimize(lambda t: t["x"], n_trials=3)
    assert viz.nas_kind(viz.load(plain)) is None
    # Six edge names over other choices are not NB201.
    other = airda.create_study(space={e: Categorical(["a", "b"]) for e in EDGE_NAMES}, seed=0)
    assert viz.nas_kind(viz.load(other)) is None
    assert set(OPS) == set(Arch.from_string(ARCH).ops) | {"nor_conv_3x3", "none"}


# ---- the accuracy/cost front ------------------------------------------------------------------


def _study(direction: str):
    def objective(t):
        width, depth = t["width"], t["depth"]
        t.set_user_attr("params", width * width * depth)
        acc = 1 - 1 / (width * depth) + 0.02 * np.sin(width + depth)
        return float(acc if direction == "maximize" else 1 - acc)

    study = airda.create_study(
        space={"width": Int(1, 32), "depth": Int(1, 8)}, direction=direction, seed=1
    )
    study.optimize(objective, n_trials=40)
    return study


def _brute_front(study) -> set[int]:
    sign = 1.0 if study.directions[0] == "minimize" else -1.0
    # A trial answered from the study's cache (a repeated candidate) records no attributes.
    pts = {
        t.number: (t.user_attrs["params"], sign * t.value)
        for t in study.trials
        if "params" in t.user_attrs
    }
    return {
        n
        for n, (c, v) in pts.items()
        if not any(
            c2 <= c and v2 <= v and (c2 < c or v2 < v) for m, (c2, v2) in pts.items() if m != n
        )
    }


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_cost_front_is_the_non_dominated_set(direction):
    pytest.importorskip("plotly")
    study = _study(direction)
    want = _brute_front(study)
    assert 2 <= len(want) < len(study.trials)
    fig = viz.plot_cost_front(study, backend="plotly")
    traces = {t.name: t for t in fig.data}
    assert set(traces["non-dominated"].customdata) == want
    costly = {t.number for t in study.trials if "params" in t.user_attrs}
    assert len(costly) >= 35
    assert set(traces["trial"].customdata) == costly - want
    # The front's steps join the non-dominated points by increasing cost.
    line = traces["front"]
    assert list(line.x) == sorted(line.x)
    assert len(line.x) == len(want)
    assert fig.layout.xaxis.title.text == "params"
    assert fig.layout.yaxis.title.text == f"value ({direction})"


def test_cost_front_in_matplotlib_and_html():
    pytest.importorskip("matplotlib")
    pytest.importorskip("plotly")
    study = _study("maximize")
    fig = viz.plot_cost_front(study)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "params"
    assert ax.get_title().startswith("Accuracy/cost front of")
    n = sum("params" in t.user_attrs for t in study.trials)
    front = len(_brute_front(study))
    assert sorted(len(c.get_offsets()) for c in ax.collections) == sorted([front, n - front])
    page = viz.plot_cost_front(study, backend="html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # plotly.js inline


def test_cost_front_errors():
    study = airda.create_study(space={"x": Float(0, 1)}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=3)
    with pytest.raises(ValueError, match="no cost attribute"):
        viz.plot_cost_front(study)
    costly = _study("maximize")
    with pytest.raises(ValueError, match="no complete trial records a numeric 'flops'"):
        viz.plot_cost_front(costly, cost="flops")
    with pytest.raises(ValueError, match=r"objective must be in 0\.\.0"):
        viz.plot_cost_front(costly, objective=1)

"""Plots of architecture searches: the cell graph of a NAS-Bench-201 architecture (an SVG drawn
here, no plotting library) and the accuracy/cost front (a study's value against a cost that its
trials record, such as parameters, FLOPs or latency, the non-dominated trials highlighted).

What makes a study an architecture search, for :func:`nas_kind` (and the dashboard):

- ``"nb201"``: its space, or every trial's parameters, are the six NB201 edges (``"0->1"``,
  ``"0->2"``, ``"1->2"``, ``"0->3"``, ``"1->3"``, ``"2->3"``, each one of
  :data:`airda.nas.nb201.OPS`), as :func:`airda.nas.nb201_space` makes them; or its trials
  carry an ``arch`` user attribute holding an NB201 arch string (as
  :class:`airda.nas.TableObjective` records it);
- ``"choices"``: any other study whose trials record a cost (:func:`cost_attributes`): a
  model space's choices, shown as a table rather than a graph;
- None: anything else.

A cost is a numeric user attribute whose name has ``params``, ``flops``, ``macs`` or
``latency`` as a word (``params``, ``n_params``, ``flops_m``, ``latency_ms``...).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from airda.trial import FrozenTrial
from airda.viz._data import MAX_TRIALS, StudyView, load
from airda.viz._plots import _check_backend, _check_objective, _figure, _go, _need, _render

__all__ = ["cell_svg", "cost_attributes", "nas_kind", "nb201_arch", "plot_cost_front"]

COST_WORDS = ("params", "flops", "macs", "latency")

# The edge of each op, drawn in the cell graph: a colour, and dashes for "no connection".
_OP_STYLE = {
    "none": ("#9e9e9e", "6 5"),
    "skip_connect": ("#2e7d32", ""),
    "nor_conv_1x1": ("#1565c0", ""),
    "nor_conv_3x3": ("#6a1b9a", ""),
    "avg_pool_3x3": ("#ef6c00", ""),
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def cost_attributes(trials: Iterable[FrozenTrial]) -> list[str]:
    """The names of the cost attributes the trials carry (see the module's notes), in the
    order first met.

    Example:
        >>> from airda.trial import FrozenTrial, TrialState
        >>> t = FrozenTrial(0, TrialState.COMPLETE, {}, (0.9,),
        ...                 user_attrs={"n_params": 1.2e6, "latency_ms": 3.0, "arch": "..."})
        >>> cost_attributes([t])
        ['n_params', 'latency_ms']
    """
    out: list[str] = []
    for t in trials:
        for k, v in t.user_attrs.items():
            if k in out or not _is_number(v):
                continue
            if any(w in COST_WORDS for w in re.split(r"[^a-z0-9]+", k.lower())):
                out.append(k)
    return out


def nb201_arch(trial: FrozenTrial | Mapping[str, Any]) -> Any:
    """The NB201 :class:`~airda.nas.nb201.Arch` of a trial (from its six edge parameters, else
    its ``arch`` user attribute), or None when it holds none."""
    from airda.nas.nb201 import EDGE_NAMES, as_arch

    params = trial.params if isinstance(trial, FrozenTrial) else trial
    attrs = trial.user_attrs if isinstance(trial, FrozenTrial) else {}
    try:
        if all(e in params for e in EDGE_NAMES):
            return as_arch({e: params[e] for e in EDGE_NAMES})
        for text in (attrs.get("arch"), params.get("arch")):
            if isinstance(text, str):
                return as_arch(text)
    except ValueError:
        return None
    return None


def nas_kind(view: StudyView) -> str | None:
    """``"nb201"``, ``"choices"`` or None: what kind of architecture search the study is (the
    rule is in the module's notes)."""
    from airda.nas.nb201 import EDGE_NAMES, OPS

    space = view.space
    if (
        space is not None
        and set(space.names) == set(EDGE_NAMES)
        and all(set(getattr(space[e], "choices", ())) <= set(OPS) for e in EDGE_NAMES)
    ):
        return "nb201"
    with_params = [t for t in view.trials if t.params or "arch" in t.user_attrs]
    if with_params and all(nb201_arch(t) is not None for t in with_params):
        return "nb201"
    if cost_attributes(view.trials):
        return "choices"
    return None


# ---- the cell graph --------------------------------------------------------------------------

# Nodes on one line; consecutive nodes joined straight, 0->2 and 0->3 arched above, 1->3 below.
_NODE_X = (70.0, 250.0, 430.0, 610.0)
_NODE_Y = 180.0
_R = 22.0
_ARC = {(0, 2): -70.0, (0, 3): -125.0, (1, 3): 75.0}  # apex offset from the nodes' line


def cell_svg(arch: Any, *, title: str | None = None) -> str:
    """An NB201 cell as an SVG document: nodes 0 (input) to 3 (output), each of the six edges
    an arrow labelled with its op (``none``, no connection, dashed grey).

    Args:
        arch: anything :func:`airda.nas.as_arch` takes (an Arch, an arch string, the params of
            :func:`airda.nas.nb201_space`), or a trial (see :func:`nb201_arch`).
        title: the text above the graph (default the arch string).

    Each edge is a ``<g class="cell-edge" data-edge="0->1" data-op="...">`` holding its path
    and its ``<text>`` label.

    Example:
        >>> svg = cell_svg("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
        >>> svg.count('class="cell-edge"'), "avg_pool_3x3" in svg
        (6, True)
    """
    from airda.nas.nb201 import EDGES, as_arch

    a = nb201_arch(arch) if isinstance(arch, FrozenTrial) else as_arch(arch)
    if a is None:
        raise ValueError("the trial holds no NB201 architecture (six edge params or 'arch')")
    text = html.escape(title if title is not None else str(a))
    width, height = 680, 300
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cell-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f"<title>{text}</title>",
        "<defs>",
    ]
    for op, (color, _) in _OP_STYLE.items():
        parts.append(
            f'<marker id="arrow-{op}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{color}"/></marker>'
        )
    parts.append("</defs>")
    parts.append(f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="11">{text}</text>')
    for (i, j), op in zip(EDGES, a.ops, strict=True):
        color, dash = _OP_STYLE[op]
        x1, x2 = _NODE_X[i], _NODE_X[j]
        y = _NODE_Y
        lift = _ARC.get((i, j))
        if lift is None:
            path = f"M{x1 + _R},{y} L{x2 - _R - 2},{y}"
            lx, ly = (x1 + x2) / 2, y - 8
        else:
            # A quadratic curve whose apex is `lift` from the line; it leaves and enters the
            # nodes' circles at 45 degrees.
            s = math.copysign(_R * 0.7071, lift)
            path = f"M{x1 + _R * 0.7071},{y + s} Q{(x1 + x2) / 2},{y + 2 * lift} {x2 - _R * 0.7071 - 2},{y + s}"
            lx, ly = (x1 + x2) / 2, y + lift + (-6 if lift < 0 else 14)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="cell-edge" data-edge="{i}->{j}" data-op="{op}">'
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2.2"{dashes} '
            f'marker-end="url(#arrow-{op})"/>'
            f'<text x="{lx}" y="{ly}" text-anchor="middle" font-size="12" fill="{color}" '
            f'stroke="#fff" stroke-width="4" paint-order="stroke">{op}</text></g>'
        )
    captions = ("input", "", "", "output")
    for k, x in enumerate(_NODE_X):
        parts.append(
            f'<g class="cell-node" data-node="{k}"><circle cx="{x}" cy="{_NODE_Y}" r="{_R}" '
            f'fill="#eceff1" stroke="#263238" stroke-width="1.5"/>'
            f'<text x="{x}" y="{_NODE_Y + 5}" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{k}</text>'
            + (
                f'<text x="{x}" y="{_NODE_Y + _R + 16}" text-anchor="middle" font-size="11" '
                f'fill="#546e7a">{captions[k]}</text>'
                if captions[k]
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


# ---- the accuracy/cost front ----------------------------------------------------------------


@dataclass
class _Front:
    title: str
    labels: list[str]  # x (the cost), y (the value)
    points: np.ndarray  # (n, 2): cost, value
    front: np.ndarray  # bool per point
    numbers: np.ndarray


def plot_cost_front(
    study: Any,
    *,
    name: str | None = None,
    cost: str | None = None,
    objective: int = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """The complete trials' value against a cost they record (a user attribute: parameters,
    FLOPs, latency...), the non-dominated ones (no other trial both cheaper and better, or as
    good) highlighted and joined by the front's steps.

    Args:
        cost: the user attribute (default the first of :func:`cost_attributes`).
        objective: which value (for a study with several).

    In plotly, each point's ``customdata`` is its trial number.

    Example:
        >>> import airda
        >>> from airda.space import Int
        >>> from airda.viz import plot_cost_front
        >>> def objective(t):
        ...     t.set_user_attr("params", 1000 * t["width"])
        ...     return 1 - 1 / t["width"]
        >>> study = airda.create_study(space={"width": Int(1, 64)}, direction="maximize", seed=0)
        >>> study.optimize(objective, n_trials=10)
        >>> plot_cost_front(study).axes[0].get_xlabel()
        'params'
    """
    from airda.ops.non_dominated_rank import non_dominated_rank

    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    done = view.complete()
    names = cost_attributes(done)
    if cost is None:
        if not names:
            raise ValueError(
                "no cost attribute on the complete trials: record one with "
                "trial.set_user_attr('params' | 'flops' | 'latency_ms' ..., value)"
            )
        cost = names[0]
    elif cost not in names:
        raise ValueError(
            f"no complete trial records a numeric {cost!r}; costs: {', '.join(names) or 'none'}"
        )
    done = [t for t in done if _is_number(t.user_attrs.get(cost))]
    _need(done, 1, "plot_cost_front")
    pts = np.array(
        [[float(t.user_attrs[cost]), t.values[objective]] for t in done],  # type: ignore[index]
        dtype=np.float64,
    )
    sign = 1.0 if view.directions[objective] == "minimize" else -1.0
    ranks = np.asarray(non_dominated_rank(np.ascontiguousarray(pts * np.array([1.0, sign]))))
    label = "value" if len(view.directions) == 1 else f"objective {objective}"
    data = _Front(
        f"Accuracy/cost front of {view.name}{view.note}",
        [cost, f"{label} ({view.directions[objective]})"],
        pts,
        ranks == 0,
        np.array([t.number for t in done]),
    )
    return _render(backend, data, _front_mpl, _front_ply)


def _steps(d: _Front) -> np.ndarray:
    front = d.points[d.front]
    return front[np.argsort(front[:, 0], kind="stable")]


def _front_mpl(d: _Front) -> Any:
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    rest = d.points[~d.front]
    ax.scatter(rest[:, 0], rest[:, 1], s=14, color="#9e9e9e", alpha=0.7, label="trial")
    steps = _steps(d)
    ax.step(steps[:, 0], steps[:, 1], where="post", color="#d62728", lw=1, alpha=0.6)
    ax.scatter(steps[:, 0], steps[:, 1], s=26, color="#d62728", label="non-dominated")
    ax.set_xlabel(d.labels[0])
    ax.set_ylabel(d.labels[1])
    ax.set_title(d.title)
    ax.legend(loc="best")
    return fig


def _front_ply(d: _Front) -> Any:
    go = _go()
    fig = go.Figure()
    steps = _steps(d)
    fig.add_trace(
        go.Scatter(
            x=steps[:, 0],
            y=steps[:, 1],
            mode="lines",
            line={"shape": "hv", "color": "#d62728", "width": 1},
            name="front",
            hoverinfo="skip",
            showlegend=False,
        )
    )
    for mask, label, color, size in (
        (~d.front, "trial", "#9e9e9e", 7),
        (d.front, "non-dominated", "#d62728", 10),
    ):
        p = d.points[mask]
        nums = d.numbers[mask]
        fig.add_trace(
            go.Scatter(
                x=p[:, 0],
                y=p[:, 1],
                mode="markers",
                name=label,
                customdata=[int(n) for n in nums],  # plain numbers: a click gives the trial
                text=[f"trial {n}" for n in nums],
                marker={"color": color, "size": size},
            )
        )
    fig.update_layout(title=d.title, xaxis_title=d.labels[0], yaxis_title=d.labels[1])
    return fig

"""The plots of :mod:`airda.viz`: each computes its data once, then draws it with matplotlib
(a :class:`~matplotlib.figure.Figure`, no pyplot state) or plotly (a self-contained HTML page,
plotly.js inline)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from airda.trial import FrozenTrial, TrialState
from airda.viz._data import MAX_TRIALS, StudyView, load

__all__ = [
    "BACKENDS",
    "plot_contour",
    "plot_history",
    "plot_importance",
    "plot_intermediate_values",
    "plot_parallel_coordinates",
    "plot_pareto_front",
    "plot_slice",
    "plot_timeline",
]

BACKENDS = ("matplotlib", "html", "plotly")
STATE_COLORS = {
    TrialState.COMPLETE: "#1f77b4",
    TrialState.PRUNED: "#ff7f0e",
    TrialState.FAIL: "#d62728",
    TrialState.RUNNING: "#2ca02c",
    TrialState.WAITING: "#7f7f7f",
}


# ---- shared pieces --------------------------------------------------------------------------


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")


def _figure(width: float = 7.0, height: float = 4.5) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("airda.viz draws with matplotlib: pip install 'airda-lab[viz]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def _go() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError("backend='html' needs plotly: pip install 'airda-lab[viz]'") from None
    return go


def standalone_html(fig: Any, title: str) -> str:
    """A whole HTML page of one plotly figure, with plotly.js inline (no network)."""
    body = fig.to_html(include_plotlyjs=True, full_html=False, config={"displaylogo": False})
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{_escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    )


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _render(backend: str, data: Any, mpl: Callable[[Any], Any], ply: Callable[[Any], Any]) -> Any:
    if backend == "matplotlib":
        return mpl(data)
    fig = ply(data)
    if backend == "plotly":
        return fig
    return standalone_html(fig, data.title)


def _objective_label(view: StudyView, objective: int) -> str:
    if len(view.directions) == 1:
        return "value"
    return f"objective {objective}"


def _check_objective(view: StudyView, objective: int) -> None:
    if isinstance(objective, bool) or not isinstance(objective, int):
        raise TypeError(f"objective must be an int, got {objective!r}")
    if not 0 <= objective < len(view.directions):
        raise ValueError(
            f"objective must be in 0..{len(view.directions) - 1} (the study has "
            f"{len(view.directions)} objective(s)), got {objective}"
        )


def _complete_values(view: StudyView, objective: int) -> tuple[list[FrozenTrial], np.ndarray]:
    done = view.complete()
    vals = np.array([t.values[objective] for t in done], dtype=np.float64)  # type: ignore[index]
    return done, vals


@dataclass
class _Axis:
    """How a parameter is placed on an axis: linear, log or categories at 0, 1, ..."""

    name: str
    kind: str  # "linear", "log" or "categorical"
    labels: list[Any]  # the categories, in order (empty for numbers)
    low: float = 0.0  # a number's range (the space's, else the values')
    high: float = 1.0

    def coords(self, values: Sequence[Any]) -> np.ndarray:
        """Plot coordinates (NaN where the parameter is absent)."""
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            if v is _MISSING:
                continue
            if self.kind == "categorical":
                out[i] = _index(self.labels, v)
            else:
                out[i] = float(v)
        return out

    def unit(self, coords: np.ndarray) -> np.ndarray:
        """Coordinates scaled to [0, 1] (log ones in log space)."""
        x = np.log(coords) if self.kind == "log" else coords
        lo, hi = self.range()
        if self.kind == "log":
            lo, hi = math.log(lo), math.log(hi)
        return (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        lo, hi = self.range()
        if self.kind == "log":
            return np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        return lo + u * (hi - lo)

    def range(self) -> tuple[float, float]:
        if self.kind == "categorical":
            return 0.0, float(max(len(self.labels) - 1, 0))
        return self.low, self.high


_MISSING = object()


def _index(labels: list[Any], value: Any) -> int:
    for i, c in enumerate(labels):
        if type(c) is type(value) and c == value:
            return i
    return next(i for i, c in enumerate(labels) if c == value)


def _axis(view: StudyView, name: str, trials: Sequence[FrozenTrial]) -> _Axis:
    values = [t.params[name] for t in trials if name in t.params]
    param = view.space[name] if view.space is not None and name in view.space else None
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if (param is not None and param.kind in ("categorical", "fixed")) or not numeric:
        labels: list[Any] = list(param.values()) if param is not None else []
        for v in values:
            if not any(type(c) is type(v) and c == v for c in labels):
                labels.append(v)
        return _Axis(name, "categorical", labels)
    log = bool(param is not None and getattr(param, "log", False))
    if param is not None:
        lo, hi = float(param.low), float(param.high)
    elif values:
        lo, hi = float(min(values)), float(max(values))
    else:
        lo, hi = 0.0, 1.0
    return _Axis(name, "log" if log else "linear", [], lo, hi)


def _column(trials: Sequence[FrozenTrial], name: str) -> list[Any]:
    return [t.params.get(name, _MISSING) for t in trials]


def _params(view: StudyView, params: Sequence[str] | None) -> list[str]:
    names = view.param_names()
    if params is None:
        return names
    if isinstance(params, str):
        raise TypeError(f"params must be a list of names, got {params!r}")
    unknown = [p for p in params if p not in names]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the study has {names}")
    return list(params)


def _need(done: Sequence[Any], n: int, what: str) -> None:
    if len(done) < n:
        raise ValueError(f"{what} needs at least {n} complete trial(s), the study has {len(done)}")


def _mpl_axis_style(ax: Any, axis: _Axis, which: str = "x") -> None:
    if axis.kind == "log":
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    elif axis.kind == "categorical":
        ticks = list(range(len(axis.labels)))
        if which == "x":
            ax.set_xticks(ticks, [str(c) for c in axis.labels])
        else:
            ax.set_yticks(ticks, [str(c) for c in axis.labels])


def _ply_axis_style(axis: _Axis) -> dict[str, Any]:
    if axis.kind == "log":
        return {"type": "log", "title": {"text": axis.name}}
    if axis.kind == "categorical":
        return {
            "tickmode": "array",
            "tickvals": list(range(len(axis.labels))),
            "ticktext": [str(c) for c in axis.labels],
            "title": {"text": axis.name},
        }
    return {"title": {"text": axis.name}}


# ---- history ------------------------------------------------------------------------------


@dataclass
class _History:
    title: str
    numbers: np.ndarray
    values: np.ndarray
    best: np.ndarray
    ylabel: str


def plot_history(
    study: Any,
    *,
    name: str | None = None,
    objective: int = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """Each complete trial's value by trial number, and the best so far.

    Args:
        study: a :class:`~airda.study.Study`, a storage URL or path (with `name`), or a list
            of :class:`~airda.trial.FrozenTrial`.
        name: the study's name in a storage.
        objective: which objective of a multi-objective study.
        backend: ``"matplotlib"`` (a Figure: ``.savefig("h.png")``), ``"html"`` (a whole
            HTML page, plotly.js inline) or ``"plotly"`` (a plotly Figure).
        max_trials: draw a sample above this many trials (the title says so); None: all.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_history
        >>> study = airda.create_study(space={"x": Float(-1, 1)}, seed=0)
        >>> study.optimize(lambda t: t["x"] ** 2, n_trials=20)
        >>> fig = plot_history(study)
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('trial', 'value (minimize)')
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    done, vals = _complete_values(view, objective)
    _need(done, 1, "plot_history")
    numbers = np.array([t.number for t in done])
    loss = view.signed(vals, objective)
    # The best so far among trials that satisfy their constraints (none: no line yet).
    feasible = np.array([t.feasible for t in done], dtype=bool)
    best_loss = np.minimum.accumulate(np.where(feasible, loss, np.inf))
    best = view.signed(np.where(np.isfinite(best_loss), best_loss, np.nan), objective)
    data = _History(
        f"History of {view.name}{view.note}",
        numbers,
        vals,
        best,
        f"{_objective_label(view, objective)} ({view.directions[objective]})",
    )
    return _render(backend, data, _history_mpl, _history_ply)


def _history_mpl(d: _History) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(d.numbers, d.values, s=12, color=STATE_COLORS[TrialState.COMPLETE], label="trial")
    ax.step(d.numbers, d.best, where="post", color="#d62728", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(d.ylabel)
    ax.set_title(d.title)
    ax.legend(loc="best")
    return fig


def _history_ply(d: _History) -> Any:
    go = _go()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=d.numbers, y=d.values, mode="markers", name="trial"))
    fig.add_trace(
        go.Scatter(x=d.numbers, y=d.best, mode="lines", name="best so far", line_shape="hv")
    )
    fig.update_layout(title=d.title, xaxis_title="trial", yaxis_title=d.ylabel)
    return fig


# ---- parallel coordinates ---------------------------------------------------------------


@dataclass
class _Parallel:
    title: str
    axes: list[_Axis]
    coords: list[np.ndarray]  # per axis, plot coordinates of every trial
    values: np.ndarray
    vlabel: str


def plot_parallel_coordinates(
    study: Any,
    *,
    name: str | None = None,
    params: Sequence[str] | None = None,
    objective: int = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """One vertical axis per parameter and one for the value; each complete trial a line,
    coloured by its value. Arguments as :func:`plot_history`; `params`: which (default all).

    Example:
        >>> import airda
        >>> from airda.space import Categorical, Float
        >>> from airda.viz import plot_parallel_coordinates
        >>> study = airda.create_study(space={"x": Float(0, 1), "c": Categorical(["a", "b"])})
        >>> study.optimize(lambda t: t["x"] + (t["c"] == "a"), n_trials=10)
        >>> fig = plot_parallel_coordinates(study)
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['x', 'c', 'value']
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    names = _params(view, params)
    done, vals = _complete_values(view, objective)
    _need(done, 1, "plot_parallel_coordinates")
    axes = [_axis(view, n, done) for n in names]
    coords = [a.coords(_column(done, a.name)) for a in axes]
    data = _Parallel(
        f"Parallel coordinates of {view.name}{view.note}",
        axes,
        coords,
        vals,
        _objective_label(view, objective),
    )
    return _render(backend, data, _parallel_mpl, _parallel_ply)


def _parallel_mpl(d: _Parallel) -> Any:
    from matplotlib.collections import LineCollection

    fig = _figure(max(6.0, 1.4 * (len(d.axes) + 1)), 4.5)
    ax = fig.add_subplot()
    units = [a.unit(c) for a, c in zip(d.axes, d.coords, strict=True)]
    lo, hi = float(d.values.min()), float(d.values.max())
    units.append((d.values - lo) / (hi - lo) if hi > lo else np.full(len(d.values), 0.5))
    ys = np.stack(units, axis=1)
    xs = np.arange(ys.shape[1], dtype=np.float64)
    segments = [np.column_stack((xs, row)) for row in ys]
    lines = LineCollection(segments, cmap="viridis", linewidths=1.0, alpha=0.6)
    lines.set_array(d.values)
    ax.add_collection(lines)
    for i, a in enumerate(d.axes):
        ax.axvline(i, color="black", linewidth=0.8)
        low, high = _axis_ends(a)
        ax.text(i, -0.04, low, ha="center", va="top", fontsize=7)
        ax.text(i, 1.04, high, ha="center", va="bottom", fontsize=7)
    ax.axvline(len(d.axes), color="black", linewidth=0.8)
    ax.text(len(d.axes), -0.04, f"{lo:.4g}", ha="center", va="top", fontsize=7)
    ax.text(len(d.axes), 1.04, f"{hi:.4g}", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.3, len(d.axes) + 0.3)
    ax.set_ylim(-0.12, 1.12)
    ax.set_yticks([])
    ax.set_xticks(list(xs), [a.name for a in d.axes] + [d.vlabel])
    ax.set_title(d.title)
    fig.colorbar(lines, ax=ax, label=d.vlabel)
    return fig


def _axis_ends(a: _Axis) -> tuple[str, str]:
    if a.kind == "categorical":
        if not a.labels:
            return "", ""
        return str(a.labels[0]), str(a.labels[-1])
    lo, hi = a.range()
    return f"{lo:.4g}", f"{hi:.4g}"


def _parallel_ply(d: _Parallel) -> Any:
    go = _go()
    dims = []
    for a, c in zip(d.axes, d.coords, strict=True):
        if a.kind == "categorical":
            dims.append(
                {
                    "label": a.name,
                    "values": c,
                    "tickvals": list(range(len(a.labels))),
                    "ticktext": [str(x) for x in a.labels],
                }
            )
        elif a.kind == "log":
            dims.append({"label": f"log10 {a.name}", "values": np.log10(c)})
        else:
            dims.append({"label": a.name, "values": c})
    dims.append({"label": d.vlabel, "values": d.values})
    fig = go.Figure(
        go.Parcoords(
            line={"color": d.values, "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(title=d.title)
    return fig


# ---- slice ----------------------------------------------------------------------------------


@dataclass
class _Slice:
    title: str
    axes: list[_Axis]
    coords: list[np.ndarray]
    values: np.ndarray
    numbers: np.ndarray
    vlabel: str


def plot_slice(
    study: Any,
    *,
    name: str | None = None,
    params: Sequence[str] | None = None,
    objective: int = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """One panel per parameter: the value of each complete trial against that parameter,
    coloured by trial number. Arguments as :func:`plot_parallel_coordinates`.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_slice
        >>> study = airda.create_study(space={"x": Float(0, 1), "y": Float(1e-3, 1, log=True)})
        >>> study.optimize(lambda t: t["x"] + t["y"], n_trials=12)
        >>> fig = plot_slice(study)
        >>> [ax.get_xlabel() for ax in fig.axes[:2]], fig.axes[1].get_xscale()
        (['x', 'y'], 'log')
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    names = _params(view, params)
    if not names:
        raise ValueError("plot_slice needs at least one parameter")
    done, vals = _complete_values(view, objective)
    _need(done, 1, "plot_slice")
    axes = [_axis(view, n, done) for n in names]
    data = _Slice(
        f"Slice plot of {view.name}{view.note}",
        axes,
        [a.coords(_column(done, a.name)) for a in axes],
        vals,
        np.array([t.number for t in done]),
        _objective_label(view, objective),
    )
    return _render(backend, data, _slice_mpl, _slice_ply)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def _slice_mpl(d: _Slice) -> Any:
    rows, cols = _grid_shape(len(d.axes))
    fig = _figure(3.2 * cols, 2.8 * rows + 0.6)
    last = None
    for i, (a, c) in enumerate(zip(d.axes, d.coords, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1, sharey=fig.axes[0] if fig.axes else None)
        ok = ~np.isnan(c)
        last = ax.scatter(
            c[ok],
            d.values[ok],
            c=d.numbers[ok],
            cmap="Blues",
            s=14,
            edgecolors="grey",
            linewidths=0.3,
        )
        _mpl_axis_style(ax, a)
        ax.set_xlabel(a.name)
        if i % cols == 0:
            ax.set_ylabel(d.vlabel)
    fig.suptitle(d.title)
    if last is not None:
        fig.colorbar(last, ax=fig.axes, label="trial")
    return fig


def _slice_ply(d: _Slice) -> Any:
    go = _go()
    from plotly.subplots import make_subplots

    rows, cols = _grid_shape(len(d.axes))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True)
    for i, (a, c) in enumerate(zip(d.axes, d.coords, strict=True)):
        r, k = i // cols + 1, i % cols + 1
        ok = ~np.isnan(c)
        fig.add_trace(
            go.Scatter(
                x=c[ok],
                y=d.values[ok],
                mode="markers",
                name=a.name,
                text=[f"trial {n}" for n in d.numbers[ok]],
                marker={
                    "color": d.numbers[ok],
                    "colorscale": "Blues",
                    "showscale": i == 0,
                    "colorbar": {"title": {"text": "trial"}},
                },
            ),
            row=r,
            col=k,
        )
        fig.update_xaxes(row=r, col=k, **_ply_axis_style(a))
    fig.update_yaxes(title_text=d.vlabel, row=1, col=1)
    fig.update_layout(title=d.title, showlegend=False)
    return fig


# ---- contour --------------------------------------------------------------------------------


@dataclass
class _Contour:
    title: str
    ax_x: _Axis
    ax_y: _Axis
    grid_x: np.ndarray
    grid_y: np.ndarray
    z: np.ndarray
    px: np.ndarray
    py: np.ndarray
    vlabel: str


def plot_contour(
    study: Any,
    *,
    name: str | None = None,
    params: Sequence[str] | None = None,
    objective: int = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
    resolution: int = 40,
) -> Any:
    """The value over two parameters (default: the first two), interpolated between the
    complete trials (inverse-distance weights of the 8 nearest, in the unit square), with the
    trials drawn on top. Arguments as :func:`plot_history`.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_contour
        >>> study = airda.create_study(space={"x": Float(0, 1), "y": Float(0, 1)}, seed=0)
        >>> study.optimize(lambda t: t["x"] - t["y"], n_trials=15)
        >>> fig = plot_contour(study, params=["y", "x"])
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('y', 'x')
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    names = _params(view, params)
    if params is None:
        names = names[:2]
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"plot_contour needs two distinct parameters, got {names}")
    done, vals = _complete_values(view, objective)
    done_both = [
        (t, v)
        for t, v in zip(done, vals, strict=True)
        if names[0] in t.params and names[1] in t.params
    ]
    _need(done_both, 2, "plot_contour (with both parameters)")
    trials = [t for t, _ in done_both]
    values = np.array([v for _, v in done_both])
    ax_x, ax_y = _axis(view, names[0], trials), _axis(view, names[1], trials)
    px, py = ax_x.coords(_column(trials, names[0])), ax_y.coords(_column(trials, names[1]))
    ux, uy = ax_x.unit(px), ax_y.unit(py)
    g = np.linspace(0.0, 1.0, resolution)
    gx, gy = np.meshgrid(g, g)
    pts = np.column_stack((gx.ravel(), gy.ravel()))
    d2 = (pts[:, None, 0] - ux[None, :]) ** 2 + (pts[:, None, 1] - uy[None, :]) ** 2
    k = min(8, len(values))
    near = np.argpartition(d2, k - 1, axis=1)[:, :k]
    w = 1.0 / (np.take_along_axis(d2, near, axis=1) + 1e-9)
    z = (w * values[near]).sum(axis=1) / w.sum(axis=1)
    data = _Contour(
        f"Contour of {view.name}{view.note}",
        ax_x,
        ax_y,
        ax_x.from_unit(g),
        ax_y.from_unit(g),
        z.reshape(resolution, resolution),
        px,
        py,
        _objective_label(view, objective),
    )
    return _render(backend, data, _contour_mpl, _contour_ply)


def _contour_mpl(d: _Contour) -> Any:
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    filled = ax.contourf(d.grid_x, d.grid_y, d.z, levels=15, cmap="viridis")
    ax.scatter(d.px, d.py, s=14, color="white", edgecolors="black", linewidths=0.5)
    _mpl_axis_style(ax, d.ax_x, "x")
    _mpl_axis_style(ax, d.ax_y, "y")
    ax.set_xlabel(d.ax_x.name)
    ax.set_ylabel(d.ax_y.name)
    ax.set_title(d.title)
    fig.colorbar(filled, ax=ax, label=d.vlabel)
    return fig


def _contour_ply(d: _Contour) -> Any:
    go = _go()
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=d.grid_x,
            y=d.grid_y,
            z=d.z,
            colorscale="Viridis",
            colorbar={"title": {"text": d.vlabel}},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=d.px,
            y=d.py,
            mode="markers",
            name="trials",
            marker={"color": "white", "line": {"color": "black", "width": 1}},
        )
    )
    fig.update_layout(title=d.title, xaxis=_ply_axis_style(d.ax_x), yaxis=_ply_axis_style(d.ax_y))
    return fig


# ---- importance -----------------------------------------------------------------------------


@dataclass
class _Importance:
    title: str
    names: list[str]
    scores: list[float]


def plot_importance(
    study: Any,
    *,
    name: str | None = None,
    params: Sequence[str] | None = None,
    objective: int = 0,
    evaluator: str = "fanova",
    seed: int | None = 0,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """Hyperparameter importance (:func:`airda.hpo.importance.importance`) as bars, largest
    on top. Arguments as :func:`plot_history`; `evaluator`: ``"fanova"`` or ``"ped-anova"``.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_importance
        >>> study = airda.create_study(space={"a": Float(0, 1), "b": Float(0, 1)}, seed=0)
        >>> study.optimize(lambda t: 10 * t["a"] + t["b"], n_trials=30)
        >>> fig = plot_importance(study)
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['b', 'a']
    """
    from airda.hpo.importance import importance

    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    _check_objective(view, objective)
    sign = 1.0 if view.directions[objective] == "minimize" else -1.0
    target = None
    if len(view.directions) > 1:
        target = lambda t: sign * t.values[objective]  # noqa: E731 - lower is better
    scores = importance(
        view.trials,
        evaluator=evaluator,
        params=list(params) if params is not None else None,
        target=target,
        seed=seed,
        space=view.space,
        direction=view.directions[0] if target is None else None,
    )
    label = {"fanova": "fANOVA", "ped-anova": "PED-ANOVA"}[evaluator]
    data = _Importance(
        f"Hyperparameter importance ({label}) of {view.name}{view.note}",
        list(scores),
        list(scores.values()),
    )
    return _render(backend, data, _importance_mpl, _importance_ply)


def _importance_mpl(d: _Importance) -> Any:
    fig = _figure(6.5, max(2.5, 0.45 * len(d.names) + 1.2))
    ax = fig.add_subplot()
    names, scores = d.names[::-1], d.scores[::-1]
    ax.barh(range(len(names)), scores, color=STATE_COLORS[TrialState.COMPLETE])
    ax.set_yticks(range(len(names)), names)
    for i, s in enumerate(scores):
        ax.text(s, i, f" {s:.3f}", va="center", fontsize=8)
    ax.set_xlabel("importance")
    ax.set_xlim(0, max(max(scores, default=0) * 1.2, 0.05))
    ax.set_title(d.title)
    return fig


def _importance_ply(d: _Importance) -> Any:
    go = _go()
    fig = go.Figure(
        go.Bar(
            x=d.scores[::-1],
            y=d.names[::-1],
            orientation="h",
            text=[f"{s:.3f}" for s in d.scores[::-1]],
            textposition="outside",
        )
    )
    fig.update_layout(title=d.title, xaxis_title="importance")
    return fig


# ---- intermediate values ------------------------------------------------------------------


@dataclass
class _Curves:
    title: str
    curves: list[tuple[int, TrialState, np.ndarray, np.ndarray]]


def plot_intermediate_values(
    study: Any,
    *,
    name: str | None = None,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """Learning curves: the values each trial reported by step; a pruned trial's curve ends
    in a cross. Arguments as :func:`plot_history`. ValueError if no trial reported.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_intermediate_values
        >>> study = airda.create_study(space={"lr": Float(0.1, 1)}, seed=0)
        >>> def objective(trial):
        ...     for step in range(5):
        ...         trial.report(step, trial["lr"] / (step + 1))
        ...     return trial["lr"] / 5
        >>> study.optimize(objective, n_trials=4)
        >>> fig = plot_intermediate_values(study)
        >>> len(fig.axes[0].collections[0].get_segments()), fig.axes[0].get_xlabel()
        (4, 'step')
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    curves = []
    for t in view.trials:
        if t.intermediate:
            steps = np.array(sorted(t.intermediate), dtype=np.float64)
            vals = np.array([t.intermediate[int(s)] for s in steps])
            curves.append((t.number, t.state, steps, vals))
    if not curves:
        raise ValueError(f"no trial of study {view.name!r} reported intermediate values")
    data = _Curves(f"Intermediate values of {view.name}{view.note}", curves)
    return _render(backend, data, _curves_mpl, _curves_ply)


def _curves_mpl(d: _Curves) -> Any:
    from matplotlib.collections import LineCollection

    fig = _figure()
    ax = fig.add_subplot()
    # One LineCollection per state: thousands of curves draw in a blink (one Line2D each
    # would take seconds).
    for state in STATE_COLORS:
        segs = [np.column_stack((s, v)) for _, st, s, v in d.curves if st is state]
        if segs:
            ax.add_collection(
                LineCollection(
                    segs, colors=STATE_COLORS[state], linewidths=1.0, alpha=0.7, label=state.value
                )
            )
    pruned = [(s[-1], v[-1]) for _, st, s, v in d.curves if st is TrialState.PRUNED]
    if pruned:
        px, py = zip(*pruned, strict=True)
        ax.scatter(
            px, py, marker="x", color=STATE_COLORS[TrialState.PRUNED], zorder=3, label="pruned here"
        )
    ax.autoscale_view()
    ax.set_xlabel("step")
    ax.set_ylabel("intermediate value")
    ax.set_title(d.title)
    ax.legend(loc="best")
    return fig


def _curves_ply(d: _Curves) -> Any:
    go = _go()
    fig = go.Figure()
    by_state: dict[TrialState, tuple[list[Any], list[Any], list[Any]]] = {}
    for number, state, steps, vals in d.curves:
        xs, ys, texts = by_state.setdefault(state, ([], [], []))
        xs.extend([*steps.tolist(), None])  # one trace per state; None breaks the line
        ys.extend([*vals.tolist(), None])
        texts.extend([f"trial {number}"] * len(steps) + [None])
    for state, (xs, ys, texts) in by_state.items():
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines",
                name=state.value,
                line={"color": STATE_COLORS[state], "width": 1},
            )
        )
    pruned = [(s[-1], v[-1], n) for n, st, s, v in d.curves if st is TrialState.PRUNED]
    if pruned:
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pruned],
                y=[p[1] for p in pruned],
                text=[f"trial {p[2]}" for p in pruned],
                mode="markers",
                name="pruned here",
                marker={"symbol": "x", "color": STATE_COLORS[TrialState.PRUNED]},
            )
        )
    fig.update_layout(title=d.title, xaxis_title="step", yaxis_title="intermediate value")
    return fig


# ---- Pareto front --------------------------------------------------------------------------


@dataclass
class _Pareto:
    title: str
    labels: list[str]
    points: np.ndarray
    front: np.ndarray  # bool per point
    numbers: np.ndarray


def plot_pareto_front(
    study: Any,
    *,
    name: str | None = None,
    objectives: Sequence[int] | None = None,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """The complete trials in objective space (2 or 3 objectives), the Pareto front
    highlighted. `objectives`: which (default all, when there are 2 or 3).

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_pareto_front
        >>> study = airda.create_study(space={"x": Float(0, 1)}, directions=["minimize"] * 2,
        ...                            seed=0)
        >>> study.optimize(lambda t: (t["x"], (1 - t["x"]) ** 2), n_trials=10)
        >>> fig = plot_pareto_front(study)
        >>> fig.axes[0].get_xlabel()
        'objective 0 (minimize)'
    """
    from airda.ops.non_dominated_rank import non_dominated_rank

    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    n_obj = len(view.directions)
    objs = list(objectives) if objectives is not None else list(range(n_obj))
    if n_obj < 2:
        raise ValueError("plot_pareto_front needs a study with 2 or 3 objectives; it has 1")
    if len(objs) not in (2, 3) or len(set(objs)) != len(objs):
        raise ValueError(f"plot_pareto_front draws 2 or 3 distinct objectives, got {objs}")
    for o in objs:
        _check_objective(view, o)
    done = view.complete()
    _need(done, 1, "plot_pareto_front")
    pts = np.array([[t.values[o] for o in objs] for t in done], dtype=np.float64)  # type: ignore[index]
    signs = np.array([1.0 if view.directions[o] == "minimize" else -1.0 for o in objs])
    ranks = np.asarray(non_dominated_rank(np.ascontiguousarray(pts * signs)))
    data = _Pareto(
        f"Pareto front of {view.name}{view.note}",
        [f"objective {o} ({view.directions[o]})" for o in objs],
        pts,
        ranks == 0,
        np.array([t.number for t in done]),
    )
    return _render(backend, data, _pareto_mpl, _pareto_ply)


def _pareto_mpl(d: _Pareto) -> Any:
    fig = _figure(6.0, 5.0)
    three = d.points.shape[1] == 3
    ax = fig.add_subplot(projection="3d") if three else fig.add_subplot()
    rest, front = d.points[~d.front], d.points[d.front]
    ax.scatter(*rest.T, s=12, color="#9e9e9e", alpha=0.6, label="trial")
    ax.scatter(*front.T, s=22, color="#d62728", label="Pareto front")
    ax.set_xlabel(d.labels[0])
    ax.set_ylabel(d.labels[1])
    if three:
        ax.set_zlabel(d.labels[2])
    ax.set_title(d.title)
    ax.legend(loc="best")
    return fig


def _pareto_ply(d: _Pareto) -> Any:
    go = _go()
    fig = go.Figure()
    for mask, label, color in (
        (~d.front, "trial", "#9e9e9e"),
        (d.front, "Pareto front", "#d62728"),
    ):
        p = d.points[mask]
        text = [f"trial {n}" for n in d.numbers[mask]]
        if d.points.shape[1] == 3:
            fig.add_trace(
                go.Scatter3d(
                    x=p[:, 0],
                    y=p[:, 1],
                    z=p[:, 2],
                    mode="markers",
                    name=label,
                    text=text,
                    marker={"color": color, "size": 3},
                )
            )
        else:
            fig.add_trace(
                go.Scatter(
                    x=p[:, 0],
                    y=p[:, 1],
                    mode="markers",
                    name=label,
                    text=text,
                    marker={"color": color},
                )
            )
    if d.points.shape[1] == 3:
        fig.update_layout(
            scene={
                "xaxis_title": d.labels[0],
                "yaxis_title": d.labels[1],
                "zaxis_title": d.labels[2],
            }
        )
    else:
        fig.update_layout(xaxis_title=d.labels[0], yaxis_title=d.labels[1])
    fig.update_layout(title=d.title)
    return fig


# ---- timeline ------------------------------------------------------------------------------


@dataclass
class _Timeline:
    title: str
    numbers: np.ndarray
    start: np.ndarray
    length: np.ndarray
    states: list[TrialState]


def plot_timeline(
    study: Any,
    *,
    name: str | None = None,
    backend: str = "matplotlib",
    max_trials: int | None = MAX_TRIALS,
) -> Any:
    """When each trial ran: a bar from its start to its end (to now for a running trial),
    coloured by state. Arguments as :func:`plot_history`.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import plot_timeline
        >>> study = airda.create_study(space={"x": Float(0, 1)}, seed=0)
        >>> study.optimize(lambda t: t["x"], n_trials=5)
        >>> fig = plot_timeline(study)
        >>> len(fig.axes[0].collections[0].get_segments()), fig.axes[0].get_ylabel()
        (5, 'trial')
    """
    _check_backend(backend)
    view = load(study, name, max_trials=max_trials)
    started = [t for t in view.trials if t.datetime_start is not None]
    _need(started, 1, "plot_timeline (started trials)")
    now = time.time()
    t0 = min(t.datetime_start for t in started)  # type: ignore[type-var]
    start = np.array([t.datetime_start - t0 for t in started])  # type: ignore[operator]
    end = (
        np.array(
            [
                t.datetime_complete
                if t.datetime_complete is not None
                else (now if t.state is TrialState.RUNNING else t.datetime_start)
                for t in started
            ]
        )
        - t0
    )
    data = _Timeline(
        f"Timeline of {view.name}{view.note}",
        np.array([t.number for t in started]),
        start,
        np.maximum(end - start, 0.0),
        [t.state for t in started],
    )
    return _render(backend, data, _timeline_mpl, _timeline_ply)


def _timeline_mpl(d: _Timeline) -> Any:
    fig = _figure(7.0, max(3.0, min(10.0, 0.05 * len(d.numbers) + 2.5)))
    ax = fig.add_subplot()
    # One line segment per trial (a LineCollection): thousands of bars draw in a blink.
    width = float(np.clip(150.0 / max(len(d.numbers), 1), 0.6, 10.0))
    for state in STATE_COLORS:
        mask = np.array([s is state for s in d.states])
        if mask.any():
            start = d.start[mask]
            ax.hlines(
                d.numbers[mask],
                start,
                start + d.length[mask],
                colors=STATE_COLORS[state],
                linewidth=width,
                label=state.value,
            )
    ax.set_xlabel("seconds since the first trial started")
    ax.set_ylabel("trial")
    ax.set_title(d.title)
    ax.legend(loc="best")
    return fig


def _timeline_ply(d: _Timeline) -> Any:
    go = _go()
    fig = go.Figure()
    for state in STATE_COLORS:
        mask = np.array([s is state for s in d.states])
        if mask.any():
            fig.add_trace(
                go.Bar(
                    y=d.numbers[mask],
                    x=d.length[mask],
                    base=d.start[mask],
                    orientation="h",
                    name=state.value,
                    marker={"color": STATE_COLORS[state]},
                )
            )
    fig.update_layout(
        title=d.title,
        xaxis_title="seconds since the first trial started",
        yaxis_title="trial",
        barmode="overlay",
    )
    return fig

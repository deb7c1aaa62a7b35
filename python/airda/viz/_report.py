"""A whole study on one static HTML page (no network): summary, history, importance, parallel
coordinates, slices, contour, learning curves, Pareto front, timeline and the trial table.
Interactive plotly figures (plotly.js inline, once) when plotly is installed, else PNG images
drawn by matplotlib and embedded as data URIs."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from airda.trial import FrozenTrial, TrialState
from airda.viz import _plots
from airda.viz._data import MAX_TRIALS, StudyView, load

__all__ = ["report_html", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.note{color:#666;font-style:italic}img{max-width:100%}
.state-complete{color:#1f77b4}.state-pruned{color:#ff7f0e}.state-fail{color:#d62728}
"""


def _has_plotly() -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def report_html(
    study: Any,
    name: str | None = None,
    *,
    interactive: bool | None = None,
    max_trials: int | None = MAX_TRIALS,
    max_rows: int = 1000,
    evaluator: str = "fanova",
) -> str:
    """The report of a study as one HTML page.

    Args:
        study, name: as for the plots (a Study, a storage with the study's name, or trials).
        interactive: plotly figures (True), PNG images (False), or plotly when installed
            (None).
        max_trials: plots draw a sample above this many trials (and say so).
        max_rows: the trial table shows at most this many rows (the best half and the latest
            half, when there are more; it says so).
        evaluator: the importance evaluator, ``"fanova"`` or ``"ped-anova"`` (fANOVA falls
            back to PED-ANOVA when scikit-learn is missing).

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.viz import report_html
        >>> study = airda.create_study("demo", space={"x": Float(0, 1)}, seed=0)
        >>> study.optimize(lambda t: t["x"], n_trials=8)
        >>> page = report_html(study, interactive=False)
        >>> "<h1>Study demo</h1>" in page and "http" not in page
        True
    """
    full = load(study, name, max_trials=None)
    view = load(full, max_trials=max_trials)  # the plots draw this sample
    use_plotly = _has_plotly() if interactive is None else bool(interactive)
    parts = [_summary(full)]
    figure = _figure_html_plotly if use_plotly else _figure_html_png

    def section(title: str, draw: Callable[[str], Any]) -> None:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        try:
            parts.append(figure(draw))
        except ValueError as exc:
            parts.append(f"<p class='note'>{html.escape(str(exc))}</p>")

    n_obj = len(view.directions)
    for o in range(n_obj):
        label = "History" if n_obj == 1 else f"History of objective {o}"
        section(label, lambda b, o=o: _plots.plot_history(view, objective=o, backend=b))
    if n_obj in (2, 3):
        section("Pareto front", lambda b: _plots.plot_pareto_front(view, backend=b))
    if view.param_names():
        section("Hyperparameter importance", lambda b: _importance(view, evaluator, b))
        section(
            "Parallel coordinates",
            lambda b: _plots.plot_parallel_coordinates(view, backend=b),
        )
        section("Slices", lambda b: _plots.plot_slice(view, backend=b))
        if len(view.param_names()) >= 2:
            section(
                "Contour (first two parameters)", lambda b: _plots.plot_contour(view, backend=b)
            )
    if any(t.intermediate for t in view.trials):
        section("Intermediate values", lambda b: _plots.plot_intermediate_values(view, backend=b))
    section("Timeline", lambda b: _plots.plot_timeline(view, backend=b))
    parts.append("<h2>Trials</h2>")
    parts.append(_table(full, max_rows))
    head = f"<meta charset='utf-8'><title>Study {html.escape(full.name)}</title>"
    head += f"<style>{_CSS}</style>"
    if use_plotly:
        from plotly.offline import get_plotlyjs

        head += f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    return (
        f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_report(
    study: Any, path: str | os.PathLike[str], name: str | None = None, **kwargs: Any
) -> Path:
    """Write :func:`report_html` to `path`; return the path."""
    out = Path(path)
    out.write_text(report_html(study, name, **kwargs), encoding="utf-8")
    return out


def _importance(view: StudyView, evaluator: str, backend: str) -> Any:
    if evaluator == "fanova":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            evaluator = "ped-anova"
    return _plots.plot_importance(view, evaluator=evaluator, backend=backend)


def _figure_html_plotly(draw: Callable[[str], Any]) -> str:
    fig = draw("plotly")
    return fig.to_html(include_plotlyjs=False, full_html=False, config={"displaylogo": False})


def _figure_html_png(draw: Callable[[str], Any]) -> str:
    fig = draw("matplotlib")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{data}'>"


def _summary(view: StudyView) -> str:
    counts = Counter(t.state for t in view.trials)
    rows = [
        ("directions", ", ".join(view.directions)),
        ("trials", f"{len(view.trials):,}"),
        *((f"{s.value}", f"{counts[s]:,}") for s in TrialState if counts.get(s)),
    ]
    if view.space is not None and len(view.space):
        rows.append(
            ("space", ", ".join(f"{n}: {_param_text(view.space[n])}" for n in view.space.names))
        )
    done = [t for t in view.complete() if t.feasible]  # the best is a feasible one
    if done and len(view.directions) == 1:
        sign = 1.0 if view.directions[0] == "minimize" else -1.0
        best = min(done, key=lambda t: (sign * t.values[0], t.number))  # type: ignore[index]
        rows.append(("best trial", f"{best.number}: value {best.values[0]:.6g}"))  # type: ignore[index]
        rows.append(("best params", _params_text(best.params)))
    elif done:
        from airda.ops.non_dominated_rank import non_dominated_rank

        signs = np.array([1.0 if d == "minimize" else -1.0 for d in view.directions])
        pts = np.array([t.values for t in done], dtype=np.float64) * signs
        ranks = np.asarray(non_dominated_rank(np.ascontiguousarray(pts)))
        front = [t for t, r in zip(done, ranks, strict=True) if r == 0]
        rows.append(("Pareto front", f"{len(front)} trial(s): {[t.number for t in front][:20]}"))
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(
        f"<tr><th class='l'>{html.escape(k)}</th><td class='l'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return (
        f"<h1>Study {html.escape(view.name)}</h1>"
        f"<p class='note'>airda report, generated {generated}</p><table>{body}</table>"
    )


def _param_text(p: Any) -> str:
    d = p.to_dict()
    d.pop("when", None)
    kind = d.pop("type", "")
    return f"{kind} {json.dumps(d, default=str)}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _table(view: StudyView, max_rows: int) -> str:
    trials = view.trials
    note = ""
    if len(trials) > max_rows:
        done = view.complete()
        sign = [1.0 if d == "minimize" else -1.0 for d in view.directions]
        best = sorted(done, key=lambda t: (sign[0] * t.values[0], t.number))[: max_rows // 2]  # type: ignore[index]
        chosen = {t.number for t in best}
        latest = [t for t in reversed(trials) if t.number not in chosen][: max_rows - len(best)]
        chosen |= {t.number for t in latest}
        trials = [t for t in trials if t.number in chosen]
        note = (
            f"<p class='note'>{len(trials):,} of {len(view.trials):,} trials: the "
            f"{len(best):,} best (by objective 0) and the {len(latest):,} latest.</p>"
        )
    names = view.param_names()
    n_obj = len(view.directions)
    head = ["trial", "state"]
    head += ["value"] if n_obj == 1 else [f"value {i}" for i in range(n_obj)]
    head += [*names, "duration s", "error"]
    out = [note, "<table><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>"]
    for t in trials:
        out.append(_row(t, names, n_obj))
    out.append("</table>")
    return "".join(out)


def _row(t: FrozenTrial, names: list[str], n_obj: int) -> str:
    vals = list(t.values) if t.values is not None else []
    cells = [str(t.number), f"<span class='state-{t.state.value}'>{t.state.value}</span>"]
    cells += [f"{vals[i]:.6g}" if i < len(vals) else "" for i in range(n_obj)]
    cells += [html.escape(_fmt(t.params[n])) if n in t.params else "" for n in names]
    cells.append(f"{t.duration:.3g}" if t.duration is not None else "")
    cells.append(html.escape((t.error or "")[:120]))
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

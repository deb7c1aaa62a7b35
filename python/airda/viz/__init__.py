"""Plots of studies: history, parallel coordinates, slices, contours, importance, learning
curves, Pareto fronts and timelines, and a static HTML report of a whole study; for
architecture searches, the cell graph of an NB201 architecture (:func:`cell_svg`) and the
accuracy/cost front (:func:`plot_cost_front`).

Each plot takes a :class:`~airda.study.Study`, a storage (URL, file path or Storage) with the
study's ``name=``, or a list of :class:`~airda.trial.FrozenTrial`, and returns a matplotlib
:class:`~matplotlib.figure.Figure` (``fig.savefig("history.png")``), or with
``backend="html"`` a self-contained HTML page (plotly, with plotly.js inline: no network), or
with ``backend="plotly"`` the plotly Figure. Reading a storage writes nothing to it. Above
5,000 trials (``max_trials``) a plot draws the best trials, the Pareto front and an even
sample of the rest, and its title says how many it shows.

matplotlib and plotly are imported when a plot is drawn (``pip install 'airda-lab[viz]'``);
``import airda`` imports neither.

Example:
    >>> import airda
    >>> from airda.space import Float
    >>> from airda import viz
    >>> study = airda.create_study(space={"x": Float(-2, 2)}, seed=0)
    >>> study.optimize(lambda t: t["x"] ** 2, n_trials=20)
    >>> fig = viz.plot_history(study)
    >>> fig.axes[0].get_title().startswith("History of")
    True
"""

from __future__ import annotations

from airda.viz._data import MAX_TRIALS, StudyView, load
from airda.viz._nas import cell_svg, cost_attributes, nas_kind, nb201_arch, plot_cost_front
from airda.viz._plots import (
    BACKENDS,
    plot_contour,
    plot_history,
    plot_importance,
    plot_intermediate_values,
    plot_parallel_coordinates,
    plot_pareto_front,
    plot_slice,
    plot_timeline,
)
from airda.viz._report import report_html, write_report

__all__ = [
    "BACKENDS",
    "MAX_TRIALS",
    "StudyView",
    "cell_svg",
    "cost_attributes",
    "load",
    "nas_kind",
    "nb201_arch",
    "plot_contour",
    "plot_cost_front",
    "plot_history",
    "plot_importance",
    "plot_intermediate_values",
    "plot_parallel_coordinates",
    "plot_pareto_front",
    "plot_slice",
    "plot_timeline",
    "report_html",
    "write_report",
]

"""Schedulers decide budgets and early stops: a trial reports intermediate values with
``trial.report(step, value)`` and asks ``trial.should_prune()``.

==========================  ===============================================================
scheduler                   rule
==========================  ===============================================================
:class:`MedianStopping`     stop below the median of other trials at the same step
:class:`SuccessiveHalving`  rungs at ``min_resource * eta**k``; top ``1/eta`` of a cohort
:class:`ASHA`               asynchronous successive halving over the whole study
:class:`Hyperband`          ASHA brackets with different first rungs
==========================  ===============================================================

For the budget-based schedulers the step is the resource spent (epochs, samples seen):
``max_resource`` is required and ``should_prune()`` before any report is an error. A NaN
cannot be reported (``trial.report`` raises ``ValueError``, so the trial fails with that
reason); ``inf`` is allowed and ranks last.

By name (configuration files, ``airda run``'s ``[scheduler]`` table):
``get_scheduler("asha", {"max_resource": 27})``; the names are ``median``, ``asha``,
``successive_halving`` and ``hyperband`` (:data:`SCHEDULERS`).

Population-based training (:class:`airda.strategies.PopulationBasedTraining`, strategy
``"pbt"``) and BOHB (:class:`airda.strategies.BOHB`, strategy ``"bohb"``, used with
:class:`Hyperband`) are strategies: they decide which hyperparameters the next trial trains
with, so they live in :mod:`airda.strategies` (``airda.schedulers.BOHB`` and
``airda.schedulers.PopulationBasedTraining`` still resolve, with a deprecation warning, for one
release).
"""

from __future__ import annotations

from airda._budget import rung_steps
from airda._deprecation import moved_names
from airda.schedulers._halving import ASHA, Hyperband, SuccessiveHalving
from airda.schedulers._median import MedianStopping, ReportingTrial, Scheduler, TrialHistory
from airda.schedulers._registry import SCHEDULERS, get_scheduler

__all__ = [
    "ASHA",
    "SCHEDULERS",
    "Hyperband",
    "MedianStopping",
    "ReportingTrial",
    "Scheduler",
    "SuccessiveHalving",
    "TrialHistory",
    "get_scheduler",
    "rung_steps",
]

# Strategies once re-exported here; schedulers sit beside strategies, not above them, so they
# are fetched on access (never at import) and only for one more release.
_MOVED = {
    "BOHB": "airda.strategies.bohb",
    "PopulationBasedTraining": "airda.strategies.pbt",
}


__getattr__ = moved_names(__name__, _MOVED)

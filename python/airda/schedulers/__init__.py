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

Population-based training (:class:`PopulationBasedTraining`, strategy ``"pbt"``) and BOHB
(:class:`BOHB`, strategy ``"bohb"``, used with :class:`Hyperband`) are strategies: they decide
which hyperparameters the next trial trains with.
"""

from __future__ import annotations

from airda.schedulers._halving import ASHA, Hyperband, SuccessiveHalving, rung_steps
from airda.schedulers._median import MedianStopping, ReportingTrial, Scheduler, TrialHistory
from airda.schedulers._registry import SCHEDULERS, get_scheduler
from airda.strategies.bohb import BOHB
from airda.strategies.pbt import PopulationBasedTraining

__all__ = [
    "ASHA",
    "BOHB",
    "SCHEDULERS",
    "Hyperband",
    "MedianStopping",
    "PopulationBasedTraining",
    "ReportingTrial",
    "Scheduler",
    "SuccessiveHalving",
    "TrialHistory",
    "get_scheduler",
    "rung_steps",
]

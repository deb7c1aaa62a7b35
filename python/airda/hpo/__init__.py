"""Hyperparameter optimisation: training-loop integration (report, stop, checkpoint),
learning-rate schedules, optimiser and curriculum search spaces.

``import airda.hpo`` stays light: torch is imported when a schedule or checkpoint needs it.
"""

from __future__ import annotations

from airda.hpo.tuning import CheckpointError, Session

__all__ = ["CheckpointError", "Session"]

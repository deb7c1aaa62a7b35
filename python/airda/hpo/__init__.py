"""Hyperparameter optimisation: training-loop integration (report, stop, checkpoint),
learning-rate schedules, optimiser and curriculum search spaces.

``import airda.hpo`` stays light: torch is imported when a schedule or checkpoint needs it.
"""

from __future__ import annotations

from airda.hpo.curriculum import (
    CURRICULA,
    PACINGS,
    CurriculumSampler,
    curriculum_space,
    pacing_fraction,
)
from airda.hpo.schedules import (
    LR_FAMILIES,
    LRRangeResult,
    batch_size_space,
    build_lr_scheduler,
    build_optimizer,
    lr_at,
    lr_range_test,
    lr_schedule_space,
    optimizer_space,
)
from airda.hpo.tuning import CheckpointError, Session

__all__ = [
    "CURRICULA",
    "LR_FAMILIES",
    "PACINGS",
    "CheckpointError",
    "CurriculumSampler",
    "LRRangeResult",
    "Session",
    "batch_size_space",
    "build_lr_scheduler",
    "build_optimizer",
    "curriculum_space",
    "lr_at",
    "lr_range_test",
    "lr_schedule_space",
    "optimizer_space",
    "pacing_fraction",
]

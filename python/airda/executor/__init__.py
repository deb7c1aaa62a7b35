"""Deprecated: the executors moved to :mod:`airda.study` (``from airda.study import
ProcessExecutor``); this module re-exports them for one release."""

import warnings

from airda.study._executor import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    get_executor,
)

__all__ = ["Executor", "ProcessExecutor", "SerialExecutor", "ThreadExecutor", "get_executor"]

warnings.warn(
    "airda.executor moved to airda.study (e.g. from airda.study import ProcessExecutor)",
    DeprecationWarning,
    stacklevel=2,
)

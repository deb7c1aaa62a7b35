"""Trial records: the immutable :class:`FrozenTrial` every layer passes around, its states,
and the checks of what an objective returns.

The live handle an objective receives (reporting, pruning, define-by-run) is
:class:`airda.study.Trial`: it belongs to the study layer, which alone touches a study's
internals."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airda._deprecation import moved_names

__all__ = ["FrozenTrial", "TrialPruned", "TrialState"]

# The system attribute that holds a trial's constraint values (Optuna's name for them).
CONSTRAINTS_KEY = "constraints"
CONSTRAINT_NAMES_KEY = "constraint_names"  # their names, where given by name


class TrialState(str, enum.Enum):
    WAITING = "waiting"  # enqueued, not started
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class TrialPruned(Exception):
    """Raise from an objective to stop the trial early (after ``trial.should_prune()``)."""


@dataclass(frozen=True)
class FrozenTrial:
    """An immutable record of one trial, as stored."""

    number: int
    state: TrialState
    params: dict[str, Any]
    values: tuple[float, ...] | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: float | None = None  # seconds since the epoch
    datetime_complete: float | None = None
    worker: str = ""
    error: str | None = None
    traceback: str | None = None
    trial_id: int = -1

    @property
    def value(self) -> float | None:
        """The single objective value (None unless complete); raises for multi-objective."""
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise ValueError(f"trial {self.number} has {len(self.values)} values; use .values")
        return self.values[0]

    @property
    def duration(self) -> float | None:
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate) if self.intermediate else None

    @property
    def constraints(self) -> tuple[float, ...] | None:
        """The trial's constraint values (each ``<= 0`` when satisfied), None if it has none
        (see :meth:`airda.study.Trial.set_constraints`)."""
        c = self.system_attrs.get(CONSTRAINTS_KEY)
        return None if c is None else tuple(float(v) for v in c)

    @property
    def violation(self) -> float:
        """The sum of the constraint values above 0: 0.0 for a feasible trial (or one without
        constraints), inf for a trial whose constraint values are not finite numbers."""
        c = self.system_attrs.get(CONSTRAINTS_KEY)
        if not c:
            return 0.0
        try:
            return float(sum(max(float(v), 0.0) for v in c))
        except (TypeError, ValueError):
            return math.inf

    @property
    def feasible(self) -> bool:
        """Whether every constraint is satisfied (True for a trial without constraints)."""
        return self.violation == 0.0


def _describe(v: Any) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _finite(v: Any) -> float:
    # bool and str would pass float(); a study that minimises True or "1.5" is a bug upstream.
    if isinstance(v, (bool, str, bytes)) or type(v).__name__ == "bool_":
        raise ValueError(f"the objective returned {_describe(v)}; expected a number")
    if not isinstance(v, numbers.Real):
        raise ValueError(f"the objective returned {_describe(v)}; expected a number")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"the objective returned {_describe(v)}: too large for a float") from None
    if not math.isfinite(f):
        raise ValueError(f"the objective returned {f}: not a finite number")
    return f


def check_values(raw: Any, n_objectives: int) -> tuple[float, ...]:
    """Objective output -> a tuple of finite floats; ValueError saying what is wrong.

    Takes a number, a sequence of numbers (one per objective), or a NumPy/PyTorch scalar or
    1-D array; refuses bool, str and numbers a float cannot hold.
    """
    vals: Sequence[Any]
    if isinstance(raw, (list, tuple)):
        vals = raw
    elif isinstance(raw, (numbers.Real, bool, str, bytes)):
        vals = (raw,)
    elif hasattr(raw, "tolist") and hasattr(raw, "shape") and len(raw.shape) <= 1:
        try:
            listed = raw.tolist()
        except Exception as exc:
            raise ValueError(f"the objective returned {_describe(raw)} ({exc})") from None
        vals = listed if isinstance(listed, list) else (listed,)
    else:
        raise ValueError(
            f"the objective returned {_describe(raw)}; expected a number "
            f"or a sequence of {n_objectives} numbers"
        )
    if len(vals) != n_objectives:
        raise ValueError(f"the objective returned {len(vals)} values; the study has {n_objectives}")
    return tuple(_finite(v) for v in vals)


def check_constraints(raw: Any) -> tuple[float, ...]:
    """Constraint values -> a non-empty tuple of finite floats; ValueError saying what is wrong
    (a NaN constraint is a bug in the code that computed it, not an infeasible trial; a large
    finite value stands for "very infeasible")."""
    if isinstance(raw, (numbers.Real, bool, str, bytes)):
        raw = (raw,)
    elif hasattr(raw, "tolist") and hasattr(raw, "shape") and len(raw.shape) <= 1:
        listed = raw.tolist()
        raw = listed if isinstance(listed, list) else (listed,)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ValueError(
            f"constraints must be a number or a non-empty sequence of numbers, got {_describe(raw)}"
        )
    out = []
    for v in raw:
        if isinstance(v, (bool, str, bytes)) or not isinstance(v, numbers.Real):
            raise ValueError(f"a constraint value must be a number, got {_describe(v)}")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ValueError(f"a constraint value must be a finite number, got {f}")
        out.append(f)
    return tuple(out)


def frozen_from_mapping(d: Mapping[str, Any]) -> FrozenTrial:
    """Rebuild a FrozenTrial from its JSON-friendly form (see :func:`frozen_to_mapping`)."""
    return FrozenTrial(
        number=int(d["number"]),
        state=TrialState(d["state"]),
        params=dict(d.get("params") or {}),
        values=tuple(d["values"]) if d.get("values") is not None else None,
        intermediate={int(k): float(v) for k, v in (d.get("intermediate") or {}).items()},
        user_attrs=dict(d.get("user_attrs") or {}),
        system_attrs=dict(d.get("system_attrs") or {}),
        datetime_start=d.get("datetime_start"),
        datetime_complete=d.get("datetime_complete"),
        worker=d.get("worker", ""),
        error=d.get("error"),
        traceback=d.get("traceback"),
        trial_id=int(d.get("trial_id", -1)),
    )


def frozen_to_mapping(t: FrozenTrial) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.value,
        "params": t.params,
        "values": list(t.values) if t.values is not None else None,
        "intermediate": {str(k): v for k, v in sorted(t.intermediate.items())},
        "user_attrs": t.user_attrs,
        "system_attrs": t.system_attrs,
        "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete,
        "duration": t.duration,
        "worker": t.worker,
        "error": t.error,
        "traceback": t.traceback,
    }


# Deprecated path kept for one release: the live Trial moved up to the study layer.
__getattr__ = moved_names(__name__, {"Trial": "airda.study"})

"""The live trial an objective receives: its parameters, reporting and pruning."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airda.trial import FrozenTrial, _describe

if TYPE_CHECKING:
    from airda.study._study import Study

__all__ = ["Trial"]


class Trial:
    """The live trial an objective receives: its parameters, reporting and pruning.

    Parameters asked by the strategy are in :attr:`params`; ``suggest_*`` returns them, or,
    for a parameter the space does not have yet (define-by-run), samples it and adds it to the
    study's space.
    """

    def __init__(self, study: Study, frozen: FrozenTrial):
        self.study = study
        self._frozen = frozen
        self.number = frozen.number
        self.params: dict[str, Any] = dict(frozen.params)
        self.user_attrs: dict[str, Any] = dict(frozen.user_attrs)
        self.intermediate: dict[int, float] = dict(frozen.intermediate)
        self.accessed: set[str] = set()
        self.constraints: tuple[float, ...] | None = None  # set_constraints; stored at tell
        self._named: dict[str, float] = {}  # set_constraint(key, value)

    @property
    def trial_id(self) -> int:
        return self._frozen.trial_id

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    # ---- define-by-run -------------------------------------------------------------------

    def _suggest(self, name: str, param: Any) -> Any:
        self.accessed.add(name)
        if name in self.params:
            if not self.study._dynamic:
                return self.params[name]
            if self._frozen.system_attrs.get("fixed"):
                # ask(fixed=...): the caller manages these values (e.g. one choice per trial,
                # as airda.codeopt.evolve keys its programs); checked only against a known one
                self.study._check_suggested(name, param)
            else:  # proposed or enqueued: the same parameter, or an error
                self.params[name] = self.study._given_suggested(name, param, self.params[name])
            return self.params[name]
        value = self.study._suggest_new(self, name, param)
        self.params[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        from airda.space import Float

        return self._suggest(name, Float(low, high, log=log, step=step))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        from airda.space import Int

        return self._suggest(name, Int(low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        from airda.space import Categorical

        return self._suggest(name, Categorical(tuple(choices)))

    # ---- reporting and pruning -----------------------------------------------------------

    def report(self, step: int, value: float) -> None:
        """Record an intermediate value (e.g. validation loss after epoch `step`).

        The step comes first (Optuna's ``report(value, step)`` is the other way round: name
        them, ``report(step=epoch, value=loss)``, when porting)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            order = (
                " (airda's order is report(step, value); Optuna's is report(value, step))"
                if isinstance(value, numbers.Integral) and not isinstance(value, bool)
                else ""
            )
            raise ValueError(f"step must be a non-negative int, got {step!r}{order}")
        if isinstance(value, (bool, str, bytes)) or not isinstance(value, numbers.Real):
            if not (hasattr(value, "item") and getattr(value, "shape", None) in ((), (1,))):
                raise TypeError(
                    f"trial {self.number}: report a number, got {_describe(value)} at step {step}"
                )
            value = value.item()
        try:
            v = float(value)
        except OverflowError:
            v = math.copysign(math.inf, value)
        if math.isnan(v):
            raise ValueError(f"trial {self.number}: reported value at step {step} is NaN")
        # Stored first: when the write fails, the live trial does not claim the value either.
        self.study._storage.set_intermediate(self.trial_id, int(step), v)
        self.intermediate[int(step)] = v

    def should_prune(self) -> bool:
        """Whether the study's scheduler would stop this trial at its last reported step."""
        return self.study._should_prune(self)

    def set_constraints(self, values: Any) -> None:
        """The trial's constraint values, each ``<= 0`` when satisfied (Optuna's convention):
        e.g. ``trial.set_constraints([latency_ms - 5.0, params_m - 2.0])``. Stored with the
        result when the trial ends; the best trial and the Pareto front are then the best
        feasible ones, and the strategies that learn (auto, TPE, GP, CMA-ES, NSGA-II, REA,
        local search) prefer feasible candidates: among feasible trials by value, the others
        by their total violation. Every trial of a study gives the same number of values.

        Raises:
            ValueError: a value that is not a finite number, or another count than the
                study's earlier trials gave.
            TypeError: the study's strategy does not take constraints into account.
        """
        from airda.trial import check_constraints

        checked = check_constraints(values)
        if self._named:
            raise ValueError("this trial's constraints were given by name (set_constraint)")
        self.study._check_constraints(checked)
        self.constraints = checked

    def set_constraint(self, key: str, value: float) -> None:
        """One named constraint value, ``<= 0`` when satisfied (Optuna 5's
        ``trial.set_constraint(key, value)``): the trial's constraints are its named values
        in the order of their names, and every trial of the study names the same ones."""
        from airda.trial import check_constraints

        if not isinstance(key, str) or not key:
            raise ValueError(f"a constraint's name is a non-empty str, got {key!r}")
        if self.constraints is not None and not self._named:
            raise ValueError("this trial's constraints were given as a list (set_constraints)")
        (checked,) = check_constraints([value])
        if not getattr(self.study.strategy, "supports_constraints", False):
            self.study._check_constraints((checked,))  # raises the strategy's TypeError
        self._named[key] = checked
        self.constraints = tuple(v for _, v in sorted(self._named.items()))

    def set_user_attr(self, key: str, value: Any) -> None:
        self.study._storage.set_trial_user_attr(self.trial_id, key, value)
        self.user_attrs[key] = value

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"

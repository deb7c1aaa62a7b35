"""Hyperparameter importance: which parameters a study's results depend on.

:func:`importance` gives each parameter a share of the explained variation, summing to 1, by
one of two evaluators, both as Optuna computes them (so their numbers can be compared):

- ``"fanova"`` (default): fANOVA on a random forest (scikit-learn's): the variance of each
  tree's marginal prediction along a parameter over the tree's total variance, averaged over
  64 trees. The marginals of all trees are computed at once in NumPy, about 100 times faster
  than Optuna's at 1,000 trials (docs/results-viz.md).
- ``"ped-anova"``: PED-ANOVA, how differently a parameter is distributed among the best 10%
  of trials than among all of them. Needs nothing beyond NumPy and is cheap at any size.

Parameters are encoded as Optuna encodes them for fANOVA: a float or an int by its value (a
log-scaled one too), a categorical one-hot. Only complete trials with a finite target count.
A parameter missing from some trials (a conditional one): fANOVA uses the trials that have
every parameter it assesses (by default the parameters every such trial has, as Optuna's
intersection search space); PED-ANOVA weighs each parameter over the trials where it is
active. A parameter that never varies has importance 0.

Example:
    >>> import airda
    >>> from airda.hpo.importance import importance
    >>> from airda.space import Float
    >>> study = airda.create_study(space={"a": Float(0, 1), "b": Float(0, 1)}, seed=0)
    >>> study.optimize(lambda t: 10 * t["a"] ** 2 + 0.1 * t["b"], n_trials=60)
    >>> scores = importance(study)
    >>> list(scores), round(sum(scores.values()), 6)
    (['a', 'b'], 1.0)
    >>> scores["a"] > 0.9
    True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from airda.hpo._importance_fanova import fanova_importances
from airda.hpo._importance_ped import ParamInfo, ped_anova_importances
from airda.trial import FrozenTrial, TrialState

__all__ = ["EVALUATORS", "importance"]

EVALUATORS = ("fanova", "ped-anova")


def importance(
    study_or_trials: Any,
    *,
    evaluator: str = "fanova",
    params: Sequence[str] | None = None,
    target: Callable[[FrozenTrial], float] | None = None,
    n_trees: int = 64,
    max_depth: int = 64,
    seed: int | None = 0,
    space: Any = None,
    direction: str | None = None,
) -> dict[str, float]:
    """The importance of each parameter, largest first, normalised to sum to 1.

    Args:
        study_or_trials: a :class:`~airda.study.Study` (its space and directions are used), or
            a sequence of :class:`~airda.trial.FrozenTrial` records.
        evaluator: ``"fanova"`` or ``"ped-anova"``.
        params: the parameters to assess (default: every parameter; for fANOVA, those that
            every complete trial has).
        target: the value of a trial to explain (default: its single value); required for a
            study with several objectives, e.g. ``target=lambda t: t.values[1]``. PED-ANOVA
            takes a lower target as better (negate a score to maximise).
        n_trees, max_depth, seed: the random forest of fANOVA.
        space: the :class:`~airda.space.Space` (or its dict form) of a sequence of trials; by
            default inferred from the values (ranges from the smallest and largest seen).
        direction: ``"minimize"`` or ``"maximize"`` for a sequence of trials (default:
            minimize); a study's own direction otherwise.

    Raises:
        ValueError: fewer than 2 complete trials with a finite target, an unknown
            evaluator or parameter, several objectives without `target`, or (fANOVA) a
            target that does not vary.

    Example:
        >>> from airda.hpo.importance import importance
        >>> from airda.trial import FrozenTrial, TrialState
        >>> trials = [FrozenTrial(i, TrialState.COMPLETE, {"x": i / 9, "c": "ab"[i % 2]},
        ...                       values=((i / 9) ** 2,)) for i in range(10)]
        >>> importance(trials, evaluator="ped-anova")["x"] > 0.5
        True
    """
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {list(EVALUATORS)}, got {evaluator!r}")
    for name, value in (("n_trees", n_trees), ("max_depth", max_depth)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    trials, directions, space_obj = _unpack(study_or_trials, space, direction)
    if params is not None:
        if isinstance(params, str) or not all(isinstance(p, str) for p in params):
            raise TypeError(f"params must be a list of parameter names, got {params!r}")
        params = list(params)
    if target is None and len(directions) > 1:
        raise ValueError(
            f"the study has {len(directions)} objectives: give target, e.g. "
            "target=lambda t: t.values[0]"
        )
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.values is not None]
    values = np.array([_target(t, target) for t in done], dtype=np.float64)
    keep = np.isfinite(values)
    done = [t for t, k in zip(done, keep, strict=True) if k]
    values = values[keep]
    if len(done) < 2:
        raise ValueError(
            f"importance needs at least 2 complete trials with a finite target, got {len(done)}"
        )
    seen = sorted({k for t in done for k in t.params})
    if params is not None:
        unknown = [p for p in params if p not in seen]
        if unknown:
            raise ValueError(
                f"no complete trial has the parameter(s) {unknown}; the trials have {seen}"
            )
    if evaluator == "fanova":
        return _fanova(done, values, params, space_obj, n_trees, max_depth, seed)
    minimize = target is not None or directions[0] == "minimize"
    loss = values if minimize else -values
    names = params if params is not None else seen
    infos = [_info(name, space_obj, done) for name in names]
    raw = ped_anova_importances(infos, [t.params for t in done], loss)
    return _normalise(dict(zip(names, raw.tolist(), strict=True)))


def _unpack(obj: Any, space: Any, direction: str | None) -> tuple[list[FrozenTrial], tuple, Any]:
    from airda.space import Space

    if hasattr(obj, "trials") and hasattr(obj, "directions"):
        trials = list(obj.trials)
        directions = tuple(obj.directions)
        space_obj = space if space is not None else getattr(obj, "space", None)
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        trials = list(obj)
        if not all(isinstance(t, FrozenTrial) for t in trials):
            raise TypeError("study_or_trials must be a Study or a sequence of FrozenTrial")
        if direction not in (None, "minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        n_obj = max((len(t.values) for t in trials if t.values is not None), default=1)
        directions = (direction or "minimize",) * n_obj
        space_obj = space
    else:
        raise TypeError(
            f"study_or_trials must be a Study or a sequence of FrozenTrial, got "
            f"{type(obj).__name__}"
        )
    if isinstance(space_obj, Mapping):
        space_obj = Space(space_obj)
    return trials, directions, space_obj


def _target(t: FrozenTrial, target: Callable[[FrozenTrial], float] | None) -> float:
    if target is None:
        assert t.values is not None
        return float(t.values[0])
    value = target(t)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"target returned {value!r} for trial {t.number}; expected a number")
    return float(value)


def _info(name: str, space: Any, trials: list[FrozenTrial]) -> ParamInfo:
    """A parameter's kind and range: from the space when it has the parameter, else from the
    values the trials hold."""
    if space is not None and name in space:
        p = space[name]
        if p.kind == "categorical":
            return ParamInfo(name, "categorical", choices=tuple(p.choices))
        if p.kind == "fixed":
            return ParamInfo(name, "categorical", choices=(p.value,))
        step = getattr(p, "step", None)
        if p.kind == "int" and step == 1:
            step = None if p.log else 1
        return ParamInfo(
            name, p.kind, low=float(p.low), high=float(p.high), log=bool(p.log), step=step
        )
    values = [t.params[name] for t in trials if name in t.params]
    numeric = all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )
    if not numeric:
        choices: list[Any] = []
        for v in values:
            if not any(type(c) is type(v) and c == v for c in choices):
                choices.append(v)
        return ParamInfo(name, "categorical", choices=tuple(choices))
    is_int = all(isinstance(v, numbers.Integral) for v in values)
    lo, hi = float(min(values)), float(max(values))
    return ParamInfo(
        name, "int" if is_int else "float", low=lo, high=hi, step=1 if is_int else None
    )


def _fanova(
    done: list[FrozenTrial],
    values: np.ndarray,
    params: list[str] | None,
    space: Any,
    n_trees: int,
    max_depth: int,
    seed: int | None,
) -> dict[str, float]:
    if params is None:
        # Optuna's intersection search space: the parameters every complete trial has.
        names = sorted(set.intersection(*(set(t.params) for t in done)))
        if not names:
            raise ValueError("no parameter is present in every complete trial; give params")
    else:
        names = sorted(params)
    rows = [i for i, t in enumerate(done) if all(n in t.params for n in names)]
    if len(rows) < 2:
        raise ValueError(
            f"fewer than 2 complete trials have every parameter of {names}; "
            "assess fewer parameters or use evaluator='ped-anova'"
        )
    trials = [done[i] for i in rows]
    y = values[rows]
    infos = [_info(n, space, trials) for n in names]
    varying = [i for i in infos if not i.single]
    result = {i.name: 0.0 for i in infos if i.single}
    if varying:
        X, bounds, groups = _encode(varying, trials)
        raw = fanova_importances(
            X, y, bounds, groups, n_trees=n_trees, max_depth=max_depth, seed=seed
        )
        result.update(zip((i.name for i in varying), raw.tolist(), strict=True))
    return _normalise(result)


def _encode(
    infos: list[ParamInfo], trials: list[FrozenTrial]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Optuna's fANOVA encoding: numbers as they are, categoricals one-hot."""
    from airda.hpo._importance_ped import _choice_index

    columns, bounds, groups = [], [], []
    for info in infos:
        start = len(columns)
        if info.kind == "categorical":
            idx = np.array([_choice_index(info.choices, t.params[info.name]) for t in trials])
            for k in range(len(info.choices)):
                columns.append((idx == k).astype(np.float64))
                bounds.append((0.0, 1.0))
        else:
            columns.append(np.array([float(t.params[info.name]) for t in trials]))
            bounds.append((info.low, info.high))
        groups.append(np.arange(start, len(columns)))
    return np.stack(columns, axis=1), np.array(bounds, dtype=np.float64), groups


def _normalise(raw: dict[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    # When nothing explains anything, equal shares (as Optuna).
    out = {k: 1.0 / len(raw) for k in raw} if total <= 0 else {k: v / total for k, v in raw.items()}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

"""Drive an existing Optuna study with any airda strategy: :func:`OptunaSampler`.

The sampler is an ``optuna.samplers.BaseSampler``. Each trial, Optuna asks it for the relative
search space (the parameters every finished trial has: Optuna's intersection search space);
the sampler maps those distributions to an airda :class:`~airda.space.Space`
(``FloatDistribution`` -> :class:`~airda.space.Float` with its log/step, ``IntDistribution`` ->
:class:`~airda.space.Int`, ``CategoricalDistribution`` -> :class:`~airda.space.Categorical` over
the choice indices, so any choice type works), tells the strategy the study's trials it has not
seen (complete, pruned, failed; running ones are noted, for a constant liar), and returns the
strategy's next candidate. Parameters outside the relative space (define-by-run branches, and
every parameter of the first trials) come from ``independent_sampler`` (Optuna's
``RandomSampler`` by default).

The airda strategy asks with the trial number as its ask index, so a seeded study is
reproducible; when the relative space changes, the strategy is set up again and replays the
history (its state is a function of the history).

Optuna is imported when a sampler is made, not when this module is; without it,
:func:`OptunaSampler` raises ImportError saying how to install it.

Example:
    >>> import optuna
    >>> from airda.hpo import OptunaSampler
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=OptunaSampler("tpe", seed=0))
    >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=40)
    >>> abs(study.best_params["x"] - 2) < 0.5
    True
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["OptunaSampler"]


def OptunaSampler(
    strategy: Any = "tpe",
    *,
    seed: int | None = None,
    independent_sampler: Any = None,
    **options: Any,
) -> Any:
    """An ``optuna.samplers.BaseSampler`` whose relative samples come from an airda strategy.

    Args:
        strategy: a registered airda strategy name (``"tpe"``, ``"motpe"``, ``"random"``,
            ``"rea"``, ...) or a stored config dict; an instance is not accepted (the sampler
            builds its own, and rebuilds it when the search space changes).
        seed: the strategy's seed (and the default independent sampler's).
        independent_sampler: an Optuna sampler for parameters outside the relative search
            space; default ``optuna.samplers.RandomSampler(seed=seed)``.
        **options: the strategy's options (e.g. ``n_startup_trials=5``).

    Raises:
        ImportError: optuna is not installed.
        ValueError: unknown strategy or bad options (checked here, not at the first trial).
    """
    return _sampler_class()(strategy, seed, independent_sampler, options)


@functools.cache
def _sampler_class() -> type:
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "airda.hpo.OptunaSampler needs optuna: pip install optuna (or airda[bench])"
        ) from None
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import TrialState as OptunaState

    from airda.space import Categorical, Float, Int, Space
    from airda.strategies import Strategy, StrategyExhausted, get_strategy
    from airda.trial import FrozenTrial, TrialState

    states = {
        OptunaState.COMPLETE: TrialState.COMPLETE,
        OptunaState.PRUNED: TrialState.PRUNED,
        OptunaState.FAIL: TrialState.FAIL,
        OptunaState.RUNNING: TrialState.RUNNING,
        OptunaState.WAITING: TrialState.WAITING,
    }

    def to_param(dist: Any) -> Any:
        if isinstance(dist, FloatDistribution):
            return Float(dist.low, dist.high, log=dist.log, step=dist.step)
        if isinstance(dist, IntDistribution):
            return Int(dist.low, dist.high, step=dist.step, log=dist.log)
        if isinstance(dist, CategoricalDistribution):
            return Categorical(tuple(range(len(dist.choices))))
        raise TypeError(f"no airda parameter for the Optuna distribution {dist!r}")

    class AirdaSampler(optuna.samplers.BaseSampler):
        """Optuna sampler backed by an airda strategy; made by :func:`OptunaSampler`."""

        def __init__(self, strategy: Any, seed: Any, independent: Any, options: dict) -> None:
            if isinstance(strategy, Strategy):
                raise ValueError(
                    "give the strategy by name (and options), not an instance: the sampler "
                    "builds its own and rebuilds it when the search space changes"
                )
            self._name = strategy
            self._options = dict(options)
            probe = get_strategy(strategy, seed=seed, **options)  # bad options fail here
            self._seed = probe.seed
            self._independent = independent or optuna.samplers.RandomSampler(seed=seed)
            self._intersection = optuna.search_space.IntersectionSearchSpace(include_pruned=True)
            self._strategy: Strategy | None = None
            self._key: Any = None
            self._dists: dict[str, Any] = {}
            self._told: set[int] = set()
            self._noted: set[int] = set()

        @property
        def strategy(self) -> Strategy | None:
            """The airda strategy of the current relative search space (None before one)."""
            return self._strategy

        def reseed_rng(self) -> None:
            self._independent.reseed_rng()

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            space = self._intersection.calculate(study)
            return {n: d for n, d in space.items() if not d.single()}

        def _setup(self, study: Any, search_space: dict[str, Any]) -> Strategy:
            key = tuple(sorted((n, repr(d)) for n, d in search_space.items()))
            if self._strategy is None or key != self._key:
                strategy = get_strategy(self._name, seed=self._seed, **self._options)
                space = Space({n: to_param(d) for n, d in search_space.items()})
                directions = [d.name.lower() for d in study.directions]
                strategy.setup(space, directions)
                self._strategy, self._key = strategy, key
                self._dists = dict(search_space)
                self._told, self._noted = set(), set()
            return self._strategy

        def _convert(self, t: Any) -> FrozenTrial | None:
            params = {}
            for name, dist in self._dists.items():
                if name not in t.params or t.distributions.get(name) != dist:
                    return None
                value = t.params[name]
                if isinstance(dist, CategoricalDistribution):
                    value = int(dist.to_internal_repr(value))
                params[name] = value
            state = states[t.state]
            values = tuple(t.values) if state is TrialState.COMPLETE and t.values else None
            return FrozenTrial(
                number=t.number,
                state=state,
                params=params,
                values=values,
                intermediate=dict(t.intermediate_values),
            )

        def _sync(self, study: Any, current: int) -> None:
            assert self._strategy is not None
            for t in study.get_trials(deepcopy=False):
                if t.number == current or t.number in self._told:
                    continue
                frozen = self._convert(t)
                finished = t.state.is_finished()
                if frozen is None:
                    if finished:
                        self._told.add(t.number)  # it lacks the space's parameters: left out
                    continue
                if t.number not in self._noted:
                    self._strategy.note(frozen)
                    self._noted.add(t.number)
                if finished:
                    self._strategy.tell(frozen)
                    self._told.add(t.number)

        def sample_relative(
            self, study: Any, trial: Any, search_space: dict[str, Any]
        ) -> dict[str, Any]:
            if not search_space:
                return {}
            strategy = self._setup(study, search_space)
            self._sync(study, trial.number)
            strategy.n_asked = trial.number  # the ask index: reproducible for a seed
            try:
                candidate = strategy.ask(1)[0]
            except StrategyExhausted:
                return {}
            out = {}
            for name, value in candidate.items():
                dist = self._dists[name]
                if isinstance(dist, CategoricalDistribution):
                    value = dist.to_external_repr(value)
                out[name] = value
            return out

        def sample_independent(
            self, study: Any, trial: Any, param_name: str, param_distribution: Any
        ) -> Any:
            return self._independent.sample_independent(
                study, trial, param_name, param_distribution
            )

        def before_trial(self, study: Any, trial: Any) -> None:
            self._independent.before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._independent.after_trial(study, trial, state, values)

    AirdaSampler.__qualname__ = AirdaSampler.__name__ = "OptunaSampler"
    return AirdaSampler

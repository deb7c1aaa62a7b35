"""The default strategy: picks and switches algorithms by the space, the objectives and the
trials so far.

``AutoSearch`` (name ``"auto"``; what a study uses when no strategy is named) is a
function of the history like every strategy, so a study resumed from storage continues exactly
(one worker; with several, each worker's phase follows the trials it has been told). Its rules,
each measured on bench/hpo_table.py's suites (docs/results-hpo.md, "The default strategy"):

* **Several objectives**: :class:`~airda.strategies.tpe.MOTPE`.
* **Conditional parameters** (a parameter with ``when``): :class:`~airda.strategies.tpe.TPE`
  with one joint estimator per group of parameters active together (``group=True``). After
  ``gp_trials`` asks, two of every three asks are CMA-ES in the best trial's branch: over the
  numeric parameters active there, every other parameter held at the best trial's value, started
  there with the spread of the branch's best trials; the third ask stays TPE's (which learns
  from all of them), so other branches are still explored. TPE alone refines a branch slowly:
  Optuna's TPE ended slightly ahead of it at 1,000 trials on the conditional benchmark.
* **Otherwise** the first ``gp_trials`` asks (300 by default) are Gaussian-process BO
  (:class:`~airda.strategies.gp.GaussianProcessSearch` with ``output="power"``: the losses go
  through a Yeo-Johnson transform before the GP sees them, as in HEBO, which keeps a few large
  losses from flattening the model near the optimum). An exact GP costs O(n^3) per ask, so
  after that:

  - a space of numeric parameters only continues with CMA-ES
    (:class:`~airda.strategies.cmaes.CmaEs`, IPOP restarts) started at the best trial so far,
    its step size the spread of the best tenth of the trials (at least 0.02 of each range): the
    GP found the basin, CMA-ES
    converges in it at a cost per ask that does not grow with the history;
  - a space with categorical parameters continues with multivariate TPE, which learns from
    every trial told, the GP's included, for two of every three asks; the third is a local
    move: a neighbour of the best trial not yet evaluated (one parameter changed: another
    choice, the next integer, a normal step of 0.05 of a float's range). In a space with few
    candidates TPE comes to propose ones already evaluated (a quarter of its asks on
    NAS-Bench-201 after 1,000 trials); such a proposal is replaced by a local move too, or
    failing that a random unevaluated candidate.

With constraints (``trial.set_constraints``) every phase honours them: the GP multiplies
expected improvement by the probability of feasibility, TPE and CMA-ES rank feasible trials
first, and "the best trial" is the best feasible one (else the least violating).

The phase of an ask is decided by its ask index, so replaying a history rebuilds the same
state. ``phase`` names the algorithm of the next ask.

Example:
    >>> import airda
    >>> from airda.space import Float
    >>> space = {"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}
    >>> study = airda.create_study(space=space, seed=0)  # strategy="auto"
    >>> study.optimize(lambda t: (t["x"] - 2.0) ** 2 + (t["y"] - 3.0) ** 2, n_trials=30)
    >>> study.best_value < 0.05
    True
    >>> study.strategy.phase
    'gp'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from airda.space import Categorical, Float, Int, Space, candidate_key
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["AutoSearch"]


class AutoSearch(Strategy):
    """The default strategy: GP BO, then CMA-ES or TPE; TPE for conditional spaces; MOTPE
    for several objectives (see the module docstring).

    Args:
        gp_trials: asks made by the GP before the switch (at least ``2``).
        seed: the sampling seed (each algorithm draws from it).
    """

    name = "auto"
    supports_constraints = True
    supports_multi_objective = True
    tracks_seen = True  # the late TPE's repeated proposals are replaced by unseen ones

    def __init__(self, *, gp_trials: int = 300, seed: int | None = None):
        super().__init__(seed=seed)
        if isinstance(gp_trials, bool) or not isinstance(gp_trials, int) or gp_trials < 2:
            raise ValueError(f"gp_trials must be an integer >= 2, got {gp_trials!r}")
        self.gp_trials = gp_trials

    def options(self) -> dict[str, Any]:
        return {"gp_trials": self.gp_trials}

    # ---- state -----------------------------------------------------------------------------
    def _reset(self) -> None:
        from airda.strategies.gp import GaussianProcessSearch
        from airda.strategies.tpe import MOTPE, TPE

        assert self.space is not None
        space = self.space
        params = [space[n] for n in space.names]
        self._conditional = any(p.when for p in params)
        self._numeric_only = all(
            isinstance(p, (Float, Int)) or p.cardinality() <= 1 for p in params
        ) and not any(isinstance(p, Categorical) and p.cardinality() > 1 for p in params)
        self._late: Strategy | None = None
        self._history: list[FrozenTrial] = []
        self._branch: dict[str, Any] = {}  # the late CMA-ES's held parameters (conditional)
        self._branch_failed = False  # no numeric parameter active in the best trial
        # (rank key: violation and loss, number, params) of the best trial told
        self._best: tuple[tuple[float, float], int, dict[str, Any]] | None = None
        children: dict[str, Strategy] = {}
        if len(self.directions) > 1:
            children["motpe"] = MOTPE(seed=self.seed)
            self._first = "motpe"
        elif self._conditional:
            children["tpe"] = TPE(seed=self.seed, group=True)
            self._first = "tpe"
        else:
            children["gp"] = GaussianProcessSearch(output="power", seed=self.seed)
            if not self._numeric_only:
                children["tpe"] = TPE(seed=self.seed)
            self._first = "gp"
        for child in children.values():
            child.setup(space, self.directions, self.stream, self.n_streams)
        self._children = children

    @property
    def phase(self) -> str:
        """The algorithm of the next ask: ``"gp"``, ``"cmaes"``, ``"tpe"``, ``"local"`` (a
        neighbour of the best trial) or ``"motpe"``."""
        return self._phase_of(self.n_asked)

    def _phase_of(self, ask_index: int) -> str:
        if ask_index < self.gp_trials or self._first == "motpe":
            return self._first
        if self._first == "tpe":  # conditional: two of three asks CMA-ES in the best branch
            if self._branch_failed or (ask_index - self.gp_trials) % 3 == 2:
                return "tpe"
            return "cmaes"
        if self._numeric_only:
            return "cmaes"
        return "local" if (ask_index - self.gp_trials) % 3 == 2 else "tpe"

    def _cma_index(self, ask_index: int) -> int:
        """The ask index the branch CMA-ES sees: its own asks, counted without TPE's."""
        j = ask_index - self.gp_trials
        return self.gp_trials + (j // 3) * 2 + j % 3

    def note(self, trial: FrozenTrial) -> None:
        super().note(trial)
        for name, child in self._children.items():
            if name == "cmaes" and self._first == "tpe":
                continue  # the branch CMA-ES learns from its own trials only, through tell
            if name != "gp" or self._late is None:
                child.note(trial)

    def _tell(self, trial: FrozenTrial) -> None:
        key = self.rank_key(trial)
        if math.isfinite(key[1]) and (self._best is None or (key, trial.number) < self._best[:2]):
            self._best = (key, trial.number, dict(trial.params))
        if self._first == "tpe":
            self._tell_conditional(trial)
            return
        if self._first == "gp" and self._numeric_only:
            ask_index = trial.system_attrs.get("ask_index")
            if ask_index is not None and int(ask_index) >= self.gp_trials:
                if "cmaes" not in self._children:
                    self._start_cmaes()  # replaying a history past the switch
                self._children["cmaes"].tell(trial)
                return
            self._history.append(trial)
            if "cmaes" not in self._children:
                self._children["gp"].tell(trial)
            return
        for name, child in self._children.items():
            if name == "gp" and self._late is not None:
                continue  # the GP's part is over: its O(n^3) model is no longer updated
            child.tell(trial)

    def _tell_conditional(self, trial: FrozenTrial) -> None:
        self._children["tpe"].tell(trial)
        ask_index = trial.system_attrs.get("ask_index")
        if ask_index is None or int(ask_index) < self.gp_trials:
            self._history.append(trial)
            return
        if self._phase_of(int(ask_index)) != "cmaes":
            return
        if "cmaes" not in self._children and not self._start_branch_cmaes():
            return  # replaying a history past the switch: the branch is rebuilt first
        sub = self._children["cmaes"]
        assert sub.space is not None
        attrs = dict(trial.system_attrs)
        attrs["ask_index"] = self._cma_index(int(ask_index))
        params = {k: v for k, v in trial.params.items() if k in sub.space}
        sub.tell(dataclasses.replace(trial, params=params, system_attrs=attrs))

    # ---- ask ---------------------------------------------------------------------------------
    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        phase = self._phase_of(self.n_asked)
        if self._first == "tpe" and phase == "cmaes":
            if "cmaes" in self._children or self._start_branch_cmaes():
                sub = self._children["cmaes"]._ask_one(rng)
                assert self.space is not None
                both = self._branch | sub
                return {name: both[name] for name in self.space.names if name in both}
            phase = "tpe"
        if phase == "local":
            near = self._unseen(rng)
            if near is not None:
                self.seen.add(candidate_key(near))
                return near
            phase = "tpe"
        if phase == "cmaes" and "cmaes" not in self._children:
            self._start_cmaes()
        if phase != self._first:
            self._late = self._children[phase]
        candidate = self._children[phase]._ask_one(rng)
        if phase == "tpe" and self._first == "gp":
            key = candidate_key(candidate)
            if key in self.seen:
                candidate = self._unseen(rng) or candidate
                key = candidate_key(candidate)
            self.seen.add(key)  # asked: not proposed again before it is noted
        return candidate

    def _unseen(self, rng: np.random.Generator) -> dict[str, Any] | None:
        """A candidate not evaluated yet: a neighbour of the best trial (one parameter
        changed, the parameters in random order), else a random one (20 tries); None if none
        was found."""
        assert self.space is not None
        if self._best is not None:
            best = self._best[2]
            names = [n for n in self.space.names if n in best]
            for i in rng.permutation(len(names)):
                name = names[int(i)]
                for value in self._moves(self.space[name], best[name], rng):
                    near = dict(best)
                    near[name] = value
                    if candidate_key(near) not in self.seen:
                        return near
        for _ in range(20):
            candidate = self.space.sample(rng)
            if candidate_key(candidate) not in self.seen:
                return candidate
        return None

    @staticmethod
    def _moves(param: Any, value: Any, rng: np.random.Generator) -> list[Any]:
        """The values one move away from `value`, in random order."""
        if isinstance(param, Categorical):
            out = [c for c in param.choices if c != value]
        elif isinstance(param, Int):
            out = [
                v for v in (value - param.step, value + param.step) if param.low <= v <= param.high
            ]
        elif isinstance(param, Float):
            u = float(np.clip(param.to_unit(value) + 0.05 * rng.standard_normal(), 0.0, 1.0))
            out = [param.from_unit(u)]
        else:
            out = []
        return [out[int(i)] for i in rng.permutation(len(out))]

    def _start_branch_cmaes(self) -> bool:
        """CMA-ES over the numeric parameters active in the best trial asked before the switch,
        the others held at that trial's values; its step size the spread of the best tenth of
        the branch's trials (those with the same held values). False (and TPE goes on alone)
        when there is no such trial or no such parameter."""
        from airda.strategies.cmaes import CmaEs

        assert self.space is not None
        done = [
            t
            for t in self._history
            if t.state is TrialState.COMPLETE and math.isfinite(self.loss(t))
        ]
        if not done:
            self._branch_failed = True
            return False
        done.sort(key=lambda t: (self.rank_key(t), t.number))
        best = done[0]
        numeric = {
            name: dataclasses.replace(self.space[name], when={})
            for name in self.space.names
            if name in best.params
            and isinstance(self.space[name], (Float, Int))
            and self.space[name].cardinality() > 1
        }
        if not numeric:
            self._branch_failed = True
            return False
        held = {k: v for k, v in best.params.items() if k not in numeric}
        same = [
            t
            for t in done
            if set(t.params) == set(best.params) and all(t.params[k] == v for k, v in held.items())
        ]
        cma = CmaEs(seed=self.seed)
        cma.setup(Space(numeric), self.directions, self.stream, self.n_streams)
        top = np.stack(
            [cma.unit({k: t.params[k] for k in numeric}) for t in same[: max(len(same) // 10, 2)]]
        )
        mean = top[0]
        sigma = float(np.sqrt(np.mean((top - mean) ** 2))) if len(top) > 1 else 0.1
        cma.warm_start(mean, min(max(sigma, 0.02), 0.2), first_ask=self.gp_trials)
        self._children["cmaes"] = cma
        self._branch = held
        self._history = []
        return True

    def _start_cmaes(self) -> None:
        """CMA-ES from the best trial asked before the switch, its step size the spread of the
        best tenth of those trials (in the unit cube), its generations counted from the switch."""
        from airda.strategies.cmaes import CmaEs

        assert self.space is not None
        done = [
            t
            for t in self._history
            if t.state is TrialState.COMPLETE
            and math.isfinite(self.loss(t))
            and int(t.system_attrs.get("ask_index", 0)) < self.gp_trials
        ]
        cma = CmaEs(seed=self.seed)
        cma.setup(self.space, self.directions, self.stream, self.n_streams)
        if done:
            done.sort(key=lambda t: (self.rank_key(t), t.number))
            top = np.stack([cma.unit(t.params) for t in done[: max(len(done) // 10, 2)]])
            mean = top[0]
            sigma = float(np.sqrt(np.mean((top - mean) ** 2))) if len(top) > 1 else 0.1
            # The GP's best trials crowd into a small ball (spreads of 1e-3 on Rosenbrock): a
            # step that small crawls along a valley, so the step is at least 0.02.
            cma.warm_start(mean, min(max(sigma, 0.02), 0.2), first_ask=self.gp_trials)
        else:
            cma.warm_start(None, None, first_ask=self.gp_trials)
        self._children["cmaes"] = cma
        self._late = cma
        self._history = []

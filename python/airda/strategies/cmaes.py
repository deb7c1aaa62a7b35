"""CMA-ES: the covariance matrix adaptation evolution strategy, as an ask/tell strategy.

A (mu/mu_w, lambda)-CMA-ES with cumulative step-size adaptation and rank-one plus rank-mu
covariance updates (the defaults of Hansen, "The CMA Evolution Strategy: A Tutorial", 2016),
with IPOP or BIPOP restarts, on the unit cube of the space's numeric parameters.

How the space maps onto the search:

* Float and Int parameters are the coordinates of the search, in the space's unit cube (log
  parameters are log-scaled there by the space itself). A sample outside [0, 1] is drawn
  again (up to ``resample`` times), then clipped: the update uses the clipped point, so the
  distribution learns from what was evaluated.
* Integers and stepped floats, by default (``discrete="spread"``): the update sees the value
  evaluated (the centre of its bin) and the deviation of each discrete coordinate is raised
  (in the covariance) to at least the width of the mean's bin over ``2 z``, z the normal
  quantile of ``1 - alpha / 2`` with ``alpha = 1 / (n lambda)``, so a draw leaves the bin
  with probability at least alpha when the mean is at its centre. Discrete coordinates never
  stall.
* ``discrete="margin"``: the CMA-ES with margin of Hamano et al. (GECCO 2022). A discrete
  coordinate is drawn continuously and rounded to its bin after the affine map ``m + A (x - m)`` (A diagonal, 1 to start); the update learns
  from the continuous draws. After each update, the probability that a draw leaves the bin
  of the mean is kept at least ``alpha = 1 / (n lambda)`` per coordinate: in an edge bin by
  moving the mean towards the bin's inner boundary; in an inner bin by raising each tail
  below ``alpha / 2`` and solving for the mean and A that give those tails (covariance and
  step size untouched). On the mixed-integer functions of ``bench/cmaes_margin.py`` (10-D,
  up to 1,000 trials) it did worse than the default, so it is an option.
* Categorical parameters are not part of the search: each is drawn uniformly at random,
  independently of everything, in every candidate. Use the ``gp`` or ``tpe`` strategy when
  categorical choices matter.
* Conditional parameters: every numeric parameter is a coordinate; an inactive one is simply
  not proposed (the space drops it when decoding). In an update, a candidate's inactive
  coordinates count as equal to the mean, so they carry no information.

Generations are assembled from asks: ask number ``i`` of stream ``s`` (of ``k``) has the
global index ``i * k + s``; generation ``g`` is the ``lambda_g`` consecutive global indices
after generation ``g - 1``. When all of them are told (complete, failed or pruned; failed and
pruned candidates are left out of the ranking), the distribution is updated. Asks beyond the
current generation (parallel workers running ahead) sample the current distribution. Trials
the strategy did not ask (enqueued, fixed) do not enter the update. The state is a function
of the seed and the results told, so a study resumed from storage continues exactly.

Example:
    >>> import airda
    >>> from airda.space import Float
    >>> from airda.strategies.cmaes import CmaEs
    >>> space = {f"x{i}": Float(-3.0, 5.0) for i in range(3)}
    >>> study = airda.create_study(space=space, strategy=CmaEs(seed=0))
    >>> study.optimize(lambda t: sum((v - 1.0) ** 2 for v in t.params.values()), n_trials=300)
    >>> study.best_value < 1e-6
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airda.space import Categorical, Float, Int
from airda.strategies.base import Strategy, pcg_state
from airda.trial import FrozenTrial, TrialState

__all__ = ["CmaEs"]

_RESTARTS = ("none", "ipop", "bipop")


def _norm_ppf(p: float) -> float:
    """Quantile of the standard normal (Acklam's rational approximation; ~1e-9 relative)."""
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
         -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
         -13.28068155288572)  # fmt: skip
    c = (-7.784894002430293e-03, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
         4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        num = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
        return num / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if p > 1 - 0.02425:
        return -_norm_ppf(1 - p)
    q = p - 0.5
    r = q * q
    num = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
    return num / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def _norm_cdf(z: float) -> float:
    """Phi(z), the standard normal distribution function."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _weights(lam: int) -> tuple[np.ndarray, float, float]:
    """Raw recombination weights of a population of lam, with mu_eff of the positive and of
    the negative ones (Hansen's tutorial, active CMA-ES)."""
    mu = lam // 2 if lam > 1 else 1
    raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
    if lam == 1:
        raw = np.ones(1)
    pos, neg = raw[:mu], raw[mu:]
    mu_eff = float(pos.sum() ** 2 / (pos**2).sum())
    mu_eff_neg = float(neg.sum() ** 2 / (neg**2).sum()) if neg.size and neg.any() else 0.0
    return raw, mu_eff, mu_eff_neg


class _Run:
    """One CMA-ES run (between restarts): the distribution and its evolution paths."""

    def __init__(self, mean: np.ndarray, sigma: float, lam: int):
        n = mean.size
        self.n, self.lam = n, lam
        self.mu = lam // 2
        # Weights of the tutorial's default (active) CMA-ES: positive for the best mu, negative
        # for the rest, the negative ones bounded so the covariance stays positive definite.
        self.mu_eff = _weights(lam)[1]
        mu_eff = self.mu_eff
        self.c_sigma = (mu_eff + 2) / (n + mu_eff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + self.c_sigma
        self.c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
        self.c_1 = 2 / ((n + 1.3) ** 2 + mu_eff)
        self.c_mu = min(1 - self.c_1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + mu_eff))
        self._cache: dict[int, tuple[np.ndarray, float]] = {}
        self.weights = self._weights(lam)[0]
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        self.mean = mean.astype(np.float64).copy()
        self.sigma = float(sigma)
        self.sigma0 = float(sigma)
        self.cov = np.eye(n)
        self.p_sigma = np.zeros(n)
        self.p_c = np.zeros(n)
        self.eig_b = np.eye(n)
        self.eig_d = np.ones(n)
        self.margin_a = np.ones(n)  # CMA-ES with margin: the affine scale of discrete draws
        self.generation = 0
        self.best_history: list[float] = []
        self.median_history: list[float] = []
        self.evaluations = 0

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(self.n)
        return self.mean + self.sigma * (self.eig_b @ (self.eig_d * z))

    def _weights(self, k: int) -> tuple[np.ndarray, float]:
        """Weights of `k` ranked samples and their mu_eff: those of a population of k (fewer
        than lambda when some candidates failed), so that selection keeps its pressure."""
        if k not in self._cache:
            raw, mu_eff, mu_eff_neg = _weights(k)
            mu = k // 2 if k > 1 else 1
            w = np.zeros(k)
            w[:mu] = raw[:mu] / raw[:mu].sum()
            neg = raw[mu:]
            if neg.size and neg.any() and self.c_mu > 0:
                alpha_neg = min(
                    1 + self.c_1 / self.c_mu,
                    1 + 2 * mu_eff_neg / (mu_eff + 2),
                    (1 - self.c_1 - self.c_mu) / (self.n * self.c_mu),
                )
                w[mu:] = alpha_neg * neg / np.abs(neg).sum()
            self._cache[k] = (w, mu_eff)
        return self._cache[k]

    def update(self, xs: np.ndarray, losses: np.ndarray, min_sd: np.ndarray) -> None:
        """One generation: `xs` (k, n) evaluated points sorted best first, k >= 1."""
        k = xs.shape[0]
        w, mu_eff = self._weights(k)
        y = (xs - self.mean) / self.sigma
        pos = w > 0
        y_w = w[pos] @ y[pos]
        self.mean = self.mean + self.sigma * y_w
        inv_sqrt = (self.eig_b / self.eig_d) @ self.eig_b.T
        cs = self.c_sigma
        self.p_sigma = (1 - cs) * self.p_sigma + math.sqrt(cs * (2 - cs) * mu_eff) * (
            inv_sqrt @ y_w
        )
        self.generation += 1
        norm_ps = float(np.linalg.norm(self.p_sigma))
        h_sigma = (
            norm_ps / math.sqrt(1 - (1 - cs) ** (2 * self.generation))
            < (1.4 + 2 / (self.n + 1)) * self.chi_n
        )
        cc = self.c_c
        self.p_c = (1 - cc) * self.p_c + h_sigma * math.sqrt(cc * (2 - cc) * mu_eff) * y_w
        delta_h = (1 - h_sigma) * cc * (2 - cc)
        w_o = w.copy()
        if np.any(~pos):
            norms = np.sum((y[~pos] @ inv_sqrt) ** 2, axis=1)
            w_o[~pos] = w[~pos] * self.n / np.maximum(norms, 1e-300)
        rank_mu = (y * w_o[:, None]).T @ y
        self.cov = (
            (1 + self.c_1 * delta_h - self.c_1 - self.c_mu * float(w.sum())) * self.cov
            + self.c_1 * np.outer(self.p_c, self.p_c)
            + self.c_mu * rank_mu
        )
        self.sigma *= math.exp(min(1.0, (cs / self.d_sigma) * (norm_ps / self.chi_n - 1)))
        # Discrete coordinates keep a minimum spread (see the module docstring).
        sd = self.sigma * np.sqrt(np.diag(self.cov))
        ratio = np.where((min_sd > 0) & (sd < min_sd), min_sd / np.maximum(sd, 1e-300), 1.0)
        if np.any(ratio != 1.0):
            self.cov = self.cov * np.outer(ratio, ratio)
        self._decompose()
        self.evaluations += k
        self.best_history.append(float(losses[0]))
        self.median_history.append(float(np.median(losses)))

    def _decompose(self) -> None:
        self.cov = (self.cov + self.cov.T) / 2
        d2, b = np.linalg.eigh(self.cov)
        d2 = np.maximum(d2, 1e-300)
        self.eig_b, self.eig_d = b, np.sqrt(d2)

    def stop_reason(
        self, losses: np.ndarray, tolfun: float, tolx: float, continuous: np.ndarray
    ) -> str | None:
        """Hansen's termination criteria for a restart, or None."""
        n = self.n
        hist = 10 + math.ceil(30 * n / self.lam)
        recent = self.best_history[-hist:]
        if len(recent) >= hist and (
            max(max(recent), float(losses.max())) - min(min(recent), float(losses.min())) < tolfun
        ):
            return "tolfun"
        if np.any(continuous):
            sd = self.sigma * np.sqrt(np.diag(self.cov))[continuous]
            pc = self.sigma * np.abs(self.p_c[continuous])
            if np.all(sd < tolx) and np.all(pc < tolx):
                return "tolx"
        if self.eig_d.max() ** 2 > 1e14 * self.eig_d.min() ** 2:
            return "conditioncov"
        if np.all(self.mean == self.mean + 0.2 * self.sigma * np.sqrt(np.diag(self.cov))):
            return "noeffectcoord"
        window = max(120 + 30 * n // self.lam, self.generation // 5)
        if self.generation > window and len(self.best_history) >= 20:
            part = max(len(self.best_history[-window:]) // 5, 1)
            b = self.best_history[-window:]
            m = self.median_history[-window:]
            if np.median(b[-part:]) >= np.median(b[:part]) and np.median(m[-part:]) >= np.median(
                m[:part]
            ):
                return "stagnation"
        if self.sigma * self.eig_d.max() > 1e4:
            return "tolxup"
        return None


class CmaEs(Strategy):
    """CMA-ES with IPOP/BIPOP restarts on the unit cube of the numeric parameters.

    Args:
        sigma0: initial step size, in unit-cube coordinates (the cube has side 1); the
            default 1/6 is Optuna's CmaEsSampler's (a sixth of the range).
        popsize: lambda of the first run; default ``4 + floor(3 ln n)``.
        restart: ``"ipop"`` (population doubled at each restart), ``"bipop"`` (alternating
            large and small populations, Hansen 2009) or ``"none"`` (no restarts: the final
            distribution keeps being sampled).
        inc_popsize: the population factor of IPOP (and of BIPOP's large regime).
        tolfun: a run stops when its recent best values vary less than this.
        tolx: a run stops when every continuous coordinate's deviation is below this.
        resample: draws of a sample outside the cube before it is clipped (with the margin
            rule, only the continuous coordinates count: discrete ones round to a bin).
        discrete: ``"spread"`` (a lower bound on the deviation of discrete coordinates) or
            ``"margin"`` (CMA-ES with margin, Hamano et al. 2022).
        seed: the sampling seed.

    Single objective. See the module docstring for how the space is searched.
    """

    name = "cmaes"
    supports_constraints = True
    supports_multi_objective = False

    def __init__(
        self,
        *,
        sigma0: float = 1 / 6,
        popsize: int | None = None,
        restart: str = "ipop",
        inc_popsize: int = 2,
        tolfun: float = 1e-11,
        tolx: float = 1e-11,
        resample: int = 10,
        discrete: str = "spread",
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        if (
            isinstance(sigma0, bool)
            or not isinstance(sigma0, (int, float))
            or not (0 < sigma0 <= 1)
        ):
            raise ValueError(f"sigma0 must be in (0, 1] (unit-cube scale), got {sigma0!r}")
        if popsize is not None and (
            isinstance(popsize, bool) or not isinstance(popsize, int) or popsize < 2
        ):
            raise ValueError(f"popsize must be an int >= 2, got {popsize!r}")
        if restart not in _RESTARTS:
            raise ValueError(f"restart must be one of {list(_RESTARTS)}, got {restart!r}")
        if isinstance(inc_popsize, bool) or not isinstance(inc_popsize, int) or inc_popsize < 1:
            raise ValueError(f"inc_popsize must be an int >= 1, got {inc_popsize!r}")
        for label, value in (("tolfun", tolfun), ("tolx", tolx)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{label} must be a number >= 0, got {value!r}")
        if isinstance(resample, bool) or not isinstance(resample, int) or resample < 0:
            raise ValueError(f"resample must be an int >= 0, got {resample!r}")
        if discrete not in ("margin", "spread"):
            raise ValueError(f"discrete must be 'margin' or 'spread', got {discrete!r}")
        self.sigma0 = float(sigma0)
        self.popsize = popsize
        self.restart = restart
        self.inc_popsize = inc_popsize
        self.tolfun = float(tolfun)
        self.tolx = float(tolx)
        self.resample = resample
        self.discrete = discrete

    def options(self) -> dict[str, Any]:
        return {
            "sigma0": self.sigma0,
            "popsize": self.popsize,
            "restart": self.restart,
            "inc_popsize": self.inc_popsize,
            "tolfun": self.tolfun,
            "tolx": self.tolx,
            "resample": self.resample,
            "discrete": self.discrete,
        }

    # ---- state -----------------------------------------------------------------------------
    def _reset(self) -> None:
        assert self.space is not None
        space = self.space
        self._numeric = [
            i
            for i, name in enumerate(space.names)
            if isinstance(space[name], (Float, Int)) and space[name].cardinality() > 1
        ]
        self._categorical = [
            i for i, name in enumerate(space.names) if isinstance(space[name], Categorical)
        ]
        n = len(self._numeric)
        self._n = n
        self._discrete = np.array(
            [space[space.names[i]].cardinality() != math.inf for i in self._numeric], dtype=bool
        )
        self._lam0 = self.popsize or 4 + int(3 * math.log(max(n, 1)))
        self._restarts = 0
        self._large_restarts = 0
        self._budget_large = 0
        self._budget_small = 0
        self._regime = "large"
        self._gen_start = 0  # first global index of the current generation
        self._first_ask = 0  # asks before this one are not this strategy's (see warm_start)
        self._results: dict[int, tuple[np.ndarray | None, float, float]] = {}  # x, loss, viol
        self.stop_reasons: list[str] = []
        self._run = _Run(np.full(n, 0.5), self.sigma0, self._lam0) if n else None

    @property
    def mean(self) -> np.ndarray:
        """The current mean, in unit-cube coordinates of the numeric parameters."""
        return self._run.mean.copy() if self._run is not None else np.empty(0)

    @property
    def sigma(self) -> float:
        return self._run.sigma if self._run is not None else 0.0

    @property
    def generation(self) -> int:
        return self._run.generation if self._run is not None else 0

    @property
    def popsize_now(self) -> int:
        return self._run.lam if self._run is not None else self._lam0

    def _global_index(self, ask_index: int, stream: int) -> int:
        return (ask_index - self._first_ask) * self.n_streams + stream

    def unit(self, params: dict[str, Any]) -> np.ndarray:
        """The numeric coordinates of a candidate in the unit cube (the search's coordinates)."""
        assert self.space is not None
        return self.space.encode(params)[self._numeric]

    def warm_start(
        self, mean: np.ndarray | None, sigma: float | None, *, first_ask: int = 0
    ) -> None:
        """Start the first run at ``mean`` (unit-cube coordinates of the numeric parameters,
        as :meth:`unit` gives them) with step size ``sigma`` (None: the defaults), and count
        generations from ask ``first_ask`` of each stream: a strategy that hands over to
        CMA-ES after its own asks (``AutoSearch``) calls this after ``setup``. Restarts begin
        as usual (a random mean, ``sigma0``)."""
        if self.space is None:
            raise RuntimeError("warm_start comes after setup")
        if isinstance(first_ask, bool) or not isinstance(first_ask, int) or first_ask < 0:
            raise ValueError(f"first_ask must be an int >= 0, got {first_ask!r}")
        self._first_ask = first_ask
        if self._run is None:
            return
        m = np.full(self._n, 0.5) if mean is None else np.asarray(mean, dtype=np.float64)
        if m.shape != (self._n,) or not np.all(np.isfinite(m)):
            raise ValueError(f"mean must be {self._n} finite unit-cube coordinates")
        s = self.sigma0 if sigma is None else float(sigma)
        if not (0 < s <= 1):
            raise ValueError(f"sigma must be in (0, 1], got {sigma!r}")
        self._run = _Run(np.where(np.isnan(m), 0.5, np.clip(m, 0.0, 1.0)), s, self._lam0)

    # ---- ask ---------------------------------------------------------------------------------
    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._draw(rng)[0]

    def _draw(self, rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray | None]:
        """A candidate and the continuous draw of its numeric coordinates (None without
        any): what the update learns from."""
        assert self.space is not None
        u = rng.random(self.space.dim)  # categorical (and fixed) coordinates: uniform
        run = self._run
        if run is None:
            return self.space.decode(u), None
        margin = self.discrete == "margin" and bool(self._discrete.any())
        check = ~self._discrete if margin else np.ones(run.n, dtype=bool)
        x = run.sample(rng)
        for _ in range(self.resample):
            if np.all((x[check] >= 0.0) & (x[check] <= 1.0)):
                break
            x = run.sample(rng)
        shown = x.copy()
        if margin:
            d = self._discrete
            shown[d] = run.mean[d] + run.margin_a[d] * (x[d] - run.mean[d])
        u[self._numeric] = np.clip(shown, 0.0, 1.0)
        return self.space.decode(u), x

    # ---- tell --------------------------------------------------------------------------------
    def _tell(self, trial: FrozenTrial) -> None:
        attrs = trial.system_attrs
        if self._run is None or "ask_index" not in attrs:
            return
        stream = int(attrs.get("stream", 0))
        index = self._global_index(int(attrs["ask_index"]), stream)
        if index < self._gen_start:
            return  # a straggler of a finished generation
        loss = self.loss(trial)
        x = None
        if trial.state is TrialState.COMPLETE and math.isfinite(loss):
            assert self.space is not None
            x = self.space.encode(trial.params)[self._numeric]
            if self.discrete == "margin" and self._discrete.any():
                x = self._continuous_draw(trial, int(attrs["ask_index"]), stream, x)
        self._results[index] = (x, loss, trial.violation)
        self._maybe_update()

    def _continuous_draw(
        self, trial: FrozenTrial, ask_index: int, stream: int, evaluated: np.ndarray
    ) -> np.ndarray:
        """The continuous draw behind a told candidate (margin rule). The state has not moved
        since a candidate of the current generation was asked, so drawing again with its
        ask's generator gives it back; a candidate that was asked under an earlier
        distribution (a parallel worker ahead of the generation) does not match, and its
        discrete coordinates are mapped back through the current ``m + A (x - m)``."""
        run = self._run
        assert run is not None
        bitgen = np.random.PCG64(0)
        bitgen.state = pcg_state(self.seed, stream, ask_index)
        candidate, x = self._draw(np.random.Generator(bitgen))
        inactive = np.isnan(evaluated)
        if x is not None and candidate == trial.params:
            return np.where(inactive, np.nan, x)
        out = evaluated.copy()
        d = self._discrete & ~inactive
        out[d] = run.mean[d] + (evaluated[d] - run.mean[d]) / run.margin_a[d]
        return out

    def _maybe_update(self) -> None:
        while True:
            run = self._run
            assert run is not None
            end = self._gen_start + run.lam
            ready = all(i in self._results for i in range(self._gen_start, end))
            # A candidate that never comes back (a lost worker) must not stall the search:
            # once a whole generation's worth of later results is in, go on without it.
            ahead = sum(1 for i in self._results if i >= end)
            if not ready and ahead < run.lam:
                return
            members = [(i, self._results.pop(i)) for i in range(self._gen_start, end)
                       if i in self._results]  # fmt: skip
            self._gen_start = end
            self._update(members)

    def _update(self, members: list[tuple[int, tuple[np.ndarray | None, float, float]]]) -> None:
        run = self._run
        assert run is not None
        # Ranked feasible first by loss, then by total constraint violation (0 without them).
        ok = [(viol, loss, i, x) for i, (x, loss, viol) in members if x is not None]
        if not ok:
            return
        ok.sort(key=lambda r: (r[0], r[1], r[2]))
        xs = np.stack([np.where(np.isnan(x), run.mean, x) for *_, x in ok])
        losses = np.array([r[1] for r in ok])
        spread = self.discrete == "spread"
        run.update(xs, losses, self._min_sd(run) if spread else np.zeros(run.n))
        if not spread:
            self._apply_margin(run)
        if self._regime == "large":
            self._budget_large += len(members)
        else:
            self._budget_small += len(members)
        reason = run.stop_reason(losses, self.tolfun, self.tolx, ~self._discrete)
        if reason is not None and self.restart != "none":
            self.stop_reasons.append(reason)
            self._new_run()

    def _bin_edges(self, k: int, m: float) -> tuple[float, float]:
        """The unit-cube boundaries of the bin of discrete coordinate k that holds m: -inf
        / +inf for the outer side of the first / last bin (draws beyond round to it)."""
        assert self.space is not None
        p = self.space[self.space.names[self._numeric[k]]]
        if isinstance(p, Int) and p.log:
            value = p.from_unit(m)
            lo = p.to_unit(value - 0.5) if value > p.low else -math.inf
            hi = p.to_unit(value + 0.5) if value < p.high else math.inf
            return lo, hi
        n = int(p.cardinality())
        b = min(int(min(max(m, 0.0), 1.0) * n), n - 1)
        return (b / n if b > 0 else -math.inf), ((b + 1) / n if b < n - 1 else math.inf)

    def _apply_margin(self, run: _Run) -> None:
        """The margin correction of Hamano et al. (2022) after an update: for each discrete
        coordinate, the probability that a draw leaves the bin of the mean is kept at least
        alpha = 1 / (n lambda) by moving the mean and setting A (sigma and C unchanged)."""
        alpha = min(1.0 / (run.n * run.lam), 0.2)
        z_alpha = _norm_ppf(1 - alpha)
        cdf = _norm_cdf
        for k in np.flatnonzero(self._discrete):
            m = float(run.mean[k])
            sd0 = run.sigma * math.sqrt(max(float(run.cov[k, k]), 1e-300))
            sd = run.margin_a[k] * sd0
            lo, hi = self._bin_edges(int(k), m)
            if math.isinf(lo) or math.isinf(hi):  # an edge bin: one boundary to cross
                t = hi if math.isinf(lo) else lo
                side = -1.0 if math.isinf(lo) else 1.0  # where the bin lies from t
                if cdf(-side * (m - t) / sd) < alpha:
                    run.mean[k] = t + side * z_alpha * sd
                continue
            low = cdf((lo - m) / sd)
            up = 1.0 - cdf((hi - m) / sd)
            mid = 1.0 - low - up
            low_c, up_c = max(low, alpha / 2), max(up, alpha / 2)
            if low_c == low and up_c == up:
                continue  # both tails hold at least alpha / 2: nothing to change
            excess = 1.0 - low_c - up_c - mid  # < 0: take it from the tails above alpha / 2
            denominator = low_c + mid + up_c - 1.5 * alpha
            low_n = low_c + excess * (low_c - alpha / 2) / denominator
            up_n = up_c + excess * (up_c - alpha / 2) / denominator
            low_n = min(max(low_n, 1e-10), 0.5 - 1e-10)
            up_n = min(max(up_n, 1e-10), 0.5 - 1e-10)
            q_low, q_up = _norm_ppf(1 - low_n), _norm_ppf(1 - up_n)
            run.margin_a[k] = (hi - lo) / ((q_low + q_up) * sd0)
            run.mean[k] = (lo * q_up + hi * q_low) / (q_low + q_up)

    def _min_sd(self, run: _Run) -> np.ndarray:
        """Per-coordinate lower bound of the deviation: 0 for continuous coordinates."""
        assert self.space is not None
        out = np.zeros(run.n)
        if not self._discrete.any():
            return out
        alpha = min(1.0 / (run.n * run.lam), 0.2)
        z = _norm_ppf(1 - alpha / 2)
        for k, i in enumerate(self._numeric):
            if not self._discrete[k]:
                continue
            p = self.space[self.space.names[i]]
            value = p.from_unit(float(np.clip(run.mean[k], 0.0, 1.0)))
            if isinstance(p, Int) and p.log:
                lo = p.to_unit(max(value - 0.5, p.low - 0.5)) if value > p.low else 0.0
                hi = p.to_unit(value + 0.5) if value < p.high else 1.0
                width = hi - lo
            else:
                width = 1.0 / p.cardinality()
            out[k] = width / (2 * z)
        return out

    def _new_run(self) -> None:
        self._restarts += 1
        rng = np.random.default_rng([self.seed, 0xC3A, self._restarts])
        mean = rng.random(self._n)
        sigma, lam = self.sigma0, self._lam0
        if self.restart == "ipop":
            lam = self._lam0 * self.inc_popsize**self._restarts
        else:  # BIPOP: the regime that has used less of the budget runs next
            if self._restarts == 1 or self._budget_small >= self._budget_large:
                self._regime = "large"
                self._large_restarts += 1
                lam = self._lam0 * self.inc_popsize**self._large_restarts
            else:
                self._regime = "small"
                lam_large = self._lam0 * self.inc_popsize**self._large_restarts
                r = float(rng.random())
                lam = max(2, int(self._lam0 * (0.5 * lam_large / self._lam0) ** (r * r)))
                sigma = self.sigma0 * 10 ** (-2 * float(rng.random()))
        self._run = _Run(mean, sigma, int(lam))

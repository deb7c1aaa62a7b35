"""Tree-structured Parzen estimators (TPE) on the ask/tell interface, single- and multi-objective.

TPE (Bergstra et al., NeurIPS 2011; Watanabe, 2023 for the many design choices) splits the
trials into the best ``gamma`` share (``below``) and the rest (``above``), fits a Parzen estimator
to each, l(x) and g(x), draws ``n_ei_candidates`` candidates from l and proposes the one with
the largest l(x) / g(x) (which maximises expected improvement under the model).

How this one works:

* Every numeric parameter lives in its unit-cube coordinate of :class:`~airda.space.Space`
  (log-scaled where ``log=True``; ints and stepped floats as the centres of their bins, drawn
  continuously and snapped to the grid). A component is a normal truncated to [0, 1]; the
  density of a mixture is computed by the compiled op :func:`airda.ops.parzen_logpdf`.
  Categoricals use a kernel that keeps ``1`` on the observed choice plus ``prior_weight /
  n_components`` on every choice (normalised), the prior component being uniform.
* Univariate (``multivariate=False``): one estimator per parameter over the trials where it is
  active, with hyperopt's bandwidths (the larger gap to the neighbouring means; with
  ``consider_endpoints`` the bounds count as neighbours), clipped below at
  ``1 / min(100, n + 2)`` ("magic clip": n observations, the prior and one, as hyperopt and
  Optuna count them). ``multivariate=True`` (the default, as in Optuna 4+):
  one joint estimator over the parameters active in every trial (product kernels, the same bandwidth rule per dimension, or
  with ``bandwidth="scott"`` one width ``0.2 n^(-1/(p + 4))`` per dimension); the other
  parameters fall back to univariate. ``group=True``: the parameters are split into groups that
  are active in the same trials (conditional branches) and each group gets a joint estimator
  over the trials where it is active.
* Weights: equal below 25 observations, then a linear ramp from old to recent trials, the 25
  most recent at 1; a prior component (the uniform-ish wide normal, weight ``prior_weight``).
* The split: ``n_below = min(ceil(gamma * n), max_below)`` (no cap: :class:`MOTPE`'s default)
  over complete, then pruned (deeper first, then better), then running trials. With several objectives (MOTPE, Ozaki et al.,
  GECCO 2020 / JAIR 2022) by non-dominated front, the last front cut greedily by hypervolume,
  and the below weights are each trial's exclusive hypervolume contribution.
* ``constant_liar``: trials still running (the study notes them to the strategy) count as the
  worst, so parallel workers, and the asks of one batch, do not pile onto one point.

The observation arrays grow with every result (amortised O(1)), so an ask costs O(n) array work
and no pass over the trials in Python. State is a function of the seed and the history: a
resumed study proposes what the uninterrupted one would have.

Example:
    >>> import airda
    >>> from airda.space import Categorical, Float, Int
    >>> space = {"x": Float(-5, 5), "n": Int(1, 8), "kind": Categorical(["a", "b"])}
    >>> def f(t):
    ...     return (t["x"] - 1) ** 2 + abs(t["n"] - 3) + (t["kind"] == "b")
    >>> study = airda.create_study(space=space, strategy=TPE(seed=0))
    >>> study.optimize(f, n_trials=60)
    >>> study.best_value < 1.0
    True
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from airda.ops.parzen import _parzen_log_norm_trusted, _parzen_logpdf_trusted
from airda.space import Categorical, Float, Int
from airda.strategies._pareto import crowding_distance
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["MOTPE", "TPE"]

_COMPLETE, _PRUNED, _PENDING, _EXCLUDED = 0, 1, 2, 3
# Which tiers the estimators use (indexed by tier), without and with the constant liar.
_USED = np.array([True, True, False, False])
_USED_LIAR = np.array([True, True, True, False])
_NUMERIC, _CATEGORICAL, _CONSTANT = 0, 1, 2
# The bandwidth of joint estimators follows n on a grid of 8 steps per doubling, so their
# normalising constants can be cached per observation between steps (changes of ~0.6%).
_N_GRID = 8
# log-normaliser of the prior's N(0.5, 1) truncated to [0, 1], per dimension:
# -log(2 pi) / 2 - log(erf(0.5 / sqrt(2))).
_PRIOR_LOG_NORM = -0.5 * math.log(2.0 * math.pi) - math.log(math.erf(0.5 / math.sqrt(2.0)))


@dataclass(frozen=True)
class _Block:
    cols: np.ndarray  # parameter indices
    joint: bool  # one estimator over all of them (multivariate) or one parameter (univariate)
    last: bool = False  # the last block of the ask: no draws follow it


def _default_weights(n: int) -> np.ndarray:
    """Equal weights up to 25 observations, then a ramp from 1/n (oldest) to 1 (25 newest)."""
    if n < 25:
        return np.ones(n)
    return np.concatenate((np.linspace(1.0 / n, 1.0, n - 25), np.ones(25)))


@functools.lru_cache(maxsize=8)
def _default_log_weights(n: int, prior_weight: float) -> np.ndarray:
    """Normalised log-weights of n observations in trial order and the prior (last); cached
    and read-only, since asks between results reuse them. Compiled where built (NumPy's log
    alone costs 40 us at 5,000 trials); the NumPy path is the reference."""
    out = np.empty(n + 1)
    try:
        from airda._native import native

        native().tpe_default_log_weights(n, float(prior_weight), out)
    except ImportError:
        w = np.append(_default_weights(n), prior_weight)
        np.log(w / w.sum(), out=out)
    out.flags.writeable = False
    return out


@functools.cache
def _hypervolume_impl() -> Any:
    """The compiled sweep without the op's checks (the points here are finite, 2 or 3
    objectives; the checks cost 30 times the sweep on small sets), else the NumPy reference."""
    try:
        from airda._native import native

        return native().hypervolume
    except ImportError:
        from airda.ops.hypervolume import hypervolume_reference

        return hypervolume_reference


def _hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    if len(points) == 0:
        return 0.0
    points = np.ascontiguousarray(points, dtype=np.float64)
    return float(_hypervolume_impl()(points, np.ascontiguousarray(ref, dtype=np.float64)))


def _reference_point(values: np.ndarray) -> np.ndarray:
    worst = values.max(axis=0)
    span = worst - values.min(axis=0)
    return worst + np.maximum(0.1 * span, 1e-12 * np.maximum(np.abs(worst), 1.0))


def _contributions(values: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume contribution of every point (crowding distance beyond 3-D)."""
    n, m = values.shape
    if n == 1:
        return np.ones(1)
    if m > 3:
        return _crowding(values)
    ref = _reference_point(values)
    total = _hypervolume(values, ref)
    keep = np.ones(n, dtype=bool)
    out = np.empty(n)
    for i in range(n):
        keep[i] = False
        out[i] = total - _hypervolume(values[keep], ref)
        keep[i] = True
    return out


def _crowding(values: np.ndarray) -> np.ndarray:
    """Crowding distance with the ends' ``inf`` replaced by a finite value above all others:
    it stands in for hypervolume contributions, which weigh the below-split (and must be
    finite), while keeping the ends first."""
    out = crowding_distance(values)
    finite = np.isfinite(out)
    top = out[finite].max() if finite.any() else 1.0
    return np.where(finite, out, 2 * top + 1)


def _greedy_hssp(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of k points chosen greedily for the largest hypervolume (by crowding past 3-D)."""
    n, m = values.shape
    if k >= n:
        return np.arange(n)
    if m > 3:
        return np.sort(np.argsort(-_crowding(values), kind="stable")[:k])
    ref = _reference_point(values)
    # Lazy greedy (Minoux, 1978): a point's gain only shrinks as the chosen set grows (the
    # hypervolume is submodular), so a gain computed earlier bounds it from above and only
    # the point on top of the heap is recomputed; ties go to the lower index, as in a scan.
    heap = [(-g, i) for i, g in enumerate(np.prod(ref - values, axis=1).tolist())]
    heapq.heapify(heap)
    stamp = [0] * n  # the size of the chosen set when each gain was computed
    chosen: list[int] = []
    current = 0.0
    while len(chosen) < k:
        neg_gain, i = heapq.heappop(heap)
        if stamp[i] == len(chosen):
            chosen.append(i)
            current -= neg_gain
            continue
        stamp[i] = len(chosen)
        heapq.heappush(heap, (current - _hypervolume(values[[*chosen, i]], ref), i))
    return np.sort(np.array(chosen, dtype=np.int64))


class TPE(Strategy):
    """Tree-structured Parzen estimator; see the module docstring for the algorithm.

    Args:
        n_startup_trials: random candidates until this many trials completed (or were pruned).
        n_ei_candidates: candidates drawn from l(x) per ask (per block of parameters).
        gamma: share of the trials in the "below" (good) set, ``ceil(gamma * n)``...
        max_below: ... capped at this many (Optuna's default: 0.1 and 25); None: no cap
            (:class:`MOTPE`'s default).
        prior_weight: weight of the prior component of every estimator.
        consider_endpoints: the bounds count as neighbours in univariate bandwidths.
        consider_magic_clip: bandwidths at least ``1 / min(100, n_components + 1)`` of the range
            (n_components counts the prior, as hyperopt and Optuna do).
        multivariate: one joint estimator over the parameters every trial has (default);
            False: one estimator per parameter.
        group: one joint estimator per group of parameters active together (needs
            ``multivariate``); for conditional spaces.
        constant_liar: running trials count as the worst in the split.
        bandwidth: of joint estimators: ``"neighbour"`` (hyperopt's rule in every dimension, as
            Optuna 4+ does) or ``"scott"`` (one width per dimension, ``0.2 n^(-1/(p + 4))``,
            whose normalisers are cached per trial: the fastest asks on long studies).
        seed: the sampling seed.

    Raises:
        ValueError: an option is out of range (the message names it).
    """

    name = "tpe"
    supports_constraints = True
    supports_multi_objective = True

    def __init__(
        self,
        *,
        n_startup_trials: int = 10,
        n_ei_candidates: int = 24,
        gamma: float = 0.1,
        max_below: int | None = 25,
        prior_weight: float = 1.0,
        consider_endpoints: bool = False,
        consider_magic_clip: bool = True,
        multivariate: bool = True,
        group: bool = False,
        constant_liar: bool = True,
        bandwidth: str = "neighbour",
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        for label, value, low in (
            ("n_startup_trials", n_startup_trials, 0),
            ("n_ei_candidates", n_ei_candidates, 1),
            ("max_below", 1 if max_below is None else max_below, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
        for label, value in (("gamma", gamma), ("prior_weight", prior_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{label} must be a number, got {value!r}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        if not (math.isfinite(prior_weight) and prior_weight > 0):
            raise ValueError(f"prior_weight must be a finite number > 0, got {prior_weight!r}")
        for label, value in (
            ("consider_endpoints", consider_endpoints),
            ("consider_magic_clip", consider_magic_clip),
            ("multivariate", multivariate),
            ("group", group),
            ("constant_liar", constant_liar),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{label} must be True or False, got {value!r}")
        if bandwidth not in ("neighbour", "scott"):
            raise ValueError(f"bandwidth must be 'neighbour' or 'scott', got {bandwidth!r}")
        if group and not multivariate:
            raise ValueError("group=True needs multivariate=True (groups are joint estimators)")
        self.n_startup_trials = int(n_startup_trials)
        self.n_ei_candidates = int(n_ei_candidates)
        self.gamma = float(gamma)
        self.max_below = None if max_below is None else int(max_below)
        self.prior_weight = float(prior_weight)
        self.consider_endpoints = consider_endpoints
        self.consider_magic_clip = consider_magic_clip
        self.multivariate = multivariate
        self.group = group
        self.constant_liar = constant_liar
        self.bandwidth = bandwidth

    def options(self) -> dict[str, Any]:
        return {
            "n_startup_trials": self.n_startup_trials,
            "n_ei_candidates": self.n_ei_candidates,
            "gamma": self.gamma,
            "max_below": self.max_below,
            "prior_weight": self.prior_weight,
            "consider_endpoints": self.consider_endpoints,
            "consider_magic_clip": self.consider_magic_clip,
            "multivariate": self.multivariate,
            "group": self.group,
            "constant_liar": self.constant_liar,
            "bandwidth": self.bandwidth,
        }

    # ---- state --------------------------------------------------------------------------
    def _reset(self) -> None:
        assert self.space is not None
        space = self.space
        d = space.dim
        self._kind = np.full(d, _CONSTANT, dtype=np.int8)
        self._choices = np.zeros(d, dtype=np.int64)
        self._bins = np.zeros(d, dtype=np.int64)  # > 0: snapped to the centres of this many bins
        self._logint = np.zeros(d, dtype=bool)
        self._log_lo = np.zeros(d)
        self._log_hi = np.ones(d)
        self._int_low = np.zeros(d)
        self._int_high = np.zeros(d)
        for j, name in enumerate(space.names):
            p = space[name]
            if p.cardinality() <= 1:
                continue
            if isinstance(p, Categorical):
                self._kind[j] = _CATEGORICAL
                self._choices[j] = len(p.choices)
            elif isinstance(p, Int):
                self._kind[j] = _NUMERIC
                if p.log:
                    self._logint[j] = True
                    self._log_lo[j], self._log_hi[j] = math.log(p.low - 0.5), math.log(p.high + 0.5)
                    self._int_low[j], self._int_high[j] = p.low, p.high
                else:
                    self._bins[j] = int(p.cardinality())
            elif isinstance(p, Float):
                self._kind[j] = _NUMERIC
                if p.step is not None:
                    self._bins[j] = int(p.cardinality())
        self._modelled = np.flatnonzero(self._kind != _CONSTANT)
        m = len(self.directions)
        cap = 64
        self._x = np.full((cap, d), np.nan)
        self._xt = np.full((d, cap), np.nan)  # the same, transposed: means of the op's layout
        self._active = np.zeros((cap, d), dtype=bool)
        self._full = np.zeros(cap, dtype=bool)  # every modelled parameter active in the row
        self._tier = np.full(cap, _EXCLUDED, dtype=np.int8)
        self._loss = np.full((cap, m), np.inf)
        self._viol = np.zeros(cap)  # total constraint violation of complete rows (0: feasible)
        self._constrained = False  # some complete row violates a constraint
        self._prune_key = np.zeros((cap, 2))
        self._number = np.zeros(cap, dtype=np.int64)
        self._n = 0
        self._row_of: dict[int, int] = {}
        self._in_order = True  # rows are in trial-number order (the usual case)
        self._n_finished = 0  # complete or pruned
        self._norm_cache: dict[tuple[int, ...], tuple[float, np.ndarray]] = {}
        # Neighbour bandwidths: per block, the widths (p, cap) each row's normaliser was
        # computed with, and that normaliser; recomputed only for rows whose widths moved.
        self._widths_cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        # g's neighbour bandwidths per block, kept between asks by the compiled NeighbourWidths
        # (updated where g's members changed); None where the compiled module is absent.
        self._g_widths: dict[tuple[int, ...], Any] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._snap_plans: dict[bytes, tuple] = {}
        # Per numeric parameter: the rows where it is active, sorted by its value (and those
        # values), kept up to date at every row, so bandwidths need no sort per ask.
        self._numeric = np.flatnonzero(self._kind == _NUMERIC)
        # They are views of the first _sorted_len[i] entries of buffers with spare room.
        self._sorted_vbuf = [np.empty(64) for _ in self._numeric]
        self._sorted_rbuf = [np.empty(64, dtype=np.int64) for _ in self._numeric]
        self._sorted_len = np.zeros(len(self._numeric), dtype=np.int64)
        self._sorted_cap = np.full(len(self._numeric), 64, dtype=np.int64)
        self._numeric_ids = [int(j) for j in self._numeric]
        self._has_cat = bool((self._kind == _CATEGORICAL).any())
        self._sorted_rows = {int(j): self._sorted_rbuf[i][:0] for i, j in enumerate(self._numeric)}
        self._sorted_vals = {int(j): self._sorted_vbuf[i][:0] for i, j in enumerate(self._numeric)}
        try:
            from airda._native import native

            self._insert_native = native().tpe_sorted_insert
            self._truncated_native = native().tpe_truncated_draws
            # The common case of a proposal in one compiled call (None: the Python path).
            self._propose_native = native().tpe_propose_numeric
        except (ImportError, AttributeError):
            self._insert_native = None
            self._truncated_native = None
            self._propose_native = None
        self._native_snaps: dict[bytes, tuple] = {}
        # The best complete rows by (loss, trial number), single objective, kept at every
        # result so that the split needs no pass over the losses; None once a row's result
        # was replaced (then the split sorts).
        self._best: list[tuple[float, int, int]] | None = []

    def _grow(self) -> None:
        cap = 2 * len(self._tier)

        def grown(a: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full((cap, *a.shape[1:]), fill, dtype=a.dtype)
            out[: len(a)] = a
            return out

        self._x = grown(self._x, np.nan)
        xt = np.full((self._xt.shape[0], cap), np.nan)
        xt[:, : self._xt.shape[1]] = self._xt
        self._xt = xt
        self._active = grown(self._active, False)
        self._full = grown(self._full, False)
        self._tier = grown(self._tier, _EXCLUDED)
        self._loss = grown(self._loss, np.inf)
        self._viol = grown(self._viol, 0.0)
        self._prune_key = grown(self._prune_key, 0.0)
        self._number = grown(self._number, 0)
        for key, (level, cache) in list(self._norm_cache.items()):
            self._norm_cache[key] = (level, grown(cache, np.nan))
        for key, (widths, cache) in list(self._widths_cache.items()):
            w = np.full((widths.shape[0], cap), np.nan)
            w[:, : widths.shape[1]] = widths
            self._widths_cache[key] = (w, grown(cache, np.nan))

    def _add_row(self, params: dict[str, Any], number: int, tier: int) -> int:
        assert self.space is not None
        if self._n == len(self._tier):
            self._grow()
        r = self._n
        self._n += 1
        try:
            u = self.space.encode(params)
        except (KeyError, ValueError, TypeError):  # not a candidate of this space: left out
            u = np.full(self.space.dim, np.nan)
            tier = _EXCLUDED
        if self._has_cat:
            cat = self._kind == _CATEGORICAL
            u[cat] = np.minimum(np.floor(u[cat] * self._choices[cat]), self._choices[cat] - 1)
        self._x[r] = u
        self._xt[:, r] = u
        if len(self._numeric):
            self._sorted_add(u[self._numeric], r)
        self._active[r] = ~np.isnan(u)
        self._full[r] = self._active[r, self._modelled].all()
        self._tier[r] = tier
        self._loss[r] = np.inf
        self._viol[r] = 0.0
        self._number[r] = number
        if number >= 0:
            if r > 0 and number < self._number[r - 1]:
                self._in_order = False
            self._row_of[number] = r
        return r

    def _sorted_add(self, values: np.ndarray, r: int) -> None:
        """Row r into every numeric parameter's sorted order (after equal values) where it is
        active (not NaN), in place: the buffers have spare room, so a result costs one shift
        of each tail and no new array."""
        sizes = self._sorted_len
        active = values == values
        full = active & (sizes >= self._sorted_cap)
        if full.any():
            for i in np.flatnonzero(full):
                m = int(sizes[i])
                for bufs in (self._sorted_vbuf, self._sorted_rbuf):
                    grown = np.empty(2 * m, dtype=bufs[i].dtype)
                    grown[:m] = bufs[i][:m]
                    bufs[i] = grown
                self._sorted_cap[i] = 2 * m
        if self._insert_native is not None:
            self._insert_native(self._sorted_vbuf, self._sorted_rbuf, sizes, values, r)
        else:
            for i in np.flatnonzero(active):
                m = int(sizes[i])
                vals, rows = self._sorted_vbuf[i], self._sorted_rbuf[i]
                at = int(np.searchsorted(vals[:m], values[i], side="right"))
                vals[at + 1 : m + 1] = vals[at:m]  # overlapping: NumPy copies it safely
                rows[at + 1 : m + 1] = rows[at:m]
                vals[at], rows[at] = values[i], r
                sizes[i] = m + 1
        vals, rows = self._sorted_vals, self._sorted_rows
        for j, m, vbuf, rbuf, on in zip(
            self._numeric_ids,
            sizes.tolist(),
            self._sorted_vbuf,
            self._sorted_rbuf,
            active.tolist(),
            strict=True,
        ):
            if on:
                vals[j] = vbuf[:m]
                rows[j] = rbuf[:m]

    def note(self, trial: FrozenTrial) -> None:
        super().note(trial)
        if trial.number not in self._row_of:
            self._add_row(trial.params, trial.number, _PENDING)

    def _tell(self, trial: FrozenTrial) -> None:
        r = self._row_of.get(trial.number)
        if r is None:
            r = self._add_row(trial.params, trial.number, _PENDING)
        if self._tier[r] == _EXCLUDED:
            return
        if self._tier[r] == _COMPLETE:
            self._best = None  # a result replaced: the kept best rows may be wrong
        if trial.state is TrialState.COMPLETE and trial.values is not None:
            if len(trial.values) != len(self.directions):
                self._tier[r] = _EXCLUDED
                return
            signed = [
                v if d == "minimize" else -v
                for v, d in zip(trial.values, self.directions, strict=True)
            ]
            if not all(map(math.isfinite, signed)):
                self._tier[r] = _EXCLUDED
                return
            self._loss[r] = signed
            self._tier[r] = _COMPLETE
            self._n_finished += 1
            viol = trial.violation
            self._viol[r] = viol
            if viol > 0.0:
                # Infeasible: after every feasible row in the split, by violation. The kept
                # best rows are feasible ones only.
                self._constrained = True
                return
            best = self._best
            if best is not None and len(signed) == 1:
                key = (float(signed[0]), int(trial.number), r)
                cap = self.max_below
                if cap is None or len(best) < cap or key < best[-1]:
                    bisect.insort(best, key)
                    if cap is not None:
                        del best[cap:]
        elif trial.state is TrialState.PRUNED:
            step = trial.last_step
            value = trial.intermediate[step] if step is not None else math.inf
            sign = 1.0 if self.directions[0] == "minimize" else -1.0
            self._prune_key[r] = (-(step if step is not None else -1), sign * value)
            self._tier[r] = _PRUNED
            self._n_finished += 1
        else:
            self._tier[r] = _EXCLUDED

    # ---- asking -------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        # The candidates of one batch count as running for the ones after them; they are
        # forgotten after the batch, since the study notes every trial it starts.
        if self.space is None:
            return super().ask(n)
        first = self._n
        out = []
        try:
            for i in range(n):
                candidate = self._ask_one(self.rng(self.n_asked))
                self.n_asked += 1
                out.append(candidate)
                if i + 1 < n:  # only later asks of this batch need to see it
                    self._add_row(candidate, -1, _PENDING)
        finally:
            if self._n > first:
                self._tier[first : self._n] = _EXCLUDED
                self._n = first
                for _, cache in self._norm_cache.values():
                    cache[first:] = np.nan  # those rows will hold other trials
                for widths, _ in self._widths_cache.values():
                    widths[:, first:] = np.nan
                for state in self._g_widths.values():
                    if state is not None:
                        state.invalidate()  # those rows will hold other trials
                for i, j in enumerate(self._numeric.tolist()):
                    rows = self._sorted_rows[j]
                    keep = rows < first
                    if not keep.all():
                        m = int(keep.sum())
                        self._sorted_vbuf[i][:m] = self._sorted_vals[j][keep]
                        self._sorted_rbuf[i][:m] = rows[keep]
                        self._sorted_len[i] = m
                        self._sorted_vals[j] = self._sorted_vbuf[i][:m]
                        self._sorted_rows[j] = self._sorted_rbuf[i][:m]
        return out

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        if self._n_finished < self.n_startup_trials or len(self._modelled) == 0:
            candidate = self.space.sample(rng)
        else:
            candidate = self._propose(rng)
        return candidate

    def _propose(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        n = self._n
        use = (_USED_LIAR if self.constant_liar else _USED)[self._tier[:n]]
        rows = np.flatnonzero(use)
        below_mask = self._split(rows)  # a subset of `use`
        below = np.flatnonzero(below_mask)
        above = np.flatnonzero(use > below_mask)
        below_weights = self._below_weights(below)
        u = np.full(self.space.dim, 0.5)
        blocks = self._blocks(rows)
        for i, block in enumerate(blocks):
            if i == len(blocks) - 1:
                block = _Block(block.cols, block.joint, last=True)
            u[block.cols] = self._sample_block(block, below, below_weights, above, rng)
        cat = self._kind == _CATEGORICAL
        u[cat] = (u[cat] + 0.5) / self._choices[cat]
        return self.space.decode(u)

    # ---- the split ----------------------------------------------------------------------
    def _split(self, rows: np.ndarray) -> np.ndarray:
        """A mask over all rows: True for the `below` ones among `rows`."""
        n_below = math.ceil(self.gamma * len(rows))
        if self.max_below is not None:
            n_below = min(n_below, self.max_below)
        mask = np.zeros(self._n, dtype=bool)
        best = self._best
        if best is not None and self._loss.shape[1] == 1 and 0 < n_below <= len(best):
            # The kept best complete rows: every complete row is among `rows`, so these are
            # the ones the path below selects.
            mask[[r for _, _, r in best[:n_below]]] = True
            return mask
        tier = self._tier[rows]
        done = rows[tier == _COMPLETE]
        if len(done) >= n_below:
            mask[self._best_complete(done, n_below)] = True
            return mask
        mask[done] = True
        need = n_below - len(done)
        pruned = rows[tier == _PRUNED]
        if len(pruned):
            key = self._prune_key[pruned]
            order = np.lexsort((self._number[pruned], key[:, 1], key[:, 0]))
            take = pruned[order[:need]]
            mask[take] = True
            need -= len(take)
        if need > 0:
            pending = rows[tier == _PENDING]
            mask[pending[np.argsort(self._number[pending], kind="stable")[:need]]] = True
        return mask

    def _best_complete(self, done: np.ndarray, k: int) -> np.ndarray:
        best = self._best
        if self._loss.shape[1] == 1 and best is not None and k <= len(best):
            # The k best by (loss, trial number): the set the partition below selects.
            return np.array([r for _, _, r in best[:k]], dtype=np.int64)
        if self._constrained:
            # Feasible rows first (by loss or front), then the least violating others (as
            # Optuna's TPE with constraints_func; Watanabe and Hutter, 2023, c-TPE).
            viol = self._viol[done]
            feasible, infeasible = done[viol == 0.0], done[viol > 0.0]
            if len(feasible) >= k:
                return self._best_unconstrained(feasible, k)
            order = np.lexsort((self._number[infeasible], self._viol[infeasible]))
            return np.concatenate((feasible, infeasible[order[: k - len(feasible)]]))
        return self._best_unconstrained(done, k)

    def _best_unconstrained(self, done: np.ndarray, k: int) -> np.ndarray:
        losses = self._loss[done]
        if losses.shape[1] == 1:
            v = losses[:, 0]
            if k >= len(v):
                return done
            threshold = np.partition(v, k - 1)[k - 1]
            strict = done[v < threshold]
            ties = done[v == threshold]
            ties = ties[np.argsort(self._number[ties], kind="stable")[: k - len(strict)]]
            return np.concatenate((strict, ties))
        from airda.ops import non_dominated_rank

        ranks = np.asarray(non_dominated_rank(losses))
        counts = np.bincount(ranks)
        full = np.searchsorted(np.cumsum(counts), k, side="right")  # fronts that fit whole
        chosen = [done[ranks < full]]
        left = k - len(chosen[0])
        if left > 0:
            front = done[ranks == full]
            chosen.append(front[_greedy_hssp(self._loss[front], left)])
        return np.concatenate(chosen)

    def _below_weights(self, below: np.ndarray) -> np.ndarray | None:
        """Per-row weights of the below set for MOTPE (hypervolume contributions), else None."""
        if self._loss.shape[1] == 1 or len(below) == 0:
            return None
        weights = np.zeros(self._n)
        good = (self._tier[below] == _COMPLETE) & (self._viol[below] == 0.0)
        complete = below[good]
        if len(complete):
            c = _contributions(self._loss[complete])
            top = c.max()
            weights[complete] = np.clip(c / top, 1e-12, 1.0) if top > 0 else 1.0
        rest = below[~good]
        weights[rest] = 1e-12
        return weights

    # ---- blocks of parameters -----------------------------------------------------------
    def _blocks(self, rows: np.ndarray) -> list[_Block]:
        modelled = self._modelled
        if not self.multivariate:
            return [_Block(np.array([j]), False) for j in modelled]
        if self._full[: self._n].all() or self._full[rows].all():  # one joint block
            return [_Block(modelled, True)]
        active = self._active[rows][:, modelled]
        if self.group:
            groups: dict[bytes, list[int]] = {}
            for i, j in enumerate(modelled):
                groups.setdefault(np.packbits(active[:, i]).tobytes(), []).append(int(j))
            blocks = []
            for key, cols in groups.items():
                never = not any(key)
                if never:
                    blocks.extend(_Block(np.array([j]), False) for j in cols)
                else:
                    blocks.append(_Block(np.array(cols), True))
            return sorted(blocks, key=lambda b: int(b.cols[0]))
        always = active.all(axis=0)
        blocks = [_Block(modelled[always], True)] if always.any() else []
        blocks += [_Block(np.array([j]), False) for j in modelled[~always]]
        return blocks

    # ---- one block: fit l and g, draw from l, keep the best ratio --------------------------
    def _sample_block(
        self,
        block: _Block,
        below: np.ndarray,
        below_weights: np.ndarray | None,
        above: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        cols = block.cols
        if self._full[: self._n].all() or (self._full[below].all() and self._full[above].all()):
            pass  # every row has every parameter (no conditional ones): nothing to filter
        elif len(cols) == 1:
            below = below[self._active[below, cols[0]]]
            above = above[self._active[above, cols[0]]]
        else:
            below = below[self._active[below][:, cols].all(axis=1)]
            above = above[self._active[above][:, cols].all(axis=1)]
        num = cols[self._kind[cols] == _NUMERIC]
        cat = cols[self._kind[cols] == _CATEGORICAL]
        if (
            self._propose_native is not None
            and block.last
            and block.joint
            and len(num) == len(cols)
            and below_weights is None
            and self.bandwidth == "neighbour"
            and 0 < len(below) <= 256
            and len(above) > 1
        ):
            state = self._g_state(num)
            if state is not None:
                return self._sample_native(state, num, below, above, rng)
        wb = self._weights(below, below_weights)
        wa = self._weights(above, None)
        lower = self._mixture(below, wb, num, cat, block.joint, cache=False)
        upper = self._mixture(above, wa, num, cat, block.joint, cache=True)
        k = self.n_ei_candidates
        # rng.choice(len(p), size=k, p=p) without its checks: the same draws and RNG use.
        cdf = np.cumsum(np.exp(lower["log_w"]))
        cdf /= cdf[-1]
        comp = cdf.searchsorted(rng.random(k), side="right")
        xs = self._draw_numeric(lower, comp, num, rng, last=len(cat) == 0 and block.last)
        codes = self._draw_categorical(lower, comp, cat, rng)
        # The prior's log-density up to its weight, shared by l and g.
        dx = xs - 0.5
        prior = len(num) * _PRIOR_LOG_NORM - 0.5 * np.einsum("ij,ij->i", dx, dx)
        if len(cat):
            prior -= np.log(self._choices[cat]).sum()
        score = self._logpdf(lower, xs, codes, prior) - self._logpdf(upper, xs, codes, prior)
        best = int(np.argmax(score))
        out = np.empty(len(cols))
        out[self._kind[cols] == _NUMERIC] = xs[best]
        out[self._kind[cols] == _CATEGORICAL] = codes[best]
        return out

    def _sample_native(
        self,
        state: Any,
        num: np.ndarray,
        below: np.ndarray,
        above: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The common case of :meth:`_sample_block` (one joint block of numeric parameters, the
        last of the ask, single objective) in one compiled call: the same estimators, the same
        draws from `rng` and the same candidates; scores equal up to rounding."""
        wb = self._weights(below, None)
        wa = self._weights(above, None)
        clip = self.consider_magic_clip
        self._update_g(state, num, above, 1.0 / min(100.0, len(above) + 2) if clip else 1e-12)
        k, p = self.n_ei_candidates, len(num)
        uniform = rng.random(k)
        z = rng.standard_normal(2 * k * p + 64)
        plan = self._native_snaps.get(num.tobytes())
        if plan is None:
            logint = self._logint[num]
            plan = self._native_snaps[num.tobytes()] = (
                self._bins[num].astype(float),
                logint.astype(np.uint8),
                np.ascontiguousarray(self._log_lo[num]),
                np.ascontiguousarray(self._log_hi[num]),
                np.where(logint, self._int_low[num], 0.0),
                np.where(logint, self._int_high[num], 0.0),
            )
        x, score = np.empty((k, p)), np.empty(k)
        args = (state, wa, self._xt, num, below, wb, self.consider_endpoints)
        minimum = 1.0 / min(100.0, len(below) + 2) if clip else 1e-12
        best = self._propose_native(
            *args, minimum, uniform, z, *plan, p * _PRIOR_LOG_NORM, x, score
        )
        if best < 0:  # too few normals drawn ahead (rare): more, as consecutive draws
            z = np.concatenate((z, rng.standard_normal(64 * k * p)))
            best = self._propose_native(
                *args, minimum, uniform, z, *plan, p * _PRIOR_LOG_NORM, x, score
            )
            if best < 0:
                raise RuntimeError("TPE could not draw inside [0, 1]")  # unreachable in practice
        return x[best]

    def _weights(self, rows: np.ndarray, given: np.ndarray | None) -> np.ndarray:
        """Normalised log-weights of the observation components and (last) the prior."""
        if given is not None:
            w = given[rows]
        elif self._in_order or len(rows) <= 1:
            return _default_log_weights(len(rows), self.prior_weight)
        else:
            w = _default_weights(len(rows))
            if not self._in_order and len(rows) > 1:
                w = w[np.argsort(np.argsort(self._number[rows], kind="stable"), kind="stable")]
        w = np.append(w, self.prior_weight)
        return np.log(w / w.sum())

    def _mixture(
        self,
        rows: np.ndarray,
        log_w: np.ndarray,
        num: np.ndarray,
        cat: np.ndarray,
        joint: bool,
        cache: bool,
    ) -> dict[str, Any]:
        """The estimator over `rows`: observation components (means, bandwidths, categorical
        tables, normalisers) and the prior component (means 0.5, width 1, uniform choices),
        kept apart so that the large g(x) is scored without copying a prior row into it."""
        n_obs = len(rows)
        n_comp = n_obs + 1
        # g's components go in ascending order of the first numeric parameter (in row order in
        # the compiled state from three parameters on): the op skips the chunks of them far from
        # a candidate (the order changes only rounding). l keeps trial order, since candidates
        # are drawn from its components by index.
        by_first = cache and len(num) > 0 and n_obs > 1
        out: dict[str, Any] = {"num": num, "cat": cat, "n_obs": n_obs}
        if len(num):
            # hyperopt's and Optuna's magic clip: 1 + the kernels (the observations and the prior).
            minimum = 1.0 / min(100.0, n_comp + 1) if self.consider_magic_clip else 1e-12
            scott = joint and self.bandwidth == "scott"
            state = self._g_state(num) if by_first and not scott else None
            if state is not None:
                self._update_g(state, num, rows, minimum)
                rows = state.rows
                out["mu_t"], out["sigma_t"], out["log_norm"] = state.mu, state.sigma, state.log_norm
                # Scored by the state itself (its inverse widths are kept too); log_w stays in
                # member order, which the state maps to its components.
                out["state"] = state
            else:
                # Means and widths (p, n_obs), transposed: the op reads both in place.
                mu_t = self._buffer("mu_g" if cache else "mu_l", (len(num), n_obs))
                stale, filled = None, False
                if not scott:
                    sigma_t = self._buffer("sigma_g" if cache else "sigma_l", (len(num), n_obs))
                    rows, perm, stale, filled = self._bandwidths(
                        rows, num, minimum, sigma_t, mu_t, by_first, cache
                    )
                    out["sigma_t"] = sigma_t
                elif by_first:
                    rows, perm = self._ordered(rows, int(num[0]))
                if by_first:
                    log_w = np.concatenate((log_w[:n_obs][perm], log_w[n_obs:]))
                if not filled:
                    mu_t[:] = self._xt[np.ix_(num, rows)]
                out["mu_t"] = mu_t
                if scott:
                    level = 2.0 ** (math.floor(math.log2(max(n_obs, 1)) * _N_GRID) / _N_GRID)
                    p = len(num) + len(cat)
                    width = max(0.2 * level ** (-1.0 / (p + 4)), minimum)
                    out["sigma_t"] = np.full(len(num), width)
                    out["log_norm"] = self._cached_norm(rows, num, width, mu_t) if cache else None
                else:
                    out["log_norm"] = (
                        self._widths_norm(rows, num, mu_t, sigma_t, stale) if cache else None
                    )
        out["log_w"] = log_w
        if len(cat):
            n_choices = self._choices[cat]
            top = int(n_choices.max())
            eps = self.prior_weight / n_comp
            table = np.empty((n_obs, len(cat), top))
            prior = np.full((1, len(cat), top), -np.inf)
            observed = self._x[np.ix_(rows, cat)].astype(np.int64)  # in component order
            for c in range(len(cat)):
                size = int(n_choices[c])
                table[:, c, :] = -np.inf
                table[:, c, :size] = math.log(eps / (1.0 + size * eps))
                table[np.arange(n_obs), c, observed[:, c]] = math.log(
                    (1.0 + eps) / (1.0 + size * eps)
                )
                prior[0, c, :size] = -math.log(size)
            out["table"], out["prior_table"] = table, prior
        return out

    def _update_g(self, state: Any, num: np.ndarray, rows: np.ndarray, minimum: float) -> None:
        """g's compiled state brought to the members `rows`: kept between asks, only the
        components next to a change are recomputed."""
        key = num.tolist()
        state.update(
            [self._sorted_rows[j] for j in key],
            [self._sorted_vals[j] for j in key],
            self._xt,
            num,
            rows,
            self._n,
            minimum,
            8 + len(rows) // 32,
        )

    def _g_state(self, num: np.ndarray) -> Any:
        """The compiled NeighbourWidths of g's block `num` (None without the compiled module)."""
        key = tuple(num.tolist())
        try:
            return self._g_widths[key]
        except KeyError:
            pass
        try:
            from airda._native import native

            # From three parameters on, the components go in row order: a new trial joins at
            # the end and an update shifts nothing. The order by the first parameter pays only
            # where the op's chunk skipping decides, in one or two dimensions.
            state = native().NeighbourWidths(len(key), self.consider_endpoints, len(key) >= 3)
        except (ImportError, AttributeError):
            state = None
        self._g_widths[key] = state
        return state

    def _buffer(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """A reused C-contiguous scratch array (fresh large arrays cost page faults each ask)."""
        size = shape[0] * shape[1]
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = np.empty(
                max(size, 2 * (buf.size if buf is not None else 0))
            )
        return buf[:size].reshape(shape)

    def _ordered(self, rows: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        """`rows` in ascending order of parameter j (from the sorted rows kept per parameter,
        in O(n)), and the permutation that takes `rows` there."""
        index = np.full(self._n, -1, dtype=np.int64)
        index[rows] = np.arange(len(rows))
        sorted_rows = self._sorted_rows[j]
        perm = index[sorted_rows]
        perm = perm[perm >= 0]
        return rows[perm], perm

    def _bandwidths(
        self,
        rows: np.ndarray,
        num: np.ndarray,
        minimum: float,
        out: np.ndarray,
        values: np.ndarray,
        by_first: bool,
        cache: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
        """Neighbour bandwidths (hyperopt's rule, :meth:`_neighbour_bandwidths` is the
        reference) of `rows` into ``out`` (len(num), n), the components ordered by the first
        parameter when `by_first`. Returns the rows in component order, the permutation from
        `rows`, when `cache` which components' widths differ from the ones their row's
        cached normaliser was computed with (None: compare them), and whether the means were
        written to ``values`` (len(num), n) on the way."""
        n = len(rows)
        key = tuple(num.tolist())
        try:
            from airda._native import native

            helper = native().tpe_bandwidths
        except ImportError:
            helper = None
        if not by_first and not cache and 0 < n <= 256:
            # A small mixture (l): sorting its own values beats walking every observation.
            values[:] = self._xt[np.ix_(num, rows)]
            if helper is None:
                out[:] = self._sorted_bandwidths(values, minimum)
            else:
                native().sorted_bandwidths(values, self.consider_endpoints, minimum, 1.0, out)
            return rows, np.arange(n), None, True
        widths = self._widths_entry(key)[0] if cache else None
        if helper is None or n == 0:
            perm = self._ordered(rows, int(num[0]))[1] if by_first else np.arange(n)
            rows = rows[perm]
            if n:
                out[:] = self._neighbour_bandwidths(rows, num, minimum).T
            return rows, perm, None, False
        index = np.full(self._n, -1, dtype=np.int64)
        index[rows] = np.arange(n)
        stale = np.zeros(n, dtype=np.uint8) if cache else None
        perm = helper(
            [self._sorted_rows[j] for j in key],
            [self._sorted_vals[j] for j in key],
            index,
            n,
            by_first,
            self.consider_endpoints,
            minimum,
            1.0,
            out,
            values,
            widths,
            stale,
        )
        return rows[perm], perm, stale, True

    def _sorted_bandwidths(self, values: np.ndarray, minimum: float) -> np.ndarray:
        """hyperopt's rule by sorting `values` (p, n), rows in ascending trial order: the same
        widths as :meth:`_neighbour_bandwidths` (a stable sort puts tied values in row order,
        as the sorted rows kept per parameter do)."""
        p, n = values.shape
        order = np.argsort(values, axis=1, kind="stable")
        padded = np.empty((p, n + 2))
        padded[:, 0] = 0.0
        padded[:, -1] = 1.0
        v = padded[:, 1:-1]
        v[:] = values
        v.sort(axis=1)  # tied values are equal: any sort gives the stable order's values
        gaps = np.diff(padded, axis=1)  # gaps[:, i] = v[i] - left neighbour; [:, i + 1] right
        if not self.consider_endpoints and n > 1:
            gaps[:, 0] = gaps[:, 1]
            gaps[:, -1] = gaps[:, -2]
        width = np.maximum(gaps[:, :-1], gaps[:, 1:])
        np.clip(width, minimum, 1.0, out=width)
        out = np.empty((p, n))
        out[np.arange(p)[:, None], order] = width
        return out

    def _widths_entry(self, key: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Per block of parameters: the widths (p, rows) each row's cached normaliser was
        computed with, and that normaliser (rows,)."""
        entry = self._widths_cache.get(key)
        if entry is None:
            cap = len(self._tier)
            entry = (np.full((len(key), cap), np.nan), np.full(cap, np.nan))
            self._widths_cache[key] = entry
        return entry

    def _widths_norm(
        self,
        rows: np.ndarray,
        num: np.ndarray,
        mu_t: np.ndarray,
        sigma_t: np.ndarray,
        stale: np.ndarray | None,
    ) -> np.ndarray:
        """log-normalisers of a joint estimator's components with per-row widths, cached per
        row with the widths they were computed for: between asks only the rows next to a
        change (a new trial, a trial moving between l and g) get new widths, so few
        normalisers are recomputed. Exact: a cached value is the one the op would compute."""
        widths, cache = self._widths_entry(tuple(num.tolist()))
        if stale is None:  # no compiled helper marked them: compare
            changed = (widths[:, rows] != sigma_t).any(axis=0)
            widths[:, rows[changed]] = sigma_t[:, changed]
        else:
            changed = stale.view(bool)
        redo = np.flatnonzero(changed)
        if len(redo):
            d = len(num)
            cache[rows[redo]] = _parzen_log_norm_trusted(
                np.ascontiguousarray(mu_t[:, redo].T),
                np.ascontiguousarray(sigma_t[:, redo].T),
                np.zeros(d),
                np.ones(d),
            )
        return cache[rows]

    def _neighbour_bandwidths(
        self, rows: np.ndarray, num: np.ndarray, minimum: float
    ) -> np.ndarray:
        """hyperopt's rule, per dimension: each observation's bandwidth is the larger gap to
        its neighbouring observations (the bounds count as neighbours of the outermost ones
        only with ``consider_endpoints``, or when there is one observation), clipped to
        [minimum, 1]. Returns (len(rows), len(num)); the order comes from the sorted rows kept
        per parameter, filtered to `rows` in O(n)."""
        n, p = len(rows), len(num)
        out = np.empty((n, p))
        if n == 0:
            return out
        member = np.zeros(self._n, dtype=bool)
        member[rows] = True
        position = np.zeros(self._n, dtype=np.int64)
        position[rows] = np.arange(n)
        for k, j in enumerate(num):
            sorted_rows = self._sorted_rows[int(j)]
            keep = member[sorted_rows]
            order = position[sorted_rows[keep]]
            values = self._sorted_vals[int(j)][keep]
            padded = np.empty(n + 2)
            padded[0], padded[1:-1], padded[-1] = 0.0, values, 1.0
            left = values - padded[:-2]
            right = padded[2:] - values
            if not self.consider_endpoints and n > 1:
                left[0] = right[0]
                right[-1] = left[-1]
            out[order, k] = np.maximum(left, right)
        return np.clip(out, minimum, 1.0, out=out)

    def _cached_norm(self, rows, num, width, mu_t) -> np.ndarray:
        """log-normalisers of a joint estimator's observation components (shared width), cached
        per row until the width moves."""
        key = tuple(num.tolist())
        level, cache = self._norm_cache.get(key, (None, None))
        if level != width or cache is None:
            cache = np.full(len(self._tier), np.nan)
            self._norm_cache[key] = (width, cache)
        norm = cache[rows]
        missing = np.isnan(norm)
        if missing.any():
            d = len(num)
            norm[missing] = _parzen_log_norm_trusted(
                np.ascontiguousarray(mu_t[:, missing].T), np.full(d, width), np.zeros(d), np.ones(d)
            )
            cache[rows[missing]] = norm[missing]
        return norm

    def _draw_numeric(self, mix, comp, num, rng, last: bool = False) -> np.ndarray:
        """Draws from the components `comp` of l, truncated to [0, 1] by rejection. `last`:
        nothing else draws from `rng` in this ask, so the normals may be drawn ahead in one
        call (the same stream: consecutive draws of the generator) and the rejection run
        compiled."""
        k, p = len(comp), len(num)
        if not p:
            return np.empty((k, 0))
        n_obs = mix["n_obs"]
        # Means and widths of the drawn components; the prior (index n_obs) is N(0.5, 1).
        if n_obs:
            obs = np.minimum(comp, n_obs - 1)
            mu = mix["mu_t"][:, obs].T
            sigma_t = mix["sigma_t"]
            sigma = sigma_t[:, obs].T if sigma_t.ndim == 2 else np.broadcast_to(sigma_t, (k, p))
            prior = (comp >= n_obs)[:, None]
            if prior.any():
                mu = np.where(prior, 0.5, mu)
                sigma = np.where(prior, 1.0, sigma)
        else:
            mu, sigma = np.full((k, p), 0.5), np.ones((k, p))
        if last and self._truncated_native is not None:
            mu, sigma = np.ascontiguousarray(mu), np.ascontiguousarray(sigma)
            z = rng.standard_normal(2 * k * p + 64)
            x = np.empty((k, p))
            if self._truncated_native(x, mu, sigma, z) >= 0:
                return self._snap(x, num)
            # Too few normals drawn ahead (rare): redo from the generator as consecutive
            # draws, the first 2kp + 64 of which are z.
            more = rng.standard_normal(64 * k * p)
            z = np.concatenate((z, more))
            if self._truncated_native(x, mu, sigma, z) >= 0:
                return self._snap(x, num)
            raise RuntimeError("TPE could not draw inside [0, 1]")  # unreachable in practice
        x = mu + sigma * rng.standard_normal((k, p))
        bad = np.flatnonzero((x < 0.0) | (x > 1.0)).tolist()
        if bad:
            # Rejection, up to 100 rounds (every component keeps at least a third of its mass):
            # each round redraws the coordinates still outside, in row-major order, with one
            # draw of that many normals (as x[bad] = mu[bad] + sigma[bad] * z would), on
            # Python floats, since few are left after the first rounds.
            flat, mu_f, sigma_f = x.reshape(-1), mu.reshape(-1), sigma.reshape(-1)
            for _ in range(100):
                z = rng.standard_normal(len(bad)).tolist()
                left = []
                for i, zi in zip(bad, z, strict=True):
                    v = float(mu_f[i]) + float(sigma_f[i]) * zi
                    flat[i] = v
                    if v < 0.0 or v > 1.0:
                        left.append(i)
                bad = left
                if not bad:
                    break
            np.clip(x, 0.0, 1.0, out=x)
        return self._snap(x, num)

    def _snap(self, x: np.ndarray, num: np.ndarray) -> np.ndarray:
        """Discrete parameters to the unit coordinate of the value they decode to."""
        key = num.tobytes()
        plan = self._snap_plans.get(key)
        if plan is None:
            bins = self._bins[num]
            binned = np.flatnonzero(bins > 0)
            logint = self._logint[num]
            lo, hi = self._log_lo[num][logint], self._log_hi[num][logint]
            plan = (
                binned if len(binned) else None,
                bins[binned].astype(float),
                np.flatnonzero(logint) if logint.any() else None,
                lo,
                hi,
                self._int_low[num][logint],
                self._int_high[num][logint],
            )
            self._snap_plans[key] = plan
        binned, b, logint, lo, hi, low, high = plan
        if binned is not None:
            x[:, binned] = (np.minimum(np.floor(x[:, binned] * b), b - 1) + 0.5) / b
        if logint is not None:
            v = np.rint(np.exp(lo + x[:, logint] * (hi - lo)))
            v = np.clip(v, low, high)
            x[:, logint] = (np.log(v) - lo) / (hi - lo)
        return x

    def _draw_categorical(self, mix, comp, cat, rng) -> np.ndarray:
        k = len(comp)
        if not len(cat):
            return np.empty((k, 0), dtype=np.int64)
        tables = np.concatenate((mix["table"], mix["prior_table"]))
        probs = np.exp(tables[comp])  # (k, n_cat, top)
        cum = np.cumsum(probs, axis=2)
        u = rng.random((k, len(cat), 1)) * cum[:, :, -1:]
        codes = (u >= cum).sum(axis=2)
        return np.minimum(codes, self._choices[cat] - 1).astype(np.int64)

    def _logpdf(self, mix, xs, codes, prior) -> np.ndarray:
        """log of the mixture's density at the candidates: the observation components by the
        compiled op, the prior component in closed form (`prior`: its log-density, N(0.5, 1)
        truncated to [0, 1] in every numeric dimension and uniform choices, before its
        weight)."""
        d = len(mix["num"])
        n_obs = mix["n_obs"]
        log_w = mix["log_w"]
        xs = np.ascontiguousarray(xs)
        prior = prior + log_w[n_obs]
        table = mix.get("table")
        if n_obs == 0:
            return prior
        state = mix.get("state")
        if state is not None:
            out = np.empty(len(xs))
            state.logpdf(
                xs,
                log_w,
                codes if table is not None else None,
                table,
                prior,
                0,
                out,
            )
            return out
        if d:
            mu, sigma, norm = mix["mu_t"].T, mix["sigma_t"], mix["log_norm"]
            if sigma.ndim == 2:
                sigma = sigma.T  # column-major (n_obs, d): read in place by the op
        else:
            mu, sigma, norm = np.empty((n_obs, 0)), np.empty(0), None
        return _parzen_logpdf_trusted(
            xs,
            mu,
            sigma,
            np.ascontiguousarray(log_w[:n_obs]),
            norm,
            np.zeros(d),
            np.ones(d),
            codes if table is not None else None,
            table,
            prior,
        )


class MOTPE(TPE):
    """TPE under its multi-objective name: the split by non-dominated front and hypervolume,
    below weights by hypervolume contribution (what :class:`TPE` does with several
    objectives), with ``max_below=None`` by default: the good set is ``ceil(gamma * n)``
    trials without the cap of 25, as in Optuna's multi-objective TPE, since the front to cover
    grows with the trials (on seeds 100-101 of nine ZDT, DTLZ and WFG problems: a larger
    hypervolume after 1,000 trials in 12 of 16 pairs; equal before 250 trials, where
    ``0.1 n <= 25``). Takes :class:`TPE`'s options.

    Example:
        >>> import airda
        >>> from airda.space import Float
        >>> study = airda.create_study(space={"x": Float(0, 1), "y": Float(0, 1)},
        ...                            directions=["minimize", "minimize"],
        ...                            strategy=MOTPE(seed=0))
        >>> study.optimize(lambda t: (t["x"], (1 - t["x"]) + t["y"]), n_trials=40)
        >>> len(study.pareto_front()) > 3
        True
    """

    name = "motpe"

    def __init__(self, *, max_below: int | None = None, **options: Any):
        super().__init__(max_below=max_below, **options)

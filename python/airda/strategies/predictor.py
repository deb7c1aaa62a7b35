"""Predictor-guided search: a surrogate fitted on the history proposes the next candidates.

After ``n_initial`` random candidates, every ask fits a Gaussian-process surrogate to the
completed trials (exact GP on an encoding of the candidates: one-hot for categorical
parameters, the unit interval for numeric ones, or a user encoder such as NAS-Bench-201's path
encoding), scores a pool of random candidates and mutations of the best ones by expected
improvement, and proposes the best unseen one. This is the BANANAS recipe (White et al., AAAI
2021: a predictor over an architecture encoding, an acquisition function, a mutation-based
pool) with a GP in place of the neural ensemble: on a few hundred points it fits in
milliseconds and gives calibrated uncertainty.

:class:`WarmStart` wraps any strategy so that its first candidates are the most promising of a
large random pool by a cheap score (a zero-cost proxy), evaluated before the strategy's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from airda.space import Categorical, candidate_key
from airda.strategies._gp_surrogate import Posterior
from airda.strategies.base import Strategy
from airda.trial import FrozenTrial, TrialState

__all__ = ["PredictorGuided", "WarmStart"]

_NOISE_GRID = (1e-4, 1e-2, 1e-1)
_SCALE_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
_SQRT2 = math.sqrt(2.0)


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf

    return 0.5 * (1.0 + np.vectorize(erf, otypes=[float])(z / _SQRT2))


class _GP:
    """Exact GP regression with a Laplacian kernel exp(-||x - y||_1 / l) on standardised y;
    length scale and noise chosen by marginal likelihood over a small grid."""

    def __init__(self, x: np.ndarray, y: np.ndarray, hyper: tuple[float, float] | None):
        self.x = x
        self.mu, self.sd = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mu) / self.sd
        dist = np.abs(x[:, None, :] - x[None, :, :]).sum(-1)
        median = float(np.median(dist[dist > 0])) if np.any(dist > 0) else 1.0
        best = None
        grid = [hyper] if hyper else [(s * median, n) for s in _SCALE_GRID for n in _NOISE_GRID]
        for scale, noise in grid:
            try:
                post = Posterior(np.exp(-dist / scale) + noise * np.eye(len(z)), z)
            except np.linalg.LinAlgError:
                continue
            fit = post.log_marginal_likelihood()
            if best is None or fit > best[0]:
                best = (fit, scale, noise, post)
        if best is None:
            raise np.linalg.LinAlgError("no length scale gave a positive definite kernel")
        _, self.scale, self.noise, self.posterior = best

    @property
    def hyper(self) -> tuple[float, float]:
        return self.scale, self.noise

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ks = np.exp(-np.abs(xs[:, None, :] - self.x[None, :, :]).sum(-1) / self.scale)
        mean, var, _ = self.posterior.predict(ks, 1.0)
        return mean * self.sd + self.mu, np.sqrt(var) * self.sd


class PredictorGuided(Strategy):
    """Surrogate-guided search for discrete and mixed spaces (single objective).

    Args:
        n_initial: random candidates before the surrogate takes over.
        pool: random candidates scored per ask (plus ``mutations`` mutants of each of the
            ``top`` best trials).
        top, mutations: the mutation part of the pool.
        encoder: optional ``encoder(params) -> 1-D array`` (e.g. a path encoding); by default
            one-hot for categorical parameters and the unit interval for the rest.
        refit_every: the kernel's hyperparameters are chosen again (by marginal likelihood)
            every this many results; the GP itself is refitted on every new result.
        seed: the sampling seed.

    Example:
        >>> import airda
        >>> from airda.space import Categorical
        >>> space = {f"x{i}": Categorical([0, 1, 2, 3, 4]) for i in range(6)}
        >>> study = airda.create_study(space=space, strategy=PredictorGuided(seed=0))
        >>> study.optimize(lambda t: sum((v - 2) ** 2 for v in t.params.values()), n_trials=40)
        >>> study.best_value
        0.0
    """

    name = "predictor"
    supports_multi_objective = False
    tracks_seen = True

    def __init__(
        self,
        *,
        n_initial: int = 10,
        pool: int = 256,
        top: int = 5,
        mutations: int = 20,
        encoder: Callable[[Mapping[str, Any]], Sequence[float]] | None = None,
        refit_every: int = 10,
        seed: int | None = None,
    ):
        super().__init__(seed=seed)
        for label, value, low in (
            ("n_initial", n_initial, 1),
            ("pool", pool, 1),
            ("top", top, 0),
            ("mutations", mutations, 0),
            ("refit_every", refit_every, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
        self.n_initial, self.pool, self.top, self.mutations = n_initial, pool, top, mutations
        self.refit_every = refit_every
        self.encoder = encoder

    def options(self) -> dict[str, Any]:
        return {
            "n_initial": self.n_initial,
            "pool": self.pool,
            "top": self.top,
            "mutations": self.mutations,
            "refit_every": self.refit_every,
        }

    def _reset(self) -> None:
        assert self.space is not None
        self._done: list[FrozenTrial] = []
        self._features: list[np.ndarray] = []
        self._model: _GP | None = None
        self._model_size = -1
        self._hyper: tuple[float, float] | None = None
        self._hyper_size = 0
        self._pending: set[str] = set()
        self._feature_cache: dict[str, np.ndarray] = {}
        # All-categorical spaces without conditions (most NAS cells) take a vectorised path:
        # candidates are rows of choice indices, keyed by their mixed-radix code.
        params = [self.space[n] for n in self.space.names]
        self._fast = all(isinstance(p, Categorical) and not p.when for p in params)
        if self._fast:
            self._sizes = np.array([len(p.choices) for p in params], dtype=np.int64)
            self._radix = np.cumprod(np.r_[1, self._sizes[:-1]]).astype(np.int64)
            self._offsets = np.r_[0, np.cumsum(self._sizes)[:-1]]
            self._seen_codes: set[int] = set()
            self._pending_codes: set[int] = set()

    def _row(self, params: Mapping[str, Any]) -> np.ndarray:
        assert self.space is not None
        return np.array([self.space[n].index(params[n]) for n in self.space.names])

    def note(self, trial: FrozenTrial) -> None:
        super().note(trial)
        if self._fast:
            self._seen_codes.add(int(self._row(trial.params) @ self._radix))

    def _tell(self, trial: FrozenTrial) -> None:
        if trial.state is TrialState.COMPLETE and math.isfinite(self.loss(trial)):
            self._done.append(trial)
            self._features.append(self.encode(trial.params))
        self._pending.discard(candidate_key(trial.params))
        if self._fast:
            self._pending_codes.discard(int(self._row(trial.params) @ self._radix))

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The surrogate's feature vector of a candidate."""
        if self.encoder is not None:
            key = candidate_key(params)
            vec = self._feature_cache.get(key)
            if vec is None:
                vec = self._feature_cache[key] = np.asarray(self.encoder(params), dtype=np.float64)
            return vec
        assert self.space is not None
        parts = []
        for name in self.space.names:
            p = self.space[name]
            if isinstance(p, Categorical):
                onehot = np.zeros(len(p.choices))
                if name in params:
                    onehot[p.index(params[name])] = 1.0
                parts.append(onehot)
            else:
                parts.append([p.to_unit(params[name]) if name in params else 0.5])
        return np.concatenate([np.asarray(x, dtype=np.float64) for x in parts])

    def _fit(self) -> _GP:
        n = len(self._done)
        if self._model is None or self._model_size != n:
            x = np.stack(self._features)
            y = np.array([self.loss(t) for t in self._done])
            # Hyperparameters come from the first n0 results, n0 a multiple of refit_every, so
            # they depend on the history alone (a resumed study continues identically).
            n0 = max(n - n % self.refit_every, 2)
            if self._hyper is None or self._hyper_size != n0:
                self._hyper = _GP(x[:n0], y[:n0], None).hyper
                self._hyper_size = n0
            self._model = _GP(x, y, self._hyper)
            self._model_size = n
        return self._model

    def _best(self) -> list[FrozenTrial]:
        return sorted(self._done, key=self.loss)[: self.top]

    def _candidates(self, rng: np.random.Generator) -> tuple[list[dict[str, Any]], np.ndarray]:
        """The pool (unseen, distinct) and its feature matrix."""
        assert self.space is not None
        if self._fast:
            return self._candidates_fast(rng)
        pool = [self.space.sample(rng) for _ in range(self.pool)]
        for t in self._best():
            for k in range(self.mutations):
                pool.append(self.space.mutate(t.params, rng, n=1 + k % 2))
        out, keys = [], set()
        for c in pool:
            key = candidate_key(c)
            if key in keys or key in self.seen or key in self._pending:
                continue
            keys.add(key)
            out.append(c)
        feats = np.stack([self.encode(c) for c in out]) if out else np.empty((0, 0))
        return out, feats

    def _candidates_fast(self, rng: np.random.Generator):
        assert self.space is not None
        sizes, d = self._sizes, self._sizes.size
        rows = [rng.integers(0, sizes, size=(self.pool, d))]
        best = self._best()
        if best and self.mutations:
            parents = np.repeat(np.stack([self._row(t.params) for t in best]), self.mutations, 0)
            m = parents.shape[0]
            for extra in (False, True):
                pick = np.arange(m) % 2 == 1 if extra else np.ones(m, dtype=bool)
                pos = rng.integers(0, d, size=m)
                shift = 1 + (rng.random(m) * (sizes[pos] - 1)).astype(np.int64)
                moved = (parents[np.arange(m), pos] + shift) % sizes[pos]
                parents[np.arange(m)[pick], pos[pick]] = moved[pick]
            rows.append(parents)
        pool = np.concatenate(rows)
        codes = pool @ self._radix
        _, first = np.unique(codes, return_index=True)
        first.sort()
        blocked = self._seen_codes | self._pending_codes
        keep = [i for i in first if int(codes[i]) not in blocked]
        pool = pool[keep]
        names = self.space.names
        choices = [self.space[n].choices for n in names]
        cands = [{n: choices[j][int(r[j])] for j, n in enumerate(names)} for r in pool]
        if self.encoder is not None:
            feats = np.stack([self.encode(c) for c in cands]) if cands else np.empty((0, 0))
        else:
            feats = np.zeros((len(pool), int(sizes.sum())))
            feats[np.arange(len(pool))[:, None], self._offsets + pool] = 1.0
        return cands, feats

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        assert self.space is not None
        if len(self._done) < max(self.n_initial, 2) or self.n_asked < self.n_initial:
            choice = self.space.sample(rng)
        else:
            pool, feats = self._candidates(rng)
            if not pool:
                choice = self.space.sample(rng)
            else:
                model = self._fit()
                mean, sd = model.predict(feats)
                best = min(self.loss(t) for t in self._done)
                z = (best - mean) / sd
                ei = (best - mean) * _norm_cdf(z) + sd * _norm_pdf(z)
                choice = pool[int(np.argmax(ei))]
        self._pending.add(candidate_key(choice))
        if self._fast:
            self._pending_codes.add(int(self._row(choice) @ self._radix))
        return choice


class WarmStart(Strategy):
    """Any strategy, its first candidates chosen by a cheap score over a large random pool.

    The first ``n_warm`` asks return the best-scoring candidates of ``pool`` random ones
    (scored once, by ``scorer``, higher is better: e.g. a zero-cost proxy of the architecture);
    every ask after that is the wrapped strategy's, which is told every result, warm ones
    included.

    Args:
        strategy: the strategy to warm-start (name or instance).
        scorer: ``scorer(list_of_params) -> scores`` (batch), or ``scorer(params) -> float``
            with ``batch=False``.
        pool: random candidates to score. n_warm: how many of the best to evaluate first.
        batch: whether the scorer takes the whole pool at once.
        seed: the pool's seed.

    Example:
        >>> import airda
        >>> from airda.space import Categorical
        >>> space = {f"x{i}": Categorical(list(range(5))) for i in range(4)}
        >>> proxy = lambda p: -sum(p.values())  # a cheap, informative score
        >>> ws = WarmStart("random", proxy, pool=200, n_warm=5, batch=False, seed=0)
        >>> study = airda.create_study(space=space, strategy=ws)
        >>> study.optimize(lambda t: sum(t.params.values()), n_trials=5)
        >>> study.best_value
        0.0
    """

    name = "warmstart"

    def __init__(
        self,
        strategy: Strategy | str,
        scorer: Callable[..., Any],
        *,
        pool: int = 1000,
        n_warm: int = 10,
        batch: bool = True,
        seed: int | None = None,
    ):
        from airda.strategies import get_strategy

        super().__init__(seed=seed)
        if not callable(scorer):
            raise TypeError("scorer must be callable")
        if n_warm < 1 or pool < n_warm:
            raise ValueError(f"need 1 <= n_warm <= pool, got n_warm={n_warm}, pool={pool}")
        self.inner = get_strategy(strategy, seed=self.seed)
        self.scorer, self.pool, self.n_warm, self.batch = scorer, pool, n_warm, batch
        self.supports_multi_objective = self.inner.supports_multi_objective  # type: ignore[misc]
        self.tracks_seen = True  # type: ignore[misc]

    def options(self) -> dict[str, Any]:
        return {"inner": self.inner.config(), "pool": self.pool, "n_warm": self.n_warm}

    def setup(self, space, directions, stream=0, n_streams=1) -> None:  # type: ignore[override]
        super().setup(space, directions, stream, n_streams)
        self.inner.setup(space, directions, stream, n_streams)

    def _reset(self) -> None:
        self._warm: list[dict[str, Any]] | None = None

    def warm_candidates(self) -> list[dict[str, Any]]:
        """The pool's best ``n_warm`` candidates by the scorer, best first (scored once)."""
        if self._warm is None:
            assert self.space is not None
            rng = np.random.default_rng([self.seed, self.stream, 0x5752])
            pool, keys = [], set()
            for _ in range(self.pool * 4):
                c = self.space.sample(rng)
                key = candidate_key(c)
                if key not in keys:
                    keys.add(key)
                    pool.append(c)
                if len(pool) == self.pool:
                    break
            if self.batch:
                scores = np.asarray(self.scorer(pool), dtype=np.float64)
            else:
                scores = np.array([float(self.scorer(c)) for c in pool])
            if scores.shape != (len(pool),):
                raise ValueError(f"scorer gave shape {scores.shape} for {len(pool)} candidates")
            scores = np.where(np.isfinite(scores), scores, -np.inf)
            order = np.argsort(-scores, kind="stable")[: self.n_warm]
            self._warm = [pool[i] for i in order]
        return self._warm

    def note(self, trial: FrozenTrial) -> None:
        super().note(trial)
        self.inner.note(trial)

    def _tell(self, trial: FrozenTrial) -> None:
        self.inner.tell(trial)

    def _ask_one(self, rng: np.random.Generator) -> dict[str, Any]:
        warm = self.warm_candidates()
        if self.n_asked < len(warm):
            return dict(warm[self.n_asked])
        self.inner.n_asked = self.n_asked - len(warm)
        choice = self.inner._ask_one(rng)
        return choice

"""Multi-objective test problems (ZDT, DTLZ, WFG) with their Pareto fronts, reference points
and ideal hypervolumes, vectorised in NumPy: the suite on which multi-objective samplers are
compared by the hypervolume they reach.

Each problem is an :class:`MOProblem`: call it on points of shape ``(..., dim)`` to get
objectives of shape ``(..., n_objectives)`` (all minimised), or use
:meth:`MOProblem.objective` as a study's objective over :meth:`MOProblem.space` (parameters
``x0 .. x{dim-1}``). :meth:`MOProblem.front` samples the true Pareto front,
:meth:`MOProblem.pareto_set` points of the Pareto set (optimal distance variables, random
position variables), and :meth:`MOProblem.hypervolume_ratio` scores a set of objective vectors
as its hypervolume over that of the true front (1 when the front is reached).

=================  ===========  =====================  ======================================
problems           objectives   dim                    reference point
=================  ===========  =====================  ======================================
ZDT1-3, ZDT4, 6    2            30, 10                 (11, 11) (Beume et al., EJOR 2007)
DTLZ1-7            2 or 3       M + k - 1: k = 5 (1),  ideal + 11 (nadir - ideal): the ZDT rule
                                10 (2-6), 20 (7)       (DTLZ2: (11, ..), DTLZ1: (5.5, ..))
WFG1-9             2 or 3       k + l: k = 4 (2 obj.)  (3, 5, ..., 2M + 1): the objectives'
                                or 2 (M - 1), l = 20   upper bounds
=================  ===========  =====================  ======================================

Definitions: ZDT from Zitzler, Deb and Thiele (Evolutionary Computation, 2000); DTLZ from Deb,
Thiele, Laumanns and Zitzler (2005); WFG from Huband, Hingston, Barone and While (IEEE TEC,
2006), with its usual settings (distances scaled by ``S_m = 2m``, ``z_i`` in ``[0, 2i]``).
The ideal hypervolume is that of a dense sample of the true front (10^5 points with two
objectives, a 101 x 101 grid with three): a lower bound within about 1e-4 of the exact value
(tests check it against the closed forms of ZDT1, ZDT2, DTLZ1 and DTLZ2).

Example:
    >>> import airda
    >>> from airda.hpo.mo_functions import get_problem
    >>> p = get_problem("zdt1")
    >>> f = p(p.pareto_set(5, seed=0))  # on the front: f2 = 1 - sqrt(f1)
    >>> bool(np.allclose(f[:, 1], 1 - np.sqrt(f[:, 0])))
    True
    >>> study = airda.create_study(space=p.space(), directions=["minimize"] * 2,
    ...                            strategy="nsga2", seed=0)
    >>> study.optimize(p.objective, n_trials=100)
    >>> 0.0 < p.hypervolume_ratio([t.values for t in study.trials]) < 1.0
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda.space import Float, Space

__all__ = [
    "PROBLEMS",
    "MOProblem",
    "get_problem",
    "non_dominated",
]

_HALF_PI = 0.5 * math.pi


def _grid(d: int, n: int) -> np.ndarray:
    """About n points of a regular grid on [0, 1]^d, shape (points, d)."""
    side = n if d == 1 else max(2, round(n ** (1.0 / d)))
    axes = np.meshgrid(*([np.linspace(0.0, 1.0, side)] * d), indexing="ij")
    return np.stack([a.ravel() for a in axes], axis=1)


def non_dominated(points: Any) -> np.ndarray:
    """The points of a set that no other point of it dominates (all objectives minimised),
    duplicates kept once, in lexicographic order.

    Example:
        >>> non_dominated([[1, 2], [2, 1], [2, 2], [1, 2]]).tolist()
        [[1.0, 2.0], [2.0, 1.0]]
    """
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) == 0:
        return pts
    if pts.shape[1] == 2:
        # Sorted by f1 then f2: a point is kept when its f2 is below every earlier f2.
        best = np.minimum.accumulate(pts[:, 1])
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = pts[1:, 1] < best[:-1]
        return pts[keep]
    from airda.ops import non_dominated_rank

    return pts[np.asarray(non_dominated_rank(pts)) == 0]


@dataclass(frozen=True)
class MOProblem:
    """A multi-objective test problem: ``f(points)`` maps ``(..., dim)`` to ``(..., M)``."""

    __test__ = False  # not a pytest class

    name: str
    dim: int
    n_objectives: int
    low: np.ndarray
    high: np.ndarray
    reference_point: np.ndarray
    fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    front_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    pareto_set_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    n_position: int = 1

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"{self.name} takes points of dimension {self.dim}, got {x.shape}")
        flat = x.reshape(-1, self.dim)
        return self.fn(flat).reshape(*x.shape[:-1], self.n_objectives)

    def space(self) -> Space:
        """The box as an airda space: Float parameters x0 .. x{dim-1}."""
        return Space(
            {
                f"x{i}": Float(float(lo), float(hi))
                for i, (lo, hi) in enumerate(zip(self.low, self.high, strict=True))
            }
        )

    def point(self, params: dict[str, Any]) -> np.ndarray:
        return np.array([params[f"x{i}"] for i in range(self.dim)], dtype=np.float64)

    def objective(self, trial: Any) -> tuple[float, ...]:
        """The objectives at a trial's (or a params dict's) point, for ``study.optimize``."""
        params = trial.params if hasattr(trial, "params") else trial
        return tuple(float(v) for v in self(self.point(params)))

    def front(self, n: int = 100_000) -> np.ndarray:
        """About n points of the true Pareto front (non-dominated, sorted; fewer where the
        front is disconnected or degenerate)."""
        return non_dominated(self.front_fn(_grid(self.n_objectives - 1, n)))

    def pareto_set(self, n: int, seed: int | None = None) -> np.ndarray:
        """n points of the Pareto set (its optimal surface where the front is disconnected):
        random position variables, optimal distance variables."""
        rng = np.random.default_rng(seed)
        return self.pareto_set_fn(rng.random((n, self.n_position)))

    @functools.cached_property
    def ideal_point(self) -> np.ndarray:
        return self._front_sample.min(axis=0)

    @functools.cached_property
    def nadir_point(self) -> np.ndarray:
        return self._front_sample.max(axis=0)

    @functools.cached_property
    def ideal_hypervolume(self) -> float:
        """Hypervolume of the true front below the reference point (a dense sample of it)."""
        return self.hypervolume(self._front_sample)

    @functools.cached_property
    def _front_sample(self) -> np.ndarray:
        return self.front(100_000 if self.n_objectives == 2 else 101**2)

    def hypervolume(self, values: Any) -> float:
        """Hypervolume of objective vectors below the reference point (points outside the box
        add nothing; NaN or infinite rows are dropped)."""
        from airda.ops import hypervolume

        v = np.asarray(values, dtype=np.float64).reshape(-1, self.n_objectives)
        v = v[np.all(np.isfinite(v), axis=1)]
        v = v[np.all(v < self.reference_point, axis=1)]
        if len(v) == 0:
            return 0.0
        return float(hypervolume(non_dominated(v), self.reference_point))

    def hypervolume_ratio(self, values: Any) -> float:
        """The hypervolume of the values over that of the true front (1: the front reached)."""
        return self.hypervolume(values) / self.ideal_hypervolume


# ---- ZDT ---------------------------------------------------------------------------------


def _zdt_g_linear(x: np.ndarray) -> np.ndarray:
    return 1.0 + 9.0 * x[:, 1:].mean(axis=1)


def _h_sqrt(r: np.ndarray) -> np.ndarray:
    return 1.0 - np.sqrt(r)


def _h_square(r: np.ndarray) -> np.ndarray:
    return 1.0 - r**2


def _zdt3_f(f1: np.ndarray, g: np.ndarray) -> np.ndarray:
    r = f1 / g
    return np.stack((f1, g * (1.0 - np.sqrt(r) - r * np.sin(10.0 * math.pi * f1))), axis=1)


def _zdt6_f1(x1: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-4.0 * x1) * np.sin(6.0 * math.pi * x1) ** 6


def _zdt(name: str, dim: int = 0) -> MOProblem:
    dim = dim or (10 if name in ("zdt4", "zdt6") else 30)
    _check(name, "dim", dim, 2)
    low, high = np.zeros(dim), np.ones(dim)
    if name == "zdt4":
        low[1:], high[1:] = -5.0, 5.0

    def fn(x: np.ndarray) -> np.ndarray:
        x1 = x[:, 0]
        if name == "zdt4":
            rest = x[:, 1:]
            g = 1.0 + 10.0 * (dim - 1) + (rest**2 - 10.0 * np.cos(4.0 * math.pi * rest)).sum(1)
            return np.stack((x1, g * _h_sqrt(x1 / g)), axis=1)
        if name == "zdt6":
            f1 = _zdt6_f1(x1)
            g = 1.0 + 9.0 * x[:, 1:].mean(axis=1) ** 0.25
            return np.stack((f1, g * _h_square(f1 / g)), axis=1)
        g = _zdt_g_linear(x)
        if name == "zdt3":
            return _zdt3_f(x1, g)
        h = _h_sqrt if name == "zdt1" else _h_square
        return np.stack((x1, g * h(x1 / g)), axis=1)

    def front_fn(u: np.ndarray) -> np.ndarray:
        t = u[:, 0]
        ones = np.ones_like(t)
        if name == "zdt3":
            return _zdt3_f(t, ones)
        if name == "zdt6":
            f1 = _zdt6_f1(t)
            return np.stack((f1, _h_square(f1)), axis=1)
        h = _h_square if name == "zdt2" else _h_sqrt
        return np.stack((t, h(t)), axis=1)

    def pareto_set_fn(u: np.ndarray) -> np.ndarray:
        x = np.zeros((len(u), dim))
        x[:, 0] = u[:, 0]
        return x

    return MOProblem(name, dim, 2, low, high, np.array([11.0, 11.0]), fn, front_fn, pareto_set_fn)


# ---- DTLZ --------------------------------------------------------------------------------

_DTLZ_K = {"dtlz1": 5, "dtlz7": 20}


def _spherical(theta: np.ndarray) -> np.ndarray:
    """f_1 = prod cos(theta), ..., f_M = sin(theta_1): the unit sphere's positive orthant."""
    n, m1 = theta.shape
    c, s = np.cos(theta), np.sin(theta)
    out = np.ones((n, m1 + 1))
    for m in range(m1 + 1):  # objective m + 1
        out[:, m] = np.prod(c[:, : m1 - m], axis=1)
        if m > 0:
            out[:, m] *= s[:, m1 - m]
    return out


def _linear_simplex(x: np.ndarray) -> np.ndarray:
    """f_1 = prod x, f_m = prod x_{1..M-m} (1 - x_{M-m+1}), f_M = 1 - x_1."""
    n, m1 = x.shape
    out = np.ones((n, m1 + 1))
    for m in range(m1 + 1):
        out[:, m] = np.prod(x[:, : m1 - m], axis=1)
        if m > 0:
            out[:, m] *= 1.0 - x[:, m1 - m]
    return out


def _g_rastrigin(xm: np.ndarray) -> np.ndarray:
    d = xm - 0.5
    return 100.0 * (xm.shape[1] + (d**2 - np.cos(20.0 * math.pi * d)).sum(axis=1))


def _dtlz7_last(f: np.ndarray, g: np.ndarray, m: int) -> np.ndarray:
    h = m - (f / (1.0 + g)[:, None] * (1.0 + np.sin(3.0 * math.pi * f))).sum(axis=1)
    return (1.0 + g) * h


def _dtlz(name: str, m: int = 2) -> MOProblem:
    _check(name, "n_objectives", m, 2)
    k = _DTLZ_K.get(name, 10)
    dim = m + k - 1

    def fn(x: np.ndarray) -> np.ndarray:
        pos, xm = x[:, : m - 1], x[:, m - 1 :]
        if name == "dtlz1":
            return 0.5 * (1.0 + _g_rastrigin(xm))[:, None] * _linear_simplex(pos)
        if name == "dtlz7":
            g = 1.0 + 9.0 * xm.mean(axis=1)
            return np.concatenate((pos, _dtlz7_last(pos, g, m)[:, None]), axis=1)
        if name == "dtlz3":
            g = _g_rastrigin(xm)
        elif name == "dtlz6":
            g = (xm**0.1).sum(axis=1)
        else:
            g = ((xm - 0.5) ** 2).sum(axis=1)
        if name == "dtlz4":
            theta = pos**100.0 * _HALF_PI
        elif name in ("dtlz5", "dtlz6"):
            theta = (1.0 + 2.0 * g[:, None] * pos) * (0.5 * _HALF_PI / (1.0 + g[:, None]))
            theta[:, 0] = pos[:, 0] * _HALF_PI
        else:
            theta = pos * _HALF_PI
        return (1.0 + g)[:, None] * _spherical(theta)

    def front_fn(u: np.ndarray) -> np.ndarray:
        if name == "dtlz1":
            return 0.5 * _linear_simplex(u)
        if name == "dtlz7":
            return np.concatenate((u, _dtlz7_last(u, np.ones(len(u)), m)[:, None]), axis=1)
        theta = u * _HALF_PI
        if name in ("dtlz5", "dtlz6"):
            theta[:, 1:] = 0.5 * _HALF_PI  # degenerate: a curve on the sphere
        return _spherical(theta)

    def pareto_set_fn(u: np.ndarray) -> np.ndarray:
        x = np.full((len(u), dim), 0.0 if name in ("dtlz6", "dtlz7") else 0.5)
        x[:, : m - 1] = u
        return x

    # DTLZ fronts are known in closed form: the ideal is 0 except DTLZ7's last objective.
    if name == "dtlz7":
        probe = non_dominated(front_fn(_grid(m - 1, 100_000 if m == 2 else 101**2)))
        ideal, nadir = probe.min(axis=0), probe.max(axis=0)
    else:
        ideal = np.zeros(m)
        nadir = np.full(m, 0.5 if name == "dtlz1" else 1.0)
        if name in ("dtlz5", "dtlz6") and m > 2:
            # the front is the curve theta_2.. = pi / 4: f_m <= sqrt(1/2)^(M - m), f_1 as f_2
            nadir[:-1] = math.sqrt(0.5) ** (m - np.arange(1, m))
            nadir[0] = nadir[1]
    ref = ideal + 11.0 * (nadir - ideal)
    return MOProblem(
        f"{name}_m{m}",
        dim,
        m,
        np.zeros(dim),
        np.ones(dim),
        ref,
        fn,
        front_fn,
        pareto_set_fn,
        n_position=m - 1,
    )


# ---- WFG: transformations (Huband et al. 2006, section VI) -------------------------------


def _clip01(y: np.ndarray) -> np.ndarray:
    return np.clip(y, 0.0, 1.0)


def _s_linear(y: np.ndarray, a: float) -> np.ndarray:
    return _clip01(np.abs(y - a) / np.abs(np.floor(a - y) + a))


def _s_decept(y: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    t1 = np.floor(y - a + b) * (1.0 - c + (a - b) / b) / (a - b)
    t2 = np.floor(a + b - y) * (1.0 - c + (1.0 - a - b) / b) / (1.0 - a - b)
    return _clip01(1.0 + (np.abs(y - a) - b) * (t1 + t2 + 1.0 / b))


def _s_multi(y: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    t = np.abs(y - c) / (2.0 * (np.floor(c - y) + c))
    return _clip01((1.0 + np.cos((4.0 * a + 2.0) * math.pi * (0.5 - t)) + 4.0 * b * t**2) / (b + 2))


def _b_flat(y: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    out = (
        a
        + np.minimum(0.0, np.floor(y - b)) * a * (b - y) / b
        - np.minimum(0.0, np.floor(c - y)) * (1.0 - a) * (y - c) / (1.0 - c)
    )
    return _clip01(out)


_PARAM_A, _PARAM_B, _PARAM_C = 0.98 / 49.98, 0.02, 50.0


def _param_exponent(ref: np.ndarray) -> np.ndarray:
    a, b, c = _PARAM_A, _PARAM_B, _PARAM_C
    return b + (c - b) * (a - (1.0 - 2.0 * ref) * np.abs(np.floor(0.5 - ref) + a))


def _b_param(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return _clip01(y ** _param_exponent(ref))


def _r_sum(y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    if w is None:
        return _clip01(y.mean(axis=1))
    return _clip01(y @ w / w.sum())


def _r_nonsep(y: np.ndarray, a: int) -> np.ndarray:
    n = y.shape[1]
    total = y.sum(axis=1)
    for k in range(a - 1):
        # y_j against y_{1 + (j + k) mod n} (1-based): the next a - 1 neighbours, cyclically
        total = total + np.abs(y - np.roll(y, -(k + 1), axis=1)).sum(axis=1)
    half = math.ceil(a / 2)
    return _clip01(total / (n / a * half * (1.0 + 2.0 * a - 2.0 * half)))


# ---- WFG: shapes -------------------------------------------------------------------------


def _shape(x: np.ndarray, kind: str) -> np.ndarray:
    """h_1 .. h_M of the position vector x (n, M - 1): convex, concave or linear."""
    n, m1 = x.shape
    if kind == "concave":
        first, second = np.sin(x * _HALF_PI), np.cos(x * _HALF_PI)
    elif kind == "convex":
        first, second = 1.0 - np.cos(x * _HALF_PI), 1.0 - np.sin(x * _HALF_PI)
    else:
        first, second = x, 1.0 - x
    out = np.ones((n, m1 + 1))
    for m in range(m1 + 1):  # objective m + 1
        out[:, m] = np.prod(first[:, : m1 - m], axis=1)
        if m > 0:
            out[:, m] *= second[:, m1 - m]
    return out


def _wfg_h(name: str, x: np.ndarray) -> np.ndarray:
    if name == "wfg1":
        h = _shape(x, "convex")
        a = 2.0 * 5.0 * math.pi
        h[:, -1] = 1.0 - x[:, 0] - np.cos(a * x[:, 0] + _HALF_PI) / a  # mixed, alpha 1, A 5
        return _clip01(h)
    if name == "wfg2":
        h = _shape(x, "convex")
        h[:, -1] = 1.0 - x[:, 0] * np.cos(5.0 * math.pi * x[:, 0]) ** 2  # disc, 1, 1, A 5
        return _clip01(h)
    return _clip01(_shape(x, "linear" if name == "wfg3" else "concave"))


def _wfg_t(name: str, y: np.ndarray, k: int, m: int) -> np.ndarray:
    """The transformed vector t_1 .. t_M of y = z / (2i) (n, k + l)."""
    n_var = y.shape[1]
    y = y.copy()
    w = 2.0 * np.arange(1, n_var + 1)
    gap = k // (m - 1)
    groups = [slice(i * gap, (i + 1) * gap) for i in range(m - 1)]
    if name == "wfg1":
        y[:, k:] = _b_flat(_s_linear(y[:, k:], 0.35), 0.8, 0.75, 0.85)
        y = _clip01(y**0.02)
        return np.stack([_r_sum(y[:, g], w[g]) for g in groups] + [_r_sum(y[:, k:], w[k:])], 1)
    if name in ("wfg2", "wfg3"):
        y[:, k:] = _s_linear(y[:, k:], 0.35)
        pairs = y[:, k:].reshape(len(y), -1, 2)
        dist = np.stack([_r_nonsep(pairs[:, i], 2) for i in range(pairs.shape[1])], axis=1)
        return np.stack([_r_sum(y[:, g]) for g in groups] + [_r_sum(dist)], axis=1)
    if name in ("wfg4", "wfg5"):
        y = _s_multi(y, 30.0, 10.0, 0.35) if name == "wfg4" else _s_decept(y, 0.35, 0.001, 0.05)
        return np.stack([_r_sum(y[:, g]) for g in groups] + [_r_sum(y[:, k:])], axis=1)
    if name == "wfg6":
        y[:, k:] = _s_linear(y[:, k:], 0.35)
        return np.stack(
            [_r_nonsep(y[:, g], gap) for g in groups] + [_r_nonsep(y[:, k:], n_var - k)], 1
        )
    if name == "wfg7":
        # reverse cumulative means: r_sum(y_{i+1..n}) for each position variable i
        tail = np.cumsum(y[:, ::-1], axis=1)[:, ::-1]
        means = tail[:, 1 : k + 1] / np.arange(n_var - 1, n_var - k - 1, -1)
        y[:, :k] = _b_param(y[:, :k], _clip01(means))
        y[:, k:] = _s_linear(y[:, k:], 0.35)
        return np.stack([_r_sum(y[:, g]) for g in groups] + [_r_sum(y[:, k:])], axis=1)
    if name == "wfg8":
        head = np.cumsum(y, axis=1)
        means = head[:, k - 1 : n_var - 1] / np.arange(k, n_var)
        y[:, k:] = _s_linear(_b_param(y[:, k:], _clip01(means)), 0.35)
        return np.stack([_r_sum(y[:, g]) for g in groups] + [_r_sum(y[:, k:])], axis=1)
    if name == "wfg9":
        tail = np.cumsum(y[:, ::-1], axis=1)[:, ::-1]
        means = tail[:, 1:] / np.arange(n_var - 1, 0, -1)
        y[:, :-1] = _b_param(y[:, :-1], _clip01(means))
        y[:, :k] = _s_decept(y[:, :k], 0.35, 0.001, 0.05)
        y[:, k:] = _s_multi(y[:, k:], 30.0, 95.0, 0.35)
        return np.stack(
            [_r_nonsep(y[:, g], gap) for g in groups] + [_r_nonsep(y[:, k:], n_var - k)], 1
        )
    raise ValueError(f"unknown WFG problem {name!r}")


def _wfg_optimal_distance(name: str, pos: np.ndarray, k: int, l_: int) -> np.ndarray:
    """The y values (z / 2i) of the distance variables on the Pareto set."""
    n = len(pos)
    if name == "wfg8":
        y = np.concatenate((pos, np.zeros((n, l_))), axis=1)
        for i in range(k, k + l_):
            y[:, i] = 0.35 ** (1.0 / _param_exponent(y[:, :i].mean(axis=1)))
        return y[:, k:]
    if name == "wfg9":
        y = np.zeros((n, l_))
        y[:, -1] = 0.35
        for i in range(l_ - 2, -1, -1):
            y[:, i] = 0.35 ** (1.0 / _param_exponent(y[:, i + 1 :].mean(axis=1)))
        return y
    return np.full((n, l_), 0.35)


def _exact_scale(y: np.ndarray, high: np.ndarray) -> np.ndarray:
    """z = y * high, nudged by a few ulps where that makes z / high == y exactly: WFG1's
    b_poly(., 0.02) turns a 1e-17 rounding error of a distance variable into 0.46. (Some
    (y, high), e.g. (0.35, 12), have no such float: WFG1's Pareto set is not exactly
    representable, and its points here are ~0.07 behind the front, as in other float
    implementations.)"""
    z = y * high
    for step in (1, -1, 2, -2, 3, -3):
        off = z / high != y
        if not off.any():
            break
        cand = z.copy()
        for _ in range(abs(step)):
            cand = np.nextafter(cand, np.inf if step > 0 else -np.inf)
        fix = off & (cand / high == y)
        z[fix] = cand[fix]
    return z


def _wfg(name: str, m: int = 2) -> MOProblem:
    _check(name, "n_objectives", m, 2)
    k = 4 if m == 2 else 2 * (m - 1)
    l_ = 20
    dim = k + l_
    high = 2.0 * np.arange(1, dim + 1)
    s = 2.0 * np.arange(1, m + 1)
    a = np.ones(m - 1)
    if name == "wfg3":
        a[1:] = 0.0

    def post(t: np.ndarray) -> np.ndarray:
        tm = t[:, -1:]
        return np.concatenate((np.maximum(tm, a) * (t[:, :-1] - 0.5) + 0.5, tm), axis=1)

    def fn(z: np.ndarray) -> np.ndarray:
        x = post(_wfg_t(name, z / high, k, m))
        return x[:, -1:] + s * _wfg_h(name, x[:, :-1])

    def front_fn(u: np.ndarray) -> np.ndarray:
        x = u.copy()
        if name == "wfg3":
            x[:, 1:] = 0.5  # degenerate: A_2.. = 0 pins x_2.. at 0.5 on the front
        return s * _wfg_h(name, x)

    def pareto_set_fn(pos: np.ndarray) -> np.ndarray:
        y = np.concatenate((pos, _wfg_optimal_distance(name, pos, k, l_)), axis=1)
        return _exact_scale(y, high)

    return MOProblem(
        f"{name}_m{m}",
        dim,
        m,
        np.zeros(dim),
        high,
        s + 1.0,
        fn,
        front_fn,
        pareto_set_fn,
        n_position=k,
    )


def _check(name: str, label: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: {label} must be an int >= {minimum}, got {value!r}")


PROBLEMS: dict[str, Callable[..., MOProblem]] = {
    **{f"zdt{i}": functools.partial(_zdt, f"zdt{i}") for i in (1, 2, 3, 4, 6)},
    **{f"dtlz{i}": functools.partial(_dtlz, f"dtlz{i}") for i in range(1, 8)},
    **{f"wfg{i}": functools.partial(_wfg, f"wfg{i}") for i in range(1, 10)},
}


@functools.cache
def get_problem(name: str) -> MOProblem:
    """A problem by name: ``zdt1`` .. ``zdt6`` (no ZDT5: binary), ``dtlz1_m2`` ..
    ``dtlz7_m3`` and ``wfg1_m2`` .. ``wfg9_m3`` (the suffix is the number of objectives).
    Cached, so the ideal hypervolume is computed once per process.

    Example:
        >>> p = get_problem("dtlz2_m3")
        >>> p.dim, p.n_objectives, p.reference_point.tolist()
        (12, 3, [11.0, 11.0, 11.0])
    """
    base, _, suffix = name.partition("_m")
    if (
        base not in PROBLEMS
        or (base.startswith("zdt") and suffix)
        or (not base.startswith("zdt") and not suffix.isdigit())
    ):
        raise ValueError(
            f"unknown problem {name!r}; choose zdt1-4, zdt6, dtlz1_m2 .. dtlz7_m3 or "
            "wfg1_m2 .. wfg9_m3"
        )
    return PROBLEMS[base](int(suffix)) if suffix else PROBLEMS[base]()

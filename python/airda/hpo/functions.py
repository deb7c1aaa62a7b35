"""Standard test functions for optimisers, with their bounds, optima and airda spaces.

Each function is a :class:`TestFunction`: call it on an array of points (``(..., dim)``,
vectorised) or use :meth:`TestFunction.objective` as a study's objective over
:meth:`TestFunction.space` (parameters ``x0 .. x{dim-1}``). ``optimum`` is the known minimum
value and ``argmin`` one point where it is reached.

========================  =====================  ===================  ==========================
function                  dim                    bounds               minimum
========================  =====================  ===================  ==========================
:func:`branin`            2                      [-5, 10] x [0, 15]   0.397887 (three minimisers)
:func:`hartmann6`         6                      [0, 1]^6             -3.322368
:func:`rosenbrock`        any >= 2               [-5, 10]^d           0 at (1, ..., 1)
:func:`ackley`            any                    [-32.768, 32.768]^d  0 at 0
:func:`rastrigin`         any                    [-5.12, 5.12]^d      0 at 0
:func:`levy`              any                    [-10, 10]^d          0 at (1, ..., 1)
:func:`sphere`            any                    [-5, 5]^d            0 at 0
:func:`ellipsoid`         any >= 2               [-5, 5]^d            0 at 0 (condition 1e6)
========================  =====================  ===================  ==========================

Example:
    >>> import airda
    >>> from airda.hpo.functions import branin
    >>> f = branin()
    >>> round(float(f([3.141592653589793, 2.275])), 6) == round(f.optimum, 6)
    True
    >>> study = airda.create_study(space=f.space(), strategy="random", seed=0)
    >>> study.optimize(f.objective, n_trials=50)
    >>> study.best_value - f.optimum < 5.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda.space import Float, Space

__all__ = [
    "FUNCTIONS",
    "TestFunction",
    "ackley",
    "branin",
    "ellipsoid",
    "get_function",
    "hartmann6",
    "levy",
    "rastrigin",
    "rosenbrock",
    "sphere",
]


@dataclass(frozen=True)
class TestFunction:
    """A test function: ``f(points)`` evaluates an array of shape ``(..., dim)``."""

    __test__ = False  # not a pytest class

    name: str
    dim: int
    low: np.ndarray
    high: np.ndarray
    optimum: float
    argmin: np.ndarray
    fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"{self.name} takes points of dimension {self.dim}, got {x.shape}")
        return self.fn(x)

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

    def objective(self, trial: Any) -> float:
        """The value at a trial's (or a params dict's) point, for ``study.optimize``."""
        params = trial.params if hasattr(trial, "params") else trial
        return float(self(self.point(params)))

    def regret(self, value: float) -> float:
        """How far a value is above the optimum (0 at the optimum, never negative)."""
        return max(float(value) - self.optimum, 0.0)


def _box(dim: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full(dim, float(low)), np.full(dim, float(high))


def _check_dim(name: str, dim: int, minimum: int = 1) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < minimum:
        raise ValueError(f"{name}: dim must be an int >= {minimum}, got {dim!r}")


def _branin(x: np.ndarray) -> np.ndarray:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    x1, x2 = x[..., 0], x[..., 1]
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * np.cos(x1) + s


def branin(dim: int = 2) -> TestFunction:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at (-pi, 12.275), (pi, 2.275) and
    (9.42478, 2.475)."""
    if dim != 2:
        raise ValueError(f"branin is 2-dimensional, got dim={dim!r}")
    return TestFunction(
        "branin",
        2,
        np.array([-5.0, 0.0]),
        np.array([10.0, 15.0]),
        0.397887357729738,
        np.array([math.pi, 2.275]),
        _branin,
    )


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ],
    dtype=np.float64,
)


def _hartmann6(x: np.ndarray) -> np.ndarray:
    inner = (_H6_A * (x[..., None, :] - _H6_P) ** 2).sum(-1)
    return -(_H6_ALPHA * np.exp(-inner)).sum(-1)


def hartmann6(dim: int = 6) -> TestFunction:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237."""
    if dim != 6:
        raise ValueError(f"hartmann6 is 6-dimensional, got dim={dim!r}")
    return TestFunction(
        "hartmann6",
        6,
        *_box(6, 0.0, 1.0),
        -3.322368011415515,
        np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]),
        _hartmann6,
    )


def _rosenbrock(x: np.ndarray) -> np.ndarray:
    return (100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1.0 - x[..., :-1]) ** 2).sum(-1)


def rosenbrock(dim: int = 2) -> TestFunction:
    """Rosenbrock's valley on [-5, 10]^dim; minimum 0 at (1, ..., 1)."""
    _check_dim("rosenbrock", dim, 2)
    return TestFunction("rosenbrock", dim, *_box(dim, -5, 10), 0.0, np.ones(dim), _rosenbrock)


def _ackley(x: np.ndarray) -> np.ndarray:
    d = x.shape[-1]
    a = -20.0 * np.exp(-0.2 * np.sqrt((x * x).sum(-1) / d))
    b = -np.exp(np.cos(2 * math.pi * x).sum(-1) / d)
    return a + b + 20.0 + math.e


def ackley(dim: int = 2) -> TestFunction:
    """Ackley on [-32.768, 32.768]^dim; minimum 0 at 0."""
    _check_dim("ackley", dim)
    return TestFunction("ackley", dim, *_box(dim, -32.768, 32.768), 0.0, np.zeros(dim), _ackley)


def _rastrigin(x: np.ndarray) -> np.ndarray:
    return 10.0 * x.shape[-1] + (x * x - 10.0 * np.cos(2 * math.pi * x)).sum(-1)


def rastrigin(dim: int = 2) -> TestFunction:
    """Rastrigin on [-5.12, 5.12]^dim; minimum 0 at 0."""
    _check_dim("rastrigin", dim)
    return TestFunction("rastrigin", dim, *_box(dim, -5.12, 5.12), 0.0, np.zeros(dim), _rastrigin)


def _levy(x: np.ndarray) -> np.ndarray:
    w = 1.0 + (x - 1.0) / 4.0
    first = np.sin(math.pi * w[..., 0]) ** 2
    mid = ((w[..., :-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[..., :-1] + 1) ** 2)).sum(-1)
    last = (w[..., -1] - 1) ** 2 * (1 + np.sin(2 * math.pi * w[..., -1]) ** 2)
    return first + mid + last


def levy(dim: int = 2) -> TestFunction:
    """Levy on [-10, 10]^dim; minimum 0 at (1, ..., 1)."""
    _check_dim("levy", dim)
    return TestFunction("levy", dim, *_box(dim, -10, 10), 0.0, np.ones(dim), _levy)


def _sphere(x: np.ndarray) -> np.ndarray:
    return (x * x).sum(-1)


def sphere(dim: int = 2) -> TestFunction:
    """The sphere sum(x^2) on [-5, 5]^dim; minimum 0 at 0."""
    _check_dim("sphere", dim)
    return TestFunction("sphere", dim, *_box(dim, -5, 5), 0.0, np.zeros(dim), _sphere)


def _ellipsoid(x: np.ndarray) -> np.ndarray:
    d = x.shape[-1]
    scales = 10.0 ** (6.0 * np.arange(d) / max(d - 1, 1))
    return (scales * x * x).sum(-1)


def ellipsoid(dim: int = 2) -> TestFunction:
    """The ellipsoid sum(10^(6 (i-1)/(d-1)) x_i^2) on [-5, 5]^dim (condition number 1e6);
    minimum 0 at 0."""
    _check_dim("ellipsoid", dim, 2)
    return TestFunction("ellipsoid", dim, *_box(dim, -5, 5), 0.0, np.zeros(dim), _ellipsoid)


FUNCTIONS: dict[str, Callable[[int], TestFunction]] = {
    "branin": branin,
    "hartmann6": hartmann6,
    "rosenbrock": rosenbrock,
    "ackley": ackley,
    "rastrigin": rastrigin,
    "levy": levy,
    "sphere": sphere,
    "ellipsoid": ellipsoid,
}

FIXED_DIM = {"branin": 2, "hartmann6": 6}


def get_function(name: str, dim: int | None = None) -> TestFunction:
    """A test function by name (dim defaults to the function's own, or 2).

    Example:
        >>> get_function("levy", 5).optimum
        0.0
    """
    if name not in FUNCTIONS:
        raise ValueError(f"unknown test function {name!r}; choose one of {sorted(FUNCTIONS)}")
    if dim is None:
        dim = FIXED_DIM.get(name, 2)
    return FUNCTIONS[name](dim)

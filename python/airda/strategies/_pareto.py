"""Crowding distance, shared by NSGA-II (its secondary sort key) and MOTPE (its split past
three objectives, where exact hypervolume contributions get expensive)."""

from __future__ import annotations

import numpy as np

__all__ = ["crowding_distance"]


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """Crowding distance of each row of `values` (n points, m objectives) within the set:
    the sum over objectives of the gap between its two neighbours, divided by the objective's
    range; ``inf`` at both ends of every objective (so every point of a set of two or fewer).

    Example:
        >>> crowding_distance(np.array([[0.0, 3.0], [1.0, 1.0], [3.0, 0.0]])).tolist()
        [inf, 2.0, inf]
    """
    n, m = values.shape
    if n <= 2:
        return np.full(n, np.inf)
    out = np.zeros(n)
    for j in range(m):
        order = np.argsort(values[:, j], kind="stable")
        v = values[order, j]
        out[order[[0, -1]]] = np.inf
        span = v[-1] - v[0]
        if span > 0:
            out[order[1:-1]] += (v[2:] - v[:-2]) / span
    return out

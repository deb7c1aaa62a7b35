"""Budget ladders shared by the schedulers (:mod:`airda.schedulers`) and the strategies that
schedule training segments (:mod:`airda.strategies.sync_halving`).

Both packages are one layer up and siblings, so neither imports the other; the arithmetic they
share lives here, below both.
"""

from __future__ import annotations

__all__ = ["rung_steps"]


def rung_steps(min_resource: int, max_resource: int, reduction_factor: int) -> list[int]:
    """The rung steps ``min_resource * eta**k`` strictly below ``max_resource``.

    Example:
        >>> rung_steps(1, 27, 3)
        [1, 3, 9]
        >>> rung_steps(2, 20, 2)
        [2, 4, 8, 16]
    """
    out = []
    r = min_resource
    while r < max_resource:
        out.append(r)
        r *= reduction_factor
    return out

"""airda: AI R&D automation on compiled kernels.

Search engines for architectures, hyperparameters, kernel variants, synthetic data and prompts,
and the evaluation that tells a real improvement from noise. ``import airda`` is light: the
compiled module, torch and triton load when an op or engine first needs them.

Example:
    >>> import numpy as np
    >>> import airda.ops
    >>> codes = airda.ops.pack_sign_bits(np.array([[1.0, -2.0, 3.0]], dtype=np.float32))
    >>> int(codes[0, 0])
    5
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from airda._version import __version__

if TYPE_CHECKING:
    from airda import nas, ops

__all__ = ["__version__", "nas", "ops"]

_LAZY_SUBMODULES = frozenset({"nas", "ops", "cli", "kernels", "testing"})


def __getattr__(name: str):
    # Submodules load on first attribute access, keeping `import airda` free of heavy imports.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"airda.{name}")
    raise AttributeError(f"module 'airda' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)

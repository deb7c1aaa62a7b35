"""Synthetic tables: metadata and constraints, synthesizers (Gaussian copula, a deep generator),
fidelity, utility and privacy metrics, and a study that tunes the generator.

- :class:`Metadata` (detected from a DataFrame, overridable), :class:`Column`,
  :class:`SynthDataError`;
- constraints held by construction: :class:`Range`, :class:`Inequality`,
  :class:`FixedCombinations`, :class:`Unique`, :class:`Positive`;
- synthesizers with one interface (``fit``, ``sample(n, conditions=...)``, ``save``/``load``):
  :class:`GaussianCopula` (``"copula"``), :class:`TVAE` (``"tvae"``, torch); :func:`make` builds
  one by name from :data:`SYNTHESIZERS`;
- :class:`TableEncoder` / :class:`Encoded`: the arrays a synthesizer models;
- :func:`evaluate` -> :class:`QualityReport`: column shapes, pair trends, detection, ML utility
  (TSTR vs TRTR) and privacy (DCR, NNDR against a holdout), each also a function.

Importing this package imports neither pandas nor torch; each name is loaded on first use.

Example:
    >>> import pandas as pd
    >>> from airda import synth
    >>> df = pd.DataFrame({"x": [0.5, 1.5, 2.0, 3.5, 4.0, 5.5], "y": list("abab" "ba")})
    >>> model = synth.make("copula", seed=1).fit(df)
    >>> list(model.sample(3).columns)
    ['x', 'y']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from airda.synth._base import Synthesizer

__all__ = [
    "SYNTHESIZERS",
    "TVAE",
    "Column",
    "Constraint",
    "Encoded",
    "FixedCombinations",
    "GaussianCopula",
    "Inequality",
    "Metadata",
    "Positive",
    "QualityReport",
    "Range",
    "SynthDataError",
    "Synthesizer",
    "TableEncoder",
    "TuneResult",
    "Unique",
    "column_shapes",
    "detection",
    "evaluate",
    "make",
    "ml_utility",
    "pair_trend_score",
    "pair_trends",
    "privacy",
    "tune",
    "tune_space",
]

# name -> "module:Class"; make(name) imports the module on first use.
SYNTHESIZERS: dict[str, str] = {
    "copula": "airda.synth._copula:GaussianCopula",
    "tvae": "airda.synth._deep:TVAE",
}

# Public name -> the private module that defines it (loaded on first access).
_WHERE = {
    "Column": "_metadata",
    "Metadata": "_metadata",
    "SynthDataError": "_metadata",
    "Constraint": "_constraints",
    "FixedCombinations": "_constraints",
    "Inequality": "_constraints",
    "Positive": "_constraints",
    "Range": "_constraints",
    "Unique": "_constraints",
    "Encoded": "_table",
    "TableEncoder": "_table",
    "Synthesizer": "_base",
    "GaussianCopula": "_copula",
    "TVAE": "_deep",
    "QualityReport": "_report",
    "evaluate": "_report",
    "column_shapes": "_metrics",
    "detection": "_metrics",
    "ml_utility": "_metrics",
    "pair_trend_score": "_metrics",
    "pair_trends": "_metrics",
    "privacy": "_metrics",
    "TuneResult": "_tune",
    "tune": "_tune",
    "tune_space": "_tune",
}


def make(name: str, **hp: Any) -> Synthesizer:
    """A synthesizer by its registry name (``"copula"``, ``"tvae"``) with hyperparameters.

    Raises:
        ValueError: an unknown name.
        TypeError: an unknown hyperparameter.
    """
    target = SYNTHESIZERS.get(name)
    if target is None:
        raise ValueError(f"unknown synthesizer {name!r} (one of {', '.join(SYNTHESIZERS)})")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(**hp)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.synth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.synth.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

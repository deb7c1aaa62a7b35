"""Deprecated home of :mod:`airda.strategies.tpe`, kept for one release.

Every proposer lives in :mod:`airda.strategies` (the layer below the domains); import from
``airda.strategies.tpe``, or take the classes from ``airda.strategies`` or ``airda.hpo``.
"""

from airda._deprecation import moved_module

__all__, __getattr__ = moved_module(__name__, "airda.strategies.tpe")

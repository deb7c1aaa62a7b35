"""Hyperparameter optimisation: CMA-ES, Gaussian-process Bayesian optimisation, and the
standard test functions to measure them on."""

from __future__ import annotations

# The strategies package registers the strategies defined here: load it first, so that either
# import order works.
import airda.strategies  # noqa: F401  # isort: skip
from airda.hpo.cmaes import CmaEs
from airda.hpo.gp import GaussianProcessSearch

__all__ = ["CmaEs", "GaussianProcessSearch"]

"""Hyperparameter optimisation: samplers (:class:`TPE`, :class:`MOTPE`, :class:`NSGA2`,
:class:`CmaEs`, :class:`GaussianProcessSearch`) on airda's strategy interface,
:func:`OptunaSampler`, which lets any airda strategy drive an existing Optuna study, and the
standard test functions (:mod:`airda.hpo.functions`).

Example:
    >>> import airda
    >>> from airda.hpo import TPE
    >>> from airda.space import Float
    >>> study = airda.create_study(space={"x": Float(-3, 3)}, strategy=TPE(seed=1))
    >>> study.optimize(lambda t: t["x"] ** 2, n_trials=40)
    >>> abs(study.best_params["x"]) < 0.3
    True
"""

import airda.strategies  # noqa: F401  (first: it registers the strategies defined here)
from airda.hpo.cmaes import CmaEs
from airda.hpo.gp import GaussianProcessSearch
from airda.hpo.nsga2 import NSGA2
from airda.hpo.optuna_sampler import OptunaSampler
from airda.hpo.tpe import MOTPE, TPE

__all__ = ["MOTPE", "NSGA2", "TPE", "CmaEs", "GaussianProcessSearch", "OptunaSampler"]

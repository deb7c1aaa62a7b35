"""Conformance suites for plug-in authors, in Optuna's style: import the test functions of
:mod:`airda.testing.pytest_strategies` or :mod:`airda.testing.pytest_storages` into a test
module and every registered strategy / storage factory is checked.

Example (in a plug-in's tests)::

    from airda.strategies import STRATEGIES
    STRATEGIES["mine"] = MyStrategy
    from airda.testing.pytest_strategies import *  # noqa: F403
"""

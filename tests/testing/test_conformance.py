"""The conformance suites shipped in airda.testing, run over every registered strategy and
storage backend."""

from airda.testing.pytest_storages import *  # noqa: F403
from airda.testing.pytest_storages import storage  # noqa: F401  (the parametrized fixture)
from airda.testing.pytest_strategies import *  # noqa: F403

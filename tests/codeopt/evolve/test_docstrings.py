"""The examples in the docstrings of airda.codeopt.evolve run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

from airda._native import native_error

MODULES = [
    "airda.codeopt.evolve",
    "airda.codeopt.evolve._spec",
    "airda.codeopt.evolve._edit",
    "airda.codeopt.evolve._database",
    "airda.codeopt.evolve._propose",
    "airda.codeopt.evolve._evaluate",
    "airda.codeopt.evolve._evolve",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.endswith(("_evaluate", "_evolve")) and native_error() is not None:
        pytest.skip(f"{native_error()}")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0

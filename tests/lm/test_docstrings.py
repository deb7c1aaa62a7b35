"""The examples in airda.lm's public docstrings run and print what they claim (tests/test_docs.py
lists other packages' modules; airda.lm's are here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "airda.lm",
    "airda.lm._base",
    "airda.lm._local",
    "airda.lm._tiny",
    "airda.lm._http",
    "airda.lm._serve",
    "airda.lm._cache",
    "airda.lm._budget",
    "airda.lm._load",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tiny):  # tiny: the model is built once for the session
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name, globs={}):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed"

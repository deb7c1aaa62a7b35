"""The Python examples of docs/tune.md run and print what they claim."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from airda._native import native_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "tune.md"


@pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")
def test_docs_tune_examples():
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

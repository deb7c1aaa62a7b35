"""Fixtures of airda.prompt's tests: a tiny real model (random weights, SmolLM2's tokenizer) for
the mechanics; SmolLM2 for the end-to-end tests (``smollm2``) comes from tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_lm():
    lm = pytest.importorskip("airda.lm", reason="airda.lm is not available")
    if not hasattr(lm, "tiny_model"):
        pytest.skip("airda.lm.tiny_model is not available yet")
    return lm.tiny_model()

